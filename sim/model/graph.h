// The operator graph of a transformer, with costs as functions of the step.
//
// A model is an embedding, num_layers copies of one layer, and a tail (final
// norm, output head or pooler). Each op knows its parameters and weight bytes
// (for one tensor-parallel shard, see ShardDims), and for a step of a given
// shape (StepShape) its FLOPs, the bytes it moves to and from memory, and the
// activation bytes live while it runs. Prefill, decode and mixed steps use
// the same graph: only the StepShape changes.
#ifndef SHARDSIM_SIM_MODEL_GRAPH_H_
#define SHARDSIM_SIM_MODEL_GRAPH_H_

#include <cstdint>
#include <string>
#include <vector>

#include "sim/model/model_spec.h"

namespace shardsim::model {

// The per-GPU sizes of one tensor-parallel shard. For tp = 1 these are the
// model's own sizes; sim/parallel computes them for tp > 1.
struct ShardDims {
  int64_t attention_heads = 0;  // query heads on this GPU
  int64_t kv_heads = 0;         // KV heads on this GPU (replicated if tp > kv)
  int64_t ffn = 0;              // FFN width on this GPU (per expert for MoE)
  int64_t vocab = 0;            // vocabulary rows on this GPU
};

// The unsharded sizes.
ShardDims FullModel(const ModelDims& dims);

// The tokens a step processes, summed over the sequences in it.
struct StepShape {
  int64_t sequences = 0;   // sequences in the step
  int64_t new_tokens = 0;  // tokens computed in this step (all sequences)
  // Sum over sequences of the context each attends to after this step
  // (cached + new tokens): what decode attention reads from the KV cache.
  int64_t context_tokens = 0;
  // Sum over new tokens of the keys each attends to (causal): attention FLOPs.
  int64_t attention_pairs = 0;
  // Sum over sequences of new x context: the score matrix an eager (unfused)
  // attention kernel materializes.
  int64_t score_elements = 0;
  // Rows that go through the output head: one per sequence (the last token),
  // as serving engines compute logits only where a token is sampled.
  int64_t head_rows = 0;
};

// `sequences` sequences each with a `prompt_len`-token prompt, prefilled at once.
StepShape PrefillStep(int64_t sequences, int64_t prompt_len);
// One token for each of `sequences` sequences whose context (including the
// new token) is `context_len`.
StepShape DecodeStep(int64_t sequences, int64_t context_len);

// One sequence's part in a step: `new_tokens` computed now on top of
// `cached_tokens` already in its KV cache. A prefill chunk is new_tokens > 1
// at an offset (cached_tokens = the chunk's start); a decode is one new token.
// `samples` is false for a prefill chunk that does not end the prompt: no
// token is sampled, so it has no row in the output head.
struct SequenceStep {
  int64_t new_tokens = 0;
  int64_t cached_tokens = 0;
  bool samples = true;
};

// The shape of a step that mixes sequences in any phase: every field of
// StepShape summed over the sequences, each with its own context, so
// attention costs the sum of per-sequence terms (a chunk of n tokens at
// offset c attends to c + 1, ..., c + n keys). PrefillStep and DecodeStep are
// the uniform cases of this.
StepShape ShapeOf(const std::vector<SequenceStep>& batch);

enum class OpKind {
  kEmbedding,
  kNorm,
  kGemm,
  kRope,
  kAttention,
  kActivation,
  kResidualAdd,
  kHead,
};

struct Op {
  std::string name;
  OpKind kind = OpKind::kGemm;
  // How many identical instances run (two residual adds, active experts).
  int64_t count = 1;
  int64_t parameters = 0;    // all instances, this shard
  int64_t weight_bytes = 0;  // all instances, this shard, incl. quant scales
  // GEMMs: x[rows, in] @ W[in, out]. Other ops: `out` is the width they touch.
  int64_t in_features = 0;
  int64_t out_features = 0;
  // Fraction of a step's rows this op sees (1, or top-k / experts per expert).
  // For MoE, experts run on tokens * top_k rows spread over the experts.
  int64_t rows_multiplier = 1;
  // The head of a model with tied embeddings owns no matrix of its own but
  // reads the embedding's: the bytes of that shared matrix (0 if untied).
  int64_t tied_weight_bytes = 0;
  // Attention: query heads, KV heads and head_dim on this shard.
  int64_t heads = 0;
  int64_t kv_heads = 0;
  int64_t head_dim = 0;
};

// The ops of the model for one shard, in execution order.
struct ModelGraph {
  ModelDims dims;
  ShardDims shard;
  std::vector<Op> embedding;  // runs once, on the first pipeline stage
  std::vector<Op> layer;      // one transformer layer; runs num_layers times
  std::vector<Op> tail;       // final norm and head (or pooler), last stage

  // Parameters and weight bytes of this shard across the whole model
  // (embedding + num_layers x layer + tail).
  int64_t TotalParameters() const;
  int64_t TotalWeightBytes() const;
};

// Builds the graph for one shard. Tied embeddings are counted once, in the
// embedding (the head reuses them), as a checkpoint stores them.
ModelGraph BuildGraph(const ModelDims& dims, const ShardDims& shard);

// Cost of `op` for a step of `shape` (all instances of the op).
// In double: a long prefill's attention FLOPs pass 2^63.
double OpFlops(const Op& op, const ModelDims& dims, const StepShape& shape);
// Bytes read and written in memory: weights (the ones the step touches),
// activations in and out, and the KV cache for attention.
int64_t OpMemoryBytes(const Op& op, const ModelDims& dims,
                      const StepShape& shape);
// Activation bytes live while the op runs: its inputs and outputs (and, for
// eager attention, the score and probability matrices). Excludes the
// residual stream, which the caller adds for ops inside a layer.
int64_t OpWorkingSetBytes(const Op& op, const ModelDims& dims,
                          const StepShape& shape, bool eager_attention);

// Bytes of the KV cache per token for one layer on one shard (K and V).
int64_t KvBytesPerTokenPerLayer(const ModelDims& dims, int64_t kv_heads);

// "gemm", "attention", ...
const char* OpKindName(OpKind kind);

}  // namespace shardsim::model

#endif  // SHARDSIM_SIM_MODEL_GRAPH_H_
