// Parameter counts, KV-cache sizes and weight bytes of the model zoo, checked
// against the exact figures derived from each model's published config.
#include <string>

#include "gtest/gtest.h"
#include "sim/base/units.h"
#include "sim/model/graph.h"
#include "sim/model/hf_import.h"
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

}  // namespace
}  // namespace shardsim
