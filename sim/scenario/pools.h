// Checking a scenario's GPU pools (prefill/decode disaggregation) and
// placing each pool's plan on its GPUs.
//
// A pool gives its GPUs (gpus or nodes) or leaves both empty; then it is
// placed automatically, in declaration order: it takes the tp x pp x dp
// lowest-numbered GPUs that no pool names and no earlier automatic pool took
// (consecutive when nothing is named between them). Pools may so share a
// node, and a pool may span nodes where the GPUs left on one run out (a tp
// group then crosses the node boundary: name the GPUs to avoid it).
//
// Each error is one line naming the file, line:column and field: a pool with
// no role, or a role but neither GPUs nor a parallelism; automatic pools
// needing more GPUs than the cluster has left (naming every pool's count);
// GPUs or nodes outside the cluster, named
// twice, or in two pools; a plan whose tp x pp x dp is not the pool's GPU
// count (or that the model cannot take: Partition's checks); a pool naming
// another model than the scenario's; a PREFILL pool without a DECODE pool
// (or the reverse); scheduler fields out of range.
#ifndef SHARDSIM_SIM_SCENARIO_POOLS_H_
#define SHARDSIM_SIM_SCENARIO_POOLS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "sim/base/config_file.h"
#include "sim/hardware/cluster.h"
#include "sim/model/model_spec.h"
#include "sim/parallel/kv_transfer.h"
#include "sim/proto/report.pb.h"
#include "sim/proto/scenario.pb.h"

namespace shardsim::scenario {

// The pools of `s` (empty when it has none), checked and placed. `path` is
// the scenario file (pool model_file is resolved against it).
absl::StatusOr<std::vector<parallel::PoolPlan>> CheckPools(const v1::Scenario& s,
                                                           const std::string& path,
                                                           const model::ModelDims& dims,
                                                           const hardware::Cluster& cluster,
                                                           const FieldLocator& where);

// A deployment in a few characters, for sweep rows and report headers: each
// pool as its role's initial (P, D, M) and its plan, "tp4x2" for tp=4 and
// two replicas ("tp4pp2x1" with pp), joined by " + ": "P tp4x2 + D tp8x1".
// A report without pools gives its one plan, "tp8x1".
std::string DeploymentName(const v1::ServeReport& report);

}  // namespace shardsim::scenario

#endif  // SHARDSIM_SIM_SCENARIO_POOLS_H_
