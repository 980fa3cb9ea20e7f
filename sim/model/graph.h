// The operator graph of a transformer, with costs as functions of the step.
//
// A model is an embedding, num_layers layers, and a tail (final norm, output
// head or pooler). Layers come in up to four kinds (dense or mixture-of-
// experts FFN, full or sliding-window attention); ModelGraph keeps each
// distinct kind once, with which layers are of it. Each op knows its parameters and weight bytes
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
  int64_t ffn = 0;              // dense FFN width on this GPU
  int64_t vocab = 0;            // vocabulary rows on this GPU
  int64_t experts = 0;          // routed experts held on this GPU (0: dense model)
  int64_t expert_ffn = 0;       // each held expert's FFN width on this GPU
  int64_t shared_ffn = 0;       // the shared experts' combined width on this GPU
  // Attention replicas whose tokens one expert group serves: max(tp, ep) /
  // tp. With ep > tp (vLLM's expert parallelism over data-parallel
  // attention) each rank's experts get the tokens of ep / tp replicas,
  // taken to have the same batch.
  int64_t expert_token_sources = 1;
  // Routing skew: the share of all routed token slots each expert held on
  // the busiest EP rank gets (ExpertLoadShares, BusiestRank). Empty:
  // uniform routing (each expert 1 / num_experts).
  std::vector<double> expert_loads;
};

// Share of the routed token slots each of `num_experts` experts gets
// (summing to 1): a Zipf law of exponent `zipf_exponent` over the ids, or
// `hot_expert_share` for expert 0 and the rest equally, or `histogram`
// (one weight per expert) normalised. All unset: uniform.
std::vector<double> ExpertLoadShares(int64_t num_experts, double zipf_exponent,
                                     double hot_expert_share,
                                     const std::vector<double>& histogram);
// The shares of the experts on the EP rank (of `ep`, each holding
// consecutive ids) whose experts get the most; the first such rank.
std::vector<double> BusiestRank(const std::vector<double>& shares, int64_t ep);

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
  // One pass of the sampler over the gathered logits (ModelDims::sampler):
  // rows are the step's head rows, the width the whole vocabulary.
  kSampler,
};

struct Op {
  std::string name;
  OpKind kind = OpKind::kGemm;
  // How many identical instances run (two residual adds, experts held).
  int64_t count = 1;
  int64_t parameters = 0;    // all instances, this shard
  int64_t weight_bytes = 0;  // all instances, this shard, incl. quant scales
  // GEMMs: x[rows, in] @ W[in, out]. Other ops: `out` is the width they touch.
  int64_t in_features = 0;
  int64_t out_features = 0;
  // Routed-expert ops (grouped GEMMs and their activation): each token picks
  // top_k of the model's total_experts, uniformly; `count` of them are on
  // this shard, serving the tokens of token_sources attention replicas (the
  // step's tokens x token_sources). 0 for every other op.
  int64_t total_experts = 0;
  int64_t top_k = 0;
  int64_t token_sources = 1;
  // With routing skew: each held expert's share of the routed token slots
  // (ShardDims::expert_loads); empty: uniform.
  std::vector<double> expert_loads;
  // The head of a model with tied embeddings owns no matrix of its own but
  // reads the embedding's: the bytes of that shared matrix (0 if untied).
  int64_t tied_weight_bytes = 0;
  // A GEMM whose weights stay in 16 bits under a quantized recipe (the head,
  // the pooler, the MoE router and shared-expert gate; their weight_bytes are
  // in the auxiliary dtype): it multiplies activations by 16-bit weights at
  // the activation dtype's rate, and its inputs are not quantized first.
  bool unquantized = false;
  // Attention: query heads, KV heads and head_dim on this shard.
  int64_t heads = 0;
  int64_t kv_heads = 0;
  int64_t head_dim = 0;
  // Attention over a sliding window: each query sees at most this many keys
  // (0: all of them).
  int64_t window = 0;
  // Multi-head latent attention (kv_lora_rank > 0): the cached latent width,
  // the shared rotary key width and each head's value width.
  int64_t kv_lora_rank = 0;
  int64_t rope_dim = 0;
  int64_t v_head_dim = 0;
  // Sampler passes: bytes read plus written per logit (all `count` kernels),
  // and whether it is a row reduction (else elementwise).
  int64_t sampler_bytes_per_logit = 0;
  bool sampler_reduction = false;
};

// One kind of transformer layer and how many of the model's layers are it.
struct LayerKind {
  std::string name;  // "dense", "moe", "dense sliding", "moe sliding"
  bool moe = false;
  bool sliding = false;
  std::vector<Op> ops;
  int64_t count = 0;
};

// The ops of the model for one shard, in execution order.
struct ModelGraph {
  ModelDims dims;
  ShardDims shard;
  std::vector<Op> embedding;  // runs once, on the first pipeline stage
  // The ops of the most common layer kind (the MoE layer of DeepSeek-V3, the
  // sliding layer of Gemma-3; every layer of a uniform model). A replay that
  // multiplies it by num_layers is exact only when layer_kinds has one entry.
  std::vector<Op> layer;
  // Every distinct layer kind, in the order of their first layer.
  std::vector<LayerKind> layer_kinds;
  std::vector<Op> tail;       // final norm and head (or pooler), last stage;
                              // with load_mtp also the MTP modules; then the
                              // sampler's passes (kSampler), which the program
                              // runs after the logits are gathered

  // The kind of layer `index` (0-based), an index into layer_kinds.
  int LayerKindOf(int64_t index) const;
  // The ops of layer `index`.
  const std::vector<Op>& LayerOps(int64_t index) const {
    return layer_kinds[static_cast<size_t>(LayerKindOf(index))].ops;
  }
  // How many of layers [first, first + count) are of each kind, indexed
  // like layer_kinds: what a pipeline stage holds.
  std::vector<int64_t> KindCounts(int64_t first, int64_t count) const;

  // Parameters and weight bytes of this shard across the whole model
  // (embedding + every layer + tail).
  int64_t TotalParameters() const;
  int64_t TotalWeightBytes() const;
  // Parameters one token goes through: all of them but the routed experts
  // it is not sent to (top_k of num_experts per MoE layer are). Embedding
  // and head count whole, as model cards count "activated parameters".
  int64_t ActiveParameters() const;
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

// Bytes of the KV cache per token for one layer on one shard: K and V of
// `kv_heads` heads, or for MLA the latent and the rotary key (kv_lora_rank +
// qk_rope_head_dim values, the same on every tensor-parallel rank).
int64_t KvBytesPerTokenPerLayer(const ModelDims& dims, int64_t kv_heads);

// Rows one GEMM kernel of `op` multiplies in a step of `shape`: the step's
// rows, or for routed experts the rows each expert that receives any runs
// on average, in whole tiles (TiledRoutedRows / ExpectedActiveExperts: what
// sets its place on the efficiency curve).
double RowsPerKernel(const Op& op, const StepShape& shape);

// A grouped expert GEMM (vLLM's fused_moe, DeepGEMM's grouped kernels) runs
// every expert of the rank in one kernel whose blocks each take a tile of
// one expert's rows (rows padded to the tile height per expert, as
// moe_align_block_size does), so its work is the sum over experts of their
// rows rounded up to whole tiles. Under the fitted efficiency curve e(r) =
// e_max r / (r + r_half) the sum of per-expert times is 2 in out (R +
// n_active r_half) / (peak e_max), the same as all R rows at the mean rows
// per active expert: what routing skew changes beyond the experts touched
// is the tiles, where a hot expert's many rows fill whole tiles and the
// rest each round up their few.
//
// The tile height for a step of `tokens` tokens entering the layer
// (vLLM's fused_moe default BLOCK_SIZE_M ladder).
int64_t GroupedGemmTileRows(double tokens);
// Rows the grouped GEMM of `op` executes in a step of `shape`, summed over
// the experts held, each expert's expected rows when active rounded up to
// whole tiles, times the probability it is active. 0 for other ops.
double TiledRoutedRows(const Op& op, const StepShape& shape);
// Routed experts on this shard that at least one of the step's tokens goes
// to, expected: under uniform routing count x (1 - (1 - top_k/E)^tokens);
// with op.expert_loads the sum over them of 1 - (1 - top_k x p_e)^tokens.
double ExpectedActiveExperts(const Op& op, const StepShape& shape);

// "gemm", "attention", ...
const char* OpKindName(OpKind kind);

}  // namespace shardsim::model

#endif  // SHARDSIM_SIM_MODEL_GRAPH_H_
