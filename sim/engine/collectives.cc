#include "sim/engine/collectives.h"

namespace shardsim::engine {

CollectiveStats RunRingCollective(
    const std::vector<std::vector<simgrid::s4u::Host*>>& groups,
    CollectiveKind kind, int64_t bytes) {
  CollectiveStats stats;
  const double start = simgrid::s4u::Engine::get_clock();
  size_t n = 0;
  for (const auto& group : groups) n = std::max(n, group.size());
  if (n <= 1 || bytes <= 0) return stats;
  const size_t phases = kind == CollectiveKind::kAllReduce ? 2 * (n - 1) : n - 1;
  for (size_t phase = 0; phase < phases; ++phase) {
    std::vector<simgrid::s4u::CommPtr> comms;
    for (const auto& group : groups) {
      const size_t size = group.size();
      if (size <= 1) continue;
      // Each GPU holds 1/size of the buffer (rounded up) per ring step.
      const uint64_t chunk = static_cast<uint64_t>(
          (bytes + static_cast<int64_t>(size) - 1) / static_cast<int64_t>(size));
      if (phase >= (kind == CollectiveKind::kAllReduce ? 2 * (size - 1) : size - 1)) {
        continue;
      }
      for (size_t r = 0; r < size; ++r) {
        comms.push_back(simgrid::s4u::Comm::sendto_async(
            group[r], group[(r + 1) % size], chunk));
      }
    }
    stats.flows += static_cast<int64_t>(comms.size());
    simgrid::s4u::Comm::wait_all(comms);
  }
  stats.seconds = simgrid::s4u::Engine::get_clock() - start;
  return stats;
}

CollectiveStats RunDirectCollective(
    const std::vector<std::vector<simgrid::s4u::Host*>>& groups,
    CollectiveKind kind, int64_t bytes) {
  CollectiveStats stats;
  const double start = simgrid::s4u::Engine::get_clock();
  const int phases = kind == CollectiveKind::kAllReduce ? 2 : 1;
  for (int phase = 0; phase < phases; ++phase) {
    std::vector<simgrid::s4u::CommPtr> comms;
    for (const auto& group : groups) {
      const size_t size = group.size();
      if (size <= 1 || bytes <= 0) continue;
      const uint64_t chunk = static_cast<uint64_t>(
          (bytes + static_cast<int64_t>(size) - 1) / static_cast<int64_t>(size));
      for (size_t from = 0; from < size; ++from) {
        for (size_t to = 0; to < size; ++to) {
          if (from == to) continue;
          comms.push_back(
              simgrid::s4u::Comm::sendto_async(group[from], group[to], chunk));
        }
      }
    }
    stats.flows += static_cast<int64_t>(comms.size());
    simgrid::s4u::Comm::wait_all(comms);
  }
  stats.seconds = simgrid::s4u::Engine::get_clock() - start;
  return stats;
}

CollectiveStats RunCollective(
    const std::vector<std::vector<simgrid::s4u::Host*>>& groups,
    CollectiveKind kind, int64_t bytes, Algorithm algorithm) {
  return algorithm == Algorithm::kDirect
             ? RunDirectCollective(groups, kind, bytes)
             : RunRingCollective(groups, kind, bytes);
}

const char* AlgorithmName(Algorithm algorithm) {
  return algorithm == Algorithm::kDirect ? "direct" : "ring";
}

}  // namespace shardsim::engine
