#include "sim/engine/serving_driver.h"

#include <algorithm>
#include <deque>
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
#include "sim/metrics/request_tally.h"
#include "sim/metrics/run_metrics.h"
#include "sim/parallel/program.h"
#include "sim/report/trace.h"
#include "sim/serving/request_table.h"
#include "sim/serving/scheduler.h"

namespace shardsim::engine {
namespace {

namespace s4u = simgrid::s4u;

// vLLM's default share of GPU memory it plans with.
constexpr double kDefaultUtilization = 0.9;
// vLLM V0's --swap-space default: 4 GiB of host memory per GPU for swapped
// KV blocks (vllm/engine/arg_utils.py, swap_space = 4).
constexpr double kDefaultSwapSpaceGib = 4;

// A scheduled batch on its way through a replica's pipeline stages.
struct Batch {
  serving::StepPlan plan;
  model::StepShape shape;
  int64_t seq = 0;       // the replica's batches are numbered as scheduled
  double token_s = 0;    // when the last stage finished it (tokens sampled)
  int64_t decodes = 0;         // sequences decoding one token (for the trace)
  int64_t prefill_tokens = 0;  // the other sequences' new tokens
};

struct Replica {
  Replica(const serving::SchedulerLimits& limits, int pp, int replica_index)
      : index(replica_index),
        scheduler(limits),
        compute_s(static_cast<size_t>(pp), 0),
        comm_s(static_cast<size_t>(pp), 0) {}
  int index;
  serving::Scheduler scheduler;
  s4u::SemaphorePtr wake = s4u::Semaphore::create(0);
  bool idle = false;
  // Batches in flight, oldest first (at most pp); in_flight[i] has sequence
  // number front_seq + i.
  std::deque<Batch> in_flight;
  int64_t front_seq = 0;
  int64_t next_seq = 0;
  std::vector<double> compute_s;  // by pipeline stage
  std::vector<double> comm_s;
  int64_t peak_blocks = 0;
  // In a lock-step expert group: the group step this replica joins next.
  int64_t next_group_step = 0;
  // The trace's counters as last written, so only changes are written.
  int64_t traced_blocks = -1;
  int64_t traced_waiting = -1;
  int64_t traced_running = -1;
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
        runtime_(memory::ResolveRuntime(d.runtime, d.cluster.gpu.capacity_bytes())) {
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
    // A block's bytes on each stage's GPUs (the stage's layers, the GPU's
    // heads); the swap space holds what fits on the GPU that fits fewest.
    for (int s = 0; s < d.plan.pp; ++s) {
      const parallel::Rank& rank = d.plan.ranks[static_cast<size_t>(d.plan.RankIndex(0, s, 0))];
      block_bytes_.push_back(memory::RankKvBytes(graph_, rank, 1, limits.block_size, 0));
    }
    if (limits.swap) {
      const double gib = serving.scheduler().swap_space_gib() > 0
                             ? serving.scheduler().swap_space_gib()
                             : kDefaultSwapSpaceGib;
      swap_space_gib_ = gib;
      limits.host_blocks = std::numeric_limits<int64_t>::max();
      for (int64_t bytes : block_bytes_) {
        if (bytes <= 0) continue;
        limits.host_blocks = std::min(
            limits.host_blocks, static_cast<int64_t>(gib * 1073741824.0 / static_cast<double>(bytes)));
      }
      if (limits.host_blocks == std::numeric_limits<int64_t>::max()) limits.host_blocks = 0;
    }
    limits_ = limits;
    for (int r = 0; r < d.plan.dp; ++r) {
      replicas_.push_back(std::make_unique<Replica>(limits, d.plan.pp, r));
    }
    // With ep > tp (and pp = 1), the ep / tp consecutive replicas of an
    // expert group step in lock step (Executor::RunExpertGroupStep), as
    // vLLM's data-parallel engines do while any of them has requests.
    const parallel::StageProgram& first = program_.Stage(0, 0);
    if (!first.expert_gpus.empty() && d.plan.pp == 1) {
      group_size_ = static_cast<int>(first.expert_gpus.size() / first.gpus.size());
      group_opened_.assign(static_cast<size_t>(d.plan.dp / group_size_), -1);
    }
  }

  absl::StatusOr<v1::ServeReport> Run() {
    if (absl::Status opened = requests_table_.Open(options_.requests_path); !opened.ok()) {
      return opened;
    }
    if (limits_.swap && d_.cluster.gpu.pcie_bandwidth_bytes_per_s() <= 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "serving.scheduler.preemption_mode: SWAP copies KV blocks over each GPU's PCIe link, "
          "and the catalog gives ", d_.cluster.gpu.name(), " no pcie_bandwidth_bytes_per_s"));
    }
    if (!options_.trace_path.empty()) {
      absl::Status opened = trace_.Open(options_.trace_path);
      if (!opened.ok()) return opened;
      StartTrace();
    }
    s4u::Engine* engine = s4u::Engine::get_instance();
    platform_ = hardware::BuildPlatform(d_.cluster, engine);
    executor_ = std::make_unique<Executor>(d_.cluster, platform_, cost_, program_,
                                           TpGroups(d_.plan),
                                           ChooseAlgorithm(d_.cluster, d_.plan.TpGroup(0, 0)),
                                           scenario::ResolveRuntimeProfile(d_.runtime));
    s4u::Actor::create("arrivals", platform_.gpus[0], [this] { Arrivals(); });
    for (int r = 0; r < d_.plan.dp; ++r) {
      s4u::Actor::create(absl::StrCat("replica", r), Host(r, 0), [this, r] { Serve(r); });
      // Later stages only follow the batches stage 0 sends them: daemons,
      // ended when the last non-daemon actor (stage 0 here) is done.
      for (int s = 1; s < d_.plan.pp; ++s) {
        s4u::Actor::create(absl::StrCat("replica", r, "-stage", s), Host(r, s),
                           [this, r, s] { FollowStage(r, s); })
            ->daemonize();
      }
    }
    engine->run();
    // Conservation, checked on every run: each replica ends with nothing
    // queued, nothing in flight and its KV cache empty.
    for (size_t r = 0; r < replicas_.size(); ++r) {
      const Replica& replica = *replicas_[r];
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

  void RequestRow(const serving::RequestState& s, const char* status) {
    requests_table_.Row(s, status);
  }

 private:
  bool tracing() const { return !options_.trace_path.empty(); }
  // The trace's process for requests' async slices (replicas are 0..dp-1).
  int RequestsPid() const { return d_.plan.dp; }

  void StartTrace() {
    for (int r = 0; r < d_.plan.dp; ++r) {
      trace_.NameProcess(r, absl::StrCat("replica ", r));
      for (int s = 0; s < d_.plan.pp; ++s) {
        const std::vector<int>& gpus = program_.Stage(r, s).gpus;
        trace_.NameThread(r, s, absl::StrCat("stage ", s, ": GPU ", gpus.front(),
                                             gpus.size() > 1 ? absl::StrCat("-", gpus.back())
                                                             : std::string()));
      }
      TraceCounters(*replicas_[static_cast<size_t>(r)], 0);
    }
    trace_.NameProcess(RequestsPid(), "requests");
  }

  // The replica's KV blocks in use and its queue, when they changed.
  void TraceCounters(Replica& replica, double now) {
    if (!tracing()) return;
    const serving::Scheduler& scheduler = replica.scheduler;
    if (scheduler.used_blocks() != replica.traced_blocks) {
      replica.traced_blocks = scheduler.used_blocks();
      trace_.Counter(replica.index, "KV blocks", now,
                     {{"used", absl::StrCat(replica.traced_blocks)}});
    }
    if (scheduler.waiting() != replica.traced_waiting ||
        scheduler.running() != replica.traced_running) {
      replica.traced_waiting = scheduler.waiting();
      replica.traced_running = scheduler.running();
      trace_.Counter(replica.index, "requests", now,
                     {{"waiting", absl::StrCat(replica.traced_waiting)},
                      {"running", absl::StrCat(replica.traced_running)}});
    }
  }

  // A finished request's life, now that its times are known: queued until
  // first scheduled, prefill until its first token, then decode.
  void TraceRequest(const serving::RequestState& s, int replica) {
    if (!tracing()) return;
    const int pid = RequestsPid();
    const int64_t id = s.request.id;
    trace_.AsyncBegin(pid, "request", id, absl::StrCat("request ", id), s.request.arrival_s,
                      {{"replica", absl::StrCat(replica)},
                       {"prompt_tokens", absl::StrCat(s.request.prompt_tokens)},
                       {"output_tokens", absl::StrCat(s.request.output_tokens)},
                       {"preemptions", absl::StrCat(s.preemptions)}});
    trace_.AsyncBegin(pid, "request", id, "queued", s.request.arrival_s);
    trace_.AsyncEnd(pid, "request", id, "queued", s.first_scheduled_s);
    trace_.AsyncBegin(pid, "request", id, "prefill", s.first_scheduled_s);
    trace_.AsyncEnd(pid, "request", id, "prefill", s.first_token_s);
    if (s.finished_s > s.first_token_s) {
      trace_.AsyncBegin(pid, "request", id, "decode", s.first_token_s);
      trace_.AsyncEnd(pid, "request", id, "decode", s.finished_s);
    }
    trace_.AsyncEnd(pid, "request", id, absl::StrCat("request ", id), s.finished_s);
  }

  s4u::Host* Host(int replica, int stage) const {
    return platform_.gpus[static_cast<size_t>(program_.Stage(replica, stage).gpus[0])];
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
    return static_cast<int>(tally_.requests() % static_cast<int64_t>(replicas_.size()));
  }

  void Arrivals() {
    while (std::optional<serving::Request> request = source_.Next()) {
      const double now = s4u::Engine::get_clock();
      if (request->arrival_s > now) s4u::this_actor::sleep_for(request->arrival_s - now);
      const int r = Route();
      tally_.Arrived(request->arrival_s);
      Replica& replica = *replicas_[static_cast<size_t>(r)];
      if (!replica.scheduler.Add(*request)) {
        serving::RequestState refused;
        refused.request = *request;
        RequestRow(refused, "refused");
        tally_.Refused(absl::StrFormat(
            "request %d (%d prompt + %d output tokens): needs %d KV blocks of %d; the cache "
            "holds %d",
            request->id, request->prompt_tokens, request->output_tokens,
            replica.scheduler.BlocksFor(request->prompt_tokens + request->output_tokens - 1),
            limits_.block_size, limits_.total_blocks));
        continue;
      }
      TraceCounters(replica, s4u::Engine::get_clock());
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

  // A replica's scheduler and its first pipeline stage. As vLLM V1's engine
  // core does with its batch queue (step_with_batch_queue in
  // vllm/v1/engine/core.py; the queue holds max_concurrent_batches =
  // pipeline_parallel_size batches): while fewer than pp batches are in
  // flight and something can be scheduled, build a batch and run this
  // stage's part of it, then hand it to the next stage; otherwise wait for
  // the oldest batch to come back (its sampled tokens, from the last stage)
  // and complete it. New arrivals are seen when the loop comes round. With
  // pp = 1 a batch completes as soon as this stage has run it.
  bool lock_step() const { return group_size_ > 1; }
  int GroupOf(int r) const { return r / group_size_; }

  // Whether any replica of `r`'s expert group has requests (queued,
  // running or in flight).
  bool GroupHasWork(int r) const {
    const int first = GroupOf(r) * group_size_;
    for (int m = first; m < first + group_size_; ++m) {
      const Replica& replica = *replicas_[static_cast<size_t>(m)];
      if (replica.scheduler.HasWork() || !replica.in_flight.empty()) return true;
    }
    return false;
  }

  // Wakes the idle replicas of `r`'s expert group.
  void WakeGroup(int r) {
    const int first = GroupOf(r) * group_size_;
    for (int m = first; m < first + group_size_; ++m) {
      Replica& replica = *replicas_[static_cast<size_t>(m)];
      if (replica.idle) {
        replica.idle = false;
        replica.wake->release();
      }
    }
  }

  // The group step `replica` runs next; opening it wakes the group's idle
  // replicas, which join it with a dummy step.
  int64_t JoinGroupStep(Replica& replica) {
    const int64_t seq = replica.next_group_step++;
    int64_t& opened = group_opened_[static_cast<size_t>(GroupOf(replica.index))];
    if (opened < seq) {
      opened = seq;
      WakeGroup(replica.index);
    }
    return seq;
  }

  // An idle replica's part in an open group step: vLLM's dummy batch.
  void RunDummyStep(Replica& replica) {
    const int64_t seq = JoinGroupStep(replica);
    const double start = s4u::Engine::get_clock();
    const StageStepTime time =
        executor_->RunExpertGroupStep(program_.Stage(replica.index, 0), engine::DummyStep(),
                                        seq, /*dummy=*/true);
    replica.compute_s[0] += time.compute_s;
    replica.comm_s[0] += time.comm_s;
    ++dummy_steps_;
    group_wait_s_ += time.wait_s;
    if (tracing()) {
      trace_.Span(replica.index, 0, "dummy", start, s4u::Engine::get_clock(),
                  {{"compute_ms", absl::StrFormat("%.6f", time.compute_s * 1e3)},
                   {"comm_ms", absl::StrFormat("%.6f", time.comm_s * 1e3)}});
    }
  }

  void Serve(int r) {
    Replica& replica = *replicas_[static_cast<size_t>(r)];
    const int pp = d_.plan.pp;
    const parallel::StageProgram& stage = program_.Stage(r, 0);
    while (true) {
      if (lock_step() && !replica.scheduler.HasWork() &&
          group_opened_[static_cast<size_t>(GroupOf(r))] >= replica.next_group_step) {
        RunDummyStep(replica);  // nothing to run, but the group has opened a step
        continue;
      }
      if (static_cast<int>(replica.in_flight.size()) < pp && replica.scheduler.HasWork()) {
        const double now = s4u::Engine::get_clock();
        serving::StepPlan plan = replica.scheduler.Schedule(now);
        preemptions_ += plan.preempted;
        if (tracing()) {
          for (int64_t id : plan.preempted_ids) {
            trace_.AsyncInstant(RequestsPid(), "request", id, "preempted", now);
          }
          TraceCounters(replica, now);
        }
        if (!plan.empty()) {
          const model::StepShape shape = plan.Shape();
          int64_t decodes = 0, prefill_tokens = 0;  // for the trace only
          if (tracing()) {
            for (const serving::ScheduledSequence& q : plan.sequences) {
              const bool decode =
                  q.new_tokens == 1 && q.cached_tokens >= q.state->request.prompt_tokens;
              decodes += decode ? 1 : 0;
              prefill_tokens += decode ? 0 : q.new_tokens;
            }
          }
          ++steps_;
          batch_size_sum_ += shape.sequences;
          batch_size_max_ = std::max(batch_size_max_, shape.sequences);
          tokens_sum_ += shape.new_tokens;
          tokens_max_ = std::max(tokens_max_, shape.new_tokens);
          kv_blocks_sum_ += static_cast<double>(replica.scheduler.used_blocks());
          replica.peak_blocks = std::max(replica.peak_blocks, replica.scheduler.used_blocks());
          replica.in_flight.push_back(
              {std::move(plan), shape, replica.next_seq++, 0, decodes, prefill_tokens});
          const Batch& batch = replica.in_flight.back();
          RunStage(replica, stage, batch);
          if (pp == 1) {
            replica.in_flight.back().token_s = s4u::Engine::get_clock();
            CompleteOldest(replica);
          } else {
            executor_->Send(stage, batch.shape, Slot(batch.seq), /*to_first=*/false);
          }
          continue;
        }
      }
      if (!replica.in_flight.empty()) {
        // The oldest batch's sampled tokens, back from the last stage.
        executor_->Receive(r, 0, Slot(replica.front_seq));
        CompleteOldest(replica);
        continue;
      }
      // Nothing in flight and nothing to schedule now.
      if (replica.scheduler.HasWork()) return;  // unreachable: Add() refuses what can never run
      if (arrivals_done_ && !(lock_step() && GroupHasWork(r))) {
        // Group members waiting for more steps may now stop too.
        if (lock_step()) WakeGroup(r);
        return;
      }
      replica.idle = true;
      replica.wake->acquire();
    }
  }

  // Stage s > 0 of a replica: each batch in turn, as the stage before hands
  // it over; the last stage samples and sends the tokens back to stage 0.
  void FollowStage(int r, int s) {
    Replica& replica = *replicas_[static_cast<size_t>(r)];
    const parallel::StageProgram& stage = program_.Stage(r, s);
    const bool last = s == d_.plan.pp - 1;
    for (int64_t seq = 0;; ++seq) {
      executor_->Receive(r, s, Slot(seq));
      Batch& batch = replica.in_flight[static_cast<size_t>(seq - replica.front_seq)];
      RunStage(replica, stage, batch);
      if (last) batch.token_s = s4u::Engine::get_clock();
      executor_->Send(stage, batch.shape, Slot(seq), /*to_first=*/last);
    }
  }

  // The executor's hand-off mailbox of a batch. Batches go through the
  // stages in order and at most pp are in flight, so a batch's slot is free
  // again by the time batch seq + pp uses it.
  int Slot(int64_t seq) const { return static_cast<int>(seq % d_.plan.pp); }

  void RunStage(Replica& replica, const parallel::StageProgram& stage, const Batch& batch) {
    // Swaps first, as vLLM V0's worker copies blocks in, then out, before
    // the forward pass (vllm/worker/worker.py, execute_worker); each stage its own
    // layers' share. Counted as communication.
    const serving::StepPlan& plan = batch.plan;
    if (plan.swapped_in_blocks > 0 || plan.swapped_out_blocks > 0) {
      const double swap_start = s4u::Engine::get_clock();
      const int64_t block_bytes = block_bytes_[static_cast<size_t>(stage.stage)];
      double seconds = 0;
      if (plan.swapped_in_blocks > 0) {
        seconds += executor_->Swap(stage, plan.swapped_in_blocks * block_bytes, /*to_host=*/false);
      }
      if (plan.swapped_out_blocks > 0) {
        seconds += executor_->Swap(stage, plan.swapped_out_blocks * block_bytes, /*to_host=*/true);
      }
      replica.comm_s[static_cast<size_t>(stage.stage)] += seconds;
      swap_s_ += seconds;
      swapped_bytes_ += (plan.swapped_in_blocks + plan.swapped_out_blocks) * block_bytes *
                        static_cast<int64_t>(stage.gpus.size());
      if (tracing()) {
        trace_.Span(replica.index, stage.stage, "swap", swap_start, s4u::Engine::get_clock(),
                    {{"blocks_in", absl::StrCat(plan.swapped_in_blocks)},
                     {"blocks_out", absl::StrCat(plan.swapped_out_blocks)}});
      }
    }
    const double start = s4u::Engine::get_clock();
    StageStepTime time;
    if (lock_step()) {
      time = executor_->RunExpertGroupStep(stage, batch.shape, JoinGroupStep(replica));
      group_wait_s_ += time.wait_s;
    } else {
      time = executor_->RunStageStep(stage, batch.shape);
    }
    replica.compute_s[static_cast<size_t>(stage.stage)] += time.compute_s;
    replica.comm_s[static_cast<size_t>(stage.stage)] += time.comm_s;
    if (!tracing()) return;
    const char* name = batch.decodes == batch.shape.sequences ? "decode"
                       : batch.decodes == 0                   ? "prefill"
                                                              : "mixed";
    trace_.Span(replica.index, stage.stage, name, start, s4u::Engine::get_clock(),
                {{"batch", absl::StrCat(batch.seq)},
                 {"sequences", absl::StrCat(batch.shape.sequences)},
                 {"prefill_tokens", absl::StrCat(batch.prefill_tokens)},
                 {"decodes", absl::StrCat(batch.decodes)},
                 {"compute_ms", absl::StrFormat("%.6f", time.compute_s * 1e3)},
                 {"comm_ms", absl::StrFormat("%.6f", time.comm_s * 1e3)}});
  }

  // The oldest batch in flight is done: its tokens were sampled at
  // token_s.
  void CompleteOldest(Replica& replica) {
    const Batch& batch = replica.in_flight.front();
    for (const serving::ScheduledSequence& s : batch.plan.sequences) {
      if (s.samples && s.state->last_token_s >= 0) tally_.TokenGap(batch.token_s - s.state->last_token_s);
    }
    for (const serving::RequestState& done : replica.scheduler.Complete(batch.plan, batch.token_s)) {
      Finish(done);
      TraceRequest(done, replica.index);
    }
    replica.in_flight.pop_front();
    ++replica.front_seq;
    TraceCounters(replica, s4u::Engine::get_clock());
  }

  void Finish(const serving::RequestState& s) {
    RequestRow(s, "completed");
    swaps_ += s.swaps;
    tally_.Finished({s.request.arrival_s, s.first_scheduled_s, s.first_token_s, s.finished_s,
                     s.request.prompt_tokens, s.request.output_tokens});
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
    tally_.Fill(plan.num_gpus(), &report);
    const double span = tally_.span_s();
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
      const double compute_s = replica.compute_s[static_cast<size_t>(rank.pp_stage)];
      const double comm_s = replica.comm_s[static_cast<size_t>(rank.pp_stage)];
      gpu->set_compute_s(compute_s);
      gpu->set_comm_s(comm_s);
      gpu->set_idle_s(std::max(0.0, span - compute_s - comm_s));
      gpu->set_peak_memory_bytes(non_kv_bytes_[index] +
                                 replica.peak_blocks *
                                     memory::RankKvBytes(graph_, rank, 1, limits_.block_size, 0));
      gpu->set_capacity_bytes(d_.cluster.gpu.capacity_bytes());
      if (span > 0) comm_share += comm_s / span;
    }
    report.set_comm_overhead(comm_share / plan.num_gpus());
    report.add_notes(absl::StrFormat(
        "KV cache: %d blocks of %d tokens per replica (%s)", limits_.total_blocks,
        limits_.block_size,
        memory::KvRuleText(runtime_, d_.plan,
                           serving_.scheduler().gpu_memory_utilization() > 0
                               ? serving_.scheduler().gpu_memory_utilization()
                               : kDefaultUtilization,
                           limits_.max_num_batched_tokens)));
    if (limits_.swap) {
      report.add_notes(absl::StrFormat(
          "preemption by swapping (vLLM V0's preemption_mode=swap): %d of %d preemptions swapped "
          "(%.2f GiB of host memory per GPU, %d blocks), the rest recomputed; %.3f GB copied over "
          "PCIe in %.6f s of stage time",
          swaps_, preemptions_, swap_space_gib_, limits_.host_blocks,
          static_cast<double>(swapped_bytes_) / 1e9, swap_s_));
    }
    if (lock_step()) {
      report.add_notes(absl::StrFormat(
          "expert groups of %d replicas ran in lock step (every MoE all-to-all waits for the "
          "slowest): %d dummy steps by idle replicas, %.6f s waiting at all-to-alls (summed over "
          "replicas)",
          group_size_, dummy_steps_, group_wait_s_));
    }
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
  serving::RequestTable requests_table_;
  report::TraceWriter trace_;
  const parallel::Deployment& d_;
  const v1::Serving& serving_;
  serving::RequestSource& source_;
  model::ModelGraph graph_;
  cost::CostModel cost_;
  parallel::Program program_;
  memory::RuntimeOverheads runtime_;
  serving::SchedulerLimits limits_;
  std::vector<int64_t> non_kv_bytes_;  // by rank index
  std::vector<int64_t> block_bytes_;   // a KV block's bytes on each stage's GPUs
  double swap_space_gib_ = 0;
  int64_t swaps_ = 0;
  double swap_s_ = 0;
  int64_t swapped_bytes_ = 0;
  hardware::Platform platform_;
  std::unique_ptr<Executor> executor_;
  std::vector<std::unique_ptr<Replica>> replicas_;

  bool arrivals_done_ = false;
  int group_size_ = 1;                // replicas per lock-step expert group; 1: none
  std::vector<int64_t> group_opened_;  // by group: the last step opened
  int64_t dummy_steps_ = 0;
  double group_wait_s_ = 0;
  metrics::RequestTally tally_{serving_.slo()};
  int64_t preemptions_ = 0;
  int64_t steps_ = 0;
  int64_t batch_size_sum_ = 0;
  int64_t batch_size_max_ = 0;
  int64_t tokens_sum_ = 0;
  int64_t tokens_max_ = 0;
  double kv_blocks_sum_ = 0;
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
