// How a model is split over GPUs: tensor (tp), pipeline (pp) and data (dp)
// parallelism.
//
// Tensor parallelism splits attention heads, the FFN width and the vocabulary
// (Megatron-LM's column/row split); KV heads are split while there are at
// least tp of them and replicated beyond that, as vLLM does. Pipeline
// parallelism gives each stage a contiguous run of layers, the embedding to
// the first stage and the head to the last. Data parallelism replicates the
// whole thing. GPUs are numbered replica-major, then stage, then tp rank, so
// a tensor-parallel group sits inside one node whenever it fits.
#ifndef SHARDSIM_SIM_PARALLEL_PARTITION_H_
#define SHARDSIM_SIM_PARALLEL_PARTITION_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "sim/base/config_file.h"
#include "sim/hardware/cluster.h"
#include "sim/model/graph.h"
#include "sim/proto/scenario.pb.h"

namespace shardsim::parallel {

// One GPU's place in the plan.
struct Rank {
  int gpu = 0;  // global GPU index in the cluster
  int node = 0;
  int tp_rank = 0;
  int pp_stage = 0;
  int dp_replica = 0;
  int64_t first_layer = 0;
  int64_t num_layers = 0;
  bool has_embedding = false;  // first stage
  bool has_tail = false;       // last stage: final norm and head
};

struct Plan {
  int tp = 1;
  int pp = 1;
  int dp = 1;
  int ep = 1;              // expert-parallel degree (scenario.proto Parallelism.ep)
  int micro_batches = 1;   // per replica, for pipelining across stages
  model::ShardDims shard;  // the same on every tensor-parallel rank
  std::vector<Rank> ranks;  // tp * pp * dp entries, in rank order

  int num_gpus() const { return tp * pp * dp; }
  // Index into `ranks` of (replica, stage, tp rank).
  int RankIndex(int replica, int stage, int tp_rank) const {
    return (replica * pp + stage) * tp + tp_rank;
  }
  // The GPUs of the tensor-parallel group of (replica, stage), by tp rank.
  std::vector<int> TpGroup(int replica, int stage) const;
};

// Sequences data-parallel replica `replica` serves out of `batch_size`:
// an even split, the first replicas taking the remainder.
int64_t SequencesOnReplica(int64_t batch_size, int dp, int replica);

// Sequences in micro-batch `m` of a replica with `sequences`, split the same way.
int64_t SequencesInMicroBatch(int64_t sequences, int micro_batches, int m);

// The per-GPU sizes of a tp-way shard of `dims`, with the routed experts
// spread ep ways (each over max(tp, ep) / ep ranks). Assumes the degrees
// divide what they split (Partition checks that).
model::ShardDims ShardFor(const model::ModelDims& dims, int64_t tp, int64_t ep = 1);

// Checks the degrees against the model and the cluster and places the
// ranks. Errors name the parallelism field through `where` (the scenario):
// tp must divide the attention heads, the FFN width and either divide the KV
// heads or be a multiple of them; pp must not exceed the layers; tp x pp x dp
// must fit in the cluster; ep must divide the routed experts and tp x dp,
// and divide tp or be a multiple of it.
absl::StatusOr<Plan> Partition(const model::ModelDims& dims,
                               const v1::Parallelism& parallelism,
                               const hardware::Cluster& cluster,
                               const FieldLocator& where);

}  // namespace shardsim::parallel

#endif  // SHARDSIM_SIM_PARALLEL_PARTITION_H_
