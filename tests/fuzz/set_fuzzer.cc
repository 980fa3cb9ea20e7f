// libFuzzer target: --set. Each line of the input is one override, applied
// to the default scenario as `shardsim run scenarios/default.textproto --set
// LINE ...` would; then every check runs on the result.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "sim/scenario/scenario.h"
#include "tests/fuzz/fuzz_sandbox.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const shardsim::fuzz::Sandbox& sandbox = shardsim::fuzz::Sandbox::Get();
  const std::string text(reinterpret_cast<const char*>(data), size);
  // A NUL cannot come from a command line; a line break can (quoted), and
  // must be refused as one line of error, so keep "\r" and split on "\n"
  // only when the first byte says so.
  if (text.find('\0') != std::string::npos) return 0;
  std::vector<std::string> overrides;
  if (!text.empty() && text[0] == '#') {
    overrides.push_back(text.substr(1));
  } else {
    overrides = absl::StrSplit(text, '\n', absl::SkipEmpty());
  }
  (void)shardsim::scenario::LoadScenario(
      sandbox.root() + "/scenarios/default.textproto", overrides);
  return 0;
}
