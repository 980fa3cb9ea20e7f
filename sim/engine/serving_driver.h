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
// Pipeline parallelism (pp > 1), as vLLM V1 runs it: up to pp batches are in
// flight in a replica at once (its batch queue of max_concurrent_batches =
// pipeline_parallel_size). The replica's actor schedules and runs stage 0;
// one actor per later stage runs each batch's part of the step program as
// it arrives (the hidden states as the executor's hand-offs), so stages work
// on different batches at the same time; the last stage samples and sends
// the tokens back to stage 0, where the batch completes. A request in a
// batch in flight is not scheduled again until that batch has completed
// (sim/serving/scheduler.h). A request's token times are the last stage's.
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
