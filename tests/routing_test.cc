// Mixture-of-experts routing skew (issue 10 item 5): the expert shares in
// closed form, and the busiest EP rank setting the expert GEMMs' rows and
// the all-to-all's bytes.
#include <cmath>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "sim/model/graph.h"
#include "sim/parallel/program.h"
#include "sim/scenario/scenario.h"

namespace shardsim {
namespace {

double Sum(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s;
}

TEST(Routing, ZipfExponentZeroIsUniform) {
  const std::vector<double> shares = model::ExpertLoadShares(128, 0, 0, {});
  ASSERT_EQ(shares.size(), 128u);
  for (double p : shares) EXPECT_DOUBLE_EQ(p, 1.0 / 128);
  EXPECT_NEAR(Sum(model::BusiestRank(shares, 8)), 1.0 / 8, 1e-15);
}

TEST(Routing, HotExpertShareOnTheBusiestRank) {
  // E = 64 experts over ep = 8 ranks, the hottest (id 0) with h = 0.3: its
  // rank holds it and 7 others of (1 - h) / 63 each.
  const double h = 0.3;
  const std::vector<double> busiest =
      model::BusiestRank(model::ExpertLoadShares(64, 0, h, {}), 8);
  ASSERT_EQ(busiest.size(), 8u);
  EXPECT_NEAR(Sum(busiest), h + 7 * (1 - h) / 63, 1e-15);
  EXPECT_DOUBLE_EQ(busiest[0], h);
}

TEST(Routing, ZipfAndMeasuredHistogram) {
  // s = 1 over 4 experts: 1, 1/2, 1/3, 1/4 over 25/12.
  const std::vector<double> zipf = model::ExpertLoadShares(4, 1, 0, {});
  EXPECT_NEAR(zipf[0], 12.0 / 25, 1e-15);
  EXPECT_NEAR(zipf[3], 3.0 / 25, 1e-15);
  // Two ranks: {0, 1} carries 18/25.
  EXPECT_NEAR(Sum(model::BusiestRank(zipf, 2)), 18.0 / 25, 1e-15);
  // A histogram is normalised; its busiest rank is wherever its load is.
  const std::vector<double> measured = model::ExpertLoadShares(4, 0, 0, {1, 1, 5, 3});
  EXPECT_DOUBLE_EQ(measured[2], 0.5);
  EXPECT_EQ(model::BusiestRank(measured, 2), (std::vector<double>{0.5, 0.3}));
}

// Qwen3-30B-A3B (128 experts, top 8) with attention data parallel 8 and
// ep = 8 on a DGX H100: a decode step of 64 sequences per replica.
struct Step {
  double expert_flops = 0;   // gate_up_proj on the busiest rank
  int64_t all_to_all_bytes = 0;
};

absl::StatusOr<Step> RunStep(const std::vector<std::string>& routing) {
  std::vector<std::string> overrides = {"model_file=../models/qwen3_30b_a3b.json",
                                        "parallelism.tp=1", "parallelism.dp=8",
                                        "parallelism.ep=8"};
  overrides.insert(overrides.end(), routing.begin(), routing.end());
  absl::StatusOr<scenario::LoadedScenario> loaded =
      scenario::LoadScenario("scenarios/default.textproto", overrides);
  if (!loaded.ok()) return loaded.status();
  const model::ModelGraph graph = model::BuildGraph(loaded->model, loaded->plan.shard);
  const parallel::Program program = parallel::BuildProgram(graph, loaded->plan);
  const model::StepShape shape = model::DecodeStep(64, 1025);
  Step step;
  for (const parallel::Block& block : program.Stage(0, 0).blocks) {
    for (const parallel::Instruction& i : block.instructions) {
      if (i.type == parallel::Instruction::Type::kCompute && i.op.total_experts > 0 &&
          i.op.kind == model::OpKind::kGemm && step.expert_flops == 0) {
        step.expert_flops = model::OpFlops(i.op, loaded->model, shape);
      }
      if (i.type == parallel::Instruction::Type::kCollective &&
          i.comm.kind == parallel::CommKind::kAllToAll) {
        step.all_to_all_bytes = i.comm.Bytes(shape);
      }
    }
  }
  return step;
}

TEST(Routing, TheBusiestRankSetsTheExpertGemmsAndTheAllToAll) {
  const absl::StatusOr<Step> uniform = RunStep({});
  ASSERT_TRUE(uniform.ok()) << uniform.status();
  ASSERT_GT(uniform->expert_flops, 0);
  ASSERT_GT(uniform->all_to_all_bytes, 0);
  // Zipf s = 0 is uniform routing.
  const absl::StatusOr<Step> zero = RunStep({"parallelism.expert_routing.zipf_exponent=0"});
  ASSERT_TRUE(zero.ok());
  EXPECT_DOUBLE_EQ(zero->expert_flops, uniform->expert_flops);
  // The grouped GEMM runs whole tiles of each expert's rows: 64 x 8
  // replicas = 512 tokens reach a rank (tile 64 rows). Uniform: each of its
  // 16 experts gets 512 x 8 / 128 = 32 rows when active (probability
  // 1 - (15/16)^512), one tile.
  const double gemm = 2.0 * 2048 * 2 * 768;  // FLOPs per row: 2048 in, 2 x 768 out
  const double uniform_active = 1 - std::pow(15.0 / 16, 512);
  EXPECT_NEAR(uniform->expert_flops / (gemm * 16 * uniform_active * 64), 1, 1e-12);
  // Hot share h: the hot expert takes 512 x 8 x h = 1024 rows (16 tiles),
  // each of the 15 others on its rank 512 x 8 x (1 - h) / 127 = 24.2 rows
  // when active (probability 1 - (1 - 8 (1 - h) / 127)^512), one tile.
  const double h = 0.25;
  const absl::StatusOr<Step> hot = RunStep({"parallelism.expert_routing.hot_expert_share=0.25"});
  ASSERT_TRUE(hot.ok()) << hot.status();
  const double other_active = 1 - std::pow(1 - 8 * (1 - h) / 127, 512);
  EXPECT_NEAR(hot->expert_flops / (gemm * (1024 + 15 * other_active * 64)), 1, 1e-12);
  // The busiest rank's share is h + 15 (1 - h) / 127 instead of 1/8, so
  // the all-to-all's bytes grow 8x that.
  const double factor = 8 * (h + 15 * (1 - h) / 127);
  // Per row: top-8 x 2048 hidden x BF16, times the factor, rounded up.
  EXPECT_EQ(hot->all_to_all_bytes,
            64 * 2 * static_cast<int64_t>(std::ceil(8.0 * 2048 * factor)));
  EXPECT_EQ(uniform->all_to_all_bytes, 64 * 2 * 8 * 2048);
}

TEST(Routing, BadRoutingSaysWhichField) {
  const absl::StatusOr<Step> share = RunStep({"parallelism.expert_routing.hot_expert_share=1.5"});
  ASSERT_FALSE(share.ok());
  const std::string message(share.status().message());
  EXPECT_NE(message.find("parallelism.expert_routing.hot_expert_share"), std::string::npos)
      << message;
  const absl::StatusOr<Step> both = RunStep({"parallelism.expert_routing.hot_expert_share=0.5",
                                         "parallelism.expert_routing.zipf_exponent=1"});
  ASSERT_FALSE(both.ok());
  EXPECT_NE(std::string(both.status().message()).find("give one of"), std::string::npos);
  const absl::StatusOr<Step> histogram = RunStep({"parallelism.expert_routing.expert_load=1,2,3"});
  ASSERT_FALSE(histogram.ok());
  EXPECT_NE(std::string(histogram.status().message()).find("128 routed experts"),
            std::string::npos)
      << histogram.status();
}

// The first collective of `kind` in stage (0, 0)'s program and the first
// op named `op`, for the default scenario (Llama-3-70B, tp 8) with
// `overrides`.
struct Pieces {
  parallel::Communication comm;
  model::Op op;
  model::ModelDims dims;
};
Pieces Find(const std::vector<std::string>& overrides, parallel::CommKind kind,
            const std::string& op) {
  absl::StatusOr<scenario::LoadedScenario> loaded =
      scenario::LoadScenario("scenarios/default.textproto", overrides);
  EXPECT_TRUE(loaded.ok()) << loaded.status();
  Pieces pieces;
  if (!loaded.ok()) return pieces;
  pieces.dims = loaded->model;
  const model::ModelGraph graph = model::BuildGraph(loaded->model, loaded->plan.shard);
  const parallel::Program program = parallel::BuildProgram(graph, loaded->plan);
  bool comm_found = false;
  bool op_found = false;
  for (const parallel::Block& block : program.Stage(0, 0).blocks) {
    for (const parallel::Instruction& i : block.instructions) {
      if (i.type == parallel::Instruction::Type::kCollective && i.comm.kind == kind &&
          !comm_found) {
        pieces.comm = i.comm;
        comm_found = true;
      }
      if (i.type == parallel::Instruction::Type::kCompute && i.op.name == op && !op_found) {
        pieces.op = i.op;
        op_found = true;
      }
    }
  }
  EXPECT_TRUE(comm_found && op_found);
  return pieces;
}

TEST(Precision, Fp8RecipeRunsBf16ActivationsAndAllReduces) {
  // Llama-3-70B at tp 8, a decode step of 64: each all-reduce moves 64 x
  // 8192 BF16 values; o_proj reads its FP8 weights (8192 / 8 x 8192 bytes,
  // one scale per tensor) and BF16 rows in and out.
  const model::StepShape step = model::DecodeStep(64, 1025);
  const Pieces fp8 =
      Find({"model.precision.recipe=fp8"}, parallel::CommKind::kAllReduce, "o_proj");
  EXPECT_EQ(fp8.comm.dtype, v1::BF16);
  EXPECT_EQ(fp8.comm.Bytes(step), 64 * 8192 * 2);
  EXPECT_EQ(model::OpMemoryBytes(fp8.op, fp8.dims, step),
            fp8.op.weight_bytes + 64 * (1024 + 8192) * 2);
  EXPECT_EQ(fp8.op.weight_bytes, 1024LL * 8192 + 4);  // FP8 values and one FP32 scale
  // A communication dtype set apart is what the collectives move (it was
  // printed but the all-reduces still moved the activations' dtype).
  const Pieces comm8 = Find({"model.precision.communication_dtype=FP8"},
                            parallel::CommKind::kAllReduce, "o_proj");
  EXPECT_EQ(comm8.comm.Bytes(step), 64 * 8192);
  EXPECT_EQ(model::OpMemoryBytes(comm8.op, comm8.dims, step),
            comm8.op.weight_bytes + 64 * (1024 + 8192) * 2);
}

}  // namespace
}  // namespace shardsim
