// The per-GPU memory ledger on whole scenarios.
#include <cstdlib>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "sim/base/units.h"
#include "sim/memory/ledger.h"
#include "sim/memory/vllm_memory.h"
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

// --- runtime { name: VLLM }: vLLM's own start-up accounting ---

// Round numbers, so every closed form below is exact.
memory::VllmMemoryTerms HandTerms() {
  memory::VllmMemoryTerms t;
  t.context_bytes = 500;
  t.workspace_bytes = 70;
  t.lazy_load_bytes = 180;
  t.communicator_init_bytes = 800;
  t.tp_forward_bytes = 2000;
  t.moe_tp_init_bytes = 400;
  t.custom_allreduce_bytes = 16;
  t.profile_fixed_bytes = 1000;
  t.sampler_bytes_per_logit = 12;
  t.moe_workspace_copies = 2;
  t.graph_pool_base_bytes = 450;
  t.graph_pool_bytes_per_layer = 15;
  t.graph_pool_bytes_per_moe_layer = 10;
  return t;
}

memory::VllmRank Llama8b(int tp, int pp) {
  memory::VllmRank r;
  r.tp = tp;
  r.pp = pp;
  r.last_stage = true;
  r.layers = 32 / pp;
  r.hidden_size = 4096;
  r.intermediate_size = 14336;
  r.vocab_size = 128256;
  return r;
}

TEST(VllmMemory, NonTorchTermsInClosedForm) {
  const memory::VllmMemoryTerms t = HandTerms();
  const memory::VllmProfile p;
  // tp=1, pp=1: no communicator; the lazy loads come with the first forward.
  memory::VllmMemory m = memory::PredictVllmMemory(Llama8b(1, 1), p, t);
  EXPECT_EQ(m.init_non_torch_bytes, 500);
  EXPECT_EQ(m.forward_non_torch_bytes, 70 + 180);
  EXPECT_EQ(m.communicator_bytes, 0);
  // pp=2: one communicator at start-up, whose initialisation loads them.
  m = memory::PredictVllmMemory(Llama8b(1, 2), p, t);
  EXPECT_EQ(m.init_non_torch_bytes, 500 + 180 + 800);
  EXPECT_EQ(m.forward_non_torch_bytes, 70);
  EXPECT_EQ(m.communicator_bytes, 800);
  // tp=2: + custom all-reduce, + PyTorch's communicator in the forward.
  m = memory::PredictVllmMemory(Llama8b(2, 1), p, t);
  EXPECT_EQ(m.init_non_torch_bytes, 500 + 180 + 800 + 16);
  EXPECT_EQ(m.forward_non_torch_bytes, 70 + 2000);
  EXPECT_EQ(m.communicator_bytes, 800 + 16 + 2000);
  // tp=3: vLLM's custom all-reduce supports 2, 4, 6 and 8 GPUs only.
  m = memory::PredictVllmMemory(Llama8b(3, 1), p, t);
  EXPECT_EQ(m.init_non_torch_bytes, 500 + 180 + 800);
  // tp=4 x pp=2: two communicators; a MoE model adds its term.
  memory::VllmRank moe = Llama8b(4, 2);
  moe.moe = true;
  m = memory::PredictVllmMemory(moe, p, t);
  EXPECT_EQ(m.init_non_torch_bytes, 500 + 180 + 2 * 800 + 16 + 400);
  EXPECT_EQ(m.forward_non_torch_bytes, 70 + 2000);
  EXPECT_EQ(m.communicator_bytes, 2 * 800 + 16 + 400 + 2000);
}

TEST(VllmMemory, ActivationIsTheProfilingRunsLargerPeak) {
  const memory::VllmMemoryTerms t = HandTerms();
  const memory::VllmProfile p{8192, 1024};
  // Last stage: the sampler's 1024 x 128256 logits at 2 + 12 bytes win
  // over the forward's 8192 x (2 x 4096 + 3 x 14336) x 2.
  const int64_t sampler = 1000 + int64_t{1024} * 128256 * 14;
  const int64_t forward = 1000 + int64_t{8192} * (2 * 4096 + 3 * 14336) * 2;
  ASSERT_GT(sampler, forward);
  EXPECT_EQ(memory::PredictVllmMemory(Llama8b(1, 1), p, t).activation_peak_bytes, sampler);
  // tp splits the MLP, not the gathered logits.
  EXPECT_EQ(memory::PredictVllmMemory(Llama8b(4, 1), p, t).activation_peak_bytes, sampler);
  // A first stage of a pipeline runs no sampler.
  memory::VllmRank first = Llama8b(1, 2);
  first.last_stage = false;
  EXPECT_EQ(memory::PredictVllmMemory(first, p, t).activation_peak_bytes, forward);
  // A small vocabulary leaves the forward the larger.
  memory::VllmRank small = Llama8b(1, 1);
  small.vocab_size = 32000;
  EXPECT_EQ(memory::PredictVllmMemory(small, p, t).activation_peak_bytes, forward);
  // Rows are one per sequence, at most one per token.
  EXPECT_EQ(memory::PredictVllmMemory(Llama8b(1, 1), {512, 1024}, t).activation_peak_bytes,
            std::max<int64_t>(1000 + int64_t{512} * 128256 * 14,
                              1000 + int64_t{512} * (2 * 4096 + 3 * 14336) * 2));
  // MoE: the fused-MoE workspace, tokens x top-k x max(2 x width / tp,
  // hidden), twice (HandTerms), beside the sampler.
  memory::VllmRank moe;
  moe.tp = 2;
  moe.moe = true;
  moe.layers = 48;
  moe.moe_layers = 48;
  moe.hidden_size = 2048;
  moe.vocab_size = 151936;
  moe.experts_per_token = 8;
  moe.moe_intermediate_size = 768;
  const int64_t workspace = int64_t{8192} * 8 * 2048 * 2;  // 2 x 768 / 2 < 2048
  EXPECT_EQ(memory::PredictVllmMemory(moe, p, t).activation_peak_bytes,
            1000 + int64_t{1024} * 151936 * 14 + 2 * workspace);
  // The graph pool: base + per layer + per MoE layer.
  EXPECT_EQ(memory::PredictVllmMemory(moe, p, t).cuda_graph_pool_bytes, 450 + 48 * 15 + 48 * 10);
  EXPECT_EQ(memory::PredictVllmMemory(Llama8b(1, 4), p, t).cuda_graph_pool_bytes, 450 + 8 * 15);
}

// Every fitted term of `got` against `want`: the byte terms fitted by
// median or difference exactly, the byte terms of a least-squares fit
// (profile_fixed, the graph pool's) to within `least_squares_bytes`, the
// fitted ratios to 1e-6. custom_allreduce_bytes is vLLM's constant, not
// fitted.
void ExpectSameTerms(const memory::VllmMemoryTerms& got, const memory::VllmMemoryTerms& want,
                     int64_t least_squares_bytes) {
  EXPECT_EQ(got.context_bytes, want.context_bytes);
  EXPECT_EQ(got.workspace_bytes, want.workspace_bytes);
  EXPECT_EQ(got.lazy_load_bytes, want.lazy_load_bytes);
  EXPECT_EQ(got.communicator_init_bytes, want.communicator_init_bytes);
  EXPECT_EQ(got.tp_forward_bytes, want.tp_forward_bytes);
  EXPECT_EQ(got.moe_tp_init_bytes, want.moe_tp_init_bytes);
  EXPECT_LE(std::abs(got.profile_fixed_bytes - want.profile_fixed_bytes), least_squares_bytes);
  EXPECT_LE(std::abs(got.graph_pool_base_bytes - want.graph_pool_base_bytes), least_squares_bytes);
  EXPECT_LE(std::abs(got.graph_pool_bytes_per_layer - want.graph_pool_bytes_per_layer),
            least_squares_bytes);
  EXPECT_LE(std::abs(got.graph_pool_bytes_per_moe_layer - want.graph_pool_bytes_per_moe_layer),
            least_squares_bytes);
  EXPECT_NEAR(got.sampler_bytes_per_logit, want.sampler_bytes_per_logit, 1e-6);
  EXPECT_NEAR(got.moe_workspace_copies, want.moe_workspace_copies, 1e-6);
}

// Runs made by the rule itself from known terms: the fit gives them back.
TEST(VllmMemory, FitRecoversTheTermsThatMadeTheRuns) {
  memory::VllmMemoryTerms truth = HandTerms();
  truth.context_bytes = 500'000'000;
  truth.workspace_bytes = 70'000'000;
  truth.lazy_load_bytes = 180'000'000;
  truth.communicator_init_bytes = 800'000'000;
  truth.tp_forward_bytes = 2'000'000'000;
  truth.moe_tp_init_bytes = 400'000'000;
  truth.profile_fixed_bytes = 90'000'000;
  truth.sampler_bytes_per_logit = 12.5;
  truth.moe_workspace_copies = 1.5;
  truth.graph_pool_base_bytes = 450'000'000;
  truth.graph_pool_bytes_per_layer = 15'000'000;
  truth.graph_pool_bytes_per_moe_layer = 10'000'000;
  // Cited, not fitted: the fit subtracts vLLM's own figure.
  truth.custom_allreduce_bytes = memory::VllmMemoryTerms{}.custom_allreduce_bytes;
  std::vector<memory::VllmRun> runs;
  const int64_t vocabs[] = {128256, 152064, 256000};
  for (int64_t vocab : vocabs) {
    for (int tp : {1, 2, 4}) {
      for (int pp : {1, 2}) {
        for (bool moe : {false, true}) {
          if (pp == 2 && (tp > 1 || moe)) continue;
          memory::VllmRun run;
          run.rank = Llama8b(tp, pp);
          run.rank.vocab_size = vocab;
          run.rank.last_stage = pp == 1;
          run.rank.layers = (24 + vocab % 7) / pp;
          run.rank.moe = moe;
          if (moe) {
            run.rank.moe_layers = run.rank.layers;
            run.rank.experts_per_token = 4 + tp;
            run.rank.moe_intermediate_size = 1408;
            run.rank.hidden_size = 2048;
          }
          const memory::VllmMemory m = memory::PredictVllmMemory(run.rank, run.profile, truth);
          run.init_non_torch_bytes = m.init_non_torch_bytes;
          run.forward_non_torch_bytes = m.forward_non_torch_bytes;
          run.activation_peak_bytes = m.activation_peak_bytes;
          run.cuda_graph_pool_bytes = m.cuda_graph_pool_bytes;
          runs.push_back(run);
        }
      }
    }
  }
  const memory::VllmMemoryTerms fit = memory::FitVllmMemoryTerms(runs);
  // The medians and differences come back exactly; the least-squares terms
  // to within rounding to whole bytes.
  ExpectSameTerms(fit, truth, /*least_squares_bytes=*/2);
}

// The defaults in vllm_memory.h are the fit on every shipped run.
TEST(VllmMemory, DefaultsAreTheFitOnTheShippedRuns) {
  absl::StatusOr<std::vector<memory::VllmRun>> runs = memory::LoadVllmRuns(
      "topologies/calibration_data/public/vllm_memory_profiling_h100.csv",
      "topologies/calibration_data/vllm_memory_checkpoints.csv");
  ASSERT_TRUE(runs.ok()) << runs.status();
  EXPECT_EQ(runs->size(), 59u);
  const memory::VllmMemoryTerms fit = memory::FitVllmMemoryTerms(*runs);
  const memory::VllmMemoryTerms shipped;
  ExpectSameTerms(fit, shipped, /*least_squares_bytes=*/0);
}

TEST(VllmMemory, TheLedgerUsesTheRuleForVllmOnly) {
  const memory::VllmMemoryTerms t;
  const scenario::LoadedScenario generic = Load("scenarios/llama3_8b_one_gpu.textproto");
  const scenario::LoadedScenario vllm =
      Load("scenarios/llama3_8b_one_gpu.textproto", {"runtime.name=VLLM"});
  const v1::MemoryBreakdown g = MemoryOf(generic).gpus(0).memory();
  const v1::MemoryBreakdown v = MemoryOf(vllm).gpus(0).memory();
  EXPECT_EQ(g.runtime_overhead_bytes(), memory::kDefaultCudaContextBytes);
  EXPECT_EQ(v.weights_bytes(), g.weights_bytes());
  EXPECT_EQ(v.kv_cache_bytes(), g.kv_cache_bytes());
  // One GPU: context, workspaces, lazy loads and the 32 layers' graph pool.
  EXPECT_EQ(v.comm_buffer_bytes(), 0);
  EXPECT_EQ(v.runtime_overhead_bytes(), t.context_bytes + t.workspace_bytes + t.lazy_load_bytes +
                                            t.graph_pool_base_bytes +
                                            32 * t.graph_pool_bytes_per_layer);
  // The activation: the profiling rule on the workload's prefill
  // (32 x 2048 tokens, 32 logit rows).
  const memory::VllmRank rank = Llama8b(1, 1);
  EXPECT_EQ(v.activation_peak_bytes(),
            memory::PredictVllmMemory(rank, {32 * 2048, 32}, t).activation_peak_bytes);
  // tp=2: the communicators are the comm buffers.
  const v1::MemoryBreakdown v2 =
      MemoryOf(Load("scenarios/llama3_8b_one_gpu.textproto",
                    {"runtime.name=VLLM", "topology_file=../topologies/dgx_h100.textproto",
                     "parallelism.tp=2"}))
          .gpus(0)
          .memory();
  EXPECT_EQ(v2.comm_buffer_bytes(),
            t.communicator_init_bytes + t.custom_allreduce_bytes + t.tp_forward_bytes);
  EXPECT_EQ(v2.runtime_overhead_bytes(), v.runtime_overhead_bytes());
  // A pool set by the user replaces the rule's.
  const v1::MemoryBreakdown own =
      MemoryOf(Load("scenarios/llama3_8b_one_gpu.textproto",
                    {"runtime.name=VLLM", "runtime.cuda_graph_pool_bytes=0"}))
          .gpus(0)
          .memory();
  EXPECT_EQ(own.runtime_overhead_bytes(), t.context_bytes + t.workspace_bytes + t.lazy_load_bytes);
}

// The runtime's time switches free their memory: without CUDA graphs there
// is no graph pool, without the custom all-reduce no IPC buffers for it.
TEST(VllmMemory, SwitchingOffGraphsOrCustomAllReduceFreesTheirMemory) {
  const memory::VllmMemoryTerms t;
  const std::vector<std::string> tp2 = {"runtime.name=VLLM",
                                        "topology_file=../topologies/dgx_h100.textproto",
                                        "parallelism.tp=2"};
  auto with = [&](std::vector<std::string> more) {
    std::vector<std::string> overrides = tp2;
    overrides.insert(overrides.end(), more.begin(), more.end());
    return MemoryOf(Load("scenarios/llama3_8b_one_gpu.textproto", overrides)).gpus(0).memory();
  };
  const v1::MemoryBreakdown on = with({});
  const v1::MemoryBreakdown no_graphs = with({"runtime.cuda_graphs=false"});
  EXPECT_EQ(on.runtime_overhead_bytes() - no_graphs.runtime_overhead_bytes(),
            t.graph_pool_base_bytes + 32 * t.graph_pool_bytes_per_layer);
  EXPECT_EQ(no_graphs.comm_buffer_bytes(), on.comm_buffer_bytes());
  const v1::MemoryBreakdown no_custom = with({"runtime.custom_all_reduce=false"});
  EXPECT_EQ(on.comm_buffer_bytes() - no_custom.comm_buffer_bytes(), t.custom_allreduce_bytes);
  EXPECT_EQ(no_custom.runtime_overhead_bytes(), on.runtime_overhead_bytes());
  // A pool the user sets still wins over the switch.
  EXPECT_EQ(with({"runtime.cuda_graphs=false", "runtime.cuda_graph_pool_bytes=1000"})
                .runtime_overhead_bytes(),
            no_graphs.runtime_overhead_bytes() + 1000);
}

// vLLM's KV rule: utilization x capacity - weights - profiling peak - the
// forward's non-torch memory; the start-up memory and the graph pool are
// not subtracted.
TEST(VllmMemory, KvCacheBlocksFollowVllmsRule) {
  const scenario::LoadedScenario s =
      Load("scenarios/llama3_8b_one_gpu.textproto", {"runtime.name=VLLM"});
  const model::ModelGraph graph = model::BuildGraph(s.model, s.plan.shard);
  const parallel::Rank& rank = s.plan.ranks[0];
  const memory::RuntimeOverheads runtime =
      memory::ResolveRuntime(s.runtime, s.cluster.gpu.capacity_bytes());
  ASSERT_TRUE(runtime.vllm);
  model::StepShape profile;
  profile.new_tokens = 8192;
  profile.sequences = 1024;
  const memory::VllmMemoryTerms t;
  const memory::VllmMemory m = memory::PredictVllmMemory(Llama8b(1, 1), {8192, 1024}, t);
  const int64_t capacity = s.cluster.gpu.capacity_bytes();
  const double left = 0.95 * static_cast<double>(capacity) -
                      static_cast<double>(memory::RankWeightBytes(graph, rank, 1) +
                                          m.activation_peak_bytes + m.forward_non_torch_bytes);
  const int64_t block = memory::RankKvBytes(graph, rank, 1, 16, 0);
  EXPECT_EQ(memory::KvCacheBlocks(graph, s.plan, rank, runtime, capacity, 0.95, 16, profile),
            static_cast<int64_t>(left / static_cast<double>(block)));
}

TEST(VllmMemory, GraphPoolOnlyForVllmAndNotNegative) {
  for (const auto& [overrides, message] :
       std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"runtime.cuda_graph_pool_bytes=1000"}, "is read only by runtime { name: VLLM }"},
           {{"runtime.name=VLLM", "runtime.cuda_graph_pool_bytes=-1"},
            "must be between 0 and 2^50"}}) {
    absl::StatusOr<scenario::LoadedScenario> loaded =
        scenario::LoadScenario("scenarios/llama3_8b_one_gpu.textproto", overrides);
    ASSERT_FALSE(loaded.ok());
    EXPECT_NE(std::string(loaded.status().message()).find("runtime.cuda_graph_pool_bytes"),
              std::string::npos)
        << loaded.status();
    EXPECT_NE(std::string(loaded.status().message()).find(message), std::string::npos)
        << loaded.status();
  }
}

}  // namespace
}  // namespace shardsim
