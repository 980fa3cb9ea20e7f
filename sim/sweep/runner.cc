#include "sim/sweep/runner.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "google/protobuf/util/json_util.h"
#include "sim/base/config_file.h"
#include "sim/base/fork_pool.h"
#include "sim/base/status_macros.h"
#include "sim/scenario/overrides.h"
#include "sim/scenario/scenario.h"

namespace shardsim::sweep {
namespace {

using Clock = std::chrono::steady_clock;

// The kinds of link a cluster has, in the order its links list them
// ("nvlink", "pcie+upi"), or "none" for a single GPU.
std::string Interconnect(const hardware::Cluster& cluster) {
  std::vector<std::string> kinds;
  for (const hardware::ClusterLink& link : cluster.links) {
    if (link.kind.empty()) continue;
    if (std::find(kinds.begin(), kinds.end(), link.kind) == kinds.end()) {
      kinds.push_back(link.kind);
    }
  }
  return kinds.empty() ? "none" : absl::StrJoin(kinds, "+");
}

// Everything RunSweep() keeps while the workers run.
class Run {
 public:
  Run(const scenario::SweepSpec& spec, const SweepOptions& options,
      ResultsFile* file, SweepSummary* summary)
      : spec_(spec),
        options_(options),
        file_(file),
        summary_(summary),
        start_(Clock::now()) {}

  absl::Status Go(const std::vector<const scenario::SweepPoint*>& todo);

 private:
  absl::Status Finish(const scenario::SweepPoint& point, const ChildOutcome& outcome);
  absl::Status Write(const scenario::SweepPoint& point, const Row& row);
  std::string InterconnectOf(const scenario::SweepPoint& point);
  absl::StatusOr<ServeRowContext> ServeContextOf(const scenario::SweepPoint& point);
  void DrawProgress(bool force);

  const scenario::SweepSpec& spec_;
  const SweepOptions& options_;
  ResultsFile* file_;
  SweepSummary* summary_;
  std::map<std::string, std::string> interconnects_;  // by topology overrides
  const v1::Sweep::Command command_ = spec_.sweep.command();
  std::vector<std::string> columns_ = TableColumns(spec_.columns, command_);
  // The base scenario as its file writes it, once read: a serve row's
  // offered load and SLO are the point's overrides applied to it.
  std::optional<v1::Scenario> base_;
  SweepIdentity identity_ = IdentityOf(spec_);
  int64_t first_failed_point_ = -1;
  // Points that need a worker, and how many of them have finished: the time
  // left is theirs (rows that skip rules decide take no time).
  int64_t to_run_ = 0;
  int64_t run_done_ = 0;
  Clock::time_point start_;
  Clock::time_point last_draw_{};
};

absl::Status Run::Go(const std::vector<const scenario::SweepPoint*>& todo) {
  // Points a skip rule decides take no worker: their rows come first.
  std::vector<const scenario::SweepPoint*> to_run;
  for (const scenario::SweepPoint* p : todo) {
    if (p->skip_reason.empty()) {
      to_run.push_back(p);
    } else {
      SHARDSIM_RETURN_IF_ERROR(Write(*p, SkippedRow(identity_, *p, p->skip_reason, "skipped", command_)));
    }
  }
  to_run_ = static_cast<int64_t>(to_run.size());
  DrawProgress(true);
  ForkPoolOptions pool;
  pool.jobs = options_.jobs;
  pool.timeout_s = options_.timeout_s;
  if (options_.progress) {
    // Wake now and then so the bar's clock moves.
    pool.tick = [this] { DrawProgress(false); };
    pool.tick_ms = 250;
  }
  // The child loads and simulates the point and sends back a PointResult:
  // the report, or the error that makes the point invalid.
  auto work = [&](int64_t i) {
    const scenario::SweepPoint& point = *to_run[static_cast<size_t>(i)];
    absl::StatusOr<v1::PointResult> ran =
        options_.run_point(spec_.base_scenario, spec_.Overrides(point));
    v1::PointResult result;
    if (ran.ok()) {
      result = *std::move(ran);
    } else {
      result.set_error_code(static_cast<int>(ran.status().code()));
      result.set_error(std::string(ran.status().message()));
    }
    return result.SerializeAsString();
  };
  auto done = [&](int64_t i, const ChildOutcome& outcome) {
    ++run_done_;
    return Finish(*to_run[static_cast<size_t>(i)], outcome);
  };
  SHARDSIM_ASSIGN_OR_RETURN(
      const int stopped_by,
      RunInChildren(static_cast<int64_t>(to_run.size()), work, done, pool));
  summary_->interrupted_by = stopped_by;
  DrawProgress(true);
  if (options_.progress) std::fputs("\n", stderr);
  return absl::OkStatus();
}

absl::Status Run::Finish(const scenario::SweepPoint& point, const ChildOutcome& outcome) {
  if (outcome.timed_out) {
    return Write(point,
                 SkippedRow(identity_, point,
                            absl::StrFormat("ran longer than --timeout=%gs",
                                            options_.timeout_s),
                            "timeout", command_));
  }
  v1::PointResult result;
  std::string failure = outcome.failure;
  const bool serve = command_ == v1::Sweep::SERVE;
  // A result without the report this sweep's rows need is unreadable too.
  if (outcome.ok && result.ParseFromString(outcome.output) &&
      (result.error_code() != 0 || (serve ? result.has_serve() : result.has_report()))) {
    if (result.error_code() != 0) {
      // The error of an invalid scenario: a result of the sweep.
      return Write(point, SkippedRow(identity_, point, result.error(), "skipped", command_));
    }
    if (serve) {
      SHARDSIM_ASSIGN_OR_RETURN(const ServeRowContext context, ServeContextOf(point));
      return Write(point, ServeResultRow(identity_, point, result.serve(), context));
    }
    return Write(point, ResultRow(identity_, point, result.report(), InterconnectOf(point)));
  }
  if (outcome.ok) failure = "unreadable result";
  ++summary_->failed;
  if (first_failed_point_ < 0 || point.index < first_failed_point_) {
    first_failed_point_ = point.index;
    summary_->first_failure =
        absl::StrCat("point ", point.index, " (", point.key, "): ", failure);
  }
  return absl::OkStatus();
}

absl::Status Run::Write(const scenario::SweepPoint& point, const Row& row) {
  SHARDSIM_RETURN_IF_ERROR(
      file_->Append(point, FormatRow(columns_, row, options_.format)));
  const std::string& status = row[2].text;
  ++(status == "ok"        ? summary_->ok
     : status == "timeout" ? summary_->timed_out
                           : summary_->skipped);
  return absl::OkStatus();
}

// Loads the point's scenario once per distinct topology (the run already
// showed that it loads) to name the links its cluster has.
std::string Run::InterconnectOf(const scenario::SweepPoint& point) {
  const std::vector<std::string> overrides = spec_.Overrides(point);
  std::vector<std::string> topology;
  for (const std::string& o : overrides) {
    if (absl::StartsWith(o, "topology")) topology.push_back(o);
  }
  const std::string key = absl::StrJoin(topology, ";");
  auto it = interconnects_.find(key);
  if (it != interconnects_.end()) return it->second;
  absl::StatusOr<scenario::LoadedScenario> loaded =
      scenario::LoadScenario(spec_.base_scenario, overrides);
  const std::string name = loaded.ok() ? Interconnect(loaded->cluster) : "";
  interconnects_.emplace(key, name);
  return name;
}

// The serving block of the point's scenario (the base with the point's
// overrides; the block is inline in the scenario, never in another file),
// with the cluster's links. LoadSweep read the base and the point ran with
// these overrides, so an error here means the base file changed under the
// sweep: it stops rather than write a row whose load is not the one that ran.
absl::StatusOr<ServeRowContext> Run::ServeContextOf(const scenario::SweepPoint& point) {
  if (!base_.has_value()) {
    v1::Scenario base;
    FieldLocator ignored;
    SHARDSIM_RETURN_IF_ERROR(LoadTextProto(spec_.base_scenario, &base, &ignored));
    base_ = std::move(base);
  }
  v1::Scenario scenario = *base_;
  for (const std::string& text : spec_.Overrides(point)) {
    SHARDSIM_ASSIGN_OR_RETURN(const scenario::Override o, scenario::ParseOverride(text));
    SHARDSIM_RETURN_IF_ERROR(scenario::ApplyOverride(o, &scenario));
  }
  return sweep::ServeContextOf(scenario, InterconnectOf(point));
}

std::string FormatDuration(double seconds) {
  const int64_t s = static_cast<int64_t>(seconds + 0.5);
  if (s >= 3600) {
    return absl::StrFormat("%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60);
  }
  return absl::StrFormat("%d:%02d", s / 60, s % 60);
}

// "sweep NAME [#########-----------] 412/1000  41%  37.2 points/s  0:16 left"
void Run::DrawProgress(bool force) {
  if (!options_.progress) return;
  const Clock::time_point now = Clock::now();
  if (!force && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  const int64_t total = summary_->points;
  const int64_t ran =
      summary_->ok + summary_->skipped + summary_->timed_out + summary_->failed;
  const int64_t done = summary_->already_done + ran;
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  constexpr int kWidth = 24;
  const int filled =
      total > 0 ? static_cast<int>(kWidth * done / total) : kWidth;
  std::string line = absl::StrFormat(
      "\rsweep %s [%s%s] %d/%d %3d%%", spec_.name, std::string(filled, '#'),
      std::string(kWidth - filled, '-'), done, total,
      total > 0 ? static_cast<int>(100 * done / total) : 100);
  if (ran > 0 && elapsed > 0) {
    absl::StrAppendFormat(&line, "  %.1f points/s",
                          static_cast<double>(ran) / elapsed);
  }
  if (run_done_ > 0 && elapsed > 0) {
    const double seconds_per_run = elapsed / static_cast<double>(run_done_);
    absl::StrAppendFormat(
        &line, "  %s left",
        FormatDuration(seconds_per_run *
                       static_cast<double>(to_run_ - run_done_)));
  }
  line += "\x1b[K";  // clear what a longer earlier line left
  std::fputs(line.c_str(), stderr);
  std::fflush(stderr);
}

}  // namespace

absl::Status ParseShard(absl::string_view text, int* shard, int* num_shards) {
  const std::vector<absl::string_view> parts = absl::StrSplit(text, '/');
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], shard) ||
      !absl::SimpleAtoi(parts[1], num_shards) || *num_shards < 1 ||
      *shard < 1 || *shard > *num_shards) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--shard ", text, ": expected K/N with 1 <= K <= N, e.g. --shard 2/8"));
  }
  return absl::OkStatus();
}

std::vector<const scenario::SweepPoint*> ShardPoints(
    const scenario::SweepSpec& spec, int shard, int num_shards) {
  std::vector<const scenario::SweepPoint*> points;
  for (const scenario::SweepPoint& p : spec.points) {
    if (p.index % num_shards == shard - 1) points.push_back(&p);
  }
  return points;
}

absl::StatusOr<SweepSummary> RunSweep(const scenario::SweepSpec& spec,
                                      const SweepOptions& options) {
  const Clock::time_point start = Clock::now();
  if (!options.run_point) {
    return absl::InvalidArgumentError("no way to run a point was given");
  }
  if (!(options.timeout_s >= 0) || options.timeout_s > 1e9) {
    return absl::InvalidArgumentError(
        absl::StrCat("--timeout must be a number of seconds (0 for none), got ",
                     options.timeout_s));
  }
  if (options.jobs < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--jobs must be at least 1, got ", options.jobs));
  }
  const std::vector<const scenario::SweepPoint*> points =
      ShardPoints(spec, options.shard, options.num_shards);
  SHARDSIM_ASSIGN_OR_RETURN(
      std::unique_ptr<ResultsFile> file,
      ResultsFile::Open(options.out_path, options.format,
                        TableColumns(spec.columns, spec.sweep.command()), IdentityOf(spec),
                        points));
  SweepSummary summary;
  summary.points = static_cast<int64_t>(points.size());
  std::vector<const scenario::SweepPoint*> todo;
  for (const scenario::SweepPoint* p : points) {
    if (file->rows().count(p->key) == 0) todo.push_back(p);
  }
  summary.already_done = summary.points - static_cast<int64_t>(todo.size());
  {
    Run run(spec, options, file.get(), &summary);
    SHARDSIM_RETURN_IF_ERROR(run.Go(todo));
  }
  if (summary.interrupted_by == 0 && summary.failed == 0) {
    SHARDSIM_RETURN_IF_ERROR(file->SortByPoint());
  }
  summary.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return summary;
}

}  // namespace shardsim::sweep
