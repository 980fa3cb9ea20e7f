#include "sim/engine/static_batch.h"

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "simgrid/s4u.hpp"
#include "sim/cost/roofline.h"
#include "sim/engine/collectives.h"
#include "sim/engine/executor.h"
#include "sim/hardware/platform_builder.h"
#include "sim/memory/ledger.h"
#include "sim/metrics/run_metrics.h"
#include "sim/parallel/program.h"
#include "sim/report/trace.h"

namespace shardsim::engine {
namespace {

namespace s4u = simgrid::s4u;

class StaticBatchDriver {
 public:
  StaticBatchDriver(const parallel::Deployment& deployment, const v1::Workload& workload,
                    const StaticBatchOptions& options)
      : d_(deployment),
        plan_(deployment.plan),
        workload_(workload),
        options_(options),
        graph_(model::BuildGraph(deployment.model, deployment.plan.shard)),
        cost_(deployment.cluster.gpu, deployment.model, deployment.cluster.profile),
        program_(parallel::BuildProgram(graph_, deployment.plan)),
        runtime_(memory::ResolveRuntime(deployment.runtime,
                                        deployment.cluster.gpu.capacity_bytes())) {
    // The prefill yields the first token; each decode step one more.
    steps_ = 1 + std::max<int64_t>(0, workload_.output_len() - 1);
    record_.micro_batches.resize(static_cast<size_t>(plan_.dp));
    for (int r = 0; r < plan_.dp; ++r) {
      const int64_t on_replica = parallel::SequencesOnReplica(workload_.batch_size(), plan_.dp, r);
      std::vector<int64_t> micro;
      for (int m = 0; m < plan_.micro_batches; ++m) {
        micro.push_back(parallel::SequencesInMicroBatch(on_replica, plan_.micro_batches, m));
        record_.micro_batches[static_cast<size_t>(r)].push_back(
            {micro.back(), std::vector<double>(static_cast<size_t>(steps_), 0)});
      }
      replica_sequences_.push_back(on_replica);
    }
    // With ep > tp, ep / tp consecutive replicas form an expert group that
    // runs every MoE layer's all-to-all together. If their batches differ
    // (a batch dp does not divide), the group runs in lock step
    // (Executor::RunExpertGroupStep): a replica with none still runs dummy
    // steps, so every member is simulated.
    const parallel::StageProgram& first = program_.Stage(0, 0);
    group_size_ = first.expert_gpus.empty()
                      ? 1
                      : static_cast<int>(first.expert_gpus.size() / first.gpus.size());
    lock_step_.assign(static_cast<size_t>(plan_.dp), false);
    for (int g = 0; g * group_size_ < plan_.dp && group_size_ > 1; ++g) {
      bool equal = true;
      for (int r = g * group_size_ + 1; r < (g + 1) * group_size_; ++r) {
        equal = equal && MicroSequences(r) == MicroSequences(g * group_size_);
      }
      for (int r = g * group_size_; r < (g + 1) * group_size_; ++r) {
        lock_step_[static_cast<size_t>(r)] = !equal;
      }
    }
    for (int r = 0; r < plan_.dp; ++r) {
      // Replicas with the same micro-batches run the same timeline, unless
      // a lock-step group's others pace them. With a trace every replica is
      // simulated, so every GPU has its slices.
      if (!options_.trace_path.empty() || lock_step_[static_cast<size_t>(r)]) {
        representative_.push_back(r);
        continue;
      }
      auto [it, inserted] = representative_of_batch_.emplace(MicroSequences(r), r);
      representative_.push_back(it->second);
    }
    record_.stage_compute_s.assign(static_cast<size_t>(plan_.dp * plan_.pp), 0);
    record_.stage_comm_s.assign(static_cast<size_t>(plan_.dp * plan_.pp), 0);
    collectives_run_.assign(static_cast<size_t>(plan_.dp * plan_.pp), 0);
    for (const parallel::Rank& rank : plan_.ranks) {
      ledgers_.push_back(std::make_unique<memory::RankLedger>(graph_, plan_, rank, runtime_));
    }
  }

  absl::StatusOr<v1::RunReport> Run() {
    s4u::Engine* engine = s4u::Engine::get_instance();
    platform_ = hardware::BuildPlatform(d_.cluster, engine);
    executor_ = std::make_unique<Executor>(d_.cluster, platform_, cost_, program_,
                                           TpGroups(plan_),
                                           ChooseAlgorithm(d_.cluster, plan_.TpGroup(0, 0)),
                                           scenario::ResolveRuntimeProfile(d_.runtime));
    WarmCollectives(engine);
    record_.start_s = s4u::Engine::get_clock();
    for (int r = 0; r < plan_.dp; ++r) {
      if (representative_[static_cast<size_t>(r)] != r) continue;
      for (int s = 0; s < plan_.pp; ++s) {
        s4u::Actor::create(absl::StrCat("replica", r, "-stage", s), Host(r, s),
                           [this, r, s] { RunStage(r, s); });
      }
    }
    engine->run();
    return Finish();
  }

 private:
  std::vector<int64_t> MicroSequences(int replica) const {
    std::vector<int64_t> sequences;
    for (const metrics::MicroBatchRecord& m : record_.micro_batches[static_cast<size_t>(replica)]) {
      sequences.push_back(m.sequences);
    }
    return sequences;
  }

  // The most sequences any member of `replica`'s expert group has in
  // micro-batch `m` (its own when there is no group).
  int64_t GroupSequences(int replica, int m) const {
    const int first = replica / group_size_ * group_size_;
    int64_t most = 0;
    for (int r = first; r < first + group_size_; ++r) {
      most = std::max(most, record_.micro_batches[static_cast<size_t>(r)][static_cast<size_t>(m)]
                                .sequences);
    }
    return most;
  }

  s4u::Host* Host(int replica, int stage) const {
    return platform_.gpus[static_cast<size_t>(program_.Stage(replica, stage).gpus[0])];
  }

  model::StepShape Shape(int64_t step, int64_t sequences) const {
    if (step == 0) return model::PrefillStep(sequences, workload_.prompt_len());
    return model::DecodeStep(sequences, workload_.prompt_len() + step);
  }

  // Before the clock starts, the collectives of the prefill and the first
  // decode step of every micro-batch, smallest key first: the static batch
  // knows them, and measuring them up front keeps every step's timeline free
  // of measurement. Anything else (there is nothing else in a static batch)
  // would be simulated on demand when first met.
  void WarmCollectives(s4u::Engine* engine) {
    std::map<CollectiveKey, int> needed;
    for (int r = 0; r < plan_.dp; ++r) {
      for (const metrics::MicroBatchRecord& micro : record_.micro_batches[static_cast<size_t>(r)]) {
        if (micro.sequences == 0) continue;
        for (int64_t step = 0; step < std::min<int64_t>(steps_, 2); ++step) {
          const model::StepShape shape = executor_->RunShape(Shape(step, micro.sequences));
          for (int s = 0; s < plan_.pp; ++s) {
            const parallel::StageProgram& stage = program_.Stage(r, s);
            for (const parallel::CollectiveCount& c : parallel::CountCollectives(stage)) {
              needed[{c.comm.kind, static_cast<int>(parallel::GroupOf(stage, c.comm).size()),
                      c.comm.Bytes(shape)}] = 0;
            }
          }
        }
      }
      // A lock-step group's idle member runs dummy steps: their TP
      // collectives (the all-to-all is sized by the busiest member's).
      if (!lock_step_[static_cast<size_t>(r)]) continue;
      for (int s = 0; s < plan_.pp; ++s) {
        const parallel::StageProgram& stage = program_.Stage(r, s);
        for (const parallel::CollectiveCount& c : parallel::CountCollectives(stage)) {
          if (c.comm.expert_group) continue;
          needed[{c.comm.kind, static_cast<int>(stage.gpus.size()),
                  c.comm.Bytes(executor_->RunShape(DummyStep()))}] = 0;
        }
      }
    }
    if (needed.empty()) return;
    s4u::Actor::create("collectives", platform_.gpus[0], [this, needed] {
      for (const auto& [key, unused] : needed) executor_->CollectiveTime(key);
    });
    engine->run();
  }

  // One pipeline stage of one replica: every step, every micro-batch.
  void RunStage(int replica, int stage) {
    const int last = plan_.pp - 1;
    const parallel::StageProgram& program = program_.Stage(replica, stage);
    std::vector<metrics::MicroBatchRecord>& micro = record_.micro_batches[static_cast<size_t>(replica)];
    const size_t stage_index = static_cast<size_t>(replica * plan_.pp + stage);
    const bool lock_step = lock_step_[static_cast<size_t>(replica)];
    for (int64_t step = 0; step < steps_; ++step) {
      for (int m = 0; m < plan_.micro_batches; ++m) {
        const int64_t sequences = micro[static_cast<size_t>(m)].sequences;
        if (sequences == 0) {
          // Idle, but the expert group's busy members need this replica at
          // their all-to-alls: a dummy step, with no hand-offs or tokens.
          if (!lock_step || GroupSequences(replica, m) == 0) continue;
          const double start = s4u::Engine::get_clock() - record_.start_s;
          const StageStepTime time = executor_->RunExpertGroupStep(
              program, DummyStep(), step * plan_.micro_batches + m, /*dummy=*/true);
          record_.stage_compute_s[stage_index] += time.compute_s;
          record_.stage_comm_s[stage_index] += time.comm_s;
          collectives_run_[stage_index] += time.collectives;
          ++record_.dummy_steps;
          record_.expert_wait_s += time.wait_s;
          if (!options_.trace_path.empty()) {
            const std::string name = absl::StrCat("dummy ", step, " mb", m);
            for (int gpu : program.gpus) {
              trace_.Slice(gpu, report::TraceWriter::kCompute, name, start, time.compute_s);
              trace_.Slice(gpu, report::TraceWriter::kComm, name, start + time.compute_s,
                           time.comm_s);
            }
          }
          continue;
        }
        // Stage 0 waits for the sampled tokens of the step before; the
        // others for the previous stage's hidden states.
        if (stage > 0 || (step > 0 && plan_.pp > 1)) executor_->Receive(replica, stage, m);
        const model::StepShape shape = Shape(step, sequences);
        const double start = s4u::Engine::get_clock();
        const StageStepTime time =
            lock_step ? executor_->RunExpertGroupStep(program, shape, step * plan_.micro_batches + m)
                      : executor_->RunStageStep(program, shape);
        record_.stage_compute_s[stage_index] += time.compute_s;
        record_.stage_comm_s[stage_index] += time.comm_s;
        collectives_run_[stage_index] += time.collectives;
        record_.expert_wait_s += time.wait_s;
        if (!options_.trace_path.empty()) {
          Trace(program, step, m, executor_->RunShape(shape), time, start);
        }
        if (stage < last) {
          executor_->Send(program, shape, m, /*to_first=*/false);
        } else {
          micro[static_cast<size_t>(m)].token_times_s[static_cast<size_t>(step)] =
              s4u::Engine::get_clock();
          if (plan_.pp > 1 && step + 1 < steps_) {
            executor_->Send(program, shape, m, /*to_first=*/true);
          }
        }
      }
      if (stage == last) RecordMemory(replica, step);
    }
  }

  // A step of a stage in the trace: one compute and one communication slice,
  // or (the first `detailed_steps` steps) each op and each collective where
  // the stage waits for it. The slices add up to the step's time.
  void Trace(const parallel::StageProgram& stage, int64_t step, int m,
             const model::StepShape& shape, const StageStepTime& time, double start) {
    double at = start - record_.start_s;
    auto slice = [&](report::TraceWriter::Track track, const std::string& name, double t,
                     const std::vector<report::TraceWriter::Arg>& args = {}) {
      for (int gpu : stage.gpus) trace_.Slice(gpu, track, name, at, t, args);
    };
    if (step >= options_.detailed_steps) {
      const std::string name =
          step == 0 ? absl::StrCat("prefill mb", m) : absl::StrCat("decode ", step, " mb", m);
      slice(report::TraceWriter::kCompute, name, time.compute_s);
      at += time.compute_s;
      if (time.comm_s > 0) slice(report::TraceWriter::kComm, name, time.comm_s);
      return;
    }
    for (const parallel::Block& block : stage.blocks) {
      for (int64_t repeat = 0; repeat < block.repeat; ++repeat) {
        const std::string prefix =
            block.name == "layers" ? absl::StrCat("L", block.first_layer + repeat, " ") : "";
        for (const parallel::Instruction& i : block.instructions) {
          if (i.type == parallel::Instruction::Type::kCompute) {
            // An op's slice carries what its time was computed from.
            const cost::OpCost c = cost_.Op(i.op, shape);
            slice(report::TraceWriter::kCompute, prefix + i.op.name, c.time_s,
                  {{"flops", c.flops}, {"bytes", c.bytes}});
            at += c.time_s;
          } else {
            const double t = executor_->CachedCollectiveTime(
                {i.comm.kind, static_cast<int>(parallel::GroupOf(stage, i.comm).size()),
                 i.comm.Bytes(shape)});
            slice(report::TraceWriter::kComm, prefix + i.comm.name, t,
                  {{"bytes", static_cast<double>(i.comm.Bytes(shape))}});
            at += t;
          }
        }
      }
    }
  }

  // After `step` of a replica, every GPU's ledger: the KV cache holds the
  // prompt and the tokens generated so far but the last.
  void RecordMemory(int replica, int64_t step) {
    const int64_t kv_tokens = workload_.prompt_len() + step;
    const int64_t largest_micro_batch =
        record_.micro_batches[static_cast<size_t>(replica)][0].sequences;
    for (int s = 0; s < plan_.pp; ++s) {
      for (int t = 0; t < plan_.tp; ++t) {
        const int index = plan_.RankIndex(replica, s, t);
        memory::RankLedger& ledger = *ledgers_[static_cast<size_t>(index)];
        ledger.Step(Shape(step, largest_micro_batch),
                    replica_sequences_[static_cast<size_t>(replica)], kv_tokens);
        if (!options_.trace_path.empty()) {
          trace_.Memory(plan_.ranks[static_cast<size_t>(index)].gpu,
                        s4u::Engine::get_clock() - record_.start_s,
                        ledger.current().total_bytes());
        }
      }
    }
  }

  // Completes the record (replicas not simulated take their
  // representative's), builds the report, writes the trace.
  absl::StatusOr<v1::RunReport> Finish() {
    for (int r = 0; r < plan_.dp; ++r) {
      const int from = representative_[static_cast<size_t>(r)];
      for (int s = 0; s < plan_.pp; ++s) {
        const size_t to_stage = static_cast<size_t>(r * plan_.pp + s);
        const size_t from_stage = static_cast<size_t>(from * plan_.pp + s);
        record_.stage_compute_s[to_stage] = record_.stage_compute_s[from_stage];
        record_.stage_comm_s[to_stage] = record_.stage_comm_s[from_stage];
        record_.collectives_replayed += collectives_run_[from_stage];
        for (int t = 0; t < plan_.tp; ++t) {
          record_.peak_memory.push_back(
              ledgers_[static_cast<size_t>(plan_.RankIndex(from, s, t))]->peak());
        }
      }
      if (from != r) {
        record_.micro_batches[static_cast<size_t>(r)] =
            record_.micro_batches[static_cast<size_t>(from)];
      }
    }
    record_.flows = executor_->flows();
    record_.distinct_collectives = executor_->distinct_collectives();
    if (plan_.tp > 1) {
      // The distinct algorithm/protocol pairs the TP collectives ran with.
      std::set<std::string> used;
      for (const auto& [key, plan] : executor_->plans()) {
        if (key.kind != parallel::CommKind::kAllToAll) used.insert(plan.Name());
      }
      record_.collective_algorithm = absl::StrJoin(used, ", ");
    }
    v1::RunReport report = metrics::BuildRunReport(d_, workload_, record_);
    if (!options_.trace_path.empty()) {
      for (const parallel::Rank& rank : plan_.ranks) {
        trace_.NameGpu(rank.gpu,
                       absl::StrFormat("GPU %d (node %d, tp %d, stage %d, replica %d)", rank.gpu,
                                       rank.node, rank.tp_rank, rank.pp_stage, rank.dp_replica));
      }
      absl::Status status = trace_.Write(options_.trace_path);
      if (!status.ok()) return status;
    }
    return report;
  }

  const parallel::Deployment& d_;
  const parallel::Plan& plan_;
  const v1::Workload& workload_;
  StaticBatchOptions options_;
  model::ModelGraph graph_;
  cost::CostModel cost_;
  parallel::Program program_;
  memory::RuntimeOverheads runtime_;
  hardware::Platform platform_;
  std::unique_ptr<Executor> executor_;

  int64_t steps_ = 1;
  std::vector<int64_t> replica_sequences_;
  std::map<std::vector<int64_t>, int> representative_of_batch_;
  std::vector<int> representative_;  // by replica: the replica simulated for it
  int group_size_ = 1;               // replicas per expert group (ep / tp when ep > tp)
  std::vector<bool> lock_step_;      // by replica: its expert group runs in lock step
  std::vector<int64_t> collectives_run_;  // [replica * pp + stage]
  std::vector<std::unique_ptr<memory::RankLedger>> ledgers_;  // by rank index
  metrics::RunRecord record_;
  report::TraceWriter trace_;
};

}  // namespace

absl::StatusOr<v1::RunReport> RunStaticBatch(const parallel::Deployment& deployment,
                                             const v1::Workload& workload,
                                             const StaticBatchOptions& options) {
  StaticBatchDriver driver(deployment, workload, options);
  return driver.Run();
}

}  // namespace shardsim::engine
