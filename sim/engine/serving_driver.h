// The serving driver: a stream of requests through continuous batching.
//
// An arrival actor takes requests from a source in arrival order, at their
// arrival times, and a router gives each to a data-parallel replica. The
// replicas run as replica_runner.h says (each an actor with its own vLLM v1
// scheduler and paged KV cache sized by vLLM's rule; pipeline stages with up
// to pp batches in flight; expert groups in lock step; swap preemption). The
// run ends when every request has finished or been refused.
#ifndef SHARDSIM_SIM_ENGINE_SERVING_DRIVER_H_
#define SHARDSIM_SIM_ENGINE_SERVING_DRIVER_H_

#include <string>

#include "absl/status/statusor.h"
#include "sim/parallel/deployment.h"
#include "sim/proto/report.pb.h"
#include "sim/proto/serving.pb.h"
#include "sim/serving/requests.h"

namespace shardsim::engine {

struct ServingOptions {
  // When not empty, a CSV with a row per request as it finishes or is
  // refused: id, status, arrival, first scheduled, first token and finish
  // times, prompt and output tokens, preemptions. Written as the run goes,
  // so no per-request state is kept for it.
  std::string requests_path;
  // When not empty, a Chrome/Perfetto trace: per replica a track per
  // pipeline stage with a slice per step (its batch, prefill tokens,
  // decodes, compute and communication time), KV-block and queue counters;
  // per request an async slice (queued, prefill, decode) with its
  // preemptions as instants. Written to the file as the run goes (constant
  // memory; the file grows with steps and requests).
  std::string trace_path;
};

// Runs `source`'s requests on `deployment`. Builds a SimGrid platform, so
// call it at most once per process.
absl::StatusOr<v1::ServeReport> RunServing(const parallel::Deployment& deployment,
                                           const v1::Serving& serving,
                                           serving::RequestSource& source,
                                           const ServingOptions& options = {});

}  // namespace shardsim::engine

#endif  // SHARDSIM_SIM_ENGINE_SERVING_DRIVER_H_
