// Sampling time: the runtime's sampler kernels as ops of the step
// (sim/scenario/runtime_profile.h, model::OpKind::kSampler). Their time in
// closed form, greedy against top-p, only the last pipeline stage sampling,
// the host's launches after a CUDA graph, and what the reports show.
#include <algorithm>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "sim/cost/roofline.h"
#include "sim/model/graph.h"
#include "sim/parallel/program.h"
#include "sim/scenario/runtime_profile.h"
#include "sim/scenario/scenario.h"
#include "tests/run_shardsim.h"

namespace shardsim {
namespace {

using scenario::RuntimeProfile;

scenario::LoadedScenario Load(const std::vector<std::string>& overrides) {
  absl::StatusOr<scenario::LoadedScenario> loaded =
      scenario::LoadScenario("scenarios/default.textproto", overrides);
  EXPECT_TRUE(loaded.ok()) << loaded.status();
  return *std::move(loaded);
}

std::vector<model::Op> SamplerOps(const model::ModelGraph& graph) {
  std::vector<model::Op> ops;
  for (const model::Op& op : graph.tail) {
    if (op.kind == model::OpKind::kSampler) ops.push_back(op);
  }
  return ops;
}

// The sampler's time for `rows` sampled rows of `loaded`'s model on its GPU.
double SamplerTime(const scenario::LoadedScenario& loaded, int64_t rows) {
  const model::ModelGraph graph = model::BuildGraph(loaded.model, model::FullModel(loaded.model));
  const cost::CostModel cost(loaded.cluster.gpu, loaded.model, loaded.cluster.profile);
  return cost.Time(SamplerOps(graph), model::DecodeStep(rows, 1024));
}

TEST(Sampling, ClosedFormTimeOfVllmTopPOnOneShape) {
  const scenario::LoadedScenario loaded =
      Load({"runtime.name=VLLM", "runtime.sampling=TOP_P"});
  const model::ModelGraph graph = model::BuildGraph(loaded.model, model::FullModel(loaded.model));
  const std::vector<model::Op> ops = SamplerOps(graph);
  ASSERT_EQ(ops.size(), 4u);
  EXPECT_EQ(ops[0].name, "sample_cast_fp32");
  EXPECT_EQ(ops[3].name, "sample_top_p_draw");
  // A GPU of round numbers: 2 TB/s; elementwise kernels at 0.8 of it and
  // 3 us a launch, row reductions at 0.5 and 2 us.
  v1::GpuSpec gpu = loaded.cluster.gpu;
  gpu.set_name("test-gpu");
  gpu.set_hbm_bandwidth_bytes_per_s(2e12);
  v1::EfficiencyProfile profile = cost::DefaultProfile("test-gpu");
  profile.mutable_activation()->set_memory_efficiency(0.8);
  profile.mutable_activation()->set_launch_s(3e-6);
  profile.mutable_norm()->set_memory_efficiency(0.5);
  profile.mutable_norm()->set_launch_s(2e-6);
  const cost::CostModel cost(gpu, loaded.model, profile);
  // 64 rows x Llama-3's 128256 logits, BF16 from the head:
  //   cast 2 + 4 B, temperature 4 + 4 (elementwise);
  //   softmax 4 + 4, the FlashInfer draw 2 x 4 (reductions).
  const double logits = 64.0 * 128256;
  const double expected[] = {logits * 6 / (2e12 * 0.8) + 3e-6, logits * 8 / (2e12 * 0.8) + 3e-6,
                             logits * 8 / (2e12 * 0.5) + 2e-6, logits * 8 / (2e12 * 0.5) + 2e-6};
  const model::StepShape shape = model::DecodeStep(64, 1024);
  double total = 0;
  for (size_t i = 0; i < ops.size(); ++i) {
    const cost::OpCost c = cost.Op(ops[i], shape);
    EXPECT_DOUBLE_EQ(c.time_s, expected[i]) << ops[i].name;
    EXPECT_EQ(c.bound, cost::Bound::kMemory) << ops[i].name;
    total += expected[i];
  }
  EXPECT_DOUBLE_EQ(cost.Time(ops, shape), total);
  // A step whose only sequence is a prefill chunk that does not end its
  // prompt samples no row: the kernels' launches alone.
  const model::StepShape chunk = model::ShapeOf({{512, 0, false}});
  EXPECT_DOUBLE_EQ(cost.Time(ops, chunk), 2 * 3e-6 + 2 * 2e-6);
}

TEST(Sampling, GreedyIsCheaperThanTopPAndFlashInferThanTheSort) {
  for (const char* runtime : {"GENERIC", "VLLM", "SGLANG", "TRTLLM"}) {
    const std::string name = std::string("runtime.name=") + runtime;
    const double greedy = SamplerTime(Load({name}), 64);
    const double top_p = SamplerTime(Load({name, "runtime.sampling=TOP_P"}), 64);
    EXPECT_GT(greedy, 0) << runtime;
    EXPECT_LT(greedy, top_p) << runtime;
    // Unset is GREEDY (vllm bench serve's default temperature 0).
    EXPECT_DOUBLE_EQ(SamplerTime(Load({name, "runtime.sampling=GREEDY"}), 64), greedy) << runtime;
  }
  // FlashInfer's rejection sampler reads the row a few times; the PyTorch
  // path sorts it.
  EXPECT_LT(SamplerTime(Load({"runtime.name=VLLM", "runtime.sampling=TOP_P"}), 64),
            SamplerTime(Load({"runtime.sampling=TOP_P"}), 64));
  // GENERIC's greedy is one argmax over the BF16 logits.
  const scenario::LoadedScenario generic = Load({});
  ASSERT_EQ(generic.model.sampler.size(), 1u);
  EXPECT_EQ(generic.model.sampler[0].name, "argmax");
  EXPECT_EQ(generic.model.sampler[0].bytes_per_logit, 2);
}

TEST(Sampling, OnlyTheLastPipelineStageSamplesAfterTheLogitsGather) {
  const scenario::LoadedScenario loaded = Load({"parallelism.tp=4", "parallelism.pp=2"});
  const model::ModelGraph graph = model::BuildGraph(loaded.model, loaded.plan.shard);
  const parallel::Program program = parallel::BuildProgram(graph, loaded.plan);
  ASSERT_EQ(program.pp, 2);
  for (int stage = 0; stage < 2; ++stage) {
    int samplers = 0;
    bool gathered = false;
    for (const parallel::Block& block : program.Stage(0, stage).blocks) {
      for (const parallel::Instruction& i : block.instructions) {
        if (i.type == parallel::Instruction::Type::kCollective &&
            i.comm.name == "all_gather (logits)") {
          gathered = true;
        }
        if (i.type == parallel::Instruction::Type::kCompute &&
            i.op.kind == model::OpKind::kSampler) {
          ++samplers;
          EXPECT_TRUE(gathered) << "the sampler runs before the logits are gathered";
          // Each rank samples whole rows, not its vocabulary slice.
          EXPECT_EQ(i.op.out_features, loaded.model.vocab_size);
        }
      }
    }
    EXPECT_EQ(samplers, stage == 1 ? 1 : 0) << "stage " << stage;
  }
}

TEST(Sampling, KernelsAfterTheGraphBindOnlyAShortStep) {
  v1::Runtime runtime;
  runtime.set_name(v1::VLLM);
  const RuntimeProfile vllm = scenario::ResolveRuntimeProfile(runtime);
  EXPECT_FALSE(vllm.sampler_in_graph);
  // Four sampler kernels at 9.1 us a launch after a 15.5 us graph launch.
  EXPECT_DOUBLE_EQ(vllm.StepTime(10e-6, 100, true, 8, false, 4), 15.5e-6 + 4 * 9.1e-6);
  EXPECT_DOUBLE_EQ(vllm.StepTime(0.010, 100, true, 8, false, 4), 15.5e-6 + 0.010);
  // Eager steps already count them among their kernels.
  EXPECT_DOUBLE_EQ(vllm.StepTime(10e-6, 100, false, 8, false, 4), 100 * 9.1e-6);
  // GENERIC adds nothing, sampler or not.
  const RuntimeProfile generic = scenario::ResolveRuntimeProfile(v1::Runtime());
  EXPECT_EQ(generic.StepTime(0.0123456789, 100, true, 8, true, 4), 0.0123456789);
}

TEST(Sampling, OpsListingAndReportsShowTheSampler) {
  const testing::Result ops = testing::RunShardsim("ops scenarios/default.textproto");
  ASSERT_EQ(ops.exit_code, 0) << ops.out;
  EXPECT_NE(ops.out.find("sample_argmax"), std::string::npos) << ops.out;
  const testing::Result top_p = testing::RunShardsim(
      "ops scenarios/default.textproto --set runtime.name=VLLM --set runtime.sampling=TOP_P");
  ASSERT_EQ(top_p.exit_code, 0) << top_p.out;
  for (const char* op : {"sample_cast_fp32", "sample_temperature", "sample_softmax",
                         "sample_top_p_draw"}) {
    EXPECT_NE(top_p.out.find(op), std::string::npos) << op << "\n" << top_p.out;
  }
  const testing::Result json = testing::RunShardsim(
      "run scenarios/default.textproto --set workload.output_len=4 --set runtime.name=SGLANG "
      "--format=json");
  ASSERT_EQ(json.exit_code, 0) << json.out;
  EXPECT_NE(json.out.find("sampling GREEDY (cast_fp32 + argmax: 2 kernels, 10 B a BF16 logit, "
                          "after the CUDA graph)"),
            std::string::npos)
      << json.out;
  const testing::Result bad =
      testing::RunShardsim("run scenarios/default.textproto --set runtime.sampling=TOP_Q");
  EXPECT_EQ(bad.exit_code, 1) << bad.out;
  EXPECT_NE(bad.out.find("runtime.sampling"), std::string::npos) << bad.out;
  EXPECT_EQ(std::count(bad.out.begin(), bad.out.end(), '\n'), 1) << bad.out;
}

}  // namespace
}  // namespace shardsim
