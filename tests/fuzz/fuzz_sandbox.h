// A folder that looks like the repository to the loaders, for the fuzz
// targets: models/, topologies/ and scenarios/ hold links to the
// repository's files, so an input can name "../models/llama3_8b.json" or
// lean on topologies/gpus.textproto, and each input is written beside them.
// Nothing is written into the repository. SHARDSIM_SOURCE_DIR is set by
// tests/fuzz/CMakeLists.txt.
#ifndef SHARDSIM_TESTS_FUZZ_FUZZ_SANDBOX_H_
#define SHARDSIM_TESTS_FUZZ_FUZZ_SANDBOX_H_

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace shardsim::fuzz {

class Sandbox {
 public:
  // The one sandbox of this process, made on first use and removed at exit.
  static const Sandbox& Get() {
    static const Sandbox* sandbox = new Sandbox();
    return *sandbox;
  }

  // Writes `data` to `folder`/`name` in the sandbox and returns its path.
  std::string Write(const std::string& folder, const std::string& name,
                    const uint8_t* data, size_t size) const {
    const std::string path = root_ + "/" + folder + "/" + name;
    std::ofstream(path, std::ios::binary | std::ios::trunc)
        .write(reinterpret_cast<const char*>(data),
               static_cast<std::streamsize>(size));
    return path;
  }

  const std::string& root() const { return root_; }

 private:
  Sandbox() {
    namespace fs = std::filesystem;
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern =
        std::string(tmp != nullptr ? tmp : "/tmp") + "/shardsim_fuzz_XXXXXX";
    root_ = ::mkdtemp(pattern.data());
    for (const char* folder : {"models", "topologies", "scenarios"}) {
      const fs::path mirror = fs::path(root_) / folder;
      fs::create_directory(mirror);
      for (const auto& entry :
           fs::directory_iterator(fs::path(SHARDSIM_SOURCE_DIR) / folder)) {
        fs::create_symlink(entry.path(), mirror / entry.path().filename());
      }
    }
    static std::string to_remove;
    to_remove = root_;
    std::atexit([] {
      std::error_code ignored;
      std::filesystem::remove_all(to_remove, ignored);
    });
  }

  std::string root_;
};

}  // namespace shardsim::fuzz

#endif  // SHARDSIM_TESTS_FUZZ_FUZZ_SANDBOX_H_
