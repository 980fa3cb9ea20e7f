// The calibration-side commands of the shardsim binary, each parsing its own
// arguments (argv[1] is the command name):
//   shardsim ops SCENARIO [--set ...] [--tokens=N] [--context=N] [--format=text|json|csv]
//   shardsim calibrate [--calibration=DIR] [--out=DIR]
//   shardsim fidelity [--calibration=DIR] [--no-end-to-end]
// Each returns the process exit status (0 ok, 1 error, 2 bad command line).
#ifndef SHARDSIM_SIM_CLI_COMMANDS_H_
#define SHARDSIM_SIM_CLI_COMMANDS_H_

namespace shardsim::cli {

int OpsMain(int argc, char** argv);
int CalibrateMain(int argc, char** argv);
int FidelityMain(int argc, char** argv);

}  // namespace shardsim::cli

#endif  // SHARDSIM_SIM_CLI_COMMANDS_H_
