#include "sim/cost/nccl_tuning.h"

#include <algorithm>
#include <cmath>

namespace shardsim::cost {
namespace {

// NCCL's algorithms: the first four of CollectiveAlgorithm (ring, tree,
// nvls, nvls_tree), which index the tables below.
constexpr int kAlgorithms = 4;
constexpr int kProtocols = 3;  // LL, LL128, Simple

// Base latency (us) per algorithm and protocol (tuning.cc baseLat).
constexpr double kBaseLatencyUs[kAlgorithms][kProtocols] = {
    {6.6, 14.0, 8.4}, {6.8, 14.0, 0}, {0, 0, 0}, {0, 0, 0}};
// Per-step hardware latency (us): NVLink, PCIe, network (tuning.cc hwLat).
constexpr double kStepLatencyUs[3][kAlgorithms][kProtocols] = {
    {{.6, 1.9, 3.4}, {.6, 1.25, 28}, {0, 0, 23}, {0, 0, 23}},
    {{1.0, 2.5, 5.7}, {1.0, 1.9, 28}, {0, 0, 0}, {0, 0, 0}},
    {{2.7, 4.0, 14.0}, {5.0, 8.5, 28}, {0, 0, 18}, {0, 0, 14}}};

// Per-generation caps (GB/s; Volta, Ampere, Hopper rows; 1, 2, 4+ nodes).
constexpr double kLLMaxBw[3][3] = {{39.0, 39.0, 20.4}, {87.7, 22.5, 19.0}, {87.7, 22.5, 19.0}};
constexpr double kRingLL128PerChannel[3] = {20.0, 20.0, 36.7};
constexpr double kTreeLL128PerChannel[3][3] = {
    {20.0, 20.0, 20.0}, {20.0, 20.0, 20.0}, {36.7, 36.7, 29.0}};
constexpr double kTreePerChannel[3][3] = {
    {26.5, 18.5, 10.0}, {24.0, 23.6, 17.8}, {38.7, 41.4, 36.0}};

}  // namespace

int Log2Floor(int n) {
  int log = 0;
  while (n > 1) {
    n /= 2;
    ++log;
  }
  return log;
}

const char* CollectiveAlgorithmName(CollectiveAlgorithm algorithm) {
  switch (algorithm) {
    case CollectiveAlgorithm::kRing:
      return "ring";
    case CollectiveAlgorithm::kTree:
      return "tree";
    case CollectiveAlgorithm::kNvls:
      return "nvls";
    case CollectiveAlgorithm::kNvlsTree:
      return "nvls_tree";
    case CollectiveAlgorithm::kDirect:
      return "direct";
    case CollectiveAlgorithm::kOneShot:
      return "custom one-shot";
    case CollectiveAlgorithm::kTwoShot:
      return "custom two-shot";
  }
  return "unknown";
}

const char* NcclProtocolName(NcclProtocol protocol) {
  switch (protocol) {
    case NcclProtocol::kLL:
      return "LL";
    case NcclProtocol::kLL128:
      return "LL128";
    case NcclProtocol::kSimple:
      return "Simple";
  }
  return "unknown";
}

std::vector<NcclChoice> NcclCandidates(NcclCollective collective, int64_t bytes,
                                       const NcclFabric& f) {
  std::vector<NcclChoice> out;
  const int ranks = std::max(1, f.ranks);
  const int nodes = std::max(1, f.nodes);
  if (ranks <= 1) return out;
  const bool all_reduce = collective == NcclCollective::kAllReduce;
  const int generation = f.compute_capability >= 90 ? 2 : f.compute_capability >= 80 ? 1 : 0;
  const int by_nodes = nodes <= 2 ? nodes - 1 : 2;
  const double channels = std::max(1, f.channels);
  // NCCL's graphs carry per-channel bandwidths; ours are per GPU.
  const double intra = f.intra_bandwidth_gbps / channels;
  const double inter = f.inter_bandwidth_gbps / channels;
  const double per_node = static_cast<double>(ranks) / nodes;
  const int steps = all_reduce ? 2 * (ranks - 1) : ranks - 1;
  const int inter_steps = all_reduce ? (nodes > 1 ? 2 * nodes : 0) : nodes - 1;
  const int intra_hw = f.nvlink ? 0 : 1;
  // NVLink SHARP needs an NVSwitch of the third generation (Hopper) or later.
  const bool nvls = f.nvlink && f.nvswitch_generation >= 3 && f.compute_capability >= 90;
  for (int a = 0; a < kAlgorithms; ++a) {
    const auto algorithm = static_cast<CollectiveAlgorithm>(a);
    // Only all-reduce has trees; NVLS also gathers and scatters in one node;
    // NVLS+tree is the multi-node all-reduce.
    if (algorithm == CollectiveAlgorithm::kTree && !all_reduce) continue;
    if (algorithm == CollectiveAlgorithm::kNvls && (!nvls || nodes > 1)) continue;
    if (algorithm == CollectiveAlgorithm::kNvlsTree && (!nvls || nodes == 1 || !all_reduce)) continue;
    for (int p = 0; p < kProtocols; ++p) {
      const auto protocol = static_cast<NcclProtocol>(p);
      const bool nvls_family =
          algorithm == CollectiveAlgorithm::kNvls || algorithm == CollectiveAlgorithm::kNvlsTree;
      if (nvls_family && protocol != NcclProtocol::kSimple) continue;
      // LL128 is on by default only over NVLink, on one GPU generation.
      if (protocol == NcclProtocol::kLL128 &&
          (!f.nvlink || (f.compute_capability != 70 && f.compute_capability != 80 &&
                         f.compute_capability != 90))) {
        continue;
      }
      double bw = nodes <= 2 ? intra : inter;
      if (algorithm == CollectiveAlgorithm::kNvls) bw = intra;
      if (algorithm == CollectiveAlgorithm::kNvlsTree) bw = std::min(intra, nodes <= 2 ? inter : inter / 2);
      double bus = channels * bw;
      if (algorithm == CollectiveAlgorithm::kRing && protocol == NcclProtocol::kLL) {
        bus = std::min(kLLMaxBw[nodes == 1 ? generation : 0][by_nodes],
                       bus * ((nodes > 1 || all_reduce) ? 1.0 / 4 : 1.0 / 3));
      }
      if (algorithm == CollectiveAlgorithm::kRing && protocol == NcclProtocol::kLL128) {
        bus = std::min(bus * (per_node < 2 ? 0.7 : 0.92),
                       channels * kRingLL128PerChannel[generation]);
      }
      if (algorithm == CollectiveAlgorithm::kTree) {
        bus = std::min(bus * .92, channels * kTreePerChannel[generation][by_nodes]);
        if (protocol == NcclProtocol::kLL) {
          bus = std::min(bus / 3.8, kLLMaxBw[nodes == 1 ? generation : 0][by_nodes]);
        }
        if (protocol == NcclProtocol::kLL128) {
          bus = std::min(bus * (nodes == 1 ? 7.0 / 9 : 120.0 / 128),
                         channels * kTreeLL128PerChannel[generation][by_nodes]);
        }
      }
      // Bus bandwidth -> algorithm bandwidth.
      const double ratio = algorithm == CollectiveAlgorithm::kRing ? static_cast<double>(ranks) / steps
                           : nvls_family                     ? 5.0 / 6
                                                             : 0.5;
      NcclChoice c{algorithm, protocol, kBaseLatencyUs[a][p], bus * ratio, 0};
      const double intra_lat = kStepLatencyUs[intra_hw][a][p];
      const double inter_lat = kStepLatencyUs[2][a][p];
      switch (algorithm) {
        case CollectiveAlgorithm::kRing: {
          // Across nodes every step also posts to the network: ~1 us on an
          // x86 host, 3x for Simple (tuning.cc getNetOverhead).
          const double post = protocol == NcclProtocol::kSimple ? 3.0 : 1.0;
          const double ring_lat = nodes > 1 ? std::max(intra_lat, post) : intra_lat;
          c.latency_us += (steps - inter_steps) * ring_lat + inter_steps * inter_lat;
          break;
        }
        case CollectiveAlgorithm::kTree:
          c.latency_us += 2 * ((per_node - 1) * intra_lat + Log2Floor(nodes) * inter_lat);
          break;
        case CollectiveAlgorithm::kNvls:
          c.latency_us = intra_lat;
          break;
        case CollectiveAlgorithm::kNvlsTree:
          c.latency_us += intra_lat + 2 * Log2Floor(nodes) * inter_lat;
          break;
        case CollectiveAlgorithm::kDirect:
        case CollectiveAlgorithm::kOneShot:
        case CollectiveAlgorithm::kTwoShot:
          break;  // not NCCL's: the loop never reaches them
      }
      if (c.bandwidth_gbps <= 0) continue;
      // GB/s = 1e3 bytes per microsecond.
      c.time_us = c.latency_us + static_cast<double>(bytes) / (1e3 * c.bandwidth_gbps);
      out.push_back(c);
    }
  }
  return out;
}

NcclChoice ChooseNccl(NcclCollective collective, int64_t bytes, const NcclFabric& fabric) {
  const std::vector<NcclChoice> candidates = NcclCandidates(collective, bytes, fabric);
  NcclChoice best;
  for (const NcclChoice& c : candidates) {
    if (best.time_us == 0 || c.time_us < best.time_us) best = c;
  }
  return best;
}

}  // namespace shardsim::cost
