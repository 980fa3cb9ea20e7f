// The named runtimes' time terms (sim/scenario/runtime_profile.h): the step
// time in closed form under each term, the CUDA-graph padding, the custom
// all-reduce's switch points (sim/cost/collective_model.h) and its closed
// form on an idle NVSwitch node, and the runtime as a user names it.
#include "sim/scenario/runtime_profile.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "sim/cost/collective_model.h"
#include "sim/scenario/scenario.h"
#include "tests/run_shardsim.h"

namespace shardsim {
namespace {

using cost::CollectiveAlgorithm;
using scenario::RuntimeProfile;

constexpr int64_t kKiB = 1024;
constexpr int64_t kMiB = 1024 * 1024;

RuntimeProfile Named(v1::RuntimeName name) {
  v1::Runtime runtime;
  runtime.set_name(name);
  return scenario::ResolveRuntimeProfile(runtime);
}

TEST(RuntimeProfile, UnsetIsGenericAndAddsNothing) {
  const RuntimeProfile generic = scenario::ResolveRuntimeProfile(v1::Runtime());
  EXPECT_EQ(generic.name, v1::GENERIC);
  EXPECT_EQ(scenario::ResolvedRuntimeName(v1::Runtime()), v1::GENERIC);
  EXPECT_FALSE(generic.custom_all_reduce);
  EXPECT_FALSE(generic.vllm_attention);
  // Every step is its GPU time, to the bit, whatever its kind.
  for (bool decode : {false, true}) {
    for (bool first : {false, true}) {
      EXPECT_EQ(generic.StepTime(0.0123456789, 5000, decode, 7, first), 0.0123456789);
    }
  }
}

TEST(RuntimeProfile, VllmDecodeReplaysAGraphPaddedToTheCapturedSizes) {
  const RuntimeProfile vllm = Named(v1::VLLM);
  // [1, 2, 4] + range(8, 256, 8) + range(256, 513, 16).
  EXPECT_EQ(vllm.GraphBatch(1), 1);
  EXPECT_EQ(vllm.GraphBatch(3), 4);
  EXPECT_EQ(vllm.GraphBatch(5), 8);
  EXPECT_EQ(vllm.GraphBatch(9), 16);
  EXPECT_EQ(vllm.GraphBatch(64), 64);
  EXPECT_EQ(vllm.GraphBatch(100), 104);
  EXPECT_EQ(vllm.GraphBatch(255), 256);
  EXPECT_EQ(vllm.GraphBatch(300), 304);
  EXPECT_EQ(vllm.GraphBatch(512), 512);
  EXPECT_TRUE(vllm.UsesGraph(512));
  EXPECT_FALSE(vllm.UsesGraph(513));
  EXPECT_EQ(vllm.GraphBatch(513), 513);  // eager, at its own size
  // A later stage's decode step: the GPU time plus one graph launch.
  EXPECT_DOUBLE_EQ(vllm.StepTime(0.010, 1000, true, 64, false), 0.010 + 15.5e-6);
  // The first stage's CPU step (4 ms) hides behind it...
  EXPECT_DOUBLE_EQ(vllm.StepTime(0.010, 1000, true, 64, true), 0.010 + 15.5e-6);
  // ...but not behind a shorter step, which then takes the CPU's 4 ms.
  EXPECT_DOUBLE_EQ(vllm.StepTime(0.001, 1000, true, 64, true), 0.004);
}

TEST(RuntimeProfile, AnEagerStepIsBoundByTheHostsLaunches) {
  const RuntimeProfile vllm = Named(v1::VLLM);
  // 1,000 kernels at 9.1 us: 9.1 ms of launches against 5 ms of GPU work.
  EXPECT_DOUBLE_EQ(vllm.StepTime(0.005, 1000, false, 64, false), 1000 * 9.1e-6);
  EXPECT_DOUBLE_EQ(vllm.StepTime(0.020, 1000, false, 64, false), 0.020);
  // A decode batch over the largest graph runs eagerly too.
  EXPECT_DOUBLE_EQ(vllm.StepTime(0.005, 1000, true, 600, false), 1000 * 9.1e-6);
  // TensorRT-LLM: C++ launches (3.3 us), no graphs, no CPU step.
  const RuntimeProfile trt = Named(v1::TRTLLM);
  EXPECT_DOUBLE_EQ(trt.StepTime(0.001, 1000, true, 8, true), 1000 * 3.3e-6);
  EXPECT_FALSE(trt.custom_all_reduce);
}

TEST(RuntimeProfile, ScenarioFieldsReplaceTheCatalogsTerms) {
  v1::Runtime runtime;
  runtime.set_name(v1::VLLM);
  runtime.set_cpu_step_s(0.002);
  runtime.set_cpu_overlaps_gpu(false);
  runtime.set_max_graph_batch(100);
  runtime.set_custom_all_reduce(false);
  const RuntimeProfile p = scenario::ResolveRuntimeProfile(runtime);
  EXPECT_FALSE(p.custom_all_reduce);
  EXPECT_EQ(p.GraphBatch(97), 100);  // 104 is no longer captured; 100 is
  EXPECT_FALSE(p.UsesGraph(101));
  // Not overlapped: the CPU's step adds to the GPU's.
  EXPECT_DOUBLE_EQ(p.StepTime(0.010, 10, true, 8, true), 0.010 + 15.5e-6 + 0.002);
  EXPECT_EQ(p.Describe().rfind("VLLM: CPU 2 ms a step (added to the GPU)", 0), 0u)
      << p.Describe();
}

TEST(CustomAllReduce, SwitchPointsAsVllmRunsThem) {
  // Eight GPUs on NVLink: one-shot below 256 KiB, two-shot to 8 MiB, NCCL
  // from 8 MiB.
  EXPECT_EQ(cost::CustomAllReduceChoice(8, 256 * kKiB - 16, true, true),
            CollectiveAlgorithm::kOneShot);
  EXPECT_EQ(cost::CustomAllReduceChoice(8, 256 * kKiB, true, true),
            CollectiveAlgorithm::kTwoShot);
  EXPECT_EQ(cost::CustomAllReduceChoice(8, 8 * kMiB - 16, true, true),
            CollectiveAlgorithm::kTwoShot);
  EXPECT_EQ(cost::CustomAllReduceChoice(8, 8 * kMiB, true, true), CollectiveAlgorithm::kRing);
  // Four and six GPUs: one-shot below 512 KiB, 256 KiB.
  EXPECT_EQ(cost::CustomAllReduceChoice(4, 512 * kKiB - 16, true, true),
            CollectiveAlgorithm::kOneShot);
  EXPECT_EQ(cost::CustomAllReduceChoice(4, 512 * kKiB, true, true),
            CollectiveAlgorithm::kTwoShot);
  EXPECT_EQ(cost::CustomAllReduceChoice(6, 256 * kKiB, true, true),
            CollectiveAlgorithm::kTwoShot);
  // Two GPUs: always one-shot, NVLink or PCIe.
  EXPECT_EQ(cost::CustomAllReduceChoice(2, 8 * kMiB - 16, true, false),
            CollectiveAlgorithm::kOneShot);
  // Not taken: more than two GPUs without NVLink everywhere, an unsupported
  // world size, sizes not a multiple of 16 bytes, across nodes.
  EXPECT_EQ(cost::CustomAllReduceChoice(4, 64 * kKiB, true, false), CollectiveAlgorithm::kRing);
  EXPECT_EQ(cost::CustomAllReduceChoice(3, 64 * kKiB, true, true), CollectiveAlgorithm::kRing);
  EXPECT_EQ(cost::CustomAllReduceChoice(16, 64 * kKiB, true, true), CollectiveAlgorithm::kRing);
  EXPECT_EQ(cost::CustomAllReduceChoice(8, 64 * kKiB + 8, true, true),
            CollectiveAlgorithm::kRing);
  EXPECT_EQ(cost::CustomAllReduceChoice(8, 64 * kKiB, false, true), CollectiveAlgorithm::kRing);
}

hardware::Cluster LoadCluster(const std::string& path) {
  absl::StatusOr<hardware::Cluster> cluster = scenario::LoadAndCheckTopology(path);
  EXPECT_TRUE(cluster.ok()) << cluster.status();
  return *cluster;
}

TEST(CustomAllReduce, PlannedOnlyWhereTheRuntimeHasItAndTheWiringAllows) {
  const std::vector<int> eight{0, 1, 2, 3, 4, 5, 6, 7};
  const hardware::Cluster h100 = LoadCluster("topologies/dgx_h100.textproto");
  const auto plan = [](const hardware::Cluster& c, const std::vector<int>& g, int64_t bytes,
                       bool custom) {
    return cost::PlanCollective(c, g, parallel::CommKind::kAllReduce, bytes, custom).Name();
  };
  EXPECT_EQ(plan(h100, eight, 128 * kKiB, true), "custom one-shot");
  EXPECT_EQ(plan(h100, eight, 1 * kMiB, true), "custom two-shot");
  EXPECT_NE(plan(h100, eight, 16 * kMiB, true).rfind("custom", 0), 0u);
  EXPECT_EQ(plan(h100, eight, 128 * kKiB, false),
            cost::PlanCollective(h100, eight, parallel::CommKind::kAllReduce, 128 * kKiB).Name());
  // An all-gather never takes it.
  EXPECT_NE(cost::PlanCollective(h100, eight, parallel::CommKind::kAllGather, 128 * kKiB, true)
                .Name()
                .rfind("custom", 0),
            0u);
  // Eight L40S on PCIe: NCCL; two of them: one-shot over PCIe P2P.
  const hardware::Cluster l40s = LoadCluster("topologies/pcie_l40s_8x.textproto");
  EXPECT_NE(plan(l40s, eight, 128 * kKiB, true).rfind("custom", 0), 0u);
  EXPECT_EQ(plan(l40s, {0, 1}, 128 * kKiB, true), "custom one-shot");
}

// On an idle DGX H100 (each GPU one 450 GB/s link each way into the
// NVSwitch, a route 2 links and 1 us), with a tuning of known terms: the
// one-shot's seven flows into each GPU share its down-link; the two-shot's
// phases move an eighth of the buffer from each peer.
TEST(CustomAllReduce, ClosedFormOnAnIdleNvSwitchNode) {
  hardware::Cluster h100 = LoadCluster("topologies/dgx_h100.textproto");
  v1::CollectiveTuning tuning;
  tuning.set_launch_s(20e-6);  // NCCL's: the custom kernels do not pay it
  v1::LinkKindEfficiency* nvlink = tuning.add_link_kinds();
  nvlink->set_kind("nvlink");
  nvlink->set_bandwidth_efficiency(0.8);
  v1::ProtocolTuning* one = tuning.add_protocols();
  one->set_protocol("ONESHOT");
  one->set_step_latency_s(3e-6);
  one->set_bandwidth_factor(0.5);
  v1::ProtocolTuning* two = tuning.add_protocols();
  two->set_protocol("TWOSHOT");
  two->set_step_latency_s(4e-6);
  two->set_bandwidth_factor(0.625);
  const std::vector<int> eight{0, 1, 2, 3, 4, 5, 6, 7};
  const double bw = 450e9;
  const int64_t small = 128 * kKiB;  // one-shot
  EXPECT_NEAR(cost::CollectiveTimeAlone(h100, tuning, eight, parallel::CommKind::kAllReduce,
                                        small, true),
              3e-6 + 1e-6 + 7 * (small / (0.8 * 0.5)) / bw, 1e-12);
  const int64_t large = 4 * kMiB;  // two-shot
  EXPECT_NEAR(cost::CollectiveTimeAlone(h100, tuning, eight, parallel::CommKind::kAllReduce,
                                        large, true),
              2 * (4e-6 + 1e-6 + 7 * ((large / 8) / (0.8 * 0.625)) / bw), 1e-12);
}

TEST(Runtime, AnUnknownRuntimeNameIsOneLineWithItsPlace) {
  const std::string dir = ::testing::TempDir() + "runtime_test_" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/bad_runtime.textproto";
  std::ofstream(path) << "model_file: \"" << std::filesystem::current_path().string()
                      << "/models/llama3_8b.json\"\nruntime { name: VLLLM }\n";
  const testing::Result r = testing::RunShardsim(absl::StrCat("run ", path));
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  EXPECT_NE(r.out.find(path + ":2:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("VLLLM"), std::string::npos) << r.out;
  std::filesystem::remove_all(dir);
  // A term out of range, in a serving scenario too.
  const testing::Result negative = testing::RunShardsim(
      "serve scenarios/serve_llama3_8b_h100_20rps.textproto --set runtime.cpu_step_s=-1");
  EXPECT_EQ(negative.exit_code, 1) << negative.out;
  EXPECT_EQ(std::count(negative.out.begin(), negative.out.end(), '\n'), 1) << negative.out;
  EXPECT_NE(negative.out.find("runtime.cpu_step_s: must be between 0 and 3600 seconds"),
            std::string::npos)
      << negative.out;
}

TEST(Runtime, ReportsSayWhichRuntimeRanAndVllmMovesTheNumbers) {
  const testing::Result generic = testing::RunShardsim(
      "run scenarios/default.textproto --set workload.output_len=16");
  ASSERT_EQ(generic.exit_code, 0) << generic.out;
  EXPECT_NE(generic.out.find("GENERIC: no CPU step time"), std::string::npos) << generic.out;
  const testing::Result vllm = testing::RunShardsim(
      "run scenarios/default.textproto --set workload.output_len=16 --set runtime.name=VLLM");
  ASSERT_EQ(vllm.exit_code, 0) << vllm.out;
  EXPECT_NE(vllm.out.find("VLLM: CPU 4 ms a step (overlapped with the GPU), CUDA graphs on "
                          "decode up to 512 sequences"),
            std::string::npos)
      << vllm.out;
  EXPECT_NE(vllm.out, generic.out);
  const testing::Result ops = testing::RunShardsim(
      "ops scenarios/default.textproto --set runtime.name=VLLM --tokens=8 --context=1024");
  ASSERT_EQ(ops.exit_code, 0) << ops.out;
  EXPECT_NE(ops.out.find("custom one-shot"), std::string::npos) << ops.out;
}

}  // namespace
}  // namespace shardsim
