#include "sim/memory/vllm_memory.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "absl/strings/str_cat.h"
#include "sim/base/csv.h"
#include "sim/base/status_macros.h"
#include "sim/base/units.h"

namespace shardsim::memory {
namespace {

bool HasCustomAllReduce(int tp) { return tp == 2 || tp == 4 || tp == 6 || tp == 8; }

int Communicators(const VllmRank& r) { return (r.tp > 1 ? 1 : 0) + (r.pp > 1 ? 1 : 0); }

// The fused-MoE workspace's activations for `tokens` tokens (one copy).
double MoeWorkspace(const VllmRank& r, int64_t tokens) {
  if (!r.moe) return 0;
  const double expert_width = 2.0 * static_cast<double>(r.moe_intermediate_size) / r.tp;
  return static_cast<double>(tokens) * static_cast<double>(r.experts_per_token) *
         std::max(expert_width, static_cast<double>(r.hidden_size)) * r.activation_bytes;
}

// The forward's largest live set: the hidden state and residual, and the
// MLP's gate/up output with its activation (3 x width), per rank.
double ForwardWorkingSet(const VllmRank& r, int64_t tokens) {
  const int64_t width =
      r.moe ? r.experts_per_token * r.moe_intermediate_size + r.shared_intermediate_size
            : r.intermediate_size;
  return static_cast<double>(tokens) *
         (2.0 * static_cast<double>(r.hidden_size) + 3.0 * static_cast<double>(width) / r.tp) *
         r.activation_bytes;
}

double Logits(const VllmRank& r, const VllmProfile& p) {
  return static_cast<double>(std::min(p.sequences, p.tokens)) * static_cast<double>(r.vocab_size);
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// Least squares of y on the columns of x (each row 1..3 regressors, the
// first being the constant 1), by the normal equations.
std::vector<double> LeastSquares(const std::vector<std::vector<double>>& x,
                                 const std::vector<double>& y) {
  const size_t k = x.empty() ? 0 : x[0].size();
  std::vector<std::vector<double>> a(k, std::vector<double>(k + 1, 0.0));
  for (size_t i = 0; i < x.size(); ++i) {
    for (size_t r = 0; r < k; ++r) {
      for (size_t c = 0; c < k; ++c) a[r][c] += x[i][r] * x[i][c];
      a[r][k] += x[i][r] * y[i];
    }
  }
  // Gaussian elimination with partial pivoting; a singular system (too few
  // distinct rows) leaves the unresolved coefficients 0.
  for (size_t c = 0; c < k; ++c) {
    size_t pivot = c;
    for (size_t r = c + 1; r < k; ++r) {
      if (std::abs(a[r][c]) > std::abs(a[pivot][c])) pivot = r;
    }
    std::swap(a[c], a[pivot]);
    if (std::abs(a[c][c]) < 1e-300) continue;
    for (size_t r = 0; r < k; ++r) {
      if (r == c) continue;
      const double f = a[r][c] / a[c][c];
      for (size_t j = c; j <= k; ++j) a[r][j] -= f * a[c][j];
    }
  }
  std::vector<double> b(k, 0.0);
  for (size_t c = 0; c < k; ++c) {
    if (std::abs(a[c][c]) >= 1e-300) b[c] = a[c][k] / a[c][c];
  }
  return b;
}

int64_t Round(double bytes) { return static_cast<int64_t>(std::llround(bytes)); }

}  // namespace

VllmMemory PredictVllmMemory(const VllmRank& r, const VllmProfile& p,
                             const VllmMemoryTerms& t) {
  VllmMemory m;
  const int comms = Communicators(r);
  const int64_t custom_ar = HasCustomAllReduce(r.tp) ? t.custom_allreduce_bytes : 0;
  const int64_t moe_tp = r.moe && r.tp > 1 ? t.moe_tp_init_bytes : 0;
  const int64_t tp_forward = r.tp > 1 ? t.tp_forward_bytes : 0;
  m.init_non_torch_bytes = t.context_bytes + (comms > 0 ? t.lazy_load_bytes : 0) +
                           comms * t.communicator_init_bytes + custom_ar + moe_tp;
  m.forward_non_torch_bytes =
      t.workspace_bytes + (comms > 0 ? 0 : t.lazy_load_bytes) + tp_forward;
  m.communicator_bytes = comms * t.communicator_init_bytes + custom_ar + moe_tp + tp_forward;

  const double fixed = static_cast<double>(t.profile_fixed_bytes);
  double activation = fixed + ForwardWorkingSet(r, p.tokens);
  if (r.last_stage && r.vocab_size > 0) {
    const double sampler = fixed + Logits(r, p) * (r.activation_bytes + t.sampler_bytes_per_logit) +
                           t.moe_workspace_copies * MoeWorkspace(r, p.tokens);
    activation = std::max(activation, sampler);
  }
  m.activation_peak_bytes = Round(activation);
  m.cuda_graph_pool_bytes = t.graph_pool_base_bytes + r.layers * t.graph_pool_bytes_per_layer +
                            r.moe_layers * t.graph_pool_bytes_per_moe_layer;
  return m;
}

VllmRank VllmRankOf(const model::ModelGraph& graph, const parallel::Plan& plan,
                    const parallel::Rank& rank) {
  const model::ModelDims& d = graph.dims;
  VllmRank r;
  r.tp = plan.tp;
  r.pp = plan.pp;
  r.moe = d.is_moe();
  r.last_stage = rank.has_tail && d.has_lm_head();
  r.layers = rank.num_layers;
  for (int64_t l = rank.first_layer; l < rank.first_layer + rank.num_layers; ++l) {
    if (d.IsMoeLayer(l)) ++r.moe_layers;
  }
  r.hidden_size = d.hidden_size;
  r.intermediate_size = d.ffn_hidden_size;
  r.vocab_size = d.vocab_size;
  if (r.moe) {
    r.experts_per_token = d.experts_per_token;
    r.moe_intermediate_size = d.expert_ffn_hidden_size;
    r.shared_intermediate_size = d.num_shared_experts * d.shared_expert_ffn_hidden_size;
  }
  r.activation_bytes = std::max(1, DTypeBits(d.activation_dtype) / 8);
  return r;
}

absl::StatusOr<std::vector<VllmRun>> LoadVllmRuns(const std::string& profiling_csv,
                                                  const std::string& checkpoints_csv) {
  SHARDSIM_ASSIGN_OR_RETURN(CsvTable dims, CsvTable::Load(checkpoints_csv));
  SHARDSIM_ASSIGN_OR_RETURN(CsvTable runs, CsvTable::Load(profiling_csv));
  const std::pair<const CsvTable*, std::vector<const char*>> required[] = {
      {&dims,
       {"model", "family", "num_layers", "hidden_size", "intermediate_size", "vocab_size",
        "num_experts", "experts_per_token", "moe_intermediate_size",
        "shared_expert_intermediate_size"}},
      {&runs,
       {"framework_version", "model", "tp", "pp", "max_model_len", "dtype", "init_non_torch_GiB",
        "non_torch_forward_GiB", "activation_peak_GiB", "cuda_graph_pool_GiB", "weights_GiB",
        "gpu_total_memory_GiB", "budget_GiB", "kv_cache_GiB", "kv_cache_tokens",
        "max_concurrency", "kv_cache_dtype", "quantization"}},
  };
  for (const auto& [table, columns] : required) {
    for (const char* column : columns) {
      if (!table->HasColumn(column)) {
        return absl::InvalidArgumentError(
            absl::StrCat(table == &dims ? checkpoints_csv : profiling_csv,
                         ":1: no column '", column, "' in the header"));
      }
    }
  }
  std::map<std::string, size_t> by_model;
  for (size_t i = 0; i < dims.num_rows(); ++i) by_model[dims.Get(i, "model")] = i;
  std::vector<VllmRun> out;
  const double gib = static_cast<double>(kGiB);
  for (size_t i = 0; i < runs.num_rows(); ++i) {
    // The version sweep rows (0.15-0.18) lack the per-term columns.
    if (runs.Get(i, "framework_version") != "0.19.0") continue;
    VllmRun run;
    run.model = runs.Get(i, "model");
    auto it = by_model.find(run.model);
    if (it == by_model.end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          runs.Where(i), ": column model: ", run.model, " has no row in ", checkpoints_csv));
    }
    const size_t c = it->second;
    run.family = dims.Get(c, "family");
    auto number = [](const CsvTable& t, size_t row, const char* col) { return t.Number(row, col); };
    SHARDSIM_ASSIGN_OR_RETURN(double tp, number(runs, i, "tp"));
    SHARDSIM_ASSIGN_OR_RETURN(double pp, number(runs, i, "pp"));
    SHARDSIM_ASSIGN_OR_RETURN(double len, number(runs, i, "max_model_len"));
    VllmRank& r = run.rank;
    r.tp = static_cast<int>(tp);
    r.pp = static_cast<int>(pp);
    run.max_model_len = static_cast<int64_t>(len);
    SHARDSIM_ASSIGN_OR_RETURN(double layers, number(dims, c, "num_layers"));
    SHARDSIM_ASSIGN_OR_RETURN(double hidden, number(dims, c, "hidden_size"));
    SHARDSIM_ASSIGN_OR_RETURN(double inter, number(dims, c, "intermediate_size"));
    SHARDSIM_ASSIGN_OR_RETURN(double vocab, number(dims, c, "vocab_size"));
    SHARDSIM_ASSIGN_OR_RETURN(double experts, number(dims, c, "num_experts"));
    SHARDSIM_ASSIGN_OR_RETURN(double topk, number(dims, c, "experts_per_token"));
    SHARDSIM_ASSIGN_OR_RETURN(double moe_inter, number(dims, c, "moe_intermediate_size"));
    SHARDSIM_ASSIGN_OR_RETURN(double shared, number(dims, c, "shared_expert_intermediate_size"));
    if (r.tp < 1 || r.pp < 1 || layers < r.pp) {
      return absl::InvalidArgumentError(
          absl::StrCat(runs.Where(i), ": columns tp, pp: need tp >= 1 and 1 <= pp <= layers"));
    }
    r.moe = experts > 1;
    // Rank 0's figures are logged: the first stage, which holds the head
    // only without pipeline parallelism.
    r.last_stage = r.pp == 1;
    r.layers = static_cast<int64_t>(layers) / r.pp;
    r.moe_layers = r.moe ? r.layers : 0;
    r.hidden_size = static_cast<int64_t>(hidden);
    r.intermediate_size = static_cast<int64_t>(inter);
    r.vocab_size = static_cast<int64_t>(vocab);
    r.experts_per_token = static_cast<int64_t>(topk);
    r.moe_intermediate_size = static_cast<int64_t>(moe_inter);
    r.shared_intermediate_size = static_cast<int64_t>(shared);
    const std::string& dtype = runs.Get(i, "dtype");
    run.dtype = dtype;
    run.kv_cache_dtype_auto = runs.Get(i, "kv_cache_dtype") == "auto";
    run.quantized = runs.Get(i, "quantization") != "None";
    if (dtype == "torch.bfloat16" || dtype == "torch.float16") {
      r.activation_bytes = 2;
    } else if (dtype == "torch.float32") {
      r.activation_bytes = 4;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat(runs.Where(i), ": column dtype: unknown dtype '", dtype, "'"));
    }
    struct Column {
      const char* name;
      int64_t* bytes;
    };
    const Column columns[] = {
        {"init_non_torch_GiB", &run.init_non_torch_bytes},
        {"non_torch_forward_GiB", &run.forward_non_torch_bytes},
        {"activation_peak_GiB", &run.activation_peak_bytes},
        {"cuda_graph_pool_GiB", &run.cuda_graph_pool_bytes},
        {"weights_GiB", &run.weights_bytes},
        {"budget_GiB", &run.budget_bytes},
        {"gpu_total_memory_GiB", &run.total_bytes},
        {"kv_cache_GiB", &run.kv_cache_bytes},
    };
    for (const Column& col : columns) {
      SHARDSIM_ASSIGN_OR_RETURN(double v, number(runs, i, col.name));
      *col.bytes = Round(v * gib);
    }
    SHARDSIM_ASSIGN_OR_RETURN(double tokens, number(runs, i, "kv_cache_tokens"));
    SHARDSIM_ASSIGN_OR_RETURN(run.max_concurrency, number(runs, i, "max_concurrency"));
    run.kv_cache_tokens = static_cast<int64_t>(tokens);
    out.push_back(run);
  }
  return out;
}

VllmMemoryTerms FitVllmMemoryTerms(const std::vector<VllmRun>& runs) {
  VllmMemoryTerms t;
  auto bytes = [](int64_t b) { return static_cast<double>(b); };
  std::vector<double> init0, forward0, forward_pp;
  for (const VllmRun& run : runs) {
    if (run.rank.tp == 1 && run.rank.pp == 1) {
      init0.push_back(bytes(run.init_non_torch_bytes));
      forward0.push_back(bytes(run.forward_non_torch_bytes));
    } else if (run.rank.tp == 1) {
      forward_pp.push_back(bytes(run.forward_non_torch_bytes));
    }
  }
  const double context = Median(init0);
  const double forward_alone = Median(forward0);
  const double workspace = forward_pp.empty() ? forward_alone : Median(forward_pp);
  const double lazy = forward_alone - workspace;
  t.context_bytes = Round(context);
  t.workspace_bytes = Round(workspace);
  t.lazy_load_bytes = Round(lazy);
  auto custom_ar = [&t, &bytes](int tp) {
    return HasCustomAllReduce(tp) ? bytes(t.custom_allreduce_bytes) : 0.0;
  };
  std::vector<double> comm, tp_forward;
  for (const VllmRun& run : runs) {
    const VllmRank& r = run.rank;
    if (Communicators(r) > 0 && !r.moe) {
      comm.push_back((bytes(run.init_non_torch_bytes) - context - lazy - custom_ar(r.tp)) /
                     Communicators(r));
    }
    if (r.tp > 1) tp_forward.push_back(bytes(run.forward_non_torch_bytes) - workspace);
  }
  const double communicator = Median(comm);
  t.communicator_init_bytes = Round(communicator);
  t.tp_forward_bytes = Round(Median(tp_forward));
  std::vector<double> moe_tp;
  for (const VllmRun& run : runs) {
    const VllmRank& r = run.rank;
    if (r.moe && r.tp > 1) {
      moe_tp.push_back(bytes(run.init_non_torch_bytes) - context - lazy -
                       Communicators(r) * communicator - custom_ar(r.tp));
    }
  }
  t.moe_tp_init_bytes = Round(Median(moe_tp));

  // The sampler: least squares of (peak - logits x dtype bytes) on
  // [1, logits] over the dense single-stage runs, then again over those
  // whose peak the sampler sets by that first fit (where the forward's
  // working set is larger, the run says nothing about the sampler).
  auto fit_sampler = [&](bool only_sampler_bound, double per_logit) {
    std::vector<std::vector<double>> x;
    std::vector<double> y;
    for (const VllmRun& run : runs) {
      const VllmRank& r = run.rank;
      if (r.moe || !r.last_stage) continue;
      const double logits = Logits(r, run.profile);
      if (only_sampler_bound &&
          logits * (r.activation_bytes + per_logit) < ForwardWorkingSet(r, run.profile.tokens)) {
        continue;
      }
      x.push_back({1.0, logits});
      y.push_back(bytes(run.activation_peak_bytes) - logits * r.activation_bytes);
    }
    return LeastSquares(x, y);
  };
  std::vector<double> first = fit_sampler(false, 0);
  if (first.size() < 2) first = {0, 0};
  std::vector<double> sampler = fit_sampler(true, first[1]);
  if (sampler.size() < 2) sampler = first;
  t.profile_fixed_bytes = Round(sampler[0]);
  t.sampler_bytes_per_logit = sampler[1];
  std::vector<double> copies;
  for (const VllmRun& run : runs) {
    const VllmRank& r = run.rank;
    if (!r.moe || !r.last_stage) continue;
    const double logits = Logits(r, run.profile);
    copies.push_back((bytes(run.activation_peak_bytes) - sampler[0] -
                      logits * (r.activation_bytes + sampler[1])) /
                     MoeWorkspace(r, run.profile.tokens));
  }
  t.moe_workspace_copies = Median(copies);

  // The graph pool: least squares on [1, layers, MoE layers].
  std::vector<std::vector<double>> x;
  std::vector<double> y;
  bool any_moe = false;
  for (const VllmRun& run : runs) {
    any_moe = any_moe || run.rank.moe_layers > 0;
    x.push_back({1.0, static_cast<double>(run.rank.layers),
                 static_cast<double>(run.rank.moe_layers)});
    y.push_back(bytes(run.cuda_graph_pool_bytes));
  }
  if (!any_moe) {
    for (auto& row : x) row.pop_back();
  }
  std::vector<double> graph = LeastSquares(x, y);
  graph.resize(3, 0.0);
  t.graph_pool_base_bytes = Round(graph[0]);
  t.graph_pool_bytes_per_layer = Round(graph[1]);
  t.graph_pool_bytes_per_moe_layer = Round(graph[2]);
  return t;
}

}  // namespace shardsim::memory
