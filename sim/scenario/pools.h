// Checking a scenario's GPU pools (prefill/decode disaggregation) and
// placing each pool's plan on its GPUs.
//
// Each error is one line naming the file, line:column and field: a pool with
// no role, or a role but no GPUs; GPUs or nodes outside the cluster, named
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
#include "sim/proto/scenario.pb.h"

namespace shardsim::scenario {

// The pools of `s` (empty when it has none), checked and placed. `path` is
// the scenario file (pool model_file is resolved against it).
absl::StatusOr<std::vector<parallel::PoolPlan>> CheckPools(const v1::Scenario& s,
                                                           const std::string& path,
                                                           const model::ModelDims& dims,
                                                           const hardware::Cluster& cluster,
                                                           const FieldLocator& where);

}  // namespace shardsim::scenario

#endif  // SHARDSIM_SIM_SCENARIO_POOLS_H_
