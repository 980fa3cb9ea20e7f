#include "sim/scenario/runtime_profile.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

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
      break;
    case v1::SGLANG:
      // Overlap scheduler, on by default since v0.4 (LMSYS v0.4 blog: 1.1x
      // throughput from overlapping the CPU with the GPU). No SGLang
      // per-step figure was found: vLLM's Python scheduler's stands in.
      p.cpu_step_s = kPythonSchedulerStepS;
      p.cpu_overlaps_gpu = true;
      // CUDA graphs on decode up to cuda_graph_max_bs = 160 on GPUs of 25 GB
      // or more (python/sglang/srt/server_args.py). Its padding to the
      // captured sizes is not modelled: a batch runs at its own size.
      p.cuda_graphs = true;
      p.max_graph_batch = 160;
      p.graph_launch_s = kGraphLaunchS;
      p.kernel_launch_s = kPythonKernelLaunchS;
      // sgl-kernel's custom all-reduce is vLLM's kernel, adapted (same
      // one-shot / two-shot rule).
      p.custom_all_reduce = true;
      break;
    case v1::TRTLLM:
      // C++ executor: no public per-step CPU figure was found, so no CPU
      // step is charged. CUDA graphs are off by default in the TensorRT
      // engine flow the fidelity set ran (TensorRT-LLM v0.9), so steps are
      // eager at a C++ launch per kernel. Its own custom all-reduce kernels
      // have switch points not read yet: NCCL here.
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
  if (runtime.has_max_graph_batch()) {
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
  return p;
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
                                int64_t sequences, bool first_stage) const {
  double t = gpu_s;
  if (decode_only && UsesGraph(sequences)) {
    t = graph_launch_s + gpu_s;
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
                  vllm_attention ? ", vLLM attention kernels" : "",
                  ", sampling not modelled");
  return out;
}

}  // namespace shardsim::scenario
