// Collectives as flows on the platform, decomposed the way NCCL / RCCL do.
//
// Two algorithms, chosen by the wiring (ChooseAlgorithm):
//   ring    on switched fabrics (NVSwitch, PCIe trees, NICs), where every
//           GPU has one path out and a ring uses it fully;
//   direct  on full meshes (every pair of the group one link apart, as on an
//           MI300X's Infinity Fabric), where a ring would use one of the
//           links and leave the rest idle: each phase every GPU sends its
//           1/N share straight to every peer over its own link.
//
// A ring all-reduce of B bytes over N GPUs is a reduce-scatter and an
// all-gather: 2(N-1) phases, in each of which every GPU sends B/N bytes to the
// next GPU of the ring and waits to receive from the previous one. An
// all-gather is the second half, a reduce-scatter the first: N-1 phases each.
// An all-to-all (B bytes per GPU, B/N for each peer) is one phase in which
// every GPU sends to every peer at once, as NCCL's grouped send/recv does,
// whatever the wiring. Phases of concurrent groups run
// at the same time, so groups that share a link (two TP groups behind one
// PCIe switch) slow each other down as they would on the machine.
//
// A collective first pays the tuning's launch time, and each phase its step
// latency (NCCL's per-step synchronisation) before its flows start; each flow
// is simulated as bytes / efficiency (the tuning's for the kind of the slowest
// link on its route), so it takes as long as the library needs yet still
// shares the links with the flows beside it.
// Must be called from inside a SimGrid actor; blocks that actor until every
// group is done and returns the simulated time it took.
#ifndef SHARDSIM_SIM_ENGINE_COLLECTIVES_H_
#define SHARDSIM_SIM_ENGINE_COLLECTIVES_H_

#include <cstdint>
#include <vector>

#include "simgrid/s4u.hpp"
#include "sim/hardware/platform_builder.h"
#include "sim/parallel/partition.h"
#include "sim/parallel/program.h"
#include "sim/proto/hardware.pb.h"

namespace shardsim::engine {

using CollectiveKind = parallel::CommKind;  // all but kSendRecv
enum class Algorithm { kRing, kDirect };

const char* AlgorithmName(Algorithm algorithm);

struct CollectiveStats {
  double seconds = 0;
  int64_t flows = 0;  // point-to-point transfers started
};

// What collectives run on: the platform's hosts, the cluster (its routes
// decide each flow's link kind, hence its efficiency; its tuning the launch
// and step times).
struct Fabric {
  const hardware::Platform* platform = nullptr;
  const hardware::Cluster* cluster = nullptr;
};

// A group is a list of GPU indices, in ring order. These run the collective
// on every group at once and return when all have finished.
CollectiveStats RunRingCollective(const Fabric& fabric,
                                  const std::vector<std::vector<int>>& groups,
                                  CollectiveKind kind, int64_t bytes);

// Direct algorithm: an all-reduce is a reduce-scatter then an all-gather,
// each one phase in which every GPU sends bytes/N to each of its N-1 peers;
// an all-gather is the second phase alone.
CollectiveStats RunDirectCollective(const Fabric& fabric,
                                    const std::vector<std::vector<int>>& groups,
                                    CollectiveKind kind, int64_t bytes);

CollectiveStats RunCollective(const Fabric& fabric,
                              const std::vector<std::vector<int>>& groups,
                              CollectiveKind kind, int64_t bytes, Algorithm algorithm);

// Direct when every pair of `gpus` is one link apart (a full mesh), else ring.
Algorithm ChooseAlgorithm(const hardware::Cluster& cluster, const std::vector<int>& gpus);

// The GPUs of every tensor-parallel group of `plan`, by replica and stage.
std::vector<std::vector<int>> TpGroups(const parallel::Plan& plan);

// The distinct expert-parallel groups of `program`'s stages (empty without
// an all-to-all).
std::vector<std::vector<int>> ExpertGroups(const parallel::Program& program);

// Of `groups` that run a collective at once, the ones that must be simulated
// for its time. A group inside one node shares links only with the groups of
// that node (its routes never leave the node: a route between two GPUs of a
// node crosses no other node's links and no leaf uplink), and every node is
// wired alike, so of the nodes whose groups sit at the same local GPUs only
// the first is kept. Groups that span nodes are all kept: they may share
// NICs and uplinks. The collective's time is the same either way.
std::vector<std::vector<int>> GroupsToSimulate(const hardware::Cluster& cluster,
                                               const std::vector<std::vector<int>>& groups);

// Simulated size of `bytes` moved at `efficiency` (0 means 1) of the links.
uint64_t SimulatedBytes(double bytes, double efficiency);

}  // namespace shardsim::engine

#endif  // SHARDSIM_SIM_ENGINE_COLLECTIVES_H_
