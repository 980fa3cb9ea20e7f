// The named serving runtime's time terms: what a step costs besides the GPU's
// kernels and how the runtime runs them. A scenario picks one with
// `runtime { name: VLLM }` (or `--set runtime.name=VLLM`); any term can be
// replaced field by field (`runtime { name: VLLM cpu_step_s: 0.002 }`).
//
// The catalog, with each default's source, is the table in
// runtime_profile.cc (kept in code beside the rules that use it, so a reader
// sees the number, its citation and its effect in one place; `shardsim run`
// prints the resolved terms in its `runtime` line).
//
// What a stage's step costs under a profile (engine::Executor::RunStageStep):
//   gpu_s   the kernels' time from sim/cost (each kernel's fitted launch_s is
//           its device-side floor: AIConfigurator timed its kernels inside
//           CUDA graphs, so that floor is what a kernel costs in a graph)
//           plus the collectives.
//   host    CUDA graph (a decode-only step of at most max_graph_batch
//           sequences): one graph launch, graph_launch_s, before the GPU
//           starts; the batch is padded up to the next captured size where
//           the runtime pads (vLLM). Eager (prefill, mixed steps, larger
//           decodes): the host launches each kernel, kernel_launch_s apiece,
//           and the GPU cannot run ahead of it: the step's kernels take
//           max(gpu_s, kernels x kernel_launch_s).
//   cpu     cpu_step_s of scheduling, input preparation and output
//           processing per step, paid by the first pipeline stage: added to
//           the step, or, when cpu_overlaps_gpu, hidden behind the GPU's
//           step (the step takes max(gpu, cpu)).
// GENERIC has every term off: the GPU's time alone, as before runtimes
// existed. Sampling (logits to token) is not modelled: no public measurement
// by batch and vocabulary was found to fit it on.
#ifndef SHARDSIM_SIM_SCENARIO_RUNTIME_PROFILE_H_
#define SHARDSIM_SIM_SCENARIO_RUNTIME_PROFILE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "sim/model/graph.h"
#include "sim/proto/scenario.pb.h"

namespace shardsim::scenario {

// The runtime `runtime` names: UNSPECIFIED is GENERIC.
v1::RuntimeName ResolvedRuntimeName(const v1::Runtime& runtime);
// "GENERIC", "VLLM", "TRTLLM", "SGLANG".
std::string RuntimeNameText(v1::RuntimeName name);

struct RuntimeProfile {
  v1::RuntimeName name = v1::GENERIC;
  double cpu_step_s = 0;
  bool cpu_overlaps_gpu = false;
  bool cuda_graphs = false;
  double kernel_launch_s = 0;  // 0: the host never bounds an eager step
  double graph_launch_s = 0;
  int64_t max_graph_batch = 0;
  // Captured batch sizes a decode batch is padded up to (ascending, the
  // last max_graph_batch); empty: a batch runs at its own size.
  std::vector<int64_t> graph_batch_sizes;
  bool custom_all_reduce = false;
  // Attention uses the GPU profile's vllm_attention fit (vLLM's kernels).
  bool vllm_attention = false;

  // Whether `shape` is a decode-only step (one new token per sequence).
  static bool IsDecodeOnly(const model::StepShape& shape);
  // Whether a decode-only step of `sequences` replays a CUDA graph.
  bool UsesGraph(int64_t sequences) const;
  // The batch a decode of `sequences` runs at in its graph (padded up to
  // the next captured size), or `sequences` when it runs eagerly.
  int64_t GraphBatch(int64_t sequences) const;
  // The shape a step of `shape` computes: a decode-only step in a CUDA graph
  // padded up to GraphBatch (the padding rows are computed and
  // communicated; each attends to one token), else `shape`.
  model::StepShape RunShape(const model::StepShape& shape) const;
  // A stage's step time from its GPU time (`gpu_s`, collectives included)
  // and `kernels` launched, decode-only or not; `first_stage` pays the CPU
  // step. With GENERIC's terms, exactly `gpu_s`.
  double StepTime(double gpu_s, int64_t kernels, bool decode_only, int64_t sequences,
                  bool first_stage) const;
  // One line for reports: "VLLM: CPU 4 ms per step overlapped with the GPU,
  // CUDA graphs on decode (...), ...".
  std::string Describe() const;
};

// The catalog entry for `runtime`'s name with `runtime`'s own fields laid
// over it.
RuntimeProfile ResolveRuntimeProfile(const v1::Runtime& runtime);

// The catalog entry of `name` (GENERIC for UNSPECIFIED).
RuntimeProfile CatalogProfile(v1::RuntimeName name);

}  // namespace shardsim::scenario

#endif  // SHARDSIM_SIM_SCENARIO_RUNTIME_PROFILE_H_
