#include "sim/serving/max_rate.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "sim/base/units.h"
#include "sim/serving/requests.h"

namespace shardsim::serving {
namespace {

double PercentileOf(const v1::Slo& slo) {
  return slo.percentile() == 0 ? kDefaultSloPercentile : slo.percentile();
}

// N0: the scenario's request count, its default applied.
int64_t BaseRequests(const v1::Serving& serving) {
  return serving.num_requests() > 0 ? serving.num_requests() : kDefaultNumRequests;
}

double At(const v1::Distribution& d, double percentile) {
  if (percentile == 50) return d.p50_s();
  if (percentile == 99) return d.p99_s();
  return d.p90_s();
}

}  // namespace

v1::Serving ProbeServing(const v1::Serving& serving, double rate_per_s) {
  v1::Serving probe = serving;
  probe.mutable_arrival()->set_rate_per_s(rate_per_s);
  const int64_t base = BaseRequests(serving);
  const double start = serving.arrival().rate_per_s();
  const double scaled = start > 0 ? std::ceil(static_cast<double>(base) * (rate_per_s / start))
                                  : static_cast<double>(base);
  // Compared as doubles: a huge ratio must not overflow the conversion.
  const double count = std::min(std::max(static_cast<double>(base), scaled),
                                static_cast<double>(std::max(base, kMaxProbeRequests)));
  probe.set_num_requests(static_cast<int64_t>(count));
  return probe;
}

absl::Status CheckRateSearch(const v1::Serving& serving, const FieldLocator& where) {
  const v1::Slo& slo = serving.slo();
  if (slo.ttft_s() == 0 && slo.tpot_s() == 0 && slo.e2e_s() == 0) {
    return where.Error("serving.slo",
                       "no target to search against: set serving.slo.ttft_s, tpot_s or e2e_s");
  }
  for (const auto& [name, value] :
       {std::pair<const char*, double>{"serving.slo.ttft_s", slo.ttft_s()},
        {"serving.slo.tpot_s", slo.tpot_s()},
        {"serving.slo.e2e_s", slo.e2e_s()}}) {
    if (!(value >= 0 && value <= 1e9)) {
      return where.Error(name, "must be a non-negative number of seconds");
    }
  }
  const double p = slo.percentile();
  if (p != 0 && p != 50 && p != 90 && p != 99) {
    return where.Error("serving.slo.percentile",
                       absl::StrCat("must be 50, 90 or 99 (the report's percentiles), got ", p));
  }
  if (!serving.trace().file().empty()) {
    return where.Error("serving.trace.file",
                       "a trace fixes its own arrival times: searching the rate needs a "
                       "synthetic arrival process (clear the trace)");
  }
  if (serving.arrival().kind() == v1::ArrivalProcess::ALL_AT_ONCE) {
    return where.Error("serving.arrival.kind",
                       "ALL_AT_ONCE has no rate to search: use POISSON, GAMMA or FIXED_INTERVAL");
  }
  if (!(serving.arrival().rate_per_s() > 0 && serving.arrival().rate_per_s() <= 1e9)) {
    return where.Error("serving.arrival.rate_per_s",
                       "must be a positive rate: the search starts there");
  }
  return absl::OkStatus();
}

std::string SloText(const v1::Slo& slo) {
  std::vector<std::string> targets;
  if (slo.ttft_s() > 0) targets.push_back(absl::StrCat("TTFT <= ", FormatSeconds(slo.ttft_s())));
  if (slo.tpot_s() > 0) targets.push_back(absl::StrCat("TPOT <= ", FormatSeconds(slo.tpot_s())));
  if (slo.e2e_s() > 0) targets.push_back(absl::StrCat("E2E <= ", FormatSeconds(slo.e2e_s())));
  return absl::StrFormat("p%g %s", PercentileOf(slo), absl::StrJoin(targets, ", "));
}

v1::RateProbe JudgeSlo(const v1::ServeReport& report, const v1::Slo& slo) {
  const double p = PercentileOf(slo);
  const std::string suffix = absl::StrFormat("_p%g", p);
  v1::RateProbe probe;
  probe.set_goodput_requests_per_s(report.goodput_requests_per_s());
  probe.set_output_tokens_per_s(report.output_tokens_per_s());
  probe.set_ttft_s(At(report.ttft(), p));
  probe.set_tpot_s(At(report.tpot(), p));
  probe.set_e2e_s(At(report.e2e(), p));
  std::vector<v1::SloMiss> misses;
  auto judge = [&](const char* metric, double value, double target) {
    if (target <= 0 || value <= target) return;
    v1::SloMiss miss;
    miss.set_metric(absl::StrCat(metric, suffix));
    miss.set_value(value);
    miss.set_target(target);
    miss.set_over_by(value / target - 1);
    misses.push_back(miss);
  };
  judge("ttft", probe.ttft_s(), slo.ttft_s());
  judge("tpot", probe.tpot_s(), slo.tpot_s());
  judge("e2e", probe.e2e_s(), slo.e2e_s());
  // Worst first; ties keep the order above.
  std::stable_sort(misses.begin(), misses.end(),
                   [](const v1::SloMiss& a, const v1::SloMiss& b) {
                     return a.over_by() > b.over_by();
                   });
  if (report.refused() > 0) {
    v1::SloMiss miss;
    miss.set_metric("refused");
    miss.set_value(static_cast<double>(report.refused()));
    miss.set_over_by(static_cast<double>(report.refused()));
    misses.insert(misses.begin(), miss);
  }
  if (report.completed() == 0) {
    v1::SloMiss miss;
    miss.set_metric("completed");
    misses.insert(misses.begin(), miss);
  }
  for (v1::SloMiss& m : misses) *probe.add_misses() = std::move(m);
  probe.set_met(probe.misses_size() == 0);
  return probe;
}

absl::StatusOr<v1::MaxRateReport> SearchMaxRate(const v1::Serving& serving,
                                                const RateProbeFn& probe,
                                                const MaxRateOptions& options) {
  if (!(options.tolerance > 0 && options.tolerance < 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("the rate tolerance must be between 0 and 1, got ", options.tolerance));
  }
  if (options.max_probes < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("at least 2 probes are needed, got ", options.max_probes));
  }
  v1::MaxRateReport report;
  report.set_slo(SloText(serving.slo()));
  report.set_percentile(PercentileOf(serving.slo()));
  report.set_tolerance(options.tolerance);
  report.set_max_probes(options.max_probes);
  double met = 0;     // highest rate that met
  double missed = 0;  // lowest rate that missed
  v1::ServeReport at_met;
  const double start = serving.arrival().rate_per_s();
  auto run = [&](double rate) -> absl::StatusOr<bool> {
    const v1::Serving at_rate = ProbeServing(serving, rate);
    absl::StatusOr<v1::ServeReport> served = probe(at_rate);
    if (!served.ok()) return served.status();
    v1::RateProbe p = JudgeSlo(*served, serving.slo());
    p.set_rate_per_s(rate);
    p.set_requests(at_rate.num_requests());
    const double window_s = static_cast<double>(BaseRequests(serving)) / start;
    if (static_cast<double>(at_rate.num_requests()) / rate < window_s * (1 - 1e-9)) {
      report.add_notes(absl::StrFormat(
          "the probe at %g requests/s ran %d requests, the most a probe runs: its arrivals "
          "span %s rather than the first probe's %s",
          rate, at_rate.num_requests(),
          FormatSeconds(static_cast<double>(at_rate.num_requests()) / rate),
          FormatSeconds(window_s)));
    }
    if (p.met() && missed > 0 && rate > missed) {
      report.add_notes(absl::StrFormat(
          "%g requests/s met the SLO although %g missed it: latency is not monotone in the "
          "rate here (too few requests?), so the answer is a lower bound",
          rate, missed));
    }
    if (p.met() && rate > met) {
      met = rate;
      at_met = *served;
    }
    if (!p.met() && (missed == 0 || rate < missed)) missed = rate;
    *report.add_probes() = std::move(p);
    return report.probes(report.probes_size() - 1).met();
  };
  absl::StatusOr<bool> ok = run(start);
  if (!ok.ok()) return ok.status();
  double rate = start;
  for (int step = 0; step < kMaxBracketSteps && report.probes_size() < options.max_probes;
       ++step) {
    if (met > 0 && missed > 0) break;
    rate = met > 0 ? rate * 2 : rate / 2;
    ok = run(rate);
    if (!ok.ok()) return ok.status();
  }
  while (met > 0 && missed > 0 && missed > met * (1 + options.tolerance) &&
         report.probes_size() < options.max_probes) {
    ok = run((met + missed) / 2);
    if (!ok.ok()) return ok.status();
  }
  report.set_max_rate_per_s(met);
  report.set_missed_rate_per_s(missed);
  report.set_converged(met > 0 && missed > 0 && missed <= met * (1 + options.tolerance));
  if (met > 0) *report.mutable_at_max() = at_met;
  if (met == 0) {
    report.add_notes(absl::StrFormat(
        "no probed rate met the SLO, down to %g requests/s", missed));
  } else if (missed == 0) {
    report.add_notes(absl::StrFormat(
        "every probed rate met the SLO, up to %g requests/s: the deployment was not "
        "saturated within %d probes",
        met, options.max_probes));
  } else if (!report.converged()) {
    report.add_notes(absl::StrFormat("stopped after %d probes before the bracket narrowed to %g%%",
                                     options.max_probes, 100 * options.tolerance));
  }
  return report;
}

}  // namespace shardsim::serving
