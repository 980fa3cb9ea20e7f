#include "sim/model/hf_import.h"

#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"
#include "sim/base/status_macros.h"

namespace shardsim::model {
namespace {

using Json = nlohmann::json;

// 1-based line and column of byte `offset` in `text`.
std::pair<int, int> LineColumn(const std::string& text, size_t offset) {
  int line = 1;
  int column = 1;
  for (size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  return {line, column};
}

// Reads typed keys from one config object, naming the file, the key and
// where it is written in every error.
class ConfigReader {
 public:
  ConfigReader(const Json& config, const std::string& text,
               const std::string& file, std::string model_type)
      : config_(config), text_(text), file_(file),
        model_type_(std::move(model_type)) {}

  // "file:line:column" of `key`'s first occurrence as a JSON key, or "file".
  std::string Where(absl::string_view key) const {
    const std::string quoted = absl::StrCat("\"", key, "\"");
    size_t at = text_.find(quoted);
    while (at != std::string::npos) {
      size_t after = at + quoted.size();
      while (after < text_.size() &&
             (text_[after] == ' ' || text_[after] == '\t')) {
        ++after;
      }
      if (after < text_.size() && text_[after] == ':') {
        const auto [line, column] = LineColumn(text_, at);
        return absl::StrFormat("%s:%d:%d", file_, line, column);
      }
      at = text_.find(quoted, at + 1);
    }
    return file_;
  }

  absl::Status Error(absl::string_view key, absl::string_view message) const {
    return absl::InvalidArgumentError(
        absl::StrCat(Where(key), ": ", key, ": ", message));
  }

  bool Has(absl::string_view key) const {
    auto it = config_.find(std::string(key));
    return it != config_.end() && !it->is_null();
  }

  // The first of `keys` present (aliases, e.g. n_layer / num_hidden_layers).
  std::optional<std::string> FirstPresent(
      std::initializer_list<const char*> keys) const {
    for (const char* key : keys) {
      if (Has(key)) return std::string(key);
    }
    return std::nullopt;
  }

  absl::StatusOr<int64_t> Int(std::initializer_list<const char*> keys) const {
    std::optional<std::string> key = FirstPresent(keys);
    if (!key) {
      return absl::InvalidArgumentError(absl::StrCat(
          file_, ": ", *keys.begin(), ": missing (required for model_type '",
          model_type_, "')"));
    }
    return IntAt(*key);
  }

  absl::StatusOr<int64_t> IntOr(std::initializer_list<const char*> keys,
                                int64_t fallback) const {
    std::optional<std::string> key = FirstPresent(keys);
    if (!key) return fallback;
    return IntAt(*key);
  }

  absl::StatusOr<bool> BoolOr(const char* key, bool fallback) const {
    if (!Has(key)) return fallback;
    const Json& value = config_.at(key);
    if (!value.is_boolean()) {
      return Error(key, absl::StrCat("expected true or false, got ",
                                     value.dump()));
    }
    return value.get<bool>();
  }

  absl::StatusOr<std::string> StringOr(const char* key,
                                       std::string fallback) const {
    if (!Has(key)) return fallback;
    const Json& value = config_.at(key);
    if (!value.is_string()) {
      return Error(key, absl::StrCat("expected a string, got ", value.dump()));
    }
    return value.get<std::string>();
  }

  // Records that ModelSpec field `field` came from JSON `key`.
  void Map(FieldLocator* where, const std::string& field,
           std::initializer_list<const char*> keys) const {
    std::optional<std::string> key = FirstPresent(keys);
    if (!key) return;
    const std::string at = Where(*key);
    int line = 0;
    int column = 0;
    if (sscanf(at.c_str() + file_.size(), ":%d:%d", &line, &column) == 2) {
      where->AddLocation(field, line - 1, column - 1);
    }
  }

 private:
  absl::StatusOr<int64_t> IntAt(const std::string& key) const {
    const Json& value = config_.at(key);
    if (!value.is_number_integer()) {
      return Error(key, absl::StrCat("expected an integer, got ", value.dump()));
    }
    return value.get<int64_t>();
  }

  const Json& config_;
  const std::string& text_;
  const std::string& file_;
  std::string model_type_;
};

absl::StatusOr<v1::DType> TorchDType(const ConfigReader& reader) {
  SHARDSIM_ASSIGN_OR_RETURN(std::string name,
                            reader.StringOr("torch_dtype", "float32"));
  if (name == "float32") return v1::FP32;
  if (name == "bfloat16") return v1::BF16;
  if (name == "float16") return v1::FP16;
  return reader.Error("torch_dtype",
                      absl::StrCat("unknown dtype '", name,
                                   "' (expected float32, bfloat16 or float16)"));
}

// GPTQ / AWQ checkpoints: {"quant_method": "gptq", "bits": 4, "group_size": 128}.
absl::Status ApplyQuantization(const Json& config, const std::string& text,
                               const std::string& file, v1::Precision* p) {
  auto it = config.find("quantization_config");
  if (it == config.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(file, ": quantization_config: expected an object"));
  }
  ConfigReader q(*it, text, file, "quantization_config");
  SHARDSIM_ASSIGN_OR_RETURN(int64_t bits, q.Int({"bits", "w_bit"}));
  if (bits == 4) {
    p->set_weight_dtype(v1::INT4);
  } else if (bits == 8) {
    p->set_weight_dtype(v1::INT8);
  } else {
    return q.Error("bits", absl::StrCat("unsupported weight width ", bits,
                                        " (expected 4 or 8)"));
  }
  SHARDSIM_ASSIGN_OR_RETURN(int64_t group,
                            q.IntOr({"group_size", "q_group_size"}, 128));
  // GPTQ writes group_size -1 for one scale per output column.
  p->set_quant_group_size(group > 0 ? group : 0);
  return absl::OkStatus();
}

// llama, mistral, qwen2, mixtral: the Llama layout with small variations.
absl::Status ImportLlamaFamily(const ConfigReader& r, const std::string& type,
                               v1::ModelSpec* s) {
  SHARDSIM_ASSIGN_OR_RETURN(int64_t layers, r.Int({"num_hidden_layers"}));
  SHARDSIM_ASSIGN_OR_RETURN(int64_t hidden, r.Int({"hidden_size"}));
  SHARDSIM_ASSIGN_OR_RETURN(int64_t heads, r.Int({"num_attention_heads"}));
  SHARDSIM_ASSIGN_OR_RETURN(int64_t kv_heads,
                            r.IntOr({"num_key_value_heads"}, heads));
  SHARDSIM_ASSIGN_OR_RETURN(int64_t head_dim, r.IntOr({"head_dim"}, 0));
  SHARDSIM_ASSIGN_OR_RETURN(int64_t ffn, r.Int({"intermediate_size"}));
  SHARDSIM_ASSIGN_OR_RETURN(int64_t vocab, r.Int({"vocab_size"}));
  SHARDSIM_ASSIGN_OR_RETURN(bool tied, r.BoolOr("tie_word_embeddings", false));
  SHARDSIM_ASSIGN_OR_RETURN(bool attention_bias,
                            r.BoolOr("attention_bias", type == "qwen2"));
  SHARDSIM_ASSIGN_OR_RETURN(bool mlp_bias, r.BoolOr("mlp_bias", false));
  s->set_num_layers(layers);
  s->set_hidden_size(hidden);
  s->set_num_attention_heads(heads);
  s->set_num_kv_heads(kv_heads);
  s->set_head_dim(head_dim);
  s->set_ffn_hidden_size(ffn);
  s->set_gated_ffn(true);
  s->set_vocab_size(vocab);
  s->set_tie_word_embeddings(tied);
  s->set_position_embedding(v1::ROTARY);
  s->set_norm(v1::RMS_NORM);
  // Qwen2 has biases on Q, K and V only; Llama's attention_bias covers O too.
  s->set_qkv_bias(attention_bias);
  s->set_attn_output_bias(type != "qwen2" && attention_bias);
  s->set_ffn_bias(mlp_bias);
  if (type == "mixtral") {
    SHARDSIM_ASSIGN_OR_RETURN(int64_t experts, r.Int({"num_local_experts"}));
    SHARDSIM_ASSIGN_OR_RETURN(int64_t top_k, r.Int({"num_experts_per_tok"}));
    s->set_num_experts(experts);
    s->set_experts_per_token(top_k);
  }
  return absl::OkStatus();
}

absl::Status ImportGpt2(const ConfigReader& r, v1::ModelSpec* s) {
  SHARDSIM_ASSIGN_OR_RETURN(int64_t layers, r.Int({"n_layer", "num_hidden_layers"}));
  SHARDSIM_ASSIGN_OR_RETURN(int64_t hidden, r.Int({"n_embd", "hidden_size"}));
  SHARDSIM_ASSIGN_OR_RETURN(int64_t heads, r.Int({"n_head", "num_attention_heads"}));
  SHARDSIM_ASSIGN_OR_RETURN(int64_t ffn, r.IntOr({"n_inner"}, 4 * hidden));
  SHARDSIM_ASSIGN_OR_RETURN(int64_t vocab, r.Int({"vocab_size"}));
  SHARDSIM_ASSIGN_OR_RETURN(int64_t positions,
                            r.Int({"n_positions", "max_position_embeddings"}));
  SHARDSIM_ASSIGN_OR_RETURN(bool tied, r.BoolOr("tie_word_embeddings", true));
  s->set_num_layers(layers);
  s->set_hidden_size(hidden);
  s->set_num_attention_heads(heads);
  s->set_ffn_hidden_size(ffn);
  s->set_vocab_size(vocab);
  s->set_tie_word_embeddings(tied);
  s->set_position_embedding(v1::LEARNED);
  s->set_max_position_embeddings(positions);
  s->set_norm(v1::LAYER_NORM);
  s->set_qkv_bias(true);
  s->set_attn_output_bias(true);
  s->set_ffn_bias(true);
  return absl::OkStatus();
}

absl::Status ImportGptj(const ConfigReader& r, v1::ModelSpec* s) {
  SHARDSIM_ASSIGN_OR_RETURN(int64_t layers, r.Int({"n_layer", "num_hidden_layers"}));
  SHARDSIM_ASSIGN_OR_RETURN(int64_t hidden, r.Int({"n_embd", "hidden_size"}));
  SHARDSIM_ASSIGN_OR_RETURN(int64_t heads, r.Int({"n_head", "num_attention_heads"}));
  SHARDSIM_ASSIGN_OR_RETURN(int64_t ffn, r.IntOr({"n_inner"}, 4 * hidden));
  SHARDSIM_ASSIGN_OR_RETURN(int64_t vocab, r.Int({"vocab_size"}));
  SHARDSIM_ASSIGN_OR_RETURN(bool tied, r.BoolOr("tie_word_embeddings", false));
  s->set_num_layers(layers);
  s->set_hidden_size(hidden);
  s->set_num_attention_heads(heads);
  s->set_ffn_hidden_size(ffn);
  s->set_vocab_size(vocab);
  s->set_tie_word_embeddings(tied);
  s->set_position_embedding(v1::ROTARY);
  s->set_norm(v1::LAYER_NORM);
  s->set_parallel_attention(true);  // one ln_1 feeds attention and MLP
  s->set_ffn_bias(true);            // fc_in and fc_out have biases
  s->set_lm_head_bias(true);
  return absl::OkStatus();
}

absl::Status ImportOpt(const ConfigReader& r, v1::ModelSpec* s) {
  SHARDSIM_ASSIGN_OR_RETURN(int64_t layers, r.Int({"num_hidden_layers"}));
  SHARDSIM_ASSIGN_OR_RETURN(int64_t hidden, r.Int({"hidden_size"}));
  SHARDSIM_ASSIGN_OR_RETURN(int64_t heads, r.Int({"num_attention_heads"}));
  SHARDSIM_ASSIGN_OR_RETURN(int64_t ffn, r.Int({"ffn_dim"}));
  SHARDSIM_ASSIGN_OR_RETURN(int64_t vocab, r.Int({"vocab_size"}));
  SHARDSIM_ASSIGN_OR_RETURN(int64_t positions, r.Int({"max_position_embeddings"}));
  SHARDSIM_ASSIGN_OR_RETURN(int64_t projection,
                            r.IntOr({"word_embed_proj_dim"}, hidden));
  SHARDSIM_ASSIGN_OR_RETURN(bool pre_norm, r.BoolOr("do_layer_norm_before", true));
  SHARDSIM_ASSIGN_OR_RETURN(bool bias, r.BoolOr("enable_bias", true));
  SHARDSIM_ASSIGN_OR_RETURN(bool tied, r.BoolOr("tie_word_embeddings", true));
  if (projection != hidden) {
    return r.Error("word_embed_proj_dim",
                   absl::StrCat("embedding projections (", projection, " != ",
                                "hidden_size ", hidden, ") are not supported"));
  }
  s->set_num_layers(layers);
  s->set_hidden_size(hidden);
  s->set_num_attention_heads(heads);
  s->set_ffn_hidden_size(ffn);
  s->set_vocab_size(vocab);
  s->set_tie_word_embeddings(tied);
  s->set_position_embedding(v1::LEARNED);
  s->set_max_position_embeddings(positions);
  s->set_position_embedding_offset(2);  // OPTLearnedPositionalEmbedding
  s->set_norm(v1::LAYER_NORM);
  s->set_post_norm(!pre_norm);
  s->set_qkv_bias(bias);
  s->set_attn_output_bias(bias);
  s->set_ffn_bias(bias);
  return absl::OkStatus();
}

absl::Status ImportFalcon(const ConfigReader& r, v1::ModelSpec* s) {
  SHARDSIM_ASSIGN_OR_RETURN(int64_t layers, r.Int({"num_hidden_layers", "n_layer"}));
  SHARDSIM_ASSIGN_OR_RETURN(int64_t hidden, r.Int({"hidden_size"}));
  SHARDSIM_ASSIGN_OR_RETURN(int64_t heads, r.Int({"num_attention_heads", "n_head"}));
  SHARDSIM_ASSIGN_OR_RETURN(int64_t vocab, r.Int({"vocab_size"}));
  SHARDSIM_ASSIGN_OR_RETURN(int64_t ffn, r.IntOr({"ffn_hidden_size"}, 4 * hidden));
  SHARDSIM_ASSIGN_OR_RETURN(bool new_arch,
                            r.BoolOr("new_decoder_architecture", false));
  SHARDSIM_ASSIGN_OR_RETURN(bool multi_query, r.BoolOr("multi_query", true));
  SHARDSIM_ASSIGN_OR_RETURN(bool parallel, r.BoolOr("parallel_attn", true));
  SHARDSIM_ASSIGN_OR_RETURN(bool bias, r.BoolOr("bias", false));
  SHARDSIM_ASSIGN_OR_RETURN(bool alibi, r.BoolOr("alibi", false));
  SHARDSIM_ASSIGN_OR_RETURN(bool tied, r.BoolOr("tie_word_embeddings", true));
  int64_t kv_heads = multi_query ? 1 : heads;
  int32_t norms = parallel ? 1 : 2;
  if (new_arch) {
    // The new architecture (40B, 180B) has grouped KV heads and separate
    // norms for the attention and MLP branches (num_ln_in_parallel_attn = 2).
    SHARDSIM_ASSIGN_OR_RETURN(kv_heads, r.Int({"num_kv_heads", "n_head_kv"}));
    SHARDSIM_ASSIGN_OR_RETURN(int64_t lns, r.IntOr({"num_ln_in_parallel_attn"}, 2));
    norms = static_cast<int32_t>(lns);
    parallel = true;
  }
  s->set_num_layers(layers);
  s->set_hidden_size(hidden);
  s->set_num_attention_heads(heads);
  s->set_num_kv_heads(kv_heads);
  s->set_ffn_hidden_size(ffn);
  s->set_vocab_size(vocab);
  s->set_tie_word_embeddings(tied);
  s->set_position_embedding(alibi ? v1::ALIBI : v1::ROTARY);
  s->set_norm(v1::LAYER_NORM);
  s->set_parallel_attention(parallel);
  s->set_norms_per_layer(norms);
  s->set_qkv_bias(bias);
  s->set_attn_output_bias(bias);
  s->set_ffn_bias(bias);
  return absl::OkStatus();
}

absl::Status ImportBert(const ConfigReader& r, v1::ModelSpec* s) {
  SHARDSIM_ASSIGN_OR_RETURN(int64_t layers, r.Int({"num_hidden_layers"}));
  SHARDSIM_ASSIGN_OR_RETURN(int64_t hidden, r.Int({"hidden_size"}));
  SHARDSIM_ASSIGN_OR_RETURN(int64_t heads, r.Int({"num_attention_heads"}));
  SHARDSIM_ASSIGN_OR_RETURN(int64_t ffn, r.Int({"intermediate_size"}));
  SHARDSIM_ASSIGN_OR_RETURN(int64_t vocab, r.Int({"vocab_size"}));
  SHARDSIM_ASSIGN_OR_RETURN(int64_t positions, r.Int({"max_position_embeddings"}));
  SHARDSIM_ASSIGN_OR_RETURN(int64_t types, r.IntOr({"type_vocab_size"}, 2));
  s->set_kind(v1::ENCODER_ONLY);
  s->set_num_layers(layers);
  s->set_hidden_size(hidden);
  s->set_num_attention_heads(heads);
  s->set_ffn_hidden_size(ffn);
  s->set_vocab_size(vocab);
  s->set_position_embedding(v1::LEARNED);
  s->set_max_position_embeddings(positions);
  s->set_token_type_vocab_size(types);
  s->set_norm(v1::LAYER_NORM);
  s->set_post_norm(true);
  s->set_qkv_bias(true);
  s->set_attn_output_bias(true);
  s->set_ffn_bias(true);
  s->set_pooler(true);  // BertModel, as its parameter count is quoted
  return absl::OkStatus();
}

}  // namespace

absl::Status ImportHuggingFaceConfig(const std::string& json,
                                     const std::string& file,
                                     v1::ModelSpec* spec, FieldLocator* where) {
  Json config;
  try {
    config = Json::parse(json);
  } catch (const Json::parse_error& e) {
    const auto [line, column] = LineColumn(json, e.byte == 0 ? 0 : e.byte - 1);
    // nlohmann's message starts "[json.exception.parse_error.101] parse
    // error at line L, column C: ..."; keep only the part after the prefix.
    std::string what = e.what();
    const size_t colon = what.find(": ", what.find("parse error"));
    if (colon != std::string::npos) what = what.substr(colon + 2);
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s:%d:%d: malformed JSON: %s", file, line, column, what));
  }
  if (!config.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(file, ": expected a JSON object (a config.json)"));
  }
  ConfigReader probe(config, json, file, "");
  SHARDSIM_ASSIGN_OR_RETURN(std::string type, probe.StringOr("model_type", ""));
  if (type.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(file, ": model_type: missing (is this a HuggingFace "
                           "config.json?)"));
  }
  ConfigReader reader(config, json, file, type);
  *spec = v1::ModelSpec();
  *where = FieldLocator(file);
  absl::Status status;
  if (type == "llama" || type == "mistral" || type == "qwen2" ||
      type == "mixtral") {
    status = ImportLlamaFamily(reader, type, spec);
  } else if (type == "gpt2") {
    status = ImportGpt2(reader, spec);
  } else if (type == "gptj") {
    status = ImportGptj(reader, spec);
  } else if (type == "opt") {
    status = ImportOpt(reader, spec);
  } else if (type == "falcon") {
    status = ImportFalcon(reader, spec);
  } else if (type == "bert") {
    status = ImportBert(reader, spec);
  } else {
    return reader.Error(
        "model_type",
        absl::StrCat("unknown architecture '", type,
                     "' (supported: llama, mistral, qwen2, mixtral, gpt2, "
                     "gptj, opt, falcon, bert)"));
  }
  SHARDSIM_RETURN_IF_ERROR(status);
  SHARDSIM_ASSIGN_OR_RETURN(v1::DType dtype, TorchDType(reader));
  spec->mutable_precision()->set_weight_dtype(dtype);
  spec->mutable_precision()->set_activation_dtype(
      dtype == v1::FP32 ? v1::FP32 : dtype);
  SHARDSIM_RETURN_IF_ERROR(
      ApplyQuantization(config, json, file, spec->mutable_precision()));

  // Name the model after its file's stem ("llama3_8b") unless it says more.
  std::string stem = file.substr(file.rfind('/') + 1);
  stem = stem.substr(0, stem.rfind('.'));
  spec->set_name(stem);

  // Point later range checks at the JSON keys the fields came from.
  reader.Map(where, "num_layers", {"num_hidden_layers", "n_layer"});
  reader.Map(where, "hidden_size", {"hidden_size", "n_embd"});
  reader.Map(where, "num_attention_heads", {"num_attention_heads", "n_head"});
  reader.Map(where, "num_kv_heads", {"num_key_value_heads", "num_kv_heads"});
  reader.Map(where, "head_dim", {"head_dim"});
  reader.Map(where, "ffn_hidden_size",
             {"intermediate_size", "ffn_dim", "n_inner", "ffn_hidden_size"});
  reader.Map(where, "vocab_size", {"vocab_size"});
  reader.Map(where, "max_position_embeddings",
             {"max_position_embeddings", "n_positions"});
  reader.Map(where, "num_experts", {"num_local_experts"});
  reader.Map(where, "experts_per_token", {"num_experts_per_tok"});
  reader.Map(where, "precision.weight_dtype", {"torch_dtype"});
  return absl::OkStatus();
}

}  // namespace shardsim::model
