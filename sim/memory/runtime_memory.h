// How SGLang and TensorRT-LLM size their KV caches at start-up: the rules of
// their own source, for runtime { name: SGLANG } and runtime { name: TRTLLM }
// (sim/memory/ledger.h uses them; vLLM's fitted model is vllm_memory.h).
//
// These are rules, not fits: ../shared/calibration/public holds start-up
// memory logs of vLLM only (its README lists no SGLang or TensorRT-LLM
// memory measurement), so nothing here is fitted, and `shardsim fidelity`
// has nothing to judge them against. The memory a process holds before its
// weights load (CUDA context, NCCL communicators, custom all-reduce buffers)
// is the same CUDA / PyTorch / NCCL stack in all three Python engines; it is
// taken from vLLM's fitted start-up terms (VllmMemory::init_non_torch_bytes)
// for want of a measurement of the other two.
//
// SGLang (python/sglang/srt/server_args.py, ServerArgs.
// _handle_gpu_memory_settings; python/sglang/srt/model_executor/
// model_runner.py, profile_max_num_token; read in the v0.5 line):
//   mem_fraction_static is the share of the GPU's memory that holds the
//   weights and the KV pool; the rest is left for activations and CUDA-graph
//   buffers. Unset, it is (gpu_mem - reserved) / gpu_mem rounded to 3
//   decimals, gpu_mem the GPU's total memory in MiB and reserved, in MiB,
//     512 (attention-backend metadata)
//     + 1.5 x max(chunked_prefill_size, 2048) (activations of a prefill chunk)
//     + 2 x cuda_graph_max_bs (CUDA-graph buffers)
//     + tp x pp / 8 x 1024 (large parallel groups),
//   at least 10 GiB on GPUs of more than 60 GiB (without DP attention,
//   speculative decoding or piecewise CUDA graphs, which add more).
//   chunked_prefill_size and cuda_graph_max_bs themselves go by gpu_mem and
//   tp (SglangDefaults below). The KV pool is what the fraction leaves after
//   the weights, measured against the memory free before they loaded:
//     pool = free_after_weights - free_before_weights x (1 - fraction)
//          = fraction x free_before_weights - weights.
//
// TensorRT-LLM (tensorrt_llm/llmapi/llm_args.py, KvCacheConfig;
// https://nvidia.github.io/TensorRT-LLM/examples/kvcacheconfig.html): the KV
// cache takes free_gpu_memory_fraction (default 0.9) of the memory free once
// the weights are loaded and a forward of max_num_tokens has run:
//     cache = fraction x (capacity - start-up - weights - activation peak).
#ifndef SHARDSIM_SIM_MEMORY_RUNTIME_MEMORY_H_
#define SHARDSIM_SIM_MEMORY_RUNTIME_MEMORY_H_

#include <cstdint>

namespace shardsim::memory {

// SGLang's memory-dependent server defaults for one GPU.
struct SglangDefaults {
  int64_t chunked_prefill_size = 0;  // tokens a prefill chunk holds
  int64_t cuda_graph_max_bs = 0;     // largest decode batch captured in a graph
  double reserved_mib = 0;           // its estimate of activations + graph buffers
  double mem_fraction_static = 0;
};

// SGLang's defaults on a GPU of `gpu_capacity_bytes` (its total memory) with
// `tp` x `pp` GPUs a replica. A capacity of 0 (unknown) gives SGLang's own
// fallback for an unknown GPU: 4096, 160 and a fraction of 0.88.
SglangDefaults SglangServerDefaults(int64_t gpu_capacity_bytes, int tp, int pp);

// SGLang's KV pool in bytes: `fraction` x `free_before_weights_bytes` -
// `weights_bytes` (0 when negative).
int64_t SglangKvPoolBytes(int64_t free_before_weights_bytes, int64_t weights_bytes,
                          double fraction);

// TensorRT-LLM's KvCacheConfig.free_gpu_memory_fraction default.
inline constexpr double kTrtllmFreeGpuMemoryFraction = 0.9;

// TensorRT-LLM's KV cache in bytes: `fraction` x `free_bytes` (0 when
// negative), `free_bytes` the memory left after start-up, the weights and the
// activation peak of its max_num_tokens forward.
int64_t TrtllmKvCacheBytes(int64_t free_bytes, double fraction);

}  // namespace shardsim::memory

#endif  // SHARDSIM_SIM_MEMORY_RUNTIME_MEMORY_H_
