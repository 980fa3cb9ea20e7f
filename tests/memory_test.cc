// The per-GPU memory ledger on whole scenarios.
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "sim/base/units.h"
#include "sim/memory/ledger.h"
#include "sim/report/format.h"
#include "sim/scenario/scenario.h"

namespace shardsim {
namespace {

scenario::LoadedScenario Load(const std::string& path,
                              const std::vector<std::string>& overrides = {}) {
  absl::StatusOr<scenario::LoadedScenario> loaded =
      scenario::LoadScenario(path, overrides);
  EXPECT_TRUE(loaded.ok()) << loaded.status();
  return *std::move(loaded);
}

// The memory report of a scenario's own static workload.
v1::MemoryReport MemoryOf(const scenario::LoadedScenario& s) {
  return memory::ComputeMemoryReport(s, s.scenario.workload());
}

TEST(Memory, Llama2_70bFp16DoesNotFitOnOneGpu) {
  const scenario::LoadedScenario s = Load("scenarios/llama2_70b_one_gpu.textproto");
  const v1::MemoryReport report = MemoryOf(s);
  ASSERT_EQ(report.gpus_size(), 1);
  const v1::GpuMemory& gpu = report.gpus(0);
  EXPECT_FALSE(report.fits());
  EXPECT_FALSE(gpu.fits());
  EXPECT_EQ(gpu.memory().weights_bytes(), 68'976'648'192 * 2);
  EXPECT_EQ(gpu.overflow_component(), "weights");
  EXPECT_EQ(gpu.over_by_bytes(), gpu.memory().total_bytes() - gpu.capacity_bytes());
  EXPECT_GT(gpu.over_by_bytes(), 0);
  const std::string text = report::MemoryText(s, report);
  EXPECT_NE(text.find("the total passes capacity at weights: the weights alone "
                      "are 128.48 GiB"),
            std::string::npos)
      << text;
}

TEST(Memory, TensorParallelTwoHalvesTheWeights) {
  const v1::MemoryReport one = MemoryOf(
      Load("scenarios/llama2_70b_one_gpu.textproto"));
  const v1::MemoryReport two = MemoryOf(
      Load("scenarios/llama2_70b_one_gpu.textproto",
           {"topology_file=../topologies/dgx_h100.textproto", "parallelism.tp=2"}));
  ASSERT_EQ(two.gpus_size(), 2);
  // Only the 161 RMSNorm vectors (FP16) are replicated rather than split.
  const int64_t norms = (2 * 80 + 1) * 8192 * 2;
  for (const v1::GpuMemory& gpu : two.gpus()) {
    EXPECT_EQ(gpu.memory().weights_bytes(),
              (one.gpus(0).memory().weights_bytes() - norms) / 2 + norms);
    EXPECT_TRUE(gpu.fits());
  }
  EXPECT_EQ(two.gpus(0).memory().comm_buffer_bytes(),
            memory::kDefaultCommBufferBytesPerCommunicator);
}

TEST(Memory, SeedExample) {
  const scenario::LoadedScenario s = Load("scenarios/seed_example.textproto");
  const v1::MemoryReport report = MemoryOf(s);
  const v1::MemoryBreakdown& m = report.gpus(0).memory();
  EXPECT_EQ(report.parameters(), 108'768'768);
  EXPECT_EQ(m.weights_bytes(), 435'075'072);
  EXPECT_EQ(m.kv_cache_bytes(), 37'748'736);
  // The largest working set is the FFN activation: its input and output
  // (512 x 3072 FP32 each) beside the residual stream (512 x 768 FP32,
  // 1,572,864 bytes: the seed's "activations per layer").
  EXPECT_EQ(m.activation_peak_bytes(), 2 * 512 * 3072 * 4 + 1'572'864);
  EXPECT_EQ(report.gpus(0).activation_peak_op(), "act");
  ASSERT_GE(report.notes_size(), 1);
  EXPECT_NE(report.notes(0).find("the hidden state of one layer at prefill is "
                                 "1,572,864 bytes"),
            std::string::npos);
  EXPECT_NE(report.notes(0).find("not 12 layers' worth (18,874,368 bytes)"),
            std::string::npos);
}

TEST(Memory, TotalIsTheSumOfItsComponents) {
  const v1::MemoryReport report =
      MemoryOf(Load("scenarios/default.textproto"));
  ASSERT_EQ(report.gpus_size(), 8);
  for (const v1::GpuMemory& gpu : report.gpus()) {
    const v1::MemoryBreakdown& m = gpu.memory();
    EXPECT_EQ(m.total_bytes(), m.weights_bytes() + m.kv_cache_reserved_bytes() +
                                   m.activation_peak_bytes() + m.comm_buffer_bytes() +
                                   m.runtime_overhead_bytes());
    // 64 sequences x 2047 tokens x 80 layers x 1 KV head x 128 x 2 x 2 bytes.
    EXPECT_EQ(m.kv_cache_bytes(), 64LL * 2047 * 80 * 512);
  }
}

TEST(Memory, KvHeadsAreReplicatedBeyondTheirCount) {
  // Llama-3-8B has 8 KV heads; at tp=8 each GPU holds one.
  const v1::MemoryReport tp8 = MemoryOf(
      Load("scenarios/llama3_8b_one_gpu.textproto",
           {"topology_file=../topologies/dgx_h100.textproto", "parallelism.tp=8"}));
  const v1::MemoryReport tp1 = MemoryOf(
      Load("scenarios/llama3_8b_one_gpu.textproto"));
  EXPECT_EQ(tp8.gpus(0).memory().kv_cache_bytes() * 8,
            tp1.gpus(0).memory().kv_cache_bytes());
}

TEST(Memory, PagedCacheReservesWholeBlocks) {
  const v1::MemoryReport report = MemoryOf(
      Load("scenarios/seed_example.textproto",
           {"runtime.kv_block_tokens=100", "workload.prompt_len=450"}));
  const v1::MemoryBreakdown& m = report.gpus(0).memory();
  // 450 tokens use 5 blocks of 100: 500 tokens reserved.
  EXPECT_EQ(m.kv_cache_bytes() / 450 * 500, m.kv_cache_reserved_bytes());
}

TEST(Memory, PipelineStagesSplitTheLayers) {
  const v1::MemoryReport report = MemoryOf(
      Load("scenarios/default.textproto", {"parallelism.tp=2", "parallelism.pp=3"}));
  ASSERT_EQ(report.gpus_size(), 6);
  // 80 layers over 3 stages: 27, 27, 26.
  EXPECT_EQ(report.gpus(0).num_layers(), 27);
  EXPECT_EQ(report.gpus(2).first_layer(), 27);
  EXPECT_EQ(report.gpus(4).num_layers(), 26);
  EXPECT_EQ(report.gpus(4).first_layer(), 54);
}

TEST(Memory, SameInputSameJson) {
  const scenario::LoadedScenario s = Load("scenarios/default.textproto");
  EXPECT_EQ(*report::ToJson(MemoryOf(s)),
            *report::ToJson(MemoryOf(s)));
}

// DeepSeek-V3 on one HGX H200 node, 8 sequences of 1024 + 1024 tokens.
std::vector<std::string> DeepSeekOnH200(std::vector<std::string> more) {
  std::vector<std::string> overrides = {
      "model_file=../models/deepseek_v3.json", "topology_file=../topologies/hgx_h200.textproto",
      "parallelism.tp=8", "workload.batch_size=8"};
  overrides.insert(overrides.end(), more.begin(), more.end());
  return overrides;
}

absl::Status LoadError(const std::vector<std::string>& overrides) {
  return scenario::LoadScenario("scenarios/default.textproto", overrides).status();
}

TEST(Memory, ExpertParallelSpreadsTheRoutedExperts) {
  const v1::MemoryReport tp8 =
      MemoryOf(Load("scenarios/default.textproto", DeepSeekOnH200({})));
  const v1::MemoryReport ep8 = MemoryOf(
      Load("scenarios/default.textproto", DeepSeekOnH200({"parallelism.ep=8"})));
  // The same experts, held whole on 8 ranks (32 each) instead of all 256
  // split 8 ways: per-rank expert bytes are the same up to the FP8 block
  // scales, which a 2048-wide expert split 8 ways rounds up per shard.
  // Routed-expert bytes per MoE layer and rank: 32 experts x 3 matrices of
  // 7168 x 2048 FP8 plus one FP32 scale per 128 x 128 block.
  const int64_t whole = 32 * 3 * (7168LL * 2048 + 4 * 56 * 16);
  // Split 8 ways: 256 experts x 3 x (7168 x 256 values + blocks of the
  // 256-wide shard: 56 x 2 for gate/up, 2 x 56 for down).
  const int64_t split = 256LL * 3 * (7168 * 256 + 4 * 56 * 2);
  EXPECT_EQ(tp8.gpus(0).memory().weights_bytes() - ep8.gpus(0).memory().weights_bytes(),
            58 * (split - whole));
  EXPECT_EQ(ep8.active_parameters(), 37'552'297'472);
  bool noted = false;
  for (const std::string& note : ep8.notes()) {
    noted = noted || note.find("256 routed experts (top-8) per MoE layer, 32 on each GPU "
                               "(ep=8), each whole; 37,552,297,472 of 671,026,419,200 "
                               "parameters are active per token") != std::string::npos;
  }
  EXPECT_TRUE(noted);
  // The latent KV cache is replicated on every tensor-parallel rank: 8
  // sequences x 2047 tokens x 61 layers x 576 values x 2 bytes.
  EXPECT_EQ(ep8.gpus(3).memory().kv_cache_bytes(), 8LL * 2047 * 61 * 576 * 2);
  EXPECT_EQ(ep8.kv_cache_bytes_per_token(), 70'272);
  EXPECT_EQ(ep8.precision().weight_dtype(), v1::FP8);
  EXPECT_EQ(ep8.precision().fp8_block_size(), 128);
  // vLLM's data-parallel attention with expert parallelism: tp=4 x dp=2,
  // ep=8. Each rank holds 32 whole experts, and belongs to a TP and an EP
  // communicator.
  const v1::MemoryReport dp_ep = MemoryOf(Load(
      "scenarios/default.textproto",
      DeepSeekOnH200({"parallelism.tp=4", "parallelism.dp=2", "parallelism.ep=8"})));
  EXPECT_EQ(dp_ep.gpus(5).memory().comm_buffer_bytes(),
            2 * memory::kDefaultCommBufferBytesPerCommunicator);
  EXPECT_EQ(ep8.gpus(0).memory().comm_buffer_bytes(),
            memory::kDefaultCommBufferBytesPerCommunicator);
  // The 32 experts of a rank at tp=4, ep=8 serve the tokens of both
  // replicas: 2 x 4096 tokens x top-8 / 256 experts = 256 rows per expert
  // GEMM (128 if a replica's tokens stayed on its own ranks).
  const scenario::LoadedScenario loaded = Load(
      "scenarios/default.textproto",
      DeepSeekOnH200({"parallelism.tp=4", "parallelism.dp=2", "parallelism.ep=8"}));
  EXPECT_EQ(loaded.plan.shard.expert_token_sources, 2);
  const model::ModelGraph graph = model::BuildGraph(loaded.model, loaded.plan.shard);
  for (const model::Op& op : graph.layer) {
    if (op.name == "down_proj") {
      EXPECT_DOUBLE_EQ(model::RowsPerKernel(op, model::PrefillStep(4, 1024)), 256.0);
    }
  }
}

TEST(Memory, ExpertParallelErrorsAreOneLine) {
  EXPECT_EQ(std::string(LoadError(DeepSeekOnH200({"parallelism.ep=3"})).message()),
            "--set parallelism.ep=3: parallelism.ep: ep=3 does not divide the 256 routed "
            "experts of deepseek_v3");
  EXPECT_EQ(std::string(LoadError(DeepSeekOnH200({"parallelism.ep=16"})).message()),
            "--set parallelism.ep=16: parallelism.ep: ep=16 must divide the tp x dp = 8 x 1 "
            "= 8 ranks of a pipeline stage it spreads experts over");
  EXPECT_EQ(std::string(LoadError(DeepSeekOnH200({"model.experts_per_token=300"})).message()),
            "--set model.experts_per_token=300: model.experts_per_token: top-k of 300 is "
            "more than the 256 routed experts");
  EXPECT_EQ(std::string(LoadError({"parallelism.ep=2"}).message()),
            "--set parallelism.ep=2: parallelism.ep: ep=2, but Llama-3-70B has no routed "
            "experts to spread");
}

TEST(Memory, SlidingLayersKeepOnlyTheWindow) {
  // Gemma-2-27B: 23 of 46 layers keep at most 4096 tokens. One sequence of
  // 6000 + 1 tokens: 23 x 6000 + 23 x 4096 tokens of 16 KV heads x 128 x 2 x 2.
  const v1::MemoryReport report = MemoryOf(Load(
      "scenarios/llama3_8b_one_gpu.textproto",
      {"model_file=../models/gemma2_27b.json", "workload.batch_size=1",
       "workload.prompt_len=6000", "workload.output_len=1"}));
  EXPECT_EQ(report.gpus(0).memory().kv_cache_bytes(), (23LL * 6000 + 23 * 4096) * 8192);
  // Paged: each layer's tokens rounded to whole blocks of 16.
  const v1::MemoryReport paged = MemoryOf(Load(
      "scenarios/llama3_8b_one_gpu.textproto",
      {"model_file=../models/gemma2_27b.json", "workload.batch_size=1",
       "workload.prompt_len=6001", "workload.output_len=1", "runtime.kv_block_tokens=16"}));
  EXPECT_EQ(paged.gpus(0).memory().kv_cache_reserved_bytes(), (23LL * 6016 + 23 * 4096) * 8192);
}

TEST(Memory, ThePrecisionRecipeIsPrinted) {
  const scenario::LoadedScenario s =
      Load("scenarios/default.textproto",
           {"model.precision.recipe=fp8", "model.precision.kv_cache_dtype=FP8"});
  const v1::MemoryReport report = MemoryOf(s);
  const std::string text = report::MemoryText(s, report);
  EXPECT_NE(text.find("precision recipe fp8: weights FP8 (scale per tensor), GEMM inputs FP8, "
                      "activations BF16, communication BF16, KV cache FP8\n"),
            std::string::npos)
      << text;
  // Llama-3-70B's linear weights at one byte each (plus a scale per matrix),
  // embedding, head and norms in BF16.
  const model::ModelGraph graph = model::BuildGraph(s.model, model::FullModel(s.model));
  EXPECT_EQ(report.weight_bytes_total(), graph.TotalWeightBytes());
  EXPECT_LT(report.weight_bytes_total(), 75'000'000'000);
}

}  // namespace
}  // namespace shardsim
