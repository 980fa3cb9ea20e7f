// The fidelity suite: every measurement in the project's calibration data
// (topologies/calibration_data, a cited subset of shared/calibration)
// predicted by the simulator, with the error per category. Op times are
// judged leave-one-model-out (fit on the other models, predict this one);
// GEMMs of H100, H200, L40S, B200 and A100 (AIConfigurator) by each GPU's own
// fit, BF16 and FP8 apart, and by the datasheet derivation with that GPU left
// out; decode attention over an FP8 KV cache by the own fit and by a fit
// that never saw FP8 KV; collectives are fitted
// on DGX A100 all-reduces and judged there and, held out, on send/recv and on
// the 4x A100 PCIe box with NVLink pairs; static-batch throughput and first-
// token latency replay TensorRT-LLM 0.9's published A100 runs end to end; the
// memory rows predict vLLM 0.19's start-up memory on 59 H100 runs, each
// model family held out in turn (sim/memory/vllm_memory.h).
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
  std::string calibration_dir = "topologies/calibration_data";
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

// The report as a table for people: per category n, median and p90 of the
// absolute relative error, and the signed median (+: predicted too slow /
// too large).
std::string Format(const Report& report);

// The same as one JSON object: {"categories": [{name, basis, n, median, p90,
// signed_median}], "lines": [{category, what, measured, predicted, unit}]},
// errors as fractions.
std::string FormatJson(const Report& report);

}  // namespace shardsim::fidelity

#endif  // SHARDSIM_SIM_FIDELITY_FIDELITY_H_
