// The fidelity suite: every measurement in shared/calibration predicted by
// the simulator, with the error per category. Op times are judged leave-one-
// model-out (fit on the other models, predict this one); collectives are fitted
// on DGX A100 all-reduces and judged there and, held out, on send/recv and on
// the 4x A100 PCIe box with NVLink pairs; static-batch throughput and first-
// token latency replay TensorRT-LLM 0.9's published A100 runs end to end; the
// memory lines are vLLM's profiling log for Llama-3-8B.
#ifndef SHARDSIM_SIM_FIDELITY_FIDELITY_H_
#define SHARDSIM_SIM_FIDELITY_FIDELITY_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "sim/cost/calibration.h"

namespace shardsim::fidelity {

struct Category {
  std::string name;      // "op time: GEMM (leave-one-model-out)"
  std::string basis;     // how the prediction was made (held out or fitted)
  cost::ErrorSummary error;
};

// One predicted measurement, for the detailed listing.
struct Line {
  std::string category;
  std::string what;
  double measured = 0;
  double predicted = 0;
  std::string unit;
};

struct Report {
  std::vector<Category> categories;
  std::vector<Line> lines;  // end-to-end and memory lines, one by one
};

struct Options {
  std::string calibration_dir = "../shared/calibration";
  std::string topologies_dir = "topologies";
  std::string models_dir = "models";
  // The shardsim binary, run once per end-to-end row (one SimGrid
  // simulation per process). Empty: skip the end-to-end categories.
  std::string shardsim_binary;
  bool ops = true;
  bool collectives = true;
  bool end_to_end = true;
  bool memory = true;
};

absl::StatusOr<Report> Run(const Options& options);

// The report as a table for people.
std::string Format(const Report& report);

}  // namespace shardsim::fidelity

#endif  // SHARDSIM_SIM_FIDELITY_FIDELITY_H_
