#include "sim/search/estimate.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "sim/base/units.h"
#include "sim/cost/collective_model.h"
#include "sim/memory/ledger.h"
#include "sim/memory/pool_memory.h"
#include "sim/parallel/kv_transfer.h"
#include "sim/parallel/partition.h"
#include "sim/parallel/program.h"
#include "sim/scenario/pools.h"
#include "sim/scenario/overrides.h"
#include "sim/serving/max_rate.h"
#include "sim/serving/requests.h"
#include "sim/serving/scheduler.h"

namespace shardsim::search {
namespace {

// vLLM's default --gpu-memory-utilization, as the serving driver takes it
// (sim/engine/serving_driver.cc kDefaultUtilization).
constexpr double kDefaultUtilization = 0.9;

// The largest share of a replica's time prefills may take before the
// estimate calls it saturated: past it the closed forms divide by ~0.
constexpr double kSaturated = 0.98;

double PercentileOf(const v1::Slo& slo) {
  return slo.percentile() == 0 ? serving::kDefaultSloPercentile : slo.percentile();
}

// The KV cache blocks replica 0 of `plan` holds by vLLM's rule, as the
// serving drivers size it: `utilization` of the GPU after a profiling step
// of max_num_batched_tokens over max_num_seqs sequences (the fewest over its
// stages), or the scheduler's override.
int64_t ReplicaKvBlocks(const model::ModelGraph& graph, const parallel::Plan& plan,
                        const v1::Runtime& runtime_config, int64_t capacity_bytes,
                        const v1::SchedulerConfig& scheduler,
                        const serving::SchedulerLimits& limits) {
  if (scheduler.num_gpu_blocks_override() > 0) return scheduler.num_gpu_blocks_override();
  const double utilization = scheduler.gpu_memory_utilization() > 0
                                 ? scheduler.gpu_memory_utilization()
                                 : kDefaultUtilization;
  const int64_t profile_sequences = std::min(limits.max_num_seqs, limits.max_num_batched_tokens);
  std::vector<model::SequenceStep> profile;
  for (int64_t i = 0; i < profile_sequences; ++i) {
    profile.push_back({limits.max_num_batched_tokens / profile_sequences +
                           (i < limits.max_num_batched_tokens % profile_sequences ? 1 : 0),
                       0, true});
  }
  const model::StepShape profile_shape = model::ShapeOf(profile);
  const memory::RuntimeOverheads runtime = memory::ResolveRuntime(runtime_config, capacity_bytes);
  int64_t blocks = std::numeric_limits<int64_t>::max();
  for (int stage = 0; stage < plan.pp; ++stage) {
    const parallel::Rank& rank = plan.ranks[static_cast<size_t>(plan.RankIndex(0, stage, 0))];
    blocks = std::min(blocks, memory::KvCacheBlocks(graph, plan, rank, runtime, capacity_bytes,
                                                    utilization, limits.block_size,
                                                    profile_shape));
  }
  return blocks;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Estimator>> Estimator::Create(const PlanSpec& spec) {
  std::unique_ptr<Estimator> e(new Estimator(spec));
  for (const Prototype& p : spec.prototypes) {
    Proto proto;
    std::vector<std::string> overrides = p.overrides;
    // Degrees that always partition: each candidate's own are applied later.
    for (const char* o : {"parallelism.tp=1", "parallelism.pp=1", "parallelism.dp=1",
                          "parallelism.ep=1", "parallelism.micro_batches=0"}) {
      overrides.push_back(o);
    }
    absl::StatusOr<scenario::LoadedScenario> loaded =
        scenario::LoadScenario(spec.base_scenario, overrides);
    if (!loaded.ok()) {
      proto.status = loaded.status();
    } else {
      proto.loaded = *std::move(loaded);
      proto.cost = std::make_unique<cost::CostModel>(
          proto.loaded.cluster.gpu, proto.loaded.model, proto.loaded.cluster.profile);
      proto.runtime = scenario::ResolveRuntimeProfile(proto.loaded.runtime);
    }
    e->protos_.push_back(std::move(proto));
  }
  // The request stream, once: what each candidate is judged at.
  absl::StatusOr<scenario::LoadedScenario> base = scenario::LoadScenario(
      spec.base_scenario, {spec.plan.set().begin(), spec.plan.set().end()});
  if (!base.ok()) return base.status();
  e->base_parallelism_ = base->scenario.parallelism();
  if (spec.serving) {
    const v1::Serving& serving = base->scenario.serving();
    absl::Status checked = serving::CheckServing(serving, base->where);
    if (!checked.ok()) return checked;
    absl::StatusOr<std::unique_ptr<serving::RequestSource>> source =
        serving::MakeSource(serving, spec.base_scenario);
    if (!source.ok()) return source.status();
    double prompt = 0, output = 0, first = -1, last = 0;
    int64_t n = 0;
    while (std::optional<serving::Request> r = (*source)->Next()) {
      prompt += static_cast<double>(r->prompt_tokens);
      output += static_cast<double>(r->output_tokens);
      e->requests_.max_prompt = std::max(e->requests_.max_prompt, r->prompt_tokens);
      e->requests_.max_output = std::max(e->requests_.max_output, r->output_tokens);
      if (first < 0) first = r->arrival_s;
      last = r->arrival_s;
      ++n;
    }
    if (n == 0) return absl::InvalidArgumentError("the base scenario's serving block has no requests");
    e->requests_.mean_prompt = prompt / static_cast<double>(n);
    e->requests_.mean_output = output / static_cast<double>(n);
    const bool synthetic = serving.trace().file().empty() &&
                           serving.arrival().kind() != v1::ArrivalProcess::ALL_AT_ONCE;
    e->target_rate_ = synthetic ? serving.arrival().rate_per_s()
                      : last > first ? static_cast<double>(n - 1) / (last - first)
                                     : 0;
    e->slo_ = serving.slo();
  } else {
    const v1::Workload& w = base->scenario.workload();
    e->static_workload_ = w;
    e->requests_.mean_prompt = static_cast<double>(w.prompt_len());
    e->requests_.mean_output = static_cast<double>(w.output_len());
    e->requests_.max_prompt = w.prompt_len();
    e->requests_.max_output = w.output_len();
    e->slo_.set_ttft_s(spec.plan.static_ttft_s());
    e->slo_.set_tpot_s(spec.plan.static_tpot_s());
    e->slo_.set_percentile(99);
  }
  e->percentile_ = PercentileOf(e->slo_);
  return e;
}

v1::Workload Estimator::MemoryWorkload(int32_t dp) const {
  if (!spec_.serving) return static_workload_;
  v1::Workload w;
  w.set_batch_size(std::max(1, dp));
  w.set_prompt_len(std::max<int64_t>(1, requests_.max_prompt));
  w.set_output_len(requests_.max_output);
  return w;
}

double EstimateCollective(const hardware::Cluster& cluster, parallel::CommKind kind,
                          const std::vector<int>& group, int64_t bytes, bool custom_all_reduce) {
  const int n = static_cast<int>(group.size());
  if (n <= 1 || bytes <= 0) return 0;
  const v1::CollectiveTuning& t = cluster.collectives;
  if (custom_all_reduce && kind == parallel::CommKind::kAllReduce) {
    const cost::CollectivePlan plan = cost::PlanCollective(cluster, group, kind, bytes, true);
    if (cost::IsCustomAllReduce(plan.algorithm)) {
      return cost::CustomAllReduceTimeAlone(cluster, t, group, plan, bytes);
    }
  }
  // The ring's slowest hop over GPUs 0 .. n-1 (ties: the longer latency),
  // as sim/cost/calibration's PredictCollective takes it.
  double bandwidth = std::numeric_limits<double>::infinity();
  double latency = 0;
  int from = 0, to = 1;
  for (int r = 0; r < n; ++r) {
    const int next = (r + 1) % n;
    const double b = cluster.RouteBandwidth(r, next);
    const double l = cluster.RouteLatency(r, next);
    if (b < bandwidth || (b == bandwidth && l > latency)) {
      bandwidth = b;
      latency = l;
      from = r;
      to = next;
    }
  }
  const double ring_efficiency = cluster.CollectiveEfficiency(from, to);
  double steps = 2.0 * (n - 1);  // all-reduce: reduce-scatter + all-gather
  double chunk = std::ceil(static_cast<double>(bytes) / n);
  if (kind == parallel::CommKind::kAllGather || kind == parallel::CommKind::kReduceScatter) {
    steps = n - 1;
  } else if (kind == parallel::CommKind::kAllToAll) {
    // One phase: every GPU sends its (n - 1) / n share at once.
    steps = 1;
    chunk = static_cast<double>(bytes) * (n - 1) / n;
  }
  const double efficiency = ring_efficiency > 0 ? ring_efficiency : 1;
  return t.launch_s() + steps * (latency + t.step_latency_s() + chunk / (bandwidth * efficiency));
}

double Estimator::StepTime(Proto& p, const model::ModelGraph& graph,
                           const parallel::Program& program, const parallel::Plan& plan,
                           const model::StepShape& step_shape) {
  const cost::CostModel& cost = *p.cost;
  const scenario::RuntimeProfile& engine = p.runtime;
  const hardware::Cluster& cluster = p.loaded.cluster;
  // A decode in a CUDA graph computes its padded batch after one graph
  // launch, an eager step is bounded by its kernel launches, the first stage
  // pays the CPU step, overlapped or added.
  const bool decode_only = scenario::RuntimeProfile::IsDecodeOnly(step_shape);
  const model::StepShape shape = engine.RunShape(step_shape);
  double total = 0;
  for (int stage = 0; stage < plan.pp; ++stage) {
    const parallel::StageProgram& sp = program.Stage(0, stage);
    const parallel::Rank& rank = plan.ranks[static_cast<size_t>(plan.RankIndex(0, stage, 0))];
    double gpu_s = cost.LayersTime(graph, rank.first_layer, rank.num_layers, shape);
    if (rank.has_embedding) gpu_s += cost.Time(graph.embedding, shape);
    if (stage == plan.pp - 1) gpu_s += cost.Time(graph.tail, shape);
    for (const parallel::CollectiveCount& cc : parallel::CountCollectives(sp)) {
      gpu_s += static_cast<double>(cc.count) *
               EstimateCollective(cluster, cc.comm.kind, parallel::GroupOf(sp, cc.comm),
                                  cc.comm.Bytes(shape), engine.custom_all_reduce);
    }
    total += engine.StepTime(gpu_s, parallel::KernelLaunches(sp), decode_only,
                             step_shape.sequences, stage == 0);
    if (sp.to_next_stage.has_value() && sp.gpus.size() > 0) {
      const parallel::StageProgram& next = program.Stage(0, stage + 1);
      const int a = sp.gpus[0], b = next.gpus[0];
      const double eff = cluster.collectives.p2p_bandwidth_efficiency() > 0
                             ? cluster.collectives.p2p_bandwidth_efficiency()
                             : 1;
      total += cluster.collectives.p2p_launch_s() + cluster.RouteLatency(a, b) +
               static_cast<double>(sp.to_next_stage->Bytes(shape)) /
                   (cluster.RouteBandwidth(a, b) * eff);
    }
  }
  return total;
}

Estimator::RateVerdict Estimator::JudgeRates(const std::function<ServingAt(double)>& at,
                                              double capacity, int units, int num_gpus,
                                              double price, double mean_output) const {
  const double O = mean_output;
  auto meets = [&](const ServingAt& r) {
    return r.ok && (slo_.ttft_s() <= 0 || r.ttft_s <= slo_.ttft_s()) &&
           (slo_.tpot_s() <= 0 || r.tpot_s <= slo_.tpot_s()) &&
           (slo_.e2e_s() <= 0 || r.e2e_s <= slo_.e2e_s());
  };
  RateVerdict v;
  // The highest rate meeting the SLO: the latencies grow with the rate, so
  // bisect (closed forms only, no step times).
  double lo = 0, hi = kSaturated * capacity;
  if (!meets(at(lo + 1e-12 * hi))) {
    hi = 0;
  } else {
    for (int i = 0; i < 40; ++i) {
      const double mid = (lo + hi) / 2;
      (meets(at(mid)) ? lo : hi) = mid;
    }
  }
  v.max_rate_per_s = lo * units;
  const v1::Plan::Objective objective = spec_.plan.objective();
  const bool at_target = objective == v1::Plan::MIN_COST_PER_MILLION_TOKENS ||
                         objective == v1::Plan::FEWEST_GPUS;
  const double judged = at_target ? target_rate_ / units : lo;
  const ServingAt r = at(judged > 0 ? judged : 1e-12 * capacity);
  v.ttft_s = r.ttft_s;
  v.tpot_s = r.tpot_s;
  const double rate = at_target ? target_rate_ : v.max_rate_per_s;
  v.tokens_per_s_per_gpu = rate * O / num_gpus;
  if (price > 0 && rate > 0) v.cost_per_million_tokens = price * num_gpus * 1e6 / (rate * O * 3600);
  if (at_target) {
    v.feasible = meets(r);
    if (!v.feasible) {
      v.why_not = r.ok ? absl::StrFormat("estimated at %.4g requests/s: TTFT %s, TPOT %s",
                                         target_rate_, FormatSeconds(r.ttft_s),
                                         FormatSeconds(r.tpot_s))
                       : absl::StrFormat("estimated saturated below %.4g requests/s (at most "
                                         "%.4g)",
                                         target_rate_, capacity * units);
    }
  } else {
    v.feasible = v.max_rate_per_s > 0;
    if (!v.feasible) v.why_not = "no rate meets the SLO by the estimate";
  }
  return v;
}

bool Estimator::JudgeMemory(const parallel::Deployment& d, const v1::Workload& workload,
                            v1::PlanCandidate* out) {
  const v1::MemoryReport memory = memory::ComputeMemoryReport(d, workload);
  out->set_fits(memory.fits());
  if (!memory.fits()) {
    // The GPU over by the most bytes (the first such, by index).
    const v1::GpuMemory* worst = nullptr;
    for (const v1::GpuMemory& g : memory.gpus()) {
      if (!g.fits() && (worst == nullptr || g.over_by_bytes() > worst->over_by_bytes())) worst = &g;
    }
    out->set_status("does_not_fit");
    if (worst != nullptr) {
      out->set_overflow_gpu(worst->gpu());
      out->set_overflow_component(worst->overflow_component());
      out->set_over_by_bytes(worst->over_by_bytes());
      out->set_reason(absl::StrFormat("does not fit: GPU %d %s over by %s", worst->gpu(),
                                      worst->overflow_component(),
                                      FormatBytes(worst->over_by_bytes())));
    } else {
      out->set_reason("does not fit");
    }
    return false;
  }
  return true;
}

double PoolPairCapacity(const PoolPairShape& pair) {
  const double t_full = pair.decode_base_s + pair.decode_slope_s * pair.decode_max_batch;
  const double prefill = pair.prefill_s > 0 ? pair.prefill_replicas / pair.prefill_s
                                            : std::numeric_limits<double>::infinity();
  const double decode = t_full > 0 ? pair.decode_replicas * pair.decode_max_batch /
                                         (pair.mean_output * t_full)
                                   : std::numeric_limits<double>::infinity();
  return std::min(prefill, decode);
}

ServingAt EstimatePoolPair(const PoolPairShape& pair, double rate_per_s) {
  ServingAt r;
  const double l = rate_per_s;
  const double rho_p = l * pair.prefill_s / pair.prefill_replicas;
  const double per_decode = l / pair.decode_replicas;
  const double denom = 1 - per_decode * pair.mean_output * pair.decode_slope_s;
  if (l >= kSaturated * PoolPairCapacity(pair) || rho_p >= kSaturated || denom <= 0) return r;
  const double b = std::max(1.0, per_decode * pair.mean_output * pair.decode_base_s / denom);
  r.tpot_s = pair.decode_base_s + pair.decode_slope_s * b;
  r.ttft_s = pair.prefill_s / (1 - rho_p) + pair.transfer_s;
  r.e2e_s = r.ttft_s + (pair.mean_output - 1) * r.tpot_s;
  r.ok = true;
  return r;
}

void Estimator::EvaluatePools(const CandidateSpec& c, Proto& p, v1::PlanCandidate* out) {
  const scenario::LoadedScenario& base = p.loaded;
  out->set_prefill_tp(c.prefill_tp);
  out->set_prefill_replicas(c.prefill_replicas);
  out->set_decode_tp(c.decode_tp);
  out->set_decode_replicas(c.decode_replicas);
  out->set_num_gpus(c.prefill_tp * c.prefill_replicas + c.decode_tp * c.decode_replicas);
  // The label scenario::DeploymentName gives the serving report of it.
  v1::ServeReport named;
  for (const auto& [role, tp, replicas] :
       {std::tuple<const char*, int32_t, int32_t>{"PREFILL", c.prefill_tp, c.prefill_replicas},
        {"DECODE", c.decode_tp, c.decode_replicas}}) {
    v1::PoolServe* pool = named.add_pools();
    pool->set_role(role);
    pool->set_tp(tp);
    pool->set_pp(1);
    pool->set_dp(replicas);
  }
  out->set_deployment(scenario::DeploymentName(named));
  v1::SchedulerConfig scheduler = base.scenario.serving().scheduler();
  if (c.max_num_seqs > 0) scheduler.set_max_num_seqs(c.max_num_seqs);
  if (c.max_num_batched_tokens > 0) scheduler.set_max_num_batched_tokens(c.max_num_batched_tokens);
  const serving::SchedulerLimits limits = serving::ResolveLimits(scheduler, 0);
  out->set_max_num_seqs(static_cast<int32_t>(limits.max_num_seqs));
  out->set_max_num_batched_tokens(limits.max_num_batched_tokens);
  // Validity: the loader's own checks of the pools (placement, each pool's
  // partition), with its one-line error as the reason.
  absl::StatusOr<scenario::LoadedScenario> loaded =
      scenario::LoadScenario(spec_.base_scenario, c.overrides);
  if (!loaded.ok()) {
    out->set_status("invalid");
    out->set_reason(std::string(loaded.status().message()));
    return;
  }
  // Memory of each pool, by the ledger, as for a plan over the whole cluster.
  const parallel::PoolPlan* prefill = nullptr;
  const parallel::PoolPlan* decode = nullptr;
  for (const parallel::PoolPlan& pool : loaded->pools) {
    if (!JudgeMemory(memory::PoolDeployment(*loaded, pool), MemoryWorkload(pool.plan.dp), out)) {
      out->set_reason(absl::StrCat("pool '", pool.name, "' ", out->reason()));
      return;
    }
    if (pool.role == v1::Pool::PREFILL && prefill == nullptr) prefill = &pool;
    if (pool.role == v1::Pool::DECODE && decode == nullptr) decode = &pool;
  }
  if (!spec_.serving || prefill == nullptr || decode == nullptr) return;  // the loader refuses

  // The estimate: each stage on its own pool's plan (sim/search/estimate.h).
  const double P = std::max(1.0, requests_.mean_prompt);
  const double O = std::max(1.0, requests_.mean_output);
  const int64_t context = static_cast<int64_t>(std::llround(P + O / 2));
  const int64_t prompt = static_cast<int64_t>(std::llround(P));
  const model::ModelGraph prefill_graph = model::BuildGraph(loaded->model, prefill->plan.shard);
  const parallel::Program prefill_program = parallel::BuildProgram(prefill_graph, prefill->plan);
  const model::ModelGraph decode_graph = model::BuildGraph(loaded->model, decode->plan.shard);
  const parallel::Program decode_program = parallel::BuildProgram(decode_graph, decode->plan);
  PoolPairShape pair;
  pair.prefill_replicas = prefill->plan.dp;
  pair.decode_replicas = decode->plan.dp;
  pair.mean_output = O;
  pair.prefill_s =
      StepTime(p, prefill_graph, prefill_program, prefill->plan, model::PrefillStep(1, prompt));
  const serving::SchedulerLimits decode_limits = serving::ResolveLimits(decode->scheduler, 0);
  const int64_t blocks =
      ReplicaKvBlocks(decode_graph, decode->plan, loaded->runtime,
                      loaded->cluster.gpu.capacity_bytes(), decode->scheduler, decode_limits);
  const double B =
      std::min(static_cast<double>(decode_limits.max_num_seqs),
               std::floor(static_cast<double>(blocks * decode_limits.block_size) / (P + O / 2)));
  const int num_gpus = out->num_gpus();
  if (B < 1) {
    SetEstimate(0, 0, 0, 0, 0, false, "the decode pool's KV cache holds no request by vLLM's rule",
                num_gpus, out);
    return;
  }
  const int64_t b_max = static_cast<int64_t>(B);
  pair.decode_max_batch = B;
  pair.decode_base_s = StepTime(p, decode_graph, decode_program, decode->plan,
                                model::DecodeStep(1, context));
  const double t_full = b_max > 1 ? StepTime(p, decode_graph, decode_program, decode->plan,
                                             model::DecodeStep(b_max, context))
                                  : pair.decode_base_s;
  pair.decode_slope_s = b_max > 1 ? std::max(0.0, (t_full - pair.decode_base_s) / (B - 1)) : 0;
  // A mean prompt's KV cache from prefill replica 0 to decode replica 0, on
  // the candidate's own cluster (the pools' real GPUs and routes).
  const v1::KvTransfer& kv = loaded->scenario.kv_transfer();
  const double transfer = parallel::IdleKvTransferSeconds(
      loaded->cluster, parallel::KvTransferFlows(loaded->model, prefill->plan, 0, decode->plan, 0),
      prompt, loaded->model.sliding_window,
      kv.bandwidth_efficiency() > 0 ? kv.bandwidth_efficiency() : 1.0);
  const double layers = static_cast<double>(std::max<int64_t>(1, loaded->model.num_layers));
  pair.transfer_s = kv.overlap_layers()
                        ? std::max(transfer / layers,
                                   transfer - pair.prefill_s * (layers - 1) / layers)
                        : transfer;
  const RateVerdict v =
      JudgeRates([&](double l) { return EstimatePoolPair(pair, l); }, PoolPairCapacity(pair), 1,
                 num_gpus, base.cluster.gpu_price_per_hour, O);
  SetEstimate(v.ttft_s, v.tpot_s, v.tokens_per_s_per_gpu, v.max_rate_per_s,
              v.cost_per_million_tokens, v.feasible, v.why_not, num_gpus, out);
}

void Estimator::Evaluate(const CandidateSpec& c, v1::PlanCandidate* out) {
  out->set_index(c.index);
  out->set_key(c.key);
  for (const std::string& o : c.overrides) out->add_overrides(o);
  out->set_recipe(c.recipe);
  Proto& p = protos_[static_cast<size_t>(c.prototype)];
  if (!p.status.ok()) {
    out->set_status("invalid");
    out->set_reason(std::string(p.status.message()));
    return;
  }
  const scenario::LoadedScenario& base = p.loaded;
  out->set_cluster(base.cluster.name);
  out->set_gpu(base.cluster.gpu.name());
  out->set_price_per_hour(base.cluster.gpu_price_per_hour);
  if (c.disaggregated()) {
    EvaluatePools(c, p, out);
    return;
  }
  // The candidate's degrees; the base scenario's where the plan sets none.
  v1::Parallelism parallelism = base_parallelism_;
  auto pick = [](int32_t planned, int32_t own) { return planned > 0 ? planned : std::max(1, own); };
  parallelism.set_tp(pick(c.tp, base_parallelism_.tp()));
  parallelism.set_pp(pick(c.pp, base_parallelism_.pp()));
  parallelism.set_dp(pick(c.dp, base_parallelism_.dp()));
  parallelism.set_ep(pick(c.ep, base_parallelism_.ep()));
  out->set_tp(parallelism.tp());
  out->set_pp(parallelism.pp());
  out->set_dp(parallelism.dp());
  out->set_ep(parallelism.ep());
  const int num_gpus = parallelism.tp() * parallelism.pp() * parallelism.dp();
  out->set_num_gpus(num_gpus);
  const v1::SchedulerConfig& scheduler_config = base.scenario.serving().scheduler();
  v1::SchedulerConfig scheduler = scheduler_config;
  if (c.max_num_seqs > 0) scheduler.set_max_num_seqs(c.max_num_seqs);
  if (c.max_num_batched_tokens > 0) scheduler.set_max_num_batched_tokens(c.max_num_batched_tokens);
  const serving::SchedulerLimits limits = serving::ResolveLimits(scheduler, 0);
  if (spec_.serving) {
    out->set_max_num_seqs(static_cast<int32_t>(limits.max_num_seqs));
    out->set_max_num_batched_tokens(limits.max_num_batched_tokens);
  }
  if (spec_.plan.space().use_whole_cluster() && num_gpus < base.cluster.num_gpus()) {
    out->set_status("invalid");
    out->set_reason(absl::StrFormat(
        "uses %d of the cluster's %d GPUs (space.use_whole_cluster)", num_gpus,
        base.cluster.num_gpus()));
    return;
  }
  // Errors name the candidate's --set, as the loader would.
  FieldLocator where = base.where;
  for (const std::string& o : c.overrides) {
    const size_t eq = o.find('=');
    where.AddOverride(o.substr(0, eq), o);
  }
  absl::StatusOr<parallel::Plan> plan =
      parallel::Partition(base.model, parallelism, base.cluster, where);
  if (!plan.ok()) {
    out->set_status("invalid");
    out->set_reason(std::string(plan.status().message()));
    return;
  }

  // Memory, by the ledger.
  parallel::Deployment d;
  d.name = base.name;
  d.model = base.model;
  d.plan = *std::move(plan);
  d.runtime = base.runtime;
  // The cluster is large (links, routes): the memory report reads only its
  // GPU, so the prototype's is used in place.
  const v1::Workload memory_workload = MemoryWorkload(parallelism.dp());
  {
    d.cluster.name = base.cluster.name;
    d.cluster.gpu = base.cluster.gpu;
    d.cluster.num_nodes = base.cluster.num_nodes;
    d.cluster.gpus_per_node = base.cluster.gpus_per_node;
  }
  if (!JudgeMemory(d, memory_workload, out)) return;

  // The estimate.
  const model::ModelGraph graph = model::BuildGraph(d.model, d.plan.shard);
  const parallel::Program program = parallel::BuildProgram(graph, d.plan);
  auto step_s = [&](const model::StepShape& shape) {
    return StepTime(p, graph, program, d.plan, shape);
  };
  const double P = std::max(1.0, requests_.mean_prompt);
  const double O = std::max(1.0, requests_.mean_output);
  const int64_t context = static_cast<int64_t>(std::llround(P + O / 2));
  const int64_t prompt = static_cast<int64_t>(std::llround(P));
  double ttft = 0, tpot = 0, tokens_per_s_per_gpu = 0, max_rate = 0, cost_per_m = 0;
  bool feasible = true;
  std::string why_not;
  const double price = base.cluster.gpu_price_per_hour;
  if (spec_.serving) {
    // The largest batch: the scheduler's limit or what vLLM's KV rule holds.
    const int64_t blocks = ReplicaKvBlocks(graph, d.plan, d.runtime, d.cluster.gpu.capacity_bytes(),
                                           scheduler, limits);
    const double kv_sequences =
        static_cast<double>(blocks * limits.block_size) / (P + O / 2);
    const double B = std::min(static_cast<double>(limits.max_num_seqs), std::floor(kv_sequences));
    if (B < 1) {
      feasible = false;
      why_not = "the KV cache holds no request by vLLM's rule";
    } else {
      const int64_t b_max = static_cast<int64_t>(B);
      const double a = step_s(model::DecodeStep(1, context));
      const double t_full = b_max > 1 ? step_s(model::DecodeStep(b_max, context)) : a;
      const double slope = b_max > 1 ? std::max(0.0, (t_full - a) / (B - 1)) : 0;
      const double t_p = step_s(model::PrefillStep(1, prompt));
      auto t_d = [&](double b) { return a + slope * b; };
      const double lambda_max = B / (O * t_d(B) + B * t_p);
      // Latencies at a per-replica rate `l`.
      auto at = [&](double l) {
        ServingAt r;
        const double rho_p = l * t_p;
        const double denom = (1 - rho_p) - l * O * slope;
        if (l >= kSaturated * lambda_max || rho_p >= kSaturated || denom <= 0) return r;
        const double b = std::max(1.0, l * O * a / denom);
        r.tpot_s = t_d(b) / (1 - rho_p);
        r.ttft_s = t_p / (1 - l / lambda_max) + t_d(b);
        r.e2e_s = r.ttft_s + (O - 1) * r.tpot_s;
        r.ok = true;
        return r;
      };
      const RateVerdict v = JudgeRates(at, lambda_max, parallelism.dp(), num_gpus, price, O);
      ttft = v.ttft_s;
      tpot = v.tpot_s;
      tokens_per_s_per_gpu = v.tokens_per_s_per_gpu;
      max_rate = v.max_rate_per_s;
      cost_per_m = v.cost_per_million_tokens;
      feasible = v.feasible;
      why_not = v.why_not;
    }
  } else {
    const int64_t batch = base.scenario.workload().batch_size();
    const int64_t per_replica = (batch + parallelism.dp() - 1) / parallelism.dp();
    ttft = step_s(model::PrefillStep(per_replica, prompt));
    tpot = step_s(model::DecodeStep(per_replica, context));
    const double total = ttft + (O - 1) * tpot;
    tokens_per_s_per_gpu = static_cast<double>(batch) * O / total / num_gpus;
    if (price > 0) cost_per_m = price * num_gpus * total / 3600 / (static_cast<double>(batch) * O) * 1e6;
    feasible = (slo_.ttft_s() <= 0 || ttft <= slo_.ttft_s()) &&
               (slo_.tpot_s() <= 0 || tpot <= slo_.tpot_s());
    if (!feasible) {
      why_not = absl::StrFormat("estimated TTFT %s, TPOT %s", FormatSeconds(ttft),
                                FormatSeconds(tpot));
    }
  }
  SetEstimate(ttft, tpot, tokens_per_s_per_gpu, max_rate, cost_per_m, feasible, why_not, num_gpus,
              out);
}

void Estimator::SetEstimate(double ttft, double tpot, double tokens_per_s_per_gpu,
                            double max_rate, double cost_per_m, bool feasible,
                            std::string why_not, int num_gpus, v1::PlanCandidate* out) const {
  const v1::Plan::Objective objective = spec_.plan.objective();
  if (objective == v1::Plan::MIN_COST_PER_MILLION_TOKENS && cost_per_m <= 0 && feasible) {
    feasible = false;
    why_not = "no GPU price: set one in the plan's prices";
  }
  out->set_estimated(true);
  out->set_est_meets_slo(feasible);
  out->set_est_ttft_s(ttft);
  out->set_est_tpot_s(tpot);
  out->set_est_output_tokens_per_s_per_gpu(tokens_per_s_per_gpu);
  out->set_est_max_rate_per_s(max_rate);
  out->set_est_cost_per_million_tokens(cost_per_m);
  double score = 0;
  switch (objective) {
    case v1::Plan::MIN_COST_PER_MILLION_TOKENS:
      score = -cost_per_m;
      break;
    case v1::Plan::FEWEST_GPUS:
      // Fewer GPUs first; among equals the cheaper, then the faster.
      score = -num_gpus - (cost_per_m > 0 ? cost_per_m / (1 + cost_per_m) : 0) * 0.5;
      break;
    default:
      score = spec_.serving ? max_rate / num_gpus : tokens_per_s_per_gpu;
  }
  out->set_est_score(score);
  if (!feasible) out->set_reason(why_not);
}

}  // namespace shardsim::search
