#include "sim/model/hf_import.h"

#include <algorithm>
#include <cstdint>
#include <optional>
#include <vector>

#include "absl/strings/match.h"
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

// A value as an error message may quote it: scalars as written (strings cut
// to 40 characters), containers by kind only. nlohmann's dump() recurses, so
// 100,000 nested '[' would overflow the stack while printing them.
std::string Excerpt(const Json& value) {
  if (value.is_array()) return "an array";
  if (value.is_object()) return "an object";
  if (value.is_string()) {
    const std::string& text = value.get_ref<const std::string&>();
    if (text.size() > 40) return absl::StrCat("\"", text.substr(0, 40), "...\"");
    return absl::StrCat("\"", text, "\"");
  }
  return value.dump();
}

// A name from the file as an error quotes it: at most 40 characters.
std::string Cut(const std::string& name) {
  return name.size() > 40 ? absl::StrCat(name.substr(0, 40), "...") : name;
}

// Sizes beyond this are implausible (ModelSpec's own bound, model_spec.cc);
// defaults derived from them (4 x hidden) are computed only below it.
constexpr int64_t kMaxSize = int64_t{1} << 24;

// Reads typed keys from one config object, naming the file, the key and
// where it is written in every error.
class ConfigReader {
 public:
  // `search_from`: where in `text` this object's keys are looked for (a
  // nested object's keys come after the key that holds it).
  ConfigReader(const Json& config, const std::string& text,
               const std::string& file, std::string model_type, size_t search_from = 0)
      : config_(config), text_(text), file_(file),
        model_type_(std::move(model_type)), search_from_(search_from) {}

  // A reader for the object under `key` (Object() checked it is one), whose
  // errors point inside it.
  ConfigReader Nested(const Json& object, absl::string_view key,
                      std::string model_type) const {
    return ConfigReader(object, text_, file_, std::move(model_type), KeyOffset(key));
  }

  // "file:line:column" of `key`'s first occurrence as a JSON key, or "file".
  std::string Where(absl::string_view key) const {
    const size_t at = KeyOffset(key);
    if (at == std::string::npos) return file_;
    const auto [line, column] = LineColumn(text_, at);
    return absl::StrFormat("%s:%d:%d", file_, line, column);
  }

  // Offset of `key`'s first occurrence as a JSON key from search_from_ on.
  size_t KeyOffset(absl::string_view key) const {
    const std::string quoted = absl::StrCat("\"", key, "\"");
    size_t at = text_.find(quoted, search_from_ == std::string::npos ? 0 : search_from_);
    while (at != std::string::npos) {
      size_t after = at + quoted.size();
      while (after < text_.size() &&
             (text_[after] == ' ' || text_[after] == '\t')) {
        ++after;
      }
      if (after < text_.size() && text_[after] == ':') return at;
      at = text_.find(quoted, at + 1);
    }
    return std::string::npos;
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
                                     Excerpt(value)));
    }
    return value.get<bool>();
  }

  absl::StatusOr<std::string> StringOr(const char* key,
                                       std::string fallback) const {
    if (!Has(key)) return fallback;
    const Json& value = config_.at(key);
    if (!value.is_string()) {
      return Error(key, absl::StrCat("expected a string, got ", Excerpt(value)));
    }
    return value.get<std::string>();
  }

  // `key` as a size that a default is derived from: positive and at most
  // kMaxSize, so that 4 x hidden and the like cannot overflow.
  absl::StatusOr<int64_t> Size(std::initializer_list<const char*> keys) const {
    SHARDSIM_ASSIGN_OR_RETURN(int64_t value, Int(keys));
    if (value <= 0 || value > kMaxSize) {
      return Error(*FirstPresent(keys),
                   absl::StrCat(value, " is not a plausible size (1 to ", kMaxSize, ")"));
    }
    return value;
  }

  // A key that may be written as null to mean 0 (DeepSeek-V2-Lite's
  // q_lora_rank: null); `fallback` when absent.
  absl::StatusOr<int64_t> IntOrNull(const char* key, int64_t fallback) const {
    auto it = config_.find(key);
    if (it == config_.end()) return fallback;
    if (it->is_null()) return 0;
    return IntAt(key);
  }

  // A list of integers (Qwen's mlp_only_layers); empty when absent.
  absl::StatusOr<std::vector<int64_t>> IntList(const char* key) const {
    std::vector<int64_t> values;
    if (!Has(key)) return values;
    const Json& value = config_.at(key);
    if (!value.is_array()) {
      return Error(key, absl::StrCat("expected a list of integers, got ", Excerpt(value)));
    }
    for (const Json& item : value) {
      if (!item.is_number_integer() ||
          (item.is_number_unsigned() &&
           item.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))) {
        return Error(key, absl::StrCat("expected a list of integers, got an element ",
                                       Excerpt(item)));
      }
      values.push_back(item.get<int64_t>());
    }
    return values;
  }

  // The object under `key` (quantization_config, text_config); null if absent.
  absl::StatusOr<const Json*> Object(const char* key) const {
    if (!Has(key)) return nullptr;
    const Json& value = config_.at(key);
    if (!value.is_object()) {
      return Error(key, absl::StrCat("expected an object, got ", Excerpt(value)));
    }
    return &value;
  }

  const std::string& text() const { return text_; }
  const std::string& file() const { return file_; }
  const std::string& model_type() const { return model_type_; }

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
      return Error(key, absl::StrCat("expected an integer, got ", Excerpt(value)));
    }
    // An unsigned value past int64 would wrap to a negative one.
    if (value.is_number_unsigned() &&
        value.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
      return Error(key, absl::StrCat(Excerpt(value), " is implausibly large"));
    }
    return value.get<int64_t>();
  }

  const Json& config_;
  const std::string& text_;
  const std::string& file_;
  std::string model_type_;
  size_t search_from_ = 0;
};

// The checkpoint's dtype: torch_dtype, or dtype as transformers 4.56 and
// later write it. Neither: BF16, with a note. Transformers would load such a
// checkpoint in FP32, but serving runtimes do not (vLLM's --dtype auto runs
// an FP32 checkpoint in 16 bits), and FP32 would double every weight.
absl::StatusOr<v1::DType> CheckpointDType(const ConfigReader& reader,
                                          std::vector<std::string>* notes) {
  std::optional<std::string> key = reader.FirstPresent({"torch_dtype", "dtype"});
  if (!key) {
    notes->push_back("precision: the config.json gives neither torch_dtype nor dtype; "
                     "BF16 assumed, as serving runtimes load it");
    return v1::BF16;
  }
  SHARDSIM_ASSIGN_OR_RETURN(std::string name, reader.StringOr(key->c_str(), ""));
  if (name == "float32") return v1::FP32;
  if (name == "bfloat16") return v1::BF16;
  if (name == "float16") return v1::FP16;
  return reader.Error(*key, absl::StrCat("unknown dtype '", Cut(name),
                                         "' (expected float32, bfloat16 or float16)"));
}

// Integer weights of `bits` bits: INT4 or INT8.
absl::StatusOr<v1::DType> IntegerWeights(const ConfigReader& q, const char* key,
                                         int64_t bits) {
  if (bits == 4) return v1::INT4;
  if (bits == 8) return v1::INT8;
  return q.Error(key, absl::StrCat("unsupported weight width ", bits, " (expected 4 or 8)"));
}

// compressed-tensors (llm-compressor): the first config group says how
// Linear weights and their inputs are stored: W4A16 (4-bit int weights in
// groups, 16-bit inputs), W8A8 (8-bit int or float weights and inputs) or
// W8A16.
absl::Status ApplyCompressedTensors(const ConfigReader& q, v1::Precision* p) {
  SHARDSIM_ASSIGN_OR_RETURN(const Json* groups, q.Object("config_groups"));
  if (groups == nullptr || groups->empty()) {
    return q.Error("config_groups", "missing: compressed-tensors needs at least one group");
  }
  const Json& group = groups->begin().value();
  if (!group.is_object()) return q.Error("config_groups", "expected an object per group");
  ConfigReader g = q.Nested(group, groups->begin().key(), "compressed-tensors");
  SHARDSIM_ASSIGN_OR_RETURN(const Json* weights, g.Object("weights"));
  if (weights == nullptr) return g.Error("weights", "missing in the first config group");
  ConfigReader w = g.Nested(*weights, "weights", "compressed-tensors");
  SHARDSIM_ASSIGN_OR_RETURN(int64_t bits, w.Int({"num_bits"}));
  SHARDSIM_ASSIGN_OR_RETURN(std::string type, w.StringOr("type", "int"));
  SHARDSIM_ASSIGN_OR_RETURN(std::string strategy, w.StringOr("strategy", "tensor"));
  SHARDSIM_ASSIGN_OR_RETURN(const Json* inputs, g.Object("input_activations"));
  if (type == "float") {
    if (bits != 8) return w.Error("num_bits", absl::StrCat("float weights of ", bits, " bits"));
    p->set_weight_dtype(v1::FP8);
    // W8A8 runs FP8 GEMMs; FP8 weights with 16-bit inputs (W8A16, vLLM's
    // Marlin path on GPUs without FP8 tensor cores) are dequantized first.
    p->set_gemm_dtype(inputs != nullptr ? v1::FP8 : p->activation_dtype());
    if (strategy == "channel") {
      p->set_fp8_block_size(-1);
    } else if (strategy == "block") {
      SHARDSIM_ASSIGN_OR_RETURN(std::vector<int64_t> block, w.IntList("block_structure"));
      if (block.empty() || block[0] <= 0) {
        return w.Error("block_structure", "expected [rows, columns] of a scale block");
      }
      p->set_fp8_block_size(block[0]);
    } else if (strategy != "tensor") {
      return w.Error("strategy", absl::StrCat("unsupported FP8 strategy '", Cut(strategy),
                                              "' (expected tensor, channel or block)"));
    }
    return absl::OkStatus();
  }
  if (type != "int") {
    return w.Error("type", absl::StrCat("unknown weight type '", Cut(type), "' (expected int or float)"));
  }
  SHARDSIM_ASSIGN_OR_RETURN(v1::DType dtype, IntegerWeights(w, "num_bits", bits));
  p->set_weight_dtype(dtype);
  if (strategy == "group") {
    SHARDSIM_ASSIGN_OR_RETURN(int64_t size, w.Int({"group_size"}));
    if (size <= 0) return w.Error("group_size", absl::StrCat("must be positive, got ", size));
    p->set_quant_group_size(size);
  } else if (strategy == "channel") {
    p->set_quant_group_size(-1);
  } else {
    return w.Error("strategy", absl::StrCat("unsupported integer strategy '", Cut(strategy),
                                            "' (expected group or channel)"));
  }
  if (inputs != nullptr) {
    // W8A8 INT8: activations are quantized per token into INT8 GEMMs.
    ConfigReader a = g.Nested(*inputs, "input_activations", "compressed-tensors");
    SHARDSIM_ASSIGN_OR_RETURN(int64_t input_bits, a.Int({"num_bits"}));
    SHARDSIM_ASSIGN_OR_RETURN(std::string input_type, a.StringOr("type", "int"));
    if (input_bits != 8) {
      return a.Error("num_bits", absl::StrCat("unsupported activation width ", input_bits,
                                              " (expected 8)"));
    }
    p->set_gemm_dtype(input_type == "float" ? v1::FP8 : v1::INT8);
  }
  return absl::OkStatus();
}

// quantization_config: FP8 (per tensor or in blocks, DeepSeek-V3's
// weight_block_size), GPTQ and AWQ ({"bits": 4, "group_size": 128}), and
// compressed-tensors.
absl::Status ApplyQuantization(const ConfigReader& reader, v1::Precision* p) {
  SHARDSIM_ASSIGN_OR_RETURN(const Json* config, reader.Object("quantization_config"));
  if (config == nullptr) return absl::OkStatus();
  ConfigReader q = reader.Nested(*config, "quantization_config", "quantization_config");
  SHARDSIM_ASSIGN_OR_RETURN(std::string method, q.StringOr("quant_method", ""));
  if (method == "fp8") {
    // W8A8: activations are quantized to FP8 before each GEMM, dynamically
    // or with static scales; the checkpoint has no say in anything else.
    p->set_weight_dtype(v1::FP8);
    p->set_gemm_dtype(v1::FP8);
    SHARDSIM_ASSIGN_OR_RETURN(std::vector<int64_t> block, q.IntList("weight_block_size"));
    if (!block.empty()) {
      if (block.size() != 2 || block[0] <= 0 || block[1] <= 0 || block[0] != block[1]) {
        return q.Error("weight_block_size",
                       "expected two equal positive block sides, e.g. [128, 128]");
      }
      p->set_fp8_block_size(block[0]);
    }
    return absl::OkStatus();
  }
  if (method == "gptq" || method == "awq") {
    SHARDSIM_ASSIGN_OR_RETURN(int64_t bits, q.Int({"bits", "w_bit"}));
    SHARDSIM_ASSIGN_OR_RETURN(v1::DType dtype,
                              IntegerWeights(q, q.Has("bits") ? "bits" : "w_bit", bits));
    p->set_weight_dtype(dtype);
    SHARDSIM_ASSIGN_OR_RETURN(int64_t group, q.IntOr({"group_size", "q_group_size"}, 128));
    // GPTQ writes group_size -1 for one scale per output column.
    if (group == 0 || group < -1) {
      return q.Error(q.Has("group_size") ? "group_size" : "q_group_size",
                     absl::StrCat("must be positive or -1, got ", group));
    }
    p->set_quant_group_size(group);
    return absl::OkStatus();
  }
  if (method == "compressed-tensors") return ApplyCompressedTensors(q, p);
  return q.Error("quant_method",
                 absl::StrCat("unknown quantization '", Cut(method),
                              "' (known: fp8, gptq, awq, compressed-tensors)"));
}

// Rejects an explicit 0 or negative KV-head count: transformers would fail
// on it, and reading it as "MHA" (ModelSpec's 0) would hide the typo.
absl::StatusOr<int64_t> KvHeads(const ConfigReader& r, int64_t heads) {
  SHARDSIM_ASSIGN_OR_RETURN(int64_t kv_heads, r.IntOr({"num_key_value_heads"}, heads));
  if (kv_heads <= 0) {
    return r.Error("num_key_value_heads", absl::StrCat("must be positive, got ", kv_heads));
  }
  return kv_heads;
}

// A sliding window applied to every layer (Mistral-7B-v0.1, Phi-3, Mixtral);
// null or absent means none.
absl::Status ApplyUniformWindow(const ConfigReader& r, v1::ModelSpec* s) {
  SHARDSIM_ASSIGN_OR_RETURN(int64_t window, r.IntOr({"sliding_window"}, 0));
  if (window < 0) return r.Error("sliding_window", absl::StrCat("must be positive, got ", window));
  s->set_sliding_window(window);
  return absl::OkStatus();
}

// Qwen2/Qwen3's optional sliding window covers only layers from
// max_window_layers on; no published checkpoint enables it.
absl::Status RejectQwenWindow(const ConfigReader& r) {
  SHARDSIM_ASSIGN_OR_RETURN(bool use, r.BoolOr("use_sliding_window", false));
  if (use) {
    return r.Error("use_sliding_window",
                   "Qwen's sliding window on the layers past max_window_layers is not "
                   "supported (no published checkpoint enables it)");
  }
  return absl::OkStatus();
}

// The sizes every architecture has: layers, hidden, heads, FFN width and
// vocabulary.
void SetSizes(int64_t layers, int64_t hidden, int64_t heads, int64_t ffn, int64_t vocab,
              v1::ModelSpec* s) {
  s->set_num_layers(layers);
  s->set_hidden_size(hidden);
  s->set_num_attention_heads(heads);
  s->set_ffn_hidden_size(ffn);
  s->set_vocab_size(vocab);
}

// One switch for the biases of every linear layer but the head: Q, K, V,
// the attention output and the FFN.
void SetLinearBiases(bool bias, v1::ModelSpec* s) {
  s->set_qkv_bias(bias);
  s->set_attn_output_bias(bias);
  s->set_ffn_bias(bias);
}

// The sizes every Llama-style decoder shares: rotary positions, RMS norms,
// a gated FFN.
void SetRotaryDecoder(int64_t layers, int64_t hidden, int64_t heads, int64_t kv_heads,
                      int64_t head_dim, int64_t ffn, int64_t vocab, bool tied,
                      v1::ModelSpec* s) {
  SetSizes(layers, hidden, heads, ffn, vocab, s);
  s->set_num_kv_heads(kv_heads);
  s->set_head_dim(head_dim);
  s->set_gated_ffn(true);
  s->set_tie_word_embeddings(tied);
  s->set_position_embedding(v1::ROTARY);
  s->set_norm(v1::RMS_NORM);
}

// llama, mistral, qwen2, mixtral, qwen3, qwen3_moe, qwen2_moe, phi3: the
// Llama layout with small variations.
absl::Status ImportLlamaFamily(const ConfigReader& r, const std::string& type,
                               v1::ModelSpec* s) {
  const bool qwen = absl::StartsWith(type, "qwen");
  SHARDSIM_ASSIGN_OR_RETURN(int64_t layers, r.Int({"num_hidden_layers"}));
  SHARDSIM_ASSIGN_OR_RETURN(int64_t hidden, r.Int({"hidden_size"}));
  SHARDSIM_ASSIGN_OR_RETURN(int64_t heads, r.Int({"num_attention_heads"}));
  SHARDSIM_ASSIGN_OR_RETURN(int64_t kv_heads, KvHeads(r, heads));
  // Qwen3Config's head_dim defaults to 128; the others derive it.
  SHARDSIM_ASSIGN_OR_RETURN(int64_t head_dim,
                            r.IntOr({"head_dim"}, absl::StartsWith(type, "qwen3") ? 128 : 0));
  SHARDSIM_ASSIGN_OR_RETURN(int64_t ffn, r.Int({"intermediate_size"}));
  SHARDSIM_ASSIGN_OR_RETURN(int64_t vocab, r.Int({"vocab_size"}));
  SHARDSIM_ASSIGN_OR_RETURN(bool tied, r.BoolOr("tie_word_embeddings", false));
  // Qwen2 and Qwen2-MoE always have biases on Q, K and V.
  const bool qkv_bias_default = type == "qwen2" || type == "qwen2_moe";
  SHARDSIM_ASSIGN_OR_RETURN(bool attention_bias,
                            r.BoolOr("attention_bias", qkv_bias_default));
  SHARDSIM_ASSIGN_OR_RETURN(bool mlp_bias, r.BoolOr("mlp_bias", false));
  SetRotaryDecoder(layers, hidden, heads, kv_heads, head_dim, ffn, vocab, tied, s);
  // Qwen has biases on Q, K and V only; Llama's attention_bias covers O too.
  s->set_qkv_bias(attention_bias);
  s->set_attn_output_bias(!qwen && attention_bias);
  s->set_ffn_bias(mlp_bias);
  s->set_qk_norm(absl::StartsWith(type, "qwen3"));
  if (qwen) {
    SHARDSIM_RETURN_IF_ERROR(RejectQwenWindow(r));
  } else if (type == "mistral" || type == "mixtral" || type == "phi3") {
    SHARDSIM_RETURN_IF_ERROR(ApplyUniformWindow(r, s));
  }
  if (type == "mixtral") {
    SHARDSIM_ASSIGN_OR_RETURN(int64_t experts, r.Int({"num_local_experts"}));
    SHARDSIM_ASSIGN_OR_RETURN(int64_t top_k, r.Int({"num_experts_per_tok"}));
    s->set_num_experts(experts);
    s->set_experts_per_token(top_k);
  }
  if (type == "qwen3_moe" || type == "qwen2_moe") {
    // Layer i is MoE unless listed in mlp_only_layers, and when
    // (i + 1) % decoder_sparse_step == 0 (Qwen2MoeDecoderLayer).
    SHARDSIM_ASSIGN_OR_RETURN(int64_t experts, r.Int({"num_experts"}));
    SHARDSIM_ASSIGN_OR_RETURN(int64_t top_k, r.Int({"num_experts_per_tok"}));
    SHARDSIM_ASSIGN_OR_RETURN(int64_t expert_ffn, r.Int({"moe_intermediate_size"}));
    SHARDSIM_ASSIGN_OR_RETURN(int64_t step, r.IntOr({"decoder_sparse_step"}, 1));
    SHARDSIM_ASSIGN_OR_RETURN(std::vector<int64_t> dense, r.IntList("mlp_only_layers"));
    if (step <= 0) {
      return r.Error("decoder_sparse_step", absl::StrCat("must be positive, got ", step));
    }
    s->set_num_experts(experts);
    s->set_experts_per_token(top_k);
    s->set_expert_ffn_hidden_size(expert_ffn);
    s->set_moe_layer_period(step);
    for (int64_t layer : dense) s->add_dense_layers(layer);
    if (type == "qwen2_moe") {
      SHARDSIM_ASSIGN_OR_RETURN(int64_t shared, r.Int({"shared_expert_intermediate_size"}));
      if (shared > 0) {
        s->set_num_shared_experts(1);
        s->set_shared_expert_ffn_hidden_size(shared);
        s->set_shared_expert_gate(true);
      }
    }
  }
  return absl::OkStatus();
}

// deepseek_v2, deepseek_v3: MLA attention, shared and routed experts after
// first_k_dense_replace dense layers.
absl::Status ImportDeepSeek(const ConfigReader& r, const std::string& type,
                            v1::ModelSpec* s) {
  SHARDSIM_ASSIGN_OR_RETURN(int64_t layers, r.Int({"num_hidden_layers"}));
  SHARDSIM_ASSIGN_OR_RETURN(int64_t hidden, r.Int({"hidden_size"}));
  SHARDSIM_ASSIGN_OR_RETURN(int64_t heads, r.Int({"num_attention_heads"}));
  SHARDSIM_ASSIGN_OR_RETURN(int64_t ffn, r.Int({"intermediate_size"}));
  SHARDSIM_ASSIGN_OR_RETURN(int64_t vocab, r.Int({"vocab_size"}));
  SHARDSIM_ASSIGN_OR_RETURN(bool tied, r.BoolOr("tie_word_embeddings", false));
  SHARDSIM_ASSIGN_OR_RETURN(bool attention_bias, r.BoolOr("attention_bias", false));
  // transformers' DeepseekV3Config defaults (q_lora_rank 1536, ...).
  SHARDSIM_ASSIGN_OR_RETURN(int64_t q_lora, r.IntOrNull("q_lora_rank", 1536));
  SHARDSIM_ASSIGN_OR_RETURN(int64_t kv_lora, r.IntOr({"kv_lora_rank"}, 512));
  SHARDSIM_ASSIGN_OR_RETURN(int64_t rope, r.IntOr({"qk_rope_head_dim"}, 64));
  SHARDSIM_ASSIGN_OR_RETURN(int64_t nope, r.IntOr({"qk_nope_head_dim"}, 128));
  SHARDSIM_ASSIGN_OR_RETURN(int64_t v_dim, r.IntOr({"v_head_dim"}, 128));
  SHARDSIM_ASSIGN_OR_RETURN(int64_t experts, r.IntOrNull("n_routed_experts", 0));
  SetSizes(layers, hidden, heads, ffn, vocab, s);
  s->set_gated_ffn(true);
  s->set_tie_word_embeddings(tied);
  s->set_position_embedding(v1::ROTARY);
  s->set_norm(v1::RMS_NORM);
  s->set_attn_output_bias(attention_bias);
  v1::LatentAttention* mla = s->mutable_mla();
  mla->set_q_lora_rank(q_lora);
  mla->set_kv_lora_rank(kv_lora);
  mla->set_qk_rope_head_dim(rope);
  mla->set_qk_nope_head_dim(nope);
  mla->set_v_head_dim(v_dim);
  if (experts > 1) {
    SHARDSIM_ASSIGN_OR_RETURN(int64_t top_k, r.Int({"num_experts_per_tok"}));
    SHARDSIM_ASSIGN_OR_RETURN(int64_t expert_ffn, r.Int({"moe_intermediate_size"}));
    SHARDSIM_ASSIGN_OR_RETURN(int64_t shared, r.IntOrNull("n_shared_experts", 0));
    SHARDSIM_ASSIGN_OR_RETURN(int64_t first_dense, r.IntOr({"first_k_dense_replace"}, 0));
    SHARDSIM_ASSIGN_OR_RETURN(int64_t freq, r.IntOr({"moe_layer_freq"}, 1));
    SHARDSIM_ASSIGN_OR_RETURN(std::string topk_method,
                              r.StringOr("topk_method", type == "deepseek_v3" ? "noaux_tc"
                                                                              : "greedy"));
    if (freq <= 0) return r.Error("moe_layer_freq", absl::StrCat("must be positive, got ", freq));
    if (first_dense < 0 || first_dense > layers) {
      return r.Error("first_k_dense_replace",
                     absl::StrCat(first_dense, " is not between 0 and the ", layers, " layers"));
    }
    s->set_num_experts(experts);
    s->set_experts_per_token(top_k);
    s->set_expert_ffn_hidden_size(expert_ffn);
    s->set_num_shared_experts(shared);
    s->set_first_dense_layers(first_dense);
    // DeepSeek: layer i is MoE when i >= first_k_dense_replace and
    // i % moe_layer_freq == 0; the others are listed as dense.
    if (freq > 1) {
      for (int64_t i = first_dense; i < layers && i < kMaxSize; ++i) {
        if (i % freq != 0) s->add_dense_layers(i);
      }
    }
    // noaux_tc routing adds e_score_correction_bias, one value per expert.
    s->set_router_bias(topk_method == "noaux_tc");
  }
  SHARDSIM_ASSIGN_OR_RETURN(int64_t mtp, r.IntOr({"num_nextn_predict_layers"}, 0));
  if (mtp < 0) {
    return r.Error("num_nextn_predict_layers", absl::StrCat("must not be negative, got ", mtp));
  }
  s->set_mtp_layers(mtp);
  return absl::OkStatus();
}

// gemma2, gemma3_text: four norms per layer (input, post-attention, pre- and
// post-feed-forward), GeGLU, tied head, sliding-window layers alternating
// with global ones.
absl::Status ImportGemma(const ConfigReader& r, const std::string& type, v1::ModelSpec* s) {
  const bool gemma3 = type != "gemma2";
  // Gemma3TextConfig's defaults where a nested text_config omits keys (the
  // published multimodal configs omit the vocabulary and the pattern).
  SHARDSIM_ASSIGN_OR_RETURN(int64_t layers, r.Int({"num_hidden_layers"}));
  SHARDSIM_ASSIGN_OR_RETURN(int64_t hidden, r.Int({"hidden_size"}));
  SHARDSIM_ASSIGN_OR_RETURN(int64_t heads, r.Int({"num_attention_heads"}));
  SHARDSIM_ASSIGN_OR_RETURN(int64_t kv_heads, KvHeads(r, heads));
  SHARDSIM_ASSIGN_OR_RETURN(int64_t head_dim, r.IntOr({"head_dim"}, 256));
  SHARDSIM_ASSIGN_OR_RETURN(int64_t ffn, r.Int({"intermediate_size"}));
  SHARDSIM_ASSIGN_OR_RETURN(int64_t vocab,
                            gemma3 ? r.IntOr({"vocab_size"}, 262208) : r.Int({"vocab_size"}));
  SHARDSIM_ASSIGN_OR_RETURN(bool tied, r.BoolOr("tie_word_embeddings", true));
  SHARDSIM_ASSIGN_OR_RETURN(bool attention_bias, r.BoolOr("attention_bias", false));
  SHARDSIM_ASSIGN_OR_RETURN(int64_t window, r.IntOr({"sliding_window"}, 4096));
  // Gemma-2: even layers slide, odd are global; Gemma-3: 5 of every 6.
  SHARDSIM_ASSIGN_OR_RETURN(int64_t period,
                            gemma3 ? r.IntOr({"sliding_window_pattern"}, 6) : int64_t{2});
  if (window < 0) return r.Error("sliding_window", absl::StrCat("must be positive, got ", window));
  if (period < 0) {
    return r.Error("sliding_window_pattern", absl::StrCat("must be positive, got ", period));
  }
  SetRotaryDecoder(layers, hidden, heads, kv_heads, head_dim, ffn, vocab, tied, s);
  s->set_norms_per_layer(4);
  s->set_qkv_bias(attention_bias);
  s->set_attn_output_bias(attention_bias);
  s->set_qk_norm(gemma3);
  s->set_sliding_window(window);
  if (window > 0) s->set_sliding_window_period(period);
  return absl::OkStatus();
}

absl::Status ImportGpt2(const ConfigReader& r, v1::ModelSpec* s) {
  SHARDSIM_ASSIGN_OR_RETURN(int64_t layers, r.Int({"n_layer", "num_hidden_layers"}));
  SHARDSIM_ASSIGN_OR_RETURN(int64_t hidden, r.Size({"n_embd", "hidden_size"}));
  SHARDSIM_ASSIGN_OR_RETURN(int64_t heads, r.Int({"n_head", "num_attention_heads"}));
  SHARDSIM_ASSIGN_OR_RETURN(int64_t ffn, r.IntOr({"n_inner"}, 4 * hidden));
  SHARDSIM_ASSIGN_OR_RETURN(int64_t vocab, r.Int({"vocab_size"}));
  SHARDSIM_ASSIGN_OR_RETURN(int64_t positions,
                            r.Int({"n_positions", "max_position_embeddings"}));
  SHARDSIM_ASSIGN_OR_RETURN(bool tied, r.BoolOr("tie_word_embeddings", true));
  SetSizes(layers, hidden, heads, ffn, vocab, s);
  s->set_tie_word_embeddings(tied);
  s->set_position_embedding(v1::LEARNED);
  s->set_max_position_embeddings(positions);
  s->set_norm(v1::LAYER_NORM);
  SetLinearBiases(true, s);
  return absl::OkStatus();
}

absl::Status ImportGptj(const ConfigReader& r, v1::ModelSpec* s) {
  SHARDSIM_ASSIGN_OR_RETURN(int64_t layers, r.Int({"n_layer", "num_hidden_layers"}));
  SHARDSIM_ASSIGN_OR_RETURN(int64_t hidden, r.Size({"n_embd", "hidden_size"}));
  SHARDSIM_ASSIGN_OR_RETURN(int64_t heads, r.Int({"n_head", "num_attention_heads"}));
  SHARDSIM_ASSIGN_OR_RETURN(int64_t ffn, r.IntOr({"n_inner"}, 4 * hidden));
  SHARDSIM_ASSIGN_OR_RETURN(int64_t vocab, r.Int({"vocab_size"}));
  SHARDSIM_ASSIGN_OR_RETURN(bool tied, r.BoolOr("tie_word_embeddings", false));
  SetSizes(layers, hidden, heads, ffn, vocab, s);
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
  SetSizes(layers, hidden, heads, ffn, vocab, s);
  s->set_tie_word_embeddings(tied);
  s->set_position_embedding(v1::LEARNED);
  s->set_max_position_embeddings(positions);
  s->set_position_embedding_offset(2);  // OPTLearnedPositionalEmbedding
  s->set_norm(v1::LAYER_NORM);
  s->set_post_norm(!pre_norm);
  SetLinearBiases(bias, s);
  return absl::OkStatus();
}

absl::Status ImportFalcon(const ConfigReader& r, v1::ModelSpec* s) {
  SHARDSIM_ASSIGN_OR_RETURN(int64_t layers, r.Int({"num_hidden_layers", "n_layer"}));
  SHARDSIM_ASSIGN_OR_RETURN(int64_t hidden, r.Size({"hidden_size"}));
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
    if (kv_heads <= 0) {
      return r.Error(*r.FirstPresent({"num_kv_heads", "n_head_kv"}),
                     absl::StrCat("must be positive, got ", kv_heads));
    }
    SHARDSIM_ASSIGN_OR_RETURN(int64_t lns, r.IntOr({"num_ln_in_parallel_attn"}, 2));
    // FalconDecoderLayer builds one norm (ln_attn) or two (ln_attn, ln_mlp).
    if (lns != 1 && lns != 2) {
      return r.Error("num_ln_in_parallel_attn",
                     absl::StrCat("must be 1 or 2 (norms before the parallel attention "
                                  "and MLP), got ", lns));
    }
    norms = static_cast<int32_t>(lns);
    parallel = true;
  }
  SetSizes(layers, hidden, heads, ffn, vocab, s);
  s->set_num_kv_heads(kv_heads);
  s->set_tie_word_embeddings(tied);
  s->set_position_embedding(alibi ? v1::ALIBI : v1::ROTARY);
  s->set_norm(v1::LAYER_NORM);
  s->set_parallel_attention(parallel);
  s->set_norms_per_layer(norms);
  SetLinearBiases(bias, s);
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
  SetSizes(layers, hidden, heads, ffn, vocab, s);
  s->set_position_embedding(v1::LEARNED);
  s->set_max_position_embeddings(positions);
  s->set_token_type_vocab_size(types);
  s->set_norm(v1::LAYER_NORM);
  s->set_post_norm(true);
  SetLinearBiases(true, s);
  s->set_pooler(true);  // BertModel, as its parameter count is quoted
  return absl::OkStatus();
}

// transformers 4.53 and later list each layer's attention in layer_types
// ("sliding_attention" or "full_attention"); when present it overrides the
// per-architecture rule. ModelSpec says "every N-th layer is full", so a
// list of another shape is refused rather than approximated.
absl::Status ApplyLayerTypes(const ConfigReader& r, const Json& config, v1::ModelSpec* s) {
  auto it = config.find("layer_types");
  if (it == config.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_array() || static_cast<int64_t>(it->size()) != s->num_layers()) {
    return r.Error("layer_types", absl::StrCat("expected a list of ", s->num_layers(),
                                               " layer types (one per layer)"));
  }
  std::vector<bool> sliding;
  for (const Json& type : *it) {
    if (!type.is_string() ||
        (type != "sliding_attention" && type != "full_attention")) {
      return r.Error("layer_types", absl::StrCat("expected \"sliding_attention\" or "
                                                 "\"full_attention\", got ", Excerpt(type)));
    }
    sliding.push_back(type == "sliding_attention");
  }
  const int64_t slides = std::count(sliding.begin(), sliding.end(), true);
  if (slides == 0) {
    s->set_sliding_window(0);
    s->set_sliding_window_period(0);
    return absl::OkStatus();
  }
  SHARDSIM_ASSIGN_OR_RETURN(int64_t window, r.IntOr({"sliding_window"}, 0));
  if (window <= 0) {
    return r.Error("sliding_window", "layer_types has sliding layers but no positive "
                                     "sliding_window");
  }
  s->set_sliding_window(window);
  if (slides == static_cast<int64_t>(sliding.size())) {
    s->set_sliding_window_period(0);
    return absl::OkStatus();
  }
  for (int64_t period = 2; period <= static_cast<int64_t>(sliding.size()); ++period) {
    bool matches = true;
    for (size_t i = 0; i < sliding.size() && matches; ++i) {
      matches = sliding[i] == ((static_cast<int64_t>(i) + 1) % period != 0);
    }
    if (matches) {
      s->set_sliding_window_period(period);
      return absl::OkStatus();
    }
  }
  return r.Error("layer_types", "only a full-attention layer at the end of every N "
                                "layers is supported");
}

// The model_type values we import, in the order an error lists them.
constexpr const char* kKnownTypes[] = {
    "llama",     "mistral",     "mixtral", "qwen2", "qwen2_moe", "qwen3",       "qwen3_moe",
    "deepseek_v2", "deepseek_v3", "gemma2", "gemma3", "gemma3_text", "phi3",    "gpt2",
    "gptj",      "opt",         "falcon",  "bert"};

absl::Status ImportByType(const ConfigReader& reader, const std::string& type,
                          v1::ModelSpec* spec) {
  if (type == "llama" || type == "mistral" || type == "qwen2" || type == "mixtral" ||
      type == "qwen3" || type == "qwen3_moe" || type == "qwen2_moe" || type == "phi3") {
    return ImportLlamaFamily(reader, type, spec);
  }
  if (type == "deepseek_v2" || type == "deepseek_v3") return ImportDeepSeek(reader, type, spec);
  if (type == "gemma2" || type == "gemma3_text") return ImportGemma(reader, type, spec);
  if (type == "gpt2") return ImportGpt2(reader, spec);
  if (type == "gptj") return ImportGptj(reader, spec);
  if (type == "opt") return ImportOpt(reader, spec);
  if (type == "falcon") return ImportFalcon(reader, spec);
  if (type == "bert") return ImportBert(reader, spec);
  return reader.Error("model_type",
                      absl::StrCat("unknown architecture '", Cut(type),
                                   "' (supported: ", absl::StrJoin(kKnownTypes, ", "), ")"));
}

absl::Status Import(const Json& config, const std::string& json, const std::string& file,
                    v1::ModelSpec* spec, FieldLocator* where) {
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
  *spec = v1::ModelSpec();
  *where = FieldLocator(file);
  // Gemma-3's multimodal config nests the language model in text_config;
  // the vision tower (SigLIP, about 0.4B parameters) is not simulated.
  const Json* model_config = &config;
  std::string model_type = type;
  if (type == "gemma3") {
    SHARDSIM_ASSIGN_OR_RETURN(const Json* text, probe.Object("text_config"));
    if (text == nullptr) {
      return probe.Error("model_type", "gemma3 without a text_config: expected the "
                                       "multimodal config with a nested text_config");
    }
    model_config = text;
    model_type = "gemma3_text";
    spec->add_import_notes("gemma3: the language model of text_config only; the vision "
                           "tower and projector are not simulated");
  }
  ConfigReader reader = model_config == &config ? ConfigReader(config, json, file, model_type)
                                                 : probe.Nested(*model_config, "text_config",
                                                                model_type);
  SHARDSIM_RETURN_IF_ERROR(ImportByType(reader, model_type, spec));
  SHARDSIM_RETURN_IF_ERROR(ApplyLayerTypes(reader, *model_config, spec));
  std::vector<std::string> notes;
  // The dtype sits at the top level, or in text_config for Gemma-3.
  const ConfigReader& dtype_reader =
      reader.FirstPresent({"torch_dtype", "dtype"}) ? reader : probe;
  SHARDSIM_ASSIGN_OR_RETURN(v1::DType dtype, CheckpointDType(dtype_reader, &notes));
  for (const std::string& note : notes) spec->add_import_notes(note);
  spec->mutable_precision()->set_weight_dtype(dtype);
  spec->mutable_precision()->set_activation_dtype(dtype);
  SHARDSIM_RETURN_IF_ERROR(ApplyQuantization(probe, spec->mutable_precision()));

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
  reader.Map(where, "num_experts", {"num_local_experts", "num_experts", "n_routed_experts"});
  reader.Map(where, "experts_per_token", {"num_experts_per_tok"});
  reader.Map(where, "expert_ffn_hidden_size", {"moe_intermediate_size"});
  reader.Map(where, "num_shared_experts", {"n_shared_experts"});
  reader.Map(where, "shared_expert_ffn_hidden_size", {"shared_expert_intermediate_size"});
  reader.Map(where, "first_dense_layers", {"first_k_dense_replace"});
  reader.Map(where, "dense_layers", {"mlp_only_layers"});
  reader.Map(where, "moe_layer_period", {"decoder_sparse_step"});
  reader.Map(where, "mla.q_lora_rank", {"q_lora_rank"});
  reader.Map(where, "mla.kv_lora_rank", {"kv_lora_rank"});
  reader.Map(where, "mla.qk_rope_head_dim", {"qk_rope_head_dim"});
  reader.Map(where, "mla.qk_nope_head_dim", {"qk_nope_head_dim"});
  reader.Map(where, "mla.v_head_dim", {"v_head_dim"});
  reader.Map(where, "sliding_window", {"sliding_window"});
  reader.Map(where, "sliding_window_period", {"sliding_window_pattern"});
  reader.Map(where, "mtp_layers", {"num_nextn_predict_layers"});
  dtype_reader.Map(where, "precision.weight_dtype", {"torch_dtype", "dtype"});
  return absl::OkStatus();
}

}  // namespace

absl::Status ImportHuggingFaceConfig(const std::string& json,
                                     const std::string& file,
                                     v1::ModelSpec* spec, FieldLocator* where) {
  // Before the parser, as for text protos: its message would quote the bad
  // bytes, and the error line would not be UTF-8 itself.
  const absl::Status utf8 = CheckUtf8(json, file);
  if (!utf8.ok()) return utf8;
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
  } catch (const Json::exception& e) {
    // out_of_range (a number past the double range, 1e400) and the rest:
    // "[json.exception.out_of_range.406] number overflow parsing '1e400'".
    std::string what = e.what();
    const size_t bracket = what.find("] ");
    if (bracket != std::string::npos) what = what.substr(bracket + 2);
    return absl::InvalidArgumentError(absl::StrCat(file, ": malformed JSON: ", what));
  }
  try {
    return Import(config, json, file, spec, where);
  } catch (const Json::exception& e) {
    // Every read checks its type first; this is a bug, reported as one line.
    return absl::InternalError(absl::StrCat(file, ": reading the config: ", e.what()));
  }
}

}  // namespace shardsim::model
