// Files for tests that write inputs and read outputs as a user would: a
// fresh temporary folder per test, whole-file read and write, a repository
// file by absolute path, and a text's non-empty lines. Tests run from the
// repository root (tests/CMakeLists.txt sets the working folder), and ctest
// runs them in parallel processes, so nothing here writes into the source
// tree and each folder carries the process id.
#ifndef SHARDSIM_TESTS_TEST_UTIL_H_
#define SHARDSIM_TESTS_TEST_UTIL_H_

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace shardsim::testing {

// A folder made on construction (under the system's temporary folder, named
// `shardsim_<prefix>_<pid>_XXXXXX`) and removed with all it holds on
// destruction. `dir / "name"` is the path of a file in it.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "test") {
    std::string pattern = (std::filesystem::temp_directory_path() /
                           absl::StrCat("shardsim_", prefix, "_", ::getpid(), "_XXXXXX"))
                              .string();
    if (::mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~TempDir() {
    if (!path_.empty()) std::filesystem::remove_all(path_);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// The whole file, bytes as they are; empty when it cannot be read.
inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

inline void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// A file of the repository by absolute path, so that a file written in a
// TempDir can name it.
inline std::string Repo(const std::string& relative) {
  return (std::filesystem::current_path() / relative).string();
}

// The non-empty lines of `text`.
inline std::vector<std::string> Lines(const std::string& text) {
  return absl::StrSplit(text, '\n', absl::SkipEmpty());
}

}  // namespace shardsim::testing

#endif  // SHARDSIM_TESTS_TEST_UTIL_H_
