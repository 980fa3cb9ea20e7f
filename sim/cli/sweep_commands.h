// The sweep commands of the shardsim binary, taking the parsed command line
// (command_line.h):
//   shardsim sweep SWEEP --out=FILE [--jobs=N] [--format=csv|jsonl]
//                  [--shard=K/N] [--timeout=SECONDS]
//   shardsim merge --out=FILE SHARD_FILE...
// Each returns the process exit status: 0 ok, 1 error, 2 bad command line,
// 128 + the signal when a sweep was interrupted (its rows are kept).
#ifndef SHARDSIM_SIM_CLI_SWEEP_COMMANDS_H_
#define SHARDSIM_SIM_CLI_SWEEP_COMMANDS_H_

#include "sim/cli/command_line.h"

namespace shardsim::cli {

int SweepMain(const Args& args);
int MergeMain(const Args& args);

}  // namespace shardsim::cli

#endif  // SHARDSIM_SIM_CLI_SWEEP_COMMANDS_H_
