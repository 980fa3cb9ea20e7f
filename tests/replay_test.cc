// The replay against what must hold exactly: a tp=1 decode step is the sum
// of its op times, tp=8 communicates and holds an eighth of the weights, and
// the replay's peak memory is what `shardsim memory` reports. Each test runs
// one replay (one SimGrid engine per process).
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "sim/cost/roofline.h"
#include "sim/engine/static_batch.h"
#include "sim/memory/ledger.h"
#include "sim/model/graph.h"
#include "sim/scenario/scenario.h"

namespace shardsim {
namespace {

scenario::LoadedScenario Load(const std::string& path,
                              const std::vector<std::string>& overrides) {
  absl::StatusOr<scenario::LoadedScenario> loaded =
      scenario::LoadScenario(path, overrides);
  EXPECT_TRUE(loaded.ok()) << loaded.status();
  return *std::move(loaded);
}

v1::RunReport Replay(const scenario::LoadedScenario& loaded) {
  absl::StatusOr<v1::RunReport> report = engine::RunStaticBatch(loaded, loaded.scenario.workload(), {});
  EXPECT_TRUE(report.ok()) << report.status();
  return *std::move(report);
}

TEST(Replay, Tp1DecodeStepIsTheSumOfItsOps) {
  const scenario::LoadedScenario s =
      Load("scenarios/llama3_8b_one_gpu.textproto",
           {"workload.batch_size=8", "workload.prompt_len=100", "workload.output_len=2"});
  const v1::RunReport report = Replay(s);
  const model::ModelGraph graph = model::BuildGraph(s.model, s.plan.shard);
  const cost::CostModel cost(s.cluster.gpu, s.model, s.cluster.profile);
  // The one decode step: 8 sequences, each now attending to 101 tokens.
  const model::StepShape step = model::DecodeStep(8, 101);
  const double expected = cost.Time(graph.embedding, step) +
                          32 * cost.Time(graph.layer, step) +
                          cost.Time(graph.tail, step);
  EXPECT_NEAR(report.tpot().mean_s(), expected, 1e-12);
  EXPECT_EQ(report.gpus(0).comm_s(), 0);
  EXPECT_EQ(report.distinct_collectives(), 0);
  const model::StepShape prefill = model::PrefillStep(8, 100);
  EXPECT_NEAR(report.ttft().mean_s(),
              cost.Time(graph.embedding, prefill) + 32 * cost.Time(graph.layer, prefill) +
                  cost.Time(graph.tail, prefill),
              1e-12);
  EXPECT_EQ(report.output_tokens(), 16);
}

TEST(Replay, Tp8CommunicatesAndHoldsAnEighthOfTheWeights) {
  const scenario::LoadedScenario s =
      Load("scenarios/default.textproto", {"workload.output_len=4"});
  const v1::RunReport report = Replay(s);
  ASSERT_EQ(report.gpus_size(), 8);
  const model::ModelGraph full = model::BuildGraph(s.model, model::FullModel(s.model));
  const int64_t norms = (2 * 80 + 1) * 8192 * 2;  // replicated RMSNorm weights
  for (const v1::GpuRun& gpu : report.gpus()) {
    EXPECT_GT(gpu.comm_s(), 0);
    EXPECT_EQ(gpu.peak_memory().weights_bytes(),
              (full.TotalWeightBytes() - norms) / 8 + norms);
  }
  EXPECT_GT(report.comm_overhead(), 0);
  // Per step: 80 layers x 2 all-reduces + the embedding's, and the logits.
  EXPECT_EQ(report.collectives_replayed(), 4 * (80 * 2 + 1 + 1));
}

TEST(Replay, PeakMemoryAgreesWithTheMemoryCommand) {
  const scenario::LoadedScenario s =
      Load("scenarios/default.textproto",
           {"parallelism.tp=4", "parallelism.pp=2", "workload.output_len=32"});
  const v1::RunReport run = Replay(s);
  const v1::MemoryReport memory = memory::ComputeMemoryReport(s, s.scenario.workload());
  ASSERT_EQ(run.gpus_size(), memory.gpus_size());
  for (int i = 0; i < run.gpus_size(); ++i) {
    const v1::MemoryBreakdown& a = run.gpus(i).peak_memory();
    const v1::MemoryBreakdown& b = memory.gpus(i).memory();
    EXPECT_EQ(a.SerializeAsString(), b.SerializeAsString()) << "GPU " << i;
    // Weights + KV at the last step + activation peak + overheads.
    EXPECT_EQ(a.total_bytes(), a.weights_bytes() + a.kv_cache_reserved_bytes() +
                                   a.activation_peak_bytes() + a.comm_buffer_bytes() +
                                   a.runtime_overhead_bytes());
  }
}

TEST(Replay, PipelineOverlapsMicroBatches) {
  // Two stages, two micro-batches: the prefill takes less than two full
  // passes, because stage 1 works on micro-batch 0 while stage 0 does 1.
  const scenario::LoadedScenario s =
      Load("scenarios/default.textproto",
           {"parallelism.tp=4", "parallelism.pp=2", "workload.output_len=1"});
  const v1::RunReport report = Replay(s);
  double busy = 0;
  for (const v1::GpuRun& gpu : report.gpus()) busy = std::max(busy, gpu.compute_s() + gpu.comm_s());
  EXPECT_LT(report.total_s(), 2 * busy);
  EXPECT_GT(report.total_s(), busy);
  EXPECT_GT(report.gpus(0).idle_s(), 0);  // the bubble
}

TEST(Replay, DoesNotFitIsStillReported) {
  const v1::RunReport report = Replay(
      Load("scenarios/llama2_70b_one_gpu.textproto", {"workload.output_len=3"}));
  EXPECT_FALSE(report.fits());
  EXPECT_EQ(report.gpus(0).overflow_component(), "weights");
  EXPECT_GT(report.total_s(), 0);
  ASSERT_GE(report.notes_size(), 1);
  EXPECT_EQ(report.notes(0).rfind("does not fit: GPU 0 needs", 0), 0u) << report.notes(0);
}

}  // namespace
}  // namespace shardsim
