// Loading a scenario: the files it names, command-line overrides, and every
// check, in one place, before any simulation starts.
//
// Order: parse the scenario file; apply the overrides that choose files or
// the GPU (model_file, topology_file, topology.gpu, topology.gpu_catalog_file);
// load the model and topology files and lay the scenario's inline model {}
// and topology {} fields over them (inline topology links replace the file's); apply the remaining overrides; check the
// model, the cluster, the workload and the parallel plan. Every error names
// the file, line:column and field (or the --set that caused it).
#ifndef SHARDSIM_SIM_SCENARIO_SCENARIO_H_
#define SHARDSIM_SIM_SCENARIO_SCENARIO_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "sim/base/config_file.h"
#include "sim/hardware/cluster.h"
#include "sim/model/model_spec.h"
#include "sim/parallel/deployment.h"
#include "sim/parallel/kv_transfer.h"
#include "sim/parallel/partition.h"
#include "sim/proto/scenario.pb.h"

namespace shardsim::scenario {

// A checked scenario: the deployment as plain values (model, cluster, plan,
// runtime; what everything below this module takes), and where it came from.
struct LoadedScenario : parallel::Deployment {
  std::string path;
  // The scenario with model and topology filled in from their files and the
  // overrides applied: what was actually simulated.
  v1::Scenario scenario;
  FieldLocator where;  // for scenario fields
  // The scenario's GPU pools, checked and placed (empty without pools).
  std::vector<parallel::PoolPlan> pools;
};

// Loads, resolves and checks `path` with `overrides` ("field.path=value").
absl::StatusOr<LoadedScenario> LoadScenario(
    const std::string& path, const std::vector<std::string>& overrides);

// Loads a model file (.textproto or HuggingFace .json) and checks it.
absl::StatusOr<model::ModelDims> LoadAndCheckModel(const std::string& path);

// Loads a topology file, its GPU catalog, and checks both. With
// `with_calibration`, also attaches the built-in calibration
// (hardware::LoadCalibration); `shardsim calibrate`, which fits it, reads
// topologies without.
absl::StatusOr<hardware::Cluster> LoadAndCheckTopology(const std::string& path,
                                                       bool with_calibration = true);

// `shardsim validate`: works out what kind of file `path` is (scenario,
// model, topology or GPU catalog; by extension, by its folder, or by which
// schema parses it) and checks it. Returns a one-line description on success.
absl::StatusOr<std::string> ValidateFile(const std::string& path);

}  // namespace shardsim::scenario

#endif  // SHARDSIM_SIM_SCENARIO_SCENARIO_H_
