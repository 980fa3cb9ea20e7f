#include "sim/engine/replica_runner.h"

#include <algorithm>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "sim/engine/collectives.h"
#include "sim/scenario/runtime_profile.h"

namespace shardsim::engine {
namespace {

namespace s4u = simgrid::s4u;

// vLLM V0's --swap-space default: 4 GiB of host memory per GPU for swapped
// KV blocks (vllm/engine/arg_utils.py, swap_space = 4).
constexpr double kDefaultSwapSpaceGib = 4;

}  // namespace

KvCacheSizing SizeKvCache(const model::ModelGraph& graph, const parallel::Plan& plan,
                          const memory::RuntimeOverheads& runtime, int64_t capacity_bytes,
                          const v1::SchedulerConfig& config) {
  KvCacheSizing sizing;
  sizing.utilization = config.gpu_memory_utilization() > 0 ? config.gpu_memory_utilization()
                                                           : kDefaultGpuMemoryUtilization;
  serving::SchedulerLimits limits = serving::ResolveLimits(config, 0);
  // The profiling step: the token budget spread over the most sequences.
  const int64_t profile_sequences = std::min(limits.max_num_seqs, limits.max_num_batched_tokens);
  std::vector<model::SequenceStep> profile;
  for (int64_t s = 0; s < profile_sequences; ++s) {
    const int64_t share = limits.max_num_batched_tokens / profile_sequences +
                          (s < limits.max_num_batched_tokens % profile_sequences ? 1 : 0);
    profile.push_back({share, 0, true});
  }
  const model::StepShape profile_shape = model::ShapeOf(profile);
  int64_t blocks = std::numeric_limits<int64_t>::max();
  for (const parallel::Rank& rank : plan.ranks) {
    blocks = std::min(blocks, memory::KvCacheBlocks(graph, plan, rank, runtime, capacity_bytes,
                                                    sizing.utilization, limits.block_size,
                                                    profile_shape));
    memory::RankLedger ledger(graph, plan, rank, runtime);
    ledger.Step(profile_shape, 0, 0);
    sizing.non_kv_bytes.push_back(ledger.current().total_bytes());
  }
  limits.total_blocks =
      config.num_gpu_blocks_override() > 0 ? config.num_gpu_blocks_override() : blocks;
  // A block's bytes on each stage's GPUs (the stage's layers, the GPU's
  // heads); the swap space holds what fits on the GPU that fits fewest.
  for (int s = 0; s < plan.pp; ++s) {
    const parallel::Rank& rank = plan.ranks[static_cast<size_t>(plan.RankIndex(0, s, 0))];
    sizing.block_bytes.push_back(memory::RankKvBytes(graph, rank, 1, limits.block_size, 0));
  }
  if (limits.swap) {
    sizing.swap_space_gib =
        config.swap_space_gib() > 0 ? config.swap_space_gib() : kDefaultSwapSpaceGib;
    limits.host_blocks = std::numeric_limits<int64_t>::max();
    for (int64_t bytes : sizing.block_bytes) {
      if (bytes <= 0) continue;
      limits.host_blocks =
          std::min(limits.host_blocks, static_cast<int64_t>(sizing.swap_space_gib * 1073741824.0 /
                                                            static_cast<double>(bytes)));
    }
    if (limits.host_blocks == std::numeric_limits<int64_t>::max()) limits.host_blocks = 0;
  }
  sizing.limits = limits;
  return sizing;
}

void TraceRequestLife(report::TraceWriter& trace, int pid, const serving::RequestState& s,
                      const std::string& replica) {
  const int64_t id = s.request.id;
  trace.AsyncBegin(pid, "request", id, absl::StrCat("request ", id), s.request.arrival_s,
                   {{"replica", replica},
                    {"prompt_tokens", absl::StrCat(s.request.prompt_tokens)},
                    {"output_tokens", absl::StrCat(s.request.output_tokens)},
                    {"preemptions", absl::StrCat(s.preemptions)}});
  trace.AsyncBegin(pid, "request", id, "queued", s.request.arrival_s);
  trace.AsyncEnd(pid, "request", id, "queued", s.first_scheduled_s);
  trace.AsyncBegin(pid, "request", id, "prefill", s.first_scheduled_s);
  trace.AsyncEnd(pid, "request", id, "prefill", s.first_token_s);
  if (s.finished_s > s.first_token_s) {
    trace.AsyncBegin(pid, "request", id, "decode", s.first_token_s);
    trace.AsyncEnd(pid, "request", id, "decode", s.finished_s);
  }
  trace.AsyncEnd(pid, "request", id, absl::StrCat("request ", id), s.finished_s);
}

ReplicaRunner::ReplicaRunner(ReplicaRunnerOptions options)
    : options_(std::move(options)),
      d_(*options_.deployment),
      plan_(*options_.plan),
      graph_(model::BuildGraph(d_.model, plan_.shard)),
      program_(parallel::BuildProgram(graph_, plan_)),
      runtime_(memory::ResolveRuntime(d_.runtime, d_.cluster.gpu.capacity_bytes())),
      sizing_(SizeKvCache(graph_, plan_, runtime_, d_.cluster.gpu.capacity_bytes(),
                          options_.scheduler)) {
  for (int r = 0; r < plan_.dp; ++r) {
    replicas_.push_back(std::make_unique<ServingReplica>(sizing_.limits, plan_.pp, r));
  }
  const parallel::StageProgram& first = program_.Stage(0, 0);
  if (!first.expert_gpus.empty() && plan_.pp == 1) {
    group_size_ = static_cast<int>(first.expert_gpus.size() / first.gpus.size());
    group_opened_.assign(static_cast<size_t>(plan_.dp / group_size_), -1);
  }
}

std::string ReplicaRunner::KvRuleNote() const {
  return absl::StrFormat("%d blocks of %d tokens per replica (%s)", sizing_.limits.total_blocks,
                         sizing_.limits.block_size,
                         memory::KvRuleText(runtime_, plan_, sizing_.utilization,
                                            sizing_.limits.max_num_batched_tokens));
}

absl::Status ReplicaRunner::Check() const {
  if (sizing_.limits.swap && d_.cluster.gpu.pcie_bandwidth_bytes_per_s() <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "serving.scheduler.preemption_mode: SWAP copies KV blocks over each GPU's PCIe link, "
        "and the catalog gives ",
        d_.cluster.gpu.name(), " no pcie_bandwidth_bytes_per_s"));
  }
  return absl::OkStatus();
}

void ReplicaRunner::Start(const hardware::Platform& platform, const std::string& actor_name) {
  platform_ = &platform;
  executor_ = std::make_unique<Executor>(d_.cluster, platform, *options_.cost, program_,
                                         TpGroups(plan_),
                                         ChooseAlgorithm(d_.cluster, plan_.TpGroup(0, 0)),
                                         scenario::ResolveRuntimeProfile(d_.runtime));
  const auto host = [this](int r, int s) {
    return platform_->gpus[static_cast<size_t>(program_.Stage(r, s).gpus[0])];
  };
  for (int r = 0; r < plan_.dp; ++r) {
    s4u::Actor::create(absl::StrCat(actor_name, r), host(r, 0), [this, r] { Serve(r); });
    // Later stages only follow the batches stage 0 sends them: daemons,
    // ended when the last non-daemon actor is done.
    for (int s = 1; s < plan_.pp; ++s) {
      s4u::Actor::create(absl::StrCat(actor_name, r, "-stage", s), host(r, s),
                         [this, r, s] { FollowStage(r, s); })
          ->daemonize();
    }
  }
}

void ReplicaRunner::NameTraceTracks() {
  if (!tracing()) return;
  for (int r = 0; r < plan_.dp; ++r) {
    const int pid = options_.trace_pid + r;
    options_.trace->NameProcess(pid, absl::StrCat(options_.trace_name, r));
    for (int s = 0; s < plan_.pp; ++s) {
      const std::vector<int>& gpus = program_.Stage(r, s).gpus;
      options_.trace->NameThread(
          pid, s,
          absl::StrCat("stage ", s, ": GPU ", gpus.front(),
                       gpus.size() > 1 ? absl::StrCat("-", gpus.back()) : std::string()));
    }
    TraceCounters(replica(r), 0);
  }
}

void ReplicaRunner::TraceCounters(ServingReplica& replica, double now) {
  if (!tracing()) return;
  const serving::Scheduler& scheduler = replica.scheduler;
  const int pid = options_.trace_pid + replica.index;
  if (scheduler.used_blocks() != replica.traced_blocks) {
    replica.traced_blocks = scheduler.used_blocks();
    options_.trace->Counter(pid, "KV blocks", now,
                            {{"used", absl::StrCat(replica.traced_blocks)}});
  }
  if (scheduler.waiting() != replica.traced_waiting ||
      scheduler.running() != replica.traced_running) {
    replica.traced_waiting = scheduler.waiting();
    replica.traced_running = scheduler.running();
    options_.trace->Counter(pid, "requests", now,
                            {{"waiting", absl::StrCat(replica.traced_waiting)},
                             {"running", absl::StrCat(replica.traced_running)}});
  }
}

void ReplicaRunner::Wake(ServingReplica& replica) {
  if (!replica.idle) return;
  replica.idle = false;
  replica.wake->release();
}

// Whether any replica of `r`'s expert group has requests (queued, running
// or in flight).
bool ReplicaRunner::GroupHasWork(int r) const {
  const int first = GroupOf(r) * group_size_;
  for (int m = first; m < first + group_size_; ++m) {
    const ServingReplica& member = replica(m);
    if (member.scheduler.HasWork() || !member.in_flight.empty()) return true;
  }
  return false;
}

// Wakes the idle replicas of `r`'s expert group.
void ReplicaRunner::WakeGroup(int r) {
  const int first = GroupOf(r) * group_size_;
  for (int m = first; m < first + group_size_; ++m) Wake(replica(m));
}

// The group step `replica` runs next; opening it wakes the group's idle
// replicas, which join it with a dummy step.
int64_t ReplicaRunner::JoinGroupStep(ServingReplica& replica) {
  const int64_t seq = replica.next_group_step++;
  int64_t& opened = group_opened_[static_cast<size_t>(GroupOf(replica.index))];
  if (opened < seq) {
    opened = seq;
    WakeGroup(replica.index);
  }
  return seq;
}

// An idle replica's part in an open group step: vLLM's dummy batch.
void ReplicaRunner::RunDummyStep(ServingReplica& replica) {
  const int64_t seq = JoinGroupStep(replica);
  const double start = s4u::Engine::get_clock();
  const StageStepTime time = executor_->RunExpertGroupStep(program_.Stage(replica.index, 0),
                                                           engine::DummyStep(), seq,
                                                           /*dummy=*/true);
  replica.compute_s[0] += time.compute_s;
  replica.comm_s[0] += time.comm_s;
  ++stats_.dummy_steps;
  stats_.group_wait_s += time.wait_s;
  if (tracing()) {
    options_.trace->Span(options_.trace_pid + replica.index, 0, "dummy", start,
                         s4u::Engine::get_clock(),
                         {{"compute_ms", absl::StrFormat("%.6f", time.compute_s * 1e3)},
                          {"comm_ms", absl::StrFormat("%.6f", time.comm_s * 1e3)}});
  }
}

// A replica's scheduler and its first pipeline stage. As vLLM V1's engine
// core does with its batch queue (step_with_batch_queue in
// vllm/v1/engine/core.py; the queue holds max_concurrent_batches =
// pipeline_parallel_size batches): while fewer than pp batches are in
// flight and something can be scheduled, build a batch and run this stage's
// part of it, then hand it to the next stage; otherwise wait for the oldest
// batch to come back (its sampled tokens, from the last stage) and complete
// it. New requests are seen when the loop comes round. With pp = 1 a batch
// completes as soon as this stage has run it.
void ReplicaRunner::Serve(int r) {
  ServingReplica& replica = this->replica(r);
  const int pp = plan_.pp;
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
      stats_.preemptions += plan.preempted;
      if (tracing()) {
        for (int64_t id : plan.preempted_ids) {
          options_.trace->AsyncInstant(options_.requests_pid, "request", id, "preempted", now);
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
        ++stats_.steps;
        stats_.batch_size_sum += shape.sequences;
        stats_.batch_size_max = std::max(stats_.batch_size_max, shape.sequences);
        stats_.tokens_sum += shape.new_tokens;
        stats_.tokens_max = std::max(stats_.tokens_max, shape.new_tokens);
        stats_.kv_blocks_sum += static_cast<double>(replica.scheduler.used_blocks());
        stats_.waiting_sum += static_cast<double>(replica.scheduler.waiting());
        stats_.waiting_peak = std::max(stats_.waiting_peak, replica.scheduler.waiting());
        replica.peak_blocks = std::max(replica.peak_blocks, replica.scheduler.used_blocks());
        replica.in_flight.push_back(
            {std::move(plan), shape, replica.next_seq++, 0, 0, decodes, prefill_tokens});
        ServingBatch& batch = replica.in_flight.back();
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
    // Nothing in flight and nothing to schedule now: end when nothing more
    // can come (group members waiting for more steps may then stop too), or
    // sleep until a request or room for one does.
    if (options_.hooks.may_stop() && !(lock_step() && GroupHasWork(r))) {
      if (lock_step()) WakeGroup(r);
      return;
    }
    replica.idle = true;
    replica.wake->acquire();
  }
}

// Stage s > 0 of a replica: each batch in turn, as the stage before hands
// it over; the last stage samples and sends the tokens back to stage 0.
void ReplicaRunner::FollowStage(int r, int s) {
  ServingReplica& replica = this->replica(r);
  const parallel::StageProgram& stage = program_.Stage(r, s);
  const bool last = s == plan_.pp - 1;
  for (int64_t seq = 0;; ++seq) {
    executor_->Receive(r, s, Slot(seq));
    ServingBatch& batch = replica.in_flight[static_cast<size_t>(seq - replica.front_seq)];
    RunStage(replica, stage, batch);
    if (last) batch.token_s = s4u::Engine::get_clock();
    executor_->Send(stage, batch.shape, Slot(seq), /*to_first=*/last);
  }
}

void ReplicaRunner::RunStage(ServingReplica& replica, const parallel::StageProgram& stage,
                             ServingBatch& batch) {
  // Swaps first, as vLLM V0's worker copies blocks in, then out, before the
  // forward pass (vllm/worker/worker.py, execute_worker); each stage its own
  // layers' share. Counted as communication.
  const serving::StepPlan& plan = batch.plan;
  const size_t s = static_cast<size_t>(stage.stage);
  if (plan.swapped_in_blocks > 0 || plan.swapped_out_blocks > 0) {
    const double swap_start = s4u::Engine::get_clock();
    const int64_t block_bytes = sizing_.block_bytes[s];
    double seconds = 0;
    if (plan.swapped_in_blocks > 0) {
      seconds += executor_->Swap(stage, plan.swapped_in_blocks * block_bytes, /*to_host=*/false);
    }
    if (plan.swapped_out_blocks > 0) {
      seconds += executor_->Swap(stage, plan.swapped_out_blocks * block_bytes, /*to_host=*/true);
    }
    replica.comm_s[s] += seconds;
    stats_.swap_s += seconds;
    stats_.swapped_bytes += (plan.swapped_in_blocks + plan.swapped_out_blocks) * block_bytes *
                            static_cast<int64_t>(stage.gpus.size());
    if (tracing()) {
      options_.trace->Span(options_.trace_pid + replica.index, stage.stage, "swap", swap_start,
                           s4u::Engine::get_clock(),
                           {{"blocks_in", absl::StrCat(plan.swapped_in_blocks)},
                            {"blocks_out", absl::StrCat(plan.swapped_out_blocks)}});
    }
  }
  const double start = s4u::Engine::get_clock();
  if (stage.stage == 0) batch.start_s = start;
  StageStepTime time;
  if (lock_step()) {
    time = executor_->RunExpertGroupStep(stage, batch.shape, JoinGroupStep(replica));
    stats_.group_wait_s += time.wait_s;
  } else {
    time = executor_->RunStageStep(stage, batch.shape);
  }
  replica.compute_s[s] += time.compute_s;
  replica.comm_s[s] += time.comm_s;
  if (!tracing()) return;
  const char* name = batch.decodes == batch.shape.sequences ? "decode"
                     : batch.decodes == 0                   ? "prefill"
                                                            : "mixed";
  options_.trace->Span(options_.trace_pid + replica.index, stage.stage, name, start,
                       s4u::Engine::get_clock(),
                       {{"batch", absl::StrCat(batch.seq)},
                        {"sequences", absl::StrCat(batch.shape.sequences)},
                        {"prefill_tokens", absl::StrCat(batch.prefill_tokens)},
                        {"decodes", absl::StrCat(batch.decodes)},
                        {"compute_ms", absl::StrFormat("%.6f", time.compute_s * 1e3)},
                        {"comm_ms", absl::StrFormat("%.6f", time.comm_s * 1e3)}});
}

// The oldest batch in flight is done: its tokens were sampled at token_s.
void ReplicaRunner::CompleteOldest(ServingReplica& replica) {
  const ServingBatch& batch = replica.in_flight.front();
  for (const serving::ScheduledSequence& s : batch.plan.sequences) {
    if (s.samples && s.state->last_token_s >= 0) {
      options_.tally->TokenGap(batch.token_s - s.state->last_token_s);
    }
  }
  for (serving::RequestState& done : replica.scheduler.Complete(batch.plan, batch.token_s)) {
    options_.hooks.finished(replica, done, batch);
  }
  replica.in_flight.pop_front();
  ++replica.front_seq;
  TraceCounters(replica, s4u::Engine::get_clock());
  if (options_.hooks.completed) options_.hooks.completed(replica);
}

void ReplicaRunner::AddGpus(double span_s, v1::ServeReport* report, double* comm_share) const {
  for (size_t index = 0; index < plan_.ranks.size(); ++index) {
    const parallel::Rank& rank = plan_.ranks[index];
    const ServingReplica& replica = this->replica(rank.dp_replica);
    v1::GpuServe* gpu = report->add_gpus();
    gpu->set_gpu(rank.gpu);
    gpu->set_node(rank.node);
    gpu->set_tp_rank(rank.tp_rank);
    gpu->set_pp_stage(rank.pp_stage);
    gpu->set_dp_replica(rank.dp_replica);
    const double compute_s = replica.compute_s[static_cast<size_t>(rank.pp_stage)];
    const double comm_s = replica.comm_s[static_cast<size_t>(rank.pp_stage)];
    gpu->set_compute_s(compute_s);
    gpu->set_comm_s(comm_s);
    gpu->set_idle_s(std::max(0.0, span_s - compute_s - comm_s));
    gpu->set_peak_memory_bytes(
        sizing_.non_kv_bytes[index] +
        replica.peak_blocks * memory::RankKvBytes(graph_, rank, 1, sizing_.limits.block_size, 0));
    gpu->set_capacity_bytes(d_.cluster.gpu.capacity_bytes());
    if (span_s > 0) *comm_share += comm_s / span_s;
  }
}

double ReplicaRunner::BusyShare(const ServingReplica& replica, double span_s) const {
  if (span_s <= 0) return 0;
  double busy = 0;
  for (size_t s = 0; s < replica.compute_s.size(); ++s) {
    busy += (replica.compute_s[s] + replica.comm_s[s]) / span_s;
  }
  return busy / static_cast<double>(replica.compute_s.size());
}

std::string ReplicaRunner::LockStepNote() const {
  if (!lock_step()) return "";
  return absl::StrFormat(
      "expert groups of %d replicas ran in lock step (every MoE all-to-all waits for the "
      "slowest): %d dummy steps by idle replicas, %.6f s waiting at all-to-alls (summed over "
      "replicas)",
      group_size_, stats_.dummy_steps, stats_.group_wait_s);
}

std::string ReplicaRunner::SwapNote(int64_t swaps) const {
  if (!sizing_.limits.swap) return "";
  return absl::StrFormat(
      "preemption by swapping (vLLM V0's preemption_mode=swap): %d of %d preemptions swapped "
      "(%.2f GiB of host memory per GPU, %d blocks), the rest recomputed; %.3f GB copied over "
      "PCIe in %.6f s of stage time",
      swaps, stats_.preemptions, sizing_.swap_space_gib, sizing_.limits.host_blocks,
      static_cast<double>(stats_.swapped_bytes) / 1e9, stats_.swap_s);
}

}  // namespace shardsim::engine
