#include "sim/model/graph.h"

#include <algorithm>
#include <cmath>
#include <cstddef>

#include "absl/strings/str_cat.h"
#include "sim/base/units.h"

namespace shardsim::model {
namespace {

// Arithmetic per element of the memory-bound ops. They are bound by memory
// traffic on every GPU we model, so these only need the right magnitude:
// a norm squares, sums, scales and multiplies (~4); SiLU-and-multiply ~5;
// rotary embedding is a complex multiply (~3 per element, 6 per pair).
constexpr double kNormFlopsPerElement = 4;
constexpr double kActivationFlopsPerElement = 5;
constexpr double kRopeFlopsPerElement = 3;

// Embeddings, norms, biases and the head stay in a 16/32-bit float format
// when linear weights are quantized (as GPTQ, AWQ and FP8 checkpoints do).
v1::DType AuxDType(const ModelDims& d) {
  switch (d.weight_dtype) {
    case v1::FP32:
    case v1::BF16:
    case v1::FP16:
      return d.weight_dtype;
    default:
      return d.activation_dtype;
  }
}

// Bytes of an in x out linear weight in the weight dtype, with the scales
// quantized formats carry: INT8/INT4 one FP16 scale per group of
// quant_group_size input rows per output column (or one per column when it
// is -1; INT4 also a packed 4-bit zero point, as GPTQ stores qzeros); FP8 one
// FP32 scale per tensor, per fp8_block_size square block, or per column.
int64_t LinearWeightBytes(const ModelDims& d, int64_t in, int64_t out) {
  const int64_t elements = in * out;
  if (IsGroupQuantized(d.weight_dtype)) {
    const int64_t groups =
        d.quant_group_size < 0 ? 1 : (in + d.quant_group_size - 1) / d.quant_group_size;
    int64_t scale_bytes = groups * out * 2;
    if (d.weight_dtype == v1::INT4) scale_bytes += (groups * out + 1) / 2;
    return BytesOf(elements, d.weight_dtype) + scale_bytes;
  }
  if (d.weight_dtype == v1::FP8) {
    if (d.fp8_block_size > 0) {
      const int64_t b = d.fp8_block_size;
      return elements + 4 * ((in + b - 1) / b) * ((out + b - 1) / b);
    }
    return elements + (d.fp8_block_size < 0 ? 4 * out : 4);
  }
  return BytesOf(elements, d.weight_dtype);
}

int64_t NormParameters(const ModelDims& d, int64_t width) {
  return d.norm == v1::LAYER_NORM ? 2 * width : width;
}

Op Norm(const ModelDims& d, std::string name, int64_t count,
        int64_t width = 0) {
  if (width == 0) width = d.hidden_size;
  Op op;
  op.name = std::move(name);
  op.kind = OpKind::kNorm;
  op.count = count;
  op.parameters = count * NormParameters(d, width);
  op.weight_bytes = BytesOf(op.parameters, AuxDType(d));
  op.in_features = width;
  op.out_features = width;
  return op;
}

Op Gemm(const ModelDims& d, std::string name, int64_t in, int64_t out,
        bool bias, int64_t experts = 1) {
  Op op;
  op.name = std::move(name);
  op.kind = OpKind::kGemm;
  op.in_features = in;
  op.out_features = out;
  op.count = experts;
  op.parameters = experts * (in * out + (bias ? out : 0));
  op.weight_bytes = experts * (LinearWeightBytes(d, in, out) +
                               (bias ? BytesOf(out, AuxDType(d)) : 0));
  return op;
}

Op Activation(std::string name, int64_t in, int64_t out) {
  Op op;
  op.name = std::move(name);
  op.kind = OpKind::kActivation;
  op.in_features = in;
  op.out_features = out;
  return op;
}

Op Rope(int64_t buffer, int64_t rotated) {
  Op op;
  op.name = "rope";
  op.kind = OpKind::kRope;
  op.in_features = buffer;  // the fused projection buffer
  op.out_features = rotated;
  return op;
}

// The attention half of a layer, from the input norm to o_proj.
void AddAttention(const ModelDims& d, const ShardDims& shard, bool sliding,
                  std::vector<Op>* ops) {
  const int64_t h = d.hidden_size;
  Op attention;
  attention.name = "attention";
  attention.kind = OpKind::kAttention;
  attention.heads = shard.attention_heads;
  attention.kv_heads = shard.kv_heads;
  attention.head_dim = d.head_dim;
  attention.window = sliding ? d.sliding_window : 0;
  if (d.is_mla()) {
    // DeepSeek's MLA as vLLM runs it: the down-projections of Q and of the
    // KV latent (plus the shared rotary key) are one replicated GEMM
    // (fused_qkv_a_proj); the up-projections are split by heads.
    const int64_t q_width = shard.attention_heads * d.head_dim;
    const int64_t a_width =
        (d.q_lora_rank > 0 ? d.q_lora_rank : 0) + d.kv_lora_rank + d.qk_rope_head_dim;
    ops->push_back(Gemm(d, "qkv_a_proj", h, a_width, false));
    if (d.q_lora_rank > 0) {
      ops->push_back(Norm(d, "q_a_norm", 1, d.q_lora_rank));
      ops->push_back(Gemm(d, "q_b_proj", d.q_lora_rank, q_width, false));
    } else {
      ops->push_back(Gemm(d, "q_proj", h, q_width, false));
    }
    ops->push_back(Norm(d, "kv_a_norm", 1, d.kv_lora_rank));
    // Decode absorbs W_UK into the query and W_UV into the output (2 x
    // kv_lora x heads x (nope + v) FLOPs per token); prefill decompresses
    // each new token's K and V with the same matrix: the same FLOPs and the
    // same weights read, so one op stands for both.
    ops->push_back(Gemm(d, "kv_b_proj", d.kv_lora_rank,
                        shard.attention_heads * (d.qk_nope_head_dim + d.v_head_dim),
                        false));
    ops->push_back(Rope(q_width + d.qk_rope_head_dim,
                        shard.attention_heads * d.qk_rope_head_dim + d.qk_rope_head_dim));
    attention.kv_lora_rank = d.kv_lora_rank;
    attention.rope_dim = d.qk_rope_head_dim;
    attention.v_head_dim = d.v_head_dim;
    attention.in_features = q_width;
    attention.out_features = shard.attention_heads * d.v_head_dim;
    ops->push_back(attention);
    ops->push_back(Gemm(d, "o_proj", attention.out_features, h, d.attn_output_bias));
    return;
  }
  const int64_t q_width = shard.attention_heads * d.head_dim;
  const int64_t kv_width = shard.kv_heads * d.head_dim;
  ops->push_back(Gemm(d, "qkv_proj", h, q_width + 2 * kv_width, d.qkv_bias));
  if (d.qk_norm) {
    // One head_dim-wide RMSNorm weight for Q and one for K, shared by the
    // heads (Qwen3's q_norm and k_norm), applied to every Q and K head.
    Op norm = Norm(d, "qk_norm", 2, d.head_dim);
    norm.count = 1;
    norm.in_features = q_width + kv_width;
    norm.out_features = q_width + kv_width;
    ops->push_back(norm);
  }
  if (d.position_embedding == v1::ROTARY) {
    ops->push_back(Rope(q_width + 2 * kv_width, q_width + kv_width));
  }
  attention.in_features = q_width + 2 * kv_width;
  attention.out_features = q_width;
  ops->push_back(attention);
  ops->push_back(Gemm(d, "o_proj", q_width, h, d.attn_output_bias));
}

// The feed-forward half: a dense FFN, or the router, shared experts and
// routed experts. The routed experts keep the dense names (gate_up_proj,
// act, down_proj) and come last, so down_proj still ends every layer.
void AddFfn(const ModelDims& d, const ShardDims& shard, bool moe,
            std::vector<Op>* ops) {
  const int64_t h = d.hidden_size;
  const int64_t gates = d.gated_ffn ? 2 : 1;
  const char* up_name = d.gated_ffn ? "gate_up_proj" : "up_proj";
  if (!moe) {
    ops->push_back(Gemm(d, up_name, h, gates * shard.ffn, d.ffn_bias));
    ops->push_back(Activation("act", gates * shard.ffn, shard.ffn));
    ops->push_back(Gemm(d, "down_proj", shard.ffn, h, d.ffn_bias));
    return;
  }
  // The router is small and replicated on every rank (vLLM's gate is a
  // ReplicatedLinear); DeepSeek-V3 adds a per-expert score bias. Quantized
  // checkpoints keep it in 16 bits (DeepSeek-V3's FP8 release, AutoAWQ's
  // and llm-compressor's ignore lists leave mlp.gate unquantized).
  // vLLM builds them with quant_config=None (mixtral.py, deepseek_v2.py,
  // qwen2_moe.py: the gate's ReplicatedLinear), so they run unquantized.
  Op router = Gemm(d, "router", h, d.num_experts, d.router_bias);
  router.weight_bytes = BytesOf(router.parameters, AuxDType(d));
  router.unquantized = true;
  ops->push_back(router);
  if (d.num_shared_experts > 0) {
    // Shared experts run as one dense FFN of their combined width, split by
    // tensor parallelism, on every token.
    ops->push_back(Gemm(d, std::string("shared_") + up_name, h, gates * shard.shared_ffn,
                        d.ffn_bias));
    ops->push_back(Activation("shared_act", gates * shard.shared_ffn, shard.shared_ffn));
    ops->push_back(Gemm(d, "shared_down_proj", shard.shared_ffn, h, d.ffn_bias));
    if (d.shared_expert_gate) {
      Op gate = Gemm(d, "shared_expert_gate", h, 1, false);
      gate.weight_bytes = BytesOf(gate.parameters, AuxDType(d));
      gate.unquantized = true;
      ops->push_back(gate);
    }
  }
  auto routed = [&](Op op) {
    op.total_experts = d.num_experts;
    op.top_k = d.experts_per_token;
    op.count = shard.experts;
    op.token_sources = shard.expert_token_sources;
    op.expert_loads = shard.expert_loads;
    return op;
  };
  ops->push_back(routed(Gemm(d, up_name, h, gates * shard.expert_ffn, d.ffn_bias,
                             shard.experts)));
  ops->push_back(routed(Activation("act", gates * shard.expert_ffn, shard.expert_ffn)));
  ops->push_back(routed(Gemm(d, "down_proj", shard.expert_ffn, h, d.ffn_bias,
                             shard.experts)));
}

std::vector<Op> BuildLayer(const ModelDims& d, const ShardDims& shard, bool moe,
                           bool sliding) {
  std::vector<Op> ops;
  const bool separate_mlp_norm = !d.parallel_attention && d.norms_per_layer > 1;
  if (d.norms_per_layer > 0) {
    ops.push_back(Norm(d, "input_norm", separate_mlp_norm ? 1 : d.norms_per_layer));
  }
  AddAttention(d, shard, sliding, &ops);
  if (separate_mlp_norm) {
    ops.push_back(Norm(d, "post_attn_norm", d.norms_per_layer - 1));
  }
  AddFfn(d, shard, moe, &ops);
  Op add;
  add.name = "residual_add";
  add.kind = OpKind::kResidualAdd;
  add.count = 2;  // after attention and after the FFN (or attn + FFN + x)
  add.out_features = d.hidden_size;
  ops.push_back(add);
  return ops;
}

}  // namespace

ShardDims FullModel(const ModelDims& dims) {
  ShardDims shard;
  shard.attention_heads = dims.num_attention_heads;
  shard.kv_heads = dims.num_kv_heads;
  shard.ffn = dims.ffn_hidden_size;
  shard.vocab = dims.vocab_size;
  if (dims.is_moe()) {
    shard.experts = dims.num_experts;
    shard.expert_ffn = dims.expert_ffn_hidden_size;
    shard.shared_ffn = dims.num_shared_experts * dims.shared_expert_ffn_hidden_size;
  }
  return shard;
}

StepShape PrefillStep(int64_t sequences, int64_t prompt_len) {
  StepShape s;
  s.sequences = sequences;
  s.new_tokens = sequences * prompt_len;
  s.context_tokens = sequences * prompt_len;
  s.attention_pairs = sequences * prompt_len * (prompt_len + 1) / 2;
  s.score_elements = sequences * prompt_len * prompt_len;
  s.head_rows = sequences;
  return s;
}

StepShape DecodeStep(int64_t sequences, int64_t context_len) {
  StepShape s;
  s.sequences = sequences;
  s.new_tokens = sequences;
  s.context_tokens = sequences * context_len;
  s.attention_pairs = sequences * context_len;
  s.score_elements = sequences * context_len;
  s.head_rows = sequences;
  return s;
}

StepShape ShapeOf(const std::vector<SequenceStep>& batch) {
  StepShape s;
  for (const SequenceStep& q : batch) {
    const int64_t context = q.cached_tokens + q.new_tokens;
    s.sequences += 1;
    s.new_tokens += q.new_tokens;
    s.context_tokens += context;
    // Causal: new token i (1-based) sees the cache and the i new tokens up to it.
    s.attention_pairs += q.new_tokens * q.cached_tokens + q.new_tokens * (q.new_tokens + 1) / 2;
    s.score_elements += q.new_tokens * context;
    s.head_rows += q.samples ? 1 : 0;
  }
  return s;
}

int64_t KvBytesPerTokenPerLayer(const ModelDims& dims, int64_t kv_heads) {
  if (dims.is_mla()) {
    return BytesOf(dims.kv_lora_rank + dims.qk_rope_head_dim, dims.kv_cache_dtype);
  }
  return BytesOf(2 * kv_heads * dims.head_dim, dims.kv_cache_dtype);
}

int ModelGraph::LayerKindOf(int64_t l) const {
  const bool moe = dims.IsMoeLayer(l);
  const bool sliding = dims.IsSlidingLayer(l);
  for (size_t k = 0; k < layer_kinds.size(); ++k) {
    if (layer_kinds[k].moe == moe && layer_kinds[k].sliding == sliding) {
      return static_cast<int>(k);
    }
  }
  return 0;  // unreachable: BuildGraph makes a kind for every layer
}

std::vector<int64_t> ModelGraph::KindCounts(int64_t first, int64_t count) const {
  std::vector<int64_t> counts(layer_kinds.size(), 0);
  if (layer_kinds.size() == 1) {
    counts[0] = count;
    return counts;
  }
  for (int64_t l = first; l < first + count; ++l) ++counts[static_cast<size_t>(LayerKindOf(l))];
  return counts;
}

int64_t ModelGraph::TotalParameters() const {
  int64_t total = 0;
  for (const Op& op : embedding) total += op.parameters;
  for (const LayerKind& kind : layer_kinds) {
    for (const Op& op : kind.ops) total += kind.count * op.parameters;
  }
  for (const Op& op : tail) total += op.parameters;
  return total;
}

int64_t ModelGraph::TotalWeightBytes() const {
  int64_t total = 0;
  for (const Op& op : embedding) total += op.weight_bytes;
  for (const LayerKind& kind : layer_kinds) {
    for (const Op& op : kind.ops) total += kind.count * op.weight_bytes;
  }
  for (const Op& op : tail) total += op.weight_bytes;
  return total;
}

int64_t ModelGraph::ActiveParameters() const {
  int64_t total = TotalParameters();
  auto idle = [](const Op& op) {
    // Of the experts held, the ones a token does not go to (held experts x
    // (1 - top_k / E): all but top_k when one shard holds them all).
    if (op.total_experts == 0 || op.count == 0) return int64_t{0};
    const int64_t per_expert = op.parameters / op.count;
    return per_expert * (op.count - op.count * op.top_k / op.total_experts);
  };
  for (const LayerKind& kind : layer_kinds) {
    for (const Op& op : kind.ops) total -= kind.count * idle(op);
  }
  for (const Op& op : tail) total -= idle(op);
  return total;
}

ModelGraph BuildGraph(const ModelDims& d, const ShardDims& shard) {
  ModelGraph g;
  g.dims = d;
  g.shard = shard;
  const int64_t h = d.hidden_size;
  const v1::DType aux = AuxDType(d);

  // Embedding: the vocabulary is split across tensor-parallel ranks;
  // position and token-type tables are small and replicated.
  Op embed;
  embed.name = "embedding";
  embed.kind = OpKind::kEmbedding;
  embed.parameters =
      (shard.vocab + d.position_table_rows + d.token_type_vocab_size) * h;
  embed.weight_bytes = BytesOf(embed.parameters, aux);
  embed.out_features = h;
  g.embedding.push_back(embed);
  if (d.embedding_norm) g.embedding.push_back(Norm(d, "embedding_norm", 1));

  // The distinct layer kinds, in the order of their first layer.
  for (int64_t l = 0; l < d.num_layers; ++l) {
    const bool moe = d.IsMoeLayer(l);
    const bool sliding = d.IsSlidingLayer(l);
    LayerKind* kind = nullptr;
    for (LayerKind& k : g.layer_kinds) {
      if (k.moe == moe && k.sliding == sliding) kind = &k;
    }
    if (kind == nullptr) {
      LayerKind k;
      k.name = absl::StrCat(moe ? "moe" : "dense", sliding ? " sliding" : "");
      k.moe = moe;
      k.sliding = sliding;
      k.ops = BuildLayer(d, shard, moe, sliding);
      g.layer_kinds.push_back(std::move(k));
      kind = &g.layer_kinds.back();
    }
    ++kind->count;
  }
  const LayerKind* common = &g.layer_kinds[0];
  for (const LayerKind& k : g.layer_kinds) {
    if (k.count > common->count) common = &k;
  }
  g.layer = common->ops;

  // Tail.
  if (d.final_norm) g.tail.push_back(Norm(d, "final_norm", 1));
  if (d.has_lm_head()) {
    // The head stays in 16 bits under FP8 and INT8 recipes: vLLM's lm_head
    // is a ParallelLMHead, a VocabParallelEmbedding and not a LinearBase, so
    // Fp8Config.get_quant_method (quantization/fp8.py) returns no method for
    // it and it takes UnquantizedEmbeddingMethod (vocab_parallel_embedding.py),
    // a plain F.linear on the BF16 hidden states: no FP8 rate, and no
    // activation quantization (that pass lives in Fp8LinearMethod.apply).
    // FP8 checkpoints ship it in BF16 too (DeepSeek-V3's, llm-compressor's
    // default ignore list).
    Op head;
    head.name = "lm_head";
    head.kind = OpKind::kHead;
    head.unquantized = true;
    head.in_features = h;
    head.out_features = shard.vocab;
    const int64_t matrix = d.tie_word_embeddings ? 0 : shard.vocab * h;
    const int64_t bias = d.lm_head_bias ? shard.vocab : 0;
    head.parameters = matrix + bias;
    head.weight_bytes = BytesOf(head.parameters, aux);
    if (d.tie_word_embeddings) {
      head.tied_weight_bytes = BytesOf(shard.vocab * h, aux);
    }
    g.tail.push_back(head);
    // The sampler, over the full vocabulary of each sampled row (the logits
    // are gathered across tensor-parallel ranks first; every rank samples,
    // as vLLM's all-gather of the logits leaves each with the whole row).
    for (const SamplerPass& pass : d.sampler) {
      Op op;
      op.name = "sample_" + pass.name;
      op.kind = OpKind::kSampler;
      op.count = pass.kernels;
      op.in_features = d.vocab_size;
      op.out_features = d.vocab_size;
      op.sampler_bytes_per_logit = pass.bytes_per_logit;
      op.sampler_reduction = pass.reduction;
      g.tail.push_back(op);
    }
  }
  if (d.pooler) {
    Op pooler = Gemm(d, "pooler", h, h, true);
    pooler.kind = OpKind::kHead;
    pooler.weight_bytes = BytesOf(pooler.parameters, aux);
    pooler.unquantized = true;
    g.tail.push_back(pooler);
  }
  if (d.load_mtp) {
    // DeepSeek-V3's multi-token-prediction module: norms of the hidden state
    // and of the next token's embedding, a 2h -> h projection of the two,
    // one more transformer layer (MoE) and the head's norm; it shares the
    // embedding and head with the model (the checkpoint stores copies).
    for (int64_t m = 0; m < d.mtp_layers; ++m) {
      const std::string prefix = absl::StrCat("mtp", m, "_");
      g.tail.push_back(Norm(d, prefix + "norms", 3));
      g.tail.push_back(Gemm(d, prefix + "eh_proj", 2 * h, h, false));
      for (Op op : BuildLayer(d, shard, d.is_moe(), false)) {
        op.name = prefix + op.name;
        g.tail.push_back(op);
      }
    }
  }
  return g;
}

namespace {

// Token-expert assignments that land on this shard's experts: each token
// picks top_k of total_experts, uniformly, and `count` of those are here.
double RoutedRows(const Op& op, const StepShape& s) {
  const double slots = static_cast<double>(s.new_tokens) *
                       static_cast<double>(op.token_sources) * static_cast<double>(op.top_k);
  if (!op.expert_loads.empty()) {
    double share = 0;  // of all routed slots, on this (the busiest) rank
    for (double p : op.expert_loads) share += p;
    return slots * share;
  }
  return slots * static_cast<double>(op.count) / static_cast<double>(op.total_experts);
}

// Tokens entering a routed-expert op on this rank: the step's, from each of
// the token_sources replicas the rank's experts serve.
double ExpertTokens(const Op& op, const StepShape& s) {
  return static_cast<double>(s.new_tokens) * static_cast<double>(op.token_sources);
}

int64_t Rows(const Op& op, const StepShape& s) {
  if (op.kind == OpKind::kHead || op.kind == OpKind::kSampler) return s.head_rows;
  if (op.total_experts > 0) {
    return static_cast<int64_t>(std::ceil(RoutedRows(op, s)));
  }
  return s.new_tokens;
}

// Weight bytes a step reads: all of them, except experts no token routes to.
int64_t WeightBytesTouched(const Op& op, const ModelDims& d,
                           const StepShape& s) {
  if (op.tied_weight_bytes > 0) return op.tied_weight_bytes + op.weight_bytes;
  if (op.kind == OpKind::kEmbedding) {
    return BytesOf(s.new_tokens * op.out_features, d.activation_dtype);
  }
  if (op.kind == OpKind::kGemm && op.total_experts > 0 && op.count > 0) {
    const double touched = std::ceil(ExpectedActiveExperts(op, s));
    return static_cast<int64_t>(static_cast<double>(op.weight_bytes / op.count) * touched);
  }
  return op.weight_bytes;
}

// Keys each sequence's new tokens attend to, summed over the step: with a
// sliding window a query sees at most `window` keys. The step is taken as
// `sequences` equal sequences (what static batches are); the sum over new
// token j = 1..n of min(cached + j, window), in closed form.
double AttentionPairs(const Op& op, const StepShape& s) {
  if (op.window <= 0 || s.sequences <= 0) {
    return static_cast<double>(s.attention_pairs);
  }
  const double sequences = static_cast<double>(s.sequences);
  const double n = static_cast<double>(s.new_tokens) / sequences;
  const double context = static_cast<double>(s.context_tokens) / sequences;
  const double cached = context - n;
  const double w = static_cast<double>(op.window);
  // Positions cached + 1 .. min(context, w) count their position; the rest w.
  const double last_growing = std::min(context, w);
  double pairs = 0;
  if (last_growing > cached) {
    pairs += (last_growing * (last_growing + 1) - cached * (cached + 1)) / 2;
  }
  pairs += std::max(0.0, context - std::max(w, cached)) * w;
  return pairs * sequences;
}

// Cached tokens attention reads: each sequence's context, capped by the window.
double ContextRead(const Op& op, const StepShape& s) {
  if (op.window <= 0 || s.sequences <= 0) return static_cast<double>(s.context_tokens);
  return std::min(static_cast<double>(s.context_tokens),
                  static_cast<double>(s.sequences) * static_cast<double>(op.window));
}

// A decode step (one new token per sequence) runs MLA in the absorbed form;
// prefill and chunked steps decompress K and V per head, as vLLM's and
// SGLang's MLA backends do (the absorbed form costs more FLOPs per key pair
// than MHA when many queries share the keys).
bool AbsorbedMla(const Op& op, const StepShape& s) {
  return op.kv_lora_rank > 0 && s.new_tokens <= s.sequences;
}

}  // namespace

double ExpectedActiveExperts(const Op& op, const StepShape& s) {
  if (op.total_experts <= 0) return static_cast<double>(op.count);
  if (!op.expert_loads.empty()) {
    // A token picks expert e with probability top_k x p_e (at most 1).
    const double tokens =
        static_cast<double>(s.new_tokens) * static_cast<double>(op.token_sources);
    double active = 0;
    for (double p : op.expert_loads) {
      const double pick = std::min(1.0, static_cast<double>(op.top_k) * p);
      active += 1.0 - std::pow(1.0 - pick, tokens);
    }
    return active;
  }
  const double miss = 1.0 - static_cast<double>(op.top_k) / static_cast<double>(op.total_experts);
  return static_cast<double>(op.count) *
         (1.0 - std::pow(miss, static_cast<double>(s.new_tokens) *
                                   static_cast<double>(op.token_sources)));
}

int64_t GroupedGemmTileRows(double tokens) {
  // vLLM's fused_moe default config (get_default_config in
  // vllm/model_executor/layers/fused_moe/fused_moe.py, unquantized and
  // per-channel weights): BLOCK_SIZE_M 16 up to 32 tokens, 32 up to 96, 64 up
  // to 512, else 128. Tuned per-GPU JSON configs may pick others.
  if (tokens <= 32) return 16;
  if (tokens <= 96) return 32;
  if (tokens <= 512) return 64;
  return 128;
}

double TiledRoutedRows(const Op& op, const StepShape& s) {
  if (op.total_experts <= 0 || op.count <= 0) return 0;
  const double tokens = ExpertTokens(op, s);
  const double tile = static_cast<double>(GroupedGemmTileRows(tokens));
  // One expert of share p: picked by a token with probability q = k p,
  // active with probability 1 - (1 - q)^T, and then holding T k p / active
  // rows on average, run as whole tiles. The ceiling is taken of the mean
  // (the rows' spread around it is left out); a mean a rounding error over
  // a whole number of tiles counts as that number.
  auto expert = [&](double p) {
    const double pick = std::min(1.0, static_cast<double>(op.top_k) * p);
    const double active = 1.0 - std::pow(1.0 - pick, tokens);
    if (active <= 0) return 0.0;
    const double rows = tokens * static_cast<double>(op.top_k) * p / active;
    return active * tile * std::ceil(rows / tile * (1 - 1e-12));
  };
  if (op.expert_loads.empty()) {
    return static_cast<double>(op.count) * expert(1.0 / static_cast<double>(op.total_experts));
  }
  double rows = 0;
  for (double p : op.expert_loads) rows += expert(p);
  return rows;
}

double RowsPerKernel(const Op& op, const StepShape& s) {
  if (op.kind == OpKind::kHead) return static_cast<double>(s.head_rows);
  if (op.total_experts > 0) {
    const double active = ExpectedActiveExperts(op, s);
    if (active <= 0) return 0;
    return (op.kind == OpKind::kGemm ? TiledRoutedRows(op, s) : RoutedRows(op, s)) / active;
  }
  return static_cast<double>(s.new_tokens);
}

double OpFlops(const Op& op, const ModelDims& d, const StepShape& s) {
  (void)d;
  // A grouped expert GEMM executes whole tiles of each expert's rows.
  const double rows = op.total_experts <= 0      ? static_cast<double>(Rows(op, s))
                      : op.kind == OpKind::kGemm ? TiledRoutedRows(op, s)
                                                 : RoutedRows(op, s);
  const double count = static_cast<double>(op.count);
  const double in = static_cast<double>(op.in_features);
  const double out = static_cast<double>(op.out_features);
  switch (op.kind) {
    case OpKind::kGemm:
    case OpKind::kHead:
      return 2 * rows * in * out;
    case OpKind::kAttention: {
      const double pairs = AttentionPairs(op, s) * static_cast<double>(op.heads);
      if (AbsorbedMla(op, s)) {
        // Scores over the latent and rotary key, then P times the latent.
        return 2 * pairs * static_cast<double>(2 * op.kv_lora_rank + op.rope_dim);
      }
      if (op.kv_lora_rank > 0) {
        return 2 * pairs * static_cast<double>(op.head_dim + op.v_head_dim);
      }
      // Q K^T and P V, each 2 FLOPs per multiply-add per head dimension.
      return 4 * pairs * static_cast<double>(op.head_dim);
    }
    case OpKind::kNorm:
      return count * kNormFlopsPerElement * rows * out;
    case OpKind::kActivation:
      return kActivationFlopsPerElement * rows * out;
    case OpKind::kRope:
      return kRopeFlopsPerElement * rows * out;
    case OpKind::kResidualAdd:
      return count * rows * out;
    case OpKind::kSampler:
      // About one operation per logit per kernel (a compare, a scale, an
      // exponential): memory traffic bounds every pass.
      return count * rows * out;
    case OpKind::kEmbedding:
      return 0;
  }
  return 0;
}

int64_t OpMemoryBytes(const Op& op, const ModelDims& d, const StepShape& s) {
  const int64_t rows = Rows(op, s);
  const v1::DType act = d.activation_dtype;
  const int64_t weights = WeightBytesTouched(op, d, s);
  switch (op.kind) {
    case OpKind::kGemm:
    case OpKind::kHead:
      return weights + BytesOf(rows * (op.in_features + op.out_features), act);
    case OpKind::kAttention: {
      const int64_t context = static_cast<int64_t>(ContextRead(op, s));
      if (op.kv_lora_rank > 0) {
        // The latent cache is read once for all heads; it is written for the
        // new tokens. Absorbed: queries and outputs live in the latent space.
        const int64_t latent = BytesOf(op.kv_lora_rank + op.rope_dim, d.kv_cache_dtype);
        const int64_t per_token =
            AbsorbedMla(op, s)
                ? op.heads * (2 * op.kv_lora_rank + op.rope_dim)
                : op.heads * (2 * op.head_dim + 2 * op.v_head_dim);
        return BytesOf(s.new_tokens * per_token, act) + latent * (context + s.new_tokens);
      }
      const int64_t kv_per_token = BytesOf(2 * op.kv_heads * op.head_dim,
                                           d.kv_cache_dtype);
      return BytesOf(s.new_tokens * 2 * op.heads * op.head_dim, act) +
             kv_per_token * (context + s.new_tokens);
    }
    case OpKind::kNorm:
      return weights + op.count * BytesOf(2 * rows * op.out_features, act);
    case OpKind::kActivation:
      return BytesOf(rows * (op.in_features + op.out_features), act);
    case OpKind::kRope:
      return BytesOf(2 * rows * op.out_features, act);
    case OpKind::kResidualAdd:
      return op.count * BytesOf(3 * rows * op.out_features, act);
    case OpKind::kEmbedding:
      return weights + BytesOf(rows * op.out_features, act);
    case OpKind::kSampler:
      return rows * op.out_features * op.sampler_bytes_per_logit;
  }
  return 0;
}

int64_t OpWorkingSetBytes(const Op& op, const ModelDims& d, const StepShape& s,
                          bool eager_attention) {
  const int64_t rows = Rows(op, s);
  const v1::DType act = d.activation_dtype;
  switch (op.kind) {
    case OpKind::kGemm:
      return BytesOf(rows * (op.in_features + op.out_features), act);
    case OpKind::kHead: {
      // Input rows, this shard's logits, and the full-vocabulary logits in
      // FP32 that sampling works on after they are gathered.
      int64_t bytes = BytesOf(rows * (op.in_features + op.out_features), act);
      if (op.name == "lm_head") {
        bytes += BytesOf(rows * d.vocab_size, v1::FP32);
      }
      return bytes;
    }
    case OpKind::kAttention: {
      int64_t bytes =
          BytesOf(s.new_tokens * (op.in_features + op.out_features), act);
      if (eager_attention) {
        // Scores and softmax probabilities, per head; computed in double and
        // capped, since a long prompt's score matrix passes 2^63 bytes (it
        // then simply does not fit).
        const double scores = 2.0 * static_cast<double>(s.score_elements) *
                              static_cast<double>(op.heads) * DTypeBits(act) / 8;
        bytes += scores < 1e18 ? static_cast<int64_t>(scores) : int64_t{1'000'000'000'000'000'000};
      }
      return bytes;
    }
    case OpKind::kNorm:
      return BytesOf(2 * rows * op.out_features, act);
    case OpKind::kActivation:
      return BytesOf(rows * (op.in_features + op.out_features), act);
    case OpKind::kRope:
      // Rotates Q and K in place inside the fused QKV buffer.
      return BytesOf(rows * op.in_features, act);
    case OpKind::kResidualAdd:
      return BytesOf(rows * op.out_features, act);
    case OpKind::kEmbedding:
      return BytesOf(rows * op.out_features, act);
    case OpKind::kSampler:
      // The FP32 logits (or probabilities) of the sampled rows: the buffer
      // lm_head's working set already holds, so no new peak.
      return BytesOf(rows * op.out_features, v1::FP32);
  }
  return 0;
}

const char* OpKindName(OpKind kind) {
  switch (kind) {
    case OpKind::kEmbedding:
      return "embedding";
    case OpKind::kNorm:
      return "norm";
    case OpKind::kGemm:
      return "gemm";
    case OpKind::kRope:
      return "rope";
    case OpKind::kAttention:
      return "attention";
    case OpKind::kActivation:
      return "activation";
    case OpKind::kResidualAdd:
      return "residual_add";
    case OpKind::kHead:
      return "head";
    case OpKind::kSampler:
      return "sampler";
  }
  return "unknown";
}

std::vector<double> ExpertLoadShares(int64_t num_experts, double zipf_exponent,
                                     double hot_expert_share,
                                     const std::vector<double>& histogram) {
  std::vector<double> shares(static_cast<size_t>(std::max<int64_t>(0, num_experts)), 0.0);
  if (shares.empty()) return shares;
  const double n = static_cast<double>(num_experts);
  if (!histogram.empty()) {
    double total = 0;
    for (double w : histogram) total += w;
    for (size_t e = 0; e < shares.size() && e < histogram.size(); ++e) {
      shares[e] = total > 0 ? histogram[e] / total : 1.0 / n;
    }
  } else if (hot_expert_share > 0) {
    shares[0] = hot_expert_share;
    for (size_t e = 1; e < shares.size(); ++e) shares[e] = (1.0 - hot_expert_share) / (n - 1);
  } else {
    double total = 0;
    for (size_t e = 0; e < shares.size(); ++e) {
      shares[e] = std::pow(static_cast<double>(e + 1), -zipf_exponent);
      total += shares[e];
    }
    for (double& p : shares) p /= total;
  }
  return shares;
}

std::vector<double> BusiestRank(const std::vector<double>& shares, int64_t ep) {
  const size_t per_rank = ep > 0 ? shares.size() / static_cast<size_t>(ep) : shares.size();
  if (per_rank == 0) return shares;
  double best = -1;
  std::vector<double> busiest;
  for (size_t first = 0; first + per_rank <= shares.size(); first += per_rank) {
    double load = 0;
    for (size_t e = first; e < first + per_rank; ++e) load += shares[e];
    if (load > best) {
      best = load;
      busiest.assign(shares.begin() + static_cast<std::ptrdiff_t>(first),
                     shares.begin() + static_cast<std::ptrdiff_t>(first + per_rank));
    }
  }
  return busiest;
}

}  // namespace shardsim::model
