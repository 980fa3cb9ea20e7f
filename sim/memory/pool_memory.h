// `shardsim memory` of a scenario with GPU pools (prefill/decode
// disaggregation, sim/scenario/pools.h): each pool's plan on its own GPUs,
// judged by the ledger (ledger.h) as a plan over the whole cluster is.
//
// Every pool holds the scenario's static batch (workload.batch_size split
// over the pool's dp replicas), since every request passes through a prefill
// and a decode pool, with one difference by role: a PREFILL pool keeps a
// sequence's KV cache only for its prompt (it samples the first token and
// hands the cache on: FinalKvTokens of a one-token output), while DECODE and
// MIXED pools hold the prompt and the whole output, as without pools.
// The rows of every pool are concatenated in pool order, each naming its pool
// and role; the report fits when every pool fits. A note common to every pool
// is said once, one that differs is prefixed with its pool.
#ifndef SHARDSIM_SIM_MEMORY_POOL_MEMORY_H_
#define SHARDSIM_SIM_MEMORY_POOL_MEMORY_H_

#include <vector>

#include "sim/parallel/deployment.h"
#include "sim/parallel/kv_transfer.h"
#include "sim/proto/report.pb.h"
#include "sim/proto/scenario.pb.h"

namespace shardsim::memory {

// `whole` with the pool's plan in place of its own. The memory report reads
// only the cluster's GPU and size, so the links and routes are not copied.
parallel::Deployment PoolDeployment(const parallel::Deployment& whole,
                                    const parallel::PoolPlan& pool);

// The static workload a pool of `role` holds for the scenario's `workload`.
v1::Workload PoolWorkload(v1::Pool::Role role, const v1::Workload& workload);

// The memory report of `whole`'s model served by `pools` (not empty).
v1::MemoryReport ComputePoolsMemoryReport(const parallel::Deployment& whole,
                                          const std::vector<parallel::PoolPlan>& pools,
                                          const v1::Workload& workload);

}  // namespace shardsim::memory

#endif  // SHARDSIM_SIM_MEMORY_POOL_MEMORY_H_
