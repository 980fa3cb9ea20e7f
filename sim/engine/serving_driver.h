// The serving driver: a stream of requests through continuous batching.
//
// An arrival actor takes requests from a source in arrival order, at their
// arrival times, and a router gives each to a data-parallel replica. Each
// replica is an actor with its own scheduler (sim/serving/scheduler.h,
// vLLM v1's rules) and paged KV cache: while it has work it builds the next
// step's mixed batch (prefill chunks and decodes, each sequence at its own
// context), runs it on the executor (collectives as flows, simulated the
// first time each size is met), and updates its requests; idle, it sleeps
// until a request arrives. The run ends when every request has finished or
// been refused.
//
// The KV cache of a replica follows vLLM's rule: of gpu_memory_utilization
// of each GPU's capacity, what the weights, the activation peak of a
// profiling step (max_num_batched_tokens tokens over max_num_seqs
// sequences) and the runtime's own memory leave, in whole blocks; the GPU
// with the fewest blocks sets the replica's.
//
// Pipeline parallelism is not simulated for serving yet (an error says so).
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
};

// Runs `source`'s requests on `deployment`. Builds a SimGrid platform, so
// call it at most once per process.
absl::StatusOr<v1::ServeReport> RunServing(const parallel::Deployment& deployment,
                                           const v1::Serving& serving,
                                           serving::RequestSource& source,
                                           const ServingOptions& options = {});

}  // namespace shardsim::engine

#endif  // SHARDSIM_SIM_ENGINE_SERVING_DRIVER_H_
