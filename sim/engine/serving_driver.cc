#include "sim/engine/serving_driver.h"

#include <algorithm>
#include <fstream>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "simgrid/s4u.hpp"
#include "sim/cost/roofline.h"
#include "sim/engine/collectives.h"
#include "sim/engine/executor.h"
#include "sim/hardware/platform_builder.h"
#include "sim/memory/ledger.h"
#include "sim/metrics/digest.h"
#include "sim/metrics/run_metrics.h"
#include "sim/parallel/program.h"
#include "sim/serving/scheduler.h"

namespace shardsim::engine {
namespace {

namespace s4u = simgrid::s4u;

// vLLM's default share of GPU memory it plans with.
constexpr double kDefaultUtilization = 0.9;
// Refused requests named in the report; the rest are counted.
constexpr int kRefusalsNamed = 5;

struct Replica {
  explicit Replica(const serving::SchedulerLimits& limits) : scheduler(limits) {}
  serving::Scheduler scheduler;
  s4u::SemaphorePtr wake = s4u::Semaphore::create(0);
  bool idle = false;
  double compute_s = 0;
  double comm_s = 0;
  int64_t peak_blocks = 0;
};

class ServingDriver {
 public:
  ServingDriver(const parallel::Deployment& d, const v1::Serving& serving,
                serving::RequestSource& source, const ServingOptions& options)
      : options_(options),
        d_(d),
        serving_(serving),
        source_(source),
        graph_(model::BuildGraph(d.model, d.plan.shard)),
        cost_(d.cluster.gpu, d.model, d.cluster.profile),
        program_(parallel::BuildProgram(graph_, d.plan)),
        runtime_(memory::ResolveRuntime(d.runtime)) {
    const double utilization = serving.scheduler().gpu_memory_utilization() > 0
                                   ? serving.scheduler().gpu_memory_utilization()
                                   : kDefaultUtilization;
    serving::SchedulerLimits limits = serving::ResolveLimits(serving.scheduler(), 0);
    // The profiling step: the token budget spread over the most sequences.
    const int64_t profile_sequences =
        std::min(limits.max_num_seqs, limits.max_num_batched_tokens);
    std::vector<model::SequenceStep> profile;
    for (int64_t s = 0; s < profile_sequences; ++s) {
      const int64_t share = limits.max_num_batched_tokens / profile_sequences +
                            (s < limits.max_num_batched_tokens % profile_sequences ? 1 : 0);
      profile.push_back({share, 0, true});
    }
    const model::StepShape profile_shape = model::ShapeOf(profile);
    int64_t blocks = std::numeric_limits<int64_t>::max();
    for (const parallel::Rank& rank : d.plan.ranks) {
      const int64_t on_rank = memory::KvCacheBlocks(
          graph_, d.plan, rank, runtime_, d.cluster.gpu.capacity_bytes(), utilization,
          limits.block_size, profile_shape);
      blocks = std::min(blocks, on_rank);
      non_kv_bytes_.push_back(NonKvBytes(rank, profile_shape));
    }
    limits.total_blocks = serving.scheduler().num_gpu_blocks_override() > 0
                              ? serving.scheduler().num_gpu_blocks_override()
                              : blocks;
    limits_ = limits;
    for (int r = 0; r < d.plan.dp; ++r) replicas_.push_back(std::make_unique<Replica>(limits));
  }

  absl::StatusOr<v1::ServeReport> Run() {
    if (!options_.requests_path.empty()) {
      requests_file_.open(options_.requests_path, std::ios::trunc);
      if (!requests_file_) {
        return absl::UnavailableError(
            absl::StrCat(options_.requests_path, ": cannot write the request table"));
      }
      requests_file_ << "id,status,arrival_s,first_scheduled_s,first_token_s,finish_s,"
                        "prompt_tokens,output_tokens,preemptions\n";
    }
    s4u::Engine* engine = s4u::Engine::get_instance();
    platform_ = hardware::BuildPlatform(d_.cluster, engine);
    executor_ = std::make_unique<Executor>(d_.cluster, platform_, cost_, program_,
                                           TpGroups(d_.plan),
                                           ChooseAlgorithm(d_.cluster, d_.plan.TpGroup(0, 0)));
    s4u::Actor::create("arrivals", platform_.gpus[0], [this] { Arrivals(); });
    for (int r = 0; r < d_.plan.dp; ++r) {
      s4u::Actor::create(absl::StrCat("replica", r), Host(r), [this, r] { Serve(r); });
    }
    engine->run();
    if (requests_file_.is_open()) {
      requests_file_.close();
      if (!requests_file_) {
        return absl::UnavailableError(
            absl::StrCat(options_.requests_path, ": cannot write the request table"));
      }
    }
    return Report();
  }

  void RequestRow(const serving::RequestState& s, const char* status) {
    if (!requests_file_.is_open()) return;
    requests_file_ << absl::StrFormat("%d,%s,%.9f,%.9f,%.9f,%.9f,%d,%d,%d\n", s.request.id, status,
                                      s.request.arrival_s, s.first_scheduled_s, s.first_token_s,
                                      s.finished_s, s.request.prompt_tokens,
                                      s.request.output_tokens, s.preemptions);
  }

 private:
  s4u::Host* Host(int replica) const {
    return platform_.gpus[static_cast<size_t>(program_.Stage(replica, 0).gpus[0])];
  }

  int64_t NonKvBytes(const parallel::Rank& rank, const model::StepShape& profile) const {
    memory::RankLedger ledger(graph_, d_.plan, rank, runtime_);
    ledger.Step(profile, 0, 0);
    return ledger.current().total_bytes();
  }

  int Route() {
    const v1::Router::Policy policy = serving_.router().policy();
    int best = 0;
    for (int r = 1; r < static_cast<int>(replicas_.size()); ++r) {
      const serving::Scheduler& a = replicas_[static_cast<size_t>(r)]->scheduler;
      const serving::Scheduler& b = replicas_[static_cast<size_t>(best)]->scheduler;
      if (policy == v1::Router::LEAST_OUTSTANDING && a.outstanding() < b.outstanding()) best = r;
      if (policy == v1::Router::LEAST_KV && a.used_blocks() < b.used_blocks()) best = r;
    }
    if (policy == v1::Router::LEAST_OUTSTANDING || policy == v1::Router::LEAST_KV) return best;
    return static_cast<int>(requests_ % static_cast<int64_t>(replicas_.size()));
  }

  void Arrivals() {
    while (std::optional<serving::Request> request = source_.Next()) {
      const double now = s4u::Engine::get_clock();
      if (request->arrival_s > now) s4u::this_actor::sleep_for(request->arrival_s - now);
      if (requests_ == 0) first_arrival_s_ = request->arrival_s;
      const int r = Route();
      ++requests_;
      Replica& replica = *replicas_[static_cast<size_t>(r)];
      if (!replica.scheduler.Add(*request)) {
        ++refused_;
        serving::RequestState refused;
        refused.request = *request;
        RequestRow(refused, "refused");
        if (refused_ <= kRefusalsNamed) {
          refusals_.push_back(absl::StrFormat(
              "request %d (%d prompt + %d output tokens): needs %d KV blocks of %d; the cache "
              "holds %d",
              request->id, request->prompt_tokens, request->output_tokens,
              replica.scheduler.BlocksFor(request->prompt_tokens + request->output_tokens - 1),
              limits_.block_size, limits_.total_blocks));
        }
        continue;
      }
      if (replica.idle) {
        replica.idle = false;
        replica.wake->release();
      }
    }
    arrivals_done_ = true;
    for (auto& replica : replicas_) {
      if (replica->idle) {
        replica->idle = false;
        replica->wake->release();
      }
    }
  }

  void Serve(int r) {
    Replica& replica = *replicas_[static_cast<size_t>(r)];
    const parallel::StageProgram& stage = program_.Stage(r, 0);
    while (true) {
      if (!replica.scheduler.HasWork()) {
        if (arrivals_done_) return;
        replica.idle = true;
        replica.wake->acquire();
        continue;
      }
      const serving::StepPlan plan = replica.scheduler.Schedule(s4u::Engine::get_clock());
      preemptions_ += plan.preempted;
      if (plan.empty()) return;  // unreachable: Add() refuses what can never run
      const model::StepShape shape = plan.Shape();
      ++steps_;
      batch_size_sum_ += shape.sequences;
      batch_size_max_ = std::max(batch_size_max_, shape.sequences);
      tokens_sum_ += shape.new_tokens;
      tokens_max_ = std::max(tokens_max_, shape.new_tokens);
      kv_blocks_sum_ += static_cast<double>(replica.scheduler.used_blocks());
      replica.peak_blocks = std::max(replica.peak_blocks, replica.scheduler.used_blocks());
      const StageStepTime time = executor_->RunStageStep(stage, shape);
      replica.compute_s += time.compute_s;
      replica.comm_s += time.comm_s;
      const double now = s4u::Engine::get_clock();
      for (const serving::ScheduledSequence& s : plan.sequences) {
        if (s.samples && s.state->last_token_s >= 0) itl_.Add(now - s.state->last_token_s);
      }
      for (const serving::RequestState& done : replica.scheduler.Complete(plan, now)) Finish(done);
    }
  }

  void Finish(const serving::RequestState& s) {
    RequestRow(s, "completed");
    ++completed_;
    last_finish_s_ = std::max(last_finish_s_, s.finished_s);
    input_tokens_ += s.request.prompt_tokens;
    output_tokens_ += s.request.output_tokens;
    const double ttft = s.first_token_s - s.request.arrival_s;
    const double e2e = s.finished_s - s.request.arrival_s;
    ttft_.Add(ttft);
    e2e_.Add(e2e);
    queue_.Add(s.first_scheduled_s - s.request.arrival_s);
    double tpot = 0;
    if (s.request.output_tokens > 1) {
      tpot = (s.finished_s - s.first_token_s) / static_cast<double>(s.request.output_tokens - 1);
      tpot_.Add(tpot);
    }
    const v1::Slo& slo = serving_.slo();
    if ((slo.ttft_s() == 0 || ttft <= slo.ttft_s()) && (slo.tpot_s() == 0 || tpot <= slo.tpot_s()) &&
        (slo.e2e_s() == 0 || e2e <= slo.e2e_s())) {
      ++slo_met_;
    }
  }

  v1::ServeReport Report() const {
    const parallel::Plan& plan = d_.plan;
    v1::ServeReport report;
    metrics::SetDeploymentFields(d_, &report);
    report.set_max_num_seqs(limits_.max_num_seqs);
    report.set_max_num_batched_tokens(limits_.max_num_batched_tokens);
    report.set_chunked_prefill(limits_.chunked_prefill);
    report.set_block_size(limits_.block_size);
    report.set_router(v1::Router::Policy_Name(serving_.router().policy() ==
                                                      v1::Router::POLICY_UNSPECIFIED
                                                  ? v1::Router::ROUND_ROBIN
                                                  : serving_.router().policy()));
    report.set_requests(requests_);
    report.set_completed(completed_);
    report.set_refused(refused_);
    const double span = completed_ > 0 ? last_finish_s_ - first_arrival_s_ : 0;
    report.set_span_s(span);
    report.set_input_tokens(input_tokens_);
    report.set_output_tokens(output_tokens_);
    if (span > 0) {
      report.set_requests_per_s(static_cast<double>(completed_) / span);
      report.set_input_tokens_per_s(static_cast<double>(input_tokens_) / span);
      report.set_output_tokens_per_s(static_cast<double>(output_tokens_) / span);
      report.set_output_tokens_per_s_per_gpu(report.output_tokens_per_s() / plan.num_gpus());
      report.set_goodput_requests_per_s(static_cast<double>(slo_met_) / span);
    }
    *report.mutable_ttft() = ttft_.ToProto();
    *report.mutable_tpot() = tpot_.ToProto();
    *report.mutable_itl() = itl_.ToProto();
    *report.mutable_e2e() = e2e_.ToProto();
    *report.mutable_queue() = queue_.ToProto();
    report.set_slo_met(slo_met_);
    if (completed_ > 0) {
      report.set_slo_attainment(static_cast<double>(slo_met_) / static_cast<double>(completed_));
    }
    report.set_preemptions(preemptions_);
    report.set_kv_blocks_capacity(limits_.total_blocks);
    int64_t peak_blocks = 0;
    for (const auto& replica : replicas_) peak_blocks = std::max(peak_blocks, replica->peak_blocks);
    report.set_kv_blocks_peak(peak_blocks);
    report.set_steps(steps_);
    if (steps_ > 0) {
      report.set_kv_blocks_mean(kv_blocks_sum_ / static_cast<double>(steps_));
      report.set_batch_size_mean(static_cast<double>(batch_size_sum_) / static_cast<double>(steps_));
      report.set_tokens_per_step_mean(static_cast<double>(tokens_sum_) / static_cast<double>(steps_));
    }
    report.set_batch_size_max(batch_size_max_);
    report.set_tokens_per_step_max(tokens_max_);
    double comm_share = 0;
    for (size_t index = 0; index < plan.ranks.size(); ++index) {
      const parallel::Rank& rank = plan.ranks[index];
      const Replica& replica = *replicas_[static_cast<size_t>(rank.dp_replica)];
      v1::GpuServe* gpu = report.add_gpus();
      gpu->set_gpu(rank.gpu);
      gpu->set_node(rank.node);
      gpu->set_tp_rank(rank.tp_rank);
      gpu->set_pp_stage(rank.pp_stage);
      gpu->set_dp_replica(rank.dp_replica);
      gpu->set_compute_s(replica.compute_s);
      gpu->set_comm_s(replica.comm_s);
      gpu->set_idle_s(std::max(0.0, span - replica.compute_s - replica.comm_s));
      gpu->set_peak_memory_bytes(non_kv_bytes_[index] +
                                 replica.peak_blocks *
                                     memory::RankKvBytes(graph_, rank, 1, limits_.block_size, 0));
      gpu->set_capacity_bytes(d_.cluster.gpu.capacity_bytes());
      if (span > 0) comm_share += replica.comm_s / span;
    }
    report.set_comm_overhead(comm_share / plan.num_gpus());
    for (const std::string& refusal : refusals_) report.add_refused_requests(refusal);
    report.add_notes(absl::StrFormat(
        "KV cache: %d blocks of %d tokens per replica (vLLM's rule: %.2f of each GPU's capacity "
        "less weights, a %d-token profiling step's activations and runtime memory)",
        limits_.total_blocks, limits_.block_size,
        serving_.scheduler().gpu_memory_utilization() > 0
            ? serving_.scheduler().gpu_memory_utilization()
            : kDefaultUtilization,
        limits_.max_num_batched_tokens));
    report.add_notes(absl::StrFormat(
        "percentiles from a histogram of 0.1%%-wide buckets; means and maxima are exact; "
        "%d distinct collectives simulated as flows (%d flows)",
        executor_->distinct_collectives(), executor_->flows()));
    const v1::EfficiencyProfile& profile = cost_.profile();
    report.add_notes(profile.derived()
                         ? absl::StrCat("op times: UNCALIBRATED for ", d_.cluster.gpu.name(), ": ",
                                        profile.source())
                         : absl::StrCat("op times: calibrated: ", profile.source()));
    return report;
  }

  ServingOptions options_;
  std::ofstream requests_file_;
  const parallel::Deployment& d_;
  const v1::Serving& serving_;
  serving::RequestSource& source_;
  model::ModelGraph graph_;
  cost::CostModel cost_;
  parallel::Program program_;
  memory::RuntimeOverheads runtime_;
  serving::SchedulerLimits limits_;
  std::vector<int64_t> non_kv_bytes_;  // by rank index
  hardware::Platform platform_;
  std::unique_ptr<Executor> executor_;
  std::vector<std::unique_ptr<Replica>> replicas_;

  bool arrivals_done_ = false;
  int64_t requests_ = 0;
  int64_t refused_ = 0;
  std::vector<std::string> refusals_;
  int64_t completed_ = 0;
  double first_arrival_s_ = 0;
  double last_finish_s_ = 0;
  int64_t input_tokens_ = 0;
  int64_t output_tokens_ = 0;
  int64_t slo_met_ = 0;
  int64_t preemptions_ = 0;
  int64_t steps_ = 0;
  int64_t batch_size_sum_ = 0;
  int64_t batch_size_max_ = 0;
  int64_t tokens_sum_ = 0;
  int64_t tokens_max_ = 0;
  double kv_blocks_sum_ = 0;
  metrics::Digest ttft_, tpot_, itl_, e2e_, queue_;
};

}  // namespace

absl::StatusOr<v1::ServeReport> RunServing(const parallel::Deployment& deployment,
                                           const v1::Serving& serving,
                                           serving::RequestSource& source,
                                           const ServingOptions& options) {
  if (deployment.plan.pp > 1) {
    return absl::UnimplementedError(absl::StrCat(
        "serve: pipeline parallelism (pp=", deployment.plan.pp,
        ") is not simulated for serving yet; use tp and dp"));
  }
  if (deployment.model.kind == v1::ENCODER_ONLY) {
    return absl::InvalidArgumentError(
        absl::StrCat("serve: ", deployment.model.name, " is encoder-only: it generates no tokens"));
  }
  ServingDriver driver(deployment, serving, source, options);
  return driver.Run();
}

}  // namespace shardsim::engine
