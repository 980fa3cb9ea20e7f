#include "sim/base/fork_pool.h"

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
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace shardsim {
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

// ---- Children ---------------------------------------------------------------

struct Child {
  int64_t task = 0;
  pid_t pid = -1;
  int out_fd = -1;  // its stdout: the bytes its work returns
  int err_fd = -1;  // its stderr: why it failed, if it did
  std::string out;
  std::string err;
  Clock::time_point deadline = Clock::time_point::max();
  bool timed_out = false;
};

// Forks a child that runs `work`, its stdout and stderr on pipes.
absl::StatusOr<Child> Spawn(const std::function<std::string()>& work) {
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
    const std::string bytes = work();
    std::cout.flush();
    std::cerr.flush();
    std::fflush(nullptr);
    bool sent = true;
    for (size_t at = 0; at < bytes.size();) {
      const ssize_t n = ::write(STDOUT_FILENO, bytes.data() + at, bytes.size() - at);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        sent = false;
        break;
      }
      at += static_cast<size_t>(n);
    }
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
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot start a worker process: ", std::strerror(fork_errno)));
  }
  Child c;
  c.pid = pid;
  c.out_fd = out[0];
  c.err_fd = err[0];
  return c;
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
  return std::string(absl::StripAsciiWhitespace(text.substr(0, text.find('\n'))));
}

absl::StatusOr<ChildOutcome> Reap(Child& c) {
  int status = 0;
  while (::waitpid(c.pid, &status, 0) < 0) {
    if (errno != EINTR) {
      return absl::InternalError(absl::StrCat("waitpid: ", std::strerror(errno)));
    }
  }
  ChildOutcome outcome;
  if (c.timed_out) {
    outcome.timed_out = true;
    outcome.failure = "ran past its time limit";
    return outcome;
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    outcome.ok = true;
    outcome.output = std::move(c.out);
    return outcome;
  }
  const std::string error = FirstLine(c.err);
  if (WIFSIGNALED(status)) {
    outcome.failure = absl::StrCat("killed by signal ", WTERMSIG(status));
  } else {
    outcome.failure = absl::StrCat("exit status ", WEXITSTATUS(status),
                                   error.empty() ? "" : ": ", error);
  }
  return outcome;
}

void StopAll(std::vector<Child>& running) {
  for (Child& c : running) ::kill(c.pid, SIGTERM);
  for (Child& c : running) {
    int status;
    while (::waitpid(c.pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (c.out_fd >= 0) ::close(c.out_fd);
    if (c.err_fd >= 0) ::close(c.err_fd);
  }
  running.clear();
}

}  // namespace

absl::StatusOr<int> RunInChildren(
    int64_t count, const std::function<std::string(int64_t)>& work,
    const std::function<absl::Status(int64_t, const ChildOutcome&)>& done,
    const ForkPoolOptions& options) {
  if (options.jobs < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--jobs must be at least 1, got ", options.jobs));
  }
  StopSignals signals;
  std::vector<Child> running;
  int64_t next = 0;
  while (signals.signal() == 0 && (next < count || !running.empty())) {
    while (signals.signal() == 0 && next < count &&
           running.size() < static_cast<size_t>(options.jobs)) {
      const int64_t task = next++;
      absl::StatusOr<Child> c = Spawn([&work, task] { return work(task); });
      if (!c.ok()) {
        StopAll(running);
        return c.status();
      }
      c->task = task;
      if (options.timeout_s > 0) {
        c->deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                         std::chrono::duration<double>(options.timeout_s));
      }
      running.push_back(std::move(*c));
    }
    if (running.empty()) continue;

    std::vector<pollfd> fds;
    fds.push_back({signals.wake_fd(), POLLIN, 0});
    for (const Child& c : running) {
      if (c.out_fd >= 0) fds.push_back({c.out_fd, POLLIN, 0});
      if (c.err_fd >= 0) fds.push_back({c.err_fd, POLLIN, 0});
    }
    // Wake for the caller's clock, and when the first child's time is up.
    int timeout_ms = options.tick ? options.tick_ms : -1;
    const Clock::time_point now = Clock::now();
    for (const Child& c : running) {
      if (c.deadline == Clock::time_point::max()) continue;
      const auto left =
          std::chrono::ceil<std::chrono::milliseconds>(c.deadline - now).count();
      const int ms = static_cast<int>(std::clamp<int64_t>(left, 0, 60'000));
      timeout_ms = timeout_ms < 0 ? ms : std::min(timeout_ms, ms);
    }
    if (::poll(fds.data(), fds.size(), timeout_ms) < 0 && errno != EINTR) {
      StopAll(running);
      return absl::InternalError(absl::StrCat("poll: ", std::strerror(errno)));
    }
    for (const pollfd& p : fds) {
      if (p.revents == 0) continue;
      if (p.fd == signals.wake_fd()) {
        char drain[64];
        while (::read(p.fd, drain, sizeof(drain)) > 0) {
        }
        continue;
      }
      for (Child& c : running) {
        if (p.fd == c.out_fd) Drain(&c.out_fd, &c.out);
        if (p.fd == c.err_fd) Drain(&c.err_fd, &c.err);
      }
    }
    // A child past its deadline is killed and its pipes closed: what it
    // wrote so far is not a result.
    const Clock::time_point after = Clock::now();
    for (Child& c : running) {
      if (after < c.deadline || (c.out_fd < 0 && c.err_fd < 0)) continue;
      ::kill(c.pid, SIGKILL);
      c.timed_out = true;
      for (int* fd : {&c.out_fd, &c.err_fd}) {
        if (*fd >= 0) ::close(*fd);
        *fd = -1;
      }
    }
    for (size_t i = 0; i < running.size();) {
      Child& c = running[i];
      if (c.out_fd >= 0 || c.err_fd >= 0) {
        ++i;
        continue;
      }
      absl::StatusOr<ChildOutcome> outcome = Reap(c);
      const int64_t task = c.task;
      running.erase(running.begin() + static_cast<std::ptrdiff_t>(i));
      if (!outcome.ok()) {
        StopAll(running);
        return outcome.status();
      }
      // A child killed because the pool is stopping has no outcome.
      if (signals.signal() != 0 && !outcome->ok) continue;
      const absl::Status status = done(task, *outcome);
      if (!status.ok()) {
        StopAll(running);
        return status;
      }
    }
    if (options.tick) options.tick();
  }
  const int stopped_by = signals.signal();
  if (stopped_by != 0) StopAll(running);
  return stopped_by;
}

absl::StatusOr<ChildOutcome> RunInChild(const std::function<std::string()>& work) {
  ChildOutcome result;
  absl::StatusOr<int> stopped = RunInChildren(
      1, [&work](int64_t) { return work(); },
      [&result](int64_t, const ChildOutcome& outcome) {
        result = outcome;
        return absl::OkStatus();
      },
      {});
  if (!stopped.ok()) return stopped.status();
  if (*stopped != 0) {
    return absl::AbortedError(absl::StrCat("stopped by signal ", *stopped));
  }
  return result;
}

}  // namespace shardsim
