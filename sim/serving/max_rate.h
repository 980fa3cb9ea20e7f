// The highest arrival rate a deployment serves within its SLO: judging one
// serving run against the SLO, and the bisection over the rate. No SimGrid
// here: each probe is a callback (engine::FindMaxRate runs each as a full
// simulation in a forked child), so the search is tested on closed forms.
//
// The search, deterministic (the probed rates depend only on the verdicts):
//   1. probe the scenario's own rate r0;
//   2. if it meets the SLO, double the rate until a probe misses; if it
//      misses, halve until one meets (at most kMaxBracketSteps times: a
//      deployment that misses at r0 / 2^12 misses at every rate, since
//      latencies do not fall further once requests stop overlapping);
//   3. bisect between the highest rate that met and the lowest that missed
//      until missed <= met x (1 + tolerance), or max_probes probes ran.
// The answer is the highest rate that met. Bisection assumes that missing at
// a rate implies missing at every higher rate; a probe that contradicts an
// earlier one is noted in the report.
//
// Every probe offers load for as long as the first: its request count is
// the scenario's num_requests N0 scaled with the rate, N(r) = max(N0,
// ceil(N0 x r / r0)), so the arrivals span at least N0 / r0 seconds (the
// first probe's window) and never fewer than N0 requests. With N0 fixed, a
// probe at 16x the rate would see its arrivals end after 1/16 of the time
// and measure the start of the queue's growth, not its steady state, and an
// overloaded deployment could pass. At most kMaxProbeRequests a probe (or
// N0 when that is more; noted when the cap shortens a window).
#ifndef SHARDSIM_SIM_SERVING_MAX_RATE_H_
#define SHARDSIM_SIM_SERVING_MAX_RATE_H_

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "sim/base/config_file.h"
#include "sim/proto/plan.pb.h"
#include "sim/proto/report.pb.h"
#include "sim/proto/serving.pb.h"

namespace shardsim::serving {

// The percentile an unset Slo.percentile means (serving.proto cites why).
inline constexpr double kDefaultSloPercentile = 90;

// 2%: well inside the end-to-end replay's own error (README, Fidelity: 5.5%
// median on throughput), so a narrower bracket would be false precision.
inline constexpr double kDefaultRateTolerance = 0.02;
// Halvings or doublings of the starting rate before giving up: 2^12 = 4096x
// either way.
inline constexpr int kMaxBracketSteps = 12;
// One probe for r0, up to 12 bracket steps, and the bisection of a factor-2
// bracket down to 2% (log2(1 / 0.02) < 6 probes), with room to spare.
inline constexpr int kDefaultMaxProbes = 24;

// The most requests one probe simulates: 10^6 take about 90 s on one core
// (README, Benchmarks: 100,000 Poisson requests in 8.9 s), and are only
// reached when the search doubles the rate far past where it started.
inline constexpr int64_t kMaxProbeRequests = 1'000'000;

// The serving block a probe at `rate_per_s` simulates: `serving` (whose
// arrival rate r0 and num_requests N0 set the window) at that rate, with
// max(N0, ceil(N0 x rate / r0)) requests, at most max(N0,
// kMaxProbeRequests).
v1::Serving ProbeServing(const v1::Serving& serving, double rate_per_s);

// Checks that `serving` has an SLO to search against (at least one target)
// and a synthetic arrival process whose rate can be changed; names the field.
absl::Status CheckRateSearch(const v1::Serving& serving, const FieldLocator& where);

// "p90 TTFT <= 2 s, TPOT <= 100 ms".
std::string SloText(const v1::Slo& slo);

// Judges `report` against `slo`: each target at the SLO's percentile, no
// request refused, at least one completed.
v1::RateProbe JudgeSlo(const v1::ServeReport& report, const v1::Slo& slo);

struct MaxRateOptions {
  double tolerance = kDefaultRateTolerance;
  int max_probes = kDefaultMaxProbes;
};

// Runs a serving simulation of `probe` (ProbeServing's block at the rate
// probed, in probe.arrival().rate_per_s()).
using RateProbeFn = std::function<absl::StatusOr<v1::ServeReport>(const v1::Serving& probe)>;

// The search described above, starting at serving.arrival.rate_per_s. An
// error from a probe ends it and is returned.
absl::StatusOr<v1::MaxRateReport> SearchMaxRate(const v1::Serving& serving,
                                                const RateProbeFn& probe,
                                                const MaxRateOptions& options = {});

}  // namespace shardsim::serving

#endif  // SHARDSIM_SIM_SERVING_MAX_RATE_H_
