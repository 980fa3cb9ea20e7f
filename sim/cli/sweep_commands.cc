#include "sim/cli/sweep_commands.h"

#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "sim/cli/cli_util.h"
#include "sim/engine/disagg_driver.h"
#include "sim/engine/serving_driver.h"
#include "sim/engine/static_batch.h"
#include "sim/report/format.h"
#include "sim/scenario/scenario.h"
#include "sim/scenario/sweep_spec.h"
#include "sim/serving/requests.h"
#include "sim/sweep/results.h"
#include "sim/sweep/runner.h"

namespace shardsim::cli {
namespace {

constexpr char kSweepUsage[] =
    "usage: shardsim sweep SWEEP --out=FILE [--jobs=N] [--format=csv|jsonl] "
    "[--shard=K/N] [--timeout=SECONDS]\n"
    "  runs every point of SWEEP in N worker processes (default: one per\n"
    "  core), a row per point appended to FILE as it finishes; the same\n"
    "  command resumes an interrupted sweep. --format defaults to FILE's\n"
    "  extension (.jsonl: JSON Lines, else CSV); --shard=K/N runs the points\n"
    "  whose index i has i % N == K - 1. --timeout stops a point that runs\n"
    "  longer and writes it as a row with status timeout (default: none).\n"
    "  A SWEEP with `command: SERVE` runs `shardsim serve` at each point.\n";

constexpr char kMergeUsage[] =
    "usage: shardsim merge --out=FILE SHARD_FILE...\n"
    "  joins the result files of a sweep's shards into FILE, in point order;\n"
    "  exits 1 (after writing FILE) when points are missing or a row is torn\n";

int Usage(const std::string& why, const char* usage) {
  std::cerr << "shardsim: " << why << "\n" << usage;
  return kExitUsage;
}

// Splits argv[2..] into "--name" -> value (from "--name=value" or "--name
// value") for the names in `flags`, and the positional words. Returns false
// with `error` set on an unknown flag or a missing value.
bool ParseFlags(int argc, char** argv, const std::vector<std::string>& flags,
                std::vector<std::pair<std::string, std::string>>* values,
                std::vector<std::string>* positional, std::string* error) {
  for (int i = 2; i < argc; ++i) {
    const std::string arg = argv[i];
    if (!absl::StartsWith(arg, "-") || arg == "-") {
      positional->push_back(arg);
      continue;
    }
    const size_t eq = arg.find('=');
    const std::string name = arg.substr(0, eq);
    if (std::find(flags.begin(), flags.end(), name) == flags.end()) {
      *error = absl::StrFormat("unknown option %s", arg);
      return false;
    }
    if (eq != std::string::npos) {
      values->emplace_back(name, arg.substr(eq + 1));
    } else if (i + 1 < argc) {
      values->emplace_back(name, argv[++i]);
    } else {
      *error = absl::StrFormat("%s needs a value", name);
      return false;
    }
  }
  return true;
}

// One point, in the worker process the sweep forked for it: what `shardsim
// run SCENARIO --set ...` computes, or the error that makes it invalid.
absl::StatusOr<v1::PointResult> RunPoint(
    const std::string& scenario_path,
    const std::vector<std::string>& overrides) {
  absl::StatusOr<scenario::LoadedScenario> loaded =
      scenario::LoadScenario(scenario_path, overrides);
  if (!loaded.ok()) return loaded.status();
  absl::StatusOr<v1::RunReport> report =
      engine::RunStaticBatch(*loaded, loaded->scenario.workload(), {});
  if (!report.ok()) return report.status();
  v1::PointResult result;
  *result.mutable_report() = *std::move(report);
  return result;
}

// One point of a `command: SERVE` sweep: what `shardsim serve SCENARIO
// --set ...` computes (the same steps as that command, without
// --requests), or the error that makes it invalid.
absl::StatusOr<v1::PointResult> ServePoint(
    const std::string& scenario_path,
    const std::vector<std::string>& overrides) {
  absl::StatusOr<scenario::LoadedScenario> loaded =
      scenario::LoadScenario(scenario_path, overrides);
  if (!loaded.ok()) return loaded.status();
  const v1::Serving& serving = loaded->scenario.serving();
  const absl::Status checked = serving::CheckServing(serving, loaded->where);
  if (!checked.ok()) return checked;
  absl::StatusOr<std::unique_ptr<serving::RequestSource>> source =
      serving::MakeSource(serving, loaded->path);
  if (!source.ok()) return source.status();
  // As `serve` does: a scenario with pools runs disaggregated.
  absl::StatusOr<v1::ServeReport> report =
      loaded->pools.empty()
          ? engine::RunServing(*loaded, serving, **source, {})
          : engine::RunDisaggregated(*loaded, loaded->pools,
                                     loaded->scenario.kv_transfer(), serving,
                                     **source, {});
  if (!report.ok()) return report.status();
  v1::PointResult result;
  *result.mutable_serve() = *std::move(report);
  return result;
}

}  // namespace

int SweepMain(int argc, char** argv) {
  std::vector<std::pair<std::string, std::string>> flags;
  std::vector<std::string> positional;
  std::string error;
  if (!ParseFlags(argc, argv,
                  {"--out", "--jobs", "--format", "--shard", "--timeout"},
                  &flags, &positional, &error)) {
    return Usage(error, kSweepUsage);
  }
  if (positional.size() != 1) {
    return Usage("sweep: expected one SWEEP file", kSweepUsage);
  }
  sweep::SweepOptions options;
  long cores = ::sysconf(_SC_NPROCESSORS_ONLN);
  options.jobs = cores > 0 ? static_cast<int>(cores) : 1;
  std::string format;
  for (const auto& [name, value] : flags) {
    if (name == "--out") options.out_path = value;
    if (name == "--format") format = value;
    if (name == "--jobs" &&
        (!absl::SimpleAtoi(value, &options.jobs) || options.jobs < 1)) {
      return Usage(
          absl::StrFormat("--jobs %s: expected a positive number", value),
          kSweepUsage);
    }
    if (name == "--timeout" &&
        (!absl::SimpleAtod(value, &options.timeout_s) ||
         !(options.timeout_s >= 0) || options.timeout_s > 1e9)) {
      return Usage(absl::StrFormat("--timeout %s: expected seconds, e.g. "
                                   "--timeout=60 (0: no limit)",
                                   value),
                   kSweepUsage);
    }
    if (name == "--shard") {
      const absl::Status status =
          sweep::ParseShard(value, &options.shard, &options.num_shards);
      if (!status.ok())
        return Usage(std::string(status.message()), kSweepUsage);
    }
  }
  if (options.out_path.empty()) {
    return Usage("sweep: --out=FILE is required", kSweepUsage);
  }
  options.format = sweep::FormatForPath(options.out_path);
  if (!format.empty()) {
    absl::StatusOr<sweep::TableFormat> parsed = sweep::ParseTableFormat(format);
    if (!parsed.ok())
      return Usage(std::string(parsed.status().message()), kSweepUsage);
    options.format = *parsed;
  }
  options.progress = ::isatty(STDERR_FILENO) == 1;

  absl::StatusOr<scenario::SweepSpec> spec = scenario::LoadSweep(positional[0]);
  if (!spec.ok()) return Fail(spec.status());
  options.run_point =
      spec->sweep.command() == v1::Sweep::SERVE ? ServePoint : RunPoint;
  absl::StatusOr<sweep::SweepSummary> summary = sweep::RunSweep(*spec, options);
  if (!summary.ok()) return Fail(summary.status());
  const sweep::SweepSummary& s = *summary;
  const int64_t rows = s.already_done + s.ok + s.skipped + s.timed_out;
  if (s.interrupted_by != 0) {
    std::cerr << absl::StrFormat(
        "shardsim: interrupted: %d of %d points in %s; run the same command "
        "again to resume\n",
        rows, s.points, options.out_path);
    return 128 + s.interrupted_by;
  }
  if (s.failed > 0) {
    std::cerr << absl::StrFormat(
        "shardsim: %d points failed and have no row (first: %s); run the same "
        "command again to retry them\n",
        s.failed, s.first_failure);
    return kExitError;
  }
  std::cerr << absl::StrFormat(
      "sweep %s%s: %d points in %s: %d ok, %d skipped, %s%d already there; "
      "%.1f s\n",
      spec->name,
      options.num_shards > 1
          ? absl::StrFormat(" shard %d/%d", options.shard, options.num_shards)
          : "",
      rows, options.out_path, s.ok, s.skipped,
      s.timed_out > 0 ? absl::StrFormat("%d timed out, ", s.timed_out) : "",
      s.already_done, s.seconds);
  return 0;
}

int MergeMain(int argc, char** argv) {
  std::vector<std::pair<std::string, std::string>> flags;
  std::vector<std::string> inputs;
  std::string error;
  if (!ParseFlags(argc, argv, {"--out"}, &flags, &inputs, &error)) {
    return Usage(error, kMergeUsage);
  }
  std::string out;
  for (const auto& [name, value] : flags) out = value;
  if (out.empty()) return Usage("merge: --out=FILE is required", kMergeUsage);
  if (inputs.empty()) {
    return Usage("merge: expected at least one SHARD_FILE", kMergeUsage);
  }
  absl::StatusOr<sweep::MergeSummary> merged = sweep::MergeResults(inputs, out);
  if (!merged.ok()) return Fail(merged.status());
  const sweep::MergeSummary& m = *merged;
  if (m.missing.empty() && m.torn.empty()) {
    std::cerr << absl::StrFormat("merged %d rows from %d files into %s\n",
                                 m.rows, inputs.size(), out);
    return 0;
  }
  // What is wrong, on one line: a scheduler's log shows it whole.
  constexpr size_t kShown = 10;
  std::string problems;
  if (!m.missing.empty()) {
    std::vector<int64_t> shown(
        m.missing.begin(),
        m.missing.begin() +
            static_cast<std::ptrdiff_t>(std::min(kShown, m.missing.size())));
    absl::StrAppendFormat(&problems, "%d of %d points have no row (%s%s)",
                          m.missing.size(), m.points,
                          absl::StrJoin(shown, ", "),
                          m.missing.size() > kShown ? ", ..." : "");
  }
  if (!m.torn.empty()) {
    absl::StrAppendFormat(&problems, "%storn last rows left out at %s",
                          problems.empty() ? "" : "; ",
                          absl::StrJoin(m.torn, ", "));
  }
  std::cerr << absl::StrFormat(
      "shardsim: merged %d rows into %s, but %s: are shards still running "
      "or missing? re-run them and merge again\n",
      m.rows, out, problems);
  return kExitError;
}

}  // namespace shardsim::cli
