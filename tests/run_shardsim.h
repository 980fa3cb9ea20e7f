// Running the built shardsim binary from a test, as a user would: tests that
// include this define SHARDSIM_BINARY (tests/CMakeLists.txt does).
#ifndef SHARDSIM_TESTS_RUN_SHARDSIM_H_
#define SHARDSIM_TESTS_RUN_SHARDSIM_H_

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace shardsim::testing {

struct Result {
  int exit_code = -1;
  std::string out;  // stdout and stderr together
};

// Runs `shardsim ARGS` in the repository root (the tests' working folder).
inline Result RunShardsim(const std::string& args) {
  Result r;
  const std::string command = absl::StrCat(SHARDSIM_BINARY, " ", args, " 2>&1");
  FILE* pipe = popen(command.c_str(), "r");
  std::array<char, 4096> buffer;
  size_t n;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0) {
    r.out.append(buffer.data(), n);
  }
  const int status = pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

// Writes `text` as DIR/sweep.textproto, runs `shardsim sweep` on it with
// --out=DIR/OUT and `flags`, expects `expected_exit`, and returns the table
// written.
inline std::string SweepTable(const TempDir& dir, const std::string& text, const std::string& out,
                              const std::string& flags, int expected_exit = 0) {
  WriteFile(dir / "sweep.textproto", text);
  const Result r = RunShardsim(
      absl::StrCat("sweep ", dir / "sweep.textproto", " --out=", dir / out, " ", flags));
  EXPECT_EQ(r.exit_code, expected_exit) << r.out;
  return ReadFile(dir / out);
}

}  // namespace shardsim::testing

#endif  // SHARDSIM_TESTS_RUN_SHARDSIM_H_
