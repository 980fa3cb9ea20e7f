// Which algorithm and protocol NCCL picks for a collective, and the time its
// own tuning model predicts: a pure function, no SimGrid. The engine runs
// what it picks (cost::PlanCollective in sim/cost/collective_model.h); the
// times it predicts are NCCL's model's, used only for the choice: the
// simulated times come from flows with the fitted tuning.
//
// NCCL's model (src/graph/tuning.cc of NVIDIA/nccl, the 2.19-era version at
// commit b6475625; its constants are quoted as facts, the code is ours): for
// each algorithm (ring, tree, NVLS in-switch reduction, NVLS+tree across
// nodes) and protocol (LL, LL128, Simple), time = latency + bytes / bandwidth,
// where the latency is a base plus a per-step hardware latency (NVLink, PCIe
// or network) times the algorithm's steps, and the bandwidth is the channels'
// bus bandwidth scaled by the protocol's payload share (LL: 1/4, LL128:
// 0.92) and converted to algorithm bandwidth (ring n / steps, tree 1/2,
// NVLS 5/6). The enabled pair with the least time is chosen.
#ifndef SHARDSIM_SIM_COST_NCCL_TUNING_H_
#define SHARDSIM_SIM_COST_NCCL_TUNING_H_

#include <cstdint>
#include <string>
#include <vector>

namespace shardsim::cost {

enum class NcclCollective { kAllReduce, kAllGather, kReduceScatter };

// Every algorithm a collective can run, one enum for NCCL's choice here and
// for the engine's plan (sim/cost/collective_model.h). The first four are
// NCCL's, in the order of its tuning tables (only they come out of
// NcclCandidates); kDirect is every GPU sending to every other at once
// (all-to-all, send/recv, a full mesh); kOneShot and kTwoShot are the
// runtime's own custom all-reduce kernels.
enum class CollectiveAlgorithm { kRing, kTree, kNvls, kNvlsTree, kDirect, kOneShot, kTwoShot };
enum class NcclProtocol { kLL, kLL128, kSimple };

// "ring", "tree", "nvls", "nvls_tree", "direct", "custom one-shot",
// "custom two-shot": what `ops`, JSON reports and traces print.
const char* CollectiveAlgorithmName(CollectiveAlgorithm algorithm);
const char* NcclProtocolName(NcclProtocol protocol);  // "LL", "LL128", "Simple"

// floor(log2(n)) for n >= 1 (0 for n <= 1): the depth of a binary tree of n
// nodes, as NCCL's tree latency and the engine's tree shape count it.
int Log2Floor(int n);

// What NCCL's tuning sees of the machine.
struct NcclFabric {
  int ranks = 8;
  int nodes = 1;
  // GPU-to-GPU inside a node over NVLink (else PCIe); LL128 needs NVLink.
  bool nvlink = true;
  // NVSwitch generation inside the node: 0 none (direct links or PCIe),
  // 2 A100's, 3 H100's (NVLink SHARP: NVLS), 4 B200's.
  int nvswitch_generation = 0;
  // Compute capability x 10 (80 A100, 89 L40S, 90 H100/H200, 100 B200).
  int compute_capability = 90;
  // Per GPU, one direction, GB/s: inside the node, and through its NIC(s).
  double intra_bandwidth_gbps = 450;
  double inter_bandwidth_gbps = 50;
  // NCCL's channels (rings/trees in parallel); caps some per-channel rates.
  int channels = 16;
};

struct NcclChoice {
  CollectiveAlgorithm algorithm = CollectiveAlgorithm::kRing;  // one of NCCL's four
  NcclProtocol protocol = NcclProtocol::kSimple;
  double latency_us = 0;
  double bandwidth_gbps = 0;  // algorithm bandwidth
  double time_us = 0;
};

// Every enabled (algorithm, protocol) for `collective` of `bytes` (the
// buffer, as nccl-tests counts it) on `fabric`, with its predicted time.
std::vector<NcclChoice> NcclCandidates(NcclCollective collective, int64_t bytes,
                                       const NcclFabric& fabric);

// The fastest of NcclCandidates(): what NCCL would run.
NcclChoice ChooseNccl(NcclCollective collective, int64_t bytes, const NcclFabric& fabric);

}  // namespace shardsim::cost

#endif  // SHARDSIM_SIM_COST_NCCL_TUNING_H_
