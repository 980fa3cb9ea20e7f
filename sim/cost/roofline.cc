#include "sim/cost/roofline.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "sim/base/units.h"
#include "sim/hardware/cluster.h"

namespace shardsim::cost {

v1::EfficiencyProfile DefaultProfile(const std::string& gpu) {
  v1::EfficiencyProfile p;
  p.set_gpu(gpu);
  p.set_gemm_max_compute_efficiency(0.75);
  p.set_gemm_rows_half(0);
  p.set_gemm_memory_efficiency(0.80);
  p.set_gemm_launch_s(3e-6);
  for (v1::KernelEfficiency* k : {p.mutable_norm(), p.mutable_activation(),
                                  p.mutable_rope(), p.mutable_residual_add(),
                                  p.mutable_embedding()}) {
    k->set_memory_efficiency(0.80);
    k->set_launch_s(3e-6);
  }
  p.set_derived(true);
  p.set_source("roofline defaults: no efficiency profile for this GPU");
  return p;
}

bool IsEightBitGemm(v1::DType dtype) { return dtype == v1::FP8 || dtype == v1::INT8; }

v1::GemmEfficiency GemmCurve(const v1::EfficiencyProfile& profile, v1::DType dtype) {
  if (IsEightBitGemm(dtype) && profile.gemm_fp8().max_compute_efficiency() > 0) {
    v1::GemmEfficiency curve;
    curve.set_max_compute_efficiency(profile.gemm_fp8().max_compute_efficiency());
    curve.set_rows_half(profile.gemm_fp8().rows_half());
    curve.set_memory_efficiency(profile.gemm_fp8().memory_efficiency());
    curve.set_launch_s(profile.gemm_fp8().launch_s());
    curve.set_input_quant_bytes_per_element(profile.gemm_fp8().input_quant_bytes_per_element());
    return curve;
  }
  v1::GemmEfficiency curve;
  curve.set_max_compute_efficiency(profile.gemm_max_compute_efficiency());
  curve.set_rows_half(profile.gemm_rows_half());
  curve.set_memory_efficiency(profile.gemm_memory_efficiency());
  curve.set_launch_s(profile.gemm_launch_s());
  return curve;
}

const char* BoundName(Bound bound) {
  switch (bound) {
    case Bound::kCompute:
      return "compute";
    case Bound::kMemory:
      return "memory";
    case Bound::kLaunch:
      return "launch";
  }
  return "unknown";
}

CostModel::CostModel(const v1::GpuSpec& gpu, const model::ModelDims& dims)
    : CostModel(gpu, dims, DefaultProfile(gpu.name())) {}

CostModel::CostModel(const v1::GpuSpec& gpu, const model::ModelDims& dims,
                     const v1::EfficiencyProfile& profile)
    : gpu_(gpu),
      dims_(dims),
      profile_(profile.gpu().empty() ? DefaultProfile(gpu.name()) : profile) {
  // The recipe's GEMM input dtype picks the tensor-core rate (ModelDims
  // resolves it: FP8 for FP8 weights unless told otherwise).
  const v1::DType matrix = dims.gemm_dtype;
  matrix_flops_per_s_ = hardware::DenseFlopsPerSecond(gpu, matrix);
  v1::DType used = matrix;
  for (v1::DType fallback : {v1::BF16, v1::FP16, v1::FP32}) {
    if (matrix_flops_per_s_ > 0) break;
    matrix_flops_per_s_ = hardware::DenseFlopsPerSecond(gpu, fallback);
    used = fallback;
    note_ = absl::StrCat(gpu.name(), " has no ", DTypeName(matrix),
                         " tensor rate; matrix work uses its ",
                         DTypeName(fallback), " rate");
  }
  gemm_curve_ = GemmCurve(profile_, used);
  if (IsEightBitGemm(used)) {
    const std::string curve =
        profile_.gemm_fp8().max_compute_efficiency() > 0
            ? absl::StrCat(DTypeName(used), " GEMMs on the profile's 8-bit curve (gemm_fp8): ",
                           profile_.gemm_fp8().source())
            : absl::StrCat(DTypeName(used),
                           " GEMMs on the BF16 curve at their rate: the profile has no "
                           "8-bit curve (gemm_fp8)");
    note_ = note_.empty() ? curve : absl::StrCat(note_, "; ", curve);
  }
  activation_curve_ = GemmCurve(profile_, v1::BF16);
  // Attention's operands are activations whatever the GEMM inputs are, and
  // so are an unquantized GEMM's (its weights stay in 16 bits).
  activation_flops_per_s_ = dims.activation_dtype == matrix
                                ? matrix_flops_per_s_
                                : hardware::DenseFlopsPerSecond(gpu, dims.activation_dtype);
  if (activation_flops_per_s_ <= 0) activation_flops_per_s_ = matrix_flops_per_s_;
}

OpCost CostModel::Op(const model::Op& op, const model::StepShape& shape) const {
  OpCost cost;
  cost.flops = model::OpFlops(op, dims_, shape);
  cost.bytes = static_cast<double>(model::OpMemoryBytes(op, dims_, shape));
  const double bandwidth = gpu_.hbm_bandwidth_bytes_per_s();
  double compute_s = 0;
  double memory_s = 0;
  double launch_s = 0;
  double quantize_s = 0;  // 8-bit GEMMs: quantizing their BF16 inputs
  double compute_efficiency = 0;
  double memory_efficiency = 0;
  const v1::KernelEfficiency* kernel = nullptr;
  switch (op.kind) {
    case model::OpKind::kAttention:
      if (profile_.attention().prefill_max_compute_efficiency() > 0) {
        // Its own kernel model: tile efficiency rises with the query tokens
        // per sequence (a decode step has one), the KV read bounds decode.
        const v1::AttentionEfficiency& a = profile_.attention();
        const double per_sequence = static_cast<double>(shape.new_tokens) /
                                    static_cast<double>(std::max<int64_t>(1, shape.sequences));
        // Query tiles of 128 rows per sequence and head fill the SMs; each
        // sequence's KV heads are the independent streams of a decode.
        const double sequences = static_cast<double>(std::max<int64_t>(1, shape.sequences));
        const double tiles =
            sequences * static_cast<double>(op.heads) * std::ceil(per_sequence / 128);
        const double units = sequences * static_cast<double>(op.kv_heads);
        compute_efficiency = a.prefill_max_compute_efficiency() * per_sequence /
                             (per_sequence + a.prefill_tokens_half()) * tiles /
                             (tiles + a.tiles_half());
        memory_efficiency = a.memory_efficiency() * units / (units + a.units_half());
        if (activation_flops_per_s_ > 0 && compute_efficiency > 0) {
          compute_s = cost.flops / (activation_flops_per_s_ * compute_efficiency);
        }
        memory_s = cost.bytes / (bandwidth * memory_efficiency);
        launch_s = a.launch_s();
        break;
      }
      [[fallthrough]];  // no attention fit: the GEMM figures
    case model::OpKind::kGemm:
    case model::OpKind::kHead: {
      // A grouped expert GEMM sits on the curve at each expert's rows, not
      // the step's: small per-expert batches run far below peak. Attention
      // and unquantized GEMMs (the head, the router) multiply 16-bit
      // operands: the BF16 curve at the activation rate, nothing quantized.
      const bool sixteen_bit = op.kind == model::OpKind::kAttention || op.unquantized;
      const v1::GemmEfficiency& curve = sixteen_bit ? activation_curve_ : gemm_curve_;
      const double rate = sixteen_bit ? activation_flops_per_s_ : matrix_flops_per_s_;
      const double rows = model::RowsPerKernel(op, shape);
      compute_efficiency =
          curve.max_compute_efficiency() * rows / (rows + curve.rows_half());
      memory_efficiency = curve.memory_efficiency();
      if (rate > 0 && compute_efficiency > 0) {
        compute_s = cost.flops / (rate * compute_efficiency);
      }
      memory_s = cost.bytes / (bandwidth * memory_efficiency);
      launch_s = curve.launch_s();
      if (curve.input_quant_bytes_per_element() > 0 && op.out_features > 0) {
        // The activations quantized before the GEMM, a memory pass of its
        // own: rows x in_features elements (FLOPs / (2 x out_features)).
        const double elements = cost.flops / (2 * static_cast<double>(op.out_features));
        quantize_s = curve.input_quant_bytes_per_element() * elements /
                     (bandwidth * memory_efficiency);
      }
      break;
    }
    case model::OpKind::kNorm:
      kernel = &profile_.norm();
      break;
    case model::OpKind::kActivation:
      kernel = &profile_.activation();
      break;
    case model::OpKind::kRope:
      kernel = &profile_.rope();
      break;
    case model::OpKind::kResidualAdd:
      kernel = &profile_.residual_add();
      break;
    case model::OpKind::kEmbedding:
      kernel = &profile_.embedding();
      break;
    case model::OpKind::kSampler:
      // No sampler kernel was measured: a row reduction (argmax, softmax, a
      // draw) takes the fitted norm kernels' figures (also a per-row
      // reduction), an elementwise pass the activation kernels'.
      kernel = op.sampler_reduction ? &profile_.norm() : &profile_.activation();
      break;
  }
  if (kernel != nullptr) {
    memory_efficiency = kernel->memory_efficiency();
    memory_s = cost.bytes / (bandwidth * memory_efficiency);
    // Separate instances (the two residual adds, two norms) are separate kernels.
    launch_s = kernel->launch_s() * static_cast<double>(op.count);
  }
  if (launch_s > std::max(compute_s, memory_s)) {
    cost.bound = Bound::kLaunch;
    cost.efficiency = 1;
  } else if (compute_s >= memory_s) {
    cost.bound = Bound::kCompute;
    cost.efficiency = compute_efficiency;
  } else {
    cost.bound = Bound::kMemory;
    cost.efficiency = memory_efficiency;
  }
  cost.time_s = std::max(compute_s, memory_s) + launch_s + quantize_s;
  return cost;
}

double CostModel::Time(const std::vector<model::Op>& ops,
                       const model::StepShape& shape) const {
  double total = 0;
  for (const model::Op& op : ops) total += Op(op, shape).time_s;
  return total;
}

double CostModel::LayersTime(const model::ModelGraph& graph, int64_t first_layer,
                             int64_t num_layers, const model::StepShape& shape) const {
  const std::vector<int64_t> counts = graph.KindCounts(first_layer, num_layers);
  double total = 0;
  for (size_t k = 0; k < counts.size(); ++k) {
    if (counts[k] == 0) continue;
    total += static_cast<double>(counts[k]) * Time(graph.layer_kinds[k].ops, shape);
  }
  return total;
}

}  // namespace shardsim::cost
