// Parameter counts, KV-cache sizes and weight bytes of the model zoo, checked
// against the exact figures derived from each model's published config.
#include <cmath>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "sim/base/units.h"
#include "sim/cost/roofline.h"
#include "sim/hardware/cluster.h"
#include "sim/model/graph.h"
#include "sim/model/hf_import.h"
#include "absl/strings/str_cat.h"
#include "sim/base/status_macros.h"
#include "sim/scenario/scenario.h"

namespace shardsim {
namespace {

model::ModelDims Load(const std::string& file) {
  absl::StatusOr<model::ModelDims> dims =
      scenario::LoadAndCheckModel("models/" + file);
  EXPECT_TRUE(dims.ok()) << dims.status();
  return dims.ok() ? *dims : model::ModelDims{};
}

int64_t Parameters(const std::string& file) {
  const model::ModelDims dims = Load(file);
  return model::BuildGraph(dims, model::FullModel(dims)).TotalParameters();
}

int64_t KvBytesPerToken(const std::string& file, v1::DType dtype) {
  model::ModelDims dims = Load(file);
  dims.kv_cache_dtype = dtype;
  return dims.num_layers * model::KvBytesPerTokenPerLayer(dims, dims.num_kv_heads);
}

TEST(ModelZoo, ParameterCounts) {
  EXPECT_EQ(Parameters("llama2_7b.json"), 6'738'415'616);
  EXPECT_EQ(Parameters("llama2_13b.textproto"), 13'015'864'320);
  EXPECT_EQ(Parameters("llama2_70b.textproto"), 68'976'648'192);
  EXPECT_EQ(Parameters("llama3_8b.json"), 8'030'261'248);
  EXPECT_EQ(Parameters("llama3_70b.textproto"), 70'553'706'496);
  EXPECT_EQ(Parameters("mistral_7b.json"), 7'241'732'096);
  EXPECT_EQ(Parameters("mixtral_8x7b.json"), 46'702'792'704);
  EXPECT_EQ(Parameters("bert_base_uncased.json"), 109'482'240);
  // GPT-2 small as transformers counts it (tied head, learned positions).
  EXPECT_EQ(Parameters("gpt2.json"), 124'439'808);
}

TEST(ModelZoo, MixtureOfExpertsAndNewArchitectureParameterCounts) {
  // Qwen3-30B-A3B: 48 x (attention 18,874,368 + q/k norms 256 + 2 norms
  // 4,096 + router 262,144 + 128 experts x 3 x 2048 x 768) + embedding and
  // head 2 x 151,936 x 2048 + final norm.
  EXPECT_EQ(Parameters("qwen3_30b_a3b.json"), 30'532'122'624);
  EXPECT_EQ(Parameters("qwen3_235b_a22b.json"), 235'093'634'560);
  // DeepSeek-V3 without its multi-token-prediction layer: 3 dense and 58 MoE
  // layers of MLA attention (187,107,328 each), 256 routed experts of
  // 3 x 7168 x 2048, one shared, the router with its score bias.
  EXPECT_EQ(Parameters("deepseek_v3.json"), 671'026'419'200);
  EXPECT_EQ(Parameters("mixtral_8x22b.json"), 140'620'634'112);
  // Gemma-2-27B: four norms per layer, tied head (as Google's model card).
  EXPECT_EQ(Parameters("gemma2_27b.json"), 27'227'128'320);
  EXPECT_EQ(Parameters("qwen3_32b.json"), 32'762'123'264);
}

TEST(ModelZoo, ActiveParametersPerToken) {
  // All parameters but the routed experts a token is not sent to: Qwen3-30B-A3B
  // keeps 8 of 128 experts per layer (120 x 4,718,592 x 48 idle), counting
  // embedding and head whole as Qwen's "3.3B activated" does.
  auto active = [](const std::string& file) {
    const model::ModelDims dims = Load(file);
    return model::BuildGraph(dims, model::FullModel(dims)).ActiveParameters();
  };
  EXPECT_EQ(active("qwen3_30b_a3b.json"), 30'532'122'624 - 120LL * 4'718'592 * 48);
  EXPECT_EQ(active("qwen3_30b_a3b.json"), 3'353'032'704);
  // DeepSeek-V3: 58 MoE layers x 248 idle experts x 44,040,192 ("37B activated").
  EXPECT_EQ(active("deepseek_v3.json"), 671'026'419'200 - 58LL * 248 * 44'040'192);
  EXPECT_EQ(active("deepseek_v3.json"), 37'552'297'472);
  EXPECT_EQ(active("llama3_8b.json"), 8'030'261'248);  // dense: all of it
}

TEST(ModelZoo, DeepSeekV3LayersAndPrecision) {
  const model::ModelDims dims = Load("deepseek_v3.json");
  const model::ModelGraph graph = model::BuildGraph(dims, model::FullModel(dims));
  ASSERT_EQ(graph.layer_kinds.size(), 2u);
  EXPECT_EQ(graph.layer_kinds[0].name, "dense");
  EXPECT_EQ(graph.layer_kinds[0].count, 3);
  EXPECT_EQ(graph.layer_kinds[1].name, "moe");
  EXPECT_EQ(graph.layer_kinds[1].count, 58);
  // `layer`, which the replay multiplies by the layer count, is the MoE layer.
  ASSERT_EQ(graph.layer.size(), graph.layer_kinds[1].ops.size());
  EXPECT_EQ(graph.layer[0].name, "input_norm");
  EXPECT_EQ(graph.layer[graph.layer.size() - 2].name, "down_proj");
  EXPECT_EQ(graph.KindCounts(0, 31), (std::vector<int64_t>{3, 28}));
  // The checkpoint's quantization_config: FP8 weights with one FP32 scale per
  // 128 x 128 block, FP8 GEMMs, BF16 activations.
  EXPECT_EQ(dims.weight_dtype, v1::FP8);
  EXPECT_EQ(dims.fp8_block_size, 128);
  EXPECT_EQ(dims.gemm_dtype, v1::FP8);
  EXPECT_EQ(dims.activation_dtype, v1::BF16);
  EXPECT_EQ(dims.mtp_layers, 1);
  // o_proj: 16384 x 7168 FP8 bytes + 128 x 56 block scales of 4 bytes.
  for (const model::Op& op : graph.layer) {
    if (op.name == "o_proj") {
      EXPECT_EQ(op.weight_bytes, 16384LL * 7168 + 128 * 56 * 4);
    }
  }
  // With its MTP module loaded: one more MoE layer, eh_proj and three norms.
  model::ModelDims mtp = dims;
  mtp.load_mtp = true;
  int64_t moe_layer = 0;
  for (const model::Op& op : graph.layer_kinds[1].ops) moe_layer += op.parameters;
  EXPECT_EQ(model::BuildGraph(mtp, model::FullModel(mtp)).TotalParameters(),
            671'026'419'200 + moe_layer + 2LL * 7168 * 7168 + 3 * 7168);
}

TEST(ModelZoo, KvCacheBytesPerTokenLatentAndGrouped) {
  // MLA caches the 512-wide latent and the 64-wide rotary key: (512 + 64) x
  // 61 layers x 2 bytes.
  EXPECT_EQ(KvBytesPerToken("deepseek_v3.json", v1::BF16), 70'272);
  // 4 KV heads x 128 x (K and V) x 94 layers x 2 bytes.
  EXPECT_EQ(KvBytesPerToken("qwen3_235b_a22b.json", v1::BF16), 192'512);
}

TEST(ModelGraph, ExpertGemmsRunAtEachExpertsRows) {
  const model::ModelDims dims = Load("qwen3_30b_a3b.json");
  const model::ModelGraph graph = model::BuildGraph(dims, model::FullModel(dims));
  const model::Op* up = nullptr;
  for (const model::Op& op : graph.layer) {
    if (op.name == "gate_up_proj") up = &op;
  }
  ASSERT_NE(up, nullptr);
  EXPECT_EQ(up->count, 128);
  EXPECT_EQ(up->total_experts, 128);
  EXPECT_EQ(up->top_k, 8);
  // Prefill of 4 x 1024 tokens: 32,768 token-expert rows over 128 experts,
  // all of them hit: 256 rows per expert GEMM, not 4096.
  const model::StepShape prefill = model::PrefillStep(4, 1024);
  EXPECT_DOUBLE_EQ(model::RowsPerKernel(*up, prefill), 256.0);
  EXPECT_EQ(model::OpFlops(*up, dims, prefill), 2.0 * 4096 * 8 * 2048 * 1536);
  // Decode of one sequence: 8 experts of 128 get one row each, and only
  // their weights are read; each runs one 16-row tile (vLLM's BLOCK_SIZE_M
  // for up to 32 tokens).
  const model::StepShape one = model::DecodeStep(1, 100);
  EXPECT_DOUBLE_EQ(model::ExpectedActiveExperts(*up, one), 8.0);
  EXPECT_DOUBLE_EQ(model::RowsPerKernel(*up, one), 16.0);
  EXPECT_DOUBLE_EQ(model::OpFlops(*up, dims, one), 2.0 * 8 * 16 * 2048 * 1536);
  EXPECT_EQ(model::OpMemoryBytes(*up, dims, one),
            8 * 2048LL * 1536 * 2 + (2048 + 1536) * 8 * 2);
  // The cost model puts a one-row expert GEMM far lower on the efficiency
  // curve than the whole step's rows would.
  v1::GpuSpec gpu;
  gpu.set_name("test");
  gpu.set_hbm_bandwidth_bytes_per_s(3.35e12);
  auto* rate = gpu.add_dense_throughput();
  rate->set_dtype(v1::BF16);
  rate->set_flops_per_s(989e12);
  v1::EfficiencyProfile profile = cost::DefaultProfile("test");
  profile.set_gemm_rows_half(64);
  const cost::CostModel model(gpu, dims, profile);
  // 64 x 1024 tokens: 4096 rows per expert GEMM, compute-bound.
  const cost::OpCost big = model.Op(*up, model::PrefillStep(64, 1024));
  EXPECT_EQ(big.bound, cost::Bound::kCompute);
  EXPECT_DOUBLE_EQ(big.efficiency, 0.75 * 4096 / (4096 + 64));
}

TEST(ModelGraph, GroupedGemmTilesFollowVllmsBlockSizeLadder) {
  EXPECT_EQ(model::GroupedGemmTileRows(1), 16);
  EXPECT_EQ(model::GroupedGemmTileRows(32), 16);
  EXPECT_EQ(model::GroupedGemmTileRows(33), 32);
  EXPECT_EQ(model::GroupedGemmTileRows(96), 32);
  EXPECT_EQ(model::GroupedGemmTileRows(512), 64);
  EXPECT_EQ(model::GroupedGemmTileRows(513), 128);
}

// An 8-expert op, top 2, all held here, `loads` its routing (empty: uniform).
model::Op EightExperts(std::vector<double> loads) {
  model::Op op;
  op.name = "gate_up_proj";
  op.kind = model::OpKind::kGemm;
  op.count = 8;
  op.total_experts = 8;
  op.top_k = 2;
  op.in_features = 1024;
  op.out_features = 512;
  op.expert_loads = std::move(loads);
  return op;
}

TEST(ModelGraph, AGroupedGemmRunsEachExpertsRowsInWholeTiles) {
  const model::ModelDims dims;
  // Uniform, 600 tokens (tile 128): 150 rows per expert, all active
  // (1 - (3/4)^600 = 1 in double), two tiles each: 8 x 256 rows.
  const model::StepShape step = model::DecodeStep(600, 10);
  const model::Op uniform = EightExperts({});
  EXPECT_DOUBLE_EQ(model::TiledRoutedRows(uniform, step), 8 * 256.0);
  EXPECT_DOUBLE_EQ(model::RowsPerKernel(uniform, step), 256.0);
  EXPECT_DOUBLE_EQ(model::OpFlops(uniform, dims, step), 2.0 * 8 * 256 * 1024 * 512);
  // A whole number of tiles is not rounded up: 512 tokens (tile 64), 128
  // rows per expert, two tiles each.
  EXPECT_DOUBLE_EQ(model::TiledRoutedRows(uniform, model::DecodeStep(512, 10)), 8 * 128.0);
  // The hot expert (share 1/2 of 2 x 600 slots: 600 rows, every token picks
  // it) runs ceil(600 / 128) = 5 tiles; the other seven share 600 rows,
  // 85.7 each, one tile each: 5 x 128 + 7 x 128, where the mean rows per
  // expert (150, two tiles each) would give 16 tiles.
  std::vector<double> hot(8, 0.5 / 7);
  hot[0] = 0.5;
  const model::Op skewed = EightExperts(hot);
  const double others_active = 1 - std::pow(1 - 2 * 0.5 / 7, 600.0);
  EXPECT_DOUBLE_EQ(model::TiledRoutedRows(skewed, step), 5 * 128.0 + 7 * others_active * 128);
  EXPECT_NEAR(model::TiledRoutedRows(skewed, step), 12 * 128.0, 1e-9);
  // One token: 2 experts of 8 active, one 16-row tile each.
  EXPECT_DOUBLE_EQ(model::TiledRoutedRows(uniform, model::DecodeStep(1, 10)), 2 * 16.0);
}

TEST(ModelGraph, LayersTimeCostsEachLayerKind) {
  const model::ModelDims dims = Load("deepseek_v3.json");
  const model::ModelGraph graph = model::BuildGraph(dims, model::FullModel(dims));
  v1::GpuSpec gpu;
  gpu.set_name("test");
  gpu.set_hbm_bandwidth_bytes_per_s(4.8e12);
  auto* rate = gpu.add_dense_throughput();
  rate->set_dtype(v1::FP8);
  rate->set_flops_per_s(1978.9e12);
  const cost::CostModel model(gpu, dims);
  const model::StepShape step = model::DecodeStep(64, 2048);
  const double dense = model.Time(graph.layer_kinds[0].ops, step);
  const double moe = model.Time(graph.layer_kinds[1].ops, step);
  // Layers 0-9: the 3 dense ones and 7 MoE layers.
  EXPECT_DOUBLE_EQ(model.LayersTime(graph, 0, 10, step), 3 * dense + 7 * moe);
  EXPECT_DOUBLE_EQ(model.LayersTime(graph, 10, 20, step), 20 * moe);
  EXPECT_LT(dense, moe);
}

TEST(ModelGraph, LatentAttentionDecodeIsAbsorbed) {
  const model::ModelDims dims = Load("deepseek_v3.json");
  const model::ModelGraph graph = model::BuildGraph(dims, model::FullModel(dims));
  const model::StepShape step = model::DecodeStep(2, 1000);
  for (const model::Op& op : graph.layer) {
    if (op.name != "attention") continue;
    // Absorbed decode: per head and key, scores over 512 + 64 values and the
    // weighted sum over the 512-wide latent: 2 x (2 x 512 + 64) FLOPs.
    EXPECT_EQ(model::OpFlops(op, dims, step), 2.0 * 2000 * 128 * (2 * 512 + 64));
    // Queries and outputs in the latent space (128 heads x 1088 values per
    // token), the latent cache read once for all heads: 576 x 2 bytes a token.
    EXPECT_EQ(model::OpMemoryBytes(op, dims, step),
              2 * 128 * 1088 * 2 + 576 * 2 * (2000 + 2));
    // Prefill decompresses K and V: per head and pair, 192-wide scores and a
    // 128-wide weighted sum.
    const model::StepShape prefill = model::PrefillStep(1, 4);
    EXPECT_EQ(model::OpFlops(op, dims, prefill), 2.0 * 10 * 128 * (192 + 128));
  }
}

TEST(ModelGraph, SlidingWindowCapsAttention) {
  const model::ModelDims dims = Load("gemma2_27b.json");
  const model::ModelGraph graph = model::BuildGraph(dims, model::FullModel(dims));
  ASSERT_EQ(graph.layer_kinds.size(), 2u);
  EXPECT_EQ(graph.layer_kinds[0].name, "dense sliding");  // even layers slide
  EXPECT_EQ(graph.layer_kinds[0].count, 23);
  EXPECT_EQ(graph.layer_kinds[1].count, 23);
  const model::Op* sliding = nullptr;
  for (const model::Op& op : graph.layer_kinds[0].ops) {
    if (op.name == "attention") sliding = &op;
  }
  ASSERT_NE(sliding, nullptr);
  EXPECT_EQ(sliding->window, 4096);
  // Decode at context 10,000 reads 4096 keys per head; a 5000-token prompt
  // attends to 1 + 2 + ... + 4096 keys, then 4096 each for 904 more tokens.
  EXPECT_EQ(model::OpFlops(*sliding, dims, model::DecodeStep(1, 10000)),
            4.0 * 4096 * 32 * 128);
  EXPECT_EQ(model::OpFlops(*sliding, dims, model::PrefillStep(1, 5000)),
            4.0 * (4096.0 * 4097 / 2 + 904.0 * 4096) * 32 * 128);
}

TEST(Precision, RecipesSetEveryTensorKind) {
  v1::ModelSpec spec;
  FieldLocator where;
  ASSERT_TRUE(model::ImportHuggingFaceConfig(
                  "{\"model_type\": \"llama\", \"num_hidden_layers\": 2, \"hidden_size\": 64,"
                  " \"num_attention_heads\": 4, \"intermediate_size\": 128,"
                  " \"vocab_size\": 10, \"torch_dtype\": \"bfloat16\"}",
                  "m.json", &spec, &where)
                  .ok());
  auto resolve = [&](const std::string& recipe) {
    v1::ModelSpec s = spec;
    s.mutable_precision()->set_recipe(recipe);
    return model::ResolveModel(s, where);
  };
  absl::StatusOr<model::ModelDims> fp8 = resolve("fp8");
  ASSERT_TRUE(fp8.ok()) << fp8.status();
  EXPECT_EQ(fp8->recipe, "fp8");
  EXPECT_EQ(fp8->weight_dtype, v1::FP8);
  EXPECT_EQ(fp8->gemm_dtype, v1::FP8);
  EXPECT_EQ(fp8->activation_dtype, v1::BF16);
  EXPECT_EQ(fp8->communication_dtype, v1::BF16);
  EXPECT_EQ(fp8->kv_cache_dtype, v1::BF16);
  // GEMMs at the FP8 tensor rate: the H100's 1,978.9 TFLOPS, not 989.4.
  v1::GpuSpec h100;
  h100.set_name("H100");
  for (auto [dtype, rate] : {std::pair{v1::BF16, 989.4e12}, std::pair{v1::FP8, 1978.9e12}}) {
    auto* t = h100.add_dense_throughput();
    t->set_dtype(dtype);
    t->set_flops_per_s(rate);
  }
  EXPECT_EQ(cost::CostModel(h100, *fp8).matrix_flops_per_s(), 1978.9e12);
  absl::StatusOr<model::ModelDims> awq = resolve("int4-awq");
  ASSERT_TRUE(awq.ok());
  EXPECT_EQ(awq->weight_dtype, v1::INT4);
  EXPECT_EQ(awq->gemm_dtype, v1::FP16);
  EXPECT_EQ(awq->quant_group_size, 128);
  absl::StatusOr<model::ModelDims> sq = resolve("int8-sq");
  ASSERT_TRUE(sq.ok());
  EXPECT_EQ(sq->gemm_dtype, v1::INT8);
  EXPECT_EQ(sq->quant_group_size, -1);
  // An FP8 KV cache on any recipe.
  v1::ModelSpec kv = spec;
  kv.mutable_precision()->set_recipe("int4-gptq");
  kv.mutable_precision()->set_kv_cache_dtype(v1::FP8);
  EXPECT_EQ(model::ResolveModel(kv, where)->kv_cache_dtype, v1::FP8);
  EXPECT_EQ(std::string(resolve("fp4").status().message()),
            "m.json: precision.recipe: unknown recipe 'fp4' (known: bf16, fp16, fp8, "
            "int4-awq, int4-gptq, int8-sq)");
  // Without a recipe the fields keep their old meaning.
  absl::StatusOr<model::ModelDims> plain = model::ResolveModel(spec, where);
  EXPECT_EQ(plain->recipe, "");
  EXPECT_EQ(plain->gemm_dtype, v1::BF16);
}

TEST(ModelZoo, KvCacheBytesPerTokenFp16) {
  EXPECT_EQ(KvBytesPerToken("llama2_7b.json", v1::FP16), 524'288);
  EXPECT_EQ(KvBytesPerToken("llama2_13b.textproto", v1::FP16), 819'200);
  EXPECT_EQ(KvBytesPerToken("llama2_70b.textproto", v1::FP16), 327'680);
  EXPECT_EQ(KvBytesPerToken("llama3_70b.textproto", v1::FP16), 327'680);
  EXPECT_EQ(KvBytesPerToken("llama3_8b.json", v1::FP16), 131'072);
  EXPECT_EQ(KvBytesPerToken("gpt3_175b.textproto", v1::FP16), 4'718'592);
}

TEST(ModelZoo, Llama3_8bBf16WeightBytesMatchVllm) {
  const model::ModelDims dims = Load("llama3_8b.json");
  EXPECT_EQ(dims.weight_dtype, v1::BF16);
  const int64_t bytes =
      model::BuildGraph(dims, model::FullModel(dims)).TotalWeightBytes();
  EXPECT_EQ(bytes, 16'060'522'496);
  // vLLM logs 14.96 GiB for the same weights.
  EXPECT_EQ(FormatBytes(bytes), "14.96 GiB");
}

TEST(ModelZoo, SeedExample) {
  const model::ModelDims dims = Load("seed_example.textproto");
  const model::ModelGraph graph = model::BuildGraph(dims, model::FullModel(dims));
  EXPECT_EQ(graph.TotalParameters(), 108'768'768);
  EXPECT_EQ(graph.TotalWeightBytes(), 435'075'072);
  // K and V for 512 tokens of one sequence, per layer and in all.
  const int64_t kv_layer = 512 * model::KvBytesPerTokenPerLayer(dims, dims.num_kv_heads);
  EXPECT_EQ(kv_layer, 3'145'728);
  EXPECT_EQ(12 * kv_layer, 37'748'736);
}

TEST(ModelZoo, QuantizedWeightsCarryGroupScales) {
  model::ModelDims dims = Load("llama2_7b.json");
  const int64_t bf16 =
      model::BuildGraph(dims, model::FullModel(dims)).TotalWeightBytes();
  dims.weight_dtype = v1::INT4;
  dims.activation_dtype = v1::FP16;
  dims.quant_group_size = 128;
  const model::ModelGraph graph = model::BuildGraph(dims, model::FullModel(dims));
  // Linear weights: 32 layers x (4 x 4096^2 + 3 x 4096 x 11008) parameters
  // at 4 bits, plus per group of 128 inputs and per output column one FP16
  // scale and one 4-bit zero; embeddings, head and norms stay FP16.
  const int64_t linear = 32 * (4 * 4096LL * 4096 + 3 * 4096LL * 11008);
  const int64_t groups_x_columns =
      32 * (4 * (4096 / 128) * 4096LL + 2 * (4096 / 128) * 11008LL +
            (11008 / 128) * 4096LL);
  const int64_t others = (2 * 32000LL * 4096 + 65 * 4096) * 2;
  EXPECT_EQ(graph.TotalWeightBytes(),
            linear / 2 + groups_x_columns * 2 + groups_x_columns / 2 + others);
  EXPECT_LT(graph.TotalWeightBytes(), bf16 / 3);
}

TEST(ModelGraph, TensorParallelShardHoldsItsShare) {
  const model::ModelDims dims = Load("llama3_70b.textproto");
  model::ShardDims shard = model::FullModel(dims);
  shard.attention_heads /= 8;
  shard.kv_heads /= 8;
  shard.ffn /= 8;
  shard.vocab /= 8;
  const model::ModelGraph full = model::BuildGraph(dims, model::FullModel(dims));
  const model::ModelGraph part = model::BuildGraph(dims, shard);
  // Everything but the 161 replicated RMSNorm weight vectors is split 8 ways.
  const int64_t norms = (2 * 80 + 1) * 8192;
  EXPECT_EQ(part.TotalParameters(), (full.TotalParameters() - norms) / 8 + norms);
}

TEST(ModelGraph, DecodeAttentionReadsTheKvCache) {
  const model::ModelDims dims = Load("llama2_7b.json");
  const model::ModelGraph graph = model::BuildGraph(dims, model::FullModel(dims));
  const model::StepShape step = model::DecodeStep(4, 1000);
  for (const model::Op& op : graph.layer) {
    if (op.name != "attention") continue;
    // 4 sequences x 1000 keys x 32 heads x 128 x 4 FLOPs.
    EXPECT_EQ(model::OpFlops(op, dims, step), 4.0 * 1000 * 32 * 128 * 4);
    // Q and output (4 tokens x 4096 x 2 bytes each), KV read for 4000
    // tokens and written for 4 (16 KiB per token per layer).
    EXPECT_EQ(model::OpMemoryBytes(op, dims, step),
              2 * 4 * 4096 * 2 + 16384LL * (4000 + 4));
  }
}

TEST(HuggingFaceImport, ErrorsNameTheFileLineAndKey) {
  v1::ModelSpec spec;
  FieldLocator where;
  absl::Status s = model::ImportHuggingFaceConfig(
      "{\n  \"model_type\": \"llama\",\n  \"hidden_size\": 4096,\n  \"oops\" 3\n}",
      "bad.json", &spec, &where);
  EXPECT_EQ(std::string(s.message()),
            "bad.json:4:10: malformed JSON: syntax error while parsing object "
            "separator - unexpected number literal; expected ':'");

  s = model::ImportHuggingFaceConfig("{\"model_type\": \"mamba\"}", "m.json",
                                     &spec, &where);
  EXPECT_EQ(std::string(s.message()),
            "m.json:1:2: model_type: unknown architecture 'mamba' (supported: "
            "llama, mistral, mixtral, qwen2, qwen2_moe, qwen3, qwen3_moe, deepseek_v2, "
            "deepseek_v3, gemma2, gemma3, gemma3_text, phi3, gpt2, gptj, opt, falcon, bert)");

  s = model::ImportHuggingFaceConfig(
      "{\"model_type\": \"llama\", \"hidden_size\": 4096}", "m.json", &spec,
      &where);
  EXPECT_EQ(std::string(s.message()),
            "m.json: num_hidden_layers: missing (required for model_type 'llama')");

  s = model::ImportHuggingFaceConfig(
      "{\"model_type\": \"gpt2\",\n \"n_layer\": \"twelve\"}", "m.json", &spec,
      &where);
  EXPECT_EQ(std::string(s.message()), "m.json:2:2: n_layer: expected an integer, got \"twelve\"");
}

TEST(HuggingFaceImport, RangeErrorsPointAtTheJsonKey) {
  v1::ModelSpec spec;
  FieldLocator where;
  ASSERT_TRUE(model::ImportHuggingFaceConfig(
                  "{\"model_type\": \"llama\",\n \"num_hidden_layers\": -2,\n"
                  " \"hidden_size\": 64, \"num_attention_heads\": 4,\n"
                  " \"intermediate_size\": 128, \"vocab_size\": 10}",
                  "neg.json", &spec, &where)
                  .ok());
  absl::StatusOr<model::ModelDims> dims = model::ResolveModel(spec, where);
  EXPECT_EQ(std::string(dims.status().message()),
            "neg.json:2:2: num_layers: must be positive, got -2");
}

absl::Status Import(const std::string& json, v1::ModelSpec* spec = nullptr) {
  v1::ModelSpec ignored;
  FieldLocator where;
  return model::ImportHuggingFaceConfig(json, "c.json", spec ? spec : &ignored, &where);
}

absl::StatusOr<model::ModelDims> ImportAndResolve(const std::string& json) {
  v1::ModelSpec spec;
  FieldLocator where;
  SHARDSIM_RETURN_IF_ERROR(model::ImportHuggingFaceConfig(json, "c.json", &spec, &where));
  return model::ResolveModel(spec, where);
}

constexpr char kLlama[] =
    "\"model_type\": \"llama\", \"num_hidden_layers\": 2, \"hidden_size\": 64, "
    "\"num_attention_heads\": 4, \"intermediate_size\": 128, \"vocab_size\": 10";

TEST(HuggingFaceImport, DtypeFromTorchDtypeOrDtypeElseBf16WithANote) {
  absl::StatusOr<model::ModelDims> dims =
      ImportAndResolve(absl::StrCat("{", kLlama, ", \"dtype\": \"float16\"}"));
  ASSERT_TRUE(dims.ok()) << dims.status();
  EXPECT_EQ(dims->weight_dtype, v1::FP16);
  EXPECT_TRUE(dims->notes.empty());
  // GPT-2's config.json has no dtype: it was silently FP32 before.
  dims = ImportAndResolve(absl::StrCat("{", kLlama, "}"));
  ASSERT_TRUE(dims.ok());
  EXPECT_EQ(dims->weight_dtype, v1::BF16);
  ASSERT_EQ(dims->notes.size(), 1u);
  EXPECT_EQ(dims->notes[0], "precision: the config.json gives neither torch_dtype nor dtype; "
                            "BF16 assumed, as serving runtimes load it");
  EXPECT_EQ(Load("gpt2.json").weight_dtype, v1::BF16);
}

TEST(HuggingFaceImport, QuantizationConfigs) {
  auto with = [](const std::string& q) {
    return ImportAndResolve(absl::StrCat("{", kLlama, ", \"torch_dtype\": \"float16\", "
                                         "\"quantization_config\": ", q, "}"));
  };
  absl::StatusOr<model::ModelDims> d = with("{\"quant_method\": \"fp8\"}");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->weight_dtype, v1::FP8);
  EXPECT_EQ(d->fp8_block_size, 0);  // one scale per tensor
  d = with("{\"quant_method\": \"gptq\", \"bits\": 4, \"group_size\": -1}");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->weight_dtype, v1::INT4);
  EXPECT_EQ(d->quant_group_size, -1);  // was silently 128 before
  EXPECT_EQ(d->gemm_dtype, v1::FP16);
  d = with("{\"quant_method\": \"awq\", \"w_bit\": 4, \"q_group_size\": 64}");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->quant_group_size, 64);
  // llm-compressor's W4A16 and W8A8 INT8 schemes.
  d = with("{\"quant_method\": \"compressed-tensors\", \"config_groups\": {\"group_0\": "
           "{\"weights\": {\"num_bits\": 4, \"type\": \"int\", \"strategy\": \"group\", "
           "\"group_size\": 128}, \"input_activations\": null, \"targets\": [\"Linear\"]}}}");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->weight_dtype, v1::INT4);
  EXPECT_EQ(d->gemm_dtype, v1::FP16);
  d = with("{\"quant_method\": \"compressed-tensors\", \"config_groups\": {\"group_0\": "
           "{\"weights\": {\"num_bits\": 8, \"type\": \"int\", \"strategy\": \"channel\"}, "
           "\"input_activations\": {\"num_bits\": 8, \"type\": \"int\", \"strategy\": "
           "\"token\", \"dynamic\": true}}}}");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->weight_dtype, v1::INT8);
  EXPECT_EQ(d->gemm_dtype, v1::INT8);
  EXPECT_EQ(d->quant_group_size, -1);
  // FP8 W8A8 with block scales, and FP8 weights with 16-bit inputs.
  d = with("{\"quant_method\": \"compressed-tensors\", \"config_groups\": {\"group_0\": "
           "{\"weights\": {\"num_bits\": 8, \"type\": \"float\", \"strategy\": \"block\", "
           "\"block_structure\": [128, 128]}, \"input_activations\": {\"num_bits\": 8, "
           "\"type\": \"float\"}}}}");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->weight_dtype, v1::FP8);
  EXPECT_EQ(d->fp8_block_size, 128);
  EXPECT_EQ(d->gemm_dtype, v1::FP8);
  d = with("{\"quant_method\": \"compressed-tensors\", \"config_groups\": {\"group_0\": "
           "{\"weights\": {\"num_bits\": 8, \"type\": \"float\", \"strategy\": "
           "\"channel\"}}}}");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->fp8_block_size, -1);
  EXPECT_EQ(d->gemm_dtype, v1::FP16);  // the checkpoint's float16
  EXPECT_EQ(std::string(with("{\"quant_method\": \"bitsandbytes\"}").status().message()),
            "c.json:1:188: quant_method: unknown quantization 'bitsandbytes' (known: fp8, "
            "gptq, awq, compressed-tensors)");
}

TEST(HuggingFaceImport, EveryJsonExceptionIsOneLine) {
  // A number past the double range threw an uncaught out_of_range.
  EXPECT_EQ(std::string(Import("{\"model_type\":\"llama\",\"num_hidden_layers\":1e400}")
                            .message()),
            "c.json: malformed JSON: number overflow parsing '1e400'");
  EXPECT_FALSE(Import("1e400z").ok());
  // 100,000 nested '[' under a read key overflowed the stack in dump().
  const std::string deep = absl::StrCat("{", kLlama, ", \"tie_word_embeddings\": ",
                                        std::string(100000, '['), std::string(100000, ']'), "}");
  EXPECT_EQ(std::string(Import(deep).message()),
            "c.json:1:138: tie_word_embeddings: expected true or false, got an array");
  // Names from the file are cut at 40 characters.
  EXPECT_EQ(std::string(Import(absl::StrCat("{", kLlama, ", \"torch_dtype\": \"",
                                            std::string(100000, 'x'), "\"}"))
                            .message()),
            absl::StrCat("c.json:1:138: torch_dtype: unknown dtype '", std::string(40, 'x'),
                         "...' (expected float32, bfloat16 or float16)"));
  // Values are quoted as written.
  EXPECT_EQ(std::string(Import(absl::StrCat("{", kLlama, ", \"torch_dtype\": 7}")).message()),
            "c.json:1:138: torch_dtype: expected a string, got 7");
  // An unsigned value past int64 wrapped to a negative size.
  EXPECT_EQ(std::string(Import("{\"model_type\": \"llama\", \"num_hidden_layers\": "
                               "18446744073709551615}")
                            .message()),
            "c.json:1:25: num_hidden_layers: 18446744073709551615 is implausibly large");
}

TEST(HuggingFaceImport, NoSignedOverflowInDerivedDefaults) {
  // 4 x n_embd overflowed (undefined behaviour) and blamed ffn_hidden_size.
  EXPECT_EQ(std::string(Import("{\"model_type\": \"gpt2\", \"n_layer\": 1, \"n_embd\": "
                               "4611686018427387904, \"n_head\": 1, \"vocab_size\": 1, "
                               "\"n_positions\": 1}")
                            .message()),
            "c.json:1:38: n_embd: 4611686018427387904 is not a plausible size (1 to 16777216)");
  EXPECT_FALSE(Import("{\"model_type\": \"falcon\", \"num_hidden_layers\": 1, \"hidden_size\": "
                      "4611686018427387904, \"num_attention_heads\": 1, \"vocab_size\": 1}")
                   .ok());
  EXPECT_FALSE(Import("{\"model_type\": \"gptj\", \"n_layer\": 1, \"n_embd\": "
                      "4611686018427387904, \"n_head\": 1, \"vocab_size\": 1}")
                   .ok());
}

TEST(HuggingFaceImport, ImplausibleValuesAreRefused) {
  EXPECT_EQ(std::string(Import(absl::StrCat("{", kLlama, ", \"num_key_value_heads\": 0}"))
                            .message()),
            "c.json:1:138: num_key_value_heads: must be positive, got 0");
  EXPECT_EQ(std::string(Import("{\"model_type\": \"falcon\", \"num_hidden_layers\": 1, "
                               "\"hidden_size\": 64, \"num_attention_heads\": 4, \"vocab_size\": "
                               "10, \"new_decoder_architecture\": true, \"num_kv_heads\": 2, "
                               "\"num_ln_in_parallel_attn\": 4294967298}")
                            .message()),
            "c.json:1:166: num_ln_in_parallel_attn: must be 1 or 2 (norms before the "
            "parallel attention and MLP), got 4294967298");
  v1::ModelSpec spec;
  spec.set_num_layers(1);
  spec.set_hidden_size(64);
  spec.set_num_attention_heads(4);
  spec.set_ffn_hidden_size(128);
  spec.set_vocab_size(10);
  spec.set_norms_per_layer(2147483647);
  FieldLocator where("m.textproto");
  EXPECT_EQ(std::string(model::ResolveModel(spec, where).status().message()),
            "m.textproto: norms_per_layer: 2147483647 is implausibly many (at most 8; "
            "Gemma-2 has 4)");
  spec.set_norms_per_layer(0);
  spec.set_num_experts(8);
  spec.set_experts_per_token(9);
  EXPECT_EQ(std::string(model::ResolveModel(spec, where).status().message()),
            "m.textproto: experts_per_token: top-k of 9 is more than the 8 routed experts");
}

TEST(HuggingFaceImport, NewArchitectures) {
  // Qwen2-MoE: a gated shared expert beside 60 routed ones.
  absl::StatusOr<model::ModelDims> d = ImportAndResolve(
      "{\"model_type\": \"qwen2_moe\", \"num_hidden_layers\": 24, \"hidden_size\": 2048, "
      "\"num_attention_heads\": 16, \"num_key_value_heads\": 16, \"intermediate_size\": 5632, "
      "\"moe_intermediate_size\": 1408, \"shared_expert_intermediate_size\": 5632, "
      "\"num_experts\": 60, \"num_experts_per_tok\": 4, \"vocab_size\": 151936, "
      "\"torch_dtype\": \"bfloat16\"}");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->num_shared_experts, 1);
  EXPECT_TRUE(d->shared_expert_gate);
  EXPECT_TRUE(d->qkv_bias);
  // Qwen1.5-MoE-A2.7B: 14,315,784,192 parameters as transformers counts them.
  EXPECT_EQ(model::BuildGraph(*d, model::FullModel(*d)).TotalParameters(), 14'315'784'192);
  // DeepSeek-V2-Lite: no query LoRA (q_lora_rank null), two shared experts,
  // one dense layer first: 15,706,484,224 parameters as transformers counts.
  d = ImportAndResolve(
      "{\"model_type\": \"deepseek_v2\", \"hidden_size\": 2048, \"num_hidden_layers\": 27, "
      "\"num_attention_heads\": 16, \"num_key_value_heads\": 16, \"q_lora_rank\": null, "
      "\"kv_lora_rank\": 512, \"qk_rope_head_dim\": 64, \"qk_nope_head_dim\": 128, "
      "\"v_head_dim\": 128, \"intermediate_size\": 10944, \"moe_intermediate_size\": 1408, "
      "\"n_routed_experts\": 64, \"n_shared_experts\": 2, \"num_experts_per_tok\": 6, "
      "\"first_k_dense_replace\": 1, \"moe_layer_freq\": 1, \"vocab_size\": 102400, "
      "\"topk_method\": \"greedy\", \"torch_dtype\": \"bfloat16\"}");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->q_lora_rank, 0);
  EXPECT_FALSE(d->router_bias);
  EXPECT_EQ(model::BuildGraph(*d, model::FullModel(*d)).TotalParameters(), 15'706'484'224);
  // Qwen3-MoE's mlp_only_layers and decoder_sparse_step pick dense layers.
  d = ImportAndResolve(
      "{\"model_type\": \"qwen3_moe\", \"num_hidden_layers\": 6, \"hidden_size\": 64, "
      "\"num_attention_heads\": 4, \"num_key_value_heads\": 2, \"intermediate_size\": 128, "
      "\"moe_intermediate_size\": 32, \"num_experts\": 8, \"num_experts_per_tok\": 2, "
      "\"decoder_sparse_step\": 2, \"mlp_only_layers\": [3], \"vocab_size\": 10}");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(model::BuildGraph(*d, model::FullModel(*d)).KindCounts(0, 6),
            (std::vector<int64_t>{4, 2}));  // layers 1 and 5 are MoE
  // Gemma-3's multimodal config: the language model in text_config, with
  // Gemma3TextConfig's defaults for what it leaves out.
  d = ImportAndResolve(
      "{\"model_type\": \"gemma3\", \"torch_dtype\": \"bfloat16\", \"text_config\": {"
      "\"model_type\": \"gemma3_text\", \"hidden_size\": 5376, \"intermediate_size\": 21504, "
      "\"num_hidden_layers\": 62, \"num_attention_heads\": 32, \"num_key_value_heads\": 16, "
      "\"head_dim\": 128, \"sliding_window\": 1024}, \"vision_config\": {}}");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->vocab_size, 262208);
  EXPECT_EQ(d->sliding_window, 1024);
  EXPECT_EQ(d->sliding_window_period, 6);
  EXPECT_TRUE(d->qk_norm);
  EXPECT_EQ(d->notes.size(), 1u);
  // transformers 4.53's layer_types list says which layers slide.
  d = ImportAndResolve(absl::StrCat(
      "{", kLlama, ", \"model_type\": \"gemma2\", \"sliding_window\": 512, "
      "\"layer_types\": [\"sliding_attention\", \"full_attention\"]}"));
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->sliding_window_period, 2);
  EXPECT_EQ(std::string(Import(absl::StrCat(
                                   "{", kLlama, ", \"layer_types\": [\"full_attention\", "
                                   "\"sliding_attention\"], \"sliding_window\": 8}"))
                            .message()),
            "c.json:1:138: layer_types: only a full-attention layer at the end of every N "
            "layers is supported");
  // An error inside a nested object points at the key there, not at the
  // first key of that name in the file.
  EXPECT_EQ(std::string(Import("{\"model_type\": \"gemma3\",\n\"vision_config\": "
                               "{\"hidden_size\": 1152},\n\"text_config\": {\"num_hidden_layers\": 2,"
                               "\n\"hidden_size\": \"big\"}}")
                            .message()),
            "c.json:4:1: hidden_size: expected an integer, got \"big\"");
  // Mistral-7B-v0.1 slides every layer over 4096 tokens.
  EXPECT_EQ(Load("mistral_7b.json").sliding_window, 4096);
  // Phi-3-mini.
  d = ImportAndResolve(
      "{\"model_type\": \"phi3\", \"num_hidden_layers\": 32, \"hidden_size\": 3072, "
      "\"num_attention_heads\": 32, \"num_key_value_heads\": 32, \"intermediate_size\": 8192, "
      "\"vocab_size\": 32064, \"sliding_window\": 2047, \"torch_dtype\": \"bfloat16\"}");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(model::BuildGraph(*d, model::FullModel(*d)).TotalParameters(), 3'821'079'552);
}

}  // namespace
}  // namespace shardsim
