// The disaggregated serving driver: prefill and decode on separate GPU pools
// (DistServe, Splitwise, NVIDIA Dynamo, vLLM's and SGLang's disaggregated
// serving), the KV cache moved between them as flows on the links.
//
// Each pool (scenario.proto Pool) has its own plan on its own GPUs, and runs
// its data-parallel replicas as `serve` without pools runs them
// (replica_runner.h): its own executor, an actor per replica (and per later
// pipeline stage, up to pp batches in flight), each with its own scheduler
// (sim/serving/scheduler.h, vLLM v1's rules) and KV cache (vLLM's rule, for
// the pool's plan and scheduler); with ep > tp, the replicas of an expert
// group in lock step with dummy steps; swap preemption; the trace (a process
// per pool replica, then the requests).
//
//   1. A request arrives; the router (serving.router) gives it to a replica
//      of a PREFILL or MIXED pool. A MIXED replica serves it whole.
//   2. A PREFILL replica computes its prompt (chunked as its scheduler
//      says) and samples the first token, as vLLM's disaggregated proxy runs
//      the prefill instance with max_tokens=1. The prompt's KV blocks stay
//      held on that replica until the transfer ends.
//   3. A hand-off queue, first come first served, gives the request to a
//      DECODE replica (by the router's policy, among those with room) once
//      one has free KV blocks for the prompt and a free sequence slot
//      (max_num_seqs, counting transfers on their way); until then it waits,
//      holding its prefill blocks (counted: waits for decode KV, and how
//      long). The decode replica's blocks are reserved at once.
//   4. The KV cache moves as flows, all started at once, from the prefill
//      replica's GPUs to the decode replica's (parallel/kv_transfer.h: the
//      rank-to-rank matrix, re-sharding between the pools' tp and pp), on
//      the routes between them (NVLink inside a node, NIC and fabric across
//      nodes), sharing links with every other transfer in flight. Each
//      flow carries its bytes / kv_transfer.bandwidth_efficiency.
//      With kv_transfer.overlap_layers, each layer's KV leaves as the
//      prefill's last step finishes that layer: with the step's time d
//      spread evenly over the model's L layers, layer l is ready at
//      (l + 1) d / L, so by the step's end a flow of B bytes at its
//      idle-link rate r (its share of its slowest hop among this
//      transfer's flows) has sent min(B (L - 1) / L, r d (L - 1) / L), and
//      only the rest is simulated as a flow: on idle links the transfer
//      ends latency + max(B / (L r), B / r - d (L - 1) / L) after the
//      prefill. The early part assumes the links idle during the prefill
//      (other traffic then is not seen), and a request that waited for
//      decode room sends its whole cache after the wait (its destination
//      was not known while it prefilled).
//   5. When the last flow arrives, the prefill blocks are freed and the
//      request joins the decode replica's running requests with its prompt
//      computed: its next step is its first decode.
//
// TTFT ends when the KV cache has arrived on the decode replica: the client
// receives its tokens from the decode instance (vLLM's disaggregated proxy,
// Dynamo's decode worker stream them), so the first token reaches it after
// the prefill, any wait for decode room and the transfer. TPOT and ITL count
// from there. A request of one output token finishes at its prefill (nothing
// to hand on).
//
// With pp > 1 in a prefill pool, a request is handed on when its batch's
// tokens are back on the first stage; each decode rank receives each layer's
// KV from the prefill stage holding that layer (parallel/kv_transfer.h), and
// with overlap_layers the batch's time from its first stage's start to its
// last stage's end stands for d.
#ifndef SHARDSIM_SIM_ENGINE_DISAGG_DRIVER_H_
#define SHARDSIM_SIM_ENGINE_DISAGG_DRIVER_H_

#include <vector>

#include "absl/status/statusor.h"
#include "sim/engine/serving_driver.h"
#include "sim/parallel/deployment.h"
#include "sim/parallel/kv_transfer.h"
#include "sim/proto/report.pb.h"
#include "sim/proto/scenario.pb.h"
#include "sim/proto/serving.pb.h"
#include "sim/serving/requests.h"

namespace shardsim::engine {

// Runs `source`'s requests on `pools` (checked by scenario::CheckPools) of
// `deployment`'s model and cluster. Builds a SimGrid platform, so call it at
// most once per process.
absl::StatusOr<v1::ServeReport> RunDisaggregated(const parallel::Deployment& deployment,
                                                 const std::vector<parallel::PoolPlan>& pools,
                                                 const v1::KvTransfer& kv_transfer,
                                                 const v1::Serving& serving,
                                                 serving::RequestSource& source,
                                                 const ServingOptions& options = {});

}  // namespace shardsim::engine

#endif  // SHARDSIM_SIM_ENGINE_DISAGG_DRIVER_H_
