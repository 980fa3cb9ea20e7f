// vLLM's own memory accounting at start-up, as the VLLM runtime's memory
// model (runtime { name: VLLM }; sim/memory/ledger.h uses it).
//
// vLLM V1 (0.19, vllm/v1/worker/gpu_worker.py determine_available_memory)
// loads the weights, runs one profiling forward of max_num_batched_tokens
// tokens spread over max_num_seqs sequences plus a dummy sampler step over
// those sequences' logits, and then gives the KV cache
//   gpu_memory_utilization x total - weights - torch peak increase
//                                  - non-torch increase during the forward.
// Checked on the 59 vLLM 0.19 runs of
// topologies/calibration_data/public/vllm_memory_profiling_h100.csv: 58 of
// them satisfy it to the logged 0.01 GiB (the pp=4 one is 1.03 GiB off).
// The memory that exists before the baseline snapshot (CUDA context, the
// communicators made at start-up: "init non-torch") and the CUDA-graph pool
// captured afterwards are not subtracted; they live in the 1 - utilization
// headroom. So this model predicts four things per GPU, each a column of the
// logs:
//   init non-torch     CUDA context and kernel images, NCCL communicators
//                      and vLLM's custom all-reduce buffers made at start-up;
//   forward non-torch  what the profiling forward adds outside PyTorch's
//                      allocator (cuBLAS workspaces, kernels loaded lazily,
//                      the NCCL communicator PyTorch makes at the first
//                      collective);
//   activation peak    PyTorch's peak increase during the profiling run:
//                      the larger of the forward's working set and the
//                      sampler's logits, plus MoE kernel workspaces;
//   CUDA graph pool    what capturing the decode CUDA graphs takes.
//
// Every fitted constant below is the fit of FitVllmMemoryTerms on all 59
// runs (tests/memory_test.cc checks that they agree); `shardsim fidelity`
// judges each term leaving one model family out at a time.
#ifndef SHARDSIM_SIM_MEMORY_VLLM_MEMORY_H_
#define SHARDSIM_SIM_MEMORY_VLLM_MEMORY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "sim/model/graph.h"
#include "sim/parallel/partition.h"

namespace shardsim::memory {

struct VllmMemoryTerms {
  // --- non-torch memory ---
  // CUDA context with the kernel images loaded at start-up, per process:
  // the init non-torch figure of every tp=1, pp=1 run (median, 0.51 GiB).
  int64_t context_bytes = 547608330;
  // Library workspaces the first forward allocates (cuBLAS/cuBLASLt):
  // the forward non-torch figure of the tp=1 runs with pp > 1 (0.07 GiB).
  int64_t workspace_bytes = 75161928;
  // What the first forward adds at tp=1 pp=1 but a process with a
  // communicator already holds after start-up (read as kernels and modules
  // loaded lazily, which NCCL's initialisation loads first): tp=1 pp=1
  // forward minus the pp>1 forward.
  int64_t lazy_load_bytes = 193273528;
  // Buffers of one NCCL communicator made at start-up (vLLM's
  // PyNcclCommunicator for the TP group or the PP group), beyond the lazy
  // loads and the custom all-reduce buffers. NCCL allocates per channel and
  // per peer connection NCCL_BUFFSIZE (default 4 MiB, NCCL docs
  // "Environment Variables") for the Simple protocol plus LL and LL128
  // buffers, for ring and tree, on up to 32 channels, and NVLS multicast
  // buffers on NVSwitch; which of these exist is NCCL's choice at run time,
  // so the total is fitted (0.80 GiB on H100 NVSwitch, with the NCCL of
  // those runs; its version is not logged).
  int64_t communicator_init_bytes = 863691080;
  // The TP group's first collective in the profiling forward: PyTorch's
  // ProcessGroupNCCL makes its own communicator lazily (2.02 GiB).
  int64_t tp_forward_bytes = 2168958484;
  // A MoE model with tp > 1 holds 0.48 GiB more at start-up in every run
  // (Mixtral, Kimi-VL, gpt-oss, Llama 4 Scout); fitted, cause not isolated.
  int64_t moe_tp_init_bytes = 515396076;
  // vLLM's custom all-reduce (tp of 2, 4, 6 or 8 in one node): an 8 MiB
  // IPC buffer and a signal buffer of meta_size + 8 MiB, both cudaMalloc'ed
  // outside PyTorch (vllm/distributed/device_communicators/
  // custom_all_reduce.py, CustomAllreduce.__init__, max_size = 8192 * 1024;
  // meta_size, a few KiB, left out).
  int64_t custom_allreduce_bytes = int64_t{16} << 20;
  // --- activation peak of the profiling run ---
  // Buffers held through the profiling run whatever the model (input ids,
  // positions, sampling metadata): the intercept of the sampler fit.
  int64_t profile_fixed_bytes = 87807981;
  // Bytes per logit the dummy sampler holds beyond the head's output in the
  // activation dtype; fitted, and about three fp32 tensors of sequences x
  // vocab (fp32 logits, probabilities and a sampling copy).
  double sampler_bytes_per_logit = 12.940155;
  // Fused-MoE workspace: tokens x top-k x max(2 x expert width / tp, hidden)
  // activations, this many times: a fitted multiple (vLLM's fused-MoE
  // kernels keep workspaces of that shape; the MoE runs' peaks say about
  // 1.6 of them are live at the sampler's peak).
  double moe_workspace_copies = 1.635190;
  // --- CUDA graph pool ---
  // Pool = base + per layer on the GPU (+ more per MoE layer): capture
  // keeps one memory pool sized by the largest captured batch, plus the
  // graph executables, which grow with kernels per layer x captured sizes.
  int64_t graph_pool_base_bytes = 472903694;
  int64_t graph_pool_bytes_per_layer = 15363888;
  int64_t graph_pool_bytes_per_moe_layer = 10848357;
};

// What the rule reads of one GPU.
struct VllmRank {
  int tp = 1;
  int pp = 1;
  bool moe = false;
  bool last_stage = true;  // holds the head, so runs the sampler
  int64_t layers = 0;      // on this GPU
  int64_t moe_layers = 0;  // of them MoE
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;  // dense MLP width (whole, not per rank)
  int64_t vocab_size = 0;
  int64_t experts_per_token = 0;
  int64_t moe_intermediate_size = 0;     // each routed expert's width
  int64_t shared_intermediate_size = 0;  // all shared experts together
  int activation_bytes = 2;
};

// The profiling step: vLLM V1's defaults on a GPU of 70 GiB or more are
// 8192 batched tokens and 1024 sequences for `vllm serve`
// (vllm/engine/arg_utils.py, EngineArgs._set_default_args:
// default_max_num_batched_tokens[OPENAI_API_SERVER] = 8192,
// default_max_num_seqs = 1024).
struct VllmProfile {
  int64_t tokens = 8192;
  int64_t sequences = 1024;
};

struct VllmMemory {
  int64_t init_non_torch_bytes = 0;
  int64_t forward_non_torch_bytes = 0;
  int64_t activation_peak_bytes = 0;
  int64_t cuda_graph_pool_bytes = 0;
  // Of the two non-torch figures, what belongs to communicators (NCCL and
  // custom all-reduce): the ledger's comm buffers.
  int64_t communicator_bytes = 0;
};

// vLLM's memory on one GPU by the rule above. The sampler's rows are
// min(sequences, tokens): one logit row per sequence.
VllmMemory PredictVllmMemory(const VllmRank& rank, const VllmProfile& profile,
                             const VllmMemoryTerms& terms);

// The VllmRank of `rank` of a deployment.
VllmRank VllmRankOf(const model::ModelGraph& graph, const parallel::Plan& plan,
                    const parallel::Rank& rank);

// One run of the vLLM memory table with its checkpoint's dimensions.
struct VllmRun {
  std::string model;
  std::string family;  // runs of one family are held out together
  std::string dtype;   // as logged: torch.bfloat16, torch.float16, torch.float32
  VllmRank rank;
  VllmProfile profile;
  int64_t max_model_len = 0;
  // As logged, in bytes (the log's GiB x 2^30).
  int64_t init_non_torch_bytes = 0;
  int64_t forward_non_torch_bytes = 0;
  int64_t activation_peak_bytes = 0;
  int64_t cuda_graph_pool_bytes = 0;
  int64_t weights_bytes = 0;
  int64_t total_bytes = 0;   // the GPU's memory as torch reports it
  int64_t budget_bytes = 0;  // gpu_memory_utilization x total
  bool kv_cache_dtype_auto = true;  // the KV cache in the model's dtype
  bool quantized = false;           // weights quantized (the quantization column)
  int64_t kv_cache_bytes = 0;
  int64_t kv_cache_tokens = 0;
  double max_concurrency = 0;
};

// The vLLM 0.19 runs of `profiling_csv` (vllm_memory_profiling_h100.csv),
// joined with their dimensions from `checkpoints_csv`
// (vllm_memory_checkpoints.csv). An error names file:line and column.
absl::StatusOr<std::vector<VllmRun>> LoadVllmRuns(const std::string& profiling_csv,
                                                  const std::string& checkpoints_csv);

// Fits the terms on `runs` (medians of the per-run residuals for the
// non-torch terms, least squares for the sampler and the graph pool; see
// vllm_memory.cc). A term no run can fit is 0 (no pp>1 run: no lazy-load
// split, the workspace takes the whole tp=1 forward figure; no MoE run: no
// MoE terms); custom_allreduce_bytes is cited, not fitted.
VllmMemoryTerms FitVllmMemoryTerms(const std::vector<VllmRun>& runs);

}  // namespace shardsim::memory

#endif  // SHARDSIM_SIM_MEMORY_VLLM_MEMORY_H_
