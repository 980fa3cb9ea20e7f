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

#include "absl/status/statusor.h"
#include "sim/base/config_file.h"
#include "sim/proto/model.pb.h"

namespace shardsim::model {

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
  int64_t num_experts = 1;  // 1 means a dense FFN
  int64_t experts_per_token = 1;
  v1::DType weight_dtype = v1::BF16;
  v1::DType activation_dtype = v1::BF16;
  v1::DType kv_cache_dtype = v1::BF16;
  int64_t quant_group_size = 128;

  bool is_moe() const { return num_experts > 1; }
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
