// The calibration recipe, in one place: which measurements in the project's
// calibration data (topologies/calibration_data, a cited subset of
// shared/calibration) fit which efficiency profile and collective tuning.
// `shardsim calibrate` writes its result; `shardsim fidelity` refits parts of
// it with data held out and judges the predictions. No files are written here
// except by WriteCalibration.
//
//   A100-SXM4-80GB   every op kind fitted to Vidur's per-op times (fp16).
//   H100, H200, L40S, B200
//                    GEMMs fitted to AIConfigurator's BF16 GEMM grid (vLLM);
//                    attention (every measured GPU, A100 too) to its prefill
//                    and decode attention grids;
//                    memory-bound kernels carried from the A100 fit (measured
//                    on no other GPU), as fractions of each GPU's bandwidth.
//   every other GPU  derived from its datasheet and the measured GPUs' fits
//                    (cost::DeriveProfile), a reason per number.
//   collectives      a default by link kind, fitted on both measured A100
//                    machines; each machine's own fit under a name a topology
//                    can choose (Topology.collective_tuning); and a fit per
//                    measured link generation (AIConfigurator's nccl-tests
//                    on H100/H200 and B200 NVSwitch nodes) that clusters of
//                    those GPUs take. Every collective at NCCL's own choice
//                    of algorithm and protocol.
#ifndef SHARDSIM_SIM_FIDELITY_CALIBRATE_H_
#define SHARDSIM_SIM_FIDELITY_CALIBRATE_H_

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "sim/cost/calibration.h"
#include "sim/proto/hardware.pb.h"

namespace shardsim::fidelity {

// The project's copy of the measurements, relative to the repository root.
inline constexpr char kCalibrationData[] = "topologies/calibration_data";

// AIConfigurator's system names -> our catalog names.
const std::map<std::string, std::string>& AicGpus();

// The GPU Vidur's op profiles ran on (DGX A100: A100 80GB SXM).
inline constexpr char kVidurGpu[] = "A100-SXM4-80GB";

struct CalibrateOptions {
  std::string calibration_dir = kCalibrationData;
  // Where gpus.textproto and the two measured A100 topologies are.
  std::string topologies_dir = "topologies";
};

struct Calibration {
  v1::EfficiencyProfiles profiles;  // one per catalog GPU, catalog order
  v1::CollectiveTunings tunings;
  // The AIConfigurator fits (BF16 GEMMs, attention), A100 included: what
  // derivations use.
  std::vector<cost::MeasuredGpu> measured_gemms;
  std::string summary;  // what was fitted, for people
};

// Runs the recipe above. NotFound when a data file is missing;
// InvalidArgument (file:line) for a malformed row.
absl::StatusOr<Calibration> Calibrate(const CalibrateOptions& options);

// The AIConfigurator fits of every measured GPU in `catalog`, in catalog
// order: BF16 GEMMs and the attention kernels (prefill and decode, BF16 and
// FP8 KV), with the memory-bound kernels of `elementwise`.
std::vector<cost::MeasuredGpu> FitMeasuredGpus(const v1::GpuCatalog& catalog,
                                               const std::vector<cost::GemmSample>& gemms,
                                               const std::vector<cost::AttentionSample>& attention,
                                               const v1::EfficiencyProfile& elementwise);

// The AIConfigurator GEMM and attention measurements under `calibration_dir`.
absl::StatusOr<std::vector<cost::GemmSample>> LoadAicGemms(const std::string& calibration_dir);
absl::StatusOr<std::vector<cost::AttentionSample>> LoadAicAttention(
    const std::string& calibration_dir);

// Writes efficiency.textproto and collectives.textproto into `out_dir`.
absl::Status WriteCalibration(const Calibration& calibration, const std::string& out_dir);

// A machine whose collectives were measured (Vidur): its topology file in
// topologies/, Vidur's folder for it, and the name its own fit is stored under.
struct MeasuredMachine {
  std::string topology_file;
  std::string vidur_platform;
  std::string tuning_name;
};
const std::vector<MeasuredMachine>& MeasuredMachines();

// A link generation whose collectives AIConfigurator measured: its tuning's
// name, the AIConfigurator systems and the topology in topologies/ each ran
// on, and the catalog GPUs that carry that generation (the tuning's users).
struct MeasuredGeneration {
  std::string name;
  std::vector<std::pair<std::string, std::string>> systems;  // (system, topology file)
  std::vector<std::string> gpus;
};
const std::vector<MeasuredGeneration>& MeasuredGenerations();

// The nccl-tests collectives `shardsim calibrate` fits and `fidelity`
// judges: 1 KiB to 64 MiB, as for the A100 machines.
absl::StatusOr<std::vector<cost::CollectiveSample>> LoadAicCollectives(
    const std::string& calibration_dir, const std::string& system);

// vLLM's custom all-reduce times of `system` that its own kernels run on
// `cluster` (aic_custom_allreduce.csv, replayed in a CUDA graph; sizes that
// fall back to NCCL left out).
absl::StatusOr<std::vector<cost::CollectiveSample>> LoadAicCustomAllReduce(
    const std::string& calibration_dir, const std::string& system,
    const hardware::Cluster& cluster);

}  // namespace shardsim::fidelity

#endif  // SHARDSIM_SIM_FIDELITY_CALIBRATE_H_
