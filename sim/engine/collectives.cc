#include "sim/engine/collectives.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

namespace shardsim::engine {

uint64_t SimulatedBytes(double bytes, double efficiency) {
  return static_cast<uint64_t>(std::ceil(bytes / (efficiency > 0 ? efficiency : 1.0)));
}

namespace {

// Starts one flow of a collective from GPU `from` to GPU `to`.
simgrid::s4u::CommPtr Send(const Fabric& fabric, int from, int to, double bytes) {
  const auto& gpus = fabric.platform->gpus;
  return simgrid::s4u::Comm::sendto_async(
      gpus[static_cast<size_t>(from)], gpus[static_cast<size_t>(to)],
      SimulatedBytes(bytes, fabric.cluster->CollectiveEfficiency(from, to)));
}

// Each GPU's 1/size share of the buffer, rounded up.
double ShareBytes(int64_t bytes, size_t size) {
  const int64_t n = static_cast<int64_t>(size);
  return static_cast<double>((bytes + n - 1) / n);
}

}  // namespace

namespace {

// What every algorithm shares: the launch, then `phases` phases, each paying
// the step latency, starting the flows `add_flows(phase, group, &comms)` adds
// for every group and waiting for all of them.
template <typename AddFlows>
CollectiveStats RunPhases(const Fabric& fabric, const std::vector<std::vector<int>>& groups,
                          size_t phases, int64_t bytes, const AddFlows& add_flows) {
  const v1::CollectiveTuning& tuning = fabric.cluster->collectives;
  CollectiveStats stats;
  size_t largest = 0;
  for (const auto& group : groups) largest = std::max(largest, group.size());
  if (largest <= 1 || bytes <= 0) return stats;
  const double start = simgrid::s4u::Engine::get_clock();
  simgrid::s4u::this_actor::sleep_for(tuning.launch_s());
  for (size_t phase = 0; phase < phases; ++phase) {
    simgrid::s4u::this_actor::sleep_for(tuning.step_latency_s());
    std::vector<simgrid::s4u::CommPtr> comms;
    for (const auto& group : groups) {
      if (group.size() > 1) add_flows(phase, group, &comms);
    }
    stats.flows += static_cast<int64_t>(comms.size());
    simgrid::s4u::Comm::wait_all(comms);
  }
  stats.seconds = simgrid::s4u::Engine::get_clock() - start;
  return stats;
}

size_t RingPhases(CollectiveKind kind, size_t size) {
  return kind == CollectiveKind::kAllReduce ? 2 * (size - 1) : size - 1;
}

// Phases of the direct algorithm: a reduce-scatter and an all-gather for an
// all-reduce, one otherwise.
size_t DirectPhases(CollectiveKind kind) {
  return kind == CollectiveKind::kAllReduce ? 2 : 1;
}

}  // namespace

CollectiveStats RunRingCollective(const Fabric& fabric,
                                  const std::vector<std::vector<int>>& groups,
                                  CollectiveKind kind, int64_t bytes) {
  size_t largest = 0;
  for (const auto& group : groups) largest = std::max(largest, group.size());
  if (largest <= 1) return {};
  return RunPhases(fabric, groups, RingPhases(kind, largest), bytes,
                   [&](size_t phase, const std::vector<int>& group,
                       std::vector<simgrid::s4u::CommPtr>* comms) {
                     const size_t size = group.size();
                     if (phase >= RingPhases(kind, size)) return;  // a smaller ring is done
                     for (size_t r = 0; r < size; ++r) {
                       comms->push_back(Send(fabric, group[r], group[(r + 1) % size],
                                             ShareBytes(bytes, size)));
                     }
                   });
}

CollectiveStats RunDirectCollective(const Fabric& fabric,
                                    const std::vector<std::vector<int>>& groups,
                                    CollectiveKind kind, int64_t bytes) {
  return RunPhases(fabric, groups, DirectPhases(kind), bytes,
                   [&](size_t, const std::vector<int>& group,
                       std::vector<simgrid::s4u::CommPtr>* comms) {
                     const size_t size = group.size();
                     for (size_t from = 0; from < size; ++from) {
                       for (size_t to = 0; to < size; ++to) {
                         if (from != to) {
                           comms->push_back(Send(fabric, group[from], group[to],
                                                 ShareBytes(bytes, size)));
                         }
                       }
                     }
                   });
}

CollectiveStats RunCollective(const Fabric& fabric,
                              const std::vector<std::vector<int>>& groups,
                              CollectiveKind kind, int64_t bytes, Algorithm algorithm) {
  // An all-to-all has no ring form: every GPU sends to every peer at once.
  const bool direct = algorithm == Algorithm::kDirect || kind == CollectiveKind::kAllToAll;
  return direct ? RunDirectCollective(fabric, groups, kind, bytes)
                : RunRingCollective(fabric, groups, kind, bytes);
}

Algorithm ChooseAlgorithm(const hardware::Cluster& cluster, const std::vector<int>& gpus) {
  for (int a : gpus) {
    for (int b : gpus) {
      if (a != b && cluster.Route(a, b).size() != 1) return Algorithm::kRing;
    }
  }
  return Algorithm::kDirect;
}

std::vector<std::vector<int>> TpGroups(const parallel::Plan& plan) {
  std::vector<std::vector<int>> groups;
  for (int r = 0; r < plan.dp; ++r) {
    for (int s = 0; s < plan.pp; ++s) groups.push_back(plan.TpGroup(r, s));
  }
  return groups;
}

std::vector<std::vector<int>> ExpertGroups(const parallel::Program& program) {
  std::set<std::vector<int>> groups;
  for (const parallel::StageProgram& stage : program.stages) {
    if (!stage.expert_gpus.empty()) groups.insert(stage.expert_gpus);
  }
  return {groups.begin(), groups.end()};
}

std::vector<std::vector<int>> GroupsToSimulate(const hardware::Cluster& cluster,
                                               const std::vector<std::vector<int>>& groups) {
  std::map<int, std::vector<std::vector<int>>> local_groups_of_node;  // by local index
  std::vector<std::vector<int>> spanning;
  for (const std::vector<int>& group : groups) {
    const int node = cluster.NodeOf(group.front());
    bool one_node = true;
    std::vector<int> local;
    for (int gpu : group) {
      one_node = one_node && cluster.NodeOf(gpu) == node;
      local.push_back(gpu % cluster.gpus_per_node);
    }
    if (one_node) {
      local_groups_of_node[node].push_back(local);
    } else {
      spanning.push_back(group);
    }
  }
  std::set<std::vector<std::vector<int>>> seen;  // nodes' layouts of groups
  std::vector<std::vector<int>> kept;
  for (const auto& [node, locals] : local_groups_of_node) {
    if (!seen.insert(locals).second) continue;
    for (const std::vector<int>& local : locals) {
      std::vector<int> group;
      for (int g : local) group.push_back(node * cluster.gpus_per_node + g);
      kept.push_back(group);
    }
  }
  kept.insert(kept.end(), spanning.begin(), spanning.end());
  return kept;
}

const char* AlgorithmName(Algorithm algorithm) {
  return algorithm == Algorithm::kDirect ? "direct" : "ring";
}

}  // namespace shardsim::engine
