// Fitting efficiency profiles and collective tuning to real measurements, and
// judging predictions against them.
//
// Op times: Vidur's per-operator profiles of one transformer layer's tensor-
// parallel shard on A100 (shared/calibration/vidur/.../compute/a100/*/mlp.csv).
// Each row gives, for a model, a tp degree and a token count, the median time
// of each op; we rebuild the same shard with sim/model and predict it.
// GEMMs fit four numbers (max compute efficiency, the rows at which half of
// it is reached, memory efficiency, launch time) by Nelder-Mead on the squared
// log error; every memory-bound kind fits a launch time and an efficiency by
// least squares on the relative error. No constant is per model or per shape.
//
// Collectives: Vidur's NCCL all_reduce and send_recv times on a DGX A100 and
// on 4 PCIe A100s with NVLink bridges. A ring collective is
//   launch + steps x (route latency + step latency + chunk / (bandwidth x eff))
// (exactly what the SimGrid ring gives when nothing else shares the links),
// which is linear in launch, step latency and 1/eff: weighted least squares.
#ifndef SHARDSIM_SIM_COST_CALIBRATION_H_
#define SHARDSIM_SIM_COST_CALIBRATION_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "sim/hardware/cluster.h"
#include "sim/model/graph.h"
#include "sim/model/model_spec.h"
#include "sim/proto/hardware.pb.h"

namespace shardsim::cost {

// One measured op time.
struct OpSample {
  std::string model;  // "Llama-2-7b-hf"
  std::string op;     // our op name: "qkv_proj", "input_norm", ...
  int64_t tokens = 0;
  int tp = 1;
  model::ModelDims dims;  // FP16, as profiled
  model::Op op_def;       // the op of that shard, one instance
  model::StepShape shape;
  double measured_s = 0;
};

// Reads every <org>/<model>/mlp.csv under `compute_dir`, in sorted order.
absl::StatusOr<std::vector<OpSample>> LoadOpSamples(const std::string& compute_dir);

// The predicted time of `sample` on `gpu` with `profile`.
double PredictOp(const OpSample& sample, const v1::GpuSpec& gpu,
                 const v1::EfficiencyProfile& profile);

// Fits a profile for `gpu` to `samples` (all of them measured on `gpu`).
v1::EfficiencyProfile FitProfile(const std::vector<OpSample>& samples,
                                 const v1::GpuSpec& gpu);

// Carries `measured` (fitted on GPU `from`) over to `to`: the GEMM compute
// efficiency scales with the GPUs' measured best matmul efficiencies when both
// are known; the rest is kept. The result is marked derived.
v1::EfficiencyProfile DeriveProfile(const v1::EfficiencyProfile& measured,
                                    const v1::GpuSpec& from, const v1::GpuSpec& to);

// One measured collective.
struct CollectiveSample {
  std::string platform;    // "a100_dgx", "a100_pairwise_nvlink"
  std::string collective;  // "all_reduce" or "send_recv"
  int num_gpus = 2;
  int64_t bytes = 0;
  double measured_s = 0;
};

// Reads network/<platform>/{all_reduce,send_recv}.csv, keeping single-node
// rows (all GPUs in one node) of at most `max_bytes`.
absl::StatusOr<std::vector<CollectiveSample>> LoadCollectiveSamples(
    const std::string& network_dir, const std::string& platform,
    int64_t max_bytes);

// The ring time of `sample` on GPUs 0..n-1 of `cluster` with `tuning`
// (send_recv: one transfer from GPU 0 to GPU 1): the slowest hop of the ring
// (by raw bandwidth) sets every step, moving at the efficiency of its link
// kind. `cluster.collectives` is ignored in favour of `tuning`.
double PredictCollective(const CollectiveSample& sample,
                         const hardware::Cluster& cluster,
                         const v1::CollectiveTuning& tuning);

// Measurements taken on one machine, and that machine.
struct CollectiveSet {
  const hardware::Cluster* cluster = nullptr;
  std::vector<CollectiveSample> samples;
};

// Fits one launch time, one step latency and a bandwidth efficiency per link
// kind that bottlenecks some all_reduce in `sets` (the most common kind's is
// also the default for other kinds), and the point-to-point launch and
// efficiency to the send_recv samples.
v1::CollectiveTuning FitCollectives(const std::vector<CollectiveSet>& sets);

// Median and 90th percentile of |predicted / measured - 1|.
struct ErrorSummary {
  int count = 0;
  double median = 0;
  double p90 = 0;
};
ErrorSummary Summarize(std::vector<double> abs_errors);

}  // namespace shardsim::cost

#endif  // SHARDSIM_SIM_COST_CALIBRATION_H_
