// NCCL's choice of algorithm and protocol (sim/cost/nccl_tuning.h), case by
// case from its tuning model's rules; each expectation is worked out by hand
// in the comment beside it.
#include "sim/cost/nccl_tuning.h"

#include <string>

#include "gtest/gtest.h"

namespace shardsim::cost {
namespace {

NcclFabric Dgx(int compute_capability, int nvswitch_generation, double bandwidth_gbps) {
  NcclFabric f;
  f.ranks = 8;
  f.compute_capability = compute_capability;
  f.nvswitch_generation = nvswitch_generation;
  f.intra_bandwidth_gbps = bandwidth_gbps;
  return f;
}

std::string Chosen(NcclCollective c, int64_t bytes, const NcclFabric& f) {
  const NcclChoice choice = ChooseNccl(c, bytes, f);
  return std::string(CollectiveAlgorithmName(choice.algorithm)) + "/" +
         NcclProtocolName(choice.protocol);
}

TEST(NcclTuning, ChoicesFollowTheTuningModel) {
  const NcclFabric h100 = Dgx(90, 3, 450);
  const NcclFabric a100 = Dgx(80, 2, 300);
  constexpr int64_t kMiB = 1 << 20;
  // 8 B: ring LL costs 6.6 + 14 x 0.6 = 15.0 us, tree LL 6.8 + 2 x 7 x 0.6 =
  // 15.2 us, NVLS 23 us: ring LL.
  EXPECT_EQ(Chosen(NcclCollective::kAllReduce, 8, h100), "ring/LL");
  // 256 MiB: ring Simple moves 450 x 8/14 = 257 GB/s, NVLS 450 x 5/6 = 375:
  // NVLS (in-switch reduction) from Hopper's NVSwitch on.
  EXPECT_EQ(Chosen(NcclCollective::kAllReduce, 256 * kMiB, h100), "nvls/Simple");
  // A100's NVSwitch has no SHARP: ring Simple (171 GB/s) beats ring LL128
  // (min(276, 16 x 20) x 8/14 = 158) and tree Simple (276 x 0.5 = 138).
  EXPECT_EQ(Chosen(NcclCollective::kAllReduce, 256 * kMiB, a100), "ring/Simple");
  // 64 KiB on A100: ring LL 15.0 us + 65536 / 42.9 GB/s = 16.5 us; tree LL
  // 15.2 + 1.8 = 17.0 us; LL128's 40.6 us latency loses.
  EXPECT_EQ(Chosen(NcclCollective::kAllReduce, 64 * 1024, a100), "ring/LL");
  // All-gather has no tree. NVLS could gather on Hopper, but a ring
  // all-gather takes n - 1 steps, not 2(n - 1): 450 x 8/7 = 514 GB/s beats
  // NVLS's 375, so the ring stays.
  EXPECT_EQ(Chosen(NcclCollective::kAllGather, 256 * kMiB, a100), "ring/Simple");
  EXPECT_EQ(Chosen(NcclCollective::kAllGather, 256 * kMiB, h100), "ring/Simple");
  EXPECT_EQ(NcclCandidates(NcclCollective::kAllGather, 256 * kMiB, h100).size(), 4u);
  // PCIe (L40S): no LL128, no NVLS; large messages ring Simple.
  NcclFabric pcie = Dgx(89, 0, 25);
  pcie.nvlink = false;
  EXPECT_EQ(Chosen(NcclCollective::kAllReduce, 256 * kMiB, pcie), "ring/Simple");
  for (const NcclChoice& c : NcclCandidates(NcclCollective::kAllReduce, 1024, pcie)) {
    EXPECT_NE(c.protocol, NcclProtocol::kLL128);
    EXPECT_NE(c.algorithm, CollectiveAlgorithm::kNvls);
  }
  // 4 nodes of 8 H100, 50 GB/s NIC per GPU, 256 MiB: ring Simple 50 x 32/62
  // = 25.8 GB/s; tree Simple min(46, 16 x 36) x 0.5 = 23; NVLS+tree
  // min(28.1, 25) x 5/6 = 20.8 (per channel 450/16 and 50/16/2): ring.
  NcclFabric four = h100;
  four.ranks = 32;
  four.nodes = 4;
  EXPECT_EQ(Chosen(NcclCollective::kAllReduce, 256 * kMiB, four), "ring/Simple");
  // Across nodes a small all-reduce goes up and down a tree: its latency
  // grows with log2(nodes), the ring's with every rank.
  EXPECT_EQ(Chosen(NcclCollective::kAllReduce, 1024, four), "tree/LL");
}

TEST(NcclTuning, TimeIsLatencyPlusBytesOverAlgorithmBandwidth) {
  const NcclFabric h100 = Dgx(90, 3, 450);
  const NcclChoice c = ChooseNccl(NcclCollective::kAllReduce, 256 << 20, h100);
  EXPECT_DOUBLE_EQ(c.latency_us, 23);
  EXPECT_DOUBLE_EQ(c.bandwidth_gbps, 450.0 * 5 / 6);
  EXPECT_DOUBLE_EQ(c.time_us, 23 + (256 << 20) / (1e3 * 375));
  NcclFabric one = h100;
  one.ranks = 1;
  EXPECT_TRUE(NcclCandidates(NcclCollective::kAllReduce, 8, one).empty());
}

TEST(NcclTuning, OneEnumOneNameForEveryAlgorithm) {
  // The printed names are what `ops`, JSON reports and the goldens carry.
  EXPECT_STREQ(CollectiveAlgorithmName(CollectiveAlgorithm::kRing), "ring");
  EXPECT_STREQ(CollectiveAlgorithmName(CollectiveAlgorithm::kTree), "tree");
  EXPECT_STREQ(CollectiveAlgorithmName(CollectiveAlgorithm::kNvls), "nvls");
  EXPECT_STREQ(CollectiveAlgorithmName(CollectiveAlgorithm::kNvlsTree), "nvls_tree");
  EXPECT_STREQ(CollectiveAlgorithmName(CollectiveAlgorithm::kDirect), "direct");
  EXPECT_STREQ(CollectiveAlgorithmName(CollectiveAlgorithm::kOneShot), "custom one-shot");
  EXPECT_STREQ(CollectiveAlgorithmName(CollectiveAlgorithm::kTwoShot), "custom two-shot");
  // NCCL only ever picks one of its own four.
  NcclFabric h100 = Dgx(90, 3, 450);
  for (const int nodes : {1, 2, 4}) {
    h100.nodes = nodes;
    h100.ranks = 8 * nodes;
    for (const NcclChoice& c : NcclCandidates(NcclCollective::kAllReduce, 4096, h100)) {
      EXPECT_LE(static_cast<int>(c.algorithm), static_cast<int>(CollectiveAlgorithm::kNvlsTree));
    }
  }
}

TEST(NcclTuning, Log2FloorIsTheBinaryTreeDepth) {
  EXPECT_EQ(Log2Floor(0), 0);
  EXPECT_EQ(Log2Floor(1), 0);
  EXPECT_EQ(Log2Floor(2), 1);
  EXPECT_EQ(Log2Floor(3), 1);
  EXPECT_EQ(Log2Floor(4), 2);
  EXPECT_EQ(Log2Floor(7), 2);
  EXPECT_EQ(Log2Floor(8), 3);
  EXPECT_EQ(Log2Floor(1023), 9);
  EXPECT_EQ(Log2Floor(1024), 10);
}

}  // namespace
}  // namespace shardsim::cost
