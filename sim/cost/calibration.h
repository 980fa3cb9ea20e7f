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
// on 4 PCIe A100s with NVLink bridges, and AIConfigurator's nccl-tests
// all_reduce / all_gather / reduce_scatter times on H100, H200, B200 (and
// A100) NVSwitch nodes and an L40S PCIe box. Each measurement runs the
// algorithm and protocol NCCL's tuning model chooses for it
// (cost::PlanCollective), whose time alone on the links is
//   launch + phases x (levels x step latency[protocol] + route latency
//                      + flow bytes / (bandwidth x eff[link kind, protocol]))
// (cost::CollectiveTimeAlone: exactly what the engine's flows give when
// nothing else shares the links), which is linear in the launch, the step
// latencies and the 1/eff: weighted least squares.
#ifndef SHARDSIM_SIM_COST_CALIBRATION_H_
#define SHARDSIM_SIM_COST_CALIBRATION_H_

#include <map>
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

// One GEMM timed by NVIDIA AIConfigurator inside vLLM (aic_gemm.csv):
// C[m x n] = A[m x k] B[k x n], in `dtype` (BF16, or FP8 inputs with a BF16
// output), on the catalog GPU `gpu`.
struct GemmSample {
  std::string gpu;
  v1::DType dtype = v1::BF16;
  int64_t m = 0, n = 0, k = 0;
  double measured_s = 0;
};

// Reads aic_gemm.csv, keeping the rows whose `system` is a key of
// `gpu_of_system` (their GPU is its value). Counts must be whole numbers and
// times finite: InvalidArgument with file:line otherwise.
absl::StatusOr<std::vector<GemmSample>> LoadGemmSamples(
    const std::string& path, const std::map<std::string, std::string>& gpu_of_system);

// The predicted time of `sample` on `gpu`: the matrix roofline of
// sim/cost/roofline.h with the sample's dtype rate and rows = m.
double PredictGemm(const GemmSample& sample, const v1::GpuSpec& gpu,
                   const v1::EfficiencyProfile& profile);

// `base` with its four GEMM numbers fitted to `samples` (all on `gpu`).
v1::EfficiencyProfile FitGemmProfile(const std::vector<GemmSample>& samples,
                                     const v1::GpuSpec& gpu, v1::EfficiencyProfile base);

// One attention kernel call timed by AIConfigurator inside vLLM: a causal
// prefill of `batch` sequences of `query_tokens` (aic_context_attention.csv),
// or a decode step (one query token) over `context_tokens` including the new
// one (aic_generation_attention.csv).
struct AttentionSample {
  std::string gpu;
  bool prefill = true;
  int64_t batch = 1, query_tokens = 1, context_tokens = 1;
  int64_t heads = 1, kv_heads = 1, head_dim = 128;
  v1::DType kv_dtype = v1::BF16;
  double measured_s = 0;
};

// Reads both files, keeping the systems in `gpu_of_system`.
absl::StatusOr<std::vector<AttentionSample>> LoadAttentionSamples(
    const std::string& context_path, const std::string& generation_path,
    const std::map<std::string, std::string>& gpu_of_system);

// The time the cost model (sim/cost/roofline.h) gives `sample` with `profile`.
double PredictAttention(const AttentionSample& sample, const v1::GpuSpec& gpu,
                        const v1::EfficiencyProfile& profile);

// The attention kernel model fitted to `samples` (all on `gpu`), by
// Nelder-Mead on the squared log error. PredictAttention uses the profile's
// `attention` field: set it to this fit to judge it.
v1::AttentionEfficiency FitAttention(const std::vector<AttentionSample>& samples,
                                     const v1::GpuSpec& gpu);

// A GPU whose GEMMs were measured, and its fitted profile.
struct MeasuredGpu {
  v1::GpuSpec spec;
  v1::EfficiencyProfile profile;
};

// A profile for `to`, which has no op measurements, from its datasheet and
// the measured GPUs' fits, every number with its reason (profile.reasons):
// - GEMM max compute efficiency: the best matmul efficiency measured on `to`
//   (GpuSpec.measured_matmul_efficiency, a maximal-size benchmark) times the
//   median ratio fitted / best-matmul of the measured GPUs: how far vLLM's
//   layer shapes fall short of the best case. Without that benchmark, the
//   measured GPUs' median.
// - GEMM rows at half efficiency, memory efficiency and launch: the measured
//   GPUs' medians (their spread is stated in the reason).
// - Memory-bound kernels: `elementwise`'s (the only GPU they were measured on),
//   as fractions of `to`'s own HBM bandwidth.
// - vLLM attention (when the measured profiles have it): prefill efficiency
//   by the same best-matmul rule, the other numbers the measured medians.
v1::EfficiencyProfile DeriveProfile(const v1::GpuSpec& to,
                                    const std::vector<MeasuredGpu>& measured,
                                    const v1::EfficiencyProfile& elementwise);

// One measured collective.
struct CollectiveSample {
  std::string platform;    // "a100_dgx", "a100_pairwise_nvlink"
  // "all_reduce", "all_gather", "reduce_scatter" or "send_recv".
  std::string collective;
  int num_gpus = 2;
  int64_t bytes = 0;
  double measured_s = 0;
};

// Reads network/<platform>/{all_reduce,send_recv}.csv, keeping single-node
// rows (all GPUs in one node) of at most `max_bytes`.
absl::StatusOr<std::vector<CollectiveSample>> LoadCollectiveSamples(
    const std::string& network_dir, const std::string& platform,
    int64_t max_bytes);

// AIConfigurator's nccl-tests rows of `system` ("h100_sxm") in `path`
// (aic_nccl.csv): all_reduce, all_gather and reduce_scatter of at least
// `min_bytes` and at most `max_bytes` (nccl-tests' buffer size).
absl::StatusOr<std::vector<CollectiveSample>> LoadAicNcclSamples(const std::string& path,
                                                                 const std::string& system,
                                                                 int64_t min_bytes,
                                                                 int64_t max_bytes);

// vLLM custom all-reduce times of `system` ("h100_sxm") in `path`
// (aic_custom_allreduce.csv, BF16), of the `backend` ("vllm_graph": replayed
// in a CUDA graph, as decode steps run; "vllm_eager"), as samples of
// collective "custom_all_reduce" whose bytes are the message's (2 bytes an
// element). Every size is kept; CustomAllReduceSamples() keeps the ones vLLM
// runs with its own kernels.
absl::StatusOr<std::vector<CollectiveSample>> LoadAicCustomAllReduceSamples(
    const std::string& path, const std::string& system, const std::string& backend);

// Of `samples` ("custom_all_reduce") on GPUs 0..n-1 of `cluster`, those
// that CustomAllReduceChoice gives the custom kernels (the rest run NCCL).
std::vector<CollectiveSample> CustomAllReduceSamples(const std::vector<CollectiveSample>& samples,
                                                     const hardware::Cluster& cluster);

// The time of `sample` on GPUs 0..n-1 of `cluster` with `tuning`: the
// collective as NCCL would run it, alone on the links
// (cost::CollectiveTimeAlone); send_recv: one transfer from GPU 0 to GPU 1
// at the point-to-point launch and efficiency. `cluster.collectives` is
// ignored in favour of `tuning`. A "custom_all_reduce" sample runs as the
// runtime's custom kernels would (CollectiveTimeAlone with custom all-reduce).
double PredictCollective(const CollectiveSample& sample,
                         const hardware::Cluster& cluster,
                         const v1::CollectiveTuning& tuning);

// Measurements taken on one machine, and that machine.
struct CollectiveSet {
  const hardware::Cluster* cluster = nullptr;
  std::vector<CollectiveSample> samples;
};

// Fits one launch time; per protocol (LL, LL128, Simple, NVLS) that some
// sample runs, a step latency and a bandwidth factor; a bandwidth efficiency
// per link kind that bottlenecks some collective (the most common kind's is
// also the default for other kinds; a protocol's factor is its efficiency on
// that kind over Simple's); and the point-to-point launch and efficiency to
// the send_recv samples. A protocol no sample runs gets no entry (the
// tuning's step latency, a factor of 1).
v1::CollectiveTuning FitCollectives(const std::vector<CollectiveSet>& sets);

// `tuning` with its "ONESHOT" and "TWOSHOT" entries fitted to the custom
// all-reduce samples of `sets` (each kernel's own: t = phases x step latency
// + route latency + transfer / bandwidth factor, the transfer at the link
// kinds' efficiencies of `tuning`, least squares in relative error). A
// kernel no sample runs keeps what `tuning` had.
v1::CollectiveTuning FitCustomAllReduce(const std::vector<CollectiveSet>& sets,
                                        v1::CollectiveTuning tuning);

// Median and 90th percentile of |predicted / measured - 1|, and the median of
// predicted / measured - 1 with its sign (negative: predictions too fast).
struct ErrorSummary {
  int count = 0;
  double median = 0;
  double p90 = 0;
  double signed_median = 0;
};
ErrorSummary Summarize(std::vector<double> abs_errors);
// From signed errors predicted / measured - 1.
ErrorSummary SummarizeSigned(const std::vector<double>& signed_errors);

}  // namespace shardsim::cost

#endif  // SHARDSIM_SIM_COST_CALIBRATION_H_
