// A Chrome / Perfetto trace (the JSON "Trace Event Format"), which
// ui.perfetto.dev and chrome://tracing open: one process per GPU with a
// compute track and a communication track, and a memory counter per GPU.
#ifndef SHARDSIM_SIM_REPORT_TRACE_H_
#define SHARDSIM_SIM_REPORT_TRACE_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace shardsim::report {

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

 private:
  std::vector<std::string> events_;  // one JSON object each, in order
};

}  // namespace shardsim::report

#endif  // SHARDSIM_SIM_REPORT_TRACE_H_
