#include "sim/engine/collectives.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

namespace shardsim::engine {

namespace {

// The largest of `groups` (the first if tied): the one the plan is made for.
const std::vector<int>* Largest(const std::vector<std::vector<int>>& groups) {
  const std::vector<int>* largest = nullptr;
  for (const auto& group : groups) {
    if (largest == nullptr || group.size() > largest->size()) largest = &group;
  }
  return largest;
}

}  // namespace

CollectiveStats RunCollectiveAs(const Fabric& fabric, const std::vector<std::vector<int>>& groups,
                                CollectiveKind kind, int64_t bytes,
                                const cost::CollectivePlan& plan) {
  const hardware::Cluster& cluster = *fabric.cluster;
  const v1::CollectiveTuning& tuning = cluster.collectives;
  CollectiveStats stats;
  stats.plan = plan;
  const std::vector<int>* largest = Largest(groups);
  if (largest == nullptr || largest->size() <= 1 || bytes <= 0) return stats;
  std::vector<cost::CollectiveShape> shapes;
  int phases = 0;
  for (const auto& group : groups) {
    shapes.push_back(cost::ShapeCollective(plan, kind, bytes, cluster, group));
    phases = std::max(phases, shapes.back().phases);
  }
  const cost::CollectiveShape& shape = shapes[static_cast<size_t>(largest - groups.data())];
  const auto& hosts = fabric.platform->gpus;
  const double start = simgrid::s4u::Engine::get_clock();
  if (!cost::IsCustomAllReduce(plan.algorithm)) {
    simgrid::s4u::this_actor::sleep_for(tuning.launch_s());
  }
  for (int phase = 0; phase < phases; ++phase) {
    simgrid::s4u::this_actor::sleep_for(shape.latency_steps * cost::StepLatency(tuning, plan));
    std::vector<simgrid::s4u::CommPtr> comms;
    for (size_t g = 0; g < groups.size(); ++g) {
      // A smaller group is done when its own phases are.
      for (const auto& [from, to] : cost::PhaseFlows(shapes[g], cluster, groups[g], phase)) {
        comms.push_back(simgrid::s4u::Comm::sendto_async(
            hosts[static_cast<size_t>(from)], hosts[static_cast<size_t>(to)],
            SimulatedBytes(shapes[g].flow_bytes,
                           cost::FlowEfficiency(cluster, tuning, plan, from, to))));
      }
    }
    stats.flows += static_cast<int64_t>(comms.size());
    simgrid::s4u::Comm::wait_all(comms);
  }
  stats.seconds = simgrid::s4u::Engine::get_clock() - start;
  return stats;
}

CollectiveStats RunCollective(const Fabric& fabric, const std::vector<std::vector<int>>& groups,
                              CollectiveKind kind, int64_t bytes) {
  const std::vector<int>* largest = Largest(groups);
  if (largest == nullptr) return {};
  return RunCollectiveAs(fabric, groups, kind, bytes,
                         cost::PlanCollective(*fabric.cluster, *largest, kind, bytes,
                                              fabric.custom_all_reduce));
}

CollectiveStats RunRingCollective(const Fabric& fabric,
                                  const std::vector<std::vector<int>>& groups,
                                  CollectiveKind kind, int64_t bytes) {
  return RunCollectiveAs(fabric, groups, kind, bytes,
                         {cost::CollectiveAlgorithm::kRing, cost::NcclProtocol::kSimple});
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

Algorithm ChooseAlgorithm(const hardware::Cluster& cluster, const std::vector<int>& gpus) {
  return gpus.size() > 2 && cost::IsFullMesh(cluster, gpus) ? Algorithm::kDirect
                                                             : Algorithm::kRing;
}

const char* AlgorithmName(Algorithm algorithm) {
  return algorithm == Algorithm::kDirect ? "direct" : "nccl";
}

}  // namespace shardsim::engine
