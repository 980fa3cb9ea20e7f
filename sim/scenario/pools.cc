#include "sim/scenario/pools.h"

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "sim/base/status_macros.h"
#include "sim/parallel/partition.h"

namespace shardsim::scenario {
namespace {

absl::Status CheckScheduler(const v1::SchedulerConfig& c, const FieldLocator& where) {
  if (c.max_num_seqs() < 0 || c.max_num_seqs() > 1'000'000) {
    return where.Error("scheduler.max_num_seqs", "must be from 1 to 1,000,000");
  }
  if (c.max_num_batched_tokens() < 0 || c.max_num_batched_tokens() > int64_t{1} << 30) {
    return where.Error("scheduler.max_num_batched_tokens",
                       absl::StrCat("must be from 1 to ", int64_t{1} << 30));
  }
  if (!(c.gpu_memory_utilization() >= 0 && c.gpu_memory_utilization() <= 1)) {
    return where.Error("scheduler.gpu_memory_utilization", "must be in (0, 1]");
  }
  if (c.num_gpu_blocks_override() < 0 || c.num_gpu_blocks_override() > int64_t{1} << 40) {
    return where.Error("scheduler.num_gpu_blocks_override", "must not be negative");
  }
  if (c.block_size() < 0 || c.block_size() > 1 << 16) {
    return where.Error("scheduler.block_size", "must be from 1 to 65536 tokens");
  }
  return absl::OkStatus();
}

// The GPU count of a plan's tp x pp x dp (unset: 1), each factor capped at
// `cap` so that absurd sizes cannot overflow: such a plan is larger than the
// cluster whatever its exact count.
int64_t PlanGpus(const v1::Parallelism& p, int64_t cap) {
  const auto factor = [cap](int x) { return std::min<int64_t>(std::max(1, x), cap); };
  return factor(p.tp()) * factor(p.pp()) * factor(p.dp());
}

}  // namespace

absl::StatusOr<std::vector<parallel::PoolPlan>> CheckPools(const v1::Scenario& s,
                                                           const std::string& path,
                                                           const model::ModelDims& dims,
                                                           const hardware::Cluster& cluster,
                                                           const FieldLocator& where) {
  std::vector<parallel::PoolPlan> pools;
  if (s.pools().empty()) return pools;
  const double efficiency = s.kv_transfer().bandwidth_efficiency();
  if (!(efficiency >= 0 && efficiency <= 1)) {
    return where.Error("kv_transfer.bandwidth_efficiency", "must be in (0, 1] (0: 1)");
  }
  // A pool that names no GPUs is placed automatically: it takes the
  // lowest-numbered GPUs that no pool names and no earlier such pool took.
  std::set<int> named;
  const int64_t cap = int64_t{cluster.num_gpus()} + 1;
  int64_t wanted = 0;  // every pool's GPU count, for the error below
  std::vector<std::string> counts;
  for (int i = 0; i < s.pools_size(); ++i) {
    const v1::Pool& pool = s.pools(i);
    for (int node : pool.nodes()) {
      if (node < 0 || node >= cluster.num_nodes) continue;  // an error below
      for (int g = 0; g < cluster.gpus_per_node; ++g) named.insert(node * cluster.gpus_per_node + g);
    }
    named.insert(pool.gpus().begin(), pool.gpus().end());
    const int64_t count = !pool.nodes().empty()
                              ? int64_t{pool.nodes_size()} * cluster.gpus_per_node
                          : !pool.gpus().empty() ? pool.gpus_size()
                                                 : PlanGpus(pool.parallelism(), cap);
    wanted += count;
    counts.push_back(absl::StrCat("'", pool.name().empty() ? absl::StrCat("pools[", i, "]")
                                                            : pool.name(),
                                  "' ", count));
  }
  int next_free = 0;  // where the next automatically placed pool starts looking
  std::map<int, int> owner;  // GPU -> the pool holding it
  int first_prefill = -1, first_decode = -1;
  for (int i = 0; i < s.pools_size(); ++i) {
    const v1::Pool& pool = s.pools(i);
    const std::string field = absl::StrCat("pools[", i, "]");
    const FieldLocator pw = where.Nested(field);
    parallel::PoolPlan plan;
    plan.name = pool.name().empty() ? field : pool.name();
    if (pool.role() == v1::Pool::ROLE_UNSPECIFIED) {
      return pw.Error("role", absl::StrCat("pool '", plan.name,
                                           "' has no role: give MIXED, PREFILL or DECODE"));
    }
    plan.role = pool.role();
    if (plan.role == v1::Pool::PREFILL && first_prefill < 0) first_prefill = i;
    if (plan.role == v1::Pool::DECODE && first_decode < 0) first_decode = i;
    if (!pool.gpus().empty() && !pool.nodes().empty()) {
      return pw.Error("nodes", absl::StrCat("pool '", plan.name,
                                            "' gives both gpus and nodes: give one of them"));
    }
    const bool automatic = pool.gpus().empty() && pool.nodes().empty();
    if (automatic && pool.parallelism().tp() == 0 && pool.parallelism().pp() == 0 &&
        pool.parallelism().dp() == 0) {
      return pw.Error(
          "role", absl::StrCat("pool '", plan.name, "' has role ", v1::Pool::Role_Name(pool.role()),
                               " but no GPUs: give gpus: [...], nodes: [...] or a parallelism "
                               "to place it automatically"));
    }
    if (automatic) {
      const int64_t count = PlanGpus(pool.parallelism(), cap);
      for (; static_cast<int64_t>(plan.gpus.size()) < count && next_free < cluster.num_gpus();
           ++next_free) {
        if (named.count(next_free) == 0) plan.gpus.push_back(next_free);
      }
      if (static_cast<int64_t>(plan.gpus.size()) < count) {
        return pw.Error(
            "parallelism",
            absl::StrCat("the pools need ", wanted, " GPUs (", absl::StrJoin(counts, " + "),
                         ") but ", cluster.name, " has ", cluster.num_gpus(), ": pool '",
                         plan.name, "' (tp x pp x dp, placed automatically) does not fit on "
                         "the GPUs left"));
      }
    }
    for (int k = 0; k < pool.nodes_size(); ++k) {
      const int node = pool.nodes(k);
      if (node < 0 || node >= cluster.num_nodes) {
        return pw.Error("nodes", absl::StrCat("node ", node, " is not in ", cluster.name, " (0 .. ",
                                              cluster.num_nodes - 1, ")"));
      }
      for (int g = 0; g < cluster.gpus_per_node; ++g) {
        plan.gpus.push_back(node * cluster.gpus_per_node + g);
      }
    }
    for (int k = 0; k < pool.gpus_size(); ++k) {
      const int gpu = pool.gpus(k);
      if (gpu < 0 || gpu >= cluster.num_gpus()) {
        return pw.Error("gpus", absl::StrCat("GPU ", gpu, " is not in ", cluster.name, " (0 .. ",
                                             cluster.num_gpus() - 1, ")"));
      }
      plan.gpus.push_back(gpu);
    }
    const std::string gpus_field = pool.gpus().empty() ? "nodes" : "gpus";
    for (size_t k = 0; k < plan.gpus.size(); ++k) {
      const int gpu = plan.gpus[k];
      auto [it, inserted] = owner.emplace(gpu, i);
      if (inserted) continue;
      const std::string other = s.pools(it->second).name().empty()
                                    ? absl::StrCat("pools[", it->second, "]")
                                    : s.pools(it->second).name();
      return pw.Error(gpus_field,
                      it->second == i
                          ? absl::StrCat("GPU ", gpu, " is named twice in pool '", plan.name, "'")
                          : absl::StrCat("GPU ", gpu, " of pool '", plan.name,
                                         "' is also in pool '", other, "': pools may not overlap"));
    }
    if (!pool.model_file().empty() &&
        ResolveRelative(path, pool.model_file()) != ResolveRelative(path, s.model_file())) {
      return pw.Error("model_file",
                      absl::StrCat("pool '", plan.name, "' names ", pool.model_file(),
                                   ", but every pool serves the scenario's one model (",
                                   s.model_file().empty() ? "inline" : s.model_file(), ")"));
    }
    v1::Parallelism parallelism = pool.parallelism();
    if (!parallelism.placement().empty()) {
      return pw.Error("parallelism.placement",
                      "a pool's ranks are placed on its own GPUs, in order: give gpus instead");
    }
    const int64_t tp = std::max(1, parallelism.tp());
    const int64_t pp = std::max(1, parallelism.pp());
    const int64_t dp = std::max(1, parallelism.dp());
    if (parallelism.tp() >= 0 && parallelism.pp() >= 0 && parallelism.dp() >= 0 &&
        tp * pp * dp != static_cast<int64_t>(plan.gpus.size())) {
      return pw.Error("parallelism",
                      absl::StrCat("tp x pp x dp = ", tp, " x ", pp, " x ", dp, " = ", tp * pp * dp,
                                   " GPUs, but pool '", plan.name, "' has ", plan.gpus.size()));
    }
    for (int gpu : plan.gpus) parallelism.add_placement(gpu);
    SHARDSIM_ASSIGN_OR_RETURN(plan.plan, parallel::Partition(dims, parallelism, cluster, pw));
    plan.scheduler = s.serving().scheduler();
    plan.scheduler.MergeFrom(pool.scheduler());
    SHARDSIM_RETURN_IF_ERROR(CheckScheduler(pool.scheduler(), pw));
    pools.push_back(std::move(plan));
  }
  if (first_prefill >= 0 && first_decode < 0) {
    return where.Nested(absl::StrCat("pools[", first_prefill, "]"))
        .Error("role", "a PREFILL pool needs a DECODE pool to hand its requests' KV caches to");
  }
  if (first_decode >= 0 && first_prefill < 0) {
    return where.Nested(absl::StrCat("pools[", first_decode, "]"))
        .Error("role", "a DECODE pool needs a PREFILL pool to take requests from");
  }
  return pools;
}

namespace {

std::string PlanName(int tp, int pp, int dp) {
  return absl::StrCat("tp", tp, pp > 1 ? absl::StrCat("pp", pp) : "", "x", dp);
}

}  // namespace

std::string DeploymentName(const v1::ServeReport& report) {
  if (report.pools().empty()) return PlanName(report.tp(), report.pp(), report.dp());
  std::vector<std::string> pools;
  for (const v1::PoolServe& pool : report.pools()) {
    pools.push_back(absl::StrCat(pool.role().empty() ? "?" : pool.role().substr(0, 1), " ",
                                 PlanName(pool.tp(), pool.pp(), pool.dp())));
  }
  return absl::StrJoin(pools, " + ");
}

}  // namespace shardsim::scenario
