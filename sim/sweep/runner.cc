#include "sim/sweep/runner.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <iterator>
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
#include "sim/base/status_macros.h"
#include "sim/scenario/overrides.h"
#include "sim/scenario/scenario.h"

namespace shardsim::sweep {
namespace {

using Clock = std::chrono::steady_clock;

// ---- Signals ----------------------------------------------------------------
// The handler only records the signal and wakes poll() through a pipe; the
// loop does the rest outside the handler.

volatile sig_atomic_t g_signal = 0;
int g_wake_fd = -1;

void OnSignal(int signo) {
  g_signal = signo;
  const int saved = errno;
  const char byte = 1;
  if (g_wake_fd >= 0) (void)!::write(g_wake_fd, &byte, 1);
  errno = saved;
}

constexpr int kStopSignals[] = {SIGINT, SIGTERM, SIGHUP};

// Installs the handlers for its lifetime and restores the old ones after.
class StopSignals {
 public:
  StopSignals() {
    if (::pipe2(pipe_, O_CLOEXEC | O_NONBLOCK) != 0) {
      pipe_[0] = pipe_[1] = -1;
    }
    g_signal = 0;
    g_wake_fd = pipe_[1];
    struct sigaction action;
    std::memset(&action, 0, sizeof(action));
    action.sa_handler = OnSignal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    for (size_t i = 0; i < std::size(kStopSignals); ++i) {
      ::sigaction(kStopSignals[i], &action, &old_[i]);
    }
  }
  ~StopSignals() {
    for (size_t i = 0; i < std::size(kStopSignals); ++i) {
      ::sigaction(kStopSignals[i], &old_[i], nullptr);
    }
    g_wake_fd = -1;
    for (int fd : pipe_) {
      if (fd >= 0) ::close(fd);
    }
  }
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  int wake_fd() const { return pipe_[0]; }
  int signal() const { return g_signal; }

 private:
  int pipe_[2];
  struct sigaction old_[std::size(kStopSignals)];
};

// ---- Workers ----------------------------------------------------------------

struct Worker {
  const scenario::SweepPoint* point = nullptr;
  pid_t pid = -1;
  int out_fd = -1;  // its stdout: the JSON report
  int err_fd = -1;  // its stderr: the one-line error of an invalid point
  std::string out;
  std::string err;
  Clock::time_point deadline = Clock::time_point::max();
  bool timed_out = false;  // killed for running past the deadline
};

// Forks a worker that runs `run_point` on the point, its stdout and stderr
// on pipes. The child dies with the parent (PR_SET_PDEATHSIG), so a sweep
// killed with SIGKILL leaves no workers running on.
absl::StatusOr<Worker> Spawn(const PointRunner& run_point,
                             const std::string& scenario,
                             const std::vector<std::string>& overrides) {
  int out[2];
  int err[2];
  if (::pipe2(out, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
  }
  if (::pipe2(err, O_CLOEXEC) != 0) {
    ::close(out[0]);
    ::close(out[1]);
    return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
  }
  // Nothing buffered may be written twice, once by each process.
  std::cout.flush();
  std::cerr.flush();
  std::fflush(nullptr);
  // Signals wait until the child has put the default handlers back: ours
  // would wake the parent's loop from inside the child.
  sigset_t all;
  sigset_t old;
  sigfillset(&all);
  ::sigprocmask(SIG_SETMASK, &all, &old);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    for (int signo : kStopSignals) ::signal(signo, SIG_DFL);
    ::sigprocmask(SIG_SETMASK, &old, nullptr);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);  // the parent died already
    ::dup2(out[1], STDOUT_FILENO);
    ::dup2(err[1], STDERR_FILENO);
    ::close(out[0]);
    ::close(out[1]);
    ::close(err[0]);
    ::close(err[1]);
    absl::StatusOr<v1::PointResult> ran = run_point(scenario, overrides);
    v1::PointResult result;
    if (ran.ok()) {
      result = *std::move(ran);
    } else {
      result.set_error_code(static_cast<int>(ran.status().code()));
      result.set_error(std::string(ran.status().message()));
    }
    std::cout.flush();
    std::cerr.flush();
    std::fflush(nullptr);
    const bool sent = result.SerializeToFileDescriptor(STDOUT_FILENO);
    // No destructors or atexit handlers: they belong to the parent's state.
    ::_exit(sent ? 0 : 1);
  }
  const int fork_errno = errno;
  ::sigprocmask(SIG_SETMASK, &old, nullptr);
  ::close(out[1]);
  ::close(err[1]);
  if (pid < 0) {
    ::close(out[0]);
    ::close(err[0]);
    return absl::ResourceExhaustedError(absl::StrCat(
        "cannot start a worker process: ", std::strerror(fork_errno)));
  }
  Worker w;
  w.pid = pid;
  w.out_fd = out[0];
  w.err_fd = err[0];
  return w;
}

// Reads what is there; closes the descriptor at end of file.
void Drain(int* fd, std::string* into) {
  char buffer[65536];
  const ssize_t n = ::read(*fd, buffer, sizeof(buffer));
  if (n > 0) {
    into->append(buffer, static_cast<size_t>(n));
  } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
    ::close(*fd);
    *fd = -1;
  }
}

std::string FirstLine(absl::string_view text) {
  return std::string(
      absl::StripAsciiWhitespace(text.substr(0, text.find('\n'))));
}

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
  absl::Status Start(const scenario::SweepPoint& point);
  absl::Status Finish(Worker& w);
  absl::Status Write(const scenario::SweepPoint& point, const Row& row);
  std::string InterconnectOf(const scenario::SweepPoint& point);
  absl::StatusOr<ServeRowContext> ServeContextOf(
      const scenario::SweepPoint& point);
  void StopAll();
  void DrawProgress(bool force);

  const scenario::SweepSpec& spec_;
  const SweepOptions& options_;
  ResultsFile* file_;
  SweepSummary* summary_;
  StopSignals signals_;
  std::vector<Worker> running_;
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
  size_t next = 0;
  for (const scenario::SweepPoint* p : todo) to_run_ += p->skip_reason.empty();
  DrawProgress(true);
  while (signals_.signal() == 0 && (next < todo.size() || !running_.empty())) {
    while (signals_.signal() == 0 && next < todo.size() &&
           running_.size() < static_cast<size_t>(options_.jobs)) {
      const scenario::SweepPoint& point = *todo[next++];
      if (!point.skip_reason.empty()) {
        SHARDSIM_RETURN_IF_ERROR(Write(
            point, SkippedRow(identity_, point, point.skip_reason, "skipped",
                              command_)));
        continue;
      }
      SHARDSIM_RETURN_IF_ERROR(Start(point));
    }
    if (running_.empty()) continue;

    std::vector<pollfd> fds;
    fds.push_back({signals_.wake_fd(), POLLIN, 0});
    for (const Worker& w : running_) {
      if (w.out_fd >= 0) fds.push_back({w.out_fd, POLLIN, 0});
      if (w.err_fd >= 0) fds.push_back({w.err_fd, POLLIN, 0});
    }
    // With a progress bar, wake now and then so its clock moves; with a
    // time limit, when the first running worker's time is up.
    int timeout_ms = options_.progress ? 250 : -1;
    const Clock::time_point now = Clock::now();
    for (const Worker& w : running_) {
      if (w.deadline == Clock::time_point::max()) continue;
      const auto left =
          std::chrono::ceil<std::chrono::milliseconds>(w.deadline - now)
              .count();
      const int ms = static_cast<int>(std::clamp<int64_t>(left, 0, 60'000));
      timeout_ms = timeout_ms < 0 ? ms : std::min(timeout_ms, ms);
    }
    if (::poll(fds.data(), fds.size(), timeout_ms) < 0 && errno != EINTR) {
      StopAll();
      return absl::InternalError(absl::StrCat("poll: ", std::strerror(errno)));
    }
    for (const pollfd& p : fds) {
      if (p.revents == 0) continue;
      if (p.fd == signals_.wake_fd()) {
        char drain[64];
        while (::read(p.fd, drain, sizeof(drain)) > 0) {
        }
        continue;
      }
      for (Worker& w : running_) {
        if (p.fd == w.out_fd) Drain(&w.out_fd, &w.out);
        if (p.fd == w.err_fd) Drain(&w.err_fd, &w.err);
      }
    }
    // A worker past its deadline is killed and its pipes closed: what it
    // wrote so far is not a report. Finish() then writes the timeout row.
    const Clock::time_point after = Clock::now();
    for (Worker& w : running_) {
      if (after < w.deadline || (w.out_fd < 0 && w.err_fd < 0)) continue;
      ::kill(w.pid, SIGKILL);
      w.timed_out = true;
      for (int* fd : {&w.out_fd, &w.err_fd}) {
        if (*fd >= 0) ::close(*fd);
        *fd = -1;
      }
    }
    for (size_t i = 0; i < running_.size();) {
      Worker& w = running_[i];
      if (w.out_fd >= 0 || w.err_fd >= 0) {
        ++i;
        continue;
      }
      const absl::Status status = Finish(w);
      ++run_done_;
      running_.erase(running_.begin() + static_cast<std::ptrdiff_t>(i));
      if (!status.ok()) {
        StopAll();
        return status;
      }
    }
    DrawProgress(false);
  }
  if (signals_.signal() != 0) {
    summary_->interrupted_by = signals_.signal();
    StopAll();
  }
  DrawProgress(true);
  if (options_.progress) std::fputs("\n", stderr);
  return absl::OkStatus();
}

absl::Status Run::Start(const scenario::SweepPoint& point) {
  SHARDSIM_ASSIGN_OR_RETURN(
      Worker w,
      Spawn(options_.run_point, spec_.base_scenario, spec_.Overrides(point)));
  w.point = &point;
  if (options_.timeout_s > 0) {
    w.deadline =
        Clock::now() + std::chrono::duration_cast<Clock::duration>(
                           std::chrono::duration<double>(options_.timeout_s));
  }
  running_.push_back(std::move(w));
  return absl::OkStatus();
}

absl::Status Run::Finish(Worker& w) {
  int status = 0;
  while (::waitpid(w.pid, &status, 0) < 0) {
    if (errno != EINTR) {
      return absl::InternalError(
          absl::StrCat("waitpid: ", std::strerror(errno)));
    }
  }
  const scenario::SweepPoint& point = *w.point;
  const std::string error = FirstLine(w.err);
  std::string failure;
  if (w.timed_out) {
    return Write(point,
                 SkippedRow(identity_, point,
                            absl::StrFormat("ran longer than --timeout=%gs",
                                            options_.timeout_s),
                            "timeout", command_));
  }
  v1::PointResult result;
  const bool serve = command_ == v1::Sweep::SERVE;
  const bool exited = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  // A result without the report this sweep's rows need is unreadable too.
  if (exited && result.ParseFromString(w.out) &&
      (result.error_code() != 0 ||
       (serve ? result.has_serve() : result.has_report()))) {
    if (result.error_code() != 0) {
      // The error of an invalid scenario: a result of the sweep.
      return Write(point, SkippedRow(identity_, point, result.error(),
                                     "skipped", command_));
    }
    if (serve) {
      SHARDSIM_ASSIGN_OR_RETURN(const ServeRowContext context,
                                ServeContextOf(point));
      return Write(point,
                   ServeResultRow(identity_, point, result.serve(), context));
    }
    return Write(point, ResultRow(identity_, point, result.report(),
                                  InterconnectOf(point)));
  }
  if (exited) {
    failure = "unreadable result";
  } else if (WIFSIGNALED(status)) {
    failure = absl::StrCat("killed by signal ", WTERMSIG(status));
  } else {
    failure = absl::StrCat("exit status ", WEXITSTATUS(status),
                           error.empty() ? "" : ": ", error);
  }
  // A worker killed because the sweep is stopping is not a failure.
  if (signals_.signal() != 0) return absl::OkStatus();
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
// with the cluster's links. LoadSweep read the base and the point ran with these overrides, so an
// error here means the base file changed under the sweep: it stops rather
// than write a row whose load is not the one that ran.
absl::StatusOr<ServeRowContext> Run::ServeContextOf(
    const scenario::SweepPoint& point) {
  if (!base_.has_value()) {
    v1::Scenario base;
    FieldLocator ignored;
    SHARDSIM_RETURN_IF_ERROR(
        LoadTextProto(spec_.base_scenario, &base, &ignored));
    base_ = std::move(base);
  }
  v1::Scenario scenario = *base_;
  for (const std::string& text : spec_.Overrides(point)) {
    SHARDSIM_ASSIGN_OR_RETURN(const scenario::Override o,
                              scenario::ParseOverride(text));
    SHARDSIM_RETURN_IF_ERROR(scenario::ApplyOverride(o, &scenario));
  }
  return sweep::ServeContextOf(scenario, InterconnectOf(point));
}

void Run::StopAll() {
  for (Worker& w : running_) ::kill(w.pid, SIGTERM);
  for (Worker& w : running_) {
    int status;
    while (::waitpid(w.pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (w.out_fd >= 0) ::close(w.out_fd);
    if (w.err_fd >= 0) ::close(w.err_fd);
  }
  running_.clear();
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
                        TableColumns(spec.columns, spec.sweep.command()),
                        IdentityOf(spec), points));
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
