#include "sim/serving/requests.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "sim/base/csv.h"
#include "sim/base/status_macros.h"

namespace shardsim::serving {
namespace {

// Longer than any model's context: a length past it is a typo.
constexpr int64_t kMaxTokens = int64_t{1} << 24;
constexpr int64_t kMaxRequests = int64_t{1} << 32;

absl::Status CheckLength(const v1::LengthDistribution& d, const std::string& field,
                         const FieldLocator& where) {
  if (d.mean() < 1 || d.mean() > kMaxTokens) {
    return where.Error(field + ".mean", absl::StrCat("must be from 1 to ", kMaxTokens, " tokens"));
  }
  if (!(d.stddev() >= 0 && d.stddev() <= 1e9)) {
    return where.Error(field + ".stddev", "must be a non-negative number");
  }
  if (d.min() < 0 || d.max() < 0 || d.max() > kMaxTokens || (d.max() > 0 && d.max() < d.min())) {
    return where.Error(field, absl::StrCat("min and max must satisfy 0 <= min <= max <= ", kMaxTokens));
  }
  if (d.kind() == v1::LengthDistribution::UNIFORM && d.max() == 0) {
    return where.Error(field + ".max", "a uniform length needs max");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckServing(const v1::Serving& s, const FieldLocator& where) {
  const v1::ArrivalProcess& a = s.arrival();
  if (a.kind() != v1::ArrivalProcess::ALL_AT_ONCE && s.trace().file().empty() &&
      !(a.rate_per_s() > 0 && a.rate_per_s() <= 1e9)) {
    return where.Error("serving.arrival.rate_per_s", "must be a positive rate per second");
  }
  if (a.kind() == v1::ArrivalProcess::GAMMA && !(a.cv() > 0 && a.cv() <= 100)) {
    return where.Error("serving.arrival.cv", "must be positive for gamma arrivals");
  }
  if (s.num_requests() < 0 || s.num_requests() > kMaxRequests) {
    return where.Error("serving.num_requests", absl::StrCat("must be from 1 to ", kMaxRequests));
  }
  if (s.trace().file().empty()) {
    SHARDSIM_RETURN_IF_ERROR(CheckLength(s.prompt_len(), "serving.prompt_len", where));
    SHARDSIM_RETURN_IF_ERROR(CheckLength(s.output_len(), "serving.output_len", where));
  }
  const v1::SchedulerConfig& c = s.scheduler();
  if (c.max_num_seqs() < 0 || c.max_num_seqs() > 1'000'000) {
    return where.Error("serving.scheduler.max_num_seqs", "must be from 1 to 1,000,000");
  }
  if (c.max_num_batched_tokens() < 0 || c.max_num_batched_tokens() > kMaxTokens) {
    return where.Error("serving.scheduler.max_num_batched_tokens",
                       absl::StrCat("must be from 1 to ", kMaxTokens));
  }
  if (!(c.gpu_memory_utilization() >= 0 && c.gpu_memory_utilization() <= 1)) {
    return where.Error("serving.scheduler.gpu_memory_utilization", "must be in (0, 1]");
  }
  if (c.num_gpu_blocks_override() < 0 || c.num_gpu_blocks_override() > int64_t{1} << 40) {
    return where.Error("serving.scheduler.num_gpu_blocks_override", "must not be negative");
  }
  if (!(c.swap_space_gib() >= 0 && c.swap_space_gib() <= 1e6)) {
    return where.Error("serving.scheduler.swap_space_gib", "must be from 0 to 1,000,000 GiB");
  }
  if (c.block_size() < 0 || c.block_size() > 1 << 16) {
    return where.Error("serving.scheduler.block_size", "must be from 1 to 65536 tokens");
  }
  for (const auto& [value, field] : {std::pair{s.slo().ttft_s(), "ttft_s"},
                                     std::pair{s.slo().tpot_s(), "tpot_s"},
                                     std::pair{s.slo().e2e_s(), "e2e_s"}}) {
    if (!(value >= 0 && value < 1e9)) {
      return where.Error(absl::StrCat("serving.slo.", field), "must be a non-negative time");
    }
  }
  return absl::OkStatus();
}

SyntheticSource::SyntheticSource(const v1::Serving& serving)
    : serving_(serving),
      count_(serving.num_requests() > 0 ? serving.num_requests() : kDefaultNumRequests),
      random_(serving.seed()) {}

int64_t SyntheticSource::Length(const v1::LengthDistribution& d) {
  double value = static_cast<double>(d.mean());
  switch (d.kind()) {
    case v1::LengthDistribution::UNIFORM:
      value = static_cast<double>(
          std::uniform_int_distribution<int64_t>(std::max<int64_t>(1, d.min()), d.max())(random_));
      break;
    case v1::LengthDistribution::NORMAL:
      value = std::normal_distribution<double>(static_cast<double>(d.mean()), d.stddev())(random_);
      break;
    case v1::LengthDistribution::LOGNORMAL:
      // `mean` is the median: exp(mu) = median.
      value = std::lognormal_distribution<double>(std::log(static_cast<double>(d.mean())),
                                                  d.stddev())(random_);
      break;
    default:
      break;
  }
  const double low = static_cast<double>(std::max<int64_t>(1, d.min()));
  const double high = static_cast<double>(d.max() > 0 ? d.max() : kMaxTokens);
  return static_cast<int64_t>(std::llround(std::clamp(value, low, high)));
}

std::optional<Request> SyntheticSource::Next() {
  if (next_id_ >= count_) return std::nullopt;
  const v1::ArrivalProcess& a = serving_.arrival();
  const double mean_gap = a.rate_per_s() > 0 ? 1 / a.rate_per_s() : 0;
  switch (a.kind()) {
    case v1::ArrivalProcess::ALL_AT_ONCE:
      break;
    case v1::ArrivalProcess::FIXED_INTERVAL:
      // From the index, not by adding gaps: no rounding drift.
      clock_s_ = static_cast<double>(next_id_) * mean_gap;
      break;
    case v1::ArrivalProcess::GAMMA: {
      // Shape k = 1 / cv^2 and scale mean / k give the mean gap and its cv.
      const double shape = 1 / (a.cv() * a.cv());
      clock_s_ += std::gamma_distribution<double>(shape, mean_gap / shape)(random_);
      break;
    }
    default:
      clock_s_ += std::exponential_distribution<double>(a.rate_per_s())(random_);
      break;
  }
  Request r;
  r.id = next_id_++;
  r.arrival_s = clock_s_;
  r.prompt_tokens = Length(serving_.prompt_len());
  r.output_tokens = Length(serving_.output_len());
  return r;
}

std::optional<Request> TraceSource::Next() {
  if (next_ >= requests_.size()) return std::nullopt;
  return requests_[next_++];
}

absl::StatusOr<std::vector<Request>> ReadTrace(const std::string& path,
                                               const v1::RequestTrace& trace) {
  SHARDSIM_ASSIGN_OR_RETURN(const CsvTable table, CsvTable::Load(path));
  const std::string arrival = trace.arrival_column().empty() ? "arrived_at" : trace.arrival_column();
  const std::string prompt =
      trace.prompt_column().empty() ? "num_prefill_tokens" : trace.prompt_column();
  const std::string output =
      trace.output_column().empty() ? "num_decode_tokens" : trace.output_column();
  for (const std::string& column : {arrival, prompt, output}) {
    if (!table.HasColumn(column)) {
      return absl::InvalidArgumentError(absl::StrCat(path, ":1: no column '", column, "'"));
    }
  }
  std::vector<Request> requests;
  double last = 0;
  for (size_t row = 0; row < table.num_rows(); ++row) {
    // Each message names the cell: file:line:column (CsvTable counts
    // physical lines) and the column's name.
    const auto bad = [&](const std::string& column, const auto&... what) {
      return absl::InvalidArgumentError(
          absl::StrCat(table.Where(row, column), ": ", column, ": ", what...));
    };
    SHARDSIM_ASSIGN_OR_RETURN(const double at, table.Number(row, arrival));
    SHARDSIM_ASSIGN_OR_RETURN(const double p, table.Number(row, prompt));
    SHARDSIM_ASSIGN_OR_RETURN(const double o, table.Number(row, output));
    if (!(at >= 0 && at < 1e9)) return bad(arrival, "not a time in seconds");
    if (at < last) return bad(arrival, "goes back in time (", at, " after ", last, ")");
    for (const auto& [value, column] : {std::pair{p, prompt}, std::pair{o, output}}) {
      if (!(value >= 1 && value <= static_cast<double>(kMaxTokens)) || value != std::floor(value)) {
        return bad(column, "must be a whole number of tokens from 1 to ", kMaxTokens);
      }
    }
    last = at;
    requests.push_back({static_cast<int64_t>(row), at, static_cast<int64_t>(p),
                        static_cast<int64_t>(o)});
  }
  return requests;
}

absl::StatusOr<std::unique_ptr<RequestSource>> MakeSource(const v1::Serving& serving,
                                                          const std::string& scenario_path) {
  if (serving.trace().file().empty()) {
    return std::unique_ptr<RequestSource>(new SyntheticSource(serving));
  }
  SHARDSIM_ASSIGN_OR_RETURN(
      std::vector<Request> requests,
      ReadTrace(ResolveRelative(scenario_path, serving.trace().file()), serving.trace()));
  return std::unique_ptr<RequestSource>(new TraceSource(std::move(requests)));
}

}  // namespace shardsim::serving
