// Collectives as flows on the platform, decomposed the way NCCL's ring
// algorithm does it.
//
// A ring all-reduce of B bytes over N GPUs is a reduce-scatter and an
// all-gather: 2(N-1) phases, in each of which every GPU sends B/N bytes to the
// next GPU of the ring and waits to receive from the previous one. An
// all-gather is the second half: N-1 phases. Phases of concurrent groups run
// at the same time, so groups that share a link (two TP groups behind one
// PCIe switch) slow each other down as they would on the machine.
//
// Must be called from inside a SimGrid actor; blocks that actor until every
// group is done and returns the simulated time it took.
#ifndef SHARDSIM_SIM_ENGINE_COLLECTIVES_H_
#define SHARDSIM_SIM_ENGINE_COLLECTIVES_H_

#include <cstdint>
#include <vector>

#include "simgrid/s4u.hpp"

namespace shardsim::engine {

enum class CollectiveKind { kAllReduce, kAllGather };

struct CollectiveStats {
  double seconds = 0;
  int64_t flows = 0;  // point-to-point transfers started
};

// Runs the collective on every group in `groups` at once (each group a list
// of hosts in ring order) and returns when all have finished.
CollectiveStats RunRingCollective(
    const std::vector<std::vector<simgrid::s4u::Host*>>& groups,
    CollectiveKind kind, int64_t bytes);

}  // namespace shardsim::engine

#endif  // SHARDSIM_SIM_ENGINE_COLLECTIVES_H_
