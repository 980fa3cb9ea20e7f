#include "sim/cost/roofline.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "sim/base/units.h"
#include "sim/hardware/cluster.h"

namespace shardsim::cost {

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

CostModel::CostModel(const v1::GpuSpec& gpu, const model::ModelDims& dims,
                     CostParams params)
    : gpu_(gpu), dims_(dims), params_(params) {
  v1::DType matrix = dims.weight_dtype == v1::FP8 ? v1::FP8 : dims.activation_dtype;
  matrix_flops_per_s_ = hardware::DenseFlopsPerSecond(gpu, matrix);
  for (v1::DType fallback : {v1::BF16, v1::FP16, v1::FP32}) {
    if (matrix_flops_per_s_ > 0) break;
    matrix_flops_per_s_ = hardware::DenseFlopsPerSecond(gpu, fallback);
    note_ = absl::StrCat(gpu.name(), " has no ", DTypeName(matrix),
                         " tensor rate; matrix work uses its ",
                         DTypeName(fallback), " rate");
  }
  vector_flops_per_s_ = hardware::DenseFlopsPerSecond(gpu, v1::FP32);
  if (vector_flops_per_s_ <= 0) vector_flops_per_s_ = matrix_flops_per_s_;
}

OpCost CostModel::Op(const model::Op& op, const model::StepShape& shape) const {
  OpCost cost;
  cost.flops = static_cast<double>(model::OpFlops(op, dims_, shape));
  cost.bytes = static_cast<double>(model::OpMemoryBytes(op, dims_, shape));
  const bool matrix = op.kind == model::OpKind::kGemm ||
                      op.kind == model::OpKind::kHead ||
                      op.kind == model::OpKind::kAttention;
  const double flops_per_s = matrix ? matrix_flops_per_s_ : vector_flops_per_s_;
  const double compute_s =
      flops_per_s > 0 ? cost.flops / (flops_per_s * params_.compute_efficiency) : 0;
  const double memory_s = cost.bytes / (gpu_.hbm_bandwidth_bytes_per_s() *
                                        params_.memory_efficiency);
  // Instances of an op (the two residual adds) are separate kernels.
  const double launch_s =
      params_.launch_overhead_s * static_cast<double>(
                                      op.kind == model::OpKind::kResidualAdd ||
                                              op.kind == model::OpKind::kNorm
                                          ? op.count
                                          : 1);
  if (launch_s > std::max(compute_s, memory_s)) {
    cost.bound = Bound::kLaunch;
    cost.efficiency = 1;
  } else if (compute_s >= memory_s) {
    cost.bound = Bound::kCompute;
    cost.efficiency = params_.compute_efficiency;
  } else {
    cost.bound = Bound::kMemory;
    cost.efficiency = params_.memory_efficiency;
  }
  cost.time_s = std::max(compute_s, memory_s) + launch_s;
  return cost;
}

double CostModel::Time(const std::vector<model::Op>& ops,
                       const model::StepShape& shape) const {
  double total = 0;
  for (const model::Op& op : ops) total += Op(op, shape).time_s;
  return total;
}

}  // namespace shardsim::cost
