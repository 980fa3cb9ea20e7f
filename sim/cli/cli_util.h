// Small helpers the shardsim commands share: exit codes and the one-line
// error ("shardsim CMD: ..."; command_line.h says which status means what).
#ifndef SHARDSIM_SIM_CLI_CLI_UTIL_H_
#define SHARDSIM_SIM_CLI_CLI_UTIL_H_

#include <iostream>
#include <string>

#include "absl/status/status.h"

namespace shardsim::cli {

constexpr int kExitError = 1;
constexpr int kExitUsage = 2;

// Bad input: the status's one line after the command's prefix; exit 1.
inline int Fail(const std::string& command, const absl::Status& status) {
  std::cerr << "shardsim " << command << ": " << status.message() << "\n";
  return kExitError;
}

// A command line that parsed but cannot be run as given; exit 2.
inline int Usage(const std::string& command, const std::string& why) {
  std::cerr << "shardsim " << command << ": " << why << " (shardsim " << command
            << " --help lists its flags)\n";
  return kExitUsage;
}

}  // namespace shardsim::cli

#endif  // SHARDSIM_SIM_CLI_CLI_UTIL_H_
