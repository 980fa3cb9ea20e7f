// Small helpers the shardsim commands share: exit codes, the one-line error,
// and flag parsing for commands that read their own arguments.
#ifndef SHARDSIM_SIM_CLI_CLI_UTIL_H_
#define SHARDSIM_SIM_CLI_CLI_UTIL_H_

#include <iostream>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"

namespace shardsim::cli {

constexpr int kExitError = 1;
constexpr int kExitUsage = 2;

inline int Fail(const absl::Status& status) {
  std::cerr << "shardsim: " << status.message() << "\n";
  return kExitError;
}

// "--name=value" or "--name value" at argv[*i]; advances *i past the value.
inline bool TakeFlag(int argc, char** argv, int* i, const std::string& name,
              std::string* value) {
  const std::string arg = argv[*i];
  if (arg == name && *i + 1 < argc) {
    *value = argv[++*i];
    return true;
  }
  if (absl::StartsWith(arg, name + "=")) {
    *value = arg.substr(name.size() + 1);
    return true;
  }
  return false;
}

}  // namespace shardsim::cli

#endif  // SHARDSIM_SIM_CLI_CLI_UTIL_H_
