#include "sim/scenario/plan_spec.h"

#include <algorithm>
#include <map>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "sim/base/status_macros.h"
#include "sim/scenario/scenario.h"

namespace shardsim::scenario {
namespace {

std::string FileStem(const std::string& path) {
  std::string stem = path.substr(path.rfind('/') + 1);  // npos + 1 == 0
  const size_t dot = stem.find('.');
  if (dot != std::string::npos && dot > 0) stem.resize(dot);
  return stem;
}

// FNV-1a (64 bit), each field length-prefixed: stable across processes,
// builds and machines, as the sweep's identity is.
class Fnv {
 public:
  void Add(absl::string_view text) {
    const std::string field = absl::StrCat(text.size(), ":", text);
    for (unsigned char c : field) {
      hash_ ^= c;
      hash_ *= 0x100000001b3ull;
    }
  }
  std::string Hex() const { return absl::StrFormat("fnv1a64:%016x", hash_); }

 private:
  uint64_t hash_ = 0xcbf29ce484222325ull;
};

template <typename T>
absl::Status CheckValues(const google::protobuf::RepeatedField<T>& values, T low, T high,
                         const std::string& field, const FieldLocator& where) {
  for (int i = 0; i < values.size(); ++i) {
    if (values[i] < low || values[i] > high) {
      return where.Error(absl::StrCat(field, "[", i, "]"),
                         absl::StrCat("must be from ", low, " to ", high, ", got ", values[i]));
    }
  }
  return absl::OkStatus();
}

// The values of a knob, or one "unset" entry.
template <typename T>
std::vector<T> OrUnset(const google::protobuf::RepeatedField<T>& values) {
  if (values.empty()) return {T{0}};
  return {values.begin(), values.end()};
}

}  // namespace

std::string ObjectiveName(v1::Plan::Objective objective) {
  switch (objective) {
    case v1::Plan::MIN_COST_PER_MILLION_TOKENS:
      return "MIN_COST_PER_MILLION_TOKENS";
    case v1::Plan::FEWEST_GPUS:
      return "FEWEST_GPUS";
    default:
      return "MAX_GOODPUT_PER_GPU";
  }
}

absl::StatusOr<PlanSpec> LoadPlan(const std::string& path) {
  PlanSpec spec;
  spec.path = path;
  SHARDSIM_RETURN_IF_ERROR(LoadTextProto(path, &spec.plan, &spec.where));
  const v1::Plan& plan = spec.plan;
  const FieldLocator& where = spec.where;
  spec.name = plan.name().empty() ? FileStem(path) : plan.name();
  if (plan.base_scenario().empty()) {
    return where.Error("base_scenario", "missing: the scenario every candidate starts from");
  }
  spec.base_scenario = ResolveRelative(path, plan.base_scenario());
  if (plan.top_k() < 0 || plan.top_k() > 100'000) {
    return where.Error("top_k", "must be from 0 to 100,000");
  }
  const v1::PlanSpace& space = plan.space();
  constexpr int32_t kMaxDegree = 1 << 16;
  SHARDSIM_RETURN_IF_ERROR(CheckValues(space.tp(), 1, kMaxDegree, "space.tp", where));
  SHARDSIM_RETURN_IF_ERROR(CheckValues(space.pp(), 1, kMaxDegree, "space.pp", where));
  SHARDSIM_RETURN_IF_ERROR(CheckValues(space.dp(), 1, kMaxDegree, "space.dp", where));
  SHARDSIM_RETURN_IF_ERROR(CheckValues(space.ep(), 1, kMaxDegree, "space.ep", where));
  SHARDSIM_RETURN_IF_ERROR(
      CheckValues(space.max_num_seqs(), 1, 1'000'000, "space.max_num_seqs", where));
  SHARDSIM_RETURN_IF_ERROR(CheckValues(space.max_num_batched_tokens(), int64_t{1},
                                       int64_t{1} << 24, "space.max_num_batched_tokens", where));
  for (int i = 0; i < space.recipes_size(); ++i) {
    if (space.recipes(i).empty()) {
      return where.Error(absl::StrCat("space.recipes[", i, "]"), "must not be empty");
    }
  }
  std::map<std::string, double> prices;
  for (int i = 0; i < plan.prices_size(); ++i) {
    const v1::GpuPrice& p = plan.prices(i);
    if (p.gpu().empty()) {
      return where.Error(absl::StrCat("prices[", i, "].gpu"), "missing: a catalog GPU name");
    }
    if (!(p.price_per_hour() >= 0 && p.price_per_hour() < 1e9)) {
      return where.Error(absl::StrCat("prices[", i, "].price_per_hour"),
                         "must be a non-negative amount");
    }
    prices[p.gpu()] = p.price_per_hour();
  }
  for (int h = 0; h < plan.hardware_size(); ++h) {
    const v1::PlanHardware& hw = plan.hardware(h);
    SHARDSIM_RETURN_IF_ERROR(CheckValues(hw.num_nodes(), 1, 1 << 20,
                                         absl::StrCat("hardware[", h, "].num_nodes"), where));
    for (int g = 0; g < hw.gpus_size(); ++g) {
      if (hw.gpus(g).empty()) {
        return where.Error(absl::StrCat("hardware[", h, "].gpus[", g, "]"), "must not be empty");
      }
    }
  }
  if (plan.static_ttft_s() < 0 || plan.static_tpot_s() < 0) {
    return where.Error(plan.static_ttft_s() < 0 ? "static_ttft_s" : "static_tpot_s",
                       "must not be negative");
  }

  // The base scenario must load with the plan's own overrides.
  std::vector<std::string> set(plan.set().begin(), plan.set().end());
  absl::StatusOr<LoadedScenario> base = LoadScenario(spec.base_scenario, set);
  if (!base.ok()) {
    return where.Error(absl::IsNotFound(base.status()) ? "base_scenario" : "set",
                       base.status().message());
  }
  // The planner varies one plan over the whole cluster, and adds the pools
  // of its pool pairs itself (space.search_disaggregation).
  if (!base->pools.empty()) {
    return where.Error("base_scenario",
                       "has prefill/decode pools: a plan's base scenario has none (set "
                       "space.search_disaggregation to search pool pairs)");
  }
  spec.serving = base->scenario.has_serving();
  // Synthetic serving: the base's request count is per replica (see the
  // header), so each candidate's replicas reach the same steady state.
  const v1::Serving& base_serving = base->scenario.serving();
  const bool scale_requests = spec.serving && base_serving.trace().file().empty() &&
                              base_serving.arrival().kind() != v1::ArrivalProcess::ALL_AT_ONCE;
  // serving.proto: num_requests 0 means 1000.
  const int64_t base_requests =
      base_serving.num_requests() > 0 ? base_serving.num_requests() : 1000;
  const int32_t base_dp = std::max(1, base->scenario.parallelism().dp());
  if (!spec.serving && (plan.space().max_num_seqs_size() > 0 ||
                        plan.space().max_num_batched_tokens_size() > 0)) {
    return where.Error("space", "scheduler limits need a serving block in the base scenario");
  }
  std::string base_text;
  SHARDSIM_RETURN_IF_ERROR(ReadFile(spec.base_scenario, &base_text));

  // Hardware x recipes: the prototypes.
  std::vector<v1::PlanHardware> hardware(plan.hardware().begin(), plan.hardware().end());
  if (hardware.empty()) hardware.emplace_back();
  struct Proto {
    std::vector<std::string> overrides;
    std::string gpu;
    int32_t num_nodes = 0;
    std::string recipe;
    double price = -1;
  };
  std::vector<Proto> protos;
  for (const v1::PlanHardware& hw : hardware) {
    std::vector<std::string> gpus(hw.gpus().begin(), hw.gpus().end());
    if (gpus.empty()) gpus.push_back("");
    std::vector<int32_t> nodes = OrUnset(hw.num_nodes());
    for (const std::string& gpu : gpus) {
      for (int32_t n : nodes) {
        std::vector<std::string> recipes(space.recipes().begin(), space.recipes().end());
        if (recipes.empty()) recipes.push_back("");
        for (const std::string& recipe : recipes) {
          Proto p;
          p.overrides = set;
          if (!hw.topology_file().empty()) {
            p.overrides.push_back(absl::StrCat("topology_file=", hw.topology_file()));
          }
          if (!gpu.empty()) p.overrides.push_back(absl::StrCat("topology.gpu=", gpu));
          if (n > 0) p.overrides.push_back(absl::StrCat("topology.num_nodes=", n));
          // A GPU put into another GPU's topology must not keep that
          // topology's price: the plan's price for it, else the catalog's
          // (0 makes the loader take the catalog's list price).
          const std::string priced = gpu.empty() ? base->cluster.gpu.name() : gpu;
          auto it = prices.find(priced);
          if (it != prices.end()) {
            p.price = it->second;
          } else if (!gpu.empty()) {
            p.price = 0;
          }
          if (p.price >= 0) {
            p.overrides.push_back(absl::StrFormat("topology.gpu_price_per_hour=%.17g", p.price));
          }
          if (!recipe.empty()) {
            p.overrides.push_back(absl::StrCat("model.precision.recipe=", recipe));
          }
          p.gpu = gpu;
          p.num_nodes = n;
          p.recipe = recipe;
          protos.push_back(std::move(p));
        }
      }
    }
  }
  const std::vector<int32_t> tps = OrUnset(space.tp()), pps = OrUnset(space.pp()),
                             dps = OrUnset(space.dp()), eps = OrUnset(space.ep()),
                             seqs = OrUnset(space.max_num_seqs());
  const std::vector<int64_t> budgets = OrUnset(space.max_num_batched_tokens());
  const int64_t count = static_cast<int64_t>(protos.size()) * static_cast<int64_t>(tps.size()) *
                        static_cast<int64_t>(pps.size()) * static_cast<int64_t>(dps.size()) *
                        static_cast<int64_t>(eps.size()) * static_cast<int64_t>(seqs.size()) *
                        static_cast<int64_t>(budgets.size());
  // Prefill/decode pool pairs, per prototype: (prefill tp, replicas,
  // decode tp, replicas) within the prototype's cluster. The cluster is the
  // prototype's own (its topology, GPU and node count), so each is loaded;
  // one that does not load gets no pool pairs (its mixed candidates carry
  // the loader's error).
  struct PoolPair {
    int32_t prefill_tp, prefill_replicas, decode_tp, decode_replicas;
  };
  std::vector<std::vector<PoolPair>> pairs(protos.size());
  int64_t pair_count = 0;
  if (space.search_disaggregation()) {
    if (!spec.serving) {
      return where.Error("space.search_disaggregation",
                         "prefill/decode pools need a serving block in the base scenario");
    }
    if (plan.objective() != v1::Plan::MIN_COST_PER_MILLION_TOKENS &&
        plan.objective() != v1::Plan::FEWEST_GPUS) {
      // engine::FindMaxRate runs the plain serving driver, not the pools one.
      return where.Error("space.search_disaggregation",
                         "needs objective MIN_COST_PER_MILLION_TOKENS or FEWEST_GPUS (pool "
                         "pairs are judged at the base scenario's rate; the rate search does "
                         "not run pools)");
    }
    std::vector<int32_t> pool_tps(space.tp().begin(), space.tp().end());
    if (pool_tps.empty()) pool_tps.push_back(std::max(1, base->scenario.parallelism().tp()));
    int64_t smallest_cluster = -1;
    std::string smallest_name;
    for (size_t pi = 0; pi < protos.size(); ++pi) {
      absl::StatusOr<LoadedScenario> loaded = LoadScenario(spec.base_scenario, protos[pi].overrides);
      if (!loaded.ok()) continue;
      const int64_t n = loaded->cluster.num_gpus();
      if (smallest_cluster < 0 || n < smallest_cluster) {
        smallest_cluster = n;
        smallest_name = loaded->cluster.name;
      }
      for (int32_t ptp : pool_tps) {
        for (int64_t x = 1; ptp * x < n; ++x) {
          for (int32_t dtp : pool_tps) {
            for (int64_t y = 1; ptp * x + dtp * y <= n; ++y) {
              if (space.use_whole_cluster() && ptp * x + dtp * y != n) continue;
              pairs[pi].push_back({ptp, static_cast<int32_t>(x), dtp, static_cast<int32_t>(y)});
              if (++pair_count > kMaxCandidates) {
                return where.Error("space.search_disaggregation",
                                   absl::StrCat("more than ", kMaxCandidates,
                                                " pool pairs: narrow the tp values"));
              }
            }
          }
        }
      }
    }
    if (pair_count == 0) {
      const int32_t tp_min = *std::min_element(pool_tps.begin(), pool_tps.end());
      return where.Error(
          "space.search_disaggregation",
          smallest_cluster < 0
              ? std::string("no cluster of the plan loads, so no prefill/decode pool pair")
              : absl::StrCat("no prefill/decode pool pair fits: the smallest needs ", 2 * tp_min,
                             " GPUs (a tp=", tp_min, " replica in each pool)",
                             space.use_whole_cluster() ? " and must use every GPU" : "",
                             ", but ", smallest_name, " has ", smallest_cluster));
    }
  }
  if (count + pair_count * static_cast<int64_t>(seqs.size() * budgets.size()) > kMaxCandidates) {
    return where.Error("space", absl::StrCat(count, " candidates is more than ", kMaxCandidates,
                                             ": narrow the ranges"));
  }
  // A candidate of prototype `pi` before its plan: the prototype's
  // hardware, recipe, price and overrides.
  auto start = [&](size_t pi) {
    const Proto& p = protos[pi];
    CandidateSpec c;
    c.index = static_cast<int32_t>(spec.candidates.size());
    c.prototype = static_cast<int32_t>(pi);
    c.overrides = p.overrides;
    c.gpu = p.gpu;
    c.num_nodes = p.num_nodes;
    c.recipe = p.recipe;
    c.price_per_hour = p.price;
    return c;
  };
  // Completes `c` (its plan's overrides given) and adds it: the request
  // count scaled to its `replicas` (each sees the base's per-replica
  // requests), then the scheduler limits, max_num_seqs and max_num_batched_tokens in c.
  auto finish = [&](CandidateSpec c, int32_t replicas) {
    if (scale_requests && replicas != base_dp) {
      // Replaces a count the plan's `set` gave: one is enough.
      c.overrides.erase(std::remove_if(c.overrides.begin(), c.overrides.end(),
                                       [](const std::string& o) {
                                         return o.rfind("serving.num_requests=", 0) == 0;
                                       }),
                        c.overrides.end());
      c.overrides.push_back(
          absl::StrCat("serving.num_requests=", base_requests / base_dp * replicas));
    }
    if (c.max_num_seqs > 0) {
      c.overrides.push_back(absl::StrCat("serving.scheduler.max_num_seqs=", c.max_num_seqs));
    }
    if (c.max_num_batched_tokens > 0) {
      c.overrides.push_back(absl::StrCat("serving.scheduler.max_num_batched_tokens=",
                                         c.max_num_batched_tokens));
    }
    c.key = absl::StrJoin(c.overrides, ";");
    spec.candidates.push_back(std::move(c));
  };
  for (size_t pi = 0; pi < protos.size(); ++pi) {
    spec.prototypes.push_back({protos[pi].overrides});
    for (int32_t tp : tps) {
      for (int32_t pp : pps) {
        for (int32_t dp : dps) {
          for (int32_t ep : eps) {
            for (int32_t s : seqs) {
              for (int64_t b : budgets) {
                CandidateSpec c = start(pi);
                c.tp = tp;
                c.pp = pp;
                c.dp = dp;
                c.ep = ep;
                c.max_num_seqs = s;
                c.max_num_batched_tokens = b;
                if (tp > 0) c.overrides.push_back(absl::StrCat("parallelism.tp=", tp));
                if (pp > 0) c.overrides.push_back(absl::StrCat("parallelism.pp=", pp));
                if (dp > 0) c.overrides.push_back(absl::StrCat("parallelism.dp=", dp));
                if (ep > 0) c.overrides.push_back(absl::StrCat("parallelism.ep=", ep));
                finish(std::move(c), dp > 0 ? dp : base_dp);
              }
            }
          }
        }
      }
    }
    for (const PoolPair& pair : pairs[pi]) {
      for (int32_t s : seqs) {
        for (int64_t b : budgets) {
          CandidateSpec c = start(pi);
          c.prefill_tp = pair.prefill_tp;
          c.prefill_replicas = pair.prefill_replicas;
          c.decode_tp = pair.decode_tp;
          c.decode_replicas = pair.decode_replicas;
          c.max_num_seqs = s;
          c.max_num_batched_tokens = b;
          // Two pools appended to the base (which has none), placed
          // automatically: prefill on the lowest-numbered GPUs.
          for (const auto& [i, name, role, tp, replicas] :
               {std::tuple<int, const char*, const char*, int32_t, int32_t>{
                    0, "prefill", "PREFILL", pair.prefill_tp, pair.prefill_replicas},
                {1, "decode", "DECODE", pair.decode_tp, pair.decode_replicas}}) {
            c.overrides.push_back(absl::StrCat("pools[", i, "].name=", name));
            c.overrides.push_back(absl::StrCat("pools[", i, "].role=", role));
            c.overrides.push_back(absl::StrCat("pools[", i, "].parallelism.tp=", tp));
            c.overrides.push_back(absl::StrCat("pools[", i, "].parallelism.dp=", replicas));
          }
          // Each request is prefilled on one prefill replica and decoded on
          // one decode replica: the larger pool's replica count is the
          // count whose replicas each see the base's per-replica requests.
          finish(std::move(c), std::max(pair.prefill_replicas, pair.decode_replicas));
        }
      }
    }
  }
  Fnv fnv;
  v1::Plan identity = plan;
  identity.clear_top_k();
  fnv.Add(identity.SerializeAsString());
  fnv.Add(base_text);
  spec.identity = fnv.Hex();
  return spec;
}

}  // namespace shardsim::scenario
