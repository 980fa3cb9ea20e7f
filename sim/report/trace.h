// A Chrome / Perfetto trace (the JSON "Trace Event Format"), which
// ui.perfetto.dev and chrome://tracing open: one process per GPU with a
// compute track and a communication track, and a memory counter per GPU
// (`run --trace`); or, through the generic events below, any processes,
// tracks, async slices and counters (`serve --trace`).
//
// Two ways to write: keep every event and Write() them at the end (the
// trace of a static batch, whose size is known), or Open() a file first and
// each event goes to it as it comes, nothing kept, until Close() (a serving
// run of any length in constant memory; the file grows with the run).
#ifndef SHARDSIM_SIM_REPORT_TRACE_H_
#define SHARDSIM_SIM_REPORT_TRACE_H_

#include <cstdint>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace shardsim::report {

// `text` as a JSON string (quotes and backslashes escaped), for an Args
// value that is text rather than a number.
std::string Quote(const std::string& text);

class TraceWriter {
 public:
  enum Track { kCompute = 0, kComm = 1 };

  // Names the process of `gpu` ("GPU 3 (node 0, tp 3, stage 0)").
  void NameGpu(int gpu, const std::string& name);
  // A number shown with a slice in the trace viewer ("flops", "bytes").
  using Arg = std::pair<std::string, double>;

  // A slice on `track` of `gpu` from `start_s` lasting `duration_s`, with
  // `args`. Start and end are each rounded to the trace's nanoseconds and
  // the duration is their difference, so a slice that starts where another
  // ends (start_s equal to the other's start_s + duration_s) never overlaps
  // it by rounding.
  void Slice(int gpu, Track track, const std::string& name, double start_s,
             double duration_s, const std::vector<Arg>& args = {});
  // The value of `gpu`'s memory counter from `time_s` on.
  void Memory(int gpu, double time_s, int64_t bytes);

  // Writes the trace to `path`; Unavailable names the path if it cannot.
  absl::Status Write(const std::string& path) const;

  // Streaming: from Open() on, every event is written to `path` as it is
  // added (nothing is kept) until Close() ends the file. Unavailable names
  // the path if it cannot be written.
  absl::Status Open(const std::string& path);
  absl::Status Close();

  // Generic events. `args` are (key, JSON value) pairs, values written as
  // given (numbers from absl::StrCat). Times are rounded to whole
  // microseconds, a slice's start and end each, and its duration is their
  // difference: slices that follow each other on a track never overlap by
  // rounding.
  using Args = std::vector<std::pair<std::string, std::string>>;
  void NameProcess(int pid, const std::string& name);
  void NameThread(int pid, int tid, const std::string& name);
  // A slice on track (pid, tid) from `start_s` to `end_s`.
  void Span(int pid, int tid, const std::string& name, double start_s, double end_s,
            const Args& args = {});
  // Nested async slices of one id ("b" / "e") and instants inside them
  // ("n"): a request's life on its own track.
  void AsyncBegin(int pid, const std::string& category, int64_t id, const std::string& name,
                  double time_s, const Args& args = {});
  void AsyncEnd(int pid, const std::string& category, int64_t id, const std::string& name,
                double time_s);
  void AsyncInstant(int pid, const std::string& category, int64_t id, const std::string& name,
                    double time_s);
  // A counter of process `pid`: each arg is a series, its value from
  // `time_s` on.
  void Counter(int pid, const std::string& name, double time_s, const Args& args);

 private:
  void Add(std::string event);

  std::vector<std::string> events_;  // one JSON object each, in order
  std::ofstream stream_;             // when open, events go here instead
  std::string stream_path_;
  bool first_streamed_ = true;
};

}  // namespace shardsim::report

#endif  // SHARDSIM_SIM_REPORT_TRACE_H_
