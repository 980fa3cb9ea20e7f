// SGLang's and TensorRT-LLM's memory rules and each named runtime's
// scheduler defaults (sim/memory/runtime_memory.h, sim/scenario/
// runtime_profile.h), in closed form, in `memory` and in `serve`.
#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "sim/memory/ledger.h"
#include "sim/memory/runtime_memory.h"
#include "sim/memory/vllm_memory.h"
#include "sim/scenario/runtime_profile.h"
#include "sim/scenario/scenario.h"
#include "tests/run_shardsim.h"

namespace shardsim {
namespace {

constexpr int64_t kMiB = int64_t{1} << 20;

scenario::LoadedScenario Load(const std::string& path,
                              const std::vector<std::string>& overrides = {}) {
  absl::StatusOr<scenario::LoadedScenario> loaded = scenario::LoadScenario(path, overrides);
  EXPECT_TRUE(loaded.ok()) << loaded.status();
  return *std::move(loaded);
}

// --- SGLang's rule for mem_fraction_static (server_args.py) ---

TEST(SglangRule, FractionByGpuMemoryAndTp) {
  // 80 GiB, tp=1: chunked prefill 8192, graphs to 256; reserved
  // 512 + 1.5 x 8192 + 2 x 256 + 1 x 1 / 8 x 1024 = 13440 MiB (over the
  // 10 GiB floor); (81920 - 13440) / 81920 = 0.8359 -> 0.836.
  memory::SglangDefaults d = memory::SglangServerDefaults(81920 * kMiB, 1, 1);
  EXPECT_EQ(d.chunked_prefill_size, 8192);
  EXPECT_EQ(d.cuda_graph_max_bs, 256);
  EXPECT_DOUBLE_EQ(d.reserved_mib, 13440);
  EXPECT_DOUBLE_EQ(d.mem_fraction_static, 0.836);
  // tp=8: graphs to 512, reserved 512 + 12288 + 1024 + 1024 = 14848 MiB;
  // (81920 - 14848) / 81920 = 0.81875 -> 0.819.
  d = memory::SglangServerDefaults(81920 * kMiB, 8, 1);
  EXPECT_EQ(d.cuda_graph_max_bs, 512);
  EXPECT_DOUBLE_EQ(d.reserved_mib, 14848);
  EXPECT_DOUBLE_EQ(d.mem_fraction_static, 0.819);
  // 24 GiB (under 35 GiB), tp=1: 2048 and 24; reserved 512 + 3072 + 48 +
  // 128 = 3760 MiB, no floor; (24576 - 3760) / 24576 = 0.84700 -> 0.847.
  d = memory::SglangServerDefaults(24576 * kMiB, 1, 1);
  EXPECT_EQ(d.chunked_prefill_size, 2048);
  EXPECT_EQ(d.cuda_graph_max_bs, 24);
  EXPECT_DOUBLE_EQ(d.reserved_mib, 3760);
  EXPECT_DOUBLE_EQ(d.mem_fraction_static, 0.847);
  // 180 GiB (B200 band), tp=4 pp=2: 16384 and 512; reserved 512 + 24576 +
  // 1024 + 1024 = 27136 MiB; (184320 - 27136) / 184320 = 0.85278 -> 0.853.
  d = memory::SglangServerDefaults(184320 * kMiB, 4, 2);
  EXPECT_EQ(d.chunked_prefill_size, 16384);
  EXPECT_EQ(d.cuda_graph_max_bs, 512);
  EXPECT_DOUBLE_EQ(d.mem_fraction_static, 0.853);
  // 40 GiB (A100 40GB band), tp=2: 4096 and 32; reserved 512 + 6144 + 64 +
  // 256 = 6976 MiB; (40960 - 6976) / 40960 = 0.82969 -> 0.83.
  d = memory::SglangServerDefaults(40960 * kMiB, 2, 1);
  EXPECT_EQ(d.chunked_prefill_size, 4096);
  EXPECT_EQ(d.cuda_graph_max_bs, 32);
  EXPECT_DOUBLE_EQ(d.mem_fraction_static, 0.83);
  // Unknown memory: SGLang's fallback.
  d = memory::SglangServerDefaults(0, 1, 1);
  EXPECT_EQ(d.chunked_prefill_size, 4096);
  EXPECT_EQ(d.cuda_graph_max_bs, 160);
  EXPECT_DOUBLE_EQ(d.mem_fraction_static, 0.88);
}

TEST(SglangRule, PoolIsTheFractionOfStartupFreeMemoryLessTheWeights) {
  EXPECT_EQ(memory::SglangKvPoolBytes(80'000'000'000, 16'000'000'000, 0.8), 48'000'000'000);
  EXPECT_EQ(memory::SglangKvPoolBytes(10'000'000'000, 16'000'000'000, 0.8), 0);
  EXPECT_EQ(memory::TrtllmKvCacheBytes(50'000'000'000, 0.9), 45'000'000'000);
  EXPECT_EQ(memory::TrtllmKvCacheBytes(-5, 0.9), 0);
}

TEST(SglangRule, CaptureSizes) {
  const std::vector<int64_t> sizes = scenario::SglangCaptureSizes(256);
  // 1, 2, 4, 8, 12 and 16..256 by 8 (31 of them).
  ASSERT_EQ(sizes.size(), 5u + 31u);
  EXPECT_EQ(sizes[4], 12);
  EXPECT_EQ(sizes[5], 16);
  EXPECT_EQ(sizes.back(), 256);
  const std::vector<int64_t> big = scenario::SglangCaptureSizes(512);
  // ...then 272..496 by 16 (15) and 512.
  ASSERT_EQ(big.size(), 36u + 15u + 1u);
  EXPECT_EQ(big[36], 272);
  EXPECT_EQ(big.back(), 512);
  EXPECT_EQ(scenario::SglangCaptureSizes(24).back(), 24);
}

// --- the rules on a whole scenario: Llama-3-8B on one H100 ---

struct OneGpu {
  scenario::LoadedScenario s;
  model::ModelGraph graph;
  int64_t capacity = 0;
  int64_t weights = 0;
  int64_t startup = 0;  // vLLM's fitted start-up memory: context + lazy loads, tp=pp=1
};

OneGpu LlamaOnH100(const std::vector<std::string>& overrides) {
  OneGpu g{Load("scenarios/llama3_8b_one_gpu.textproto", overrides), {}, 0, 0, 0};
  g.graph = model::BuildGraph(g.s.model, g.s.plan.shard);
  g.capacity = g.s.cluster.gpu.capacity_bytes();
  g.weights = memory::RankWeightBytes(g.graph, g.s.plan.ranks[0], 1);
  const memory::VllmMemoryTerms t;
  // One GPU: no communicator, so only the CUDA context (no lazy loads yet).
  g.startup = t.context_bytes;
  return g;
}

TEST(SglangMemory, KvCacheBlocksFollowSglangsRule) {
  const OneGpu g = LlamaOnH100({"runtime.name=SGLANG"});
  const memory::RuntimeOverheads runtime = memory::ResolveRuntime(g.s.runtime, g.capacity);
  ASSERT_TRUE(runtime.sglang);
  const double fraction = memory::SglangServerDefaults(g.capacity, 1, 1).mem_fraction_static;
  const double pool = fraction * static_cast<double>(g.capacity - g.startup) -
                      static_cast<double>(g.weights);
  const int64_t block = memory::RankKvBytes(g.graph, g.s.plan.ranks[0], 1, 1, 0);
  ASSERT_GT(pool, 0);
  // The profile step and `utilization` (vLLM's) do not enter SGLang's rule.
  model::StepShape profile;
  profile.new_tokens = 8192;
  profile.sequences = 1024;
  EXPECT_EQ(memory::KvCacheBlocks(g.graph, g.s.plan, g.s.plan.ranks[0], runtime, g.capacity,
                                  0.5, 1, profile),
            static_cast<int64_t>(static_cast<int64_t>(pool) / block));

  // runtime.mem_fraction_static replaces the rule.
  const OneGpu set = LlamaOnH100({"runtime.name=SGLANG", "runtime.mem_fraction_static=0.7"});
  const memory::RuntimeOverheads seventy = memory::ResolveRuntime(set.s.runtime, set.capacity);
  const double pool70 = 0.7 * static_cast<double>(set.capacity - set.startup) -
                        static_cast<double>(set.weights);
  EXPECT_EQ(memory::KvCacheBlocks(set.graph, set.s.plan, set.s.plan.ranks[0], seventy,
                                  set.capacity, 0.9, 16, profile),
            static_cast<int64_t>(static_cast<int64_t>(pool70) / (16 * block)));
}

TEST(SglangMemory, MemoryReportHoldsTheReserveOutsideTheStaticPool) {
  const OneGpu g = LlamaOnH100({"runtime.name=SGLANG"});
  const v1::MemoryReport report = memory::ComputeMemoryReport(g.s, g.s.scenario.workload());
  const v1::MemoryBreakdown& m = report.gpus(0).memory();
  const double fraction = memory::SglangServerDefaults(g.capacity, 1, 1).mem_fraction_static;
  EXPECT_EQ(m.activation_peak_bytes(),
            static_cast<int64_t>(static_cast<double>(g.capacity - g.startup) * (1 - fraction)));
  EXPECT_EQ(m.runtime_overhead_bytes(), g.startup);
  EXPECT_EQ(m.comm_buffer_bytes(), 0);
  EXPECT_EQ(m.weights_bytes(), g.weights);
  bool noted = false;
  for (const std::string& note : report.notes()) {
    noted = noted || note.find("runtime SGLANG") != std::string::npos;
  }
  EXPECT_TRUE(noted);
}

TEST(TrtllmMemory, KvCacheBlocksAreTheFreeFractionAfterWeightsAndActivations) {
  for (const double fraction : {0.9, 0.5}) {
    std::vector<std::string> overrides = {"runtime.name=TRTLLM"};
    if (fraction != 0.9) {
      overrides.push_back(absl::StrCat("runtime.kv_cache_free_gpu_mem_fraction=", fraction));
    }
    const OneGpu g = LlamaOnH100(overrides);
    const memory::RuntimeOverheads runtime = memory::ResolveRuntime(g.s.runtime, g.capacity);
    ASSERT_TRUE(runtime.trtllm);
    model::StepShape profile = model::PrefillStep(1, 8192);
    const int64_t activations =
        memory::RankActivationPeak(g.graph, g.s.plan.ranks[0], profile, false).bytes;
    const double cache =
        fraction * static_cast<double>(g.capacity - g.startup - g.weights - activations);
    const int64_t block = memory::RankKvBytes(g.graph, g.s.plan.ranks[0], 1, 32, 0);
    EXPECT_EQ(memory::KvCacheBlocks(g.graph, g.s.plan, g.s.plan.ranks[0], runtime, g.capacity,
                                    0.95, 32, profile),
              static_cast<int64_t>(static_cast<int64_t>(cache) / block))
        << fraction;
  }
}

TEST(RuntimeMemory, FractionsAreCheckedAndOnlyForTheirRuntime) {
  for (const auto& [overrides, message] :
       std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"runtime.name=SGLANG", "runtime.mem_fraction_static=1.5"},
            "runtime.mem_fraction_static: must be above 0 and at most 1"},
           {{"runtime.name=VLLM", "runtime.mem_fraction_static=0.8"},
            "runtime.mem_fraction_static: is read only by runtime { name: SGLANG }"},
           {{"runtime.kv_cache_free_gpu_mem_fraction=0.8"},
            "runtime.kv_cache_free_gpu_mem_fraction: is read only by runtime { name: TRTLLM }"},
           {{"runtime.name=TRTLLM", "runtime.kv_cache_free_gpu_mem_fraction=0"},
            "must be above 0 and at most 1"}}) {
    absl::StatusOr<scenario::LoadedScenario> loaded =
        scenario::LoadScenario("scenarios/serve_llama3_70b_h100_tp8.textproto", overrides);
    ASSERT_FALSE(loaded.ok());
    EXPECT_NE(std::string(loaded.status().message()).find(message), std::string::npos)
        << loaded.status();
  }
}

// --- scheduler defaults per runtime ---

TEST(SchedulerDefaults, EachRuntimesOwn) {
  const int64_t h100 = int64_t{80} << 30;
  v1::SchedulerConfig c =
      scenario::RuntimeSchedulerDefaults(v1::VLLM, h100, "H100-SXM5-80GB", 8, 1);
  EXPECT_EQ(c.max_num_seqs(), 1024);
  EXPECT_EQ(c.max_num_batched_tokens(), 8192);
  // vLLM keeps A100s, and GPUs under 70 GiB, on the smaller defaults.
  c = scenario::RuntimeSchedulerDefaults(v1::VLLM, h100, "A100-SXM4-80GB", 8, 1);
  EXPECT_EQ(c.max_num_seqs(), 256);
  EXPECT_EQ(c.max_num_batched_tokens(), 2048);
  c = scenario::RuntimeSchedulerDefaults(v1::VLLM, int64_t{48} << 30, "L40S", 1, 1);
  EXPECT_EQ(c.max_num_seqs(), 256);
  c = scenario::RuntimeSchedulerDefaults(v1::SGLANG, h100, "H100-SXM5-80GB", 8, 1);
  EXPECT_EQ(c.max_num_seqs(), 2048);
  EXPECT_EQ(c.max_num_batched_tokens(), 8192);
  EXPECT_EQ(c.block_size(), 1);
  c = scenario::RuntimeSchedulerDefaults(v1::TRTLLM, h100, "H100-SXM5-80GB", 8, 1);
  EXPECT_EQ(c.max_num_seqs(), 2048);
  EXPECT_EQ(c.max_num_batched_tokens(), 8192);
  EXPECT_FALSE(c.chunked_prefill());
  EXPECT_EQ(c.block_size(), 32);
  // GENERIC sets nothing: ResolveLimits' defaults stay.
  c = scenario::RuntimeSchedulerDefaults(v1::GENERIC, h100, "H100-SXM5-80GB", 8, 1);
  EXPECT_EQ(c.ByteSizeLong(), 0u);
}

TEST(SchedulerDefaults, FillOnlyWhatTheScenarioLeavesUnset) {
  // The serving scenario sets max_num_seqs 256 and max_num_batched_tokens
  // 8192 itself; a runtime fills the rest.
  const scenario::LoadedScenario trt = Load("scenarios/serve_llama3_70b_h100_tp8.textproto",
                                            {"runtime.name=TRTLLM"});
  const v1::SchedulerConfig& c = trt.scenario.serving().scheduler();
  EXPECT_EQ(c.max_num_seqs(), 256);
  EXPECT_EQ(c.max_num_batched_tokens(), 8192);
  EXPECT_TRUE(c.has_chunked_prefill());
  EXPECT_FALSE(c.chunked_prefill());
  EXPECT_EQ(c.block_size(), 32);
  const scenario::LoadedScenario sglang = Load(
      "scenarios/serve_llama3_70b_h100_tp8.textproto",
      {"runtime.name=SGLANG", "serving.scheduler.max_num_seqs=0", "serving.scheduler.block_size=8"});
  EXPECT_EQ(sglang.scenario.serving().scheduler().max_num_seqs(), 2048);
  EXPECT_EQ(sglang.scenario.serving().scheduler().block_size(), 8);
  // SGLang's CUDA-graph maximum on an 80 GB H100 at tp=8: 512.
  EXPECT_EQ(sglang.runtime.max_graph_batch(), 512);
  const scenario::RuntimeProfile p = scenario::ResolveRuntimeProfile(sglang.runtime);
  EXPECT_EQ(p.max_graph_batch, 512);
  EXPECT_EQ(p.GraphBatch(13), 16);  // padded to the next captured size
  EXPECT_EQ(p.GraphBatch(260), 272);
  // GENERIC changes nothing.
  const scenario::LoadedScenario generic = Load("scenarios/serve_llama3_70b_h100_tp8.textproto",
                                                {"serving.scheduler.max_num_seqs=0"});
  EXPECT_EQ(generic.scenario.serving().scheduler().max_num_seqs(), 0);
  EXPECT_FALSE(generic.scenario.serving().scheduler().has_chunked_prefill());
}

// `serve` sizes the KV cache by SGLang's rule: the blocks it reports are the
// rule's pool over the GPU that holds fewest (all ranks alike at tp=8).
TEST(SglangServe, KvBlocksAreTheRulesPool) {
  const std::vector<std::string> overrides = {"runtime.name=SGLANG", "serving.num_requests=20"};
  const scenario::LoadedScenario s =
      Load("scenarios/serve_llama3_70b_h100_tp8.textproto", overrides);
  const model::ModelGraph graph = model::BuildGraph(s.model, s.plan.shard);
  const parallel::Rank& rank = s.plan.ranks[0];
  const int64_t capacity = s.cluster.gpu.capacity_bytes();
  const memory::VllmMemoryTerms t;
  // tp=8 at start-up: context, lazy loads, one communicator, custom
  // all-reduce buffers.
  const int64_t startup =
      t.context_bytes + t.lazy_load_bytes + t.communicator_init_bytes + t.custom_allreduce_bytes;
  const double fraction = memory::SglangServerDefaults(capacity, 8, 1).mem_fraction_static;
  const int64_t pool = static_cast<int64_t>(
      fraction * static_cast<double>(capacity - startup) -
      static_cast<double>(memory::RankWeightBytes(graph, rank, 1)));
  // The scenario's scheduler sets no block size: SGLang's one-token pages.
  const int64_t blocks = pool / memory::RankKvBytes(graph, rank, 1, 1, 0);
  std::string args = "serve scenarios/serve_llama3_70b_h100_tp8.textproto --format=json";
  for (const std::string& o : overrides) absl::StrAppend(&args, " --set ", o);
  const testing::Result r = testing::RunShardsim(args);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const nlohmann::json report = nlohmann::json::parse(r.out);
  EXPECT_EQ(report.at("kv_blocks_capacity").get<int64_t>(), blocks);
}

}  // namespace
}  // namespace shardsim
