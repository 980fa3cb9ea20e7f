#include "sim/model/graph.h"

#include <algorithm>

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
// quant_group_size input rows per output column (INT4 also a packed 4-bit
// zero point, as GPTQ stores qzeros); FP8 one FP32 scale per matrix.
int64_t LinearWeightBytes(const ModelDims& d, int64_t in, int64_t out) {
  const int64_t elements = in * out;
  if (IsGroupQuantized(d.weight_dtype)) {
    const int64_t groups = (in + d.quant_group_size - 1) / d.quant_group_size;
    int64_t scale_bytes = groups * out * 2;
    if (d.weight_dtype == v1::INT4) scale_bytes += (groups * out + 1) / 2;
    return BytesOf(elements, d.weight_dtype) + scale_bytes;
  }
  if (d.weight_dtype == v1::FP8) return elements + 4;
  return BytesOf(elements, d.weight_dtype);
}

int64_t NormParameters(const ModelDims& d) {
  return d.norm == v1::LAYER_NORM ? 2 * d.hidden_size : d.hidden_size;
}

Op Norm(const ModelDims& d, std::string name, int64_t count) {
  Op op;
  op.name = std::move(name);
  op.kind = OpKind::kNorm;
  op.count = count;
  op.parameters = count * NormParameters(d);
  op.weight_bytes = BytesOf(op.parameters, AuxDType(d));
  op.in_features = d.hidden_size;
  op.out_features = d.hidden_size;
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

}  // namespace

ShardDims FullModel(const ModelDims& dims) {
  return ShardDims{dims.num_attention_heads, dims.num_kv_heads,
                   dims.ffn_hidden_size, dims.vocab_size};
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
  return BytesOf(2 * kv_heads * dims.head_dim, dims.kv_cache_dtype);
}

int64_t ModelGraph::TotalParameters() const {
  int64_t total = 0;
  for (const Op& op : embedding) total += op.parameters;
  for (const Op& op : layer) total += dims.num_layers * op.parameters;
  for (const Op& op : tail) total += op.parameters;
  return total;
}

int64_t ModelGraph::TotalWeightBytes() const {
  int64_t total = 0;
  for (const Op& op : embedding) total += op.weight_bytes;
  for (const Op& op : layer) total += dims.num_layers * op.weight_bytes;
  for (const Op& op : tail) total += op.weight_bytes;
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

  // One transformer layer.
  const int64_t q_width = shard.attention_heads * d.head_dim;
  const int64_t kv_width = shard.kv_heads * d.head_dim;
  const bool separate_mlp_norm = !d.parallel_attention && d.norms_per_layer > 1;
  if (d.norms_per_layer > 0) {
    g.layer.push_back(
        Norm(d, "input_norm", separate_mlp_norm ? 1 : d.norms_per_layer));
  }
  g.layer.push_back(
      Gemm(d, "qkv_proj", h, q_width + 2 * kv_width, d.qkv_bias));
  if (d.position_embedding == v1::ROTARY) {
    Op rope;
    rope.name = "rope";
    rope.kind = OpKind::kRope;
    rope.in_features = q_width + 2 * kv_width;  // the fused QKV buffer
    rope.out_features = q_width + kv_width;     // Q and K are rotated
    g.layer.push_back(rope);
  }
  Op attention;
  attention.name = "attention";
  attention.kind = OpKind::kAttention;
  attention.heads = shard.attention_heads;
  attention.kv_heads = shard.kv_heads;
  attention.head_dim = d.head_dim;
  attention.in_features = q_width + 2 * kv_width;
  attention.out_features = q_width;
  g.layer.push_back(attention);
  g.layer.push_back(Gemm(d, "o_proj", q_width, h, d.attn_output_bias));
  if (separate_mlp_norm) {
    g.layer.push_back(Norm(d, "post_attn_norm", d.norms_per_layer - 1));
  }
  const int64_t experts = d.num_experts;
  if (d.is_moe()) {
    // The router is small and replicated on every rank.
    g.layer.push_back(Gemm(d, "router", h, experts, false));
  }
  const int64_t up_width = (d.gated_ffn ? 2 : 1) * shard.ffn;
  Op up = Gemm(d, d.gated_ffn ? "gate_up_proj" : "up_proj", h, up_width,
               d.ffn_bias, experts);
  up.rows_multiplier = d.experts_per_token;
  g.layer.push_back(up);
  Op act;
  act.name = "act";
  act.kind = OpKind::kActivation;
  act.in_features = up_width;
  act.out_features = shard.ffn;
  act.rows_multiplier = d.experts_per_token;
  g.layer.push_back(act);
  Op down = Gemm(d, "down_proj", shard.ffn, h, d.ffn_bias, experts);
  down.rows_multiplier = d.experts_per_token;
  g.layer.push_back(down);
  Op add;
  add.name = "residual_add";
  add.kind = OpKind::kResidualAdd;
  add.count = 2;  // after attention and after the FFN (or attn + FFN + x)
  add.out_features = h;
  g.layer.push_back(add);

  // Tail.
  if (d.final_norm) g.tail.push_back(Norm(d, "final_norm", 1));
  if (d.has_lm_head()) {
    Op head;
    head.name = "lm_head";
    head.kind = OpKind::kHead;
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
  }
  if (d.pooler) {
    Op pooler = Gemm(d, "pooler", h, h, true);
    pooler.kind = OpKind::kHead;
    pooler.weight_bytes = BytesOf(pooler.parameters, aux);
    g.tail.push_back(pooler);
  }
  return g;
}

namespace {

int64_t Rows(const Op& op, const StepShape& s) {
  if (op.kind == OpKind::kHead) return s.head_rows;
  return s.new_tokens * op.rows_multiplier;
}

// Weight bytes a step reads: all of them, except experts no token routes to.
int64_t WeightBytesTouched(const Op& op, const ModelDims& d,
                           const StepShape& s) {
  if (op.tied_weight_bytes > 0) return op.tied_weight_bytes + op.weight_bytes;
  if (op.kind == OpKind::kEmbedding) {
    return BytesOf(s.new_tokens * op.out_features, d.activation_dtype);
  }
  if (op.kind == OpKind::kGemm && op.count > 1) {
    const int64_t touched =
        std::min(op.count, s.new_tokens * op.rows_multiplier);
    return op.weight_bytes / op.count * touched;
  }
  return op.weight_bytes;
}

}  // namespace

double OpFlops(const Op& op, const ModelDims& d, const StepShape& s) {
  const double rows = static_cast<double>(Rows(op, s));
  const double count = static_cast<double>(op.count);
  const double in = static_cast<double>(op.in_features);
  const double out = static_cast<double>(op.out_features);
  switch (op.kind) {
    case OpKind::kGemm:
    case OpKind::kHead:
      return 2 * rows * in * out;
    case OpKind::kAttention:
      // Q K^T and P V, each 2 FLOPs per multiply-add per head dimension.
      return 4 * static_cast<double>(s.attention_pairs) * static_cast<double>(op.heads) *
             static_cast<double>(op.head_dim);
    case OpKind::kNorm:
      return count * kNormFlopsPerElement * rows * static_cast<double>(d.hidden_size);
    case OpKind::kActivation:
      return kActivationFlopsPerElement * rows * out;
    case OpKind::kRope:
      return kRopeFlopsPerElement * rows * out;
    case OpKind::kResidualAdd:
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
      const int64_t kv_per_token = BytesOf(2 * op.kv_heads * op.head_dim,
                                           d.kv_cache_dtype);
      return BytesOf(s.new_tokens * 2 * op.heads * op.head_dim, act) +
             kv_per_token * (s.context_tokens + s.new_tokens);
    }
    case OpKind::kNorm:
      return weights + op.count * BytesOf(2 * rows * d.hidden_size, act);
    case OpKind::kActivation:
      return BytesOf(rows * (op.in_features + op.out_features), act);
    case OpKind::kRope:
      return BytesOf(2 * rows * op.out_features, act);
    case OpKind::kResidualAdd:
      return op.count * BytesOf(3 * rows * op.out_features, act);
    case OpKind::kEmbedding:
      return weights + BytesOf(rows * op.out_features, act);
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
      return BytesOf(2 * rows * d.hidden_size, act);
    case OpKind::kActivation:
      return BytesOf(rows * (op.in_features + op.out_features), act);
    case OpKind::kRope:
      // Rotates Q and K in place inside the fused QKV buffer.
      return BytesOf(rows * op.in_features, act);
    case OpKind::kResidualAdd:
      return BytesOf(rows * op.out_features, act);
    case OpKind::kEmbedding:
      return BytesOf(rows * op.out_features, act);
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
  }
  return "unknown";
}

}  // namespace shardsim::model
