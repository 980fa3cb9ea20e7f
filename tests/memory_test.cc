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

}  // namespace
}  // namespace shardsim
