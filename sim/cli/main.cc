// The shardsim command line.
//
//   shardsim run SCENARIO [--set ...] [--format=text|json|csv] [--trace=FILE]
//                [--trace-ops=STEPS]
//   shardsim memory SCENARIO [--set field.path=value ...] [--format=text|json]
//   shardsim validate FILE...
//   shardsim sweep SWEEP --out=FILE [--jobs=N] [--format=csv|jsonl] [--shard=K/N]
//   shardsim merge --out=FILE SHARD_FILE...      (both in sweep_commands.h)
//
// Every error is one line on stderr naming the file, line:column and field,
// with exit status 1 (2 for a malformed command line).
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "sim/cli/commands.h"
#include "sim/memory/ledger.h"
#include "sim/report/format.h"
#include "sim/scenario/scenario.h"

#ifdef SHARDSIM_SIMULATOR
#include "sim/cli/sweep_commands.h"
#include "sim/engine/simulator.h"
#include "sim/engine/disagg_driver.h"
#include "sim/engine/serving_driver.h"
#include "sim/engine/static_batch.h"
#include "sim/serving/requests.h"
#endif

namespace shardsim {
namespace {

constexpr char kUsage[] =
    "usage: shardsim COMMAND ...\n"
    "  run SCENARIO [--set field.path=value ...] [--format=text|json|csv] [--trace=FILE]\n"
    "      [--trace-ops=STEPS]  (the first STEPS steps op by op in the trace)\n"
    "      replay prefill and decode on the simulated cluster: latency,\n"
    "      throughput, communication, peak memory per GPU\n"
    "  serve SCENARIO [--set field.path=value ...] [--format=text|json] [--requests=FILE]\n"
    "      a stream of requests (the scenario's serving block) through continuous\n"
    "      batching: TTFT, TPOT, ITL, E2E percentiles, goodput, KV cache, preemptions\n"
    "  memory SCENARIO [--set field.path=value ...] [--format=text|json]\n"
    "      per-GPU memory breakdown: weights, KV cache, activations, buffers\n"
    "  ops SCENARIO [--set ...] [--tokens=N] [--context=N] [--format=text|json|csv]\n"
    "      one layer on one GPU, an op a row: FLOPs, bytes, time, what bounds it\n"
    "  calibrate [--calibration=DIR] [--out=DIR]\n"
    "      fit efficiency profiles and collective tuning to measurements\n"
    "  fidelity [--calibration=DIR] [--no-end-to-end] [--format=text|json]\n"
    "      predict every measurement in DIR and print the error per category\n"
    "  sweep SWEEP --out=FILE [--jobs=N] [--format=csv|jsonl] [--shard=K/N]\n"
    "      every point of a sweep file in parallel, a row each, resumable\n"
    "  merge --out=FILE SHARD_FILE...\n"
    "      join the result files of a sweep's shards, in point order\n"
    "  validate FILE...\n"
    "      parse and check model, topology, GPU catalog and scenario files\n";

constexpr int kExitError = 1;
constexpr int kExitUsage = 2;

struct Args {
  std::vector<std::string> positional;
  std::vector<std::string> overrides;
  std::string format = "text";
  std::string trace;
  std::string trace_ops;  // steps traced op by op
  std::string requests;   // serve: the per-request table
};

// Parses the words after the command. Returns false (after printing why) on
// an unknown flag or a flag missing its value.
bool ParseArgs(int argc, char** argv, Args* args) {
  for (int i = 2; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--set" || arg == "--format" || arg == "--trace") {
      if (i + 1 >= argc) {
        std::cerr << "shardsim: " << arg << " needs a value\n";
        return false;
      }
      const std::string value = argv[++i];
      if (arg == "--set") args->overrides.push_back(value);
      if (arg == "--format") args->format = value;
      if (arg == "--trace") args->trace = value;
    } else if (absl::StartsWith(arg, "--trace=")) {
      args->trace = arg.substr(8);
      if (args->trace.empty()) {
        std::cerr << "shardsim: --trace= needs a file name\n";
        return false;
      }
    } else if (absl::StartsWith(arg, "--requests=")) {
      args->requests = arg.substr(11);
      if (args->requests.empty()) {
        std::cerr << "shardsim: --requests= needs a file name\n";
        return false;
      }
    } else if (absl::StartsWith(arg, "--trace-ops=")) {
      args->trace_ops = arg.substr(12);
    } else if (absl::StartsWith(arg, "--set=")) {
      args->overrides.push_back(arg.substr(6));
    } else if (absl::StartsWith(arg, "--format=")) {
      args->format = arg.substr(9);
    } else if (absl::StartsWith(arg, "-") && arg != "-") {
      std::cerr << "shardsim: unknown option " << arg << "\n" << kUsage;
      return false;
    } else {
      args->positional.push_back(arg);
    }
  }
  return true;
}

int Fail(const absl::Status& status) {
  std::cerr << "shardsim: " << status.message() << "\n";
  return kExitError;
}

int RunMemory(const Args& args) {
  if (args.positional.size() != 1) {
    std::cerr << "shardsim memory: expected one SCENARIO file\n" << kUsage;
    return kExitUsage;
  }
  if (args.format != "text" && args.format != "json") {
    std::cerr << "shardsim memory: --format must be text or json, got '"
              << args.format << "'\n";
    return kExitUsage;
  }
  absl::StatusOr<scenario::LoadedScenario> loaded =
      scenario::LoadScenario(args.positional[0], args.overrides);
  if (!loaded.ok()) return Fail(loaded.status());
  const v1::MemoryReport report = memory::ComputeMemoryReport(*loaded, loaded->scenario.workload());
  if (args.format == "json") {
    absl::StatusOr<std::string> json = report::ToJson(report);
    if (!json.ok()) return Fail(json.status());
    std::cout << *json;
  } else {
    std::cout << report::MemoryText(*loaded, report);
  }
  // Not fitting is a result, not an error: exit 0 either way.
  return 0;
}

#ifdef SHARDSIM_SIMULATOR
int RunRun(const Args& args) {
  if (args.positional.size() != 1) {
    std::cerr << "shardsim run: expected one SCENARIO file\n" << kUsage;
    return kExitUsage;
  }
  if (args.format != "text" && args.format != "json" && args.format != "csv") {
    std::cerr << "shardsim run: --format must be text, json or csv, got '"
              << args.format << "'\n";
    return kExitUsage;
  }
  // Every input is checked before SimGrid sees any of it.
  absl::StatusOr<scenario::LoadedScenario> loaded =
      scenario::LoadScenario(args.positional[0], args.overrides);
  if (!loaded.ok()) return Fail(loaded.status());
  engine::StaticBatchOptions options;
  options.trace_path = args.trace;
  if (!args.trace_ops.empty() &&
      (!absl::SimpleAtoi(args.trace_ops, &options.detailed_steps) ||
       options.detailed_steps < 0)) {
    std::cerr << "shardsim run: --trace-ops takes a number of steps, got '"
              << args.trace_ops << "'\n";
    return kExitUsage;
  }
  absl::StatusOr<v1::RunReport> report = engine::RunStaticBatch(*loaded, loaded->scenario.workload(), options);
  if (!report.ok()) return Fail(report.status());
  if (args.format == "json") {
    absl::StatusOr<std::string> json = report::ToJson(*report);
    if (!json.ok()) return Fail(json.status());
    std::cout << *json;
  } else if (args.format == "csv") {
    std::cout << report::RunCsv(*report);
  } else {
    std::cout << report::RunText(*report);
  }
  return 0;
}

int RunServe(const Args& args) {
  if (args.positional.size() != 1) {
    std::cerr << "shardsim serve: expected one SCENARIO file\n" << kUsage;
    return kExitUsage;
  }
  if (args.format != "text" && args.format != "json") {
    std::cerr << "shardsim serve: --format must be text or json, got '" << args.format << "'\n";
    return kExitUsage;
  }
  absl::StatusOr<scenario::LoadedScenario> loaded =
      scenario::LoadScenario(args.positional[0], args.overrides);
  if (!loaded.ok()) return Fail(loaded.status());
  const v1::Serving& serving = loaded->scenario.serving();
  absl::Status checked = serving::CheckServing(serving, loaded->where);
  if (!checked.ok()) return Fail(checked);
  absl::StatusOr<std::unique_ptr<serving::RequestSource>> source =
      serving::MakeSource(serving, loaded->path);
  if (!source.ok()) return Fail(source.status());
  engine::ServingOptions options;
  options.requests_path = args.requests;
  absl::StatusOr<v1::ServeReport> report =
      loaded->pools.empty()
          ? engine::RunServing(*loaded, serving, **source, options)
          : engine::RunDisaggregated(*loaded, loaded->pools, loaded->scenario.kv_transfer(),
                                     serving, **source, options);
  if (!report.ok()) return Fail(report.status());
  if (args.format == "json") {
    absl::StatusOr<std::string> json = report::ToJson(*report);
    if (!json.ok()) return Fail(json.status());
    std::cout << *json;
  } else {
    std::cout << report::ServeText(*report);
  }
  return 0;
}

#endif  // SHARDSIM_SIMULATOR

int RunValidate(const Args& args) {
  if (args.positional.empty()) {
    std::cerr << "shardsim validate: expected at least one FILE\n" << kUsage;
    return kExitUsage;
  }
  int status = 0;
  for (const std::string& path : args.positional) {
    absl::StatusOr<std::string> summary = scenario::ValidateFile(path);
    if (summary.ok()) {
      std::cout << path << ": ok: " << *summary << "\n";
    } else {
      std::cerr << "shardsim: " << summary.status().message() << "\n";
      status = kExitError;
    }
  }
  return status;
}

#ifndef SHARDSIM_SIMULATOR
// The commands that simulate (run, ops, sweep, merge) live in shardsim-sim,
// beside this binary: it links SimGrid, whose libraries (ns-3 among them)
// take about 25 ms to load, which `memory` and `validate` need not pay.
int ExecSimulator(char** argv) {
  char self[4096];
  const ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  std::string path = n > 0 ? std::string(self, static_cast<size_t>(n)) : argv[0];
  path = path.substr(0, path.rfind('/') + 1) + "shardsim-sim";
  execv(path.c_str(), argv);
  std::cerr << "shardsim: cannot run " << path << ": " << std::strerror(errno) << "\n";
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
  if (argc < 2 || std::string(argv[1]) == "-h" ||
      std::string(argv[1]) == "--help" || std::string(argv[1]) == "help") {
    std::cout << shardsim::kUsage;
    return argc < 2 ? shardsim::kExitUsage : 0;
  }
  const std::string command = argv[1];
  if (command == "calibrate") return shardsim::cli::CalibrateMain(argc, argv);
  if (command == "fidelity") return shardsim::cli::FidelityMain(argc, argv);
#ifdef SHARDSIM_SIMULATOR
  if (command == "ops") return shardsim::cli::OpsMain(argc, argv);
  if (command == "sweep") return shardsim::cli::SweepMain(argc, argv);
  if (command == "merge") return shardsim::cli::MergeMain(argc, argv);
#else
  if (command == "run" || command == "serve" || command == "ops" || command == "sweep" ||
      command == "merge") {
    return shardsim::ExecSimulator(argv);
  }
#endif
  shardsim::Args args;
  if (!shardsim::ParseArgs(argc, argv, &args)) return shardsim::kExitUsage;
#ifdef SHARDSIM_SIMULATOR
  if (command == "run") return shardsim::RunRun(args);
  if (command == "serve") return shardsim::RunServe(args);
#endif
  if (command == "memory") return shardsim::RunMemory(args);
  if (command == "validate") return shardsim::RunValidate(args);
  std::cerr << "shardsim: unknown command '" << command << "'\n"
            << shardsim::kUsage;
  return shardsim::kExitUsage;
}
