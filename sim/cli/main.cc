// The shardsim command line: main() parses argv (command_line.h: every
// command and flag, with help and --version) and runs the command.
// `shardsim help` lists the commands, `shardsim CMD --help` a command's flags.
//
// Every error is one line on stderr, "shardsim CMD: " then the file,
// line:column and field, with exit status 1 (2 for a malformed command line).
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "sim/cli/cli_util.h"
#include "sim/cli/command_line.h"
#include "sim/base/config_file.h"
#include "sim/cli/commands.h"
#include "sim/memory/ledger.h"
#include "sim/memory/pool_memory.h"
#include "sim/report/format.h"
#include "sim/report/plan_format.h"
#include "sim/scenario/scenario.h"

#ifdef SHARDSIM_SIMULATOR
#include "sim/cli/plan_command.h"
#include "sim/cli/serve_scenario.h"
#include "sim/cli/sweep_commands.h"
#include "sim/engine/find_max_rate.h"
#include "sim/engine/serving_driver.h"
#include "sim/engine/simulator.h"
#include "sim/engine/static_batch.h"
#include "sim/serving/requests.h"
#endif

namespace shardsim {
namespace {

using cli::Args;
using cli::Fail;
using cli::kExitError;

// The command's --format, or its default.
std::string FormatOf(const Args& args) { return args.format.empty() ? "text" : args.format; }

int RunMemory(const Args& args) {
  absl::StatusOr<scenario::LoadedScenario> loaded =
      scenario::LoadScenario(args.files[0], args.overrides);
  if (!loaded.ok()) return Fail("memory", loaded.status());
  // With pools, each pool's plan on its own GPUs (sim/memory/pool_memory.h).
  v1::MemoryReport report =
      loaded->pools.empty()
          ? memory::ComputeMemoryReport(*loaded, loaded->scenario.workload())
          : memory::ComputePoolsMemoryReport(*loaded, loaded->pools, loaded->scenario.workload());
  *report.mutable_what_ran() = report::DescribeWhatRan(*loaded, args.overrides);
  if (FormatOf(args) == "json") {
    absl::StatusOr<std::string> json = report::ToJson(report);
    if (!json.ok()) return Fail("memory", json.status());
    std::cout << *json;
  } else {
    std::cout << report::MemoryText(*loaded, report);
  }
  // Not fitting is a result, not an error: exit 0 either way.
  return 0;
}

#ifdef SHARDSIM_SIMULATOR
// An output (--trace, --requests) that is one of the run's input files
// would be overwritten as the run writes it (--trace=the scenario file
// replaced the scenario with a trace): refused before anything runs.
absl::Status CheckOutputsAreNotInputs(const scenario::LoadedScenario& loaded,
                                      const Args& args) {
  const v1::Scenario& s = loaded.scenario;
  std::vector<std::pair<std::string, std::string>> inputs = {{"the scenario", loaded.path}};
  for (const auto& [field, file] :
       {std::pair<const char*, const std::string*>{"model_file", &s.model_file()},
        {"topology_file", &s.topology_file()},
        {"serving.trace.file", &s.serving().trace().file()}}) {
    if (!file->empty()) inputs.emplace_back(field, ResolveRelative(loaded.path, *file));
  }
  for (const auto& [flag, output] : {std::pair<const char*, const std::string*>{
                                         "--trace", &args.trace},
                                     {"--requests", &args.requests}}) {
    if (output->empty()) continue;
    for (const auto& [what, input] : inputs) {
      std::error_code error;
      if (std::filesystem::equivalent(*output, input, error)) {
        return absl::InvalidArgumentError(absl::StrCat(
            *output, ": ", flag, " would overwrite ", what,
            ", an input of this run: write it to another file"));
      }
    }
  }
  return absl::OkStatus();
}

int RunRun(const Args& args) {
  // Every input is checked before SimGrid sees any of it.
  absl::StatusOr<scenario::LoadedScenario> loaded =
      scenario::LoadScenario(args.files[0], args.overrides);
  if (!loaded.ok()) return Fail("run", loaded.status());
  if (absl::Status plain = cli::CheckNoPools(*loaded, "run"); !plain.ok()) {
    return Fail("run", plain);
  }
  const absl::Status outputs = CheckOutputsAreNotInputs(*loaded, args);
  if (!outputs.ok()) return Fail("run", outputs);
  engine::StaticBatchOptions options;
  options.trace_path = args.trace;
  options.detailed_steps = args.trace_ops;
  absl::StatusOr<v1::RunReport> report =
      engine::RunStaticBatch(*loaded, loaded->scenario.workload(), options);
  if (!report.ok()) return Fail("run", report.status());
  *report->mutable_what_ran() = report::DescribeWhatRan(*loaded, args.overrides);
  const std::string format = FormatOf(args);
  if (format == "json") {
    absl::StatusOr<std::string> json = report::ToJson(*report);
    if (!json.ok()) return Fail("run", json.status());
    std::cout << *json;
  } else if (format == "csv") {
    std::cout << report::RunCsv(*report);
  } else {
    std::cout << report::RunText(*report);
  }
  return 0;
}

int RunServe(const Args& args) {
  absl::StatusOr<scenario::LoadedScenario> loaded =
      scenario::LoadScenario(args.files[0], args.overrides);
  if (!loaded.ok()) return Fail("serve", loaded.status());
  const v1::Serving& serving = loaded->scenario.serving();
  absl::Status checked = serving::CheckServing(serving, loaded->where);
  if (!checked.ok()) return Fail("serve", checked);
  checked = CheckOutputsAreNotInputs(*loaded, args);
  if (!checked.ok()) return Fail("serve", checked);
  if (args.find_max_rate) {
    checked = serving::CheckRateSearch(serving, loaded->where);
    if (!checked.ok()) return Fail("serve", checked);
    if (!args.requests.empty() || !args.trace.empty() || !loaded->pools.empty()) {
      return cli::Usage("serve", "--find-max-rate runs many probes: it takes no --requests "
                                 "or --trace, and no scenario with pools yet");
    }
    absl::StatusOr<v1::MaxRateReport> found =
        engine::FindMaxRate(*loaded, serving, loaded->path);
    if (!found.ok()) return Fail("serve", found.status());
    if (FormatOf(args) == "json") {
      absl::StatusOr<std::string> json = report::ToJson(*found);
      if (!json.ok()) return Fail("serve", json.status());
      std::cout << *json;
    } else {
      std::cout << report::MaxRateText(*found);
    }
    return 0;
  }
  engine::ServingOptions options;
  options.requests_path = args.requests;
  options.trace_path = args.trace;
  absl::StatusOr<v1::ServeReport> report = cli::ServeScenario(*loaded, serving, options);
  if (!report.ok()) return Fail("serve", report.status());
  *report->mutable_what_ran() = report::DescribeWhatRan(*loaded, args.overrides);
  if (FormatOf(args) == "json") {
    absl::StatusOr<std::string> json = report::ToJson(*report);
    if (!json.ok()) return Fail("serve", json.status());
    std::cout << *json;
  } else {
    std::cout << report::ServeText(*report);
  }
  return 0;
}
#endif  // SHARDSIM_SIMULATOR

int RunValidate(const Args& args) {
  int status = 0;
  for (const std::string& path : args.files) {
    absl::StatusOr<std::string> summary = scenario::ValidateFile(path);
    if (summary.ok()) {
      std::cout << path << ": ok: " << *summary << "\n";
    } else {
      status = Fail("validate", summary.status());
    }
  }
  return status;
}

#ifndef SHARDSIM_SIMULATOR
// The commands that simulate (run, serve, ops, sweep, merge) live in
// shardsim-sim, beside this binary: it links SimGrid, whose libraries (ns-3
// among them) take about 25 ms to load, which `memory` and `validate` need
// not pay.
int ExecSimulator(char** argv) {
  char self[4096];
  const ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  std::string path = n > 0 ? std::string(self, static_cast<size_t>(n)) : argv[0];
  path = path.substr(0, path.rfind('/') + 1) + "shardsim-sim";
  execv(path.c_str(), argv);
  std::cerr << "shardsim " << argv[1] << ": cannot run " << path << ": "
            << std::strerror(errno) << "\n";
  return kExitError;
}
#endif

}  // namespace
}  // namespace shardsim

int main(int argc, char** argv) {
#ifdef SHARDSIM_SIMULATOR
  // SimGrid gets no command-line options (it would answer --help itself and
  // abort on a bad --cfg): shardsim configures it in code. Built once here so
  // sweep workers forked from this process inherit a ready engine.
  shardsim::engine::Simulator simulator(argv[0]);
#endif
  shardsim::cli::Args args;
  // shardsim parses the whole line before it hands a simulating command to
  // shardsim-sim, so help and usage errors never load SimGrid.
  if (std::optional<int> done = shardsim::cli::ParseCommandLine(argc, argv, &args)) {
    return *done;
  }
  const std::string& command = args.command;
#ifndef SHARDSIM_SIMULATOR
  if (shardsim::cli::IsSimulatorCommand(command)) return shardsim::ExecSimulator(argv);
#else
  if (command == "run") return shardsim::RunRun(args);
  if (command == "serve") return shardsim::RunServe(args);
  if (command == "ops") return shardsim::cli::OpsMain(args);
  if (command == "sweep") return shardsim::cli::SweepMain(args);
  if (command == "merge") return shardsim::cli::MergeMain(args);
  if (command == "plan") return shardsim::cli::PlanMain(args);
#endif
  if (command == "memory") return shardsim::RunMemory(args);
  if (command == "validate") return shardsim::RunValidate(args);
  if (command == "calibrate") return shardsim::cli::CalibrateMain(args);
  if (command == "fidelity") return shardsim::cli::FidelityMain(args);
  // Declared in command_line.cc but dispatched nowhere: a build mistake.
  std::cerr << "shardsim " << command << ": not run by this binary\n";
  return shardsim::cli::kExitError;
}
