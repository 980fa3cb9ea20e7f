// Closed-form checks of the simulated network (SimGrid CM02, cross-traffic
// off): each test builds its own platform, in its own process.
#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "simgrid/s4u.hpp"
#include "sim/base/config_file.h"
#include "sim/cost/calibration.h"
#include "sim/cost/collective_model.h"
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
// form; it must be what the simulator does, tuning included, at every
// algorithm and protocol NCCL's choice runs: sizes from 1 KiB to 64 MiB, one
// simulation (each collective after the last), each compared on its own.
void ExpectSimulationMatchesClosedForm(const std::string& topology, int gpus,
                                       const std::string& collective,
                                       std::set<std::string> expected_plans = {}) {
  const hardware::Cluster cluster = LoadCluster(topology);
  ASSERT_GT(cluster.collectives.launch_s(), 0) << "no calibrated tuning loaded";
  std::vector<int64_t> sizes;
  for (int64_t bytes = 1024; bytes <= 64 * 1024 * 1024; bytes *= 4) sizes.push_back(bytes);
  std::vector<double> simulated;
  std::set<std::string> plans;
  Simulate(cluster, [&](const hardware::Platform& p) {
    for (int64_t bytes : sizes) {
      const double start = s4u::Engine::get_clock();
      if (collective == "send_recv") {
        s4u::this_actor::sleep_for(cluster.collectives.p2p_launch_s());
        s4u::Comm::sendto(p.gpus[0], p.gpus[1],
                          engine::SimulatedBytes(static_cast<double>(bytes),
                                                 cluster.collectives.p2p_bandwidth_efficiency()));
      } else {
        std::vector<int> group;
        for (int g = 0; g < gpus; ++g) group.push_back(g);
        const parallel::CommKind kind = collective == "all_gather"
                                            ? parallel::CommKind::kAllGather
                                            : parallel::CommKind::kAllReduce;
        plans.insert(
            engine::RunCollective(engine::Fabric{&p, &cluster}, {group}, kind, bytes).plan.Name());
      }
      simulated.push_back(s4u::Engine::get_clock() - start);
    }
  });
  ASSERT_EQ(simulated.size(), sizes.size());
  for (size_t i = 0; i < sizes.size(); ++i) {
    const cost::CollectiveSample sample{"test", collective, gpus, sizes[i], 0};
    EXPECT_NEAR(simulated[i], cost::PredictCollective(sample, cluster, cluster.collectives),
                1e-9)
        << sizes[i] << " bytes";
  }
  for (const std::string& plan : expected_plans) EXPECT_TRUE(plans.count(plan)) << plan;
}

TEST(Network, TunedCollectivesOnDgxA100MatchTheFidelityClosedForm) {
  ExpectSimulationMatchesClosedForm("topologies/dgx_a100.textproto", 8, "all_reduce",
                                    {"ring/LL", "ring/Simple"});
}

TEST(Network, TunedCollectivesOnPcieNvlinkPairsMatchTheFidelityClosedForm) {
  ExpectSimulationMatchesClosedForm("topologies/pcie_a100_4x_nvlink_pairs.textproto", 4,
                                    "all_reduce");
}

TEST(Network, TunedCollectivesOnDgxH100MatchTheFidelityClosedForm) {
  // Hopper's NVSwitch reduces in the switch for large all-reduces.
  ExpectSimulationMatchesClosedForm("topologies/dgx_h100.textproto", 8, "all_reduce",
                                    {"ring/LL", "nvls/Simple"});
}

TEST(Network, TunedAllGatherOnDgxB200MatchesTheFidelityClosedForm) {
  ExpectSimulationMatchesClosedForm("topologies/dgx_b200.textproto", 8, "all_gather");
}

TEST(Network, TunedCollectivesOnL40sPcieMatchTheFidelityClosedForm) {
  ExpectSimulationMatchesClosedForm("topologies/pcie_l40s_8x.textproto", 4, "all_reduce");
}

TEST(Network, TunedSendRecvMatchesTheFidelityClosedForm) {
  ExpectSimulationMatchesClosedForm("topologies/pcie_a100_4x_nvlink_pairs.textproto", 2,
                                    "send_recv");
}

// The runtimes' custom all-reduce (one-shot below 256 KiB on eight GPUs,
// two-shot to 8 MiB) as the engine simulates it, with the shipped tuning's
// fitted ONESHOT / TWOSHOT entries, against fidelity's closed form.
TEST(Network, CustomAllReduceOnDgxH100MatchesTheFidelityClosedForm) {
  const hardware::Cluster cluster = LoadCluster("topologies/dgx_h100.textproto");
  std::vector<int64_t> sizes;
  for (int64_t bytes = 1024; bytes < 8 * 1024 * 1024; bytes *= 4) sizes.push_back(bytes);
  std::vector<double> simulated;
  std::set<std::string> plans;
  Simulate(cluster, [&](const hardware::Platform& p) {
    for (int64_t bytes : sizes) {
      const double start = s4u::Engine::get_clock();
      plans.insert(engine::RunCollective(engine::Fabric{&p, &cluster, true},
                                         {{0, 1, 2, 3, 4, 5, 6, 7}},
                                         parallel::CommKind::kAllReduce, bytes)
                       .plan.Name());
      simulated.push_back(s4u::Engine::get_clock() - start);
    }
  });
  ASSERT_EQ(simulated.size(), sizes.size());
  for (size_t i = 0; i < sizes.size(); ++i) {
    const cost::CollectiveSample sample{"test", "custom_all_reduce", 8, sizes[i], 0};
    EXPECT_NEAR(simulated[i], cost::PredictCollective(sample, cluster, cluster.collectives),
                1e-9)
        << sizes[i] << " bytes";
  }
  EXPECT_EQ(plans, (std::set<std::string>{"custom one-shot", "custom two-shot"}));
}

// Each algorithm's phases in closed form on the raw links of a DGX H100
// (no launch, step latency or efficiency): one route is 2 links, 1 us.
double RawOnDgxH100(const cost::CollectivePlan& plan, parallel::CommKind kind, int64_t bytes) {
  hardware::Cluster raw = LoadCluster("topologies/dgx_h100.textproto");
  raw.collectives.Clear();
  return Simulate(raw, [&](const hardware::Platform& p) {
    engine::RunCollectiveAs(engine::Fabric{&p, &raw}, {{0, 1, 2, 3, 4, 5, 6, 7}}, kind, bytes,
                            plan);
  });
}

constexpr int64_t kBytes = 64 * 1024 * 1024;

TEST(Network, TreeAllReduceIsAReduceUpAndABroadcastDown) {
  // Two phases, each the whole buffer over every GPU's link at once.
  const double t = RawOnDgxH100({cost::CollectiveAlgorithm::kTree, cost::NcclProtocol::kSimple},
                                parallel::CommKind::kAllReduce, kBytes);
  EXPECT_NEAR(t, 2 * (1e-6 + kBytes / 450e9), 1e-12);
}

TEST(Network, NvlsAllReduceSendsTheBufferUpAndTheResultDownOnce) {
  // One phase: B up every GPU's link and B down, at once.
  const double t = RawOnDgxH100({cost::CollectiveAlgorithm::kNvls, cost::NcclProtocol::kSimple},
                                parallel::CommKind::kAllReduce, kBytes);
  EXPECT_NEAR(t, 1e-6 + kBytes / 450e9, 1e-12);
}

TEST(Network, NvlsAllGatherSendsAShareUpAndReceivesTheRest) {
  const double t = RawOnDgxH100({cost::CollectiveAlgorithm::kNvls, cost::NcclProtocol::kSimple},
                                parallel::CommKind::kAllGather, kBytes);
  EXPECT_NEAR(t, 1e-6 + (kBytes - kBytes / 8) / 450e9, 1e-12);
}

TEST(Network, TheProtocolSetsTheStepLatencyAndTheBandwidthFactor) {
  hardware::Cluster cluster = LoadCluster("topologies/dgx_h100.textproto");
  cluster.collectives.Clear();
  cluster.collectives.set_launch_s(5e-6);
  cluster.collectives.set_step_latency_s(1e-6);  // protocols without an entry
  cluster.collectives.set_bandwidth_efficiency(0.8);
  v1::ProtocolTuning* ll = cluster.collectives.add_protocols();
  ll->set_protocol("LL");
  ll->set_step_latency_s(2e-6);
  ll->set_bandwidth_factor(0.5);
  const int64_t bytes = 8 * 1024 * 1024;
  double ll_s = 0;
  double simple_s = 0;
  Simulate(cluster, [&](const hardware::Platform& p) {
    const engine::Fabric fabric{&p, &cluster};
    const std::vector<std::vector<int>> group{{0, 1, 2, 3, 4, 5, 6, 7}};
    double start = s4u::Engine::get_clock();
    engine::RunCollectiveAs(fabric, group, parallel::CommKind::kAllReduce, bytes,
                            {cost::CollectiveAlgorithm::kRing, cost::NcclProtocol::kLL});
    ll_s = s4u::Engine::get_clock() - start;
    start = s4u::Engine::get_clock();
    engine::RunRingCollective(fabric, group, parallel::CommKind::kAllReduce, bytes);
    simple_s = s4u::Engine::get_clock() - start;
  });
  // 14 steps of B/8, each at its protocol's step latency and efficiency.
  const double chunk = bytes / 8;
  EXPECT_NEAR(ll_s, 5e-6 + 14 * (2e-6 + 1e-6 + std::ceil(chunk / 0.4) / 450e9), 1e-12);
  EXPECT_NEAR(simple_s, 5e-6 + 14 * (1e-6 + 1e-6 + std::ceil(chunk / 0.8) / 450e9), 1e-12);
}

}  // namespace
}  // namespace shardsim
