// The static-batch driver: one batch of equal sequences, prefilled at once,
// then decoded step by step until each has its output tokens.
//
// Each data-parallel replica takes an even share of the batch and splits it
// into micro-batches; each pipeline stage of each replica is a SimGrid actor
// that runs, for every step and micro-batch, its stage program on the
// executor (sim/engine/executor.h) and hands the micro-batch on. The last
// stage records when each token is sampled, and the memory ledger of every
// GPU follows the KV cache step by step; sim/metrics turns that record into
// the RunReport.
//
// Replicas that receive the same micro-batches run identical timelines (all
// their communication times come from the executor's caches, simulated with
// every group at once), so without a trace one replica of each kind is
// simulated and its record stands for the others.
#ifndef SHARDSIM_SIM_ENGINE_STATIC_BATCH_H_
#define SHARDSIM_SIM_ENGINE_STATIC_BATCH_H_

#include <string>

#include "absl/status/statusor.h"
#include "sim/parallel/deployment.h"
#include "sim/proto/report.pb.h"
#include "sim/proto/scenario.pb.h"

namespace shardsim::engine {

struct StaticBatchOptions {
  std::string trace_path;  // write a Perfetto trace here when not empty
  // In the trace, show the first `detailed_steps` steps op by op, layer by
  // layer, with each collective where it runs; later steps are one compute
  // and one communication slice each (a 1,000-step run would otherwise be
  // millions of slices).
  int detailed_steps = 0;
};

// Runs the batch. Builds a SimGrid platform, so call it at most once per
// process (SimGrid keeps one engine and one clock per process).
absl::StatusOr<v1::RunReport> RunStaticBatch(const parallel::Deployment& deployment,
                                             const v1::Workload& workload,
                                             const StaticBatchOptions& options);

}  // namespace shardsim::engine

#endif  // SHARDSIM_SIM_ENGINE_STATIC_BATCH_H_
