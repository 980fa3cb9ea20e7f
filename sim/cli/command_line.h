// The shardsim command line: every command and every flag, declared once
// (command_line.cc, with CLI11), parsed the same way by both binaries.
//
// `shardsim` parses the whole command line before it execs `shardsim-sim`
// for a simulating command, so help, --version and usage errors never load
// SimGrid; `shardsim-sim` parses the same argv again with the same
// declarations. SimGrid never sees argv (engine::Simulator gets only the
// program name).
//
// Exit statuses: 0 ok; 1 bad input (a file, a value a scenario cannot take);
// 2 a malformed command line (unknown command or flag, a flag's value of the
// wrong kind, a missing argument). Every error is one line on stderr that
// starts "shardsim CMD: " ("shardsim: " before a command is known).
//
// Adding a flag: a field in Args, and one line in the command's block of
// DeclareCommands (command_line.cc) naming the flag, the field and what it
// means; `shardsim help CMD` and `shardsim CMD --help` list it from there.
#ifndef SHARDSIM_SIM_CLI_COMMAND_LINE_H_
#define SHARDSIM_SIM_CLI_COMMAND_LINE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace shardsim::cli {

// What a command line asked for. Each command reads the fields its flags
// fill; the rest keep these defaults.
struct Args {
  std::string command;  // "run", "serve", ...
  // The positional words: SCENARIO (run, serve, memory, ops), SWEEP,
  // FILE... (validate), SHARD_FILE... (merge).
  std::vector<std::string> files;
  std::vector<std::string> overrides;  // --set field.path=value, in order
  std::string format;  // --format; empty: the command's default

  // run
  std::string trace;       // --trace: a Perfetto trace file
  int trace_ops = 0;       // --trace-ops: steps traced op by op
  // serve
  std::string requests;    // --requests: a row per request
  // ops
  int64_t tokens = 0;      // --tokens: 0 = the scenario's decode step
  int64_t context = 0;     // --context
  // calibrate, fidelity
  std::string calibration_dir = "topologies/calibration_data";
  bool no_end_to_end = false;
  // calibrate (default topologies), sweep and merge (required)
  std::string out;
  // sweep
  int jobs = 0;            // 0: one per core
  std::string shard;       // "K/N", checked by sweep::ParseShard
  double timeout_s = 0;    // 0: no limit
};

// The commands, in the order `shardsim help` lists them.
std::vector<std::string> CommandNames();

// True for the commands shardsim-sim runs (they load SimGrid).
bool IsSimulatorCommand(const std::string& command);

// Parses argv into `args`. Returns nullopt when the command should run;
// otherwise the process exit status, after printing what was asked (help
// or the version, on stdout: 0) or the one-line usage error (stderr: 2).
std::optional<int> ParseCommandLine(int argc, const char* const* argv, Args* args);

// `shardsim help` (no command) or `shardsim help CMD`: every flag of CMD
// with its meaning. Empty for an unknown command.
std::string HelpText(const std::string& command = "");

// "shardsim 0.1.0 (git <describe>)": the CMake project version and the
// commit the build was configured from ("unknown" outside a git checkout).
std::string VersionText();

}  // namespace shardsim::cli

#endif  // SHARDSIM_SIM_CLI_COMMAND_LINE_H_
