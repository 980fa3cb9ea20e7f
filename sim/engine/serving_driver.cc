#include "sim/engine/serving_driver.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "simgrid/s4u.hpp"
#include "sim/cost/roofline.h"
#include "sim/engine/replica_runner.h"
#include "sim/hardware/platform_builder.h"
#include "sim/metrics/request_tally.h"
#include "sim/metrics/run_metrics.h"
#include "sim/report/trace.h"
#include "sim/serving/request_table.h"
#include "sim/serving/scheduler.h"

namespace shardsim::engine {
namespace {

namespace s4u = simgrid::s4u;

class ServingDriver {
 public:
  ServingDriver(const parallel::Deployment& d, const v1::Serving& serving,
                serving::RequestSource& source, const ServingOptions& options)
      : options_(options),
        d_(d),
        serving_(serving),
        source_(source),
        cost_(d.cluster.gpu, d.model, d.cluster.profile) {
    ReplicaRunnerOptions runner;
    runner.deployment = &d;
    runner.plan = &d.plan;
    runner.scheduler = serving.scheduler();
    runner.cost = &cost_;
    runner.tally = &tally_;
    if (!options.trace_path.empty()) runner.trace = &trace_;
    runner.trace_pid = 0;  // replica r is process r; requests come after them
    runner.requests_pid = RequestsPid();
    runner.hooks.finished = [this](ServingReplica& replica, serving::RequestState& done,
                                   const ServingBatch&) {
      Finish(done);
      TraceRequest(done, replica.index);
    };
    runner.hooks.may_stop = [this] { return arrivals_done_; };
    replicas_ = std::make_unique<ReplicaRunner>(std::move(runner));
  }

  absl::StatusOr<v1::ServeReport> Run() {
    if (absl::Status opened = requests_table_.Open(options_.requests_path); !opened.ok()) {
      return opened;
    }
    if (absl::Status checked = replicas_->Check(); !checked.ok()) return checked;
    if (!options_.trace_path.empty()) {
      absl::Status opened = trace_.Open(options_.trace_path);
      if (!opened.ok()) return opened;
      replicas_->NameTraceTracks();
      trace_.NameProcess(RequestsPid(), "requests");
    }
    s4u::Engine* engine = s4u::Engine::get_instance();
    platform_ = hardware::BuildPlatform(d_.cluster, engine);
    s4u::Actor::create("arrivals", platform_.gpus[0], [this] { Arrivals(); });
    replicas_->Start(platform_, "replica");
    engine->run();
    // Conservation, checked on every run: each replica ends with nothing
    // queued, nothing in flight and its KV cache empty.
    for (int r = 0; r < replicas_->size(); ++r) {
      const ServingReplica& replica = replicas_->replica(r);
      if (replica.scheduler.HasWork() || !replica.in_flight.empty() ||
          replica.scheduler.used_blocks() != 0) {
        return absl::InternalError(absl::StrFormat(
            "serve: replica %d ended with %d requests outstanding, %d batches in flight and %d "
            "KV blocks in use",
            r, replica.scheduler.outstanding(), replica.in_flight.size(),
            replica.scheduler.used_blocks()));
      }
    }
    if (!options_.trace_path.empty()) {
      absl::Status closed = trace_.Close();
      if (!closed.ok()) return closed;
    }
    if (absl::Status closed = requests_table_.Close(); !closed.ok()) return closed;
    return Report();
  }

 private:
  bool tracing() const { return !options_.trace_path.empty(); }
  // The trace's process for requests' async slices (replicas are 0..dp-1).
  int RequestsPid() const { return d_.plan.dp; }

  // A finished request's life, now that its times are known.
  void TraceRequest(const serving::RequestState& s, int replica) {
    if (!tracing()) return;
    TraceRequestLife(trace_, RequestsPid(), s, absl::StrCat(replica));
  }

  int Route() {
    const v1::Router::Policy policy = serving_.router().policy();
    int best = 0;
    for (int r = 1; r < replicas_->size(); ++r) {
      const serving::Scheduler& a = replicas_->replica(r).scheduler;
      const serving::Scheduler& b = replicas_->replica(best).scheduler;
      if (policy == v1::Router::LEAST_OUTSTANDING && a.outstanding() < b.outstanding()) best = r;
      if (policy == v1::Router::LEAST_KV && a.used_blocks() < b.used_blocks()) best = r;
    }
    if (policy == v1::Router::LEAST_OUTSTANDING || policy == v1::Router::LEAST_KV) return best;
    return static_cast<int>(tally_.requests() % static_cast<int64_t>(replicas_->size()));
  }

  void Arrivals() {
    const serving::SchedulerLimits& limits = replicas_->limits();
    while (std::optional<serving::Request> request = source_.Next()) {
      const double now = s4u::Engine::get_clock();
      if (request->arrival_s > now) s4u::this_actor::sleep_for(request->arrival_s - now);
      const int r = Route();
      tally_.Arrived(request->arrival_s);
      ServingReplica& replica = replicas_->replica(r);
      if (!replica.scheduler.Add(*request)) {
        serving::RequestState refused;
        refused.request = *request;
        requests_table_.Row(refused, "refused");
        tally_.Refused(absl::StrFormat(
            "request %d (%d prompt + %d output tokens): needs %d KV blocks of %d; the cache "
            "holds %d",
            request->id, request->prompt_tokens, request->output_tokens,
            replica.scheduler.BlocksFor(request->prompt_tokens + request->output_tokens - 1),
            limits.block_size, limits.total_blocks));
        continue;
      }
      replicas_->TraceCounters(replica, s4u::Engine::get_clock());
      replicas_->Wake(replica);
    }
    arrivals_done_ = true;
    for (int r = 0; r < replicas_->size(); ++r) replicas_->Wake(replicas_->replica(r));
  }

  void Finish(const serving::RequestState& s) {
    requests_table_.Row(s, "completed");
    swaps_ += s.swaps;
    tally_.Finished({s.request.arrival_s, s.first_scheduled_s, s.first_token_s, s.finished_s,
                     s.request.prompt_tokens, s.request.output_tokens});
  }

  v1::ServeReport Report() const {
    const parallel::Plan& plan = d_.plan;
    const serving::SchedulerLimits& limits = replicas_->limits();
    const ReplicaStats& stats = replicas_->stats();
    v1::ServeReport report;
    metrics::SetDeploymentFields(d_, &report);
    report.set_max_num_seqs(limits.max_num_seqs);
    report.set_max_num_batched_tokens(limits.max_num_batched_tokens);
    report.set_chunked_prefill(limits.chunked_prefill);
    report.set_block_size(limits.block_size);
    report.set_router(v1::Router::Policy_Name(serving_.router().policy() ==
                                                      v1::Router::POLICY_UNSPECIFIED
                                                  ? v1::Router::ROUND_ROBIN
                                                  : serving_.router().policy()));
    tally_.Fill(plan.num_gpus(), &report);
    const double span = tally_.span_s();
    report.set_preemptions(stats.preemptions);
    report.set_kv_blocks_capacity(limits.total_blocks);
    int64_t peak_blocks = 0;
    for (int r = 0; r < replicas_->size(); ++r) {
      peak_blocks = std::max(peak_blocks, replicas_->replica(r).peak_blocks);
    }
    report.set_kv_blocks_peak(peak_blocks);
    report.set_steps(stats.steps);
    if (stats.steps > 0) {
      const double steps = static_cast<double>(stats.steps);
      report.set_kv_blocks_mean(stats.kv_blocks_sum / steps);
      report.set_batch_size_mean(static_cast<double>(stats.batch_size_sum) / steps);
      report.set_tokens_per_step_mean(static_cast<double>(stats.tokens_sum) / steps);
    }
    report.set_batch_size_max(stats.batch_size_max);
    report.set_tokens_per_step_max(stats.tokens_max);
    double comm_share = 0;
    replicas_->AddGpus(span, &report, &comm_share);
    report.set_comm_overhead(comm_share / plan.num_gpus());
    report.add_notes(absl::StrCat("KV cache: ", replicas_->KvRuleNote()));
    if (limits.swap) report.add_notes(replicas_->SwapNote(swaps_));
    if (replicas_->lock_step()) report.add_notes(replicas_->LockStepNote());
    report.add_notes(absl::StrFormat(
        "percentiles from a histogram of 0.1%%-wide buckets; means and maxima are exact; "
        "%d distinct collectives simulated as flows (%d flows)",
        replicas_->executor().distinct_collectives(), replicas_->executor().flows()));
    const v1::EfficiencyProfile& profile = cost_.profile();
    report.add_notes(profile.derived()
                         ? absl::StrCat("op times: UNCALIBRATED for ", d_.cluster.gpu.name(), ": ",
                                        profile.source())
                         : absl::StrCat("op times: calibrated: ", profile.source()));
    return report;
  }

  ServingOptions options_;
  serving::RequestTable requests_table_;
  report::TraceWriter trace_;
  const parallel::Deployment& d_;
  const v1::Serving& serving_;
  serving::RequestSource& source_;
  cost::CostModel cost_;
  metrics::RequestTally tally_{serving_.slo()};
  hardware::Platform platform_;
  std::unique_ptr<ReplicaRunner> replicas_;
  bool arrivals_done_ = false;
  int64_t swaps_ = 0;
};

}  // namespace

absl::StatusOr<v1::ServeReport> RunServing(const parallel::Deployment& deployment,
                                           const v1::Serving& serving,
                                           serving::RequestSource& source,
                                           const ServingOptions& options) {
  if (deployment.model.kind == v1::ENCODER_ONLY) {
    return absl::InvalidArgumentError(
        absl::StrCat("serve: ", deployment.model.name, " is encoder-only: it generates no tokens"));
  }
  ServingDriver driver(deployment, serving, source, options);
  return driver.Run();
}

}  // namespace shardsim::engine
