#include "sim/memory/pool_memory.h"

#include <algorithm>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "sim/memory/ledger.h"

namespace shardsim::memory {

parallel::Deployment PoolDeployment(const parallel::Deployment& whole,
                                    const parallel::PoolPlan& pool) {
  parallel::Deployment d;
  d.name = whole.name;
  d.model = whole.model;
  d.plan = pool.plan;
  d.runtime = whole.runtime;
  d.cluster.name = whole.cluster.name;
  d.cluster.gpu = whole.cluster.gpu;
  d.cluster.num_nodes = whole.cluster.num_nodes;
  d.cluster.gpus_per_node = whole.cluster.gpus_per_node;
  return d;
}

v1::Workload PoolWorkload(v1::Pool::Role role, const v1::Workload& workload) {
  v1::Workload w = workload;
  // A prefill replica computes the prompt and samples the first token, which
  // is never fed back on it: its cache holds the prompt only.
  if (role == v1::Pool::PREFILL) w.set_output_len(1);
  return w;
}

v1::MemoryReport ComputePoolsMemoryReport(const parallel::Deployment& whole,
                                          const std::vector<parallel::PoolPlan>& pools,
                                          const v1::Workload& workload) {
  v1::MemoryReport report;
  std::vector<std::vector<std::string>> notes;  // per pool
  bool fits = true;
  int used = 0;
  for (size_t p = 0; p < pools.size(); ++p) {
    const parallel::PoolPlan& pool = pools[p];
    parallel::Deployment d = PoolDeployment(whole, pool);
    // The pool's GPUs are all it has: the GPUs the other pools use are not
    // "unused" (said once for the whole cluster below).
    d.cluster.num_nodes = 1;
    d.cluster.gpus_per_node = pool.plan.num_gpus();
    used += pool.plan.num_gpus();
    v1::MemoryReport own = ComputeMemoryReport(d, PoolWorkload(pool.role, workload));
    if (p == 0) {
      report = own;
      report.clear_gpus();
      report.clear_notes();
    }
    for (v1::GpuMemory& g : *own.mutable_gpus()) {
      g.set_pool(pool.name);
      g.set_pool_role(v1::Pool::Role_Name(pool.role));
      *report.add_gpus() = std::move(g);
    }
    fits = fits && own.fits();
    notes.emplace_back(own.notes().begin(), own.notes().end());
  }
  report.set_fits(fits);
  // Notes every pool has alike once, in the first pool's order; the rest
  // prefixed with their pool.
  auto everywhere = [&](const std::string& note) {
    for (const std::vector<std::string>& own : notes) {
      if (std::find(own.begin(), own.end(), note) == own.end()) return false;
    }
    return true;
  };
  for (const std::string& note : notes[0]) {
    if (everywhere(note)) report.add_notes(note);
  }
  for (size_t p = 0; p < pools.size(); ++p) {
    for (const std::string& note : notes[p]) {
      if (!everywhere(note)) {
        report.add_notes(absl::StrCat("pool '", pools[p].name, "' (",
                                      v1::Pool::Role_Name(pools[p].role), "): ", note));
      }
    }
  }
  for (const parallel::PoolPlan& pool : pools) {
    if (pool.role == v1::Pool::PREFILL) {
      report.add_notes(absl::StrFormat(
          "pool '%s' (PREFILL) holds each sequence's KV cache for its prompt only (%d tokens): "
          "it samples the first token and hands the cache to a decode pool",
          pool.name, workload.prompt_len()));
    }
  }
  if (used < whole.cluster.num_gpus()) {
    report.add_notes(absl::StrFormat("the pools use %d of the %d GPUs of %s", used,
                                     whole.cluster.num_gpus(), whole.cluster.name));
  }
  return report;
}

}  // namespace shardsim::memory
