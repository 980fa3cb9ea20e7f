// Running a sweep: every point of a sweep file (or of one shard of it) in
// parallel worker processes, each row written to the result file as soon as
// its point finishes.
//
// Why processes: SimGrid holds one engine and one clock per process, so each
// point runs in a child of this process, at most `jobs` at a time. The child
// is forked, not exec'd: starting the shardsim binary afresh (loading
// SimGrid, Protobuf and Abseil, building SimGrid's engine) takes about 33 ms
// of a 37 ms point, and a fork of a process that has done it once takes well
// under one (sim/base/fork_pool.h runs the children; --find-max-rate and
// `shardsim plan` use it too). The child calls SweepOptions::run_point and sends its result
// back on a pipe as a serialized v1::PointResult: the RunReport that
// `shardsim run BASE --set ...` would print (the ServeReport of `shardsim
// serve BASE --set ...` for a sweep with `command: SERVE`), or the status of an invalid
// point, which is a skipped row with that error as its reason (nothing is
// recognized by parsing text); skip rules are decided before anything is started. A worker that
// runs longer than SweepOptions::timeout_s is killed and its point is a row
// with status "timeout". A worker that crashes, or is killed by anything
// else, writes nothing: a re-run tries its point again.
//
// SIGINT, SIGTERM and SIGHUP stop the sweep: running workers are killed,
// finished rows stay in the file, and the same command resumes.
#ifndef SHARDSIM_SIM_SWEEP_RUNNER_H_
#define SHARDSIM_SIM_SWEEP_RUNNER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "sim/scenario/sweep_spec.h"
#include "sim/sweep/results.h"

namespace shardsim::sweep {

// Runs one point in a worker process: loads `scenario` with `overrides`
// (--set texts) and simulates it; returns the PointResult with its report
// (`report` for a RUN sweep, `serve` for a SERVE sweep), or the error that
// makes the point invalid (a skipped row with that reason). Called once per
// process, in a child forked for the point, so it may run a SimGrid
// simulation; the child sends the PointResult it is given back, serialized.
using PointRunner = std::function<absl::StatusOr<v1::PointResult>(
    const std::string& scenario, const std::vector<std::string>& overrides)>;

struct SweepOptions {
  PointRunner run_point;
  std::string out_path;  // the result file, created or resumed
  TableFormat format = TableFormat::kCsv;
  int jobs = 1;  // worker processes at once, at least 1
  // This run's slice, 1-based: the points whose index i has
  // i % num_shards == shard - 1. Round-robin, so every shard gets a fair
  // mix of cheap and expensive points.
  int shard = 1;
  int num_shards = 1;
  bool progress = false;  // redraw a progress bar on stderr (a terminal)
  // A point's worker running longer than this is killed and the point is a
  // "timeout" row; 0 means no limit.
  double timeout_s = 0;
};

struct SweepSummary {
  int64_t points = 0;        // points of this run (its shard)
  int64_t already_done = 0;  // rows found in the file at the start
  int64_t ok = 0;            // rows written by this run
  int64_t skipped = 0;
  int64_t timed_out = 0;  // rows of points stopped by timeout_s
  // Points whose worker crashed: no row, so a re-run retries them.
  int64_t failed = 0;
  // One line about the failed point with the lowest index (not the first
  // to fail, which depends on which worker the kernel schedules first).
  std::string first_failure;
  int interrupted_by = 0;  // the signal that stopped the run, 0 if none
  double seconds = 0;
};

// Parses "K/N" (1 <= K <= N). InvalidArgument otherwise.
absl::Status ParseShard(absl::string_view text, int* shard, int* num_shards);

// The points of shard `shard` of `num_shards`, by index.
std::vector<const scenario::SweepPoint*> ShardPoints(
    const scenario::SweepSpec& spec, int shard, int num_shards);

// Runs the points of `options.shard` that `options.out_path` does not hold
// yet and appends their rows. When every point has its row and nothing
// failed, the file is left in point order. Errors (the file cannot be
// opened, belongs to another sweep, or a worker cannot be started) are one
// line; an interrupted run is not an error: see SweepSummary.
absl::StatusOr<SweepSummary> RunSweep(const scenario::SweepSpec& spec,
                                      const SweepOptions& options);

}  // namespace shardsim::sweep

#endif  // SHARDSIM_SIM_SWEEP_RUNNER_H_
