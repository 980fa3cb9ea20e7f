// The sweep commands of the shardsim binary, each parsing its own arguments
// (argv[1] is the command name):
//   shardsim sweep SWEEP --out=FILE [--jobs=N] [--format=csv|jsonl]
//                  [--shard=K/N]
//   shardsim merge --out=FILE SHARD_FILE...
// Each returns the process exit status: 0 ok, 1 error, 2 bad command line,
// 128 + the signal when a sweep was interrupted (its rows are kept).
#ifndef SHARDSIM_SIM_CLI_SWEEP_COMMANDS_H_
#define SHARDSIM_SIM_CLI_SWEEP_COMMANDS_H_

namespace shardsim::cli {

int SweepMain(int argc, char** argv);
int MergeMain(int argc, char** argv);

}  // namespace shardsim::cli

#endif  // SHARDSIM_SIM_CLI_SWEEP_COMMANDS_H_
