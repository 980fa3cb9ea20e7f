// Where GPU memory goes during inference, per GPU.
//
// Components (sim/proto/report.proto MemoryBreakdown):
//   weights       this GPU's shard of its pipeline stage's layers (each
//                 layer kind: dense, MoE with num_experts / ep routed
//                 experts, sliding), plus the
//                 embedding on the first stage and the head on the last (a
//                 tied head needs its own copy when pp > 1);
//   KV cache      K and V for every token of every sequence on this replica,
//                 for this stage's layers and this rank's KV heads; a paged
//                 cache rounds each sequence up to whole blocks (reserved);
//   activations   the largest live working set of a single op (inputs,
//                 outputs and the residual stream), because an inference
//                 engine reuses activation buffers from layer to layer;
//   comm buffers  collective-library buffers per communicator (TP group,
//                 pipeline neighbours);
//   runtime       CUDA context and library handles, plus caching-allocator
//                 slack as a fraction of the rest.
//
// Defaults (each can be set in a scenario's runtime {} block):
//   cuda_context_bytes = 1.79 GiB: the memory vLLM reports outside PyTorch's
//     allocator ("non-torch memory") for Llama-3-8B at TP1 on an 80 GB H100
//     (shared/calibration/memory_reference.csv; vLLM PR #10511).
//   comm_buffer_bytes_per_communicator = 256 MiB: NCCL's default
//     NCCL_BUFFSIZE of 4 MiB, for send and receive, on each of up to 32
//     channels NCCL opens on an NVLink/NVSwitch node.
//   allocator_overhead_fraction = 0: activations are counted per tensor,
//     so fragmentation is not guessed; set it to plan for headroom.
// Those are the GENERIC runtime's. runtime { name: VLLM } takes vLLM's own
// accounting instead (sim/memory/vllm_memory.h, each term's source there),
// fitted on vLLM 0.19's start-up logs of 59 runs on H100 (34 checkpoints,
// tp 1/2/4, pp 1/2/4):
//   runtime       CUDA context 0.51 GiB, library workspaces 0.07 GiB and
//                 kernels loaded lazily 0.18 GiB, plus the decode CUDA-graph
//                 pool: 0.44 GiB + 14.7 MiB per layer (+10.3 MiB per MoE
//                 layer), or runtime.cuda_graph_pool_bytes;
//   comm buffers  0.80 GiB per NCCL communicator made at start-up (TP group,
//                 PP group), 2.02 GiB more for the TP group's first
//                 collective (PyTorch's own NCCL communicator), vLLM's custom
//                 all-reduce 16 MiB (tp 2/4/6/8), MoE with tp > 1 0.48 GiB;
//                 runtime.cuda_context_bytes and
//                 comm_buffer_bytes_per_communicator, when set, replace the
//                 context and the per-communicator start-up figure;
//   activations   vLLM's profiling run, not one op's working set: the larger
//                 of the forward's live set and, on the last stage, the
//                 sampler's logits (rows x vocab x (dtype + 12.9 bytes)) plus
//                 the fused-MoE workspace, plus 84 MiB of fixed buffers;
//   KV cache      by vLLM's rule: utilization x capacity - weights -
//                 profiling peak - the non-torch memory the profiling forward
//                 added (start-up memory and the graph pool are not
//                 subtracted: they sit in the 1 - utilization headroom).
// runtime { name: SGLANG } and { name: TRTLLM } follow their own sources'
// rules (sim/memory/runtime_memory.h; rules, not fits: no measurement of
// either is in shared/calibration), with the start-up memory (CUDA context,
// NCCL communicators, custom all-reduce buffers: runtime overhead and comm
// buffers) taken from vLLM's fitted start-up terms, the same CUDA / PyTorch /
// NCCL stack:
//   SGLANG        activations are the share SGLang keeps outside
//                 mem_fraction_static, (capacity - start-up) x (1 - fraction),
//                 which holds its activations and CUDA-graph buffers; the KV
//                 pool is fraction x (capacity - start-up) - weights;
//                 runtime.mem_fraction_static replaces SGLang's rule;
//   TRTLLM        activations are the op working set as for GENERIC; the KV
//                 cache is kv_cache_free_gpu_mem_fraction (0.9) of what the
//                 start-up memory, the weights and the profiling step's
//                 activations leave.
//   Both ignore serving.scheduler.gpu_memory_utilization (vLLM's knob).
// Peak = the largest total over the run; with a static batch the KV cache is
// largest at the last step, when the activation peak (prefill) is also
// counted: a safe upper bound that the replay refines.
#ifndef SHARDSIM_SIM_MEMORY_LEDGER_H_
#define SHARDSIM_SIM_MEMORY_LEDGER_H_

#include <cstdint>
#include <string>

#include "sim/model/graph.h"
#include "sim/parallel/partition.h"
#include "sim/proto/report.pb.h"
#include "sim/proto/scenario.pb.h"
#include "sim/parallel/deployment.h"
#include "sim/memory/runtime_memory.h"
#include "sim/memory/vllm_memory.h"

namespace shardsim::memory {

inline constexpr int64_t kDefaultCudaContextBytes =
    static_cast<int64_t>(1.79 * (int64_t{1} << 30));
inline constexpr int64_t kDefaultCommBufferBytesPerCommunicator =
    int64_t{32} * 2 * 4 * 1024 * 1024;  // 256 MiB

// The runtime settings with defaults applied.
struct RuntimeOverheads {
  int64_t cuda_context_bytes = kDefaultCudaContextBytes;
  double allocator_overhead_fraction = 0.0;
  int64_t comm_buffer_bytes_per_communicator =
      kDefaultCommBufferBytesPerCommunicator;
  int64_t kv_block_tokens = 0;  // 0: contiguous, exact
  bool eager_attention = false;
  // runtime { name: VLLM }: vLLM's accounting with these terms (context and
  // per-communicator figures above are then vllm.context_bytes and
  // vllm.communicator_init_bytes).
  bool vllm = false;
  VllmMemoryTerms vllm_terms;
  int64_t cuda_graph_pool_bytes = -1;  // VLLM: set by the user; -1: the rule
  // runtime { name: SGLANG } / { name: TRTLLM }: their rules, with the
  // start-up memory of vllm_terms.
  bool sglang = false;
  bool trtllm = false;
  double mem_fraction_static = -1;  // SGLANG: set by the user; -1: SGLang's rule
  double kv_cache_free_gpu_mem_fraction = kTrtllmFreeGpuMemoryFraction;  // TRTLLM
  // The GPU's memory (GpuSpec.capacity_bytes): SGLang's rule reads it.
  int64_t gpu_capacity_bytes = 0;
};
// `runtime` resolved for GPUs of `gpu_capacity_bytes`.
RuntimeOverheads ResolveRuntime(const v1::Runtime& runtime, int64_t gpu_capacity_bytes);

// SGLANG's mem_fraction_static on `plan`'s GPUs: the user's, or SGLang's rule.
double SglangMemFractionStatic(const RuntimeOverheads& runtime, const parallel::Plan& plan);

// Weight bytes held by `rank`.
int64_t RankWeightBytes(const model::ModelGraph& graph,
                        const parallel::Rank& rank, int pp);

// Layers of `rank` that attend to a sliding window.
int64_t SlidingLayers(const model::ModelGraph& graph, const parallel::Rank& rank);

// KV-cache bytes on `rank` for `sequences` sequences of `tokens` tokens each;
// rounded up to whole blocks of `block_tokens` when it is positive. Sliding
// layers hold at most sliding_window tokens; MLA layers their latent.
int64_t RankKvBytes(const model::ModelGraph& graph, const parallel::Rank& rank,
                    int64_t sequences, int64_t tokens, int64_t block_tokens);

// The largest working set of one op on `rank` for a step of `shape`, and the
// op it occurs at.
struct ActivationPeak {
  int64_t bytes = 0;
  std::string op;
};
ActivationPeak RankActivationPeak(const model::ModelGraph& graph,
                                  const parallel::Rank& rank,
                                  const model::StepShape& shape,
                                  bool eager_attention);

// Communicators `rank` belongs to: its TP group (tp > 1), its pipeline
// neighbours (pp > 1) and its expert group when that spans more than the TP
// group (ep > tp). Data-parallel replicas otherwise share nothing.
int CommunicatorCount(const parallel::Plan& plan);

// The tokens each sequence holds in the KV cache after the last step: the
// prompt plus every generated token but the last, which is sampled and never
// fed back (encoder-only models keep no cache).
int64_t FinalKvTokens(const model::ModelDims& dims, const v1::Workload& w);

// Whether `memory` fits in `capacity`, and if not by how much and at which
// component: the first, in the order memory is committed (runtime, weights,
// KV cache, activations, buffers), that takes the running total past it.
struct Fit {
  bool fits = true;
  int64_t over_by_bytes = 0;
  std::string component;
};
Fit JudgeFit(const v1::MemoryBreakdown& memory, int64_t capacity_bytes);

// One GPU's memory as a run goes: weights and buffers fixed, the KV cache
// set at each step, and the activation pool growing to the largest working
// set seen (a caching allocator keeps what it once reserved). The replay
// calls Step() for every step; `shardsim memory` calls it once, for the
// largest prefill with the final KV cache, which gives the same peak.
class RankLedger {
 public:
  RankLedger(const model::ModelGraph& graph, const parallel::Plan& plan,
             const parallel::Rank& rank, const RuntimeOverheads& runtime);

  // Records a step of `shape` after which each of the replica's `sequences`
  // holds `kv_tokens` tokens in the cache.
  void Step(const model::StepShape& shape, int64_t sequences, int64_t kv_tokens);

  const v1::MemoryBreakdown& current() const { return current_; }
  const v1::MemoryBreakdown& peak() const { return peak_; }
  const std::string& activation_peak_op() const { return activation_op_; }

 private:
  const model::ModelGraph& graph_;
  parallel::Rank rank_;
  RuntimeOverheads runtime_;
  VllmRank vllm_rank_;            // runtime_.vllm
  // A named runtime's own memory besides comms (VLLM: non-torch memory and
  // the graph pool; SGLANG, TRTLLM: start-up memory).
  int64_t named_runtime_bytes_ = 0;
  int64_t sglang_reserve_bytes_ = 0;  // runtime_.sglang: outside mem_fraction_static
  v1::MemoryBreakdown current_;
  v1::MemoryBreakdown peak_;
  std::string activation_op_;
};

// The KV cache a serving runtime allocates on `rank`, in blocks of
// `block_tokens` tokens, by vLLM's rule: of `utilization` x the GPU's
// capacity, what remains after the weights, the activation peak of a
// profiling step of shape `profile` and the runtime's own memory (CUDA
// context, communication buffers, allocator slack; with the VLLM runtime
// only the non-torch memory its profiling forward adds, as vLLM counts).
// SGLANG and TRTLLM size it by their own rules instead (above; `utilization`
// unused). 0 when nothing remains.
int64_t KvCacheBlocks(const model::ModelGraph& graph, const parallel::Plan& plan,
                      const parallel::Rank& rank, const RuntimeOverheads& runtime,
                      int64_t capacity_bytes, double utilization, int64_t block_tokens,
                      const model::StepShape& profile);

// How KvCacheBlocks sized the cache, for a report's note: "vLLM's rule: 0.90
// of each GPU's capacity less weights, a 8192-token profiling step's
// activations and runtime memory", or SGLang's or TensorRT-LLM's rule.
std::string KvRuleText(const RuntimeOverheads& runtime, const parallel::Plan& plan,
                       double utilization, int64_t profile_tokens);

// The precision `dims` runs in, every dtype resolved, for reports.
v1::Precision PrecisionOf(const model::ModelDims& dims);

// The whole memory report of `deployment` serving the static `workload`.
v1::MemoryReport ComputeMemoryReport(const parallel::Deployment& deployment,
                                     const v1::Workload& workload);

}  // namespace shardsim::memory

#endif  // SHARDSIM_SIM_MEMORY_LEDGER_H_
