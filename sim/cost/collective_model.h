// How a collective runs on a group of GPUs, without SimGrid: the algorithm
// and protocol (NCCL's own choice, sim/cost/nccl_tuning.h, from what its
// tuning sees of the group's wiring; or the direct algorithm on a full mesh),
// the phases of point-to-point flows that algorithm is made of, and the time
// those flows take when nothing else shares their links. sim/engine turns the
// same phases into flows on the platform (so contention stays real); the
// calibration fits and judges the tuning with the closed form.
//
//   ring   2(N-1) phases (all-reduce; N-1 for all-gather / reduce-scatter),
//          in each of which every GPU sends 1/N of the buffer to the next.
//   tree   all-reduce only: a reduce up the tree then a broadcast down it,
//          each one phase in which every GPU sends the whole buffer to its
//          parent (then its children) at once, as NCCL pipelines chunks
//          through the tree. Inside a node the tree is a chain in group
//          order; across nodes each node's first GPU hangs off a binary tree
//          of nodes (NCCL's is a double binary tree: two trees, each carrying
//          half; one tree here). Each phase pays the step latency once per
//          level of the tree (its depth), as NCCL's model does.
//   nvls   NVLink SHARP on a third-generation NVSwitch or later: every GPU
//          sends its buffer into the switch once and receives the reduced
//          result once (all-reduce), or sends its 1/N share and receives the
//          other (N-1)/N (all-gather, reduce-scatter). One phase. On a switch
//          each GPU has one link up and one down, so this is modelled as a
//          flow from each GPU to the next through the switch: it loads each
//          GPU's up-link and down-link with exactly those bytes, which is
//          what the in-switch reduction does to them (NVIDIA, "NVLink SHARP",
//          https://docs.nvidia.com/networking/display/sharpv300 and the
//          Hopper architecture whitepaper: the switch reduces the operands
//          and multicasts the result). The switch's own reduction rate is
//          not modelled apart: it is in the fitted NVLS bandwidth factor.
//   nvls_tree  across nodes: the tree's phases at NVLS's step latency and
//          bandwidth factor.
//   direct on a full mesh of more than two GPUs (every pair one link apart,
//          an MI300X's Infinity Fabric): a reduce-scatter then an all-gather
//          phase for an all-reduce (one phase otherwise) in which every GPU
//          sends 1/N of the buffer to every peer over its own link; and every
//          all-to-all (NCCL's grouped send/recv), whatever the wiring.
//
//   custom one-shot / two-shot: the inference engines' own all-reduce for
//          small messages inside a node (vLLM's csrc/custom_all_reduce.cuh,
//          which SGLang's sgl-kernel copies): one-shot, every GPU reads the
//          whole buffer of each peer through NVLink / PCIe P2P and reduces
//          it locally (one phase, each GPU pulling (N-1) x bytes); two-shot,
//          a reduce-scatter then an all-gather through P2P (two phases,
//          every GPU pulling 1/N of the buffer from each peer in each:
//          2 (N-1)/N x bytes). Each pays its own fitted latency per phase
//          (the tuning's "ONESHOT" / "TWOSHOT" entries) and no NCCL launch.
//          When they run instead of NCCL: CustomAllReduceChoice below.
//
// The protocol sets each phase's step latency and multiplies the link kind's
// bandwidth efficiency by its factor (CollectiveTuning.protocols): LL's
// flag-per-8-bytes lines have little latency and half the payload, LL128
// keeps 120 of 128 bytes, Simple has the full payload and the most
// synchronisation (NCCL docs, "NCCL_PROTO"; the factors are fitted).
#ifndef SHARDSIM_SIM_COST_COLLECTIVE_MODEL_H_
#define SHARDSIM_SIM_COST_COLLECTIVE_MODEL_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "sim/cost/nccl_tuning.h"
#include "sim/hardware/cluster.h"
#include "sim/parallel/program.h"
#include "sim/proto/hardware.pb.h"

namespace shardsim::cost {

// CollectiveAlgorithm and its names are nccl_tuning.h's.

struct CollectivePlan {
  CollectiveAlgorithm algorithm = CollectiveAlgorithm::kRing;
  NcclProtocol protocol = NcclProtocol::kSimple;
  // "ring/LL": what reports print ("custom one-shot" for the custom kernels,
  // which have no NCCL protocol).
  std::string Name() const;
};

// True for the runtime's own all-reduce kernels (one-shot, two-shot).
bool IsCustomAllReduce(CollectiveAlgorithm algorithm);

// vLLM's custom all-reduce buffer: messages of at least this many bytes go
// to NCCL (CustomAllreduce's max_size = 8192 * 1024 in
// vllm/distributed/device_communicators/custom_all_reduce.py).
inline constexpr int64_t kCustomAllReduceMaxBytes = 8192 * 1024;

// Whether the runtime's custom all-reduce takes an all-reduce of `bytes` on
// `ranks` GPUs of one node, and which kernel, by vLLM's rules
// (custom_all_reduce.py: world sizes 2, 4, 6, 8 only; the byte size a
// multiple of 16; below max_size; two GPUs, or more that are all joined by
// NVLink (`fully_nvlink`: "custom allreduce is disabled on more than two
// PCIe-only GPUs"); custom_all_reduce.cuh: one-shot for 2 GPUs, for up to
// 4 GPUs below 512 KiB and up to 8 below 256 KiB, else two-shot). Two GPUs
// over PCIe are taken to have P2P access (vLLM checks it at start-up).
// Returns kOneShot, kTwoShot, or kRing meaning "not taken: NCCL".
CollectiveAlgorithm CustomAllReduceChoice(int ranks, int64_t bytes, bool one_node,
                                          bool fully_nvlink);

// What NCCL's tuning sees of `group` (GPU indices of `cluster`): ranks and
// nodes; NVLink when every pair of the group inside a node is joined by
// NVLink links only; a third-generation-or-later NVSwitch (NVLS) when those
// routes are two NVLink hops through a switch and the GPU's NVLink is
// generation 4 or later (NVSwitch gen N-1 carries NVLink N); the GPU's
// compute capability; the slowest route's bandwidth inside a node and
// between nodes. NCCL's channel count is left at NcclFabric's 16 (it only
// caps LL128 and tree bandwidth per channel in the choice).
NcclFabric NcclFabricOf(const hardware::Cluster& cluster, const std::vector<int>& group);

// True when every pair of `group` is one link apart.
bool IsFullMesh(const hardware::Cluster& cluster, const std::vector<int>& group);

// What runs `kind` of `bytes` on `group`: with `custom_all_reduce` (a
// runtime that has its own kernels), an all-reduce CustomAllReduceChoice
// takes; else direct for all-to-alls and on full meshes of more than two
// GPUs (Simple), else NCCL's choice (ChooseNccl).
CollectivePlan PlanCollective(const hardware::Cluster& cluster, const std::vector<int>& group,
                              parallel::CommKind kind, int64_t bytes,
                              bool custom_all_reduce = false);

// A plan decomposed into phases of flows for a group of `size` GPUs.
struct CollectiveShape {
  CollectivePlan plan;
  int phases = 0;
  int latency_steps = 1;  // step latencies each phase pays before its flows
  double flow_bytes = 0;  // each flow's payload
};
CollectiveShape ShapeCollective(const CollectivePlan& plan, parallel::CommKind kind,
                                int64_t bytes, const hardware::Cluster& cluster,
                                const std::vector<int>& group);

// The flows of phase `phase` as (from, to) GPU indices.
std::vector<std::pair<int, int>> PhaseFlows(const CollectiveShape& shape,
                                            const hardware::Cluster& cluster,
                                            const std::vector<int>& group, int phase);

// The tuning's step latency and bandwidth factor for `plan` (NVLS and
// NVLS-tree use the "NVLS" entry whatever their protocol).
double StepLatency(const v1::CollectiveTuning& tuning, const CollectivePlan& plan);
double BandwidthFactor(const v1::CollectiveTuning& tuning, const CollectivePlan& plan);
// The tuning's entry name for `plan`: "LL", "LL128", "Simple", "NVLS", or
// "ONESHOT" / "TWOSHOT" for the custom kernels.
const char* ProtocolKey(const CollectivePlan& plan);

// Simulated size of `bytes` moved at `efficiency` (0 means 1) of the links.
uint64_t SimulatedBytes(double bytes, double efficiency);

// The efficiency a flow of `plan` from `from` to `to` moves at: the link
// kind's (Cluster::CollectiveEfficiency with `tuning`) times the protocol's
// factor, at most 1.
double FlowEfficiency(const hardware::Cluster& cluster, const v1::CollectiveTuning& tuning,
                      const CollectivePlan& plan, int from, int to);

// The time of `kind` of `bytes` on `group` alone on the links, with
// `tuning`: launch, then each phase's step latencies and its slowest flow
// (route latency + simulated bytes / route bandwidth). Exactly what the
// engine simulates when the flows of a phase share no link. With
// `custom_all_reduce`, as PlanCollective chooses; a custom kernel's phase
// counts every flow crossing a link in the same direction against that
// link (its flows share each GPU's way into a switch), and pays no NCCL
// launch.
double CollectiveTimeAlone(const hardware::Cluster& cluster, const v1::CollectiveTuning& tuning,
                           const std::vector<int>& group, parallel::CommKind kind, int64_t bytes,
                           bool custom_all_reduce = false);

// The time of a custom all-reduce (`plan` one-shot or two-shot) of `bytes`
// on `group` alone on the links, as CollectiveTimeAlone says.
double CustomAllReduceTimeAlone(const hardware::Cluster& cluster,
                                const v1::CollectiveTuning& tuning,
                                const std::vector<int>& group, const CollectivePlan& plan,
                                int64_t bytes);

}  // namespace shardsim::cost

#endif  // SHARDSIM_SIM_COST_COLLECTIVE_MODEL_H_
