// What NCCL's tuning sees of each shipped cluster, what it runs there, and
// how each algorithm decomposes into phases (sim/cost/collective_model.h).
#include "sim/cost/collective_model.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "sim/scenario/scenario.h"

namespace shardsim::cost {
namespace {

hardware::Cluster LoadCluster(const std::string& path) {
  absl::StatusOr<hardware::Cluster> cluster = scenario::LoadAndCheckTopology(path);
  EXPECT_TRUE(cluster.ok()) << cluster.status();
  return *cluster;
}

const std::vector<int> kEight{0, 1, 2, 3, 4, 5, 6, 7};
constexpr int64_t kMiB = 1 << 20;

TEST(CollectiveModel, WhatNcclSeesOfEachCluster) {
  const NcclFabric h100 = NcclFabricOf(LoadCluster("topologies/dgx_h100.textproto"), kEight);
  EXPECT_EQ(h100.ranks, 8);
  EXPECT_EQ(h100.nodes, 1);
  EXPECT_TRUE(h100.nvlink);
  EXPECT_EQ(h100.nvswitch_generation, 3);  // NVLink 4 behind NVSwitch gen 3
  EXPECT_EQ(h100.compute_capability, 90);
  EXPECT_DOUBLE_EQ(h100.intra_bandwidth_gbps, 450);
  const NcclFabric a100 = NcclFabricOf(LoadCluster("topologies/dgx_a100.textproto"), kEight);
  EXPECT_EQ(a100.nvswitch_generation, 2);
  EXPECT_EQ(a100.compute_capability, 80);
  EXPECT_EQ(NcclFabricOf(LoadCluster("topologies/dgx_b200.textproto"), kEight).nvswitch_generation,
            4);
  const NcclFabric l40s = NcclFabricOf(LoadCluster("topologies/pcie_l40s_8x.textproto"), kEight);
  EXPECT_FALSE(l40s.nvlink);
  EXPECT_EQ(l40s.nvswitch_generation, 0);
  // Two A100 PCIe cards joined by an NVLink bridge: NVLink, no switch; four
  // of them talk over PCIe.
  const hardware::Cluster pairs = LoadCluster("topologies/pcie_a100_4x_nvlink_pairs.textproto");
  EXPECT_TRUE(NcclFabricOf(pairs, {0, 1}).nvlink);
  EXPECT_EQ(NcclFabricOf(pairs, {0, 1}).nvswitch_generation, 0);
  EXPECT_FALSE(NcclFabricOf(pairs, {0, 1, 2, 3}).nvlink);
  // Two nodes of H100 over InfiniBand: 16 ranks on 2 nodes.
  const hardware::Cluster two = LoadCluster("topologies/h100_2node_ib.textproto");
  std::vector<int> sixteen;
  for (int g = 0; g < 16; ++g) sixteen.push_back(g);
  const NcclFabric across = NcclFabricOf(two, sixteen);
  EXPECT_EQ(across.nodes, 2);
  EXPECT_DOUBLE_EQ(across.inter_bandwidth_gbps * 1e9, two.RouteBandwidth(0, 8));
}

std::string Plan(const hardware::Cluster& c, const std::vector<int>& group,
                 parallel::CommKind kind, int64_t bytes) {
  return PlanCollective(c, group, kind, bytes).Name();
}

TEST(CollectiveModel, TheEngineRunsNcclsChoice) {
  const hardware::Cluster h100 = LoadCluster("topologies/dgx_h100.textproto");
  const hardware::Cluster a100 = LoadCluster("topologies/dgx_a100.textproto");
  // As tests/nccl_tuning_test.cc works out by hand for these fabrics.
  EXPECT_EQ(Plan(h100, kEight, parallel::CommKind::kAllReduce, 8), "ring/LL");
  EXPECT_EQ(Plan(h100, kEight, parallel::CommKind::kAllReduce, 256 * kMiB), "nvls/Simple");
  EXPECT_EQ(Plan(a100, kEight, parallel::CommKind::kAllReduce, 256 * kMiB), "ring/Simple");
  EXPECT_EQ(Plan(a100, kEight, parallel::CommKind::kAllReduce, 64 * 1024), "ring/LL");
  EXPECT_EQ(Plan(h100, kEight, parallel::CommKind::kAllGather, 256 * kMiB), "ring/Simple");
  // All-to-alls are grouped send/recv, whatever the wiring.
  EXPECT_EQ(Plan(h100, kEight, parallel::CommKind::kAllToAll, kMiB), "direct/Simple");
  // A full mesh of more than two GPUs runs the direct algorithm (RCCL on
  // MI300X's Infinity Fabric).
  const hardware::Cluster mi300x = LoadCluster("topologies/mi300x_8x.textproto");
  EXPECT_EQ(Plan(mi300x, kEight, parallel::CommKind::kAllReduce, kMiB), "direct/Simple");
  // PCIe: no LL128, no NVLS.
  const hardware::Cluster l40s = LoadCluster("topologies/pcie_l40s_8x.textproto");
  for (int64_t bytes = 1024; bytes <= 256 * kMiB; bytes *= 2) {
    const CollectivePlan p = PlanCollective(l40s, kEight, parallel::CommKind::kAllReduce, bytes);
    EXPECT_NE(p.protocol, NcclProtocol::kLL128) << bytes;
    EXPECT_NE(p.algorithm, CollectiveAlgorithm::kNvls) << bytes;
  }
}

TEST(CollectiveModel, PhasesOfEachAlgorithm) {
  const hardware::Cluster h100 = LoadCluster("topologies/dgx_h100.textproto");
  const int64_t b = 8 * kMiB;
  const CollectiveShape ring = ShapeCollective(
      {CollectiveAlgorithm::kRing, NcclProtocol::kSimple}, parallel::CommKind::kAllReduce, b,
      h100, kEight);
  EXPECT_EQ(ring.phases, 14);
  EXPECT_DOUBLE_EQ(ring.flow_bytes, b / 8);
  EXPECT_EQ(PhaseFlows(ring, h100, kEight, 0).size(), 8u);
  const CollectiveShape tree = ShapeCollective(
      {CollectiveAlgorithm::kTree, NcclProtocol::kLL}, parallel::CommKind::kAllReduce, b, h100,
      kEight);
  EXPECT_EQ(tree.phases, 2);
  EXPECT_EQ(tree.latency_steps, 7);  // a chain of 8: 7 levels
  EXPECT_DOUBLE_EQ(tree.flow_bytes, b);
  const auto up = PhaseFlows(tree, h100, kEight, 0);
  const auto down = PhaseFlows(tree, h100, kEight, 1);
  ASSERT_EQ(up.size(), 7u);
  EXPECT_EQ(up[0], std::make_pair(1, 0));
  EXPECT_EQ(down[0], std::make_pair(0, 1));
  const CollectiveShape nvls = ShapeCollective(
      {CollectiveAlgorithm::kNvls, NcclProtocol::kSimple}, parallel::CommKind::kReduceScatter, b,
      h100, kEight);
  EXPECT_EQ(nvls.phases, 1);
  EXPECT_DOUBLE_EQ(nvls.flow_bytes, b - b / 8);
  // Across 4 nodes: a chain of 8 in each node, then a binary tree of nodes
  // (depth floor(log2 4) = 2): node 1's and node 2's leaders hang off node
  // 0's, node 3's off node 1's.
  const hardware::Cluster four = LoadCluster("topologies/h100_4node_ib.textproto");
  std::vector<int> all;
  for (int g = 0; g < 32; ++g) all.push_back(g);
  const CollectiveShape wide = ShapeCollective(
      {CollectiveAlgorithm::kTree, NcclProtocol::kSimple}, parallel::CommKind::kAllReduce, b,
      four, all);
  EXPECT_EQ(wide.latency_steps, 7 + 2);
  const auto wide_up = PhaseFlows(wide, four, all, 0);
  EXPECT_EQ(wide_up.size(), 31u);
  int into_leader_0 = 0;
  for (const auto& [from, to] : wide_up) into_leader_0 += to == 0;
  EXPECT_EQ(into_leader_0, 3);  // GPU 1, and the leaders of nodes 1 and 2
  EXPECT_NE(std::find(wide_up.begin(), wide_up.end(), std::make_pair(24, 8)), wide_up.end());
}

TEST(CollectiveModel, ProtocolEntriesOrTheTuningsDefaults) {
  v1::CollectiveTuning t;
  t.set_step_latency_s(3e-6);
  v1::ProtocolTuning* nvls = t.add_protocols();
  nvls->set_protocol("NVLS");
  nvls->set_step_latency_s(20e-6);
  nvls->set_bandwidth_factor(1.5);
  const CollectivePlan ring{CollectiveAlgorithm::kRing, NcclProtocol::kLL};
  const CollectivePlan in_switch{CollectiveAlgorithm::kNvls, NcclProtocol::kSimple};
  EXPECT_DOUBLE_EQ(StepLatency(t, ring), 3e-6);
  EXPECT_DOUBLE_EQ(BandwidthFactor(t, ring), 1);
  EXPECT_DOUBLE_EQ(StepLatency(t, in_switch), 20e-6);
  EXPECT_DOUBLE_EQ(BandwidthFactor(t, in_switch), 1.5);
  // The product with the link kind's efficiency is capped at 1.
  t.set_bandwidth_efficiency(0.8);
  const hardware::Cluster h100 = LoadCluster("topologies/dgx_h100.textproto");
  EXPECT_DOUBLE_EQ(FlowEfficiency(h100, t, in_switch, 0, 1), 1.0);
  EXPECT_DOUBLE_EQ(FlowEfficiency(h100, t, ring, 0, 1), 0.8);
}

}  // namespace
}  // namespace shardsim::cost
