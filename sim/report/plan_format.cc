#include "sim/report/plan_format.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "sim/base/units.h"
#include "sim/report/format.h"

namespace shardsim::report {

std::string MissText(const v1::RateProbe& probe) {
  if (probe.misses_size() == 0) return "-";
  const v1::SloMiss& m = probe.misses(0);
  if (m.metric() == "completed") return "no request completed";
  if (m.metric() == "refused") return absl::StrFormat("%g requests refused", m.value());
  return absl::StrFormat("%s %s > %s (+%.1f%%)", m.metric(), FormatSeconds(m.value()),
                         FormatSeconds(m.target()), 100 * m.over_by());
}

std::string MaxRateText(const v1::MaxRateReport& r) {
  std::string out;
  absl::StrAppendFormat(&out, "scenario  %s\nSLO       %s, no request refused\n", r.scenario(),
                        r.slo());
  if (r.max_rate_per_s() > 0) {
    absl::StrAppendFormat(&out, "max rate  %.4g requests/s meets it", r.max_rate_per_s());
    if (r.missed_rate_per_s() > 0) {
      absl::StrAppendFormat(&out, "; %.4g requests/s misses it (tolerance %g%%)",
                            r.missed_rate_per_s(), 100 * r.tolerance());
    }
    out += "\n";
  } else {
    absl::StrAppendFormat(&out, "max rate  none: no probed rate met the SLO\n");
  }
  absl::StrAppendFormat(&out, "\n%-5s %12s %9s %4s %11s %11s %11s  %s\n", "probe", "requests/s",
                        "requests", "met", "TTFT", "TPOT", "E2E", "worst miss");
  // 0: no samples at this rate (TPOT of one-token answers).
  auto seconds = [](double s) { return s > 0 ? FormatSeconds(s) : std::string("-"); };
  for (int i = 0; i < r.probes_size(); ++i) {
    const v1::RateProbe& p = r.probes(i);
    absl::StrAppendFormat(&out, "%-5d %12.4g %9d %4s %11s %11s %11s  %s\n", i + 1,
                          p.rate_per_s(), p.requests(), p.met() ? "yes" : "no", seconds(p.ttft_s()),
                          seconds(p.tpot_s()), seconds(p.e2e_s()), MissText(p));
  }
  absl::StrAppendFormat(&out,
                        "(latencies at p%g; requests scaled with the rate, so every probe's "
                        "arrivals span the first's)\n",
                        r.percentile());
  for (const std::string& note : r.notes()) absl::StrAppendFormat(&out, "note: %s\n", note);
  if (r.max_rate_per_s() > 0) {
    absl::StrAppendFormat(&out, "\nat %.4g requests/s:\n", r.max_rate_per_s());
    out += ServeText(r.at_max());
  }
  return out;
}

}  // namespace shardsim::report
