// Loading, checking and resolving a ModelSpec.
//
// A ModelSpec leaves many fields at 0 to mean "the usual default" (MHA when
// num_kv_heads is 0, head_dim = hidden / heads, BF16 weights, ...).
// ResolveModel() applies every default once and returns ModelDims, the plain
// numbers the rest of the simulator reads, so no other module re-derives them.
#ifndef SHARDSIM_SIM_MODEL_MODEL_SPEC_H_
#define SHARDSIM_SIM_MODEL_MODEL_SPEC_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "sim/base/config_file.h"
#include "sim/proto/model.pb.h"

namespace shardsim::model {

// One kernel (or a fixed group of launches) of the serving runtime's
// sampler, run over the full-vocabulary logits of every row that samples a
// token. Each runtime's list, with its sources, is in
// sim/scenario/runtime_profile.cc; the graph turns each into a "sample_*" op.
struct SamplerPass {
  std::string name;  // "cast_fp32", "argmax", ...
  // A row reduction (argmax, softmax, a draw) runs at the GPU profile's norm
  // kernels' memory efficiency, an elementwise pass at its activation
  // kernels' (the two fitted kernel kinds of the same shapes).
  bool reduction = false;
  int64_t bytes_per_logit = 0;  // read plus written, per logit of each row
  int64_t kernels = 1;          // launches, each paying the kernel's launch_s
};

// A ModelSpec with all defaults applied. Counts are for the whole model.
struct ModelDims {
  std::string name;
  v1::ModelKind kind = v1::DECODER_ONLY;
  int64_t num_layers = 0;
  int64_t hidden_size = 0;
  int64_t num_attention_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t ffn_hidden_size = 0;
  bool gated_ffn = false;
  int64_t vocab_size = 0;
  bool tie_word_embeddings = false;
  v1::PositionEmbedding position_embedding = v1::ROTARY;
  int64_t position_table_rows = 0;  // learned positions incl. offset rows
  int64_t token_type_vocab_size = 0;
  bool qkv_bias = false;
  bool attn_output_bias = false;
  bool ffn_bias = false;
  bool lm_head_bias = false;
  v1::NormKind norm = v1::RMS_NORM;
  bool parallel_attention = false;
  int64_t norms_per_layer = 2;
  bool embedding_norm = false;  // post-norm models normalize the embeddings
  bool final_norm = true;       // pre-norm models normalize before the head
  bool pooler = false;
  // Mixture of experts (num_experts > 1): which layers, how wide.
  int64_t num_experts = 1;  // routed experts; 1 means a dense FFN
  int64_t experts_per_token = 1;
  int64_t expert_ffn_hidden_size = 0;  // each routed expert's width
  int64_t num_shared_experts = 0;
  int64_t shared_expert_ffn_hidden_size = 0;  // each shared expert's width
  bool shared_expert_gate = false;
  bool router_bias = false;
  int64_t first_dense_layers = 0;
  std::vector<int64_t> dense_layers;  // sorted, distinct
  int64_t moe_layer_period = 1;
  // Multi-head latent attention (kv_lora_rank > 0); head_dim is then
  // qk_nope_head_dim + qk_rope_head_dim, the width of a Q/K head.
  int64_t q_lora_rank = 0;
  int64_t kv_lora_rank = 0;
  int64_t qk_rope_head_dim = 0;
  int64_t qk_nope_head_dim = 0;
  int64_t v_head_dim = 0;
  bool qk_norm = false;
  int64_t sliding_window = 0;  // tokens; 0: every layer attends to all
  int64_t sliding_window_period = 0;
  int64_t mtp_layers = 0;  // in the checkpoint
  bool load_mtp = false;   // counted in weights and compute

  // Precision (see model.proto Precision): the recipe ("" when the fields
  // were given one by one) and each tensor kind's dtype.
  std::string recipe;
  v1::DType weight_dtype = v1::BF16;
  v1::DType gemm_dtype = v1::BF16;
  v1::DType activation_dtype = v1::BF16;
  v1::DType communication_dtype = v1::BF16;
  v1::DType kv_cache_dtype = v1::BF16;
  int64_t quant_group_size = 128;  // -1: one scale per output channel
  int64_t fp8_block_size = 0;      // 0 per tensor, -1 per channel

  // What the importer or the defaults assumed, for the reports' notes.
  std::vector<std::string> notes;

  // The sampler's kernels after the head (decoder-only models), set from the
  // scenario's runtime and sampling (scenario::RuntimeProfile); empty: the
  // step ends at the logits, as before sampling was modelled.
  std::vector<SamplerPass> sampler;

  bool is_moe() const { return num_experts > 1; }
  bool is_mla() const { return kv_lora_rank > 0; }
  // Whether layer `layer` (0-based) has routed experts.
  bool IsMoeLayer(int64_t layer) const;
  // Whether layer `layer` attends only to the last sliding_window tokens.
  bool IsSlidingLayer(int64_t layer) const;
  bool has_lm_head() const { return kind == v1::DECODER_ONLY; }
};

// Checks `spec` (every size positive, heads divide the hidden size or a
// head_dim is given, KV heads divide heads, ...) and applies defaults.
// Errors name the field through `where`.
absl::StatusOr<ModelDims> ResolveModel(const v1::ModelSpec& spec,
                                       const FieldLocator& where);

// Loads a model file: a ModelSpec in text format (.textproto) or a
// HuggingFace config.json (.json, see hf_import.h). `where` is filled so that
// later checks can point into the file.
absl::StatusOr<v1::ModelSpec> LoadModelFile(const std::string& path,
                                            FieldLocator* where);

}  // namespace shardsim::model

#endif  // SHARDSIM_SIM_MODEL_MODEL_SPEC_H_
