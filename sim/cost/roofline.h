// How long an op takes on a GPU: a roofline with efficiencies.
//
//   matrix ops (GEMMs, the head, attention):
//     time = launch + max(FLOPs / (peak FLOPS[dtype] x e(rows)),
//                         bytes / (HBM bandwidth x memory efficiency))
//     e(rows) = max compute efficiency x rows / (rows + rows_half)
//     rows: the rows one kernel multiplies; for a grouped expert GEMM each
//     active expert's tokens under uniform routing (model::RowsPerKernel),
//     so a step's small per-expert batches sit low on the curve
//     8-bit GEMM inputs (FP8, INT8) take the profile's own curve (gemm_fp8)
//     and add the pass quantizing their activations:
//       + bytes per element x rows x in / (HBM bandwidth x its memory efficiency)
//   memory-bound ops (norms, activation, rotary, residual add, embedding):
//     time = launch + bytes / (HBM bandwidth x that kind's efficiency)
//   sampler passes (model::OpKind::kSampler): the same, with the norm
//     kernels' efficiency for row reductions and the activation kernels'
//     for elementwise passes; launch x the pass's kernels
//
// The efficiencies come from an EfficiencyProfile fitted to measured op times
// (sim/cost/calibration.h, topologies/efficiency.textproto). Attention is its
// own kernel model where the profile has one (EfficiencyProfile.attention:
// tile efficiency by query tokens per sequence, decode bound by the KV read),
// else the GEMM figures. Without a profile, DefaultProfile()
// is a plain roofline: 0.75 of peak compute, 0.80 of HBM bandwidth, 3 us per
// kernel. No SimGrid here: a plain, testable class.
#ifndef SHARDSIM_SIM_COST_ROOFLINE_H_
#define SHARDSIM_SIM_COST_ROOFLINE_H_

#include <string>
#include <vector>

#include "sim/model/graph.h"
#include "sim/proto/hardware.pb.h"

namespace shardsim::cost {

// The uncalibrated roofline defaults described above, for `gpu`.
v1::EfficiencyProfile DefaultProfile(const std::string& gpu);

// Whether GEMMs with inputs in `dtype` run vLLM's 8-bit scaled-mm kernels
// (FP8 or INT8 inputs), which have their own efficiency curve
// (EfficiencyProfile.gemm_fp8).
bool IsEightBitGemm(v1::DType dtype);

// The GEMM curve `profile` gives matrix work whose inputs are `dtype`:
// gemm_fp8 for 8-bit inputs when the profile has it, else its BF16 numbers
// (gemm_max_compute_efficiency, gemm_rows_half, ...). Only the curve's
// numbers are set, not its samples or source.
v1::GemmEfficiency GemmCurve(const v1::EfficiencyProfile& profile, v1::DType dtype);

enum class Bound { kCompute, kMemory, kLaunch };
const char* BoundName(Bound bound);

struct OpCost {
  double time_s = 0;
  double flops = 0;
  double bytes = 0;
  Bound bound = Bound::kMemory;
  double efficiency = 0;  // of the resource that bounds it
};

class CostModel {
 public:
  // An empty `profile` (no gpu name) means DefaultProfile(gpu.name()).
  CostModel(const v1::GpuSpec& gpu, const model::ModelDims& dims,
            const v1::EfficiencyProfile& profile);
  // With DefaultProfile(gpu.name()).
  CostModel(const v1::GpuSpec& gpu, const model::ModelDims& dims);

  // Cost of all instances of `op` for a step of `shape` on one GPU.
  OpCost Op(const model::Op& op, const model::StepShape& shape) const;

  // Sum of Op() over `ops`.
  double Time(const std::vector<model::Op>& ops,
              const model::StepShape& shape) const;

  // Compute time of layers [first_layer, first_layer + num_layers) of
  // `graph`, each at its own kind's ops (dense or MoE, full or sliding
  // attention): what a pipeline stage spends per step. Equal to num_layers x
  // Time(graph.layer, shape) when the model has one layer kind.
  double LayersTime(const model::ModelGraph& graph, int64_t first_layer,
                    int64_t num_layers, const model::StepShape& shape) const;

  // Tensor-core rate used for GEMMs and the head: the GEMM input dtype's
  // (ModelDims::gemm_dtype, set by the precision recipe; by default FP8's
  // for FP8 weights, otherwise the activation dtype's, as integer weights
  // are dequantized); the BF16/FP16/FP32 rate when the GPU lacks the format
  // (note() says so). 8-bit inputs at their own rate take the profile's
  // gemm_fp8 curve (GemmCurve). Attention multiplies activations (Q, K, V
  // in the activation dtype: an FP8 KV cache is dequantized in the kernel),
  // so it runs at the activation dtype's rate with the BF16 curve, and so do
  // the GEMMs whose weights stay unquantized (model::Op::unquantized: the
  // head, the MoE router), without an input quantization pass.
  double matrix_flops_per_s() const { return matrix_flops_per_s_; }
  const std::string& note() const { return note_; }
  const v1::EfficiencyProfile& profile() const { return profile_; }

 private:
  v1::GpuSpec gpu_;
  model::ModelDims dims_;
  v1::EfficiencyProfile profile_;
  double matrix_flops_per_s_ = 0;
  v1::GemmEfficiency gemm_curve_;       // GemmCurve at the rate actually used
  // The BF16 curve at the activation dtype's rate: attention (its fallback
  // when the profile has no attention fit) and unquantized GEMMs.
  v1::GemmEfficiency activation_curve_;
  double activation_flops_per_s_ = 0;
  std::string note_;
};

}  // namespace shardsim::cost

#endif  // SHARDSIM_SIM_COST_ROOFLINE_H_
