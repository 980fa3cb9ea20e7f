// The commands of the shardsim binaries, each taking the parsed command line
// (command_line.h) and returning the process exit status (0 ok, 1 error,
// 2 a command line that cannot be run as given):
//   shardsim ops SCENARIO [--set ...] [--tokens=N] [--context=N] [--format=text|json|csv]
//   shardsim calibrate [--calibration=DIR] [--out=DIR]
//   shardsim fidelity [--calibration=DIR] [--no-end-to-end] [--format=text|json]
#ifndef SHARDSIM_SIM_CLI_COMMANDS_H_
#define SHARDSIM_SIM_CLI_COMMANDS_H_

#include "sim/cli/command_line.h"

namespace shardsim::cli {

int OpsMain(const Args& args);
int CalibrateMain(const Args& args);
int FidelityMain(const Args& args);

}  // namespace shardsim::cli

#endif  // SHARDSIM_SIM_CLI_COMMANDS_H_
