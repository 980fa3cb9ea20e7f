#include "sim/search/planner.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <numeric>
#include <set>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/json_util.h"
#include "sim/base/config_file.h"
#include "sim/base/fork_pool.h"
#include "sim/base/status_macros.h"
#include "sim/base/units.h"
#include "sim/scenario/overrides.h"
#include "sim/scenario/scenario.h"
#include "sim/search/estimate.h"
#include "sim/serving/max_rate.h"

namespace shardsim::search {
namespace {

using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

constexpr char kResultsFile[] = "simulated.jsonl";
constexpr char kChosenFile[] = "chosen.textproto";
constexpr char kCandidatesFile[] = "candidates.csv";
// Candidates shown as the nearest misses when nothing meets the SLO.
constexpr int kClosest = 5;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// ---- The result file ----------------------------------------------------------
// Line 1: {"plan": NAME, "identity": HASH}; then one SimulatedRow as JSON per
// line, appended with one write as each candidate finishes.

std::string HeaderLine(const PlanSpec& spec) {
  return absl::StrFormat("{\"plan\":\"%s\",\"identity\":\"%s\"}\n", absl::CEscape(spec.name),
                         spec.identity);
}

class ResultLog {
 public:
  static absl::StatusOr<std::unique_ptr<ResultLog>> Open(const std::string& path,
                                                         const PlanSpec& spec) {
    std::unique_ptr<ResultLog> log(new ResultLog);
    log->path_ = path;
    const std::string header = HeaderLine(spec);
    std::string text;
    if (ReadFile(path, &text).ok() && !text.empty()) {
      if (text.compare(0, header.size(), header) != 0) {
        return absl::FailedPreconditionError(absl::StrCat(
            path, ": written by another plan (or another version of this one): "
                  "move it away or choose another --out"));
      }
      // A torn last line (the plan was killed mid-write) is cut off.
      const size_t end = text.rfind('\n') + 1;
      if (end < text.size()) {
        if (::truncate(path.c_str(), static_cast<off_t>(end)) != 0) {
          return absl::InternalError(absl::StrCat(path, ": ", std::strerror(errno)));
        }
        text.resize(end);
      }
      int line_no = 1;
      for (absl::string_view line : absl::StrSplit(
               absl::string_view(text).substr(header.size()), '\n', absl::SkipEmpty())) {
        ++line_no;
        v1::SimulatedRow row;
        if (!google::protobuf::util::JsonStringToMessage(std::string(line), &row).ok()) {
          return absl::InvalidArgumentError(
              absl::StrCat(path, ":", line_no, ": not a result row of this plan"));
        }
        log->rows_[row.key()] = row.result();
      }
    } else {
      std::ofstream out(path, std::ios::trunc);
      out << header;
      if (!out) return absl::InternalError(absl::StrCat("cannot write ", path));
    }
    log->fd_ = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    if (log->fd_ < 0) {
      return absl::InternalError(absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
    }
    return log;
  }
  ~ResultLog() {
    if (fd_ >= 0) ::close(fd_);
  }

  const std::map<std::string, v1::SimulatedCandidate>& rows() const { return rows_; }

  absl::Status Append(const std::string& key, const v1::SimulatedCandidate& result) {
    v1::SimulatedRow row;
    row.set_key(key);
    *row.mutable_result() = result;
    std::string line;
    google::protobuf::util::JsonPrintOptions options;
    options.preserve_proto_field_names = true;
    if (!google::protobuf::util::MessageToJsonString(row, &line, options).ok()) {
      return absl::InternalError(absl::StrCat(path_, ": cannot write a result row"));
    }
    line += '\n';
    size_t at = 0;
    while (at < line.size()) {
      const ssize_t n = ::write(fd_, line.data() + at, line.size() - at);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return absl::InternalError(absl::StrCat(path_, ": ", std::strerror(errno)));
      at += static_cast<size_t>(n);
    }
    rows_[key] = result;
    return absl::OkStatus();
  }

 private:
  std::string path_;
  int fd_ = -1;
  std::map<std::string, v1::SimulatedCandidate> rows_;
};

// ---- Judging a simulated candidate ------------------------------------------------

double Score(v1::Plan::Objective objective, bool serving, const v1::PlanCandidate& c) {
  switch (objective) {
    case v1::Plan::MIN_COST_PER_MILLION_TOKENS:
      return -c.cost_per_million_tokens();
    case v1::Plan::FEWEST_GPUS: {
      const double cost = c.cost_per_million_tokens();
      return -c.num_gpus() - (cost > 0 ? cost / (1 + cost) : 0) * 0.5;
    }
    default:
      return serving ? c.max_rate_per_s() / c.num_gpus() : c.output_tokens_per_s_per_gpu();
  }
}

void AddMiss(const char* metric, double value, double target, v1::PlanCandidate* c) {
  if (target <= 0 || value <= target) return;
  v1::SloMiss* m = c->add_misses();
  m->set_metric(metric);
  m->set_value(value);
  m->set_target(target);
  m->set_over_by(value / target - 1);
}

double CostPerMillion(double price, int gpus, double tokens_per_s) {
  return price > 0 && tokens_per_s > 0 ? price * gpus * 1e6 / (tokens_per_s * 3600) : 0;
}

// Fills the simulation fields of `c` from `r`.
void Judge(const PlanSpec& spec, const v1::Slo& slo, double target_rate,
           const v1::SimulatedCandidate& r, v1::PlanCandidate* c) {
  if (r.error_code() != 0) {
    c->set_status("invalid");
    c->set_reason(r.error());
    return;
  }
  c->set_simulated(true);
  const v1::Plan& plan = spec.plan;
  if (!spec.serving) {
    const v1::RunReport& run = r.run();
    c->set_ttft_s(run.ttft().p99_s());
    c->set_tpot_s(run.tpot().p99_s());
    c->set_output_tokens_per_s_per_gpu(run.output_tokens_per_s_per_gpu());
    c->set_cost_per_million_tokens(run.cost_per_million_output_tokens());
    if (!run.fits()) {
      v1::SloMiss* m = c->add_misses();
      m->set_metric("memory");
    }
    AddMiss("ttft_p99", c->ttft_s(), plan.static_ttft_s(), c);
    AddMiss("tpot_p99", c->tpot_s(), plan.static_tpot_s(), c);
  } else if (r.has_max_rate()) {
    const v1::MaxRateReport& mr = r.max_rate();
    c->set_max_rate_per_s(mr.max_rate_per_s());
    c->set_rate_per_s(mr.max_rate_per_s());
    if (mr.max_rate_per_s() > 0) {
      const v1::RateProbe at = serving::JudgeSlo(mr.at_max(), slo);
      c->set_ttft_s(at.ttft_s());
      c->set_tpot_s(at.tpot_s());
      c->set_output_tokens_per_s_per_gpu(mr.at_max().output_tokens_per_s_per_gpu());
      c->set_cost_per_million_tokens(CostPerMillion(c->price_per_hour(), c->num_gpus(),
                                                    mr.at_max().output_tokens_per_s()));
    } else if (mr.probes_size() > 0) {
      // Nothing met: the misses at the lowest rate probed.
      const v1::RateProbe* lowest = &mr.probes(0);
      for (const v1::RateProbe& p : mr.probes()) {
        if (p.rate_per_s() < lowest->rate_per_s()) lowest = &p;
      }
      c->set_rate_per_s(lowest->rate_per_s());
      c->set_ttft_s(lowest->ttft_s());
      c->set_tpot_s(lowest->tpot_s());
      for (const v1::SloMiss& m : lowest->misses()) *c->add_misses() = m;
    }
  } else {
    const v1::RateProbe at = serving::JudgeSlo(r.serve(), slo);
    c->set_rate_per_s(target_rate);
    c->set_ttft_s(at.ttft_s());
    c->set_tpot_s(at.tpot_s());
    c->set_output_tokens_per_s_per_gpu(r.serve().output_tokens_per_s_per_gpu());
    c->set_cost_per_million_tokens(
        CostPerMillion(c->price_per_hour(), c->num_gpus(), r.serve().output_tokens_per_s()));
    for (const v1::SloMiss& m : at.misses()) *c->add_misses() = m;
  }
  bool meets = c->misses_size() == 0;
  if (spec.serving && r.has_max_rate() && r.max_rate().max_rate_per_s() <= 0) meets = false;
  if (plan.objective() == v1::Plan::MIN_COST_PER_MILLION_TOKENS &&
      c->cost_per_million_tokens() <= 0 && meets) {
    meets = false;
    v1::SloMiss* m = c->add_misses();
    m->set_metric("price");
  }
  c->set_meets_slo(meets);
  c->set_score(Score(plan.objective(), spec.serving, *c));
}

std::string MissWords(const v1::PlanCandidate& c) {
  std::vector<std::string> words;
  for (const v1::SloMiss& m : c.misses()) {
    if (m.metric() == "memory") {
      words.push_back("the replay's peak memory does not fit");
    } else if (m.metric() == "price") {
      words.push_back("no GPU price (set one in the plan's prices)");
    } else if (m.metric() == "refused") {
      words.push_back(absl::StrFormat("%g requests refused", m.value()));
    } else if (m.metric() == "completed") {
      words.push_back("no request completed");
    } else {
      words.push_back(absl::StrFormat("%s %s > %s (+%.1f%%)", m.metric(),
                                      FormatSeconds(m.value()), FormatSeconds(m.target()),
                                      100 * m.over_by()));
    }
  }
  if (words.empty()) words.push_back("no rate met it");
  return absl::StrCat("misses the SLO: ", absl::StrJoin(words, ", "));
}

// How far a simulated candidate is from meeting the SLO: its worst miss.
double Distance(const v1::PlanCandidate& c) {
  double worst = 0;
  for (const v1::SloMiss& m : c.misses()) {
    worst = std::max(worst, m.metric() == "memory" || m.metric() == "price" ||
                                    m.metric() == "completed"
                                ? 1e9
                                : m.over_by());
  }
  return c.misses_size() == 0 ? 1e12 : worst;
}

// ---- The chosen scenario -----------------------------------------------------------

std::string Rebase(const std::string& base_scenario, const std::string& out_dir,
                   const std::string& file) {
  if (file.empty() || file[0] == '/') return file;
  const fs::path target = fs::weakly_canonical(fs::absolute(ResolveRelative(base_scenario, file)));
  const fs::path dir = fs::weakly_canonical(fs::absolute(out_dir));
  return target.lexically_relative(dir).string();
}

absl::StatusOr<std::string> WriteChosen(const PlanSpec& spec, const v1::PlanCandidate& c,
                                        const std::string& out_dir) {
  v1::Scenario s;
  FieldLocator where;
  SHARDSIM_RETURN_IF_ERROR(LoadTextProto(spec.base_scenario, &s, &where));
  for (const std::string& text : c.overrides()) {
    SHARDSIM_ASSIGN_OR_RETURN(scenario::Override o, scenario::ParseOverride(text));
    SHARDSIM_RETURN_IF_ERROR(scenario::ApplyOverride(o, &s));
  }
  if (spec.serving && c.max_rate_per_s() > 0) {
    s.mutable_serving()->mutable_arrival()->set_rate_per_s(c.max_rate_per_s());
  }
  s.set_model_file(Rebase(spec.base_scenario, out_dir, s.model_file()));
  s.set_topology_file(Rebase(spec.base_scenario, out_dir, s.topology_file()));
  if (s.has_serving() && !s.serving().trace().file().empty()) {
    s.mutable_serving()->mutable_trace()->set_file(
        Rebase(spec.base_scenario, out_dir, s.serving().trace().file()));
  }
  if (!s.topology().gpu_catalog_file().empty()) {
    s.mutable_topology()->set_gpu_catalog_file(
        Rebase(spec.base_scenario, out_dir, s.topology().gpu_catalog_file()));
  }
  s.set_description(absl::StrCat("chosen by shardsim plan ", spec.name, ": candidate ",
                                 c.index(), " (", c.key(), ")"));
  std::string text;
  google::protobuf::TextFormat::Printer printer;
  if (!printer.PrintToString(s, &text)) return absl::InternalError("cannot print the scenario");
  const std::string path = (fs::path(out_dir) / kChosenFile).string();
  std::ofstream out(path, std::ios::trunc);
  out << "# proto-file: sim/proto/scenario.proto\n# proto-message: shardsim.v1.Scenario\n"
      << "# Written by `shardsim plan " << spec.path << "`.\n"
      << text;
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path));
  return path;
}

std::string Reproduce(const PlanSpec& spec, const v1::PlanCandidate& c) {
  std::string command = absl::StrCat("shardsim ", spec.serving ? "serve " : "run ",
                                     spec.base_scenario);
  for (const std::string& o : c.overrides()) {
    // pools[0].role=... is a glob pattern to a shell: quoted.
    absl::StrAppend(&command, " --set ",
                    o.find('[') != std::string::npos ? absl::StrCat("'", o, "'") : o);
  }
  if (spec.serving && spec.plan.objective() != v1::Plan::MIN_COST_PER_MILLION_TOKENS &&
      spec.plan.objective() != v1::Plan::FEWEST_GPUS) {
    absl::StrAppend(&command, " --find-max-rate");
  }
  return command;
}

// A candidate in a few words, as scenario::DeploymentName writes plans:
// "#12 P tp2x2 + D tp2x1 on 6 GPUs" or "#3 tp4x2 on 8 GPUs".
std::string Label(const v1::PlanCandidate& c) {
  return absl::StrFormat("#%d %s on %d GPUs", c.index(),
                         c.deployment().empty()
                             ? absl::StrCat("tp", c.tp(), c.pp() > 1 ? absl::StrCat("pp", c.pp()) : "",
                                            "x", c.dp())
                             : c.deployment(),
                         c.num_gpus());
}

// Which kind won, pools or a plan without pools, and by how much:
// GPUs, cost per million output tokens, and the SLO percentile's TTFT/TPOT.
// `pools_won`: the pair comes first in the simulation's order (it is the
// chosen one).
std::string KindsNote(const v1::PlanCandidate* mixed, const v1::PlanCandidate* pools,
                      bool pools_won) {
  if (mixed == nullptr && pools == nullptr) {
    return "neither a plan without pools nor a prefill/decode pool pair meets the SLO";
  }
  if (mixed == nullptr || pools == nullptr) {
    const v1::PlanCandidate* only = mixed != nullptr ? mixed : pools;
    return absl::StrCat(mixed != nullptr ? "a plan without pools" : "prefill/decode pools",
                        " won: ", Label(*only), "; no simulated ",
                        mixed != nullptr ? "prefill/decode pool pair" : "plan without pools",
                        " meets the SLO");
  }
  const v1::PlanCandidate& won = pools_won ? *pools : *mixed;
  const v1::PlanCandidate& lost = pools_won ? *mixed : *pools;
  std::string cost;
  if (won.cost_per_million_tokens() > 0 && lost.cost_per_million_tokens() > 0) {
    cost = absl::StrFormat(", $%.3g against $%.3g per million output tokens (%+.1f%%)",
                           won.cost_per_million_tokens(), lost.cost_per_million_tokens(),
                           100 * (won.cost_per_million_tokens() / lost.cost_per_million_tokens() -
                                  1));
  }
  return absl::StrFormat(
      "%s won: %s against the best %s, %s: %+d GPUs%s; TTFT %s against %s, TPOT %s against %s",
      pools_won ? "prefill/decode pools" : "a plan without pools", Label(won),
      pools_won ? "plan without pools" : "prefill/decode pool pair", Label(lost),
      won.num_gpus() - lost.num_gpus(), cost, FormatSeconds(won.ttft_s()),
      FormatSeconds(lost.ttft_s()), FormatSeconds(won.tpot_s()), FormatSeconds(lost.tpot_s()));
}

}  // namespace

double Spearman(const std::vector<double>& x, const std::vector<double>& y) {
  const size_t n = x.size();
  if (n < 2 || y.size() != n) return 0;
  auto ranks = [n](const std::vector<double>& v) {
    std::vector<size_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return v[a] < v[b]; });
    std::vector<double> r(n);
    for (size_t i = 0; i < n;) {
      size_t j = i;
      while (j + 1 < n && v[order[j + 1]] == v[order[i]]) ++j;
      const double average = (static_cast<double>(i) + static_cast<double>(j)) / 2 + 1;
      for (size_t k = i; k <= j; ++k) r[order[k]] = average;
      i = j + 1;
    }
    return r;
  };
  const std::vector<double> rx = ranks(x), ry = ranks(y);
  const double mean = (static_cast<double>(n) + 1) / 2;
  double sxy = 0, sxx = 0, syy = 0;
  for (size_t i = 0; i < n; ++i) {
    sxy += (rx[i] - mean) * (ry[i] - mean);
    sxx += (rx[i] - mean) * (rx[i] - mean);
    syy += (ry[i] - mean) * (ry[i] - mean);
  }
  return sxx > 0 && syy > 0 ? sxy / std::sqrt(sxx * syy) : 0;
}

std::vector<size_t> ParetoFront(const std::vector<std::pair<double, double>>& points) {
  std::vector<size_t> front;
  for (size_t i = 0; i < points.size(); ++i) {
    bool dominated = false;
    for (size_t j = 0; j < points.size() && !dominated; ++j) {
      if (j == i) continue;
      const auto& a = points[j];
      const auto& b = points[i];
      dominated = a.first >= b.first && a.second <= b.second &&
                  (a.first > b.first || a.second < b.second);
    }
    if (!dominated) front.push_back(i);
  }
  return front;
}

absl::StatusOr<PlanRun> RunPlan(const PlanSpec& spec, const PlanOptions& options) {
  PlanRun run;
  v1::PlanReport& report = run.report;
  const v1::Plan& plan = spec.plan;
  report.set_plan(spec.name);
  report.set_description(plan.description());
  report.set_objective(ObjectiveName(plan.objective()));
  report.set_mode(spec.serving ? "serving" : "static");
  report.set_chosen(-1);
  const bool find_max_rate =
      spec.serving && plan.objective() != v1::Plan::MIN_COST_PER_MILLION_TOKENS &&
      plan.objective() != v1::Plan::FEWEST_GPUS;
  // The SLO the candidates are judged by.
  v1::Slo slo;
  {
    absl::StatusOr<scenario::LoadedScenario> base = scenario::LoadScenario(
        spec.base_scenario, {plan.set().begin(), plan.set().end()});
    if (!base.ok()) return base.status();
    if (spec.serving) {
      slo = base->scenario.serving().slo();
      if (find_max_rate) {
        absl::Status checked = serving::CheckRateSearch(base->scenario.serving(), base->where);
        if (!checked.ok()) {
          return spec.where.Error("objective", absl::StrCat("MAX_GOODPUT_PER_GPU searches the "
                                                            "rate: ",
                                                            checked.message()));
        }
      }
      report.set_slo(absl::StrCat(serving::SloText(slo), ", no request refused"));
    } else {
      slo.set_ttft_s(plan.static_ttft_s());
      slo.set_tpot_s(plan.static_tpot_s());
      slo.set_percentile(99);
      report.set_slo(slo.ttft_s() > 0 || slo.tpot_s() > 0 ? serving::SloText(slo) : "none");
    }
  }
  const int top_k = options.top_k >= 0 ? options.top_k
                    : plan.top_k() > 0 ? plan.top_k()
                                       : kDefaultTopK;
  report.set_top_k(top_k);

  // 1. Validity, memory, estimate.
  const Clock::time_point estimate_start = Clock::now();
  SHARDSIM_ASSIGN_OR_RETURN(std::unique_ptr<Estimator> estimator, Estimator::Create(spec));
  std::vector<v1::PlanCandidate> all(spec.candidates.size());
  for (size_t i = 0; i < spec.candidates.size(); ++i) {
    estimator->Evaluate(spec.candidates[i], &all[i]);
  }
  // 2. Rank.
  std::vector<size_t> ranked;
  for (size_t i = 0; i < all.size(); ++i) {
    if (all[i].estimated()) ranked.push_back(i);
  }
  // Meets the SLO first, then the objective's score, then the lower TPOT
  // (then the enumeration order: stable).
  std::stable_sort(ranked.begin(), ranked.end(), [&](size_t a, size_t b) {
    if (all[a].est_meets_slo() != all[b].est_meets_slo()) return all[a].est_meets_slo();
    if (all[a].est_score() != all[b].est_score()) return all[a].est_score() > all[b].est_score();
    return all[a].est_tpot_s() < all[b].est_tpot_s();
  });
  for (size_t r = 0; r < ranked.size(); ++r) all[ranked[r]].set_est_rank(static_cast<int32_t>(r + 1));
  run.estimated = static_cast<int64_t>(ranked.size());
  run.estimate_seconds = SecondsSince(estimate_start);
  // The top K of each kind, plans without pools and prefill/decode pool
  // pairs (space.search_disaggregation), by the one estimate order: pairs
  // so take no plan's place, and a plan simulates the plans without pools
  // it did without pairs. kth_score: the last simulated of each kind.
  std::vector<size_t> top;
  std::vector<bool> in_top(all.size(), false);
  size_t taken[2] = {0, 0};
  double kth_score[2] = {0, 0};
  for (size_t i : ranked) {
    const int kind = all[i].deployment().empty() ? 0 : 1;
    if (taken[kind] >= static_cast<size_t>(top_k)) continue;
    top.push_back(i);
    in_top[i] = true;
    ++taken[kind];
    kth_score[kind] = all[i].est_score();
  }
  const size_t k = top.size();
  // So that every GPU type has its best, the best estimate of each type the
  // top K leaves out is simulated too.
  if (k > 0) {
    std::set<std::string> covered;
    for (size_t i : top) covered.insert(all[i].gpu());
    for (size_t i : ranked) {
      if (covered.insert(all[i].gpu()).second) {
        top.push_back(i);
        in_top[i] = true;
      }
    }
  }

  int32_t invalid = 0, does_not_fit = 0;
  for (const v1::PlanCandidate& c : all) {
    invalid += c.status() == "invalid";
    does_not_fit += c.status() == "does_not_fit";
  }
  report.set_candidates(static_cast<int32_t>(all.size()));
  report.set_estimated(static_cast<int32_t>(ranked.size()));
  if (options.estimate_only) {
    report.set_invalid(invalid);
    report.set_does_not_fit(does_not_fit);
    for (v1::PlanCandidate& c : all) *report.add_all() = std::move(c);
    return run;
  }

  // 3. Simulate the top K, resumably.
  std::error_code ec;
  fs::create_directories(options.out_dir, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("cannot create --out folder ", options.out_dir, ": ", ec.message()));
  }
  const std::string results_path = (fs::path(options.out_dir) / kResultsFile).string();
  SHARDSIM_ASSIGN_OR_RETURN(std::unique_ptr<ResultLog> log, ResultLog::Open(results_path, spec));
  std::vector<size_t> todo;
  for (size_t i : top) {
    if (log->rows().count(all[i].key()) == 0) todo.push_back(i);
  }
  run.resumed = static_cast<int64_t>(top.size() - todo.size());
  if (!todo.empty() && !options.simulate) {
    return absl::InvalidArgumentError("no way to simulate a candidate was given");
  }
  std::map<size_t, std::string> failures;
  const Clock::time_point simulate_start = Clock::now();
  ForkPoolOptions pool;
  pool.jobs = options.jobs;
  auto work = [&](int64_t t) {
    const v1::PlanCandidate& c = all[todo[static_cast<size_t>(t)]];
    const std::vector<std::string> overrides(c.overrides().begin(), c.overrides().end());
    const SimulationKind kind = !spec.serving   ? SimulationKind::kStatic
                                : find_max_rate ? SimulationKind::kFindMaxRate
                                                : SimulationKind::kServing;
    // --find-max-rate starts at the estimate (3 significant digits), so the
    // bracket is found in a probe or two.
    double start = 0;
    if (c.est_max_rate_per_s() > 0) {
      start = std::stod(absl::StrFormat("%.3g", c.est_max_rate_per_s()));
    }
    absl::StatusOr<v1::SimulatedCandidate> result =
        options.simulate(spec.base_scenario, overrides, kind, start);
    v1::SimulatedCandidate out;
    if (result.ok()) {
      out = *std::move(result);
    } else {
      out.set_error_code(static_cast<int>(result.status().code()));
      out.set_error(std::string(result.status().message()));
    }
    return out.SerializeAsString();
  };
  auto done = [&](int64_t t, const ChildOutcome& outcome) -> absl::Status {
    const size_t i = todo[static_cast<size_t>(t)];
    v1::SimulatedCandidate result;
    if (!outcome.ok || !result.ParseFromString(outcome.output)) {
      failures[i] = outcome.ok ? "unreadable result" : outcome.failure;
      return absl::OkStatus();
    }
    return log->Append(all[i].key(), result);
  };
  SHARDSIM_ASSIGN_OR_RETURN(run.interrupted_by, RunInChildren(static_cast<int64_t>(todo.size()),
                                                              work, done, pool));
  run.simulate_seconds = SecondsSince(simulate_start);
  if (run.interrupted_by != 0) return run;

  // 4. Judge and choose.
  std::vector<size_t> simulated_idx;
  for (size_t i : top) {
    v1::PlanCandidate& c = all[i];
    auto it = log->rows().find(c.key());
    if (it == log->rows().end()) {
      c.set_status("failed");
      c.set_reason(absl::StrCat("the simulation failed (", failures[i],
                                "): run the same command again to retry it"));
      continue;
    }
    Judge(spec, slo, estimator->target_rate_per_s(), it->second, &c);
    if (!c.simulated()) continue;
    simulated_idx.push_back(i);
    c.set_status(c.meets_slo() ? "meets_slo" : "misses_slo");
    if (!c.meets_slo()) c.set_reason(MissWords(c));
  }
  // The simulation's order, as the estimate's: meets the SLO first, then
  // the score, then the lower TPOT, then the index. The chosen candidate is
  // its first, if it meets the SLO; Spearman compares the two orders over
  // the simulated candidates.
  std::vector<size_t> by_simulation = simulated_idx;
  std::stable_sort(by_simulation.begin(), by_simulation.end(), [&](size_t a, size_t b) {
    if (all[a].meets_slo() != all[b].meets_slo()) return all[a].meets_slo();
    if (all[a].score() != all[b].score()) return all[a].score() > all[b].score();
    if (all[a].tpot_s() != all[b].tpot_s()) return all[a].tpot_s() < all[b].tpot_s();
    return a < b;
  });
  {
    // Over every simulated candidate, and over the pool pairs alone.
    std::vector<double> est_rank, sim_rank, pair_est_rank, pair_sim_rank;
    for (size_t i : by_simulation) {
      if (!all[i].estimated()) continue;
      est_rank.push_back(all[i].est_rank());
      sim_rank.push_back(static_cast<double>(sim_rank.size() + 1));
      if (all[i].deployment().empty()) continue;
      pair_est_rank.push_back(all[i].est_rank());
      pair_sim_rank.push_back(static_cast<double>(pair_sim_rank.size() + 1));
    }
    report.set_spearman(Spearman(est_rank, sim_rank));
    report.set_spearman_n(static_cast<int32_t>(sim_rank.size()));
    report.set_spearman_pairs(Spearman(pair_est_rank, pair_sim_rank));
    report.set_spearman_pairs_n(static_cast<int32_t>(pair_sim_rank.size()));
  }
  int32_t chosen = -1;
  if (!by_simulation.empty() && all[by_simulation[0]].meets_slo()) {
    chosen = all[by_simulation[0]].index();
  }
  // With pool pairs: the best of each kind, and a note saying which won.
  report.set_best_mixed(-1);
  report.set_best_disaggregated(-1);
  if (plan.space().search_disaggregation()) {
    for (size_t i : by_simulation) {
      if (!all[i].meets_slo()) break;
      const bool pools = !all[i].deployment().empty();
      if (pools && report.best_disaggregated() < 0) report.set_best_disaggregated(all[i].index());
      if (!pools && report.best_mixed() < 0) report.set_best_mixed(all[i].index());
    }
    report.add_notes(KindsNote(report.best_mixed() >= 0 ? &all[report.best_mixed()] : nullptr,
                               report.best_disaggregated() >= 0
                                   ? &all[report.best_disaggregated()]
                                   : nullptr,
                               chosen >= 0 && chosen == report.best_disaggregated()));
  }
  // Rejections of the rest.
  for (size_t r = 0; r < ranked.size(); ++r) {
    if (in_top[ranked[r]]) continue;
    v1::PlanCandidate& c = all[ranked[r]];
    const double kth_estimate = kth_score[c.deployment().empty() ? 0 : 1];
    c.set_status("pruned_by_estimate");
    if (!c.est_meets_slo()) {
      c.set_reason(absl::StrCat("pruned by the estimate: misses the SLO (", c.reason(), ")"));
    } else {
      const double margin = kth_estimate != 0 ? (c.est_score() - kth_estimate) /
                                                    std::abs(kth_estimate)
                                              : 0;
      c.set_reason(absl::StrFormat(
          "pruned by the estimate: rank %d, score %.4g against %.4g for the last simulated "
          "(margin %+.1f%%)",
          c.est_rank(), c.est_score(), kth_estimate, 100 * margin));
    }
  }
  if (chosen >= 0) {
    v1::PlanCandidate& best = all[static_cast<size_t>(chosen)];
    best.set_status("chosen");
    for (size_t i : top) {
      v1::PlanCandidate& c = all[i];
      if (c.status() == "meets_slo") {
        c.set_reason(absl::StrFormat("meets the SLO; score %.4g below the chosen %.4g", c.score(),
                                     best.score()));
      }
    }
    report.set_chosen(chosen);
    SHARDSIM_ASSIGN_OR_RETURN(std::string path, WriteChosen(spec, best, options.out_dir));
    report.set_chosen_scenario(path);
    report.set_reproduce(Reproduce(spec, best));
  }
  // Pareto fronts over the simulated candidates that meet the SLO (all
  // simulated ones when none does).
  std::vector<size_t> pool_idx;
  for (size_t i : top) {
    if (all[i].status() == "meets_slo" || all[i].status() == "chosen") pool_idx.push_back(i);
  }
  if (pool_idx.empty()) {
    for (size_t i : top) {
      if (all[i].simulated()) pool_idx.push_back(i);
    }
  }
  std::sort(pool_idx.begin(), pool_idx.end());
  auto front = [&](auto x, auto y, void (v1::PlanCandidate::*set)(bool), bool need_cost) {
    std::vector<std::pair<double, double>> points;
    std::vector<size_t> which;
    for (size_t i : pool_idx) {
      if (need_cost && all[i].cost_per_million_tokens() <= 0) continue;
      points.emplace_back(x(all[i]), y(all[i]));
      which.push_back(i);
    }
    for (size_t f : ParetoFront(points)) (all[which[f]].*set)(true);
  };
  auto tput = [](const v1::PlanCandidate& c) { return c.output_tokens_per_s_per_gpu(); };
  front(tput, [](const v1::PlanCandidate& c) { return c.tpot_s(); },
        &v1::PlanCandidate::set_pareto_tpot, false);
  front(tput, [](const v1::PlanCandidate& c) { return c.ttft_s(); },
        &v1::PlanCandidate::set_pareto_ttft, false);
  front([](const v1::PlanCandidate& c) { return -c.cost_per_million_tokens(); },
        [](const v1::PlanCandidate& c) { return c.tpot_s(); },
        &v1::PlanCandidate::set_pareto_cost, true);
  // Best per GPU type, in order of first appearance.
  std::vector<std::string> gpus;
  for (const v1::PlanCandidate& c : all) {
    if (!c.gpu().empty() && std::find(gpus.begin(), gpus.end(), c.gpu()) == gpus.end()) {
      gpus.push_back(c.gpu());
    }
  }
  for (const std::string& gpu : gpus) {
    int32_t best = -1;
    for (size_t i : top) {
      const v1::PlanCandidate& c = all[i];
      if (c.gpu() != gpu || (c.status() != "meets_slo" && c.status() != "chosen")) continue;
      if (best < 0 || c.score() > all[static_cast<size_t>(best)].score()) best = c.index();
    }
    v1::BestForGpu* b = report.add_best_per_gpu();
    b->set_gpu(gpu);
    b->set_index(best);
  }
  // Nothing meets: the nearest.
  if (chosen < 0) {
    std::vector<size_t> near;
    for (size_t i : top) {
      if (all[i].simulated()) near.push_back(i);
    }
    if (!near.empty()) {
      std::stable_sort(near.begin(), near.end(),
                       [&](size_t a, size_t b) { return Distance(all[a]) < Distance(all[b]); });
    } else {
      for (size_t i = 0; i < all.size(); ++i) {
        if (all[i].status() == "does_not_fit") near.push_back(i);
      }
      std::stable_sort(near.begin(), near.end(), [&](size_t a, size_t b) {
        return all[a].over_by_bytes() < all[b].over_by_bytes();
      });
    }
    for (size_t j = 0; j < near.size() && j < static_cast<size_t>(kClosest); ++j) {
      report.add_closest(static_cast<int32_t>(near[j]));
    }
    if (all.empty()) {
      report.add_notes("the plan's space is empty: no candidate to consider");
    } else if (ranked.empty()) {
      report.add_notes("no candidate is valid and fits: nothing to simulate");
    } else {
      report.add_notes("no simulated candidate meets the SLO");
    }
  }
  int32_t simulated = 0, meets = 0;
  for (const v1::PlanCandidate& c : all) {
    simulated += c.simulated();
    meets += c.status() == "meets_slo" || c.status() == "chosen";
  }
  invalid = 0;
  does_not_fit = 0;
  for (const v1::PlanCandidate& c : all) {
    invalid += c.status() == "invalid";
    does_not_fit += c.status() == "does_not_fit";
  }
  report.set_invalid(invalid);
  report.set_does_not_fit(does_not_fit);
  report.set_simulated(simulated);
  report.set_meets_slo(meets);
  if (spec.serving && !find_max_rate) {
    report.add_notes(absl::StrFormat("serving candidates judged at %.4g requests/s",
                                     estimator->target_rate_per_s()));
  }
  for (v1::PlanCandidate& c : all) *report.add_all() = std::move(c);
  // Every candidate as a table beside the report.
  const std::string csv_path = (fs::path(options.out_dir) / kCandidatesFile).string();
  std::ofstream csv(csv_path, std::ios::trunc);
  csv << PlanCsv(report);
  if (!csv) return absl::InternalError(absl::StrCat("cannot write ", csv_path));
  return run;
}

// ---- Output ----------------------------------------------------------------------

namespace {

std::string Plan(const v1::PlanCandidate& c) {
  std::string out = c.deployment().empty()
                        ? absl::StrFormat("%s x%d tp=%d pp=%d dp=%d", c.gpu(), c.num_gpus(),
                                          c.tp(), c.pp(), c.dp())
                        : absl::StrFormat("%s x%d %s", c.gpu(), c.num_gpus(), c.deployment());
  if (c.ep() > 1) absl::StrAppend(&out, " ep=", c.ep());
  if (!c.recipe().empty()) absl::StrAppend(&out, " ", c.recipe());
  if (c.max_num_seqs() > 0) {
    absl::StrAppendFormat(&out, " seqs=%d tokens=%d", c.max_num_seqs(),
                          c.max_num_batched_tokens());
  }
  return out;
}

std::string Money(double dollars) {
  return dollars > 0 ? absl::StrFormat("$%.3g", dollars) : "-";
}

std::string Row(const v1::PlanCandidate& c) {
  const double rate = c.max_rate_per_s() > 0 ? c.max_rate_per_s() : c.rate_per_s();
  return absl::StrFormat("%5d  %-52s %10s %9s %9s %9s %9s  %s", c.index(), Plan(c),
                         rate > 0 ? absl::StrFormat("%.4g", rate) : "-",
                         FormatSeconds(c.ttft_s()), FormatSeconds(c.tpot_s()),
                         absl::StrFormat("%.4g", c.output_tokens_per_s_per_gpu()),
                         Money(c.cost_per_million_tokens()),
                         c.estimated() ? absl::StrCat("est #", c.est_rank()) : "no est");
}

}  // namespace

std::string PlanText(const v1::PlanReport& r) {
  std::string out;
  absl::StrAppendFormat(&out, "plan       %s%s\n", r.plan(),
                        r.description().empty() ? "" : absl::StrCat(": ", r.description()));
  absl::StrAppendFormat(&out, "objective  %s (%s)\nSLO        %s\n", r.objective(), r.mode(),
                        r.slo());
  absl::StrAppendFormat(&out,
                        "candidates %d: %d invalid, %d do not fit, %d estimated, %d simulated "
                        "(top %d), %d meet the SLO\n",
                        r.candidates(), r.invalid(), r.does_not_fit(), r.estimated(),
                        r.simulated(), r.top_k(), r.meets_slo());
  absl::StrAppendFormat(&out, "estimate   Spearman rank correlation with the simulation %.3f "
                              "over %d candidates",
                        r.spearman(), r.spearman_n());
  if (r.spearman_pairs_n() > 0) {
    absl::StrAppendFormat(&out, "; %.3f over the %d pool pairs", r.spearman_pairs(),
                          r.spearman_pairs_n());
  }
  out += "\n\n";
  const std::string header =
      absl::StrFormat("%5s  %-52s %10s %9s %9s %9s %9s\n", "#", "deployment", "requests/s",
                      "TTFT", "TPOT", "tok/s/GPU", "$/M tok");
  if (r.chosen() >= 0) {
    const v1::PlanCandidate& c = r.all(r.chosen());
    out += "chosen\n" + header + Row(c) + "\n";
    absl::StrAppendFormat(&out, "  scenario  %s\n  reproduce %s\n\n", r.chosen_scenario(),
                          r.reproduce());
  } else {
    out += "chosen     none\n";
    for (const std::string& note : r.notes()) absl::StrAppendFormat(&out, "note: %s\n", note);
    if (r.closest_size() > 0) {
      out += "closest\n";
      for (int32_t i : r.closest()) {
        absl::StrAppendFormat(&out, "%s  %s\n", Row(r.all(i)), r.all(i).reason());
      }
    }
    out += "\n";
  }
  out += "best per GPU\n";
  for (const v1::BestForGpu& b : r.best_per_gpu()) {
    if (b.index() >= 0) {
      absl::StrAppendFormat(&out, "%s\n", Row(r.all(b.index())));
    } else {
      absl::StrAppendFormat(&out, "       %-52s none simulated meets the SLO\n", b.gpu());
    }
  }
  for (const auto& [title, flag] :
       {std::pair<const char*, int>{"Pareto front: throughput per GPU against TPOT", 0},
        {"Pareto front: throughput per GPU against TTFT", 1},
        {"Pareto front: cost per million tokens against TPOT", 2}}) {
    absl::StrAppendFormat(&out, "\n%s\n%s", title, header);
    for (const v1::PlanCandidate& c : r.all()) {
      const bool on = flag == 0 ? c.pareto_tpot() : flag == 1 ? c.pareto_ttft() : c.pareto_cost();
      if (on) out += Row(c) + "\n";
    }
  }
  out += "\nrejected\n";
  std::map<std::string, int> counts;
  for (const v1::PlanCandidate& c : r.all()) {
    if (c.status() == "chosen") continue;
    ++counts[c.status()];
    absl::StrAppendFormat(&out, "%5d  %-52s %s: %s\n", c.index(),
                          c.gpu().empty() ? c.key() : Plan(c), c.status(), c.reason());
  }
  for (const std::string& note : r.notes()) {
    if (r.chosen() >= 0) absl::StrAppendFormat(&out, "note: %s\n", note);
  }
  return out;
}

std::string PlanCsv(const v1::PlanReport& r) {
  std::string out =
      "index,key,status,reason,gpu,cluster,num_gpus,tp,pp,dp,ep,recipe,max_num_seqs,"
      "max_num_batched_tokens,price_per_hour,fits,overflow_gpu,overflow_component,over_by_bytes,"
      "est_rank,est_score,est_meets_slo,est_ttft_s,est_tpot_s,est_output_tokens_per_s_per_gpu,"
      "est_max_rate_per_s,est_cost_per_million_tokens,simulated,meets_slo,score,ttft_s,tpot_s,"
      "output_tokens_per_s_per_gpu,cost_per_million_tokens,max_rate_per_s,rate_per_s,"
      "pareto_tpot,pareto_ttft,pareto_cost,chosen,deployment,prefill_tp,prefill_replicas,"
      "decode_tp,decode_replicas\n";
  auto quote = [](const std::string& s) {
    std::string q = "\"";
    for (char ch : s) {
      if (ch == '"') q += '"';
      q += ch;
    }
    return q + "\"";
  };
  auto num = [](double v) { return absl::StrFormat("%.10g", v); };
  for (const v1::PlanCandidate& c : r.all()) {
    const bool estimated = c.estimated();
    const bool sim = c.simulated();
    std::vector<std::string> f = {
        absl::StrCat(c.index()), quote(c.key()), c.status(), quote(c.reason()), c.gpu(),
        quote(c.cluster()), absl::StrCat(c.num_gpus()), absl::StrCat(c.tp()),
        absl::StrCat(c.pp()), absl::StrCat(c.dp()), absl::StrCat(c.ep()), c.recipe(),
        absl::StrCat(c.max_num_seqs()), absl::StrCat(c.max_num_batched_tokens()),
        num(c.price_per_hour()), c.fits() ? "true" : "false",
        c.fits() ? "" : absl::StrCat(c.overflow_gpu()), c.overflow_component(),
        absl::StrCat(c.over_by_bytes()), estimated ? absl::StrCat(c.est_rank()) : "",
        estimated ? num(c.est_score()) : "", estimated ? (c.est_meets_slo() ? "true" : "false") : "",
        estimated ? num(c.est_ttft_s()) : "", estimated ? num(c.est_tpot_s()) : "",
        estimated ? num(c.est_output_tokens_per_s_per_gpu()) : "",
        estimated ? num(c.est_max_rate_per_s()) : "",
        estimated ? num(c.est_cost_per_million_tokens()) : "", sim ? "true" : "false",
        sim ? (c.meets_slo() ? "true" : "false") : "", sim ? num(c.score()) : "",
        sim ? num(c.ttft_s()) : "", sim ? num(c.tpot_s()) : "",
        sim ? num(c.output_tokens_per_s_per_gpu()) : "",
        sim ? num(c.cost_per_million_tokens()) : "", sim ? num(c.max_rate_per_s()) : "",
        sim ? num(c.rate_per_s()) : "", c.pareto_tpot() ? "true" : "false",
        c.pareto_ttft() ? "true" : "false", c.pareto_cost() ? "true" : "false",
        c.index() == r.chosen() ? "true" : "false", quote(c.deployment()),
        absl::StrCat(c.prefill_tp()), absl::StrCat(c.prefill_replicas()),
        absl::StrCat(c.decode_tp()), absl::StrCat(c.decode_replicas())};
    out += absl::StrJoin(f, ",") + "\n";
  }
  return out;
}

}  // namespace shardsim::search
