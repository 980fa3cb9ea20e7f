// How long an op takes on a GPU: a roofline with efficiencies.
//
//   time = max(FLOPs / (peak FLOPS[dtype] x compute_efficiency),
//              bytes / (HBM bandwidth x memory_efficiency))
//          + launch_overhead
//
// This is the documented default until efficiencies are fitted from
// measurements (shared/calibration): compute_efficiency 0.75 (measured
// best-case matmuls reach 80-87% of the dense datasheet peak on A100 and H100,
// gpu_measured_matmul_tflops.csv, and real shapes fall below the best case),
// memory_efficiency 0.80 (streaming kernels typically reach 80-90% of the HBM
// datasheet bandwidth), launch_overhead 3 us per kernel (a CUDA launch; engines
// that replay CUDA graphs pay less). No SimGrid here: a plain, testable class.
#ifndef SHARDSIM_SIM_COST_ROOFLINE_H_
#define SHARDSIM_SIM_COST_ROOFLINE_H_

#include <string>
#include <vector>

#include "sim/model/graph.h"
#include "sim/proto/hardware.pb.h"

namespace shardsim::cost {

struct CostParams {
  double compute_efficiency = 0.75;
  double memory_efficiency = 0.80;
  double launch_overhead_s = 3e-6;
};

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
  CostModel(const v1::GpuSpec& gpu, const model::ModelDims& dims,
            CostParams params = {});

  // Cost of all instances of `op` for a step of `shape` on one GPU.
  OpCost Op(const model::Op& op, const model::StepShape& shape) const;

  // Sum of Op() over `ops`.
  double Time(const std::vector<model::Op>& ops,
              const model::StepShape& shape) const;

  // Tensor-core rate used for matrix work, and the dtype it is for: the
  // activation dtype (weight-only quantized weights are dequantized), or FP8
  // for FP8 weights; falls back to FP16/BF16 when the GPU lacks the format.
  double matrix_flops_per_s() const { return matrix_flops_per_s_; }
  const std::string& note() const { return note_; }

 private:
  v1::GpuSpec gpu_;
  model::ModelDims dims_;
  CostParams params_;
  double matrix_flops_per_s_ = 0;
  double vector_flops_per_s_ = 0;  // CUDA cores, for elementwise ops
  std::string note_;  // why a fallback rate is used, if it is
};

}  // namespace shardsim::cost

#endif  // SHARDSIM_SIM_COST_ROOFLINE_H_
