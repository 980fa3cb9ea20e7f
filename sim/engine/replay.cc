#include "sim/engine/replay.h"

#include <algorithm>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "simgrid/s4u.hpp"
#include "sim/base/units.h"
#include "sim/cost/roofline.h"
#include "sim/engine/collectives.h"
#include "sim/hardware/platform_builder.h"
#include "sim/memory/ledger.h"
#include "sim/report/trace.h"

namespace shardsim::engine {
namespace {

namespace s4u = simgrid::s4u;

using CollectiveKey = std::pair<CollectiveKind, int64_t>;  // kind, bytes

// Compute and tensor-parallel communication of one stage for one
// micro-batch in one step.
struct StageWork {
  double compute_s = 0;
  double comm_s = 0;
  int64_t collectives = 0;
};

// (value, weight) samples -> mean, p50, p99 with each sample counted
// `weight` times (a micro-batch's interval applies to each of its sequences).
v1::LatencyStats Stats(std::vector<std::pair<double, int64_t>> samples) {
  v1::LatencyStats stats;
  if (samples.empty()) return stats;
  std::sort(samples.begin(), samples.end());
  double sum = 0;
  int64_t total = 0;
  for (const auto& [value, weight] : samples) {
    sum += value * static_cast<double>(weight);
    total += weight;
  }
  auto quantile = [&](double q) {
    // The smallest value with at least q of the weight at or below it.
    const double target = q * static_cast<double>(total);
    int64_t seen = 0;
    for (const auto& [value, weight] : samples) {
      seen += weight;
      if (static_cast<double>(seen) >= target) return value;
    }
    return samples.back().first;
  };
  stats.set_mean_s(sum / static_cast<double>(total));
  stats.set_p50_s(quantile(0.50));
  stats.set_p99_s(quantile(0.99));
  return stats;
}

class Replayer {
 public:
  Replayer(const scenario::LoadedScenario& loaded, const ReplayOptions& options)
      : loaded_(loaded),
        options_(options),
        dims_(loaded.model),
        plan_(loaded.plan),
        workload_(loaded.scenario.workload()),
        graph_(model::BuildGraph(dims_, plan_.shard)),
        cost_(loaded.cluster.gpu, dims_, loaded.cluster.profile),
        runtime_(memory::ResolveRuntime(loaded.scenario.runtime())) {
    // The prefill yields the first token; each decode step one more.
    steps_ = 1 + std::max<int64_t>(0, workload_.output_len() - 1);
    for (int r = 0; r < plan_.dp; ++r) {
      const int64_t on_replica =
          parallel::SequencesOnReplica(workload_.batch_size(), plan_.dp, r);
      std::vector<int64_t> micro;
      for (int m = 0; m < plan_.micro_batches; ++m) {
        micro.push_back(parallel::SequencesInMicroBatch(on_replica,
                                                        plan_.micro_batches, m));
      }
      sequences_.push_back(micro);
      replica_sequences_.push_back(on_replica);
    }
    token_times_.assign(static_cast<size_t>(plan_.dp),
                        std::vector<std::vector<double>>(
                            static_cast<size_t>(plan_.micro_batches),
                            std::vector<double>(static_cast<size_t>(steps_), 0)));
    stage_compute_.assign(static_cast<size_t>(plan_.dp * plan_.pp), 0);
    stage_comm_.assign(static_cast<size_t>(plan_.dp * plan_.pp), 0);
    for (const parallel::Rank& rank : plan_.ranks) {
      ledgers_.push_back(
          std::make_unique<memory::RankLedger>(graph_, plan_, rank, runtime_));
    }
  }

  absl::StatusOr<v1::RunReport> Run() {
    s4u::Engine* engine = s4u::Engine::get_instance();
    platform_ = hardware::BuildPlatform(loaded_.cluster, engine);
    MeasureCollectives(engine);
    start_s_ = s4u::Engine::get_clock();
    for (int r = 0; r < plan_.dp; ++r) {
      for (int s = 0; s < plan_.pp; ++s) {
        s4u::Actor::create(absl::StrCat("replica", r, "-stage", s),
                           Host(r, s, 0), [this, r, s] { RunStage(r, s); });
      }
    }
    engine->run();
    return BuildReport();
  }

 private:
  s4u::Host* Host(int replica, int stage, int tp_rank) const {
    const int gpu = plan_.TpGroup(replica, stage)[static_cast<size_t>(tp_rank)];
    return platform_.gpus[static_cast<size_t>(gpu)];
  }

  const parallel::Rank& RankOf(int replica, int stage) const {
    return plan_.ranks[static_cast<size_t>(plan_.RankIndex(replica, stage, 0))];
  }

  model::StepShape Shape(int64_t step, int64_t sequences) const {
    if (step == 0) return model::PrefillStep(sequences, workload_.prompt_len());
    return model::DecodeStep(sequences, workload_.prompt_len() + step);
  }

  int64_t ActivationBytes(int64_t rows, int64_t width) const {
    return BytesOf(rows * width, dims_.activation_dtype);
  }

  // All-reduces per layer: after the attention output and after the FFN,
  // or one when attention and FFN run in parallel and share it.
  int64_t AllReducesPerLayer() const { return dims_.parallel_attention ? 1 : 2; }

  CollectiveKey LayerAllReduce(const model::StepShape& shape) const {
    return {CollectiveKind::kAllReduce,
            ActivationBytes(shape.new_tokens, dims_.hidden_size)};
  }
  CollectiveKey LogitsAllGather(const model::StepShape& shape) const {
    return {CollectiveKind::kAllGather,
            ActivationBytes(shape.head_rows, plan_.shard.vocab * plan_.tp)};
  }

  // Simulates, before the replay, every distinct collective it will need,
  // with all tensor-parallel groups at once.
  void MeasureCollectives(s4u::Engine* engine) {
    if (plan_.tp <= 1) return;
    std::map<CollectiveKey, double> needed;
    for (int64_t step = 0; step < std::min<int64_t>(steps_, 2); ++step) {
      for (const auto& micro : sequences_) {
        for (int64_t sequences : micro) {
          if (sequences == 0) continue;
          const model::StepShape shape = Shape(step, sequences);
          needed[LayerAllReduce(shape)] = 0;
          if (dims_.has_lm_head()) needed[LogitsAllGather(shape)] = 0;
        }
      }
    }
    const std::vector<std::vector<int>> groups = TpGroups(plan_);
    algorithm_ = ChooseAlgorithm(loaded_.cluster, plan_.TpGroup(0, 0));
    s4u::Actor::create("collectives", platform_.gpus[0], [this, needed, groups] {
      for (const auto& [key, unused] : needed) {
        const CollectiveStats stats = RunCollective(
            Fabric{&platform_, &loaded_.cluster}, groups, key.first, key.second, algorithm_);
        collective_s_[key] = stats.seconds;
        flows_ += stats.flows;
      }
    });
    engine->run();
  }

  StageWork Work(int replica, int stage, int64_t step, int64_t sequences) const {
    const parallel::Rank& rank = RankOf(replica, stage);
    const model::StepShape shape = Shape(step, sequences);
    StageWork work;
    const double layers = static_cast<double>(rank.num_layers);
    work.compute_s = layers * cost_.Time(graph_.layer, shape);
    if (rank.has_embedding) work.compute_s += cost_.Time(graph_.embedding, shape);
    if (rank.has_tail) work.compute_s += cost_.Time(graph_.tail, shape);
    if (plan_.tp > 1) {
      int64_t all_reduces = rank.num_layers * AllReducesPerLayer();
      if (rank.has_embedding) ++all_reduces;  // vocabulary-parallel embedding
      work.comm_s = static_cast<double>(all_reduces) *
                    collective_s_.at(LayerAllReduce(shape));
      work.collectives = all_reduces;
      if (rank.has_tail && dims_.has_lm_head()) {
        work.comm_s += collective_s_.at(LogitsAllGather(shape));
        ++work.collectives;
      }
    }
    return work;
  }

  static std::string MailboxName(int replica, const char* what, int index, int m) {
    return absl::StrCat("r", replica, "/", what, index, "/m", m);
  }

  // One pipeline stage of one replica: every step, every micro-batch.
  void RunStage(int replica, int stage) {
    static int token = 0;  // mailbox payloads carry no data
    const int last = plan_.pp - 1;
    const std::vector<int64_t>& micro = sequences_[static_cast<size_t>(replica)];
    const size_t stage_index = static_cast<size_t>(replica * plan_.pp + stage);
    const std::vector<int> group = plan_.TpGroup(replica, stage);
    for (int64_t step = 0; step < steps_; ++step) {
      for (int m = 0; m < plan_.micro_batches; ++m) {
        const int64_t sequences = micro[static_cast<size_t>(m)];
        if (sequences == 0) continue;
        if (stage > 0) {
          s4u::Mailbox::by_name(MailboxName(replica, "stage", stage, m))->get<int>();
        } else if (step > 0 && plan_.pp > 1) {
          s4u::Mailbox::by_name(MailboxName(replica, "loop", 0, m))->get<int>();
        }
        const StageWork work = Work(replica, stage, step, sequences);
        const double start = s4u::Engine::get_clock();
        s4u::this_actor::sleep_for(work.compute_s + work.comm_s);
        stage_compute_[stage_index] += work.compute_s;
        stage_comm_[stage_index] += work.comm_s;
        collectives_replayed_ += work.collectives;
        if (!options_.trace_path.empty()) {
          const std::string name =
              step == 0 ? absl::StrCat("prefill mb", m)
                        : absl::StrCat("decode ", step, " mb", m);
          if (step < options_.detailed_steps) {
            TraceOps(replica, stage, step, sequences, start - start_s_);
          } else {
            for (int gpu : group) {
              trace_.Slice(gpu, report::TraceWriter::kCompute, name, start - start_s_,
                           work.compute_s);
              if (work.comm_s > 0) {
                trace_.Slice(gpu, report::TraceWriter::kComm, name,
                             start - start_s_ + work.compute_s, work.comm_s);
              }
            }
          }
        }
        if (stage < last) {
          SendActivations(replica, stage, m, ActivationBytes(
              Shape(step, sequences).new_tokens, dims_.hidden_size));
        } else {
          token_times_[static_cast<size_t>(replica)][static_cast<size_t>(m)]
                      [static_cast<size_t>(step)] = s4u::Engine::get_clock();
          if (plan_.pp > 1 && step + 1 < steps_) {
            // The sampled token ids go back to the first stage.
            s4u::Mailbox::by_name(MailboxName(replica, "loop", 0, m))
                ->put_init(&token, static_cast<uint64_t>(4 * sequences))
                ->detach();
            ++flows_;
          }
        }
      }
      if (stage == last) RecordMemory(replica, step);
    }
  }

  // The trace of one stage's step op by op: each op on the compute track,
  // each collective on the communication track where the layer waits for it.
  // The slices add up to the step's Work().
  void TraceOps(int replica, int stage, int64_t step, int64_t sequences, double at) {
    const parallel::Rank& rank = RankOf(replica, stage);
    const model::StepShape shape = Shape(step, sequences);
    const std::vector<int> group = plan_.TpGroup(replica, stage);
    auto op = [&](const model::Op& o, const std::string& prefix) {
      const double t = cost_.Op(o, shape).time_s;
      for (int gpu : group) {
        trace_.Slice(gpu, report::TraceWriter::kCompute, prefix + o.name, at, t);
      }
      at += t;
    };
    auto collective = [&](const CollectiveKey& key, const std::string& name) {
      if (plan_.tp <= 1) return;
      const double t = collective_s_.at(key);
      for (int gpu : group) trace_.Slice(gpu, report::TraceWriter::kComm, name, at, t);
      at += t;
    };
    if (rank.has_embedding) {
      for (const model::Op& o : graph_.embedding) op(o, "");
      collective(LayerAllReduce(shape), "all_reduce (embedding)");
    }
    for (int64_t l = rank.first_layer; l < rank.first_layer + rank.num_layers; ++l) {
      const std::string prefix = absl::StrCat("L", l, " ");
      for (const model::Op& o : graph_.layer) {
        op(o, prefix);
        const bool after_attention = o.name == "o_proj" && AllReducesPerLayer() == 2;
        if (after_attention || o.name == "down_proj") {
          collective(LayerAllReduce(shape), prefix + "all_reduce");
        }
      }
    }
    if (rank.has_tail) {
      for (const model::Op& o : graph_.tail) op(o, "");
      if (dims_.has_lm_head()) collective(LogitsAllGather(shape), "all_gather (logits)");
    }
  }

  // Every TP rank sends the micro-batch's hidden states to its peer in the
  // next stage; the next stage starts when all have arrived.
  void SendActivations(int replica, int stage, int m, int64_t bytes) {
    s4u::Actor::create(
        "activations", Host(replica, stage, 0), [this, replica, stage, m, bytes] {
          static int token = 0;
          const v1::CollectiveTuning& tuning = loaded_.cluster.collectives;
          s4u::this_actor::sleep_for(tuning.p2p_launch_s());
          std::vector<s4u::CommPtr> comms;
          for (int t = 0; t < plan_.tp; ++t) {
            comms.push_back(s4u::Comm::sendto_async(
                Host(replica, stage, t), Host(replica, stage + 1, t),
                SimulatedBytes(static_cast<double>(bytes),
                               tuning.p2p_bandwidth_efficiency())));
          }
          flows_ += static_cast<int64_t>(comms.size());
          s4u::Comm::wait_all(comms);
          s4u::Mailbox::by_name(MailboxName(replica, "stage", stage + 1, m))
              ->put(&token, 0);
        });
  }

  // After `step` of a replica, every GPU's ledger: the KV cache holds the
  // prompt and the tokens generated so far but the last.
  void RecordMemory(int replica, int64_t step) {
    const int64_t kv_tokens = workload_.prompt_len() + step;
    const int64_t largest_micro_batch =
        sequences_[static_cast<size_t>(replica)][0];
    for (int s = 0; s < plan_.pp; ++s) {
      for (int t = 0; t < plan_.tp; ++t) {
        const int index = plan_.RankIndex(replica, s, t);
        const int gpu = plan_.ranks[static_cast<size_t>(index)].gpu;
        memory::RankLedger& ledger = *ledgers_[static_cast<size_t>(index)];
        ledger.Step(Shape(step, largest_micro_batch),
                    replica_sequences_[static_cast<size_t>(replica)], kv_tokens);
        if (!options_.trace_path.empty()) {
          trace_.Memory(gpu, s4u::Engine::get_clock() - start_s_,
                        ledger.current().total_bytes());
        }
      }
    }
  }

  absl::StatusOr<v1::RunReport> BuildReport() {
    v1::RunReport report;
    report.set_scenario(loaded_.scenario.name());
    report.set_model(dims_.name);
    report.set_cluster(loaded_.cluster.name);
    report.set_gpu(loaded_.cluster.gpu.name());
    report.set_tp(plan_.tp);
    report.set_pp(plan_.pp);
    report.set_dp(plan_.dp);
    report.set_micro_batches(plan_.micro_batches);
    report.set_batch_size(workload_.batch_size());
    report.set_prompt_len(workload_.prompt_len());
    report.set_output_len(workload_.output_len());

    std::vector<std::pair<double, int64_t>> ttft;
    std::vector<std::pair<double, int64_t>> tpot;
    double end = start_s_;
    for (size_t r = 0; r < token_times_.size(); ++r) {
      for (size_t m = 0; m < token_times_[r].size(); ++m) {
        const int64_t sequences = sequences_[r][m];
        if (sequences == 0) continue;
        const std::vector<double>& times = token_times_[r][m];
        ttft.emplace_back(times[0] - start_s_, sequences);
        for (size_t i = 1; i < times.size(); ++i) {
          tpot.emplace_back(times[i] - times[i - 1], sequences);
        }
        end = std::max(end, times.back());
      }
    }
    const double total_s = end - start_s_;
    *report.mutable_ttft() = Stats(ttft);
    *report.mutable_tpot() = Stats(tpot);
    report.set_total_s(total_s);
    const int64_t output_tokens = workload_.batch_size() * workload_.output_len();
    report.set_output_tokens(output_tokens);
    if (total_s > 0) {
      report.set_output_tokens_per_s(static_cast<double>(output_tokens) / total_s);
      report.set_output_tokens_per_s_per_gpu(report.output_tokens_per_s() /
                                             plan_.num_gpus());
    }
    if (loaded_.cluster.gpu_price_per_hour > 0 && output_tokens > 0) {
      const double dollars =
          loaded_.cluster.gpu_price_per_hour * plan_.num_gpus() * total_s / 3600;
      report.set_cost_per_million_output_tokens(
          dollars / static_cast<double>(output_tokens) * 1e6);
    }

    bool all_fit = true;
    double comm_share = 0;
    for (size_t index = 0; index < plan_.ranks.size(); ++index) {
      const parallel::Rank& rank = plan_.ranks[index];
      v1::GpuRun* gpu = report.add_gpus();
      gpu->set_gpu(rank.gpu);
      gpu->set_node(rank.node);
      gpu->set_tp_rank(rank.tp_rank);
      gpu->set_pp_stage(rank.pp_stage);
      gpu->set_dp_replica(rank.dp_replica);
      const memory::RankLedger& ledger = *ledgers_[index];
      *gpu->mutable_peak_memory() = ledger.peak();
      gpu->set_capacity_bytes(loaded_.cluster.gpu.capacity_bytes());
      const memory::Fit fit =
          memory::JudgeFit(ledger.peak(), gpu->capacity_bytes());
      gpu->set_fits(fit.fits);
      gpu->set_over_by_bytes(fit.over_by_bytes);
      gpu->set_overflow_component(fit.component);
      all_fit = all_fit && fit.fits;
      const size_t stage = static_cast<size_t>(rank.dp_replica * plan_.pp + rank.pp_stage);
      gpu->set_compute_s(stage_compute_[stage]);
      gpu->set_comm_s(stage_comm_[stage]);
      gpu->set_idle_s(std::max(0.0, total_s - stage_compute_[stage] - stage_comm_[stage]));
      if (total_s > 0) comm_share += stage_comm_[stage] / total_s;
      if (!options_.trace_path.empty()) {
        trace_.NameGpu(rank.gpu, absl::StrFormat("GPU %d (node %d, tp %d, stage %d, replica %d)",
                                                 rank.gpu, rank.node, rank.tp_rank,
                                                 rank.pp_stage, rank.dp_replica));
      }
    }
    report.set_fits(all_fit);
    report.set_comm_overhead(comm_share / plan_.num_gpus());
    report.set_simulated_flows(flows_);
    report.set_distinct_collectives(static_cast<int64_t>(collective_s_.size()));
    report.set_collectives_replayed(collectives_replayed_);

    if (!all_fit) {
      for (const v1::GpuRun& gpu : report.gpus()) {
        if (gpu.fits()) continue;
        report.add_notes(absl::StrFormat(
            "does not fit: GPU %d needs %s of %s (over by %s, passing capacity at %s); "
            "the timings above assume it did",
            gpu.gpu(), FormatBytes(gpu.peak_memory().total_bytes()),
            FormatBytes(gpu.capacity_bytes()), FormatBytes(gpu.over_by_bytes()),
            gpu.overflow_component()));
        break;
      }
    }
    if (plan_.tp > 1) {
      report.add_notes(absl::StrCat(
          "tensor-parallel collectives: ", AlgorithmName(algorithm_),
          algorithm_ == Algorithm::kRing
              ? " (NCCL's ring: 2(N-1) steps of 1/N of the buffer)"
              : " (every GPU sends 1/N of the buffer to each peer over its own "
                "link: the mesh is fully used)",
          "; every TP group communicates at once"));
    }
    if (!cost_.note().empty()) report.add_notes(cost_.note());
    const v1::EfficiencyProfile& profile = cost_.profile();
    if (!profile.derived()) {
      report.add_notes(absl::StrFormat(
          "op times: calibrated on %s (%d measured op times): %s",
          profile.gpu(), profile.samples(), profile.source()));
    } else {
      report.add_notes(absl::StrFormat(
          "op times: UNCALIBRATED for %s: %s", loaded_.cluster.gpu.name(),
          profile.source()));
    }
    if (plan_.tp > 1 || plan_.pp > 1) {
      report.add_notes(
          loaded_.cluster.collectives.source().empty()
              ? std::string("collective tuning: none (raw link bandwidth, no launch or "
                            "step time): no collectives.textproto beside the GPU catalog")
              : absl::StrCat("collective tuning: ", loaded_.cluster.collectives.source()));
    }
    if (!options_.trace_path.empty()) {
      absl::Status status = trace_.Write(options_.trace_path);
      if (!status.ok()) return status;
    }
    return report;
  }

  const scenario::LoadedScenario& loaded_;
  ReplayOptions options_;
  const model::ModelDims& dims_;
  const parallel::Plan& plan_;
  const v1::Workload& workload_;
  model::ModelGraph graph_;
  cost::CostModel cost_;
  memory::RuntimeOverheads runtime_;
  hardware::Platform platform_;

  int64_t steps_ = 1;
  std::vector<std::vector<int64_t>> sequences_;  // [replica][micro-batch]
  std::vector<int64_t> replica_sequences_;
  std::map<CollectiveKey, double> collective_s_;
  Algorithm algorithm_ = Algorithm::kRing;
  double start_s_ = 0;
  // [replica][micro-batch][step]: when the step's token was sampled.
  std::vector<std::vector<std::vector<double>>> token_times_;
  std::vector<double> stage_compute_;  // [replica * pp + stage]
  std::vector<double> stage_comm_;
  std::vector<std::unique_ptr<memory::RankLedger>> ledgers_;  // by rank index
  int64_t flows_ = 0;
  int64_t collectives_replayed_ = 0;
  report::TraceWriter trace_;
};

}  // namespace

absl::StatusOr<v1::RunReport> Replay(const scenario::LoadedScenario& loaded,
                                     const ReplayOptions& options) {
  Replayer replayer(loaded, options);
  return replayer.Run();
}

}  // namespace shardsim::engine
