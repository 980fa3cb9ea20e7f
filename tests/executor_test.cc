// The step executor and the batch shapes it runs, against closed forms:
//   * a hand-built program on GPUs behind one switch: each step takes its
//     ops' roofline times plus its all-reduces in closed form;
//   * a collective size first met late in a run is simulated then;
//   * two groups meeting the same new collective at once simulate it once;
//   * a mixed step (a prefill chunk at an offset and decodes at their own
//     contexts) costs each op its closed-form roofline of that batch, with
//     attention summing per-sequence terms.
// Each simulation test runs in its own process (one SimGrid engine each).
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "simgrid/s4u.hpp"
#include "sim/base/config_file.h"
#include "sim/base/units.h"
#include "sim/cost/roofline.h"
#include "sim/engine/executor.h"
#include "sim/hardware/platform_builder.h"
#include "sim/model/graph.h"
#include "sim/parallel/program.h"
#include "sim/scenario/scenario.h"

namespace shardsim {
namespace {

namespace s4u = simgrid::s4u;

constexpr double kLinkBandwidth = 100e9;  // bytes/s per direction
constexpr double kLinkLatency = 1e-6;
constexpr double kLaunch = 10e-6;         // collective launch
constexpr double kStepLatency = 2e-6;     // per ring phase
constexpr double kEfficiency = 0.5;       // of the link bandwidth
constexpr double kHbm = 2e12;
constexpr double kBf16Flops = 1e15;
constexpr double kPcie = 32e9;            // bytes/s per direction, GPU <-> host memory

// Four GPUs, each one link from a switch; a collective tuning with a launch,
// a step latency and an efficiency, so each appears in the closed form.
hardware::Cluster SwitchedCluster() {
  v1::Topology topology;
  topology.set_name("switched");
  topology.set_gpus_per_node(4);
  for (int g = 0; g < 4; ++g) {
    v1::Link* link = topology.add_links();
    link->set_a(absl::StrCat("gpu", g));
    link->set_b("switch");
    link->set_bandwidth_bytes_per_s(kLinkBandwidth);
    link->set_latency_s(kLinkLatency);
  }
  v1::GpuSpec gpu;
  gpu.set_name("test-gpu");
  gpu.set_capacity_bytes(80 * kGiB);
  gpu.set_hbm_bandwidth_bytes_per_s(kHbm);
  gpu.set_pcie_bandwidth_bytes_per_s(kPcie);
  v1::DTypeThroughput* bf16 = gpu.add_dense_throughput();
  bf16->set_dtype(v1::BF16);
  bf16->set_flops_per_s(kBf16Flops);
  absl::StatusOr<hardware::Cluster> cluster =
      hardware::BuildCluster(topology, gpu, FieldLocator());
  EXPECT_TRUE(cluster.ok()) << cluster.status();
  cluster->collectives.set_launch_s(kLaunch);
  cluster->collectives.set_step_latency_s(kStepLatency);
  cluster->collectives.set_bandwidth_efficiency(kEfficiency);
  return *cluster;
}

model::ModelDims Dims() {
  model::ModelDims dims;
  dims.name = "hand-built";
  dims.hidden_size = 4096;
  return dims;
}

// A 4096 x 4096 BF16 GEMM.
model::Op Gemm() {
  model::Op op;
  op.name = "proj";
  op.kind = model::OpKind::kGemm;
  op.in_features = 4096;
  op.out_features = 4096;
  op.parameters = 4096 * 4096;
  op.weight_bytes = 2 * 4096 * 4096;
  return op;
}

// A stage on `gpus` running `layers` x (the GEMM, then an all-reduce of the
// hidden states).
parallel::StageProgram Stage(int replica, std::vector<int> gpus, int64_t layers) {
  parallel::StageProgram stage;
  stage.replica = replica;
  stage.gpus = std::move(gpus);
  parallel::Block block{"layers", 0, layers, {}};
  parallel::Instruction compute;
  compute.op = Gemm();
  block.instructions.push_back(compute);
  parallel::Instruction all_reduce;
  all_reduce.type = parallel::Instruction::Type::kCollective;
  all_reduce.comm.name = "all_reduce";
  all_reduce.comm.kind = parallel::CommKind::kAllReduce;
  all_reduce.comm.rows = parallel::PayloadRows::kNewTokens;
  all_reduce.comm.row_elements = 4096;
  all_reduce.comm.dtype = v1::BF16;
  block.instructions.push_back(all_reduce);
  stage.blocks.push_back(block);
  return stage;
}

// The GEMM's roofline under the default profile (0.75 of peak compute with
// no rows_half, 0.80 of HBM, 3 us launch): FLOPs 2 x rows x in x out; bytes
// the weights plus rows x (in + out) BF16 activations.
double GemmTime(int64_t rows) {
  const double flops = 2.0 * static_cast<double>(rows) * 4096 * 4096;
  const double bytes = 2.0 * 4096 * 4096 + 2.0 * static_cast<double>(rows) * (4096 + 4096);
  return std::max(flops / (kBf16Flops * 0.75), bytes / (kHbm * 0.80)) + 3e-6;
}

// A ring all-reduce over two GPUs: the launch, then 2(N-1) = 2 phases, each
// its step latency plus one flow of half the buffer (at kEfficiency) over
// two links (GPU -> switch -> GPU).
double TwoGpuAllReduce(int64_t bytes) {
  const double share = static_cast<double>(bytes) / 2;
  return kLaunch + 2 * (kStepLatency + 2 * kLinkLatency + share / kEfficiency / kLinkBandwidth);
}

struct Harness {
  explicit Harness(std::vector<parallel::StageProgram> stages)
      : cluster(SwitchedCluster()), dims(Dims()), cost(cluster.gpu, dims) {
    program.stages = std::move(stages);
    int argc = 1;
    char name[] = "executor_test";
    char* argv[] = {name, nullptr};
    engine = std::make_unique<s4u::Engine>(&argc, argv);
    platform = hardware::BuildPlatform(cluster, engine.get());
    std::vector<std::vector<int>> groups;
    for (const parallel::StageProgram& s : program.stages) groups.push_back(s.gpus);
    executor = std::make_unique<engine::Executor>(cluster, platform, cost, program, groups,
                                                  engine::Algorithm::kRing);
  }
  hardware::Cluster cluster;
  model::ModelDims dims;
  cost::CostModel cost;
  parallel::Program program;
  std::unique_ptr<s4u::Engine> engine;
  hardware::Platform platform;
  std::unique_ptr<engine::Executor> executor;
};

TEST(Executor, HandBuiltProgramTakesItsOpsAndAllReducesInClosedForm) {
  Harness h({Stage(0, {0, 1}, 3)});
  const model::StepShape shape = model::DecodeStep(16, 100);
  double elapsed = -1;
  engine::StageStepTime time;
  s4u::Actor::create("stage", h.platform.gpus[0], [&] {
    time = h.executor->RunStageStep(h.program.stages[0], shape);
    elapsed = s4u::Engine::get_clock();
  });
  h.engine->run();
  const int64_t bytes = 16 * 4096 * 2;
  EXPECT_DOUBLE_EQ(time.compute_s, 3 * GemmTime(16));
  EXPECT_NEAR(time.comm_s, 3 * TwoGpuAllReduce(bytes), 1e-15);
  EXPECT_NEAR(elapsed, 3 * GemmTime(16) + 3 * TwoGpuAllReduce(bytes), 1e-12);
  EXPECT_EQ(time.collectives, 3);
  EXPECT_EQ(h.executor->distinct_collectives(), 1);
  EXPECT_EQ(h.executor->flows(), 2 * 2);  // two phases, one flow each way
}

TEST(Executor, ACollectiveFirstMetLateIsSimulatedThen) {
  Harness h({Stage(0, {0, 1}, 2)});
  const model::StepShape decode = model::DecodeStep(16, 100);
  const model::StepShape prefill = model::PrefillStep(1, 512);  // a new size, late
  std::vector<double> ends;
  s4u::Actor::create("stage", h.platform.gpus[0], [&] {
    for (const model::StepShape& shape : {decode, decode, prefill, prefill}) {
      h.executor->RunStageStep(h.program.stages[0], shape);
      ends.push_back(s4u::Engine::get_clock());
    }
  });
  h.engine->run();
  ASSERT_EQ(ends.size(), 4u);
  const double decode_step = 2 * GemmTime(16) + 2 * TwoGpuAllReduce(16 * 4096 * 2);
  const double prefill_step = 2 * GemmTime(512) + 2 * TwoGpuAllReduce(512 * 4096 * 2);
  EXPECT_NEAR(ends[1], 2 * decode_step, 1e-12);
  EXPECT_NEAR(ends[2] - ends[1], prefill_step, 1e-12);  // simulated as flows here
  EXPECT_NEAR(ends[3] - ends[2], prefill_step, 1e-12);  // from the cache
  EXPECT_EQ(h.executor->distinct_collectives(), 2);
  EXPECT_EQ(h.executor->flows(), 2 * (2 * 2));  // each size simulated once
}

TEST(Executor, GroupsMeetingANewCollectiveTogetherSimulateItOnce) {
  // Two replicas on disjoint GPU pairs start together and meet the same
  // all-reduce: one simulation (both groups' flows at once), both wait for it.
  Harness h({Stage(0, {0, 1}, 1), Stage(1, {2, 3}, 1)});
  const model::StepShape shape = model::DecodeStep(8, 10);
  std::vector<double> ends(2, -1);
  for (int r = 0; r < 2; ++r) {
    s4u::Actor::create("stage", h.platform.gpus[static_cast<size_t>(2 * r)], [&, r] {
      h.executor->RunStageStep(h.program.stages[static_cast<size_t>(r)], shape);
      ends[static_cast<size_t>(r)] = s4u::Engine::get_clock();
    });
  }
  h.engine->run();
  const double step = GemmTime(8) + TwoGpuAllReduce(8 * 4096 * 2);
  EXPECT_NEAR(ends[0], step, 1e-12);
  EXPECT_NEAR(ends[1], step, 1e-12);
  EXPECT_EQ(h.executor->distinct_collectives(), 1);
  EXPECT_EQ(h.executor->flows(), 2 * 4);  // two phases, both groups' flows
}

TEST(Executor, PipelineHandOffArrivesAfterItsFlowsAndIsMemoized) {
  // Stage 0 on GPU 0 hands its hidden states to stage 1 on GPU 1: the p2p
  // launch, then one flow at the p2p efficiency; the second is memoized.
  parallel::StageProgram first = Stage(0, {0}, 1);
  first.blocks.clear();
  first.to_next_stage = parallel::Communication{
      "activations", parallel::CommKind::kSendRecv, parallel::PayloadRows::kNewTokens, 4096,
      v1::BF16};
  parallel::StageProgram second = Stage(0, {1}, 1);
  second.stage = 1;
  second.blocks.clear();
  Harness h({first, second});
  h.program.pp = 2;
  h.cluster.collectives.set_p2p_launch_s(5e-6);
  h.cluster.collectives.set_p2p_bandwidth_efficiency(0.8);
  const model::StepShape shape = model::DecodeStep(32, 10);
  std::vector<double> arrivals;
  s4u::Actor::create("sender", h.platform.gpus[0], [&] {
    h.executor->Send(h.program.stages[0], shape, 0, false);
    s4u::this_actor::sleep_for(1.0);  // long after the first has arrived
    h.executor->Send(h.program.stages[0], shape, 0, false);
  });
  s4u::Actor::create("receiver", h.platform.gpus[1], [&] {
    for (int i = 0; i < 2; ++i) {
      h.executor->Receive(0, 1, 0);
      arrivals.push_back(s4u::Engine::get_clock());
    }
  });
  h.engine->run();
  const double bytes = 32 * 4096 * 2;
  const double transfer = 5e-6 + 2 * kLinkLatency + bytes / 0.8 / kLinkBandwidth;
  ASSERT_EQ(arrivals.size(), 2u);
  EXPECT_NEAR(arrivals[0], transfer, 1e-12);
  EXPECT_NEAR(arrivals[1], 1.0 + transfer, 1e-12);
  EXPECT_EQ(h.executor->flows(), 1);
}

TEST(Executor, ASwapCopiesEachGpusShareOverItsPcieLinkInClosedForm) {
  // Both GPUs of the stage copy at once, each alone on its own PCIe link:
  // latency + bytes / bandwidth, out and back.
  Harness h({Stage(0, {0, 1}, 1)});
  double out = -1, back = -1;
  s4u::Actor::create("stage", h.platform.gpus[0], [&] {
    out = h.executor->Swap(h.program.stages[0], int64_t{1} << 30, /*to_host=*/true);
    back = h.executor->Swap(h.program.stages[0], int64_t{1} << 20, /*to_host=*/false);
  });
  h.engine->run();
  ASSERT_EQ(h.platform.host_memory.size(), 1u);
  EXPECT_NEAR(out, hardware::kHostLinkLatencyS + static_cast<double>(int64_t{1} << 30) / kPcie,
              1e-12);
  EXPECT_NEAR(back, hardware::kHostLinkLatencyS + static_cast<double>(int64_t{1} << 20) / kPcie,
              1e-12);
  EXPECT_EQ(h.executor->flows(), 4);
}

TEST(Executor, StagesMeetingNewCollectivesTogetherMeasureThemOneAtATime) {
  // Two pipeline stages start together and meet two different new
  // all-reduce sizes: each is simulated alone (both groups' flows, but not
  // the other size's), so each step takes its closed form.
  Harness h({Stage(0, {0, 1}, 3), Stage(1, {2, 3}, 3)});
  const int64_t rows[] = {8, 16};
  std::vector<double> ends(2, -1);
  for (int s = 0; s < 2; ++s) {
    s4u::Actor::create("stage", h.platform.gpus[static_cast<size_t>(2 * s)], [&, s] {
      h.executor->RunStageStep(h.program.stages[static_cast<size_t>(s)],
                               model::DecodeStep(rows[s], 10));
      ends[static_cast<size_t>(s)] = s4u::Engine::get_clock();
    });
  }
  h.engine->run();
  for (int s = 0; s < 2; ++s) {
    EXPECT_NEAR(ends[static_cast<size_t>(s)],
                3 * GemmTime(rows[s]) + 3 * TwoGpuAllReduce(rows[s] * 4096 * 2), 1e-12)
        << "stage " << s;
  }
  EXPECT_EQ(h.executor->distinct_collectives(), 2);
}

TEST(Executor, AnAllToAllOverTheExpertGroupIsOnePhaseInClosedForm) {
  // Four GPUs in one expert group: each sends B/4 to its three peers at once,
  // so its link to the switch carries three flows each way.
  parallel::StageProgram stage = Stage(0, {0}, 2);
  stage.expert_gpus = {0, 1, 2, 3};
  parallel::Instruction& a2a = stage.blocks[0].instructions[1];
  a2a.comm.kind = parallel::CommKind::kAllToAll;
  a2a.comm.expert_group = true;
  Harness h({stage});
  const model::StepShape shape = model::DecodeStep(64, 10);
  double elapsed = -1;
  s4u::Actor::create("stage", h.platform.gpus[0], [&] {
    h.executor->RunStageStep(h.program.stages[0], shape);
    elapsed = s4u::Engine::get_clock();
  });
  h.engine->run();
  const double share = 64 * 4096 * 2 / 4.0;
  const double all_to_all =
      kLaunch + kStepLatency + 2 * kLinkLatency + 3 * share / kEfficiency / kLinkBandwidth;
  EXPECT_NEAR(elapsed, 2 * GemmTime(64) + 2 * all_to_all, 1e-12);
  EXPECT_EQ(h.executor->flows(), 4 * 3);
}

// Two one-GPU replicas in one expert group (ep = 2, tp = 1): `layers` x
// (the GEMM, the all-to-all dispatch, a grouped expert GEMM, the combine).
std::vector<parallel::StageProgram> ExpertGroupOfTwo(int64_t layers) {
  std::vector<parallel::StageProgram> stages;
  for (int r = 0; r < 2; ++r) {
    parallel::StageProgram stage = Stage(r, {r}, layers);
    stage.expert_gpus = {0, 1};
    std::vector<parallel::Instruction>& in = stage.blocks[0].instructions;
    in[1].comm.name = "all_to_all (dispatch)";
    in[1].comm.kind = parallel::CommKind::kAllToAll;
    in[1].comm.expert_group = true;
    parallel::Instruction experts;
    experts.op = Gemm();
    experts.op.name = "experts";
    experts.op.out_features = 1024;
    experts.op.count = 4;  // 4 of 8 experts here, top 2, serving 2 replicas
    experts.op.parameters = 4 * 4096 * 1024;
    experts.op.weight_bytes = 4 * 2 * 4096 * 1024;
    experts.op.total_experts = 8;
    experts.op.top_k = 2;
    experts.op.token_sources = 2;
    in.push_back(experts);
    parallel::Instruction combine = in[1];
    combine.comm.name = "all_to_all (combine)";
    in.push_back(combine);
    stages.push_back(stage);
  }
  return stages;
}

// An all-to-all of `bytes` per rank over two GPUs: one phase, each sending
// half to the other over two links.
double TwoGpuAllToAll(int64_t bytes) {
  return kLaunch + kStepLatency + 2 * kLinkLatency +
         static_cast<double>(bytes) / 2 / kEfficiency / kLinkBandwidth;
}

// The expert GEMM serving `tokens` tokens from the whole group.
double ExpertTime(const Harness& h, int64_t tokens) {
  model::Op op = h.program.stages[0].blocks[0].instructions[2].op;
  op.token_sources = 1;
  model::StepShape shape;
  shape.new_tokens = tokens;
  return h.cost.Op(op, shape).time_s;
}

TEST(Executor, AnExpertGroupWithUnequalBatchesRunsInLockStep) {
  // Replica 0 decodes 8 sequences, replica 1 four: at each all-to-all the
  // faster waits for the slower, the exchange is sized by the larger batch,
  // and the experts serve the group's 12 tokens (not 2 x each one's own).
  Harness h(ExpertGroupOfTwo(3));
  const model::StepShape big = model::DecodeStep(8, 100);
  const model::StepShape small = model::DecodeStep(4, 100);
  engine::StageStepTime time[2];
  double end[2] = {-1, -1};
  for (int r = 0; r < 2; ++r) {
    s4u::Actor::create("replica", h.platform.gpus[static_cast<size_t>(r)], [&, r] {
      time[r] = h.executor->RunExpertGroupStep(h.program.stages[static_cast<size_t>(r)],
                                               r == 0 ? big : small, 0);
      end[r] = s4u::Engine::get_clock();
    });
  }
  h.engine->run();
  const double a2a = TwoGpuAllToAll(8 * 4096 * 2);
  const double experts = ExpertTime(h, 12);
  ASSERT_NE(experts, ExpertTime(h, 16));
  const double layer = GemmTime(8) + a2a + experts + a2a;
  EXPECT_NEAR(end[0], 3 * layer, 1e-12);
  EXPECT_NEAR(end[1], 3 * layer, 1e-12);  // the step time of the slower one
  EXPECT_NEAR(time[1].compute_s, 3 * (GemmTime(4) + experts), 1e-15);
  EXPECT_NEAR(time[1].wait_s, 3 * (GemmTime(8) - GemmTime(4)), 1e-15);
  EXPECT_NEAR(time[1].comm_s, time[1].wait_s + 6 * a2a, 1e-15);
  EXPECT_EQ(time[0].wait_s, 0);
  EXPECT_EQ(time[0].collectives, 6);
}

TEST(Executor, AnIdleReplicaRunsADummyStepForItsGroupsAllToAlls) {
  // Replica 1 has no work: it runs vLLM's one-token dummy step, paying the
  // all-to-alls (sized by replica 0's 8 tokens) and waiting for replica 0.
  Harness h(ExpertGroupOfTwo(2));
  const model::StepShape busy = model::DecodeStep(8, 100);
  engine::StageStepTime dummy;
  double end[2] = {-1, -1};
  for (int r = 0; r < 2; ++r) {
    s4u::Actor::create("replica", h.platform.gpus[static_cast<size_t>(r)], [&, r] {
      const engine::StageStepTime t = h.executor->RunExpertGroupStep(
          h.program.stages[static_cast<size_t>(r)], busy, 7, /*dummy=*/r == 1);
      if (r == 1) dummy = t;
      end[r] = s4u::Engine::get_clock();
    });
  }
  h.engine->run();
  EXPECT_EQ(engine::DummyStep().new_tokens, 1);
  const double a2a = TwoGpuAllToAll(8 * 4096 * 2);
  const double experts = ExpertTime(h, 9);
  const double layer = GemmTime(8) + a2a + experts + a2a;
  EXPECT_NEAR(end[0], 2 * layer, 1e-12);
  EXPECT_NEAR(end[1], 2 * layer, 1e-12);
  EXPECT_NEAR(dummy.compute_s, 2 * (GemmTime(1) + experts), 1e-15);
  EXPECT_NEAR(dummy.comm_s, 2 * (GemmTime(8) - GemmTime(1)) + 4 * a2a, 1e-15);
}

TEST(Executor, AnExpertGroupWithEqualBatchesTakesTheStageStepsTime) {
  Harness h(ExpertGroupOfTwo(4));
  const model::StepShape shape = model::DecodeStep(8, 100);
  engine::StageStepTime group;
  engine::StageStepTime alone;
  s4u::Actor::create("replica0", h.platform.gpus[0], [&] {
    group = h.executor->RunExpertGroupStep(h.program.stages[0], shape, 0);
    alone = h.executor->RunStageStep(h.program.stages[0], shape);
  });
  s4u::Actor::create("replica1", h.platform.gpus[1], [&] {
    h.executor->RunExpertGroupStep(h.program.stages[1], shape, 0);
  });
  h.engine->run();
  EXPECT_NEAR(group.compute_s, alone.compute_s, 1e-15);
  EXPECT_NEAR(group.comm_s, alone.comm_s, 1e-15);
  EXPECT_EQ(group.wait_s, 0);
  EXPECT_EQ(group.collectives, alone.collectives);
}

// Sum over i = 1..n of (c + i): the keys n new tokens at offset c attend to.
int64_t CausalPairs(int64_t cached, int64_t n) { return n * cached + n * (n + 1) / 2; }

TEST(MixedStep, EachOpCostsTheRooflineOfItsBatch) {
  // One 512-token prefill chunk at offset 1024 and 31 decodes at contexts
  // 100, 200, ..., 3100 (each new token attends to its whole context).
  std::vector<model::SequenceStep> batch = {{512, 1024, true}};
  int64_t decode_context = 0;
  for (int64_t c = 100; c <= 3100; c += 100) {
    batch.push_back({1, c - 1, true});
    decode_context += c;
  }
  const model::StepShape shape = model::ShapeOf(batch);
  EXPECT_EQ(shape.sequences, 32);
  EXPECT_EQ(shape.new_tokens, 512 + 31);
  EXPECT_EQ(shape.context_tokens, 1536 + decode_context);
  EXPECT_EQ(shape.attention_pairs, CausalPairs(1024, 512) + decode_context);
  EXPECT_EQ(shape.head_rows, 32);
  // A chunk that does not end its prompt samples nothing.
  EXPECT_EQ(model::ShapeOf({{512, 0, false}, {1, 99, true}}).head_rows, 1);
  // The uniform cases agree with the prefill and decode shapes.
  const model::StepShape prefill = model::ShapeOf({{300, 0, true}, {300, 0, true}});
  EXPECT_EQ(prefill.attention_pairs, model::PrefillStep(2, 300).attention_pairs);
  EXPECT_EQ(prefill.score_elements, model::PrefillStep(2, 300).score_elements);

  absl::StatusOr<scenario::LoadedScenario> s =
      scenario::LoadScenario("scenarios/llama3_8b_one_gpu.textproto", {});
  ASSERT_TRUE(s.ok()) << s.status();
  const model::ModelDims& d = s->model;
  const model::ModelGraph graph = model::BuildGraph(d, s->plan.shard);
  const cost::CostModel cost(s->cluster.gpu, d, s->cluster.profile);
  const v1::EfficiencyProfile& p = cost.profile();
  const double hbm = s->cluster.gpu.hbm_bandwidth_bytes_per_s();
  const double peak = cost.matrix_flops_per_s();
  const double tokens = 543;
  int checked = 0;
  for (const model::Op& op : graph.layer) {
    const double t = cost.Op(op, shape).time_s;
    if (op.kind == model::OpKind::kAttention) {
      // Q K^T and P V over every (new token, key) pair of every sequence;
      // reads Q and writes O, reads each sequence's KV and writes the new.
      const double pairs = static_cast<double>(CausalPairs(1024, 512) + decode_context);
      const double flops = 4 * pairs * static_cast<double>(op.heads * op.head_dim);
      const double kv_per_token = 2.0 * 2 * static_cast<double>(op.kv_heads * op.head_dim);
      const double bytes = 2.0 * tokens * 2 * static_cast<double>(op.heads * op.head_dim) +
                           kv_per_token * static_cast<double>(1536 + decode_context + 543);
      const double e = p.gemm_max_compute_efficiency() * tokens / (tokens + p.gemm_rows_half());
      EXPECT_DOUBLE_EQ(t, std::max(flops / (peak * e), bytes / (hbm * p.gemm_memory_efficiency())) +
                              p.gemm_launch_s());
      ++checked;
    } else if (op.kind == model::OpKind::kGemm) {
      const double flops = 2 * tokens * static_cast<double>(op.in_features * op.out_features);
      const double bytes = static_cast<double>(op.weight_bytes) +
                           2 * tokens * static_cast<double>(op.in_features + op.out_features);
      const double e = p.gemm_max_compute_efficiency() * tokens / (tokens + p.gemm_rows_half());
      EXPECT_DOUBLE_EQ(t, std::max(flops / (peak * e), bytes / (hbm * p.gemm_memory_efficiency())) +
                              p.gemm_launch_s())
          << op.name;
      ++checked;
    }
  }
  EXPECT_EQ(checked, 5);  // qkv, attention, o, gate_up, down
}

}  // namespace
}  // namespace shardsim
