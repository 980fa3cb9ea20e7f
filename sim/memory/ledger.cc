#include "sim/memory/ledger.h"

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "sim/base/units.h"

namespace shardsim::memory {

namespace {

// What a process holds before its weights load, by vLLM's fitted start-up
// terms: the CUDA context with its lazy loads, and the communicators.
struct Startup {
  int64_t total_bytes = 0;
  int64_t communicator_bytes = 0;
};
Startup StartupMemory(const model::ModelGraph& graph, const parallel::Plan& plan,
                      const parallel::Rank& rank, const VllmMemoryTerms& terms) {
  const VllmMemory m = PredictVllmMemory(VllmRankOf(graph, plan, rank), VllmProfile{}, terms);
  Startup s;
  s.total_bytes = m.init_non_torch_bytes;
  // communicator_bytes also counts the TP group's communicator PyTorch makes
  // at the first collective, after start-up.
  s.communicator_bytes = m.communicator_bytes - (plan.tp > 1 ? terms.tp_forward_bytes : 0);
  return s;
}

}  // namespace

RuntimeOverheads ResolveRuntime(const v1::Runtime& r, int64_t gpu_capacity_bytes) {
  RuntimeOverheads o;
  o.gpu_capacity_bytes = gpu_capacity_bytes;
  o.vllm = r.name() == v1::VLLM;
  o.sglang = r.name() == v1::SGLANG;
  o.trtllm = r.name() == v1::TRTLLM;
  if (o.vllm || o.sglang || o.trtllm) {
    o.cuda_context_bytes = o.vllm_terms.context_bytes;
    o.comm_buffer_bytes_per_communicator = o.vllm_terms.communicator_init_bytes;
  }
  if (r.has_cuda_context_bytes()) o.cuda_context_bytes = r.cuda_context_bytes();
  if (r.has_allocator_overhead_fraction()) {
    o.allocator_overhead_fraction = r.allocator_overhead_fraction();
  }
  if (r.has_comm_buffer_bytes_per_communicator()) {
    o.comm_buffer_bytes_per_communicator =
        r.comm_buffer_bytes_per_communicator();
  }
  if (o.sglang || o.trtllm) {
    o.vllm_terms.context_bytes = o.cuda_context_bytes;
    o.vllm_terms.communicator_init_bytes = o.comm_buffer_bytes_per_communicator;
    // TRT-LLM's all-reduce is NCCL here (runtime_profile.cc), so no custom
    // all-reduce buffers unless the user turns it on; SGLang's is vLLM's
    // kernel with its buffers unless turned off.
    const bool custom_ar = r.has_custom_all_reduce() ? r.custom_all_reduce() : o.sglang;
    if (!custom_ar) o.vllm_terms.custom_allreduce_bytes = 0;
    if (r.has_mem_fraction_static()) o.mem_fraction_static = r.mem_fraction_static();
    if (r.has_kv_cache_free_gpu_mem_fraction()) {
      o.kv_cache_free_gpu_mem_fraction = r.kv_cache_free_gpu_mem_fraction();
    }
  }
  if (o.vllm) {
    o.vllm_terms.context_bytes = o.cuda_context_bytes;
    o.vllm_terms.communicator_init_bytes = o.comm_buffer_bytes_per_communicator;
    // The time side's switches (sim/scenario/runtime_profile.h) turned off
    // free what they hold: no captured decode graphs, no graph pool; no
    // custom all-reduce, no IPC buffers for it.
    if (r.has_cuda_graphs() && !r.cuda_graphs()) o.cuda_graph_pool_bytes = 0;
    if (r.has_custom_all_reduce() && !r.custom_all_reduce()) {
      o.vllm_terms.custom_allreduce_bytes = 0;
    }
    if (r.has_cuda_graph_pool_bytes()) o.cuda_graph_pool_bytes = r.cuda_graph_pool_bytes();
  }
  o.kv_block_tokens = r.kv_block_tokens();
  o.eager_attention = r.attention_kernel() == v1::EAGER;
  return o;
}

double SglangMemFractionStatic(const RuntimeOverheads& runtime, const parallel::Plan& plan) {
  if (runtime.mem_fraction_static >= 0) return runtime.mem_fraction_static;
  return SglangServerDefaults(runtime.gpu_capacity_bytes, plan.tp, plan.pp).mem_fraction_static;
}

int64_t RankWeightBytes(const model::ModelGraph& graph,
                        const parallel::Rank& rank, int pp) {
  int64_t bytes = 0;
  // Each layer kind (dense or MoE, full or sliding) this stage holds.
  const std::vector<int64_t> kinds = graph.KindCounts(rank.first_layer, rank.num_layers);
  for (size_t k = 0; k < kinds.size(); ++k) {
    for (const model::Op& op : graph.layer_kinds[k].ops) bytes += kinds[k] * op.weight_bytes;
  }
  if (rank.has_embedding) {
    for (const model::Op& op : graph.embedding) bytes += op.weight_bytes;
  }
  if (rank.has_tail) {
    for (const model::Op& op : graph.tail) {
      bytes += op.weight_bytes;
      // With the head on another stage than the embedding it shares, that
      // stage keeps its own copy of the matrix (as Megatron-LM does).
      if (pp > 1) bytes += op.tied_weight_bytes;
    }
  }
  return bytes;
}

int64_t SlidingLayers(const model::ModelGraph& graph, const parallel::Rank& rank) {
  if (graph.dims.sliding_window <= 0) return 0;
  const std::vector<int64_t> kinds = graph.KindCounts(rank.first_layer, rank.num_layers);
  int64_t sliding = 0;
  for (size_t k = 0; k < kinds.size(); ++k) {
    if (graph.layer_kinds[k].sliding) sliding += kinds[k];
  }
  return sliding;
}

int64_t RankKvBytes(const model::ModelGraph& graph, const parallel::Rank& rank,
                    int64_t sequences, int64_t tokens, int64_t block_tokens) {
  if (graph.dims.kind == v1::ENCODER_ONLY) return 0;
  auto rounded = [block_tokens](int64_t t) {
    return block_tokens > 0 ? (t + block_tokens - 1) / block_tokens * block_tokens : t;
  };
  // A sliding layer keeps only the last sliding_window tokens (vLLM frees
  // the blocks that fall out of the window); the others keep every token.
  const int64_t full_layers = rank.num_layers - SlidingLayers(graph, rank);
  const int64_t window_tokens = std::min(tokens, graph.dims.sliding_window);
  const int64_t per_sequence = full_layers * rounded(tokens) +
                               (rank.num_layers - full_layers) * rounded(window_tokens);
  return sequences * per_sequence *
         model::KvBytesPerTokenPerLayer(graph.dims, graph.shard.kv_heads);
}

ActivationPeak RankActivationPeak(const model::ModelGraph& graph,
                                  const parallel::Rank& rank,
                                  const model::StepShape& shape,
                                  bool eager_attention) {
  ActivationPeak peak;
  auto consider = [&](const model::Op& op, int64_t extra) {
    const int64_t bytes =
        model::OpWorkingSetBytes(op, graph.dims, shape, eager_attention) + extra;
    if (bytes > peak.bytes) {
      peak.bytes = bytes;
      peak.op = op.name;
    }
  };
  if (rank.has_embedding) {
    for (const model::Op& op : graph.embedding) consider(op, 0);
  }
  if (rank.num_layers > 0) {
    // Inside a layer the residual stream stays live beside every op.
    const int64_t residual = BytesOf(shape.new_tokens * graph.dims.hidden_size,
                                     graph.dims.activation_dtype);
    const std::vector<int64_t> kinds = graph.KindCounts(rank.first_layer, rank.num_layers);
    for (size_t k = 0; k < kinds.size(); ++k) {
      if (kinds[k] == 0) continue;
      for (const model::Op& op : graph.layer_kinds[k].ops) consider(op, residual);
    }
  }
  if (rank.has_tail) {
    for (const model::Op& op : graph.tail) consider(op, 0);
  }
  return peak;
}

int CommunicatorCount(const parallel::Plan& plan) {
  // An expert group wider than the TP group (ep > tp) is one more NCCL
  // communicator, for the all-to-all dispatch and combine.
  return (plan.tp > 1 ? 1 : 0) + (plan.pp > 1 ? 1 : 0) + (plan.ep > plan.tp ? 1 : 0);
}

int64_t FinalKvTokens(const model::ModelDims& dims, const v1::Workload& w) {
  if (dims.kind == v1::ENCODER_ONLY) return 0;
  return w.prompt_len() + std::max<int64_t>(0, w.output_len() - 1);
}

Fit JudgeFit(const v1::MemoryBreakdown& m, int64_t capacity) {
  Fit fit;
  fit.fits = m.total_bytes() <= capacity;
  if (fit.fits) return fit;
  fit.over_by_bytes = m.total_bytes() - capacity;
  const std::pair<const char*, int64_t> order[] = {
      {"runtime_overhead", m.runtime_overhead_bytes()},
      {"weights", m.weights_bytes()},
      {"kv_cache", m.kv_cache_reserved_bytes()},
      {"activations", m.activation_peak_bytes()},
      {"comm_buffers", m.comm_buffer_bytes()},
  };
  int64_t running = 0;
  for (const auto& [name, bytes] : order) {
    running += bytes;
    if (running > capacity) {
      fit.component = name;
      break;
    }
  }
  return fit;
}

RankLedger::RankLedger(const model::ModelGraph& graph,
                       const parallel::Plan& plan, const parallel::Rank& rank,
                       const RuntimeOverheads& runtime)
    : graph_(graph), rank_(rank), runtime_(runtime) {
  current_.set_weights_bytes(RankWeightBytes(graph, rank, plan.pp));
  if (runtime.vllm) {
    vllm_rank_ = VllmRankOf(graph, plan, rank);
    const VllmMemory m = PredictVllmMemory(vllm_rank_, VllmProfile{}, runtime.vllm_terms);
    current_.set_comm_buffer_bytes(m.communicator_bytes);
    named_runtime_bytes_ = m.init_non_torch_bytes + m.forward_non_torch_bytes -
                           m.communicator_bytes +
                           (runtime.cuda_graph_pool_bytes >= 0 ? runtime.cuda_graph_pool_bytes
                                                               : m.cuda_graph_pool_bytes);
  } else if (runtime.sglang || runtime.trtllm) {
    const Startup startup = StartupMemory(graph, plan, rank, runtime.vllm_terms);
    current_.set_comm_buffer_bytes(startup.communicator_bytes);
    named_runtime_bytes_ = startup.total_bytes - startup.communicator_bytes;
    if (runtime.sglang) {
      const double reserve = static_cast<double>(runtime.gpu_capacity_bytes - startup.total_bytes) *
                             (1 - SglangMemFractionStatic(runtime, plan));
      sglang_reserve_bytes_ = reserve > 0 ? static_cast<int64_t>(reserve) : 0;
    }
  } else {
    current_.set_comm_buffer_bytes(CommunicatorCount(plan) *
                                   runtime.comm_buffer_bytes_per_communicator);
  }
}

void RankLedger::Step(const model::StepShape& shape, int64_t sequences,
                      int64_t kv_tokens) {
  ActivationPeak step_peak;
  if (runtime_.vllm) {
    // vLLM reserves what its profiling run of this shape peaked at.
    step_peak.bytes = PredictVllmMemory(vllm_rank_, {shape.new_tokens, shape.sequences},
                                        runtime_.vllm_terms)
                          .activation_peak_bytes;
    step_peak.op = "vLLM profiling run";
  } else if (runtime_.sglang) {
    // SGLang keeps this much outside its static pool whatever the step.
    step_peak.bytes = sglang_reserve_bytes_;
    step_peak.op = "SGLang's memory outside mem_fraction_static";
  } else {
    step_peak = RankActivationPeak(graph_, rank_, shape, runtime_.eager_attention);
  }
  if (step_peak.bytes > current_.activation_peak_bytes()) {
    current_.set_activation_peak_bytes(step_peak.bytes);
    activation_op_ = step_peak.op;
  }
  current_.set_kv_cache_bytes(RankKvBytes(graph_, rank_, sequences, kv_tokens, 0));
  current_.set_kv_cache_reserved_bytes(RankKvBytes(
      graph_, rank_, sequences, kv_tokens, runtime_.kv_block_tokens));
  const int64_t held = current_.weights_bytes() +
                       current_.kv_cache_reserved_bytes() +
                       current_.activation_peak_bytes();
  current_.set_runtime_overhead_bytes(
      (runtime_.vllm || runtime_.sglang || runtime_.trtllm ? named_runtime_bytes_
                                                          : runtime_.cuda_context_bytes) +
      static_cast<int64_t>(runtime_.allocator_overhead_fraction *
                           static_cast<double>(held)));
  current_.set_total_bytes(held + current_.comm_buffer_bytes() +
                           current_.runtime_overhead_bytes());
  if (current_.total_bytes() >= peak_.total_bytes()) peak_ = current_;
}

int64_t KvCacheBlocks(const model::ModelGraph& graph, const parallel::Plan& plan,
                      const parallel::Rank& rank, const RuntimeOverheads& runtime,
                      int64_t capacity_bytes, double utilization, int64_t block_tokens,
                      const model::StepShape& profile) {
  double left = 0;
  if (runtime.vllm) {
    const VllmMemory m = PredictVllmMemory(VllmRankOf(graph, plan, rank),
                                           {profile.new_tokens, profile.sequences},
                                           runtime.vllm_terms);
    left = utilization * static_cast<double>(capacity_bytes) -
           static_cast<double>(RankWeightBytes(graph, rank, plan.pp) + m.activation_peak_bytes +
                               m.forward_non_torch_bytes);
  } else if (runtime.sglang || runtime.trtllm) {
    const Startup startup = StartupMemory(graph, plan, rank, runtime.vllm_terms);
    const int64_t weights = RankWeightBytes(graph, rank, plan.pp);
    if (runtime.sglang) {
      // SGLang's rule reads the GPU this replica runs on.
      RuntimeOverheads on_gpu = runtime;
      on_gpu.gpu_capacity_bytes = capacity_bytes;
      left = static_cast<double>(SglangKvPoolBytes(capacity_bytes - startup.total_bytes, weights,
                                                   SglangMemFractionStatic(on_gpu, plan)));
    } else {
      const int64_t activations =
          RankActivationPeak(graph, rank, profile, runtime.eager_attention).bytes;
      left = static_cast<double>(
          TrtllmKvCacheBytes(capacity_bytes - startup.total_bytes - weights - activations,
                             runtime.kv_cache_free_gpu_mem_fraction));
    }
  } else {
    RankLedger ledger(graph, plan, rank, runtime);
    ledger.Step(profile, /*sequences=*/0, /*kv_tokens=*/0);
    left = utilization * static_cast<double>(capacity_bytes) -
           static_cast<double>(ledger.current().total_bytes());
  }
  const int64_t block_bytes = RankKvBytes(graph, rank, 1, block_tokens, 0);
  if (left <= 0 || block_bytes <= 0) return 0;
  return static_cast<int64_t>(left / static_cast<double>(block_bytes));
}

v1::MemoryReport ComputeMemoryReport(const parallel::Deployment& loaded,
                                     const v1::Workload& workload) {
  const model::ModelDims& dims = loaded.model;
  const parallel::Plan& plan = loaded.plan;
  const RuntimeOverheads runtime =
      ResolveRuntime(loaded.runtime, loaded.cluster.gpu.capacity_bytes());
  const model::ModelGraph full = model::BuildGraph(dims, model::FullModel(dims));
  const model::ModelGraph graph = model::BuildGraph(dims, plan.shard);

  v1::MemoryReport report;
  report.set_scenario(loaded.name);
  report.set_model(dims.name);
  report.set_gpu(loaded.cluster.gpu.name());
  report.set_parameters(full.TotalParameters());
  report.set_weight_bytes_total(full.TotalWeightBytes());
  report.set_kv_cache_bytes_per_token(
      dims.kind == v1::ENCODER_ONLY
          ? 0
          : dims.num_layers *
                model::KvBytesPerTokenPerLayer(dims, dims.num_kv_heads));
  *report.mutable_precision() = PrecisionOf(dims);
  if (dims.is_moe()) report.set_active_parameters(full.ActiveParameters());

  const int64_t kv_tokens = FinalKvTokens(dims, workload);
  bool all_fit = true;
  std::string peak_op;
  for (const parallel::Rank& rank : plan.ranks) {
    const int64_t sequences = parallel::SequencesOnReplica(
        workload.batch_size(), plan.dp, rank.dp_replica);
    // The largest step is the prefill of the largest micro-batch.
    const int64_t micro_batch =
        parallel::SequencesInMicroBatch(sequences, plan.micro_batches, 0);
    v1::GpuMemory* gpu = report.add_gpus();
    gpu->set_gpu(rank.gpu);
    gpu->set_node(rank.node);
    gpu->set_tp_rank(rank.tp_rank);
    gpu->set_pp_stage(rank.pp_stage);
    gpu->set_dp_replica(rank.dp_replica);
    gpu->set_first_layer(rank.first_layer);
    gpu->set_num_layers(rank.num_layers);
    gpu->set_capacity_bytes(loaded.cluster.gpu.capacity_bytes());

    RankLedger ledger(graph, plan, rank, runtime);
    ledger.Step(model::PrefillStep(micro_batch, workload.prompt_len()),
                sequences, kv_tokens);
    *gpu->mutable_memory() = ledger.peak();
    gpu->set_activation_peak_op(ledger.activation_peak_op());
    const Fit fit = JudgeFit(ledger.peak(), gpu->capacity_bytes());
    gpu->set_fits(fit.fits);
    gpu->set_over_by_bytes(fit.over_by_bytes);
    gpu->set_overflow_component(fit.component);
    all_fit = all_fit && gpu->fits();
    if (peak_op.empty()) peak_op = ledger.activation_peak_op();
  }
  report.set_fits(all_fit);

  // Why the activation figure is one op's working set, not a sum over layers.
  const int64_t replica0 = parallel::SequencesInMicroBatch(
      parallel::SequencesOnReplica(workload.batch_size(), plan.dp, 0),
      plan.micro_batches, 0);
  const int64_t hidden_state = BytesOf(
      replica0 * workload.prompt_len() * dims.hidden_size, dims.activation_dtype);
  if (runtime.vllm) {
    const parallel::Rank& first = plan.ranks[0];
    const VllmMemory m = PredictVllmMemory(VllmRankOf(graph, plan, first), VllmProfile{},
                                           runtime.vllm_terms);
    report.add_notes(absl::StrFormat(
        "runtime VLLM (sim/memory/vllm_memory.h, fitted on vLLM 0.19's start-up logs): "
        "activations are what its profiling run of the prefill (%d tokens over %d sequences) "
        "peaks at, the larger of the forward's live set and the sampler's logits (one row "
        "per sequence x vocabulary %d); runtime overhead is the CUDA context, library "
        "workspaces and the decode CUDA-graph pool (%s bytes on the first GPU by the rule); "
        "comm buffers are its NCCL communicators and custom all-reduce buffers",
        replica0 * workload.prompt_len(), replica0, dims.vocab_size,
        FormatCount(runtime.cuda_graph_pool_bytes >= 0 ? runtime.cuda_graph_pool_bytes
                                                       : m.cuda_graph_pool_bytes)));
  } else if (runtime.sglang) {
    const parallel::Rank& first = plan.ranks[0];
    const SglangDefaults rule = SglangServerDefaults(runtime.gpu_capacity_bytes, plan.tp, plan.pp);
    const double fraction = SglangMemFractionStatic(runtime, plan);
    const Startup startup = StartupMemory(graph, plan, first, runtime.vllm_terms);
    report.add_notes(absl::StrFormat(
        "runtime SGLANG (SGLang's rules, sim/memory/runtime_memory.h; not fitted: no SGLang "
        "memory measurement exists in shared/calibration): mem_fraction_static %.3f (%s); "
        "activations are what SGLang keeps outside it for activations and CUDA-graph buffers, "
        "(capacity - start-up) x (1 - fraction); its KV pool on the first GPU would be %s bytes "
        "(fraction x (capacity - start-up) - weights); the start-up memory (runtime overhead "
        "and comm buffers, %s bytes) is vLLM's fitted start-up figure",
        fraction,
        runtime.mem_fraction_static >= 0
            ? std::string("runtime.mem_fraction_static")
            : absl::StrFormat("SGLang's rule: %.0f MiB reserved for chunked prefill %d and "
                              "cuda_graph_max_bs %d at tp=%d pp=%d",
                              rule.reserved_mib, rule.chunked_prefill_size,
                              rule.cuda_graph_max_bs, plan.tp, plan.pp),
        FormatCount(SglangKvPoolBytes(runtime.gpu_capacity_bytes - startup.total_bytes,
                                      RankWeightBytes(graph, first, plan.pp), fraction)),
        FormatCount(startup.total_bytes)));
  } else {
    if (runtime.trtllm) {
      report.add_notes(absl::StrFormat(
          "runtime TRTLLM (TensorRT-LLM's rule, sim/memory/runtime_memory.h; not fitted: no "
          "TensorRT-LLM memory measurement exists in shared/calibration): a server's KV cache "
          "is kv_cache_free_gpu_mem_fraction %.2f of the memory the start-up memory, the "
          "weights and the activations leave; the start-up memory (runtime overhead and comm "
          "buffers) is vLLM's fitted start-up figure",
          runtime.kv_cache_free_gpu_mem_fraction));
    }
    report.add_notes(absl::StrFormat(
        "activations: the hidden state of one layer at prefill is %s bytes "
        "(%d sequences x %d tokens x hidden %d x %d bytes); layers run one after "
        "another and reuse the same buffers, so the peak is the largest working "
        "set of a single op (%s on the first rank), not %d layers' worth (%s bytes)",
        FormatCount(hidden_state), replica0, workload.prompt_len(),
        dims.hidden_size, DTypeBits(dims.activation_dtype) / 8, peak_op,
        dims.num_layers, FormatCount(hidden_state * dims.num_layers)));
  }
  if (dims.kind == v1::ENCODER_ONLY) {
    report.add_notes("kv cache: an encoder-only model keeps no KV cache");
  } else {
    report.add_notes(absl::StrFormat(
        "kv cache: %d tokens per sequence: the prompt (%d) and every generated token "
        "but the last (%d of %d), which is sampled and never fed back",
        kv_tokens, workload.prompt_len(), kv_tokens - workload.prompt_len(),
        workload.output_len()));
  }
  if (dims.num_kv_heads < plan.tp) {
    report.add_notes(absl::StrFormat(
        "tp=%d exceeds the %d KV heads: each KV head is replicated on %d GPUs",
        plan.tp, dims.num_kv_heads, plan.tp / dims.num_kv_heads));
  }
  if (dims.is_moe()) {
    const int64_t expert_tp = std::max(plan.tp, plan.ep) / plan.ep;
    report.add_notes(absl::StrFormat(
        "experts: %d routed experts (top-%d) per MoE layer, %d on each GPU (ep=%d), %s; "
        "%s of %s parameters are active per token (the top-%d routed experts, every shared "
        "expert, attention, router, embedding and head)",
        dims.num_experts, dims.experts_per_token, plan.shard.experts, plan.ep,
        expert_tp == 1 ? "each whole" : absl::StrCat("each split ", expert_tp, " ways"),
        FormatCount(full.ActiveParameters()), FormatCount(full.TotalParameters()),
        dims.experts_per_token));
  }
  if (dims.is_mla()) {
    report.add_notes(absl::StrFormat(
        "kv cache: multi-head latent attention caches %d latent + %d rotary-key values per "
        "token per layer, the same on every tensor-parallel rank",
        dims.kv_lora_rank, dims.qk_rope_head_dim));
  }
  if (dims.sliding_window > 0) {
    const parallel::Rank whole{0, 0, 0, 0, 0, 0, dims.num_layers, true, true};
    report.add_notes(absl::StrFormat(
        "kv cache: %d of %d layers attend to a sliding window of %d tokens and keep only "
        "that many per sequence",
        SlidingLayers(graph, whole), dims.num_layers, dims.sliding_window));
  }
  if (dims.mtp_layers > 0 && !dims.load_mtp) {
    report.add_notes(absl::StrFormat(
        "the checkpoint's %d multi-token-prediction layer(s) are not loaded (set "
        "model.load_mtp for speculative decoding with them)",
        dims.mtp_layers));
  }
  for (const std::string& note : dims.notes) report.add_notes(note);
  if (plan.num_gpus() < loaded.cluster.num_gpus()) {
    report.add_notes(absl::StrFormat(
        "%d of the %d GPUs of %s are used (tp x pp x dp = %d)", plan.num_gpus(),
        loaded.cluster.num_gpus(), loaded.cluster.name, plan.num_gpus()));
  }
  return report;
}

std::string KvRuleText(const RuntimeOverheads& runtime, const parallel::Plan& plan,
                       double utilization, int64_t profile_tokens) {
  if (runtime.sglang) {
    return absl::StrFormat(
        "SGLang's rule: mem_fraction_static %.3f of each GPU's capacity less start-up memory, "
        "less the weights",
        SglangMemFractionStatic(runtime, plan));
  }
  if (runtime.trtllm) {
    return absl::StrFormat(
        "TensorRT-LLM's rule: %.2f of what each GPU's capacity leaves after start-up memory, "
        "weights and a %d-token profiling step's activations",
        runtime.kv_cache_free_gpu_mem_fraction, profile_tokens);
  }
  return absl::StrFormat(
      "vLLM's rule: %.2f of each GPU's capacity less weights, a %d-token profiling step's "
      "activations and runtime memory",
      utilization, profile_tokens);
}

v1::Precision PrecisionOf(const model::ModelDims& dims) {
  v1::Precision p;
  p.set_recipe(dims.recipe);
  p.set_weight_dtype(dims.weight_dtype);
  p.set_gemm_dtype(dims.gemm_dtype);
  p.set_activation_dtype(dims.activation_dtype);
  p.set_communication_dtype(dims.communication_dtype);
  p.set_kv_cache_dtype(dims.kv_cache_dtype);
  if (IsGroupQuantized(dims.weight_dtype)) p.set_quant_group_size(dims.quant_group_size);
  if (dims.weight_dtype == v1::FP8) p.set_fp8_block_size(dims.fp8_block_size);
  return p;
}

}  // namespace shardsim::memory
