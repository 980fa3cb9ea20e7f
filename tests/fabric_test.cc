// Clusters at datacenter scale: routes kept per node, a two-level leaf/spine
// fabric whose uplinks are shared, the platform built as zones, and which
// collective groups need simulating. Simulation tests each run in their own
// process (one SimGrid engine each).
#include <functional>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "simgrid/s4u.hpp"
#include "sim/base/config_file.h"
#include "sim/engine/collectives.h"
#include "sim/hardware/platform_builder.h"
#include "sim/scenario/scenario.h"

namespace shardsim {
namespace {

namespace s4u = simgrid::s4u;

constexpr double kNvlink = 450e9;
constexpr double kPcie = 64e9;
constexpr double kIb = 50e9;

// `nodes` nodes of 2 GPUs: NVLink to a switch inside, one NIC per GPU to the
// fabric; two levels with `per_leaf` nodes per leaf when per_leaf > 0.
hardware::Cluster Cluster(int nodes, int per_leaf, double oversubscription) {
  v1::Topology t;
  t.set_name("test fabric");
  t.set_num_nodes(nodes);
  t.set_gpus_per_node(2);
  for (int g = 0; g < 2; ++g) {
    const std::string gpu = absl::StrCat("gpu", g);
    const std::string nic = absl::StrCat("nic", g);
    for (const auto& [a, b, bandwidth, latency] :
         std::vector<std::tuple<std::string, std::string, double, double>>{
             {gpu, "nvswitch", kNvlink, 5e-7}, {gpu, nic, kPcie, 1e-6}, {nic, "fabric", kIb, 2e-6}}) {
      v1::Link* link = t.add_links();
      link->set_a(a);
      link->set_b(b);
      link->set_bandwidth_bytes_per_s(bandwidth);
      link->set_latency_s(latency);
    }
  }
  if (per_leaf > 0) {
    t.mutable_fabric()->set_levels(2);
    t.mutable_fabric()->set_nodes_per_leaf(per_leaf);
    t.mutable_fabric()->set_oversubscription(oversubscription);
    t.mutable_fabric()->set_uplink_latency_s(3e-6);
  }
  v1::GpuSpec gpu;
  gpu.set_capacity_bytes(1);
  absl::StatusOr<hardware::Cluster> cluster = hardware::BuildCluster(t, gpu, FieldLocator());
  EXPECT_TRUE(cluster.ok()) << cluster.status();
  return *cluster;
}

std::vector<std::string> LinkNames(const hardware::Cluster& c, int src, int dst) {
  std::vector<std::string> names;
  for (const hardware::Hop& hop : c.Route(src, dst)) {
    names.push_back(c.links[static_cast<size_t>(hop.link)].name);
  }
  return names;
}

TEST(Fabric, RoutesAreAssembledFromOneNodesRoutes) {
  const hardware::Cluster c = Cluster(4, 2, 2);
  // 6 links per node, 4 nodes, then one uplink per leaf.
  EXPECT_EQ(c.links.size(), 6u * 4 + 2);
  EXPECT_EQ(c.node_routes.size(), 2u);
  // Inside node 3: over NVLink.
  EXPECT_EQ(LinkNames(c, 6, 7),
            (std::vector<std::string>{"n3/gpu0-nvswitch", "n3/gpu1-nvswitch"}));
  // Nodes 0 and 1 share leaf 0: NIC to NIC, no uplink.
  EXPECT_EQ(LinkNames(c, 1, 2), (std::vector<std::string>{"n0/gpu1-nic1", "n0/nic1-fabric",
                                                          "n1/nic0-fabric", "n1/gpu0-nic0"}));
  // Node 0 to node 2 crosses both leaves' uplinks.
  EXPECT_EQ(LinkNames(c, 0, 4),
            (std::vector<std::string>{"n0/gpu0-nic0", "n0/nic0-fabric", "leaf0-spine",
                                      "leaf1-spine", "n2/nic0-fabric", "n2/gpu0-nic0"}));
  // A leaf's uplink carries its nodes' fabric bandwidth over the
  // oversubscription: 2 nodes x 2 NICs x 50 GB/s / 2.
  EXPECT_EQ(c.links[static_cast<size_t>(c.first_uplink)].bandwidth_bytes_per_s, 2 * 2 * kIb / 2);
  EXPECT_DOUBLE_EQ(c.RouteLatency(0, 4), 1e-6 + 2e-6 + 3e-6 + 3e-6 + 2e-6 + 1e-6);
  EXPECT_EQ(c.RouteBandwidth(0, 4), kIb);
}

TEST(Fabric, BadFabricsAreOneLine) {
  v1::Topology t;
  t.set_gpus_per_node(1);
  t.set_num_nodes(2);
  t.mutable_fabric()->set_levels(3);
  v1::GpuSpec gpu;
  gpu.set_capacity_bytes(1);
  auto error = [&] { return std::string(hardware::BuildCluster(t, gpu, FieldLocator()).status().message()); };
  EXPECT_TRUE(absl::EndsWith(error(),
                             "fabric.levels: must be 1 (one switch) or 2 (leaves and a spine)"))
      << error();
  t.mutable_fabric()->set_levels(2);
  EXPECT_TRUE(absl::EndsWith(error(), "fabric.nodes_per_leaf: must be positive with two levels"))
      << error();
  t.mutable_fabric()->set_nodes_per_leaf(1);
  t.mutable_fabric()->set_oversubscription(0.5);
  EXPECT_TRUE(absl::EndsWith(error(), "fabric.oversubscription: must be between 1 and 1000"))
      << error();
}

// Runs `body` on GPU 0 of `cluster`'s platform; returns the simulated time.
double Simulate(const hardware::Cluster& cluster,
                const std::function<void(const hardware::Platform&)>& body) {
  int argc = 1;
  char name[] = "fabric_test";
  char* argv[] = {name, nullptr};
  s4u::Engine engine(&argc, argv);
  const hardware::Platform platform = hardware::BuildPlatform(cluster, &engine);
  double elapsed = -1;
  s4u::Actor::create("test", platform.gpus[0], [&] {
    body(platform);
    elapsed = s4u::Engine::get_clock();
  });
  engine.run();
  return elapsed;
}

TEST(Fabric, ATransferAcrossLeavesCrossesTheUplinksInClosedForm) {
  const hardware::Cluster c = Cluster(4, 2, 4);  // uplinks of 2 x 2 x 50 / 4 = 50 GB/s
  const double bytes = 1e9;
  const double t = Simulate(c, [&](const hardware::Platform& p) {
    s4u::Comm::sendto(p.gpus[0], p.gpus[4], static_cast<uint64_t>(bytes));
  });
  EXPECT_NEAR(t, c.RouteLatency(0, 4) + bytes / kIb, 1e-12);
}

TEST(Fabric, TwoTransfersAcrossLeavesShareAnOversubscribedUplink) {
  // Both GPUs of node 0 send to node 2: each NIC carries one flow (50 GB/s),
  // but leaf 0's uplink (50 GB/s at 4:1) carries both, so each gets half.
  const hardware::Cluster c = Cluster(4, 2, 4);
  const double bytes = 1e9;
  const double t = Simulate(c, [&](const hardware::Platform& p) {
    std::vector<s4u::CommPtr> comms = {
        s4u::Comm::sendto_async(p.gpus[0], p.gpus[4], static_cast<uint64_t>(bytes)),
        s4u::Comm::sendto_async(p.gpus[1], p.gpus[5], static_cast<uint64_t>(bytes))};
    s4u::Comm::wait_all(comms);
  });
  EXPECT_NEAR(t, c.RouteLatency(0, 4) + 2 * bytes / kIb, 1e-12);
}

TEST(Fabric, TransfersInsideOneLeafDoNotTouchTheUplink) {
  const hardware::Cluster c = Cluster(4, 2, 4);
  const double bytes = 1e9;
  const double t = Simulate(c, [&](const hardware::Platform& p) {
    std::vector<s4u::CommPtr> comms = {
        s4u::Comm::sendto_async(p.gpus[0], p.gpus[2], static_cast<uint64_t>(bytes)),
        s4u::Comm::sendto_async(p.gpus[1], p.gpus[3], static_cast<uint64_t>(bytes))};
    s4u::Comm::wait_all(comms);
  });
  EXPECT_NEAR(t, c.RouteLatency(0, 2) + bytes / kIb, 1e-12);
}

TEST(Fabric, OnlyNodesWithADistinctLayoutOfGroupsAreSimulated) {
  const hardware::Cluster c = Cluster(4, 2, 1);
  // One group per node (all alike), plus a group spanning nodes 2 and 3.
  const std::vector<std::vector<int>> kept = engine::GroupsToSimulate(
      c, {{0, 1}, {2, 3}, {4, 5}, {6, 7}, {5, 6}});
  EXPECT_EQ(kept, (std::vector<std::vector<int>>{{0, 1}, {5, 6}}));
  // Node 1's group sits at other local GPUs than node 0's: both kept.
  EXPECT_EQ(engine::GroupsToSimulate(c, {{0}, {3}}),
            (std::vector<std::vector<int>>{{0}, {3}}));
}

TEST(Fabric, AThousandNodeClusterLoadsAsOneNode) {
  absl::StatusOr<hardware::Cluster> c =
      scenario::LoadAndCheckTopology("topologies/h100_1024node_fattree.textproto");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->num_gpus(), 8192);
  EXPECT_EQ(c->links.size(), 24u * 1024 + 1024 / 32);
  EXPECT_EQ(c->node_routes.size(), 8u);
  // GPU 5 of node 0 to GPU 5 of node 1000 (leaf 31): its NIC, both uplinks.
  const std::vector<hardware::Hop> route = c->Route(5, 1000 * 8 + 5);
  ASSERT_EQ(route.size(), 6u);
  EXPECT_EQ(c->links[static_cast<size_t>(route[2].link)].name, "leaf0-spine");
  EXPECT_EQ(c->links[static_cast<size_t>(route[3].link)].name, "leaf31-spine");
  EXPECT_FALSE(route[3].forward);
}

}  // namespace
}  // namespace shardsim

namespace shardsim {
namespace {

hardware::Cluster RawCluster(const std::string& path) {
  absl::StatusOr<hardware::Cluster> cluster = scenario::LoadAndCheckTopology(path);
  EXPECT_TRUE(cluster.ok()) << cluster.status();
  cluster->collectives.Clear();  // no launch, step latency or efficiency
  return *cluster;
}

double AllToAll(const hardware::Cluster& cluster, int64_t bytes) {
  return Simulate(cluster, [&](const hardware::Platform& p) {
    engine::RunCollective(engine::Fabric{&p, &cluster}, {{0, 1, 2, 3, 4, 5, 6, 7}},
                          engine::CollectiveKind::kAllToAll, bytes);
  });
}

TEST(AllToAll, OnNvSwitchItIsOnePhaseInClosedForm) {
  // Every GPU sends B/8 to each of 7 peers at once: its NVLink carries 7/8
  // of B out (and 7/8 in): all-to-alls always run direct.
  const hardware::Cluster c = RawCluster("topologies/dgx_h100.textproto");
  const int64_t bytes = 64 << 20;
  EXPECT_NEAR(AllToAll(c, bytes), c.RouteLatency(0, 1) + 7.0 / 8 * bytes / 450e9, 1e-12);
}

TEST(AllToAll, OnAPcieBoxTheSharedUplinksSlowIt) {
  // The same exchange over PCIe: were each GPU's own link the limit it would
  // take 7/8 B / link bandwidth; the switch uplinks and the socket link are
  // shared by the GPUs behind them, so it takes longer.
  const hardware::Cluster c = RawCluster("topologies/pcie_l40s_8x.textproto");
  const int64_t bytes = 64 << 20;
  const double own_links = c.RouteLatency(0, 7) + 7.0 / 8 * bytes / c.RouteBandwidth(0, 1);
  EXPECT_GT(AllToAll(c, bytes), 1.5 * own_links);
}

}  // namespace
}  // namespace shardsim
