// The planner's pieces in-process: the rate search on closed forms, the SLO
// judge, Spearman and Pareto, plan files, and memory pruning checked against
// the memory ledger of the loaded scenario.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "sim/cost/collective_model.h"
#include "sim/memory/ledger.h"
#include "sim/model/graph.h"
#include "sim/parallel/program.h"
#include "sim/scenario/scenario.h"
#include "sim/search/estimate.h"
#include "sim/scenario/plan_spec.h"
#include "sim/search/planner.h"
#include "sim/serving/max_rate.h"

namespace shardsim {
namespace {

v1::Serving ServingAt(double rate) {
  v1::Serving s;
  s.mutable_arrival()->set_kind(v1::ArrivalProcess::POISSON);
  s.mutable_arrival()->set_rate_per_s(rate);
  s.mutable_slo()->set_tpot_s(0.1);
  return s;
}

// A deployment whose p90 TPOT is 50 ms + rate x 10 ms: it meets a 100 ms
// target up to exactly 5 requests/s.
absl::StatusOr<v1::ServeReport> Linear(const v1::Serving& at, std::vector<double>* probed) {
  const double rate = at.arrival().rate_per_s();
  probed->push_back(rate);
  v1::ServeReport r;
  r.set_completed(100);
  r.mutable_tpot()->set_p90_s(0.05 + 0.01 * rate);
  return r;
}

TEST(MaxRate, BisectsToTheRateWhereTheSloStopsHolding) {
  std::vector<double> probed;
  absl::StatusOr<v1::MaxRateReport> r = serving::SearchMaxRate(
      ServingAt(1), [&](const v1::Serving& at) { return Linear(at, &probed); });
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->converged());
  EXPECT_LE(r->max_rate_per_s(), 5.0);
  EXPECT_GT(r->missed_rate_per_s(), 5.0);
  EXPECT_LE(r->missed_rate_per_s(), r->max_rate_per_s() * (1 + serving::kDefaultRateTolerance));
  EXPECT_LE(r->probes_size(), serving::kDefaultMaxProbes);
  // Monotone: every probe at or below the answer met, every one above missed.
  for (const v1::RateProbe& p : r->probes()) {
    EXPECT_EQ(p.met(), p.rate_per_s() <= r->max_rate_per_s()) << p.rate_per_s();
    if (!p.met()) {
      ASSERT_EQ(p.misses_size(), 1);
      EXPECT_EQ(p.misses(0).metric(), "tpot_p90");
      EXPECT_DOUBLE_EQ(p.misses(0).over_by(), (0.05 + 0.01 * p.rate_per_s()) / 0.1 - 1);
    }
  }
  // 1, 2, 4 met and 8 missed bracket it; then bisection.
  ASSERT_GE(probed.size(), 4u);
  EXPECT_EQ(probed[0], 1);
  EXPECT_EQ(probed[1], 2);
  EXPECT_EQ(probed[2], 4);
  EXPECT_EQ(probed[3], 8);
  EXPECT_EQ(probed[4], 6);
  // Deterministic: the same probes again.
  std::vector<double> again;
  ASSERT_TRUE(serving::SearchMaxRate(ServingAt(1), [&](const v1::Serving& at) {
                return Linear(at, &again);
              }).ok());
  EXPECT_EQ(probed, again);
}

TEST(MaxRate, HalvesWhenTheStartMissesAndSaysWhenNothingMeets) {
  std::vector<double> probed;
  absl::StatusOr<v1::MaxRateReport> r = serving::SearchMaxRate(
      ServingAt(64), [&](const v1::Serving& at) { return Linear(at, &probed); });
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(probed[0], 64);
  EXPECT_EQ(probed[1], 32);
  EXPECT_TRUE(r->converged());
  EXPECT_LE(r->max_rate_per_s(), 5.0);

  v1::Serving never = ServingAt(1);
  never.mutable_slo()->set_tpot_s(0.01);  // below the 50 ms floor
  absl::StatusOr<v1::MaxRateReport> none =
      serving::SearchMaxRate(never, [&](const v1::Serving& at) { return Linear(at, &probed); });
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->max_rate_per_s(), 0);
  EXPECT_FALSE(none->converged());
  EXPECT_EQ(none->probes_size(), 1 + serving::kMaxBracketSteps);
  ASSERT_EQ(none->notes_size(), 1);
}

TEST(MaxRate, ProbesAreBounded) {
  std::vector<double> probed;
  serving::MaxRateOptions options;
  options.max_probes = 5;
  options.tolerance = 1e-9;
  absl::StatusOr<v1::MaxRateReport> r = serving::SearchMaxRate(
      ServingAt(1), [&](const v1::Serving& at) { return Linear(at, &probed); }, options);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->probes_size(), 5);
  EXPECT_FALSE(r->converged());
}

// Every probe's arrivals span the first probe's window: the request count
// scales with the rate (never below the scenario's), so a probe at a high
// rate is not over before its queue settles. Before, every probe ran the
// scenario's 200 requests: 1.6 s of arrivals at 128 requests/s.
TEST(MaxRate, RequestsScaleWithTheRateSoTheWindowStays) {
  v1::Serving s = ServingAt(4);
  s.set_num_requests(200);  // a 50 s window
  EXPECT_EQ(serving::ProbeServing(s, 4).num_requests(), 200);
  EXPECT_EQ(serving::ProbeServing(s, 8).num_requests(), 400);
  EXPECT_EQ(serving::ProbeServing(s, 128).num_requests(), 6400);
  EXPECT_EQ(serving::ProbeServing(s, 6).num_requests(), 300);
  EXPECT_EQ(serving::ProbeServing(s, 5).num_requests(), 250);
  EXPECT_EQ(serving::ProbeServing(s, 4.1001).num_requests(), 206);  // rounded up
  EXPECT_EQ(serving::ProbeServing(s, 1).num_requests(), 200);  // never fewer
  EXPECT_EQ(serving::ProbeServing(s, 8).arrival().rate_per_s(), 8);
  EXPECT_EQ(serving::ProbeServing(s, 8).seed(), s.seed());
  EXPECT_EQ(serving::ProbeServing(s, 1e9).num_requests(), serving::kMaxProbeRequests);
  s.clear_num_requests();  // the default, 1000
  EXPECT_EQ(serving::ProbeServing(s, 16).num_requests(), 4000);

  std::vector<int64_t> requests;
  absl::StatusOr<v1::MaxRateReport> r =
      serving::SearchMaxRate(ServingAt(1), [&](const v1::Serving& at) {
        requests.push_back(at.num_requests());
        std::vector<double> ignored;
        return Linear(at, &ignored);
      });
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(static_cast<int>(requests.size()), r->probes_size());
  for (int i = 0; i < r->probes_size(); ++i) {
    // ServingAt leaves num_requests unset: 1000 at the starting 1 request/s.
    const int64_t want = static_cast<int64_t>(
        std::max(1000.0, std::ceil(1000 * r->probes(i).rate_per_s())));
    EXPECT_EQ(r->probes(i).requests(), want) << r->probes(i).rate_per_s();
    EXPECT_EQ(requests[static_cast<size_t>(i)], want);
  }
  EXPECT_EQ(r->probes(3).requests(), 8000);  // 1, 2, 4, 8 requests/s
}

TEST(MaxRate, NeedsAnSloAndASyntheticRate) {
  v1::Serving s = ServingAt(4);
  s.clear_slo();
  absl::Status status = serving::CheckRateSearch(s, FieldLocator("x.textproto"));
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("serving.slo"), std::string::npos) << status;
  s = ServingAt(4);
  s.mutable_slo()->set_percentile(95);
  EXPECT_NE(serving::CheckRateSearch(s, FieldLocator("x")).message().find("50, 90 or 99"),
            std::string::npos);
  s = ServingAt(4);
  s.mutable_trace()->set_file("t.csv");
  EXPECT_FALSE(serving::CheckRateSearch(s, FieldLocator("x")).ok());
}

TEST(MaxRate, JudgeReadsTheSlosPercentileAndRefusals) {
  v1::ServeReport r;
  r.set_completed(10);
  r.set_refused(2);
  r.mutable_ttft()->set_p50_s(0.1);
  r.mutable_ttft()->set_p90_s(0.5);
  r.mutable_ttft()->set_p99_s(2.0);
  v1::Slo slo;
  slo.set_ttft_s(1.0);
  slo.set_percentile(99);
  const v1::RateProbe p = serving::JudgeSlo(r, slo);
  EXPECT_FALSE(p.met());
  ASSERT_EQ(p.misses_size(), 2);
  EXPECT_EQ(p.misses(0).metric(), "refused");
  EXPECT_EQ(p.misses(1).metric(), "ttft_p99");
  EXPECT_DOUBLE_EQ(p.misses(1).over_by(), 1.0);
  slo.set_percentile(90);
  r.set_refused(0);
  EXPECT_TRUE(serving::JudgeSlo(r, slo).met());
}

TEST(Search, SpearmanAndPareto) {
  EXPECT_DOUBLE_EQ(search::Spearman({1, 2, 3, 4}, {10, 20, 30, 40}), 1);
  EXPECT_DOUBLE_EQ(search::Spearman({1, 2, 3, 4}, {4, 3, 2, 1}), -1);
  // Ranks x = 1 2 3, y = 1.5 1.5 3: sum of centred products 1.5, variances 2 and 1.5.
  EXPECT_NEAR(search::Spearman({1, 2, 3}, {5, 5, 9}), 1.5 / std::sqrt(2 * 1.5), 1e-15);
  EXPECT_EQ(search::Spearman({1}, {1}), 0);
  // x higher is better, y lower is better.
  const std::vector<size_t> front =
      search::ParetoFront({{10, 1.0}, {20, 2.0}, {15, 2.5}, {20, 2.0}, {5, 0.5}});
  EXPECT_EQ(front, (std::vector<size_t>{0, 1, 3, 4}));
}

TEST(Search, PlanFilesAreChecked) {
  absl::StatusOr<search::PlanSpec> spec = search::LoadPlan("tests/data/plan/plan_small.textproto");
  ASSERT_TRUE(spec.ok()) << spec.status();
  // 2 GPUs x 3 tp x 2 dp, the last varying fastest.
  ASSERT_EQ(spec->candidates.size(), 12u);
  EXPECT_EQ(spec->candidates[1].key,
            "serving.arrival.rate_per_s=20;topology_file=../../../topologies/dgx_h100.textproto;"
            "topology.gpu=H100-SXM5-80GB;topology.gpu_price_per_hour=0;parallelism.tp=1;"
            "parallelism.dp=2;serving.num_requests=300");
  EXPECT_EQ(spec->candidates[11].gpu, "A100-SXM4-80GB");
  EXPECT_TRUE(spec->serving);

  absl::StatusOr<search::PlanSpec> missing = search::LoadPlan("tests/data/plan/none.textproto");
  EXPECT_FALSE(missing.ok());
}

// The estimate of the default scenario's static batch (Llama-3-70B, tp 8,
// DGX H100, 64 x (1024 + 1024)) under runtime terms given by `sets`, as
// (TTFT, TPOT).
std::pair<double, double> StaticEstimate(const std::vector<std::string>& sets) {
  const std::string path = absl::StrCat(::testing::TempDir(), "/plan_runtime_", ::getpid(),
                                        ".textproto");
  {
    std::ofstream out(path);
    out << "base_scenario: \"" << std::filesystem::current_path().string()
        << "/scenarios/default.textproto\"\n";
    for (const std::string& s : sets) out << "set: \"" << s << "\"\n";
    out << "space { tp: [8] }\nobjective: MAX_GOODPUT_PER_GPU\n";
  }
  absl::StatusOr<search::PlanSpec> spec = search::LoadPlan(path);
  EXPECT_TRUE(spec.ok()) << spec.status();
  if (!spec.ok() || spec->candidates.size() != 1) return {-1, -1};
  absl::StatusOr<std::unique_ptr<search::Estimator>> estimator = search::Estimator::Create(*spec);
  EXPECT_TRUE(estimator.ok()) << estimator.status();
  if (!estimator.ok()) return {-1, -1};
  v1::PlanCandidate out;
  (*estimator)->Evaluate(spec->candidates[0], &out);
  EXPECT_TRUE(out.estimated()) << out.reason();
  return {out.est_ttft_s(), out.est_tpot_s()};
}

// The estimate charges the named runtime's terms as the engine does
// (scenario::RuntimeProfile::StepTime), in closed form against the same
// scenario without them: the CPU step added or overlapped, one graph launch
// on a decode in a CUDA graph, and an eager prefill bounded by its launches.
TEST(Search, EstimateTakesTheRuntimeTerms) {
  const auto [ttft, tpot] = StaticEstimate({});
  ASSERT_GT(ttft, 0);
  ASSERT_GT(tpot, 0);
  // 0.25 s of CPU a step added to the GPU's; decodes of 64 in a CUDA graph
  // (captured up to 64, unpadded: GENERIC lists no capture sizes) pay 1 ms
  // to launch it; the prefill runs eagerly.
  const std::vector<std::string> graphs = {"runtime.cuda_graphs=true",
                                           "runtime.max_graph_batch=64",
                                           "runtime.graph_launch_s=0.001"};
  std::vector<std::string> added = graphs;
  added.push_back("runtime.cpu_step_s=0.25");
  const auto [ttft_added, tpot_added] = StaticEstimate(added);
  EXPECT_NEAR(ttft_added, ttft + 0.25, 1e-12);
  EXPECT_NEAR(tpot_added, tpot + 0.001 + 0.25, 1e-12);
  // Overlapped, a CPU step longer than any GPU step is the step.
  const auto [ttft_hidden, tpot_hidden] =
      StaticEstimate({"runtime.cpu_step_s=10", "runtime.cpu_overlaps_gpu=true"});
  EXPECT_DOUBLE_EQ(ttft_hidden, 10);
  EXPECT_DOUBLE_EQ(tpot_hidden, 10);
  // A host that takes 1 s a launch bounds the eager steps at their kernel
  // count (parallel::KernelLaunches of the one stage), not the graph's.
  absl::StatusOr<scenario::LoadedScenario> loaded =
      scenario::LoadScenario("scenarios/default.textproto", {});
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const parallel::Program program = parallel::BuildProgram(
      model::BuildGraph(loaded->model, loaded->plan.shard), loaded->plan);
  const int64_t kernels = parallel::KernelLaunches(program.Stage(0, 0));
  EXPECT_GT(kernels, 80 * 10);  // 80 layers of at least ten kernels
  std::vector<std::string> host_bound = graphs;
  host_bound.push_back("runtime.kernel_launch_s=1");
  const auto [ttft_host, tpot_host] = StaticEstimate(host_bound);
  EXPECT_DOUBLE_EQ(ttft_host, static_cast<double>(kernels));
  EXPECT_NEAR(tpot_host, tpot + 0.001, 1e-12);
  // The runtime's custom all-reduce: an all-reduce its kernels take costs
  // what the engine's custom kernels do alone on the links; the rest stay
  // on the ring formula.
  const auto [ttft_custom, tpot_custom] = StaticEstimate({"runtime.custom_all_reduce=true"});
  const parallel::StageProgram& stage = program.Stage(0, 0);
  const auto delta = [&](const model::StepShape& shape) {
    double d = 0;
    for (const parallel::CollectiveCount& cc : parallel::CountCollectives(stage)) {
      const std::vector<int>& group = parallel::GroupOf(stage, cc.comm);
      const int64_t bytes = cc.comm.Bytes(shape);
      d += static_cast<double>(cc.count) *
           (search::EstimateCollective(loaded->cluster, cc.comm.kind, group, bytes, true) -
            search::EstimateCollective(loaded->cluster, cc.comm.kind, group, bytes, false));
    }
    return d;
  };
  // Decode: all-reduces of 64 rows of 8192 BF16 values, 1 MiB, under vLLM's
  // 8 MiB limit: the custom kernels, faster. Prefill: 1 GiB, NCCL's ring.
  const std::vector<int> eight = {0, 1, 2, 3, 4, 5, 6, 7};
  EXPECT_EQ(search::EstimateCollective(loaded->cluster, parallel::CommKind::kAllReduce, eight,
                                       1 << 20, true),
            cost::CollectiveTimeAlone(loaded->cluster, loaded->cluster.collectives, eight,
                                      parallel::CommKind::kAllReduce, 1 << 20, true));
  EXPECT_EQ(search::EstimateCollective(loaded->cluster, parallel::CommKind::kAllReduce, eight,
                                       1 << 30, true),
            search::EstimateCollective(loaded->cluster, parallel::CommKind::kAllReduce, eight,
                                       1 << 30, false));
  EXPECT_LT(delta(model::DecodeStep(64, 1024 + 512)), 0);
  EXPECT_NEAR(tpot_custom, tpot + delta(model::DecodeStep(64, 1024 + 512)), 1e-12);
  EXPECT_EQ(ttft_custom, ttft);
}

// Every candidate the ledger prunes does not fit when its scenario is loaded
// from files with its overrides, and every one it keeps does.
TEST(Search, MemoryPruningAgreesWithTheLedgerOfTheLoadedScenario) {
  absl::StatusOr<search::PlanSpec> spec =
      search::LoadPlan("tests/data/plan/plan_memory.textproto");
  ASSERT_TRUE(spec.ok()) << spec.status();
  absl::StatusOr<std::unique_ptr<search::Estimator>> estimator = search::Estimator::Create(*spec);
  ASSERT_TRUE(estimator.ok()) << estimator.status();
  int pruned = 0, kept = 0;
  for (const search::CandidateSpec& c : spec->candidates) {
    v1::PlanCandidate out;
    (*estimator)->Evaluate(c, &out);
    if (out.status() == "invalid") continue;
    absl::StatusOr<scenario::LoadedScenario> loaded =
        scenario::LoadScenario(spec->base_scenario, c.overrides);
    ASSERT_TRUE(loaded.ok()) << c.key << ": " << loaded.status();
    const v1::MemoryReport memory = memory::ComputeMemoryReport(
        *loaded, (*estimator)->MemoryWorkload(loaded->plan.dp));
    EXPECT_EQ(memory.fits(), out.status() != "does_not_fit") << c.key;
    if (out.status() == "does_not_fit") {
      ++pruned;
      EXPECT_GT(out.over_by_bytes(), 0);
      EXPECT_FALSE(out.overflow_component().empty());
      EXPECT_FALSE(memory.gpus(out.overflow_gpu()).fits());
      EXPECT_EQ(memory.gpus(out.overflow_gpu()).over_by_bytes(), out.over_by_bytes());
    } else {
      ++kept;
      EXPECT_TRUE(out.estimated());
    }
  }
  EXPECT_GT(pruned, 10);
  EXPECT_GT(kept, 10);
}

// The pool pairs of a plan with search_disaggregation: every (prefill tp x
// replicas, decode tp x replicas) with replicas >= 1 within the cluster, in
// closed form, after the plans without pools.
TEST(Search, PoolPairsAreEveryPairThatFitsTheCluster) {
  absl::StatusOr<search::PlanSpec> spec =
      search::LoadPlan("scenarios/plan_disagg_qwen3_32b_h100.textproto");
  ASSERT_TRUE(spec.ok()) << spec.status();
  // #{(x, y) >= 1 : a x + b y <= 8} summed over tp a, b in {2, 4}:
  // (2, 2): 3 + 2 + 1 = 6; (2, 4): 1 + 1 = 2; (4, 2): 2; (4, 4): 1.
  constexpr int kGpus = 8;
  int closed_form = 0;
  for (int a : {2, 4}) {
    for (int b : {2, 4}) {
      for (int x = 1; a * x + b <= kGpus; ++x) closed_form += (kGpus - a * x) / b;
    }
  }
  EXPECT_EQ(closed_form, 11);
  const size_t mixed = 2 * 3;  // tp [2, 4] x dp [1, 2, 4]
  ASSERT_EQ(spec->candidates.size(), mixed + static_cast<size_t>(closed_form));
  for (size_t i = 0; i < spec->candidates.size(); ++i) {
    const search::CandidateSpec& c = spec->candidates[i];
    EXPECT_EQ(c.disaggregated(), i >= mixed) << c.key;
    if (!c.disaggregated()) continue;
    EXPECT_LE(c.prefill_tp * c.prefill_replicas + c.decode_tp * c.decode_replicas, kGpus);
  }
  // The first pair is 1P1D at tp=2, as --set overrides that add the pools,
  // its requests scaled to its larger pool's replicas (100 per replica).
  EXPECT_EQ(spec->candidates[mixed].key,
            "pools[0].name=prefill;pools[0].role=PREFILL;pools[0].parallelism.tp=2;"
            "pools[0].parallelism.dp=1;pools[1].name=decode;pools[1].role=DECODE;"
            "pools[1].parallelism.tp=2;pools[1].parallelism.dp=1");
  // Prefill tp=2: x=1 with y=1..3 at tp=2 then y=1 at tp=4, x=2 with 2 + 1,
  // then x=3: the eighth pair.
  const search::CandidateSpec& p3d1 = spec->candidates[mixed + 7];
  EXPECT_EQ(p3d1.prefill_replicas, 3);
  EXPECT_EQ(p3d1.decode_replicas, 1);
  EXPECT_NE(p3d1.key.find("serving.num_requests=300"), std::string::npos) << p3d1.key;

  // Each is valid, fits, gets DeploymentName's label and the pair's
  // closed-form estimate: 3P1D keeps up with 8 requests/s, while one tp=2
  // prefill replica cannot (the simulation's TTFT p50 is 1.5 s).
  absl::StatusOr<std::unique_ptr<search::Estimator>> estimator = search::Estimator::Create(*spec);
  ASSERT_TRUE(estimator.ok()) << estimator.status();
  v1::PlanCandidate out;
  (*estimator)->Evaluate(p3d1, &out);
  EXPECT_EQ(out.status(), "") << out.reason();
  EXPECT_TRUE(out.fits());
  EXPECT_TRUE(out.estimated());
  EXPECT_TRUE(out.est_meets_slo()) << out.reason();
  EXPECT_GT(out.est_ttft_s(), 0);
  EXPECT_GT(out.est_tpot_s(), 0);
  EXPECT_EQ(out.deployment(), "P tp2x3 + D tp2x1");
  EXPECT_EQ(out.num_gpus(), 8);
  v1::PlanCandidate p1d1;
  (*estimator)->Evaluate(spec->candidates[mixed], &p1d1);
  EXPECT_TRUE(p1d1.estimated());
  EXPECT_FALSE(p1d1.est_meets_slo());
  EXPECT_NE(p1d1.reason().find("estimated"), std::string::npos) << p1d1.reason();
}

// The pair's closed form on a tiny case: t_p = 100 ms on x = 2 prefill
// replicas, t_d(b) = 10 ms + 1 ms x b up to B = 100 on y = 1 decode replica,
// t_x = 5 ms, O = 10 tokens. Capacity min(2 / 0.1, 100 / (10 x 0.11)) = 20/s.
// At 10/s: rho_p = 10 x 0.1 / 2 = 0.5, TTFT = 0.1 / 0.5 + 0.005 = 0.205 s;
// b = 10 x 10 x 0.01 / (1 - 10 x 10 x 0.001) = 10/9, TPOT = 0.01 + 0.001 x
// 10/9; E2E = TTFT + 9 TPOT. Saturated from 0.98 x 20 = 19.6/s.
TEST(Search, PoolPairEstimateInClosedForm) {
  search::PoolPairShape pair;
  pair.prefill_s = 0.1;
  pair.prefill_replicas = 2;
  pair.decode_base_s = 0.01;
  pair.decode_slope_s = 0.001;
  pair.decode_max_batch = 100;
  pair.decode_replicas = 1;
  pair.transfer_s = 0.005;
  pair.mean_output = 10;
  EXPECT_DOUBLE_EQ(search::PoolPairCapacity(pair), 20);
  const search::ServingAt at = search::EstimatePoolPair(pair, 10);
  ASSERT_TRUE(at.ok);
  EXPECT_DOUBLE_EQ(at.ttft_s, 0.205);
  const double tpot = 0.01 + 0.001 * 10.0 / 9.0;
  EXPECT_DOUBLE_EQ(at.tpot_s, tpot);
  EXPECT_DOUBLE_EQ(at.e2e_s, 0.205 + 9 * tpot);
  EXPECT_TRUE(search::EstimatePoolPair(pair, 19.5).ok);
  EXPECT_FALSE(search::EstimatePoolPair(pair, 19.6).ok);
  // The decode stage limits when it is the lesser: y B / (O t_d(B)).
  pair.decode_max_batch = 2;
  EXPECT_DOUBLE_EQ(search::PoolPairCapacity(pair), 2 / (10 * (0.01 + 0.001 * 2)));
}

// A plan written beside the shipped base scenario, with `space`.
std::string PlanWith(const std::string& space, const std::string& objective) {
  const std::string dir = ::testing::TempDir();
  const std::string path = absl::StrCat(dir, "/plan_pools_", ::getpid(), ".textproto");
  std::ofstream out(path);
  out << "base_scenario: \"" << std::filesystem::current_path().string()
      << "/scenarios/serve_qwen3_32b_h100_8rps.textproto\"\nspace { " << space
      << " }\nobjective: " << objective << "\n";
  return path;
}

TEST(Search, PoolPairsOnTheWholeClusterAndBadInput) {
  absl::StatusOr<search::PlanSpec> whole = search::LoadPlan(
      PlanWith("tp: [2, 4] search_disaggregation: true use_whole_cluster: true", "FEWEST_GPUS"));
  ASSERT_TRUE(whole.ok()) << whole.status();
  // a x + b y = 8 exactly: (2, 2): x + y = 4, 3 pairs; (2, 4): x = 2; (4, 2): y = 2;
  // (4, 4): 1.
  int pairs = 0;
  for (const search::CandidateSpec& c : whole->candidates) {
    if (!c.disaggregated()) continue;
    ++pairs;
    EXPECT_EQ(c.prefill_tp * c.prefill_replicas + c.decode_tp * c.decode_replicas, 8);
  }
  EXPECT_EQ(pairs, 6);

  const auto error = [](const std::string& path) {
    absl::StatusOr<search::PlanSpec> spec = search::LoadPlan(path);
    return spec.ok() ? std::string("loaded") : std::string(spec.status().message());
  };
  const std::string small = PlanWith("tp: [8] search_disaggregation: true", "FEWEST_GPUS");
  // One line naming the file, the line of `space` and the field.
  EXPECT_EQ(error(small).rfind(absl::StrCat(small, ":2:"), 0), 0u) << error(small);
  EXPECT_NE(error(small).find(": space.search_disaggregation: no prefill/decode pool pair fits: "
                              "the smallest needs 16 GPUs (a tp=8 replica in each pool), but "
                              "DGX-H100 has 8"),
            std::string::npos)
      << error(small);
  EXPECT_EQ(error(small).find('\n'), std::string::npos);
  const std::string rate = PlanWith("search_disaggregation: true", "MAX_GOODPUT_PER_GPU");
  EXPECT_NE(error(rate).find("space.search_disaggregation: needs objective "
                             "MIN_COST_PER_MILLION_TOKENS or FEWEST_GPUS"),
            std::string::npos)
      << error(rate);
}

}  // namespace
}  // namespace shardsim
