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
//   sampler the runtime's sampler kernels for the scenario's sampling
//           (runtime.sampling: GREEDY unless set), over the gathered
//           full-vocabulary logits of each sampled row, on the last pipeline
//           stage: ops of the step's program ("sample_*" in `shardsim ops`),
//           each HBM-bound at the GPU profile's efficiency for its kernel
//           kind (model::SamplerPass). Where the sampler runs after the CUDA
//           graph (vLLM, SGLang), a graph step's host also launches those
//           kernels: the step takes graph_launch_s + max(gpu_s, sampler
//           kernels x kernel_launch_s).
// GENERIC has every host term off: the GPU's time alone. Its sampler is the
// plain PyTorch one (one argmax pass for GREEDY, the sort-based top-p for
// TOP_P): the GPU samples in any engine.
#ifndef SHARDSIM_SIM_SCENARIO_RUNTIME_PROFILE_H_
#define SHARDSIM_SIM_SCENARIO_RUNTIME_PROFILE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "sim/model/graph.h"
#include "sim/model/model_spec.h"
#include "sim/proto/scenario.pb.h"
#include "sim/proto/serving.pb.h"

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
  // How requests sample (GREEDY or TOP_P), and whether the sampler's
  // kernels are captured in the decode CUDA graph (else launched after it).
  v1::Sampling sampling = v1::GREEDY;
  bool sampler_in_graph = false;

  // The sampler's kernels for `sampling` over logits of `logits_dtype`.
  std::vector<model::SamplerPass> SamplerPasses(v1::DType logits_dtype) const;

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
  // step; `sampler_kernels` of them are the sampler's (launched by the host
  // after a CUDA graph unless sampler_in_graph). With GENERIC's terms,
  // exactly `gpu_s`.
  double StepTime(double gpu_s, int64_t kernels, bool decode_only, int64_t sequences,
                  bool first_stage, int64_t sampler_kernels = 0) const;
  // One line for reports: "VLLM: CPU 4 ms per step overlapped with the GPU,
  // CUDA graphs on decode (...), ...".
  std::string Describe() const;
};

// The catalog entry for `runtime`'s name with `runtime`'s own fields laid
// over it.
RuntimeProfile ResolveRuntimeProfile(const v1::Runtime& runtime);

// The catalog entry of `name` (GENERIC for UNSPECIFIED).
RuntimeProfile CatalogProfile(v1::RuntimeName name);

// The decode batch sizes SGLang captures in CUDA graphs up to `max_bs`
// (python/sglang/srt/server_args.py, _generate_cuda_graph_batch_sizes,
// without speculative decoding): 1, 2, 4, 8, 12, every 8 from 16 to 256,
// every 16 from 272 to 496, every 32 from 512; a batch is padded up to the
// next (disable_cuda_graph_padding defaults to False).
std::vector<int64_t> SglangCaptureSizes(int64_t max_bs);

// The serving.scheduler fields the named runtime sets by default on GPUs of
// `gpu_capacity_bytes` named `gpu_name`, `tp` x `pp` GPUs a replica (each
// default's source in runtime_profile.cc). GENERIC sets none, leaving
// serving::ResolveLimits' defaults. scenario::LoadScenario fills the fields a
// scenario leaves unset from these.
v1::SchedulerConfig RuntimeSchedulerDefaults(v1::RuntimeName name, int64_t gpu_capacity_bytes,
                                             const std::string& gpu_name, int tp, int pp);

// SGLang's cuda_graph_max_bs on such GPUs (server_args.py, by GPU memory and
// tp); scenario::LoadScenario sets runtime.max_graph_batch from it when a
// SGLANG scenario leaves it unset.
int64_t SglangCudaGraphMaxBatch(int64_t gpu_capacity_bytes, int tp, int pp);

}  // namespace shardsim::scenario

#endif  // SHARDSIM_SIM_SCENARIO_RUNTIME_PROFILE_H_
