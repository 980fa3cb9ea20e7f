# Two helpers so each folder's CMakeLists.txt reads as a declaration.
#
# shardsim_cc_library(NAME name SRCS a.cc ... DEPS target ...)
#   A static library named shardsim_<name> with strict warnings, rooted
#   includes ("sim/base/status.h") and its dependencies made public.
# shardsim_cc_test(NAME name SRCS a_test.cc ... DEPS target ...)
#   A GoogleTest binary registered with CTest, one process per test (SimGrid
#   keeps one engine per process).

set(SHARDSIM_WARNINGS -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor
    -Wconversion -Wno-sign-conversion -Werror)

function(shardsim_cc_library)
  cmake_parse_arguments(ARG "" "NAME" "SRCS;DEPS" ${ARGN})
  add_library(shardsim_${ARG_NAME} ${ARG_SRCS})
  target_include_directories(shardsim_${ARG_NAME} PUBLIC ${PROJECT_SOURCE_DIR})
  target_compile_options(shardsim_${ARG_NAME} PRIVATE ${SHARDSIM_WARNINGS})
  if(SHARDSIM_FUZZ AND ARG_NAME IN_LIST SHARDSIM_FUZZED_LIBRARIES)
    target_compile_options(shardsim_${ARG_NAME} PRIVATE -fsanitize=fuzzer-no-link)
  endif()
  target_link_libraries(shardsim_${ARG_NAME} PUBLIC ${ARG_DEPS})
endfunction()

function(shardsim_cc_test)
  cmake_parse_arguments(ARG "" "NAME" "SRCS;DEPS" ${ARGN})
  add_executable(${ARG_NAME} ${ARG_SRCS})
  target_include_directories(${ARG_NAME} PRIVATE ${PROJECT_SOURCE_DIR})
  target_compile_options(${ARG_NAME} PRIVATE ${SHARDSIM_WARNINGS})
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS} GTest::gtest_main)
  # Tests read models/, topologies/ and shared/calibration relative to the repo.
  gtest_discover_tests(${ARG_NAME}
    WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
    DISCOVERY_TIMEOUT 60)
endfunction()
