// `shardsim plan`: the search over a plan's candidates (sim/search/plan_spec.h).
//
//   1. every candidate is checked and its memory judged by the ledger, then
//      estimated in closed form (sim/search/estimate.h);
//   2. the candidates that fit are ranked by the estimate (those the estimate
//      says meet the SLO first, then by the objective's score, then by index);
//   3. the top K are simulated fully (and, for each GPU type with none among
//      them, its best estimate; with space.search_disaggregation the top K
//      plans without pools and the top K pool pairs, from the one order),
//      each in a worker process forked for it
//      (sim/base/fork_pool.h), `jobs` at a time: a static replay, a serving
//      run at the base scenario's rate (MIN_COST, FEWEST_GPUS), or
//      --find-max-rate (MAX_GOODPUT_PER_GPU serving plans). Each result is
//      appended to OUT/simulated.jsonl as it arrives; a re-run of the same
//      plan reads it and simulates only what is missing (a killed plan
//      resumes; a file of another plan is refused);
//   4. the best simulated candidate that meets the SLO is chosen (ties: the lower
//      TPOT, then the lower index). The report has every candidate with its fate and why,
//      the best per GPU type, the Pareto fronts and the estimate's Spearman
//      rank correlation with the simulation over the top K; OUT/chosen.textproto
//      is the chosen deployment as a scenario `run` / `serve` reproduce.
// Everything in the report depends only on the plan and its files: the same
// plan gives the same bytes, with any --jobs, resumed or not.
#ifndef SHARDSIM_SIM_SEARCH_PLANNER_H_
#define SHARDSIM_SIM_SEARCH_PLANNER_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "sim/proto/plan.pb.h"
#include "sim/scenario/plan_spec.h"

namespace shardsim::search {

using scenario::CandidateSpec;
using scenario::kDefaultTopK;
using scenario::LoadPlan;
using scenario::ObjectiveName;
using scenario::PlanSpec;
using scenario::Prototype;

// How a candidate is simulated.
enum class SimulationKind {
  kStatic,       // the static replay (RunStaticBatch)
  kServing,      // a serving run at the scenario's rate (RunServing)
  kFindMaxRate,  // --find-max-rate, starting at `start_rate_per_s`
};

// Runs one candidate fully, in a worker process: loads `scenario` with
// `overrides` and simulates it. Returns what it found, or the error that
// makes it invalid. Given by the caller (the CLI links the engine; this
// library does not, so it stays free of SimGrid).
using CandidateRunner = std::function<absl::StatusOr<v1::SimulatedCandidate>(
    const std::string& scenario, const std::vector<std::string>& overrides, SimulationKind kind,
    double start_rate_per_s)>;

struct PlanOptions {
  CandidateRunner simulate;
  int jobs = 1;
  int top_k = -1;       // -1: the plan's top_k, else kDefaultTopK
  std::string out_dir;  // created if missing
  // Stop after the estimate (no simulation, nothing written): for the
  // estimate's benchmark.
  bool estimate_only = false;
};

struct PlanRun {
  v1::PlanReport report;
  int interrupted_by = 0;  // the signal that stopped the simulations, 0 if none
  int64_t estimated = 0;
  double estimate_seconds = 0;  // for stderr, never the report
  double simulate_seconds = 0;
  int64_t resumed = 0;          // results read back from the file
};

absl::StatusOr<PlanRun> RunPlan(const PlanSpec& spec, const PlanOptions& options);

// Spearman's rank correlation of x and y (average ranks for ties); 0 when
// fewer than 2 points or either is constant.
double Spearman(const std::vector<double>& x, const std::vector<double>& y);

// The indices of `points` (x: higher is better; y: lower is better) on the
// Pareto front: no other point is at least as good in both and better in one.
std::vector<size_t> ParetoFront(const std::vector<std::pair<double, double>>& points);

// Text for people, and the CSV of every candidate (a header and a row each).
std::string PlanText(const v1::PlanReport& report);
std::string PlanCsv(const v1::PlanReport& report);

}  // namespace shardsim::search

#endif  // SHARDSIM_SIM_SEARCH_PLANNER_H_
