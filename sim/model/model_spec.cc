#include "sim/model/model_spec.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "sim/base/status_macros.h"
#include "sim/model/hf_import.h"

namespace shardsim::model {
namespace {

absl::Status RequirePositive(int64_t value, absl::string_view field,
                             const FieldLocator& where) {
  if (value <= 0) {
    return where.Error(field, absl::StrCat("must be positive, got ", value));
  }
  return absl::OkStatus();
}

// Sizes beyond these are typos, and would overflow 64-bit byte counts.
constexpr int64_t kMaxSize = int64_t{1} << 24;  // layers, widths, heads, vocabulary
constexpr double kMaxParameters = 1e15;         // 5,000x the largest zoo model
constexpr double kMaxKvBytesPerToken = double{int64_t{1} << 30};

absl::Status RequireAtMost(int64_t value, absl::string_view field,
                           const FieldLocator& where) {
  if (value > kMaxSize) {
    return where.Error(field, absl::StrCat(value, " is implausibly large (at most ",
                                           kMaxSize, ")"));
  }
  return absl::OkStatus();
}

absl::Status RequireNonNegative(int64_t value, absl::string_view field,
                                const FieldLocator& where) {
  if (value < 0) {
    return where.Error(field,
                       absl::StrCat("must not be negative, got ", value));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ModelDims> ResolveModel(const v1::ModelSpec& spec,
                                       const FieldLocator& where) {
  ModelDims d;
  d.name = spec.name().empty() ? "unnamed model" : spec.name();
  d.kind = spec.kind() == v1::MODEL_KIND_UNSPECIFIED ? v1::DECODER_ONLY
                                                     : spec.kind();

  SHARDSIM_RETURN_IF_ERROR(
      RequirePositive(spec.num_layers(), "num_layers", where));
  SHARDSIM_RETURN_IF_ERROR(
      RequirePositive(spec.hidden_size(), "hidden_size", where));
  SHARDSIM_RETURN_IF_ERROR(RequirePositive(spec.num_attention_heads(),
                                           "num_attention_heads", where));
  SHARDSIM_RETURN_IF_ERROR(
      RequirePositive(spec.ffn_hidden_size(), "ffn_hidden_size", where));
  SHARDSIM_RETURN_IF_ERROR(
      RequirePositive(spec.vocab_size(), "vocab_size", where));
  SHARDSIM_RETURN_IF_ERROR(
      RequireNonNegative(spec.num_kv_heads(), "num_kv_heads", where));
  SHARDSIM_RETURN_IF_ERROR(
      RequireNonNegative(spec.head_dim(), "head_dim", where));
  SHARDSIM_RETURN_IF_ERROR(RequireNonNegative(
      spec.max_position_embeddings(), "max_position_embeddings", where));
  SHARDSIM_RETURN_IF_ERROR(RequireNonNegative(
      spec.position_embedding_offset(), "position_embedding_offset", where));
  SHARDSIM_RETURN_IF_ERROR(RequireNonNegative(
      spec.token_type_vocab_size(), "token_type_vocab_size", where));
  SHARDSIM_RETURN_IF_ERROR(
      RequireNonNegative(spec.norms_per_layer(), "norms_per_layer", where));
  SHARDSIM_RETURN_IF_ERROR(
      RequireNonNegative(spec.num_experts(), "num_experts", where));
  SHARDSIM_RETURN_IF_ERROR(RequireNonNegative(spec.experts_per_token(),
                                              "experts_per_token", where));

  for (auto [value, field] :
       {std::pair{spec.num_layers(), "num_layers"}, std::pair{spec.hidden_size(), "hidden_size"},
        std::pair{spec.num_attention_heads(), "num_attention_heads"},
        std::pair{spec.num_kv_heads(), "num_kv_heads"}, std::pair{spec.head_dim(), "head_dim"},
        std::pair{spec.ffn_hidden_size(), "ffn_hidden_size"},
        std::pair{spec.vocab_size(), "vocab_size"},
        std::pair{spec.max_position_embeddings(), "max_position_embeddings"},
        std::pair{spec.position_embedding_offset(), "position_embedding_offset"},
        std::pair{spec.token_type_vocab_size(), "token_type_vocab_size"},
        std::pair{spec.num_experts(), "num_experts"},
        std::pair{spec.experts_per_token(), "experts_per_token"},
        std::pair{spec.precision().quant_group_size(), "precision.quant_group_size"}}) {
    SHARDSIM_RETURN_IF_ERROR(RequireAtMost(value, field, where));
  }
  d.num_layers = spec.num_layers();
  d.hidden_size = spec.hidden_size();
  d.num_attention_heads = spec.num_attention_heads();
  d.num_kv_heads =
      spec.num_kv_heads() == 0 ? spec.num_attention_heads() : spec.num_kv_heads();
  if (d.num_attention_heads % d.num_kv_heads != 0) {
    return where.Error(
        "num_kv_heads",
        absl::StrCat(d.num_kv_heads, " KV heads do not divide ",
                     d.num_attention_heads, " attention heads"));
  }
  if (spec.head_dim() == 0) {
    if (d.hidden_size % d.num_attention_heads != 0) {
      return where.Error(
          "head_dim", absl::StrCat("not given, and hidden_size ", d.hidden_size,
                                   " is not a multiple of ",
                                   d.num_attention_heads, " heads"));
    }
    d.head_dim = d.hidden_size / d.num_attention_heads;
  } else {
    d.head_dim = spec.head_dim();
  }
  d.ffn_hidden_size = spec.ffn_hidden_size();
  d.gated_ffn = spec.gated_ffn();
  d.vocab_size = spec.vocab_size();
  d.tie_word_embeddings = spec.tie_word_embeddings();

  d.position_embedding =
      spec.position_embedding() == v1::POSITION_EMBEDDING_UNSPECIFIED
          ? v1::ROTARY
          : spec.position_embedding();
  if (d.position_embedding == v1::LEARNED) {
    SHARDSIM_RETURN_IF_ERROR(RequirePositive(
        spec.max_position_embeddings(), "max_position_embeddings", where));
    d.position_table_rows =
        spec.max_position_embeddings() + spec.position_embedding_offset();
  }
  d.token_type_vocab_size = spec.token_type_vocab_size();
  d.qkv_bias = spec.qkv_bias();
  d.attn_output_bias = spec.attn_output_bias();
  d.ffn_bias = spec.ffn_bias();
  d.lm_head_bias = spec.lm_head_bias();

  d.norm = spec.norm() == v1::NORM_KIND_UNSPECIFIED ? v1::RMS_NORM : spec.norm();
  d.parallel_attention = spec.parallel_attention();
  if (d.norm == v1::NO_NORM) {
    if (spec.norms_per_layer() != 0) {
      return where.Error("norms_per_layer", "set, but norm is NO_NORM");
    }
    d.norms_per_layer = 0;
  } else if (spec.norms_per_layer() != 0) {
    d.norms_per_layer = spec.norms_per_layer();
  } else {
    d.norms_per_layer = d.parallel_attention ? 1 : 2;
  }
  d.embedding_norm = d.norm != v1::NO_NORM && spec.post_norm();
  d.final_norm = d.norm != v1::NO_NORM && !spec.post_norm();
  d.pooler = spec.pooler();

  d.num_experts = spec.num_experts() <= 1 ? 1 : spec.num_experts();
  if (d.is_moe()) {
    SHARDSIM_RETURN_IF_ERROR(RequirePositive(spec.experts_per_token(),
                                             "experts_per_token", where));
    if (spec.experts_per_token() > d.num_experts) {
      return where.Error("experts_per_token",
                         absl::StrCat(spec.experts_per_token(),
                                      " is more than the ", d.num_experts,
                                      " experts"));
    }
    d.experts_per_token = spec.experts_per_token();
  }

  const v1::Precision& p = spec.precision();
  d.weight_dtype =
      p.weight_dtype() == v1::DTYPE_UNSPECIFIED ? v1::BF16 : p.weight_dtype();
  d.activation_dtype = p.activation_dtype() == v1::DTYPE_UNSPECIFIED
                           ? v1::BF16
                           : p.activation_dtype();
  if (d.activation_dtype == v1::INT4) {
    return where.Error("precision.activation_dtype",
                       "INT4 activations are not supported");
  }
  d.kv_cache_dtype = p.kv_cache_dtype() == v1::DTYPE_UNSPECIFIED
                         ? d.activation_dtype
                         : p.kv_cache_dtype();
  SHARDSIM_RETURN_IF_ERROR(RequireNonNegative(
      p.quant_group_size(), "precision.quant_group_size", where));
  d.quant_group_size = p.quant_group_size() == 0 ? 128 : p.quant_group_size();

  // The whole model, roughly, in double: every byte count derives from these.
  const double h = static_cast<double>(d.hidden_size);
  const double attention = h * static_cast<double>(d.head_dim) *
                           static_cast<double>(2 * d.num_attention_heads + 2 * d.num_kv_heads);
  const double ffn = 3.0 * h * static_cast<double>(d.ffn_hidden_size) *
                     static_cast<double>(d.num_experts);
  const double parameters = static_cast<double>(d.num_layers) * (attention + ffn) +
                            2.0 * h * static_cast<double>(d.vocab_size + d.position_table_rows);
  if (parameters > kMaxParameters) {
    // Point at the field behind the largest term.
    const char* field = ffn > attention ? (d.num_experts > 1 ? "num_experts" : "ffn_hidden_size")
                                        : "hidden_size";
    return where.Error(field, absl::StrFormat("the model would have about %.3g "
                                              "parameters (at most %.0e)",
                                              parameters, kMaxParameters));
  }
  const double kv_per_token = 2.0 * static_cast<double>(d.num_layers) *
                              static_cast<double>(d.num_kv_heads * d.head_dim) * 4;
  if (kv_per_token > kMaxKvBytesPerToken) {
    return where.Error("num_layers",
                       absl::StrFormat("num_layers x num_kv_heads x head_dim: the KV cache "
                                       "would take about %.3g bytes per token (at most 1 GiB)",
                                       kv_per_token));
  }
  return d;
}

absl::StatusOr<v1::ModelSpec> LoadModelFile(const std::string& path,
                                            FieldLocator* where) {
  v1::ModelSpec spec;
  if (IsJsonPath(path)) {
    std::string text;
    SHARDSIM_RETURN_IF_ERROR(ReadFile(path, &text));
    SHARDSIM_RETURN_IF_ERROR(ImportHuggingFaceConfig(text, path, &spec, where));
    return spec;
  }
  SHARDSIM_RETURN_IF_ERROR(LoadTextProto(path, &spec, where));
  return spec;
}

}  // namespace shardsim::model
