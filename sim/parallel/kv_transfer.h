// Which GPU sends which part of a request's KV cache to which, when a
// prefill replica hands a request to a decode replica of another plan
// (prefill/decode disaggregation), and the GPU pools such plans run on.
//
// A tensor-parallel rank holds the KV heads partition.h gives it: with H KV
// heads and tp ranks, rank t holds heads [t H / tp, (t + 1) H / tp) when
// H >= tp, and head t / (tp / H) when H < tp (vLLM replicates a head over
// tp / H ranks). MLA's latent is the same on every rank. Each pipeline stage
// holds its layers. A decode rank needs, for every layer of its stage, the
// heads it holds; each comes from a prefill rank of the stage holding that
// layer that has the head. Where several prefill ranks hold it (replicated
// heads, MLA), decode tp rank j takes it from the (j mod count)-th of them,
// so the senders share the work. The result is the rank-to-rank byte matrix
// (re-sharding a tp=4 prefill into a tp=8 decode, or back), per token.
//
// No SimGrid here.
#ifndef SHARDSIM_SIM_PARALLEL_KV_TRANSFER_H_
#define SHARDSIM_SIM_PARALLEL_KV_TRANSFER_H_

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "sim/hardware/cluster.h"
#include "sim/model/model_spec.h"
#include "sim/parallel/partition.h"
#include "sim/proto/scenario.pb.h"

namespace shardsim::parallel {

// A checked pool (scenario.proto Pool): its GPUs and its plan placed on them.
struct PoolPlan {
  std::string name;
  v1::Pool::Role role = v1::Pool::MIXED;
  std::vector<int> gpus;  // global indices, in the order ranks take them
  Plan plan;
  // The serving block's scheduler with the pool's own fields laid over it.
  v1::SchedulerConfig scheduler;
};

// One sender-receiver pair of a KV hand-off. Its bytes for a request of T
// tokens are full_bytes_per_token x T + sliding_bytes_per_token x
// min(T, sliding_window) (sliding layers keep only their window).
struct KvFlow {
  int src_gpu = 0;
  int dst_gpu = 0;
  int64_t full_bytes_per_token = 0;
  int64_t sliding_bytes_per_token = 0;

  int64_t Bytes(int64_t tokens, int64_t sliding_window) const {
    return full_bytes_per_token * tokens +
           sliding_bytes_per_token * std::min(tokens, sliding_window);
  }
};

// The flows that move one request's KV cache from replica `from_replica` of
// `from` to replica `to_replica` of `to`, sorted by (src_gpu, dst_gpu); pairs
// that move nothing are left out. Encoder-only models have none.
std::vector<KvFlow> KvTransferFlows(const model::ModelDims& dims, const Plan& from,
                                    int from_replica, const Plan& to, int to_replica);

// How long one request's KV cache of `tokens` tokens takes to move as
// `flows`, all at once, on otherwise idle links, in closed form: each flow
// gets, on every hop of its route, the link's bandwidth x `efficiency`
// shared evenly by the flows of this transfer crossing it, runs at its
// slowest hop's share, and arrives after its route's latency plus its bytes
// at that rate; the transfer ends with its last flow. (The pools driver
// simulates the same flows, sharing links with other traffic too.)
// 0 for no flows.
double IdleKvTransferSeconds(const hardware::Cluster& cluster, const std::vector<KvFlow>& flows,
                             int64_t tokens, int64_t sliding_window, double efficiency);

}  // namespace shardsim::parallel

#endif  // SHARDSIM_SIM_PARALLEL_KV_TRANSFER_H_
