#include "sim/cost/calibration.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "sim/base/csv.h"
#include "sim/base/status_macros.h"
#include "sim/cost/collective_model.h"
#include "sim/cost/roofline.h"
#include "sim/parallel/partition.h"

namespace shardsim::cost {
namespace {

// Vidur's operator names -> ours.
const std::map<std::string, std::string>& VidurOps() {
  static const auto* ops = new std::map<std::string, std::string>{
      {"emb", "embedding"},
      {"input_layernorm", "input_norm"},
      {"attn_pre_proj", "qkv_proj"},
      {"attn_rope", "rope"},
      {"attn_post_proj", "o_proj"},
      {"post_attention_layernorm", "post_attn_norm"},
      {"mlp_up_proj", "gate_up_proj"},
      {"mlp_act", "act"},
      {"mlp_down_proj", "down_proj"},
      {"add", "residual_add"},
  };
  return *ops;
}

const model::Op* FindOp(const model::ModelGraph& graph, const std::string& name) {
  for (const auto* ops : {&graph.embedding, &graph.layer, &graph.tail}) {
    for (const model::Op& op : *ops) {
      if (op.name == name) return &op;
    }
  }
  return nullptr;
}

// Minimizes `f` from `start` with the Nelder-Mead simplex method.
template <size_t N>
std::array<double, N> NelderMead(const std::function<double(const std::array<double, N>&)>& f,
                                 std::array<double, N> start,
                                 const std::array<double, N>& step, int iterations) {
  std::array<std::array<double, N>, N + 1> simplex;
  std::array<double, N + 1> value;
  simplex[0] = start;
  for (size_t i = 0; i < N; ++i) {
    simplex[i + 1] = start;
    simplex[i + 1][i] += step[i];
  }
  for (size_t i = 0; i <= N; ++i) value[i] = f(simplex[i]);
  for (int it = 0; it < iterations; ++it) {
    std::array<size_t, N + 1> order;
    for (size_t i = 0; i <= N; ++i) order[i] = i;
    std::sort(order.begin(), order.end(),
              [&](size_t a, size_t b) { return value[a] < value[b]; });
    const size_t best = order[0];
    const size_t worst = order[N];
    const size_t second = order[N - 1];
    std::array<double, N> centroid{};
    for (size_t i = 0; i < N; ++i) {
      for (size_t j = 0; j <= N; ++j) {
        if (j != worst) centroid[i] += simplex[j][i] / static_cast<double>(N);
      }
    }
    auto along = [&](double t) {
      std::array<double, N> x;
      for (size_t i = 0; i < N; ++i) {
        x[i] = centroid[i] + t * (simplex[worst][i] - centroid[i]);
      }
      return x;
    };
    const std::array<double, N> reflected = along(-1);
    const double fr = f(reflected);
    if (fr < value[best]) {
      const std::array<double, N> expanded = along(-2);
      const double fe = f(expanded);
      if (fe < fr) {
        simplex[worst] = expanded;
        value[worst] = fe;
      } else {
        simplex[worst] = reflected;
        value[worst] = fr;
      }
    } else if (fr < value[second]) {
      simplex[worst] = reflected;
      value[worst] = fr;
    } else {
      const std::array<double, N> contracted = along(0.5);
      const double fc = f(contracted);
      if (fc < value[worst]) {
        simplex[worst] = contracted;
        value[worst] = fc;
      } else {
        for (size_t j = 0; j <= N; ++j) {
          if (j == best) continue;
          for (size_t i = 0; i < N; ++i) {
            simplex[j][i] = simplex[best][i] + 0.5 * (simplex[j][i] - simplex[best][i]);
          }
          value[j] = f(simplex[j]);
        }
      }
    }
  }
  size_t best = 0;
  for (size_t i = 1; i <= N; ++i) {
    if (value[i] < value[best]) best = i;
  }
  return simplex[best];
}

// Solves the weighted least-squares problem min sum_i (x . a_i - b_i)^2 by
// the normal equations (small, well-conditioned systems only).
template <size_t N>
std::array<double, N> LeastSquares(const std::vector<std::array<double, N>>& a,
                                   const std::vector<double>& b) {
  std::array<std::array<double, N + 1>, N> m{};
  for (size_t r = 0; r < a.size(); ++r) {
    for (size_t i = 0; i < N; ++i) {
      for (size_t j = 0; j < N; ++j) m[i][j] += a[r][i] * a[r][j];
      m[i][N] += a[r][i] * b[r];
    }
  }
  for (size_t c = 0; c < N; ++c) {  // Gaussian elimination, partial pivoting
    size_t pivot = c;
    for (size_t r = c + 1; r < N; ++r) {
      if (std::fabs(m[r][c]) > std::fabs(m[pivot][c])) pivot = r;
    }
    std::swap(m[c], m[pivot]);
    if (m[c][c] == 0) continue;
    for (size_t r = 0; r < N; ++r) {
      if (r == c) continue;
      const double factor = m[r][c] / m[c][c];
      for (size_t k = c; k <= N; ++k) m[r][k] -= factor * m[c][k];
    }
  }
  std::array<double, N> x{};
  for (size_t i = 0; i < N; ++i) x[i] = m[i][i] == 0 ? 0 : m[i][N] / m[i][i];
  return x;
}

bool IsMatrix(const model::Op& op) {
  return op.kind == model::OpKind::kGemm || op.kind == model::OpKind::kHead;
}

v1::KernelEfficiency* KernelOf(v1::EfficiencyProfile* p, model::OpKind kind) {
  switch (kind) {
    case model::OpKind::kNorm:
      return p->mutable_norm();
    case model::OpKind::kActivation:
      return p->mutable_activation();
    case model::OpKind::kRope:
      return p->mutable_rope();
    case model::OpKind::kResidualAdd:
      return p->mutable_residual_add();
    case model::OpKind::kEmbedding:
      return p->mutable_embedding();
    default:
      return nullptr;
  }
}

// A count read from a measurement file: a whole number in [lo, hi]. NaN,
// infinities and fractions are refused here, before any integer cast (a 0 or
// NaN head count used to reach a division).
absl::StatusOr<int64_t> WholeNumber(const CsvTable& table, size_t row,
                                    const std::string& column, int64_t lo, int64_t hi) {
  SHARDSIM_ASSIGN_OR_RETURN(double value, table.Number(row, column));
  if (!(value >= static_cast<double>(lo) && value <= static_cast<double>(hi)) ||
      value != std::floor(value)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: %s: must be a whole number in [%d, %d], not '%s'",
                        table.Where(row, column), column, lo, hi, table.Get(row, column)));
  }
  return static_cast<int64_t>(value);
}

// A measured time in milliseconds: finite, not negative, under an hour.
absl::StatusOr<double> Milliseconds(const CsvTable& table, size_t row,
                                    const std::string& column) {
  SHARDSIM_ASSIGN_OR_RETURN(double ms, table.Number(row, column));
  if (!(ms >= 0 && ms < 3.6e6)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: %s: must be a time in [0, 3.6e6) ms, not '%s'",
                        table.Where(row, column), column, table.Get(row, column)));
  }
  return ms;
}

// A row's latency_ms (Milliseconds' checks) in seconds; 0 for a row that
// measured nothing, which the loaders skip.
absl::StatusOr<double> MeasuredSeconds(const CsvTable& table, size_t row) {
  SHARDSIM_ASSIGN_OR_RETURN(double ms, Milliseconds(table, row, "latency_ms"));
  return ms * 1e-3;
}

// The catalog name of the GPU a measurement row's `system` ran on; null for
// a system that was not asked for.
const std::string* GpuOfRow(const CsvTable& table, size_t row,
                            const std::map<std::string, std::string>& gpu_of_system) {
  const auto gpu = gpu_of_system.find(table.Get(row, "system"));
  return gpu == gpu_of_system.end() ? nullptr : &gpu->second;
}

// The dtype a measurement names ("bfloat16", "fp8"); nullopt for the
// recipes not modelled (block-scaled FP8, FP4).
std::optional<v1::DType> MeasuredDType(const std::string& name) {
  if (name == "bfloat16") return v1::BF16;
  if (name == "fp8") return v1::FP8;
  return std::nullopt;
}

// Bytes per activation element that vLLM's dynamic per-tensor FP8
// quantization moves before an FP8 GEMM: vllm-project/vllm
// csrc/quantization/fp8/common.cu, dynamic_scaled_fp8_quant runs
// segmented_max_reduction (reads the BF16 input: 2 bytes) and then
// scaled_fp8_quant_kernel (reads it again: 2, writes FP8: 1). AIConfigurator
// times the whole linear layer (CutlassFP8ScaledMMLinearKernel.apply), so
// its FP8 rows include this pass; it is not fitted.
constexpr double kFp8DynamicQuantBytesPerElement = 5;

// One GEMM for the fit: its work, the rows (tokens) that set its tile
// efficiency, the tensor rate of its dtype, and its measured time.
struct GemmPoint {
  double flops, bytes, rows, peak, measured;
  double quant_bytes = 0;  // the pass quantizing an 8-bit GEMM's activations
};

// Fits the four numbers of a GEMM curve to `gemms`: (max compute
// efficiency, rows at half of it, memory efficiency, launch) by Nelder-Mead
// on the mean squared log error of the roofline in sim/cost/roofline.h.
// Without points: the curve of `fallback`'s BF16 numbers.
v1::GemmEfficiency FitCurve(const std::vector<GemmPoint>& gemms, double bandwidth,
                            const v1::EfficiencyProfile& fallback) {
  if (gemms.empty()) return GemmCurve(fallback, v1::BF16);
  auto loss = [&](const std::array<double, 4>& x) {
    if (x[0] <= 0.01 || x[0] > 1 || x[1] < 0 || x[2] <= 0.01 || x[2] > 1 || x[3] < 0) {
      return 1e30;
    }
    double sum = 0;
    for (const GemmPoint& g : gemms) {
      const double efficiency = x[0] * g.rows / (g.rows + x[1]);
      const double t = x[3] * 1e-6 + g.quant_bytes / (bandwidth * x[2]) +
                       std::max(g.flops / (g.peak * efficiency), g.bytes / (bandwidth * x[2]));
      const double e = std::log(t / g.measured);
      sum += e * e;
    }
    return sum / static_cast<double>(gemms.size());
  };
  std::array<double, 4> x = {0.75, 64, 0.8, 5};
  // Restarts keep the simplex from stalling in a corner of the box.
  for (int round = 0; round < 3; ++round) {
    x = NelderMead<4>(loss, x, {0.05, 32, 0.05, 2}, 400);
  }
  v1::GemmEfficiency curve;
  curve.set_max_compute_efficiency(x[0]);
  curve.set_rows_half(x[1]);
  curve.set_memory_efficiency(x[2]);
  curve.set_launch_s(x[3] * 1e-6);
  curve.set_samples(static_cast<int32_t>(gemms.size()));
  return curve;
}

// The BF16 GEMM numbers of `profile` (its gemm_* fields) set to `curve`'s.
void SetBf16Curve(const v1::GemmEfficiency& curve, v1::EfficiencyProfile* profile) {
  profile->set_gemm_max_compute_efficiency(curve.max_compute_efficiency());
  profile->set_gemm_rows_half(curve.rows_half());
  profile->set_gemm_memory_efficiency(curve.memory_efficiency());
  profile->set_gemm_launch_s(curve.launch_s());
}

// Fits the four BF16 GEMM numbers of `profile` to `gemms`.
void FitGemmCurve(const std::vector<GemmPoint>& gemms, double bandwidth,
                  v1::EfficiencyProfile* profile) {
  if (gemms.empty()) return;
  SetBf16Curve(FitCurve(gemms, bandwidth, *profile), profile);
}

}  // namespace

absl::StatusOr<std::vector<OpSample>> LoadOpSamples(const std::string& compute_dir) {
  std::vector<std::string> files;
  std::error_code error;
  for (auto it = std::filesystem::recursive_directory_iterator(compute_dir, error);
       !error && it != std::filesystem::recursive_directory_iterator(); ++it) {
    if (it->path().filename() == "mlp.csv") files.push_back(it->path().string());
  }
  if (error || files.empty()) {
    return absl::NotFoundError(
        absl::StrCat(compute_dir, ": no <org>/<model>/mlp.csv files found"));
  }
  std::sort(files.begin(), files.end());
  std::vector<OpSample> samples;
  for (const std::string& file : files) {
    SHARDSIM_ASSIGN_OR_RETURN(CsvTable table, CsvTable::Load(file));
    SHARDSIM_RETURN_IF_ERROR(table.RequireColumns({"use_gated_mlp"}));
    const std::string model_name =
        std::filesystem::path(file).parent_path().filename().string();
    std::map<int, model::ModelGraph> graphs;  // by tp
    for (size_t row = 0; row < table.num_rows(); ++row) {
      model::ModelDims dims;
      dims.name = model_name;
      SHARDSIM_ASSIGN_OR_RETURN(int64_t heads, WholeNumber(table, row, "n_head", 1, 1 << 16));
      SHARDSIM_ASSIGN_OR_RETURN(int64_t kv_heads,
                                WholeNumber(table, row, "n_kv_head", 1, heads));
      SHARDSIM_ASSIGN_OR_RETURN(int64_t hidden,
                                WholeNumber(table, row, "n_embd", 1, 1 << 20));
      SHARDSIM_ASSIGN_OR_RETURN(int64_t ffn,
                                WholeNumber(table, row, "n_expanded_embd", 1, 1 << 22));
      SHARDSIM_ASSIGN_OR_RETURN(int64_t vocab,
                                WholeNumber(table, row, "vocab_size", 1, 1 << 24));
      SHARDSIM_ASSIGN_OR_RETURN(int64_t tokens,
                                WholeNumber(table, row, "num_tokens", 1, 1 << 24));
      SHARDSIM_ASSIGN_OR_RETURN(
          int64_t tp, WholeNumber(table, row, "num_tensor_parallel_workers", 1, 1024));
      // The shard is rebuilt from these: whole heads per GPU, whole head dims.
      if (hidden % heads != 0 || heads % tp != 0 || heads % kv_heads != 0) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "%s: n_embd %d, n_head %d, n_kv_head %d, tp %d: n_embd must divide into "
            "n_head heads, n_head into tp shards and into n_kv_head groups",
            table.Where(row), hidden, heads, kv_heads, tp));
      }
      dims.num_layers = 1;
      dims.hidden_size = hidden;
      dims.num_attention_heads = heads;
      dims.num_kv_heads = kv_heads;
      dims.head_dim = dims.hidden_size / dims.num_attention_heads;
      dims.ffn_hidden_size = ffn;
      dims.gated_ffn = table.Get(row, "use_gated_mlp") == "True";
      dims.vocab_size = vocab;
      dims.weight_dtype = v1::FP16;
      dims.activation_dtype = v1::FP16;
      dims.kv_cache_dtype = v1::FP16;
      const int tp_degree = static_cast<int>(tp);
      auto graph = graphs.find(tp_degree);
      if (graph == graphs.end()) {
        graph = graphs.emplace(tp_degree, model::BuildGraph(
                                              dims, parallel::ShardFor(dims, tp_degree)))
                    .first;
      }
      for (const auto& [vidur, ours] : VidurOps()) {
        const std::string column = absl::StrCat("time_stats.", vidur, ".median");
        if (!table.HasColumn(column) || table.Get(row, column).empty()) continue;
        SHARDSIM_ASSIGN_OR_RETURN(double ms, Milliseconds(table, row, column));
        std::string name = ours;
        if (name == "gate_up_proj" && !dims.gated_ffn) name = "up_proj";
        const model::Op* op = FindOp(graph->second, name);
        if (op == nullptr || ms <= 0) continue;
        OpSample sample;
        sample.model = model_name;
        sample.op = name;
        sample.tokens = tokens;
        sample.tp = tp_degree;
        sample.dims = dims;
        sample.op_def = *op;
        if (sample.op_def.kind == model::OpKind::kResidualAdd) {
          sample.op_def.count = 1;  // Vidur times one add
        }
        sample.shape = model::PrefillStep(1, sample.tokens);
        sample.measured_s = ms * 1e-3;
        samples.push_back(sample);
      }
    }
  }
  return samples;
}

double PredictOp(const OpSample& sample, const v1::GpuSpec& gpu,
                 const v1::EfficiencyProfile& profile) {
  return CostModel(gpu, sample.dims, profile).Op(sample.op_def, sample.shape).time_s;
}

v1::EfficiencyProfile FitProfile(const std::vector<OpSample>& samples,
                                 const v1::GpuSpec& gpu) {
  v1::EfficiencyProfile profile = DefaultProfile(gpu.name());
  profile.set_derived(false);
  profile.set_samples(static_cast<int32_t>(samples.size()));

  // GEMMs: FLOPs and bytes do not depend on the profile; compute them once.
  std::vector<GemmPoint> gemms;
  const double peak = hardware::DenseFlopsPerSecond(gpu, v1::FP16);
  const double bandwidth = gpu.hbm_bandwidth_bytes_per_s();
  for (const OpSample& s : samples) {
    if (!IsMatrix(s.op_def)) continue;
    gemms.push_back({model::OpFlops(s.op_def, s.dims, s.shape),
                     static_cast<double>(model::OpMemoryBytes(s.op_def, s.dims, s.shape)),
                     static_cast<double>(s.shape.new_tokens), peak, s.measured_s});
  }
  FitGemmCurve(gemms, bandwidth, &profile);

  // Memory-bound kinds: time = launch + bytes x b, least squares on the
  // relative error: rows (1/t, bytes/t), target 1.
  std::map<model::OpKind, std::pair<std::vector<std::array<double, 2>>, std::vector<double>>>
      systems;
  for (const OpSample& s : samples) {
    if (IsMatrix(s.op_def) || s.op_def.kind == model::OpKind::kAttention) continue;
    const double bytes =
        static_cast<double>(model::OpMemoryBytes(s.op_def, s.dims, s.shape));
    auto& [rows, targets] = systems[s.op_def.kind];
    rows.push_back({1 / s.measured_s, bytes / s.measured_s});
    targets.push_back(1);
  }
  for (const auto& [kind, system] : systems) {
    const std::array<double, 2> x = LeastSquares<2>(system.first, system.second);
    v1::KernelEfficiency* k = KernelOf(&profile, kind);
    k->set_launch_s(std::max(0.0, x[0]));
    k->set_memory_efficiency(x[1] > 0 ? std::min(1.0, 1 / (x[1] * bandwidth)) : 1.0);
  }
  return profile;
}

absl::StatusOr<std::vector<GemmSample>> LoadGemmSamples(
    const std::string& path, const std::map<std::string, std::string>& gpu_of_system) {
  SHARDSIM_ASSIGN_OR_RETURN(CsvTable table, CsvTable::Load(path));
  SHARDSIM_RETURN_IF_ERROR(table.RequireColumns({"system", "gemm_dtype"}));
  std::vector<GemmSample> samples;
  for (size_t row = 0; row < table.num_rows(); ++row) {
    const std::string* gpu = GpuOfRow(table, row, gpu_of_system);
    if (gpu == nullptr) continue;
    const std::optional<v1::DType> dtype = MeasuredDType(table.Get(row, "gemm_dtype"));
    if (!dtype.has_value()) continue;
    GemmSample s;
    s.gpu = *gpu;
    s.dtype = *dtype;
    SHARDSIM_ASSIGN_OR_RETURN(s.m, WholeNumber(table, row, "m", 1, 1 << 24));
    SHARDSIM_ASSIGN_OR_RETURN(s.n, WholeNumber(table, row, "n", 1, 1 << 24));
    SHARDSIM_ASSIGN_OR_RETURN(s.k, WholeNumber(table, row, "k", 1, 1 << 24));
    SHARDSIM_ASSIGN_OR_RETURN(s.measured_s, MeasuredSeconds(table, row));
    if (s.measured_s <= 0) continue;
    samples.push_back(s);
  }
  return samples;
}

namespace {

// FLOPs, bytes moved (inputs in the GEMM's dtype, a BF16 output: vLLM's
// scaled-mm writes BF16), tensor rate of a measured GEMM, and for FP8 the
// bytes of quantizing its m x k BF16 activations first.
GemmPoint PointOf(const GemmSample& s, const v1::GpuSpec& gpu) {
  const double m = static_cast<double>(s.m), n = static_cast<double>(s.n),
               k = static_cast<double>(s.k);
  const double input_bytes = s.dtype == v1::FP8 ? 1 : 2;
  GemmPoint g{2 * m * n * k, input_bytes * (m * k + k * n) + 2 * m * n, m,
              hardware::DenseFlopsPerSecond(gpu, s.dtype), s.measured_s};
  if (s.dtype == v1::FP8) g.quant_bytes = kFp8DynamicQuantBytesPerElement * m * k;
  return g;
}

double Median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t mid = values.size() / 2;
  return values.size() % 2 == 1 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
}

}  // namespace

double PredictGemm(const GemmSample& sample, const v1::GpuSpec& gpu,
                   const v1::EfficiencyProfile& profile) {
  const GemmPoint g = PointOf(sample, gpu);
  const v1::GemmEfficiency curve = GemmCurve(profile, sample.dtype);
  const double efficiency =
      curve.max_compute_efficiency() * g.rows / (g.rows + curve.rows_half());
  const double bandwidth = gpu.hbm_bandwidth_bytes_per_s() * curve.memory_efficiency();
  // The profile says how many bytes per activation its quantization moves.
  const double quant_bytes = curve.input_quant_bytes_per_element() *
                             static_cast<double>(sample.m) * static_cast<double>(sample.k);
  return curve.launch_s() + quant_bytes / bandwidth +
         std::max(g.flops / (g.peak * efficiency), g.bytes / bandwidth);
}

v1::EfficiencyProfile FitGemmProfile(const std::vector<GemmSample>& samples,
                                     const v1::GpuSpec& gpu, v1::EfficiencyProfile base) {
  std::vector<GemmPoint> points;
  for (const GemmSample& s : samples) points.push_back(PointOf(s, gpu));
  FitGemmCurve(points, gpu.hbm_bandwidth_bytes_per_s(), &base);
  base.set_gpu(gpu.name());
  base.set_derived(false);
  base.set_samples(static_cast<int32_t>(samples.size()));
  return base;
}

v1::GemmEfficiency FitGemmEfficiency(const std::vector<GemmSample>& samples,
                                     const v1::GpuSpec& gpu) {
  std::vector<GemmPoint> points;
  bool fp8 = false;
  for (const GemmSample& s : samples) {
    points.push_back(PointOf(s, gpu));
    fp8 = fp8 || s.dtype == v1::FP8;
  }
  v1::GemmEfficiency curve =
      FitCurve(points, gpu.hbm_bandwidth_bytes_per_s(), v1::EfficiencyProfile());
  if (fp8) curve.set_input_quant_bytes_per_element(kFp8DynamicQuantBytesPerElement);
  return curve;
}

absl::StatusOr<std::vector<AttentionSample>> LoadAttentionSamples(
    const std::string& context_path, const std::string& generation_path,
    const std::map<std::string, std::string>& gpu_of_system) {
  std::vector<AttentionSample> samples;
  for (const bool prefill : {true, false}) {
    const std::string& path = prefill ? context_path : generation_path;
    SHARDSIM_ASSIGN_OR_RETURN(CsvTable table, CsvTable::Load(path));
    SHARDSIM_RETURN_IF_ERROR(table.RequireColumns({"system", "kv_cache_dtype"}));
    for (size_t row = 0; row < table.num_rows(); ++row) {
      const std::string* gpu = GpuOfRow(table, row, gpu_of_system);
      if (gpu == nullptr) continue;
      const std::optional<v1::DType> kv = MeasuredDType(table.Get(row, "kv_cache_dtype"));
      if (!kv.has_value()) continue;
      AttentionSample s;
      s.gpu = *gpu;
      s.prefill = prefill;
      s.kv_dtype = *kv;
      SHARDSIM_ASSIGN_OR_RETURN(s.batch, WholeNumber(table, row, "batch_size", 1, 1 << 20));
      SHARDSIM_ASSIGN_OR_RETURN(s.heads, WholeNumber(table, row, "num_heads", 1, 1 << 12));
      SHARDSIM_ASSIGN_OR_RETURN(s.kv_heads,
                                WholeNumber(table, row, "num_key_value_heads", 1, s.heads));
      SHARDSIM_ASSIGN_OR_RETURN(s.head_dim, WholeNumber(table, row, "head_dim", 1, 1 << 12));
      if (prefill) {
        SHARDSIM_ASSIGN_OR_RETURN(s.query_tokens, WholeNumber(table, row, "isl", 1, 1 << 24));
        s.context_tokens = s.query_tokens;
      } else {
        // kv_len_step counts the cached tokens before the new one.
        SHARDSIM_ASSIGN_OR_RETURN(int64_t cached,
                                  WholeNumber(table, row, "kv_len_step", 0, 1 << 24));
        s.query_tokens = 1;
        s.context_tokens = cached + 1;
      }
      SHARDSIM_ASSIGN_OR_RETURN(s.measured_s, MeasuredSeconds(table, row));
      if (s.measured_s <= 0) continue;
      samples.push_back(s);
    }
  }
  return samples;
}

namespace {

// The attention op, dims and step of a sample, as the model graph builds them.
struct AttentionCase {
  model::Op op;
  model::ModelDims dims;
  model::StepShape shape;
};

AttentionCase CaseOf(const AttentionSample& s) {
  AttentionCase c;
  c.op.name = "attention";
  c.op.kind = model::OpKind::kAttention;
  c.op.heads = s.heads;
  c.op.kv_heads = s.kv_heads;
  c.op.head_dim = s.head_dim;
  c.op.in_features = (s.heads + 2 * s.kv_heads) * s.head_dim;
  c.op.out_features = s.heads * s.head_dim;
  c.dims.num_layers = 1;
  c.dims.num_attention_heads = s.heads;
  c.dims.num_kv_heads = s.kv_heads;
  c.dims.head_dim = s.head_dim;
  c.dims.hidden_size = s.heads * s.head_dim;
  c.dims.weight_dtype = v1::BF16;
  c.dims.activation_dtype = v1::BF16;
  c.dims.kv_cache_dtype = s.kv_dtype;
  c.shape = s.prefill ? model::PrefillStep(s.batch, s.query_tokens)
                      : model::DecodeStep(s.batch, s.context_tokens);
  return c;
}

}  // namespace

double PredictAttention(const AttentionSample& sample, const v1::GpuSpec& gpu,
                        const v1::EfficiencyProfile& profile) {
  const AttentionCase c = CaseOf(sample);
  return CostModel(gpu, c.dims, profile).Op(c.op, c.shape).time_s;
}

v1::AttentionEfficiency FitAttention(const std::vector<AttentionSample>& samples,
                                     const v1::GpuSpec& gpu) {
  struct Point {
    double flops, bytes, per_sequence, tiles, units, measured;
  };
  std::vector<Point> points;
  for (const AttentionSample& s : samples) {
    const AttentionCase c = CaseOf(s);
    const double per_sequence = static_cast<double>(s.query_tokens);
    const double batch = static_cast<double>(s.batch);
    points.push_back({model::OpFlops(c.op, c.dims, c.shape),
                      static_cast<double>(model::OpMemoryBytes(c.op, c.dims, c.shape)),
                      per_sequence,
                      batch * static_cast<double>(s.heads) * std::ceil(per_sequence / 128),
                      batch * static_cast<double>(s.kv_heads), s.measured_s});
  }
  const double peak = hardware::DenseFlopsPerSecond(gpu, v1::BF16);
  const double bandwidth = gpu.hbm_bandwidth_bytes_per_s();
  // x = (max prefill efficiency, tokens at half of it, memory efficiency,
  // launch in microseconds, tiles at half, KV streams at half): the formula
  // of roofline.cc's attention case.
  auto loss = [&](const std::array<double, 6>& x) {
    if (x[0] <= 0.01 || x[0] > 1 || x[1] < 0 || x[2] <= 0.01 || x[2] > 1 || x[3] < 0 ||
        x[4] < 0 || x[5] < 0) {
      return 1e30;
    }
    double sum = 0;
    for (const Point& p : points) {
      const double efficiency = x[0] * p.per_sequence / (p.per_sequence + x[1]) * p.tiles /
                                (p.tiles + x[4]);
      const double memory = x[2] * p.units / (p.units + x[5]);
      const double t =
          x[3] * 1e-6 + std::max(p.flops / (peak * efficiency), p.bytes / (bandwidth * memory));
      const double e = std::log(t / p.measured);
      sum += e * e;
    }
    return sum / static_cast<double>(std::max<size_t>(1, points.size()));
  };
  std::array<double, 6> x = {0.5, 64, 0.7, 10, 64, 16};
  for (int round = 0; round < 6; ++round) {
    x = NelderMead<6>(loss, x, {0.1, 32, 0.1, 5, 32, 8}, 600);
  }
  v1::AttentionEfficiency a;
  a.set_prefill_max_compute_efficiency(x[0]);
  a.set_prefill_tokens_half(x[1]);
  a.set_memory_efficiency(x[2]);
  a.set_launch_s(x[3] * 1e-6);
  a.set_tiles_half(x[4]);
  a.set_units_half(x[5]);
  a.set_samples(static_cast<int32_t>(samples.size()));
  return a;
}

namespace {

// "lo - hi" of `v`, for the reasons.
std::string Spread(const std::vector<double>& v) {
  if (v.empty()) return std::string("none");
  const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
  return absl::StrFormat("%.3g - %.3g", *lo, *hi);
}

}  // namespace

void DeriveGemmFp8(const std::vector<MeasuredGpu>& measured, v1::EfficiencyProfile* p) {
  const auto& spread = Spread;
  std::vector<double> ratio, rows_half, memory, launch, quant;
  std::vector<std::string> names;
  for (const MeasuredGpu& g : measured) {
    const v1::GemmEfficiency& f = g.profile.gemm_fp8();
    if (f.max_compute_efficiency() <= 0 || g.profile.gemm_max_compute_efficiency() <= 0) {
      continue;
    }
    names.push_back(g.spec.name());
    ratio.push_back(f.max_compute_efficiency() / g.profile.gemm_max_compute_efficiency());
    rows_half.push_back(f.rows_half());
    memory.push_back(f.memory_efficiency());
    launch.push_back(f.launch_s() * 1e6);
    quant.push_back(f.input_quant_bytes_per_element());
  }
  p->clear_gemm_fp8();
  if (names.empty()) return;
  v1::GemmEfficiency* f = p->mutable_gemm_fp8();
  f->set_max_compute_efficiency(
      std::min(1.0, p->gemm_max_compute_efficiency() * Median(ratio)));
  f->set_rows_half(Median(rows_half));
  f->set_memory_efficiency(Median(memory));
  f->set_launch_s(Median(launch) * 1e-6);
  f->set_input_quant_bytes_per_element(Median(quant));
  f->set_source(absl::StrCat("derived from the FP8 fits of ", absl::StrJoin(names, ", "),
                             ": see reasons"));
  p->add_reasons(absl::StrFormat(
      "gemm_fp8.max_compute_efficiency %.3f = this GPU's BF16 gemm_max_compute_efficiency "
      "%.3f x %.3f, the median ratio of FP8 to BF16 fitted efficiency on %d GPUs measured "
      "in both (%s; %s): FP8 doubles the tensor rate but not the rest of a scaled-mm "
      "kernel's work per tile (operand staging, the scale epilogue), so it reaches a "
      "smaller share of its peak; INT8 inputs run the same kernels",
      f->max_compute_efficiency(), p->gemm_max_compute_efficiency(), Median(ratio),
      static_cast<int>(names.size()), absl::StrJoin(names, ", "), spread(ratio)));
  p->add_reasons(absl::StrFormat(
      "gemm_fp8.rows_half %.1f (%s), memory_efficiency %.3f (%s): the FP8-measured GPUs' "
      "medians; small-M FP8 GEMMs stream half the weight bytes of BF16 ones, at a share "
      "of HBM peak their fits place below BF16's",
      f->rows_half(), spread(rows_half), f->memory_efficiency(), spread(memory)));
  p->add_reasons(absl::StrFormat(
      "gemm_fp8.launch_s %.2f us (%s us): the FP8-measured GPUs' median: the fixed cost "
      "includes two more kernels than a BF16 GEMM's, the activations' absmax and their "
      "cast to FP8",
      f->launch_s() * 1e6, spread(launch)));
  p->add_reasons(absl::StrFormat(
      "gemm_fp8.input_quant_bytes_per_element %.0f: the measured GPUs' (%s): vLLM's "
      "dynamic per-tensor activation quantization reads the BF16 activations twice "
      "(absmax, then the cast) and writes them as FP8 before every FP8 GEMM",
      f->input_quant_bytes_per_element(), spread(quant)));
}

v1::EfficiencyProfile DeriveProfile(const v1::GpuSpec& to,
                                    const std::vector<MeasuredGpu>& measured,
                                    const v1::EfficiencyProfile& elementwise) {
  v1::EfficiencyProfile p = elementwise;
  p.set_gpu(to.name());
  p.set_derived(true);
  p.set_samples(0);
  p.clear_reasons();
  std::vector<double> shortfall, max_efficiency, rows_half, memory, launch;
  std::vector<std::string> names;
  for (const MeasuredGpu& g : measured) {
    names.push_back(g.spec.name());
    max_efficiency.push_back(g.profile.gemm_max_compute_efficiency());
    rows_half.push_back(g.profile.gemm_rows_half());
    memory.push_back(g.profile.gemm_memory_efficiency());
    launch.push_back(g.profile.gemm_launch_s() * 1e6);
    if (g.spec.measured_matmul_efficiency() > 0) {
      shortfall.push_back(g.profile.gemm_max_compute_efficiency() /
                          g.spec.measured_matmul_efficiency());
    }
  }
  const std::string from = absl::StrJoin(names, ", ");
  p.set_derived_from(from);
  const auto& spread = Spread;
  if (to.measured_matmul_efficiency() > 0 && !shortfall.empty()) {
    p.set_gemm_max_compute_efficiency(
        std::min(1.0, to.measured_matmul_efficiency() * Median(shortfall)));
    p.add_reasons(absl::StrFormat(
        "gemm_max_compute_efficiency %.3f = this GPU's best measured matmul efficiency %.3f "
        "(gpu_measured_matmul_tflops.csv: clocks, power limit and tensor-core generation "
        "as they really run) x %.3f, the median ratio of fitted to best-matmul efficiency "
        "on %d measured GPUs (%s): how far vLLM's layer shapes fall short of a maximal GEMM",
        p.gemm_max_compute_efficiency(), to.measured_matmul_efficiency(), Median(shortfall),
        static_cast<int>(shortfall.size()), spread(shortfall)));
  } else {
    p.set_gemm_max_compute_efficiency(Median(max_efficiency));
    p.add_reasons(absl::StrFormat(
        "gemm_max_compute_efficiency %.3f: the median of %d measured GPUs (%s); no "
        "best-matmul measurement of this GPU to place it",
        p.gemm_max_compute_efficiency(), static_cast<int>(max_efficiency.size()),
        spread(max_efficiency)));
  }
  p.set_gemm_rows_half(Median(rows_half));
  p.add_reasons(absl::StrFormat(
      "gemm_rows_half %.1f: the median of the measured GPUs (%s): where a fit puts it near 0 "
      "the memory term alone explains small-row GEMMs; tile shapes are the libraries' and "
      "the spread says how uncertain this number is",
      p.gemm_rows_half(), spread(rows_half)));
  p.set_gemm_memory_efficiency(Median(memory));
  p.add_reasons(absl::StrFormat(
      "gemm_memory_efficiency %.3f: the median of the measured GPUs (%s); small-M GEMMs "
      "stream the weights, and the share of HBM peak a streaming kernel reaches is "
      "similar across HBM generations",
      p.gemm_memory_efficiency(), spread(memory)));
  p.set_gemm_launch_s(Median(launch) * 1e-6);
  p.add_reasons(absl::StrFormat(
      "gemm_launch_s %.2f us: the median of the measured GPUs (%s us), kernels replayed "
      "in a CUDA graph: the fixed cost of a small GEMM (launch, prologue, epilogue)",
      p.gemm_launch_s() * 1e6, spread(launch)));
  DeriveGemmFp8(measured, &p);
  std::vector<double> attention_shortfall, attention_max, attention_half, attention_memory,
      attention_launch, attention_tiles, attention_units;
  for (const MeasuredGpu& g : measured) {
    const v1::AttentionEfficiency& a = g.profile.vllm_attention();
    if (a.prefill_max_compute_efficiency() <= 0) continue;
    attention_max.push_back(a.prefill_max_compute_efficiency());
    attention_half.push_back(a.prefill_tokens_half());
    attention_memory.push_back(a.memory_efficiency());
    attention_launch.push_back(a.launch_s() * 1e6);
    attention_tiles.push_back(a.tiles_half());
    attention_units.push_back(a.units_half());
    if (g.spec.measured_matmul_efficiency() > 0) {
      attention_shortfall.push_back(a.prefill_max_compute_efficiency() /
                                    g.spec.measured_matmul_efficiency());
    }
  }
  p.clear_vllm_attention();
  if (!attention_max.empty()) {
    v1::AttentionEfficiency* a = p.mutable_vllm_attention();
    if (to.measured_matmul_efficiency() > 0 && !attention_shortfall.empty()) {
      a->set_prefill_max_compute_efficiency(
          std::min(1.0, to.measured_matmul_efficiency() * Median(attention_shortfall)));
      p.add_reasons(absl::StrFormat(
          "vllm_attention.prefill_max_compute_efficiency %.3f = best matmul efficiency %.3f x %.3f, "
          "the measured GPUs' median ratio (%s): prefill attention is tensor-core work too",
          a->prefill_max_compute_efficiency(), to.measured_matmul_efficiency(),
          Median(attention_shortfall), spread(attention_shortfall)));
    } else {
      a->set_prefill_max_compute_efficiency(Median(attention_max));
      p.add_reasons(absl::StrFormat(
          "vllm_attention.prefill_max_compute_efficiency %.3f: the measured GPUs' median (%s)",
          a->prefill_max_compute_efficiency(), spread(attention_max)));
    }
    a->set_prefill_tokens_half(Median(attention_half));
    a->set_memory_efficiency(Median(attention_memory));
    a->set_launch_s(Median(attention_launch) * 1e-6);
    a->set_tiles_half(Median(attention_tiles));
    a->set_units_half(Median(attention_units));
    p.add_reasons(absl::StrFormat(
        "vllm_attention.tiles_half %.0f (%s), units_half %.1f (%s): the measured GPUs' medians; "
        "how many query tiles and KV streams it takes to fill the SMs grows with the SM count "
        "(108-148 on the measured GPUs), left unscaled: the spread is wider than that",
        a->tiles_half(), spread(attention_tiles), a->units_half(), spread(attention_units)));
    p.add_reasons(absl::StrFormat(
        "vllm_attention.prefill_tokens_half %.0f (%s), memory_efficiency %.3f (%s), launch %.1f us "
        "(%s us): the measured GPUs' medians; the query tile (64-128 rows) and the paged KV "
        "read are the kernels' design, shared across generations",
        a->prefill_tokens_half(), spread(attention_half), a->memory_efficiency(),
        spread(attention_memory), a->launch_s() * 1e6, spread(attention_launch)));
    a->set_source("derived: see reasons");
  }
  p.add_reasons(absl::StrFormat(
      "norm, activation, rope, residual_add, embedding: %s's fit, as fractions of this "
      "GPU's own HBM bandwidth plus the same fixed time: these kernels stream memory, and "
      "they were measured on no other GPU",
      elementwise.gpu()));
  p.set_source(absl::StrFormat(
      "derived from the datasheet and the fits of %s (no op measurements of this GPU); "
      "reasons per number in efficiency.textproto",
      from));
  return p;
}

absl::StatusOr<std::vector<CollectiveSample>> LoadCollectiveSamples(
    const std::string& network_dir, const std::string& platform, int64_t max_bytes) {
  std::vector<CollectiveSample> samples;
  for (const char* collective : {"all_reduce", "send_recv"}) {
    const std::string file = absl::StrCat(network_dir, "/", platform, "/", collective, ".csv");
    SHARDSIM_ASSIGN_OR_RETURN(CsvTable table, CsvTable::Load(file));
    for (size_t row = 0; row < table.num_rows(); ++row) {
      SHARDSIM_ASSIGN_OR_RETURN(int64_t workers,
                                WholeNumber(table, row, "num_workers", 1, 1 << 20));
      SHARDSIM_ASSIGN_OR_RETURN(int64_t per_node,
                                WholeNumber(table, row, "devices_per_node", 1, 1 << 20));
      SHARDSIM_ASSIGN_OR_RETURN(int64_t size,
                                WholeNumber(table, row, "size", 1, int64_t{1} << 50));
      SHARDSIM_ASSIGN_OR_RETURN(
          double ms,
          Milliseconds(table, row, absl::StrCat("time_stats.", collective, ".median")));
      if (workers != per_node || size > max_bytes || ms <= 0) continue;
      samples.push_back({platform, collective, static_cast<int>(workers), size, ms * 1e-3});
    }
  }
  return samples;
}

absl::StatusOr<std::vector<CollectiveSample>> LoadAicNcclSamples(const std::string& path,
                                                                 const std::string& system,
                                                                 int64_t min_bytes,
                                                                 int64_t max_bytes) {
  SHARDSIM_ASSIGN_OR_RETURN(CsvTable table, CsvTable::Load(path));
  for (const char* column : {"system", "op_name"}) {
    if (!table.HasColumn(column)) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": no column '", column, "'"));
    }
  }
  std::vector<CollectiveSample> samples;
  for (size_t row = 0; row < table.num_rows(); ++row) {
    if (table.Get(row, "system") != system) continue;
    const std::string& op = table.Get(row, "op_name");
    if (op != "all_reduce" && op != "all_gather" && op != "reduce_scatter") continue;
    SHARDSIM_ASSIGN_OR_RETURN(int64_t gpus, WholeNumber(table, row, "num_gpus", 1, 1 << 20));
    SHARDSIM_ASSIGN_OR_RETURN(int64_t bytes, WholeNumber(table, row, "message_size_bytes", 1,
                                                         int64_t{1} << 50));
    SHARDSIM_ASSIGN_OR_RETURN(double seconds, MeasuredSeconds(table, row));
    if (bytes < min_bytes || bytes > max_bytes || seconds <= 0) continue;
    samples.push_back({system, op, static_cast<int>(gpus), bytes, seconds});
  }
  return samples;
}

absl::StatusOr<std::vector<CollectiveSample>> LoadAicCustomAllReduceSamples(
    const std::string& path, const std::string& system, const std::string& backend) {
  SHARDSIM_ASSIGN_OR_RETURN(CsvTable table, CsvTable::Load(path));
  for (const char* column : {"system", "backend", "allreduce_dtype"}) {
    if (!table.HasColumn(column)) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": no column '", column, "'"));
    }
  }
  std::vector<CollectiveSample> samples;
  for (size_t row = 0; row < table.num_rows(); ++row) {
    if (table.Get(row, "system") != system || table.Get(row, "backend") != backend ||
        table.Get(row, "allreduce_dtype") != "bfloat16") {
      continue;
    }
    SHARDSIM_ASSIGN_OR_RETURN(int64_t gpus, WholeNumber(table, row, "num_gpus", 1, 1 << 20));
    SHARDSIM_ASSIGN_OR_RETURN(int64_t elements, WholeNumber(table, row, "message_size_elements",
                                                            1, int64_t{1} << 48));
    SHARDSIM_ASSIGN_OR_RETURN(double seconds, MeasuredSeconds(table, row));
    if (seconds <= 0) continue;
    samples.push_back({system, "custom_all_reduce", static_cast<int>(gpus), 2 * elements, seconds});
  }
  return samples;
}

namespace {

parallel::CommKind KindOf(const CollectiveSample& s) {
  if (s.collective == "all_gather") return parallel::CommKind::kAllGather;
  if (s.collective == "reduce_scatter") return parallel::CommKind::kReduceScatter;
  return parallel::CommKind::kAllReduce;
}

std::vector<int> FirstGpus(int n) {
  std::vector<int> group;
  for (int g = 0; g < n; ++g) group.push_back(g);
  return group;
}

// The tuning entries a collective's step latency and bandwidth factor come from.
constexpr const char* kProtocolKeys[] = {"LL", "LL128", "Simple", "NVLS"};
constexpr size_t kKeys = 4;

size_t KeyIndex(const CollectivePlan& plan) {
  const std::string key = ProtocolKey(plan);
  for (size_t k = 0; k < kKeys; ++k) {
    if (key == kProtocolKeys[k]) return k;
  }
  return 2;
}

// A collective linearised for the fit: its plan's phases and step levels,
// and the slowest flow of any phase by raw route (latency + bytes /
// bandwidth), whose link kind's efficiency it moves at.
struct LinearShape {
  size_t key = 2;
  double latency_steps = 0;  // phases x levels
  double phases = 0;
  double latency = 0;
  double bytes_over_bandwidth = 0;
  std::string kind;
};

LinearShape Linearise(const CollectiveSample& s, const hardware::Cluster& cluster) {
  const std::vector<int> group = FirstGpus(s.num_gpus);
  const parallel::CommKind kind = KindOf(s);
  const CollectivePlan plan = PlanCollective(cluster, group, kind, s.bytes);
  const CollectiveShape shape = ShapeCollective(plan, kind, s.bytes, cluster, group);
  LinearShape l;
  l.key = KeyIndex(plan);
  l.phases = shape.phases;
  l.latency_steps = static_cast<double>(shape.phases) * shape.latency_steps;
  double slowest = -1;
  for (int phase = 0; phase < shape.phases; ++phase) {
    for (const auto& [from, to] : PhaseFlows(shape, cluster, group, phase)) {
      const double t = cluster.RouteLatency(from, to) +
                       shape.flow_bytes / cluster.RouteBandwidth(from, to);
      if (t > slowest) {
        slowest = t;
        l.latency = cluster.RouteLatency(from, to);
        l.bytes_over_bandwidth = shape.flow_bytes / cluster.RouteBandwidth(from, to);
        l.kind = cluster.Bottleneck(from, to).kind;
      }
    }
  }
  return l;
}

}  // namespace

std::vector<CollectiveSample> CustomAllReduceSamples(const std::vector<CollectiveSample>& samples,
                                                     const hardware::Cluster& cluster) {
  std::vector<CollectiveSample> kept;
  for (const CollectiveSample& s : samples) {
    if (s.collective != "custom_all_reduce" || s.num_gpus > cluster.gpus_per_node) continue;
    const CollectivePlan plan = PlanCollective(cluster, FirstGpus(s.num_gpus),
                                               parallel::CommKind::kAllReduce, s.bytes, true);
    if (IsCustomAllReduce(plan.algorithm)) kept.push_back(s);
  }
  return kept;
}

v1::CollectiveTuning FitCustomAllReduce(const std::vector<CollectiveSet>& sets,
                                        v1::CollectiveTuning tuning) {
  for (const CollectiveAlgorithm algorithm :
       {CollectiveAlgorithm::kOneShot, CollectiveAlgorithm::kTwoShot}) {
    const CollectivePlan plan{algorithm, NcclProtocol::kSimple};
    // The closed form is route latency + phases x step + transfer / factor:
    // with no step latency, at factors 1 and 1/2 it gives the transfer.
    auto with_factor = [&](double factor) {
      v1::CollectiveTuning t = tuning;
      t.clear_protocols();
      v1::ProtocolTuning* entry = t.add_protocols();
      entry->set_protocol(ProtocolKey(plan));
      entry->set_step_latency_s(0);
      entry->set_bandwidth_factor(factor);
      return t;
    };
    const v1::CollectiveTuning unit = with_factor(1);
    const v1::CollectiveTuning half = with_factor(0.5);
    std::vector<std::array<double, 2>> rows;
    std::vector<double> targets;
    for (const CollectiveSet& set : sets) {
      for (const CollectiveSample& s : set.samples) {
        if (s.collective != "custom_all_reduce") continue;
        const std::vector<int> group = FirstGpus(s.num_gpus);
        if (PlanCollective(*set.cluster, group, parallel::CommKind::kAllReduce, s.bytes, true)
                .algorithm != algorithm) {
          continue;
        }
        const double at_unit = CustomAllReduceTimeAlone(*set.cluster, unit, group, plan, s.bytes);
        const double at_half = CustomAllReduceTimeAlone(*set.cluster, half, group, plan, s.bytes);
        const double transfer = at_half - at_unit;
        const double route = at_unit - transfer;
        const double phases = algorithm == CollectiveAlgorithm::kOneShot ? 1 : 2;
        const double t = s.measured_s;
        rows.push_back({phases / t, transfer / t});
        targets.push_back((t - route) / t);
      }
    }
    if (rows.size() < 2) continue;
    std::array<double, 2> x = LeastSquares<2>(rows, targets);
    if (x[0] < 0 || x[1] <= 0) {
      // No room for a latency (or the transfer is lost in it): keep the
      // term the data can carry and refit the other alone.
      std::vector<std::array<double, 2>> one;
      for (const auto& r : rows) one.push_back({x[0] < 0 ? 0.0 : r[0], x[0] < 0 ? r[1] : 0.0});
      x = LeastSquares<2>(one, targets);
      if (x[1] <= 0) x[1] = 1;
      x[0] = std::max(0.0, x[0]);
    }
    v1::ProtocolTuning* entry = nullptr;
    for (v1::ProtocolTuning& p : *tuning.mutable_protocols()) {
      if (p.protocol() == ProtocolKey(plan)) entry = &p;
    }
    if (entry == nullptr) entry = tuning.add_protocols();
    entry->set_protocol(ProtocolKey(plan));
    entry->set_step_latency_s(x[0]);
    entry->set_bandwidth_factor(1 / x[1]);
  }
  return tuning;
}

double PredictCollective(const CollectiveSample& sample, const hardware::Cluster& cluster,
                         const v1::CollectiveTuning& tuning) {
  if (sample.collective == "custom_all_reduce") {
    return CollectiveTimeAlone(cluster, tuning, FirstGpus(sample.num_gpus),
                               parallel::CommKind::kAllReduce, sample.bytes, true);
  }
  if (sample.collective == "send_recv") {
    const double efficiency =
        tuning.p2p_bandwidth_efficiency() > 0 ? tuning.p2p_bandwidth_efficiency() : 1;
    return tuning.p2p_launch_s() + cluster.RouteLatency(0, 1) +
           static_cast<double>(sample.bytes) / (cluster.RouteBandwidth(0, 1) * efficiency);
  }
  return CollectiveTimeAlone(cluster, tuning, FirstGpus(sample.num_gpus), KindOf(sample),
                             sample.bytes);
}

v1::CollectiveTuning FitCollectives(const std::vector<CollectiveSet>& sets) {
  // The link kinds that bound some collective, most common first (ties by name).
  std::map<std::string, int> counts;
  for (const CollectiveSet& set : sets) {
    for (const CollectiveSample& s : set.samples) {
      if (s.collective == "send_recv") continue;
      ++counts[Linearise(s, *set.cluster).kind];
    }
  }
  std::vector<std::string> kinds;
  for (const auto& [kind, count] : counts) kinds.push_back(kind);
  std::stable_sort(kinds.begin(), kinds.end(), [&](const std::string& a, const std::string& b) {
    return counts[a] > counts[b];
  });
  constexpr size_t kMaxKinds = 2;
  if (kinds.size() > kMaxKinds) kinds.resize(kMaxKinds);

  // t - phases x latency = launch + sum over protocols [p] x steps x step_p
  //   + sum over (kind, protocol) [k, p] x phases x bytes / bw x (1/eff_kp),
  // each row divided by t so the fit weighs relative error. Columns of a
  // protocol or kind no sample has stay 0 and are left out below.
  // Send/recv rows fit the point-to-point pair alone:
  // t - latency = launch + bytes / bw x (1/eff).
  constexpr size_t kColumns = 1 + kKeys + kMaxKinds * kKeys;
  std::vector<std::array<double, kColumns>> rows;
  std::vector<double> targets;
  std::vector<std::array<double, 2>> p2p_rows;
  std::vector<double> p2p_targets;
  std::array<int, kMaxKinds * kKeys> seen{};
  std::array<int, kKeys> key_seen{};
  // A protocol that too few samples run cannot be told apart from the
  // launch: its samples are fitted as Simple's, and it gets no entry (it
  // then runs at the tuning's step latency and a factor of 1, Simple's).
  constexpr int kMinSamplesPerProtocol = 8;
  std::array<int, kKeys> key_count{};
  for (const CollectiveSet& set : sets) {
    for (const CollectiveSample& s : set.samples) {
      if (s.collective != "send_recv") ++key_count[Linearise(s, *set.cluster).key];
    }
  }
  for (const CollectiveSet& set : sets) {
    for (const CollectiveSample& s : set.samples) {
      const double t = s.measured_s;
      if (s.collective == "send_recv") {
        const double bandwidth = set.cluster->RouteBandwidth(0, 1);
        p2p_rows.push_back({1 / t, static_cast<double>(s.bytes) / bandwidth / t});
        p2p_targets.push_back((t - set.cluster->RouteLatency(0, 1)) / t);
        continue;
      }
      LinearShape l = Linearise(s, *set.cluster);
      if (key_count[l.key] < kMinSamplesPerProtocol) l.key = 2;
      std::array<double, kColumns> row{};
      row[0] = 1 / t;
      row[1 + l.key] = l.latency_steps / t;
      ++key_seen[l.key];
      for (size_t k = 0; k < kinds.size(); ++k) {
        if (kinds[k] != l.kind) continue;
        row[1 + kKeys + k * kKeys + l.key] = l.phases * l.bytes_over_bandwidth / t;
        ++seen[k * kKeys + l.key];
      }
      rows.push_back(row);
      targets.push_back((t - l.phases * l.latency) / t);
    }
  }
  const std::array<double, kColumns> x = LeastSquares<kColumns>(rows, targets);
  auto efficiency = [](double inverse) { return inverse > 0 ? std::min(1.0, 1 / inverse) : 1.0; };
  v1::CollectiveTuning tuning;
  tuning.set_launch_s(std::max(0.0, x[0]));
  // Each kind's efficiency is Simple's on it (else its most used protocol's).
  std::array<double, kMaxKinds> kind_efficiency{};
  std::array<size_t, kMaxKinds> kind_reference{};
  for (size_t k = 0; k < kinds.size(); ++k) {
    size_t reference = 2;
    if (seen[k * kKeys + 2] == 0) {
      for (size_t p = 0; p < kKeys; ++p) {
        if (seen[k * kKeys + p] > seen[k * kKeys + reference]) reference = p;
      }
    }
    kind_reference[k] = reference;
    kind_efficiency[k] = efficiency(x[1 + kKeys + k * kKeys + reference]);
    v1::LinkKindEfficiency* e = tuning.add_link_kinds();
    e->set_kind(kinds[k]);
    e->set_bandwidth_efficiency(kind_efficiency[k]);
  }
  if (!kinds.empty()) tuning.set_bandwidth_efficiency(kind_efficiency[0]);
  for (size_t p = 0; p < kKeys; ++p) {
    if (key_seen[p] == 0) continue;
    v1::ProtocolTuning* entry = tuning.add_protocols();
    entry->set_protocol(kProtocolKeys[p]);
    entry->set_step_latency_s(std::max(0.0, x[1 + p]));
    // The factor on the most common kind that runs this protocol.
    double factor = 1;
    for (size_t k = 0; k < kinds.size(); ++k) {
      if (seen[k * kKeys + p] == 0) continue;
      factor = efficiency(x[1 + kKeys + k * kKeys + p]) /
               efficiency(x[1 + kKeys + k * kKeys + kind_reference[k]]);
      break;
    }
    entry->set_bandwidth_factor(factor);
    if (p == 2) tuning.set_step_latency_s(entry->step_latency_s());
  }
  if (!p2p_rows.empty()) {
    const std::array<double, 2> p = LeastSquares<2>(p2p_rows, p2p_targets);
    tuning.set_p2p_launch_s(std::max(0.0, p[0]));
    tuning.set_p2p_bandwidth_efficiency(efficiency(p[1]));
  }
  return tuning;
}

ErrorSummary Summarize(std::vector<double> errors) {
  ErrorSummary summary;
  summary.count = static_cast<int>(errors.size());
  if (errors.empty()) return summary;
  std::sort(errors.begin(), errors.end());
  auto at = [&](double q) {
    const double index = q * static_cast<double>(errors.size() - 1);
    const size_t lo = static_cast<size_t>(std::floor(index));
    const size_t hi = std::min(errors.size() - 1, lo + 1);
    return errors[lo] + (index - static_cast<double>(lo)) * (errors[hi] - errors[lo]);
  };
  summary.median = at(0.5);
  summary.p90 = at(0.9);
  return summary;
}

ErrorSummary SummarizeSigned(const std::vector<double>& signed_errors) {
  std::vector<double> magnitudes;
  magnitudes.reserve(signed_errors.size());
  for (double e : signed_errors) magnitudes.push_back(std::fabs(e));
  ErrorSummary summary = Summarize(magnitudes);
  ErrorSummary sorted = Summarize(signed_errors);  // its median is the signed one
  summary.signed_median = sorted.median;
  return summary;
}

}  // namespace shardsim::cost
