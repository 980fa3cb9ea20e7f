#include "sim/model/model_spec.h"

#include <algorithm>

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

// Norms per layer beyond this are typos: Gemma-2 and Gemma-3 have 4 (input,
// post-attention, pre- and post-feed-forward), the most of any model we know.
constexpr int64_t kMaxNormsPerLayer = 8;

// What each named recipe sets (model.proto Precision documents why).
struct Recipe {
  const char* name;
  v1::DType weight;
  v1::DType gemm;
  v1::DType activation;
  v1::DType communication;
  int64_t group_size;  // for integer weights; 0: not group-quantized
};
constexpr Recipe kRecipes[] = {
    {"bf16", v1::BF16, v1::BF16, v1::BF16, v1::BF16, 0},
    {"fp16", v1::FP16, v1::FP16, v1::FP16, v1::FP16, 0},
    {"fp8", v1::FP8, v1::FP8, v1::BF16, v1::BF16, 0},
    // AutoAWQ and AutoGPTQ quantize in groups of 128 by default.
    {"int4-awq", v1::INT4, v1::FP16, v1::FP16, v1::FP16, 128},
    {"int4-gptq", v1::INT4, v1::FP16, v1::FP16, v1::FP16, 128},
    // SmoothQuant scales weights per output channel.
    {"int8-sq", v1::INT8, v1::INT8, v1::BF16, v1::BF16, -1},
};

std::string RecipeNames() {
  std::string names;
  for (const Recipe& r : kRecipes) {
    absl::StrAppend(&names, names.empty() ? "" : ", ", r.name);
  }
  return names;
}

absl::Status ResolvePrecision(const v1::Precision& p, const FieldLocator& where,
                              ModelDims* d) {
  auto given = [](v1::DType dtype, v1::DType fallback) {
    return dtype == v1::DTYPE_UNSPECIFIED ? fallback : dtype;
  };
  if (p.quant_group_size() < -1) {
    return where.Error("precision.quant_group_size",
                       absl::StrCat("must be positive, or -1 for one scale per "
                                    "output channel; got ", p.quant_group_size()));
  }
  if (p.fp8_block_size() < -1 || p.fp8_block_size() > kMaxSize) {
    return where.Error("precision.fp8_block_size",
                       absl::StrCat("must be 0 (per tensor), -1 (per channel) or a "
                                    "block width up to ", kMaxSize, "; got ",
                                    p.fp8_block_size()));
  }
  d->quant_group_size = p.quant_group_size() == 0 ? 128 : p.quant_group_size();
  d->fp8_block_size = p.fp8_block_size();
  if (!p.recipe().empty()) {
    const Recipe* recipe = nullptr;
    for (const Recipe& r : kRecipes) {
      if (p.recipe() == r.name) recipe = &r;
    }
    if (recipe == nullptr) {
      return where.Error("precision.recipe",
                         absl::StrCat("unknown recipe '",
                                      p.recipe().size() > 40 ? p.recipe().substr(0, 40) + "..."
                                                             : p.recipe(),
                                      "' (known: ",
                                      RecipeNames(), ")"));
    }
    d->recipe = recipe->name;
    d->weight_dtype = recipe->weight;
    d->gemm_dtype = recipe->gemm;
    d->activation_dtype = recipe->activation;
    d->communication_dtype = recipe->communication;
    if (recipe->group_size != 0 && p.quant_group_size() == 0) {
      d->quant_group_size = recipe->group_size;
    }
  } else {
    d->weight_dtype = given(p.weight_dtype(), v1::BF16);
    d->activation_dtype = given(p.activation_dtype(), v1::BF16);
    // FP8 weights run FP8 GEMMs; integer weights are dequantized into the
    // activations' format (what the cost model has always assumed).
    d->gemm_dtype = given(p.gemm_dtype(), d->weight_dtype == v1::FP8
                                              ? v1::FP8
                                              : d->activation_dtype);
    d->communication_dtype = given(p.communication_dtype(), d->activation_dtype);
  }
  if (d->activation_dtype == v1::INT4) {
    return where.Error("precision.activation_dtype",
                       "INT4 activations are not supported");
  }
  if (d->gemm_dtype == v1::INT4 || d->communication_dtype == v1::INT4) {
    return where.Error(d->gemm_dtype == v1::INT4 ? "precision.gemm_dtype"
                                                 : "precision.communication_dtype",
                       "INT4 is a weight format here, not supported for this tensor");
  }
  d->kv_cache_dtype = given(p.kv_cache_dtype(), d->activation_dtype);
  return absl::OkStatus();
}

}  // namespace

bool ModelDims::IsMoeLayer(int64_t layer) const {
  if (!is_moe() || layer < first_dense_layers) return false;
  if (std::binary_search(dense_layers.begin(), dense_layers.end(), layer)) {
    return false;
  }
  return moe_layer_period <= 1 || (layer + 1) % moe_layer_period == 0;
}

bool ModelDims::IsSlidingLayer(int64_t layer) const {
  if (sliding_window <= 0) return false;
  return sliding_window_period <= 1 || (layer + 1) % sliding_window_period != 0;
}

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
  if (spec.norms_per_layer() > kMaxNormsPerLayer) {
    return where.Error("norms_per_layer",
                       absl::StrCat(spec.norms_per_layer(), " is implausibly many (at most ",
                                    kMaxNormsPerLayer, "; Gemma-2 has 4)"));
  }
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
        std::pair{spec.expert_ffn_hidden_size(), "expert_ffn_hidden_size"},
        std::pair{spec.num_shared_experts(), "num_shared_experts"},
        std::pair{spec.shared_expert_ffn_hidden_size(), "shared_expert_ffn_hidden_size"},
        std::pair{spec.first_dense_layers(), "first_dense_layers"},
        std::pair{spec.moe_layer_period(), "moe_layer_period"},
        std::pair{spec.mla().q_lora_rank(), "mla.q_lora_rank"},
        std::pair{spec.mla().kv_lora_rank(), "mla.kv_lora_rank"},
        std::pair{spec.mla().qk_rope_head_dim(), "mla.qk_rope_head_dim"},
        std::pair{spec.mla().qk_nope_head_dim(), "mla.qk_nope_head_dim"},
        std::pair{spec.mla().v_head_dim(), "mla.v_head_dim"},
        std::pair{spec.sliding_window(), "sliding_window"},
        std::pair{spec.sliding_window_period(), "sliding_window_period"},
        std::pair{spec.mtp_layers(), "mtp_layers"}}) {
    SHARDSIM_RETURN_IF_ERROR(RequireNonNegative(value, field, where));
    SHARDSIM_RETURN_IF_ERROR(RequireAtMost(value, field, where));
  }
  SHARDSIM_RETURN_IF_ERROR(RequireAtMost(spec.precision().quant_group_size(),
                                         "precision.quant_group_size", where));
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
    // MLA heads have their own widths (set below); hidden / heads is unused.
    if (d.hidden_size % d.num_attention_heads != 0 && spec.mla().kv_lora_rank() == 0) {
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
                         absl::StrCat("top-k of ", spec.experts_per_token(),
                                      " is more than the ", d.num_experts,
                                      " routed experts"));
    }
    d.experts_per_token = spec.experts_per_token();
    d.expert_ffn_hidden_size = spec.expert_ffn_hidden_size() == 0
                                   ? d.ffn_hidden_size
                                   : spec.expert_ffn_hidden_size();
    d.num_shared_experts = spec.num_shared_experts();
    d.shared_expert_ffn_hidden_size = spec.shared_expert_ffn_hidden_size() == 0
                                          ? d.expert_ffn_hidden_size
                                          : spec.shared_expert_ffn_hidden_size();
    d.shared_expert_gate = spec.shared_expert_gate();
    d.router_bias = spec.router_bias();
    if (spec.first_dense_layers() > d.num_layers) {
      return where.Error("first_dense_layers",
                         absl::StrCat(spec.first_dense_layers(), " is more than the ",
                                      d.num_layers, " layers"));
    }
    d.first_dense_layers = spec.first_dense_layers();
    for (int64_t layer : spec.dense_layers()) {
      if (layer < 0 || layer >= d.num_layers) {
        return where.Error("dense_layers",
                           absl::StrCat("layer ", layer, " is not one of the ",
                                        d.num_layers, " layers (0-based)"));
      }
      d.dense_layers.push_back(layer);
    }
    std::sort(d.dense_layers.begin(), d.dense_layers.end());
    d.dense_layers.erase(std::unique(d.dense_layers.begin(), d.dense_layers.end()),
                         d.dense_layers.end());
    d.moe_layer_period = std::max<int64_t>(1, spec.moe_layer_period());
  } else {
    // Expert fields on a dense model are a mistake, not a no-op.
    for (auto [set, field] :
         {std::pair{spec.expert_ffn_hidden_size() != 0, "expert_ffn_hidden_size"},
          std::pair{spec.num_shared_experts() != 0, "num_shared_experts"},
          std::pair{spec.first_dense_layers() != 0, "first_dense_layers"},
          std::pair{spec.dense_layers_size() != 0, "dense_layers"},
          std::pair{spec.moe_layer_period() != 0, "moe_layer_period"}}) {
      if (set) {
        return where.Error(field, "set, but num_experts says the model is dense "
                                  "(0 or 1 routed experts)");
      }
    }
  }

  const v1::LatentAttention& mla = spec.mla();
  if (mla.kv_lora_rank() > 0) {
    for (auto [value, field] :
         {std::pair{mla.qk_rope_head_dim(), "mla.qk_rope_head_dim"},
          std::pair{mla.qk_nope_head_dim(), "mla.qk_nope_head_dim"},
          std::pair{mla.v_head_dim(), "mla.v_head_dim"}}) {
      SHARDSIM_RETURN_IF_ERROR(RequirePositive(value, field, where));
    }
    d.q_lora_rank = mla.q_lora_rank();
    d.kv_lora_rank = mla.kv_lora_rank();
    d.qk_rope_head_dim = mla.qk_rope_head_dim();
    d.qk_nope_head_dim = mla.qk_nope_head_dim();
    d.v_head_dim = mla.v_head_dim();
    // Every head has its own K and V rebuilt from the latent: MHA-shaped.
    d.num_kv_heads = d.num_attention_heads;
    d.head_dim = d.qk_nope_head_dim + d.qk_rope_head_dim;
  } else if (mla.q_lora_rank() != 0 || mla.qk_rope_head_dim() != 0 ||
             mla.qk_nope_head_dim() != 0 || mla.v_head_dim() != 0) {
    return where.Error("mla.kv_lora_rank",
                       "missing: the other mla fields are set, and kv_lora_rank "
                       "(the cached latent width) says whether MLA is used");
  }
  d.qk_norm = spec.qk_norm();
  d.sliding_window = spec.sliding_window();
  d.sliding_window_period = spec.sliding_window_period();
  if (d.sliding_window_period > 0 && d.sliding_window == 0) {
    return where.Error("sliding_window_period", "set, but sliding_window is 0");
  }
  d.mtp_layers = spec.mtp_layers();
  d.load_mtp = spec.load_mtp();
  if (d.load_mtp && d.mtp_layers == 0) {
    return where.Error("load_mtp", "set, but the model has no mtp_layers");
  }
  d.notes.assign(spec.import_notes().begin(), spec.import_notes().end());

  SHARDSIM_RETURN_IF_ERROR(ResolvePrecision(spec.precision(), where, &d));

  // The whole model, roughly, in double: every byte count derives from these,
  // and bounding them here keeps every later int64 product from overflowing.
  const double h = static_cast<double>(d.hidden_size);
  const double heads = static_cast<double>(d.num_attention_heads);
  double attention = h * static_cast<double>(d.head_dim) *
                     static_cast<double>(2 * d.num_attention_heads + 2 * d.num_kv_heads);
  if (d.is_mla()) {
    attention += static_cast<double>(d.q_lora_rank + d.kv_lora_rank) *
                     (h + heads * static_cast<double>(d.head_dim + d.v_head_dim)) +
                 heads * static_cast<double>(d.v_head_dim) * h;
  }
  const double dense_ffn = 3.0 * h * static_cast<double>(d.ffn_hidden_size);
  // A layer has the dense FFN or the experts, whichever is larger bounds it.
  const double ffn = std::max(
      dense_ffn,
      3.0 * h *
          (static_cast<double>(d.expert_ffn_hidden_size) * static_cast<double>(d.num_experts) +
           static_cast<double>(d.shared_expert_ffn_hidden_size) *
               static_cast<double>(d.num_shared_experts)));
  const double parameters =
      static_cast<double>(d.num_layers + d.mtp_layers) * (attention + ffn) +
      2.0 * h * static_cast<double>(d.vocab_size + d.position_table_rows);
  if (parameters > kMaxParameters) {
    // Point at the field behind the largest term.
    const char* field = ffn > attention ? (d.num_experts > 1 ? "num_experts" : "ffn_hidden_size")
                                        : "hidden_size";
    return where.Error(field, absl::StrFormat("the model would have about %.3g "
                                              "parameters (at most %.0e)",
                                              parameters, kMaxParameters));
  }
  // Values cached per token and layer: K and V of every KV head, or MLA's
  // latent and rotary key; 4 bytes is the widest KV dtype.
  const double kv_values = d.is_mla() ? static_cast<double>(d.kv_lora_rank + d.qk_rope_head_dim)
                                      : 2.0 * static_cast<double>(d.num_kv_heads * d.head_dim);
  const double kv_per_token = static_cast<double>(d.num_layers) * kv_values * 4;
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
