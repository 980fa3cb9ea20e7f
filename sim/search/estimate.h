// The planner's fast pass over every candidate, without simulation:
//
// 1. Validity: the candidate's degrees are partitioned as the scenario loader
//    does (parallel::Partition); an error is the candidate's reason.
// 2. Memory: memory::ComputeMemoryReport of the deployment built in memory,
//    for the plan's memory workload: the static batch, or for serving one
//    request of the longest prompt and output on each replica (the least a
//    serving deployment must hold). A candidate that does not fit is pruned
//    with the GPU, the component and the bytes over.
// 3. Estimate, in closed form: step times from the roofline cost model
//    (sim/cost, the same calibrated profile the engine uses) over every layer
//    of each pipeline stage, plus each collective of the step program
//    (EstimateCollective: the runtime's custom all-reduce where it takes the
//    message, else a ring on the group's slowest hop), the formulas
//    sim/cost/calibration fits. Stages run one after another (a pipeline's overlap is not
//    credited: conservative for pp > 1). Each stage's step takes the named
//    runtime's terms as the engine does (scenario::RuntimeProfile: the CPU
//    step, overlapped or added; a decode in a CUDA graph at its padded batch
//    plus one graph launch; an eager step bounded by its kernel launches).
//    Serving (per replica, mean prompt P and output O from the request
//    source, decode context P + O / 2): a decode step of b sequences takes
//    t_d(b) = a + c b (a line through b = 1 and the largest batch B, the
//    scheduler's max_num_seqs or what the KV cache holds by vLLM's rule);
//    a request's prefill takes t_p. At a rate of lambda per replica the
//    prefills take the share rho_p = lambda t_p of the time, and the batch
//    b that carries lambda O tokens/s solves b (1 - rho_p) = lambda O
//    t_d(b). Then TPOT = t_d(b) / (1 - rho_p), TTFT = t_p / (1 - lambda /
//    lambda_max) + t_d(b), E2E = TTFT + (O - 1) TPOT, where lambda_max =
//    B / (O t_d(B) + B t_p) is the rate at which the batch is full.
//    Static: TTFT = the prefill of the replica's batch, TPOT = a decode step
//    at context P + O / 2, total = TTFT + (O - 1) TPOT.
// The estimate ranks; the top K are then simulated (sim/search/planner.h).
// A prefill/decode pool pair (space.search_disaggregation): steps 1 and 2 by
// the loader's pool checks and each pool's memory, then the pair in closed
// form (EstimatePoolPair below) from the same pieces: a prefill replica
// takes t_p per mean prompt, a decode replica's step is t_d(b) = a + c b up
// to its KV-limited batch B (as above, on the decode pool's plan), and the
// KV cache of a mean prompt moves in t_x on idle links (its flows re-sharded
// between the pools' tp, parallel::IdleKvTransferSeconds; with
// kv_transfer.overlap_layers what is left after the prefill,
// max(t_x / L, t_x - t_p (L - 1) / L)). At a rate of lambda over x prefill
// and y decode replicas: rho_p = lambda t_p / x, TTFT = t_p / (1 - rho_p) +
// t_x; the decode batch b = (lambda / y) O t_d(b), TPOT = t_d(b); the pair's
// capacity is the lesser stage, min(x / t_p, y B / (O t_d(B))). The two
// queues and a transfer sharing links with others are left to the
// simulation; the pair is then ranked and pruned with the plain plans.
#ifndef SHARDSIM_SIM_SEARCH_ESTIMATE_H_
#define SHARDSIM_SIM_SEARCH_ESTIMATE_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "sim/cost/roofline.h"
#include "sim/parallel/program.h"
#include "sim/proto/plan.pb.h"
#include "sim/scenario/scenario.h"
#include "sim/scenario/plan_spec.h"
#include "sim/scenario/runtime_profile.h"

namespace shardsim::search {

using scenario::CandidateSpec;
using scenario::PlanSpec;
using scenario::Prototype;

// The estimate's time of `kind` of `bytes` on `group` (GPUs of `cluster`):
// with `custom_all_reduce` (the named runtime's), an all-reduce that the
// runtime's own kernels take (cost::PlanCollective) at their time alone on
// the links, as the engine runs it (cost::CustomAllReduceTimeAlone); any
// other collective as a ring (or, for all-to-all, one phase) on the slowest
// hop of GPUs 0 .. n-1 with the cluster's collective tuning:
//   t = launch + steps x (latency + step_latency + bytes / n / (bw x eff)).
double EstimateCollective(const hardware::Cluster& cluster, parallel::CommKind kind,
                          const std::vector<int>& group, int64_t bytes, bool custom_all_reduce);

// What the serving requests look like, from one pass over the request
// source (synthetic or trace).
struct RequestStats {
  double mean_prompt = 0;
  double mean_output = 0;
  int64_t max_prompt = 0;
  int64_t max_output = 0;
};

// Latencies of a deployment at an arrival rate, by the closed forms above
// (ok false: saturated at that rate).
struct ServingAt {
  double ttft_s = 0;
  double tpot_s = 0;
  double e2e_s = 0;
  bool ok = false;
};

// A prefill/decode pool pair's closed-form inputs.
struct PoolPairShape {
  double prefill_s = 0;         // t_p: one mean prompt's prefill on a prefill replica
  int prefill_replicas = 1;     // x
  double decode_base_s = 0;     // a
  double decode_slope_s = 0;    // c, per sequence of the batch
  double decode_max_batch = 1;  // B: max_num_seqs or what the KV cache holds
  int decode_replicas = 1;      // y
  double transfer_s = 0;        // t_x: what is left of a mean prompt's KV transfer
  double mean_output = 1;       // O, tokens
};
// Requests/s the pair carries at most: its lesser stage.
double PoolPairCapacity(const PoolPairShape& pair);
// The pair's latencies at `rate_per_s` requests/s over all its replicas
// (saturated from kSaturated of either stage's capacity).
ServingAt EstimatePoolPair(const PoolPairShape& pair, double rate_per_s);

class Estimator {
 public:
  // Loads each prototype of `spec` once (the files its hardware and recipe
  // name). An error of a prototype is kept and becomes the reason of every
  // candidate built on it.
  static absl::StatusOr<std::unique_ptr<Estimator>> Create(const PlanSpec& spec);

  // Fills the validity, memory and estimate fields of `out` (index, key and
  // overrides too) for candidate `c`.
  void Evaluate(const CandidateSpec& c, v1::PlanCandidate* out);

  // The static workload the memory check uses for `c` (for a test to call
  // memory::ComputeMemoryReport on the loaded scenario with it).
  v1::Workload MemoryWorkload(int32_t dp) const;

  const RequestStats& requests() const { return requests_; }
  // The arrival rate the MIN_COST / FEWEST objectives judge at.
  double target_rate_per_s() const { return target_rate_; }

 private:
  struct Proto {
    absl::Status status;
    scenario::LoadedScenario loaded;
    std::unique_ptr<cost::CostModel> cost;
    // The named runtime's resolved terms (what the engine's executor takes).
    scenario::RuntimeProfile runtime;
  };
  explicit Estimator(const PlanSpec& spec) : spec_(spec) {}
  // The ledger's verdict on `d` for `workload`: false (and `out` rejected
  // as does_not_fit, naming the GPU, component and bytes over) if it does
  // not fit.
  bool JudgeMemory(const parallel::Deployment& d, const v1::Workload& workload,
                   v1::PlanCandidate* out);
  // A prefill/decode pool pair: validity (the loader's pool checks), each
  // pool's memory, and EstimatePoolPair.
  void EvaluatePools(const CandidateSpec& c, Proto& p, v1::PlanCandidate* out);
  // The serving estimate from `at`, latencies at a rate in units of `units`
  // requests/s (a replica's share: units = dp; a pair's total: 1), saturated
  // at `capacity` of those units: the highest rate meeting the SLO, and the
  // latencies, throughput and cost at the objective's rate.
  struct RateVerdict {
    double ttft_s = 0, tpot_s = 0, tokens_per_s_per_gpu = 0, max_rate_per_s = 0,
           cost_per_million_tokens = 0;
    bool feasible = true;
    std::string why_not;
  };
  RateVerdict JudgeRates(const std::function<ServingAt(double)>& at, double capacity, int units,
                         int num_gpus, double price, double mean_output) const;
  // Sets the estimate fields of `out` and its score by the objective.
  void SetEstimate(double ttft, double tpot, double tokens_per_s_per_gpu, double max_rate,
                   double cost_per_m, bool feasible, std::string why_not, int num_gpus,
                   v1::PlanCandidate* out) const;
  // One step of `shape` on replica 0 of `plan`, stage after stage, with its
  // collectives and the hand-offs between stages, each stage's GPU time
  // under the named runtime's terms as the engine charges them
  // (RuntimeProfile::StepTime).
  double StepTime(Proto& p, const model::ModelGraph& graph, const parallel::Program& program,
                  const parallel::Plan& plan, const model::StepShape& shape);

  const PlanSpec& spec_;
  std::vector<Proto> protos_;
  RequestStats requests_;
  v1::Parallelism base_parallelism_;
  v1::Workload static_workload_;
  double target_rate_ = 0;
  v1::Slo slo_;
  double percentile_ = 90;
};

}  // namespace shardsim::search

#endif  // SHARDSIM_SIM_SEARCH_ESTIMATE_H_
