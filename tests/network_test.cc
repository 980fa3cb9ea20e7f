// Closed-form checks of the simulated network (SimGrid CM02, cross-traffic
// off): each test builds its own platform, in its own process.
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "simgrid/s4u.hpp"
#include "sim/base/config_file.h"
#include "sim/cost/calibration.h"
#include "sim/engine/collectives.h"
#include "sim/hardware/platform_builder.h"
#include "sim/scenario/scenario.h"

namespace shardsim {
namespace {

namespace s4u = simgrid::s4u;

hardware::Cluster LoadCluster(const std::string& path) {
  absl::StatusOr<hardware::Cluster> cluster = scenario::LoadAndCheckTopology(path);
  EXPECT_TRUE(cluster.ok()) << cluster.status();
  return *cluster;
}

// Runs `body` in an actor on GPU 0 of `cluster` and returns the simulated
// time it took.
double Simulate(const hardware::Cluster& cluster,
                const std::function<void(const hardware::Platform&)>& body) {
  int argc = 1;
  char name[] = "network_test";
  char* argv[] = {name, nullptr};
  s4u::Engine engine(&argc, argv);
  hardware::Platform platform = hardware::BuildPlatform(cluster, &engine);
  double elapsed = -1;
  s4u::Actor::create("test", platform.gpus[0], [&] {
    const double start = s4u::Engine::get_clock();
    body(platform);
    elapsed = s4u::Engine::get_clock() - start;
  });
  engine.run();
  return elapsed;
}

TEST(Network, OneTransferOverOneLink) {
  v1::Topology topology;
  topology.set_name("pair");
  topology.set_gpus_per_node(2);
  v1::Link* link = topology.add_links();
  link->set_a("gpu0");
  link->set_b("gpu1");
  link->set_bandwidth_bytes_per_s(1e9);
  link->set_latency_s(1e-5);
  v1::GpuSpec gpu;
  gpu.set_capacity_bytes(1);
  absl::StatusOr<hardware::Cluster> cluster =
      hardware::BuildCluster(topology, gpu, FieldLocator());
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  const double t = Simulate(*cluster, [](const hardware::Platform& p) {
    s4u::Comm::sendto(p.gpus[0], p.gpus[1], 1'000'000);
  });
  // latency + bytes / bandwidth.
  EXPECT_DOUBLE_EQ(t, 1e-5 + 1e6 / 1e9);
}

TEST(Network, RingAllReduceOnNvSwitch) {
  const hardware::Cluster cluster = LoadCluster("topologies/dgx_h100.textproto");
  const int64_t bytes = 64 * 1024 * 1024;
  const double bandwidth = cluster.RouteBandwidth(0, 1);
  const double latency = cluster.RouteLatency(0, 1);
  EXPECT_EQ(bandwidth, 450e9);
  EXPECT_DOUBLE_EQ(latency, 1e-6);  // GPU -> NVSwitch -> GPU
  hardware::Cluster raw = cluster;  // no launch, step or efficiency
  raw.collectives.Clear();
  const double t = Simulate(raw, [&](const hardware::Platform& p) {
    engine::RunRingCollective(engine::Fabric{&p, &raw}, {{0, 1, 2, 3, 4, 5, 6, 7}},
                              engine::CollectiveKind::kAllReduce, bytes);
  });
  const double n = 8;
  EXPECT_NEAR(t, 2 * (n - 1) / n * bytes / bandwidth + 2 * (n - 1) * latency, 1e-12);
}

TEST(Network, TwoFlowsShareAPcieUplink) {
  // gpu0 and gpu1 sit under pcie_sw0, whose one uplink leads to cpu0; gpu4
  // and gpu5 are under the other socket. Both flows cross that uplink.
  const hardware::Cluster cluster = LoadCluster("topologies/pcie_l40s_8x.textproto");
  const double uplink = 32e9;
  const int64_t bytes = 256 * 1024 * 1024;
  const double latency = cluster.RouteLatency(0, 4);
  ASSERT_EQ(cluster.RouteBandwidth(0, 4), uplink);
  const double alone = Simulate(cluster, [&](const hardware::Platform& p) {
    s4u::Comm::sendto(p.gpus[0], p.gpus[4], static_cast<uint64_t>(bytes));
  });
  EXPECT_NEAR(alone, latency + bytes / uplink, 1e-12);
}

// The same transfer with a second one beside it. A separate test because
// SimGrid runs one simulation per process (each test is its own process).
TEST(Network, TwoFlowsShareAPcieUplinkConcurrently) {
  const hardware::Cluster cluster = LoadCluster("topologies/pcie_l40s_8x.textproto");
  const double uplink = 32e9;
  const int64_t bytes = 256 * 1024 * 1024;
  const double latency = cluster.RouteLatency(0, 4);
  ASSERT_DOUBLE_EQ(cluster.RouteLatency(1, 5), latency);
  const double both = Simulate(cluster, [&](const hardware::Platform& p) {
    s4u::Comm::wait_all({s4u::Comm::sendto_async(p.gpus[0], p.gpus[4], bytes),
                         s4u::Comm::sendto_async(p.gpus[1], p.gpus[5], bytes)});
  });
  // Each flow gets half of the shared uplink.
  EXPECT_NEAR(both, latency + bytes / (uplink / 2), 1e-12);
}

// The fidelity suite judges collectives with cost::PredictCollective's closed
// form; it must be what the simulator does, tuning included.
void ExpectSimulationMatchesClosedForm(const std::string& topology, int gpus,
                                       const std::string& collective) {
  const hardware::Cluster cluster = LoadCluster(topology);
  ASSERT_GT(cluster.collectives.launch_s(), 0) << "no calibrated tuning loaded";
  const int64_t bytes = 24 * 1024 * 1024;
  const cost::CollectiveSample sample{"test", collective, gpus, bytes, 0};
  const double t = Simulate(cluster, [&](const hardware::Platform& p) {
    if (collective == "send_recv") {
      s4u::this_actor::sleep_for(cluster.collectives.p2p_launch_s());
      s4u::Comm::sendto(p.gpus[0], p.gpus[1],
                        engine::SimulatedBytes(static_cast<double>(bytes),
                                               cluster.collectives.p2p_bandwidth_efficiency()));
      return;
    }
    std::vector<int> group;
    for (int g = 0; g < gpus; ++g) group.push_back(g);
    engine::RunRingCollective(engine::Fabric{&p, &cluster}, {group},
                              engine::CollectiveKind::kAllReduce, bytes);
  });
  EXPECT_NEAR(t, cost::PredictCollective(sample, cluster, cluster.collectives), 1e-9);
}

TEST(Network, TunedRingOnDgxA100MatchesTheFidelityClosedForm) {
  ExpectSimulationMatchesClosedForm("topologies/dgx_a100.textproto", 8, "all_reduce");
}

TEST(Network, TunedRingOnPcieNvlinkPairsMatchesTheFidelityClosedForm) {
  ExpectSimulationMatchesClosedForm("topologies/pcie_a100_4x_nvlink_pairs.textproto", 4,
                                    "all_reduce");
}

TEST(Network, TunedSendRecvMatchesTheFidelityClosedForm) {
  ExpectSimulationMatchesClosedForm("topologies/pcie_a100_4x_nvlink_pairs.textproto", 2,
                                    "send_recv");
}

}  // namespace
}  // namespace shardsim
