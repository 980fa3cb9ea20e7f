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
#include "sim/cli/serve_scenario.h"
#include "sim/engine/static_batch.h"
#include "sim/report/format.h"
#include "sim/scenario/scenario.h"
#include "sim/scenario/sweep_spec.h"
#include "sim/sweep/results.h"
#include "sim/sweep/runner.h"

namespace shardsim::cli {
namespace {

// One point, in the worker process the sweep forked for it: what `shardsim
// run SCENARIO --set ...` computes, or the error that makes it invalid.
absl::StatusOr<v1::PointResult> RunPoint(
    const std::string& scenario_path,
    const std::vector<std::string>& overrides) {
  absl::StatusOr<scenario::LoadedScenario> loaded =
      scenario::LoadScenario(scenario_path, overrides);
  if (!loaded.ok()) return loaded.status();
  if (absl::Status plain = CheckNoPools(*loaded, "run"); !plain.ok()) return plain;
  absl::StatusOr<v1::RunReport> report =
      engine::RunStaticBatch(*loaded, loaded->scenario.workload(), {});
  if (!report.ok()) return report.status();
  // As `run` says what ran: the row's what_ran column.
  *report->mutable_what_ran() = report::DescribeWhatRan(*loaded, overrides);
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
  // As `serve` does (a scenario with pools runs disaggregated).
  absl::StatusOr<v1::ServeReport> report =
      ServeScenario(*loaded, loaded->scenario.serving());
  if (!report.ok()) return report.status();
  *report->mutable_what_ran() = report::DescribeWhatRan(*loaded, overrides);
  v1::PointResult result;
  *result.mutable_serve() = *std::move(report);
  return result;
}

}  // namespace

int SweepMain(const Args& args) {
  sweep::SweepOptions options;
  const long cores = ::sysconf(_SC_NPROCESSORS_ONLN);
  options.jobs = args.jobs > 0 ? args.jobs : cores > 0 ? static_cast<int>(cores) : 1;
  options.timeout_s = args.timeout_s;
  options.out_path = args.out;
  if (!args.shard.empty()) {
    const absl::Status status = sweep::ParseShard(args.shard, &options.shard, &options.num_shards);
    if (!status.ok()) return Usage("sweep", std::string(status.message()));
  }
  options.format = sweep::FormatForPath(options.out_path);
  if (!args.format.empty()) {
    absl::StatusOr<sweep::TableFormat> parsed = sweep::ParseTableFormat(args.format);
    if (!parsed.ok()) return Usage("sweep", std::string(parsed.status().message()));
    options.format = *parsed;
  }
  options.progress = ::isatty(STDERR_FILENO) == 1;

  absl::StatusOr<scenario::SweepSpec> spec = scenario::LoadSweep(args.files[0]);
  if (!spec.ok()) return Fail("sweep", spec.status());
  options.run_point =
      spec->sweep.command() == v1::Sweep::SERVE ? ServePoint : RunPoint;
  absl::StatusOr<sweep::SweepSummary> summary = sweep::RunSweep(*spec, options);
  if (!summary.ok()) return Fail("sweep", summary.status());
  const sweep::SweepSummary& s = *summary;
  const int64_t rows = s.already_done + s.ok + s.skipped + s.timed_out;
  if (s.interrupted_by != 0) {
    std::cerr << absl::StrFormat(
        "shardsim sweep: interrupted: %d of %d points in %s; run the same command "
        "again to resume\n",
        rows, s.points, options.out_path);
    return 128 + s.interrupted_by;
  }
  if (s.failed > 0) {
    std::cerr << absl::StrFormat(
        "shardsim sweep: %d points failed and have no row (first: %s); run the same "
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

int MergeMain(const Args& args) {
  const std::vector<std::string>& inputs = args.files;
  const std::string& out = args.out;
  absl::StatusOr<sweep::MergeSummary> merged = sweep::MergeResults(inputs, out);
  if (!merged.ok()) return Fail("merge", merged.status());
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
      "shardsim merge: merged %d rows into %s, but %s: are shards still running "
      "or missing? re-run them and merge again\n",
      m.rows, out, problems);
  return kExitError;
}

}  // namespace shardsim::cli
