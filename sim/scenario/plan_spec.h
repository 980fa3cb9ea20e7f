// Loading a plan file (sim/proto/plan.proto) and listing its candidates.
//
// A candidate is the base scenario plus --set overrides: the plan's `set`,
// then the hardware (topology_file, topology.gpu, topology.num_nodes and the
// GPU's price), the precision recipe, the parallel degrees and the scheduler
// limits, each only where the plan's space lists values. With synthetic
// serving arrivals the base scenario's num_requests counts per replica of
// its own dp: a candidate with other dp gets serving.num_requests scaled to
// its replicas, so a run with more replicas is not a shorter burst per
// replica (which would flatter it at --find-max-rate). Candidates are the
// product of hardware entries (each GPU at each node count) x recipes x tp x
// pp x dp x ep x max_num_seqs x max_num_batched_tokens, in that order, the
// last varying fastest; with space.search_disaggregation each prototype's
// prefill/decode pool pairs follow its plans (prefill tp, prefill replicas,
// decode tp, decode replicas, then the scheduler limits; each pair is the
// overrides pools[0].{name,role,parallelism.tp,parallelism.dp} and
// pools[1]..., appended to a base without pools, with num_requests scaled by
// the larger pool's replicas). A candidate's index is its place in that order and
// its key (its overrides joined by ';') names it in result files.
//
// LoadPlan checks the plan's own fields (naming plan-file line:column) and
// that the base scenario loads; whether each candidate is a valid scenario
// is the search's business (sim/search: an invalid one is a rejected
// candidate with the loader's one-line reason). It lives beside the scenario
// loader, as sweep files do, because `shardsim validate` checks plans too.
#ifndef SHARDSIM_SIM_SCENARIO_PLAN_SPEC_H_
#define SHARDSIM_SIM_SCENARIO_PLAN_SPEC_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "sim/base/config_file.h"
#include "sim/proto/plan.pb.h"

namespace shardsim::scenario {

// The most candidates one plan may have: each is held in memory.
inline constexpr int64_t kMaxCandidates = 1'000'000;

// When neither the plan file nor --top says: 8 full simulations, 4 per core
// of a 2-core machine, which with --find-max-rate's ~8 probes each keeps a
// plan near a minute (README, Benchmarks). The estimate ranks the rest.
inline constexpr int kDefaultTopK = 8;

struct CandidateSpec {
  int32_t index = 0;
  std::string key;
  std::vector<std::string> overrides;
  // Which hardware/recipe combination (its "prototype"): candidates that
  // share one load the same files and differ only in degrees and limits.
  int32_t prototype = 0;
  // The values the plan set (0 / "" where the base scenario's apply).
  std::string gpu;
  int32_t num_nodes = 0;
  std::string recipe;
  int32_t tp = 0, pp = 0, dp = 0, ep = 0;
  int32_t max_num_seqs = 0;
  int64_t max_num_batched_tokens = 0;
  double price_per_hour = -1;  // the price this candidate sets; -1: none set
  // A prefill/decode pool pair (space.search_disaggregation); 0: a plan
  // without pools (tp .. ep above).
  int32_t prefill_tp = 0, prefill_replicas = 0, decode_tp = 0, decode_replicas = 0;
  bool disaggregated() const { return prefill_replicas > 0; }
};

struct Prototype {
  std::vector<std::string> overrides;  // set + hardware + recipe
};

struct PlanSpec {
  std::string path;
  v1::Plan plan;
  FieldLocator where;
  std::string name;
  std::string base_scenario;  // resolved against the plan file's folder
  bool serving = false;       // the base scenario has a serving block
  std::vector<Prototype> prototypes;
  std::vector<CandidateSpec> candidates;
  // A hash of the plan (all but top_k) and the base scenario's text: result
  // files of another plan are refused.
  std::string identity;
};

// Reads and checks `path`. InvalidArgument names path:line:column and the
// plan field; NotFound when the file cannot be read.
absl::StatusOr<PlanSpec> LoadPlan(const std::string& path);

// "MAX_GOODPUT_PER_GPU" ...
std::string ObjectiveName(v1::Plan::Objective objective);

}  // namespace shardsim::scenario

#endif  // SHARDSIM_SIM_SCENARIO_PLAN_SPEC_H_
