// Running pieces of work in forked child processes, a few at a time.
//
// Why processes: SimGrid holds one engine and one clock per process, so
// every simulation (a sweep's point, a --find-max-rate probe, a planned
// candidate) runs in a child of its own. The child is forked, not exec'd: a
// fork of a process that has loaded the libraries and built SimGrid's engine
// starts in well under a millisecond, where a fresh binary takes ~33 ms.
//
// The child runs the work function, writes the bytes it returns (a
// serialized proto, by convention) to a pipe and leaves with _exit, so no
// destructor or atexit handler of the parent's state runs twice. It dies with
// the parent (PR_SET_PDEATHSIG). Its stderr comes back too: the first line
// says why a child that crashed or exited non-zero failed.
//
// SIGINT, SIGTERM and SIGHUP stop RunInChildren: the running children are
// killed, and it returns the signal so the caller can leave its results
// resumable. Which child finishes first depends on the kernel; callers key
// what they record by task index, never by the order of `done` calls.
#ifndef SHARDSIM_SIM_BASE_FORK_POOL_H_
#define SHARDSIM_SIM_BASE_FORK_POOL_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace shardsim {

// How a child ended.
struct ChildOutcome {
  bool ok = false;         // exited 0 after sending its bytes
  bool timed_out = false;  // killed for running past ForkPoolOptions::timeout_s
  std::string output;      // the bytes its work returned (when ok)
  // Why not ok: "killed by signal 9", "exit status 1: <first stderr line>".
  std::string failure;
};

struct ForkPoolOptions {
  int jobs = 1;          // children at once, at least 1
  double timeout_s = 0;  // a child running longer is killed; 0: no limit
  // Called in this process at least every tick_ms while children run (a
  // progress bar's clock); -1: only when something happens.
  std::function<void()> tick;
  int tick_ms = -1;
};

// Runs work(i) for i = 0 .. count-1, each in a forked child, at most
// options.jobs at once, started in index order. done(i, outcome) runs in
// this process as each child ends; an error from it stops the pool (the
// running children are killed) and is returned. Returns the signal that
// stopped the run (SIGINT, SIGTERM, SIGHUP: children it killed get no done
// call), or 0 when every task ran; an error when a child cannot be started.
absl::StatusOr<int> RunInChildren(
    int64_t count, const std::function<std::string(int64_t)>& work,
    const std::function<absl::Status(int64_t, const ChildOutcome&)>& done,
    const ForkPoolOptions& options);

// One piece of work in one child, waited for: RunInChildren with one task.
// A signal that stops it is an Aborted error.
absl::StatusOr<ChildOutcome> RunInChild(const std::function<std::string()>& work);

}  // namespace shardsim

#endif  // SHARDSIM_SIM_BASE_FORK_POOL_H_
