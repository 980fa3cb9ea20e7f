// Collectives as flows on the platform, decomposed as the collective library
// runs them: the algorithm and protocol NCCL chooses for the size, the GPU
// count and the wiring, or the direct algorithm on a full mesh and for
// all-to-alls (sim/cost/collective_model.h says what each algorithm's phases
// are and why).
//
// A collective first pays the tuning's launch time, and each phase its step
// latency (the protocol's, once per level of a tree) before its flows start;
// each flow is simulated as bytes / efficiency (the tuning's for the kind of
// the slowest link on its route, times the protocol's bandwidth factor), so
// it takes as long as the library needs yet still shares the links with the
// flows beside it. Phases of concurrent groups run at the same time, so
// groups that share a link (two TP groups behind one PCIe switch) slow each
// other down as they would on the machine.
// Must be called from inside a SimGrid actor; blocks that actor until every
// group is done and returns the simulated time it took.
#ifndef SHARDSIM_SIM_ENGINE_COLLECTIVES_H_
#define SHARDSIM_SIM_ENGINE_COLLECTIVES_H_

#include <cstdint>
#include <vector>

#include "simgrid/s4u.hpp"
#include "sim/cost/collective_model.h"
#include "sim/hardware/platform_builder.h"
#include "sim/parallel/partition.h"
#include "sim/parallel/program.h"
#include "sim/proto/hardware.pb.h"

namespace shardsim::engine {

using CollectiveKind = parallel::CommKind;  // all but kSendRecv

struct CollectiveStats {
  double seconds = 0;
  int64_t flows = 0;  // point-to-point transfers started
  cost::CollectivePlan plan;  // what ran
};

// What collectives run on: the platform's hosts, the cluster (its routes
// decide each flow's link kind, hence its efficiency; its tuning the launch
// and step times).
struct Fabric {
  const hardware::Platform* platform = nullptr;
  const hardware::Cluster* cluster = nullptr;
  // The runtime runs small all-reduces inside a node with its own one-shot /
  // two-shot kernels (cost::CustomAllReduceChoice), which pay their fitted
  // step latency and no NCCL launch.
  bool custom_all_reduce = false;
};

// The wiring's family, for reports and drivers: kDirect on a full mesh
// (every pair of the group one link apart), kRing elsewhere, where NCCL's
// algorithms (ring, tree, NVLS) run as its tuning chooses per collective
// (cost::PlanCollective decides each one).
enum class Algorithm { kRing, kDirect };
const char* AlgorithmName(Algorithm algorithm);  // "nccl" or "direct"
Algorithm ChooseAlgorithm(const hardware::Cluster& cluster, const std::vector<int>& gpus);

// A group is a list of GPU indices, in ring order. These run the collective
// on every group at once and return when all have finished.
// With `plan`: that algorithm and protocol.
CollectiveStats RunCollectiveAs(const Fabric& fabric, const std::vector<std::vector<int>>& groups,
                                CollectiveKind kind, int64_t bytes,
                                const cost::CollectivePlan& plan);
// As the library would: cost::PlanCollective on the first (largest) group
// (with the fabric's custom all-reduce, if any).
CollectiveStats RunCollective(const Fabric& fabric, const std::vector<std::vector<int>>& groups,
                              CollectiveKind kind, int64_t bytes);
// NCCL's ring with the Simple protocol.
CollectiveStats RunRingCollective(const Fabric& fabric,
                                  const std::vector<std::vector<int>>& groups,
                                  CollectiveKind kind, int64_t bytes);

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

using cost::SimulatedBytes;

}  // namespace shardsim::engine

#endif  // SHARDSIM_SIM_ENGINE_COLLECTIVES_H_
