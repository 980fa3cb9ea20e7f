#include "sim/scenario/runtime_profile.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "sim/base/units.h"
#include "sim/memory/runtime_memory.h"

namespace shardsim::scenario {

namespace {

// Shared measurements (../shared/calibration/public/framework_overheads.csv,
// copied under topologies/calibration_data/public/).
//
// Host time to launch one kernel from PyTorch through Inductor's generated
// launcher, a 19-argument kernel: 9.1 us (tritonbench PR #1017, GB200; raw
// cuLaunchKernel is 3.0-3.3 us, the Triton binder 4.7-5.6 us). vLLM's and
// SGLang's eager steps launch their kernels this way.
constexpr double kPythonKernelLaunchS = 9.1e-6;
// A C++ runtime's launch: raw cuLaunchKernel of a 19-argument kernel, 3.3 us
// (same source), for TensorRT-LLM's C++ executor.
constexpr double kCppKernelLaunchS = 3.3e-6;
// One CUDA graph launch: 15.5 us, the intercept of a least-squares line
// through the six graph-replay wall times of chains of 8-117 no-op kernels
// (ocannl issue #488, RTX 5070 Ti, CUDA 13.3: 19.4-82.9 us, slope 0.57 us a
// node). The per-node part is the kernels' own device floor, which the GPU
// profile's launch_s terms already charge.
constexpr double kGraphLaunchS = 15.5e-6;
// CPU time per step of a Python engine's scheduler, input preparation and
// output processing: ~4 ms, vLLM issue #6854's nsys trace of the GPU idle
// between decode steps (v0.5.x); the pre-v0.6 profile of Llama-3-8B on one
// H100 (vLLM v0.6.0 blog: 13 ms a token, 29% scheduling) gives 3.8 ms. The
// only per-step measurements found, from before the engines overlapped this
// work with the GPU: an upper bound for today's schedulers.
constexpr double kPythonSchedulerStepS = 4e-3;

// vLLM's default CUDA-graph capture sizes: [1, 2, 4] + range(8, 256, 8) +
// range(256, max + 1, 16) with max = min(max_num_seqs x 2, 512) = 512 at the
// default max_num_seqs of 256 (vllm/config/compilation.py,
// cudagraph_capture_sizes; vllm/config/vllm.py). A decode batch is padded up
// to the next size; a larger one runs without a graph
// (vllm/v1/cudagraph_dispatcher.py).
std::vector<int64_t> VllmCaptureSizes() {
  std::vector<int64_t> sizes = {1, 2, 4};
  for (int64_t b = 8; b < 256; b += 8) sizes.push_back(b);
  for (int64_t b = 256; b <= 512; b += 16) sizes.push_back(b);
  return sizes;
}

// The sampler's kernels, as each engine's source runs them for a batch of
// one kind (every request GREEDY, or every one TOP_P without top-k, min-p,
// penalties or logprobs). Bytes are per logit of a sampled row: what each
// kernel reads plus writes, FP32 after the cast; `a` is the logits' own
// width (the head's output dtype). These are counts from the code, not fits:
// no sampler timing by (batch, vocabulary, GPU) was found to fit them on.
model::SamplerPass Pass(std::string name, bool reduction, int64_t bytes, int64_t kernels = 1) {
  return model::SamplerPass{std::move(name), reduction, bytes, kernels};
}
constexpr bool kReduction = true;
constexpr bool kElementwise = false;

// A radix sort of FP32 keys over the vocabulary with `index_bytes` indices:
// 4 digit passes of 8 bits (CUB's onesweep radix sort, which torch.sort and
// TensorRT-LLM's segmented sort run), each reading and writing every key and
// index. The digit histograms' extra read is left out.
model::SamplerPass RadixSort(int64_t index_bytes) {
  return Pass("sort", kElementwise, 4 * 2 * (4 + index_bytes), 4);
}

// vLLM V1 (vllm/v1/sample/sampler.py, Sampler.forward and sample): the
// logits are cast to FP32 ("Use float32 for the logits"); an all-greedy
// batch returns greedy_sample's argmax; otherwise apply_temperature divides
// in place and TopKTopPSampler (vllm/v1/sample/ops/topk_topp_sampler.py)
// runs, with the FlashInfer sampler on by default on CUDA (vLLM PR #40376):
// top-p alone is logits.softmax(dim=-1, dtype=float32) then
// flashinfer.sampling.top_p_sampling_from_probs (flashinfer_sample). Its
// rejection sampler (FlashInfer blog, 2025-03-10, "Dual Pivot Rejection
// Sampling") draws a token by inverse transform over the row and checks the
// pivot's mass: two reads of the probabilities a round; the first round
// accepts a token inside the nucleus with probability ~top_p (0.9-0.95 in
// common settings), so further rounds are left out.
// SGLang (python/sglang/srt/layers/logits_processor.py, _get_logits:
// `logits[:, :vocab_size].float()`; python/sglang/srt/layers/sampler.py:
// argmax for an all-greedy batch, else logits.div_(temperatures), softmax
// and FlashInfer's top_k_top_p_sampling_from_probs) runs the same passes.
std::vector<model::SamplerPass> FlashInferSampler(v1::Sampling sampling, int64_t a) {
  std::vector<model::SamplerPass> passes = {Pass("cast_fp32", kElementwise, a + 4)};
  if (sampling == v1::TOP_P) {
    passes.push_back(Pass("temperature", kElementwise, 4 + 4));
    passes.push_back(Pass("softmax", kReduction, 4 + 4));
    passes.push_back(Pass("top_p_draw", kReduction, 2 * 4));
  } else {
    passes.push_back(Pass("argmax", kReduction, 4));
  }
  return passes;
}

// The plain PyTorch sampler (GENERIC): greedy is one argmax over the
// logits as the head wrote them; top-p is the sort-based path vLLM keeps as
// its fallback (topk_topp_sampler.py, apply_top_k_top_p_pytorch and
// random_sample; HF transformers' TopPLogitsWarper sorts alike): cast,
// temperature, sort with int64 indices, softmax and cumsum of the sorted
// row, the mask (a compare to a bool, then masked_fill_), scatter back,
// softmax, exponential noise, and probs / noise with its argmax.
std::vector<model::SamplerPass> PyTorchSampler(v1::Sampling sampling, int64_t a) {
  if (sampling != v1::TOP_P) return {Pass("argmax", kReduction, a)};
  return {Pass("cast_fp32", kElementwise, a + 4),
          Pass("temperature", kElementwise, 4 + 4),
          RadixSort(8),
          Pass("softmax_sorted", kReduction, 4 + 4),
          Pass("cumsum", kReduction, 4 + 4),
          Pass("top_p_mask", kElementwise, (4 + 1) + (4 + 1 + 4), 2),
          Pass("scatter", kElementwise, 4 + 8 + 4),
          Pass("softmax", kReduction, 4 + 4),
          Pass("noise", kElementwise, 4),
          Pass("draw", kReduction, (4 + 4 + 4) + 4, 2)};
}

// TensorRT-LLM's sampling layers (cpp/tensorrt_llm/layers/,
// DynamicDecodeLayer; the v0.9 TensorRT engine flow): greedy is top-k
// sampling with k = 1 (invokeBatchTopKSampling: a first kernel reads each
// row and keeps each block's best, a second picks among them); top-p is
// TopPSamplingLayer: a softmax (invokeAddBiasSoftMax), a CUB segmented radix
// sort of the probabilities with int32 ids, and a pass that walks the
// sorted row to the nucleus and draws (invokeBatchTopPSampling).
std::vector<model::SamplerPass> TrtllmSampler(v1::Sampling sampling, int64_t a) {
  if (sampling != v1::TOP_P) return {Pass("top1", kReduction, a, 2)};
  return {Pass("softmax", kReduction, a + 4), RadixSort(4), Pass("top_p_draw", kReduction, 4)};
}

std::string Ms(double s) { return absl::StrFormat("%g ms", s * 1e3); }
std::string Us(double s) { return absl::StrFormat("%g us", s * 1e6); }

}  // namespace

v1::RuntimeName ResolvedRuntimeName(const v1::Runtime& runtime) {
  return runtime.name() == v1::RUNTIME_NAME_UNSPECIFIED ? v1::GENERIC : runtime.name();
}

std::string RuntimeNameText(v1::RuntimeName name) {
  return v1::RuntimeName_Name(name == v1::RUNTIME_NAME_UNSPECIFIED ? v1::GENERIC : name);
}

// The catalog. Every term a runtime does not set stays GENERIC's (off).
RuntimeProfile CatalogProfile(v1::RuntimeName name) {
  RuntimeProfile p;
  p.name = name == v1::RUNTIME_NAME_UNSPECIFIED ? v1::GENERIC : name;
  switch (p.name) {
    case v1::VLLM:
      // V1 engine: the engine core runs apart from the API server and the
      // output processing (vLLM V1 blog: up to 1.7x over V0), and async
      // scheduling (--async-scheduling) prepares step n+1 while the GPU
      // runs step n: modelled as fully overlapped.
      p.cpu_step_s = kPythonSchedulerStepS;
      p.cpu_overlaps_gpu = true;
      // cudagraph_mode FULL_AND_PIECEWISE (V1 default): decode-only batches
      // replay full graphs; prefill and mixed batches run attention eagerly
      // between piecewise graphs, taken here as eager (their kernels are
      // long enough that the host never bounds them).
      p.cuda_graphs = true;
      p.graph_batch_sizes = VllmCaptureSizes();
      p.max_graph_batch = p.graph_batch_sizes.back();
      p.graph_launch_s = kGraphLaunchS;
      p.kernel_launch_s = kPythonKernelLaunchS;
      // disable_custom_all_reduce defaults to False (vllm/config/parallel.py).
      p.custom_all_reduce = true;
      // The GPU profile's vllm_attention was fitted to vLLM's own attention
      // backend (AIConfigurator's grids, FA3/FlashInfer): the engine's kernels.
      p.vllm_attention = true;
      // The decode graph ends at the hidden states: compute_logits and the
      // sampler run after it (vllm/v1/worker/gpu_model_runner.py,
      // execute_model then sample_tokens).
      p.sampler_in_graph = false;
      break;
    case v1::SGLANG:
      // Overlap scheduler, on by default since v0.4 (LMSYS v0.4 blog: 1.1x
      // throughput from overlapping the CPU with the GPU). No SGLang
      // per-step figure was found: vLLM's Python scheduler's stands in.
      p.cpu_step_s = kPythonSchedulerStepS;
      p.cpu_overlaps_gpu = true;
      // CUDA graphs on decode, padded to SGLang's captured sizes, up to
      // cuda_graph_max_bs: by GPU memory and tp (SglangCudaGraphMaxBatch,
      // which scenario::LoadScenario applies), 160 here: SGLang's own value
      // when the GPU's memory is unknown (server_args.py,
      // _handle_gpu_memory_settings, "Fallback defaults when gpu_mem is None").
      p.cuda_graphs = true;
      p.graph_batch_sizes = SglangCaptureSizes(160);
      p.max_graph_batch = 160;
      p.graph_launch_s = kGraphLaunchS;
      p.kernel_launch_s = kPythonKernelLaunchS;
      // sgl-kernel's custom all-reduce is vLLM's kernel, adapted (same
      // one-shot / two-shot rule).
      p.custom_all_reduce = true;
      // The graph holds the forward and the logits processor (its FP32 cast
      // included); the sampler runs after the replay
      // (python/sglang/srt/model_executor/model_runner.py, sample): all of
      // its passes are taken as launched after the graph.
      p.sampler_in_graph = false;
      break;
    case v1::TRTLLM:
      // The CPU step is unmeasured, so none is charged: no public per-step
      // CPU figure was found for the C++ executor of the TensorRT engine
      // flow, nor for the PyTorch backend, whose overlap scheduler
      // (disable_overlap_scheduler defaults to False, tensorrt_llm/llmapi/
      // llm_args.py) prepares step n+1 while the GPU runs step n; its docs
      // give no time for that work. Set runtime.cpu_step_s (with
      // cpu_overlaps_gpu) to plan with one.
      // CUDA graphs are off by default in the TensorRT engine flow the
      // fidelity set ran (TensorRT-LLM v0.9), so steps are eager at a C++
      // launch per kernel. (The PyTorch backend, the default of TRT-LLM 1.x,
      // captures decode graphs by default, cuda_graph_config max_batch_size
      // 128 without padding: sizes 1-31, 32, 64, 128, a batch of another
      // size running eagerly (CudaGraphConfig in llm_args.py); modelling it
      // needs graphs taken only at their exact sizes, not done here.) Its
      // own custom all-reduce kernels have switch points not read yet: NCCL
      // here.
      p.kernel_launch_s = kCppKernelLaunchS;
      break;
    default:
      break;
  }
  return p;
}

RuntimeProfile ResolveRuntimeProfile(const v1::Runtime& runtime) {
  RuntimeProfile p = CatalogProfile(ResolvedRuntimeName(runtime));
  if (runtime.has_cpu_step_s()) p.cpu_step_s = runtime.cpu_step_s();
  if (runtime.has_cpu_overlaps_gpu()) p.cpu_overlaps_gpu = runtime.cpu_overlaps_gpu();
  if (runtime.has_cuda_graphs()) p.cuda_graphs = runtime.cuda_graphs();
  if (runtime.has_kernel_launch_s()) p.kernel_launch_s = runtime.kernel_launch_s();
  if (runtime.has_graph_launch_s()) p.graph_launch_s = runtime.graph_launch_s();
  if (runtime.has_max_graph_batch() && p.name == v1::SGLANG) {
    // SGLang derives its captured sizes from cuda_graph_max_bs, and its
    // largest graph is the largest of them (cuda_graph_runner.py: max_bs =
    // max(capture_bs)).
    p.graph_batch_sizes = SglangCaptureSizes(runtime.max_graph_batch());
    p.max_graph_batch = p.graph_batch_sizes.empty() ? 0 : p.graph_batch_sizes.back();
  } else if (runtime.has_max_graph_batch()) {
    p.max_graph_batch = runtime.max_graph_batch();
    // Captured sizes above the new maximum are not captured.
    while (!p.graph_batch_sizes.empty() && p.graph_batch_sizes.back() > p.max_graph_batch) {
      p.graph_batch_sizes.pop_back();
    }
    if (!p.graph_batch_sizes.empty() && p.graph_batch_sizes.back() < p.max_graph_batch) {
      p.graph_batch_sizes.push_back(p.max_graph_batch);
    }
  }
  if (runtime.has_custom_all_reduce()) p.custom_all_reduce = runtime.custom_all_reduce();
  if (runtime.sampling() != v1::SAMPLING_UNSPECIFIED) p.sampling = runtime.sampling();
  return p;
}

std::vector<int64_t> SglangCaptureSizes(int64_t max_bs) {
  std::vector<int64_t> sizes;
  for (int64_t b : {1, 2, 4, 8, 12}) {
    if (b <= max_bs) sizes.push_back(b);
  }
  for (int64_t b = 16; b <= std::min<int64_t>(256, max_bs); b += 8) sizes.push_back(b);
  for (int64_t b = 272; b < 512 && b <= max_bs; b += 16) sizes.push_back(b);
  for (int64_t b = 512; b <= max_bs; b += 32) sizes.push_back(b);
  return sizes;
}

int64_t SglangCudaGraphMaxBatch(int64_t gpu_capacity_bytes, int tp, int pp) {
  return memory::SglangServerDefaults(gpu_capacity_bytes, tp, pp).cuda_graph_max_bs;
}

// The scheduler defaults per runtime. Fields left out keep
// serving::ResolveLimits' (vLLM's former) defaults.
v1::SchedulerConfig RuntimeSchedulerDefaults(v1::RuntimeName name, int64_t gpu_capacity_bytes,
                                             const std::string& gpu_name, int tp, int pp) {
  v1::SchedulerConfig c;
  switch (name) {
    case v1::VLLM: {
      // vLLM V1 picks max_num_seqs and max_num_batched_tokens by the GPU and
      // the usage context (vllm/engine/arg_utils.py, EngineArgs.
      // get_batch_defaults, formerly _set_default_args_v1): for the API
      // server (`vllm serve`), 1024 and 8192 on GPUs of 70 GiB or more
      // whose name does not contain "a100" (vLLM PR #17885: larger batches
      // cost A100s throughput), else 256 and 2048. Chunked prefill and
      // 16-token blocks are V1's defaults, as ResolveLimits has them.
      const bool large = gpu_capacity_bytes >= int64_t{70} * (int64_t{1} << 30) &&
                         !absl::StrContains(absl::AsciiStrToLower(gpu_name), "a100");
      c.set_max_num_seqs(large ? 1024 : 256);
      c.set_max_num_batched_tokens(large ? 8192 : 2048);
      break;
    }
    case v1::SGLANG: {
      // A step's tokens: chunked_prefill_size, by GPU memory (server_args.py,
      // _handle_gpu_memory_settings; 8192 on 60-160 GiB GPUs). Running
      // requests: the request pool model_runner.py sizes when
      // --max-running-requests is unset, min(max(pool tokens / context
      // length x 512, 2048), 4096); the model's context length is not in a
      // model spec here, so its floor, 2048. KV pages of one token
      // (page_size defaults to 1).
      c.set_max_num_batched_tokens(
          memory::SglangServerDefaults(gpu_capacity_bytes, tp, pp).chunked_prefill_size);
      c.set_max_num_seqs(2048);
      c.set_block_size(1);
      break;
    }
    case v1::TRTLLM:
      // trtllm-serve's --max_batch_size and --max_num_tokens default to
      // BuildConfig's 2048 and 8192 (tensorrt_llm/commands/serve.py,
      // tensorrt_llm/builder.py); enable_chunked_prefill defaults to False
      // and KV blocks hold tokens_per_block = 32 tokens (tensorrt_llm/
      // llmapi/llm_args.py, BaseLlmArgs and KvCacheConfig). Without chunked
      // prefill a prompt longer than max_num_tokens is refused, as
      // TRT-LLM refuses it. (Its GUARANTEED_NO_EVICT admission is not
      // modelled: the scheduler is vLLM's.)
      c.set_max_num_seqs(2048);
      c.set_max_num_batched_tokens(8192);
      c.set_chunked_prefill(false);
      c.set_block_size(32);
      break;
    default:
      break;
  }
  return c;
}

std::vector<model::SamplerPass> RuntimeProfile::SamplerPasses(v1::DType logits_dtype) const {
  const int64_t a = BytesOf(1, logits_dtype);
  switch (name) {
    case v1::VLLM:
    case v1::SGLANG:
      return FlashInferSampler(sampling, a);
    case v1::TRTLLM:
      return TrtllmSampler(sampling, a);
    default:
      return PyTorchSampler(sampling, a);
  }
}

bool RuntimeProfile::IsDecodeOnly(const model::StepShape& shape) {
  return shape.sequences > 0 && shape.new_tokens == shape.sequences;
}

model::StepShape RuntimeProfile::RunShape(const model::StepShape& step_shape) const {
  model::StepShape shape = step_shape;
  if (!IsDecodeOnly(step_shape) || !UsesGraph(step_shape.sequences)) return shape;
  const int64_t pad = GraphBatch(step_shape.sequences) - step_shape.sequences;
  shape.sequences += pad;
  shape.new_tokens += pad;
  shape.head_rows += pad;
  shape.context_tokens += pad;
  shape.attention_pairs += pad;
  shape.score_elements += pad;
  return shape;
}

bool RuntimeProfile::UsesGraph(int64_t sequences) const {
  return cuda_graphs && sequences > 0 && sequences <= max_graph_batch;
}

int64_t RuntimeProfile::GraphBatch(int64_t sequences) const {
  if (!UsesGraph(sequences)) return sequences;
  auto it = std::lower_bound(graph_batch_sizes.begin(), graph_batch_sizes.end(), sequences);
  return it == graph_batch_sizes.end() ? sequences : *it;
}

double RuntimeProfile::StepTime(double gpu_s, int64_t kernels, bool decode_only,
                                int64_t sequences, bool first_stage,
                                int64_t sampler_kernels) const {
  double t = gpu_s;
  if (decode_only && UsesGraph(sequences)) {
    // Kernels launched after the graph (the sampler's) are enqueued while
    // it runs; they bind the step only when the host takes longer.
    const int64_t after_graph = sampler_in_graph ? 0 : sampler_kernels;
    t = graph_launch_s + std::max(gpu_s, static_cast<double>(after_graph) * kernel_launch_s);
  } else if (kernel_launch_s > 0) {
    t = std::max(gpu_s, static_cast<double>(kernels) * kernel_launch_s);
  }
  if (first_stage && cpu_step_s > 0) {
    t = cpu_overlaps_gpu ? std::max(t, cpu_step_s) : t + cpu_step_s;
  }
  return t;
}

std::string RuntimeProfile::Describe() const {
  std::string out = RuntimeNameText(name);
  absl::StrAppend(&out, ": ");
  if (cpu_step_s > 0) {
    absl::StrAppend(&out, "CPU ", Ms(cpu_step_s), " a step",
                    cpu_overlaps_gpu ? " (overlapped with the GPU)" : " (added to the GPU)",
                    ", ");
  } else {
    absl::StrAppend(&out, "no CPU step time, ");
  }
  if (cuda_graphs) {
    absl::StrAppend(&out, "CUDA graphs on decode up to ", max_graph_batch, " sequences (",
                    graph_batch_sizes.empty() ? "unpadded" : "padded to captured sizes", ", ",
                    Us(graph_launch_s), " a launch), ");
  }
  if (kernel_launch_s > 0) {
    absl::StrAppend(&out, "eager steps host-bound at ", Us(kernel_launch_s), " a kernel, ");
  } else {
    absl::StrAppend(&out, "no host launch bound, ");
  }
  absl::StrAppend(&out, custom_all_reduce ? "custom all-reduce" : "NCCL all-reduce",
                  vllm_attention ? ", vLLM attention kernels" : "");
  // The sampler, as its passes for BF16 logits (the bytes move with the
  // head's dtype, the kernels do not).
  const std::vector<model::SamplerPass> passes = SamplerPasses(v1::BF16);
  std::vector<std::string> names;
  int64_t kernels = 0;
  int64_t bytes = 0;
  for (const model::SamplerPass& pass : passes) {
    names.push_back(pass.name);
    kernels += pass.kernels;
    bytes += pass.bytes_per_logit;
  }
  absl::StrAppend(&out, ", sampling ", sampling == v1::TOP_P ? "TOP_P" : "GREEDY", " (",
                  absl::StrJoin(names, " + "), ": ", kernels, kernels == 1 ? " kernel, " : " kernels, ", bytes,
                  " B a BF16 logit",
                  cuda_graphs ? (sampler_in_graph ? ", in the CUDA graph" : ", after the CUDA graph")
                              : "",
                  ")");
  return out;
}

}  // namespace shardsim::scenario
