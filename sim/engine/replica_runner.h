// The data-parallel replicas of one plan as they serve requests: what `serve`
// runs on a deployment without pools and on each pool of one with pools
// (serving_driver.h, disagg_driver.h), written once.
//
// Each replica is an actor with its own scheduler (sim/serving/scheduler.h,
// vLLM v1's rules) and paged KV cache: while it has work it builds the next
// step's mixed batch (prefill chunks and decodes, each sequence at its own
// context), runs it on the plan's executor and updates its requests; idle,
// it sleeps until Wake(). What happens to a request its scheduler finishes
// (it is done; or, on a prefill pool, its KV cache is handed on) and when an
// idle replica may end are the caller's hooks.
//
// The KV cache follows vLLM's rule (SizeKvCache): of gpu_memory_utilization
// of each GPU's capacity, what the weights, the activation peak of a
// profiling step (max_num_batched_tokens tokens over max_num_seqs
// sequences) and the runtime's own memory leave, in whole blocks; the GPU
// with the fewest blocks sets the replica's.
//
// Pipeline parallelism (pp > 1), as vLLM V1 runs it: up to pp batches are in
// flight in a replica at once (its batch queue of max_concurrent_batches =
// pipeline_parallel_size). The replica's actor schedules and runs stage 0;
// one actor per later stage runs each batch's part of the step program as it
// arrives (the hidden states as the executor's hand-offs), so stages work on
// different batches at the same time; the last stage samples and sends the
// tokens back to stage 0, where the batch completes. A request in a batch in
// flight is not scheduled again until that batch has completed. A request's
// token times are the last stage's.
//
// Expert groups (ep > tp, pp = 1): the ep / tp consecutive replicas of a
// group step in lock step (Executor::RunExpertGroupStep), as vLLM's
// data-parallel engines do while any of them has requests; a member with
// nothing to run joins each step the group opens with a dummy step.
//
// Swap preemption (preemption_mode SWAP): before a step, each stage copies
// its layers' share of the blocks swapped in and out over its GPUs' PCIe
// links (Executor::Swap), counted as communication.
#ifndef SHARDSIM_SIM_ENGINE_REPLICA_RUNNER_H_
#define SHARDSIM_SIM_ENGINE_REPLICA_RUNNER_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "simgrid/s4u.hpp"
#include "sim/cost/roofline.h"
#include "sim/engine/executor.h"
#include "sim/hardware/platform_builder.h"
#include "sim/memory/ledger.h"
#include "sim/metrics/request_tally.h"
#include "sim/model/graph.h"
#include "sim/parallel/deployment.h"
#include "sim/parallel/program.h"
#include "sim/proto/report.pb.h"
#include "sim/proto/serving.pb.h"
#include "sim/report/trace.h"
#include "sim/serving/scheduler.h"

namespace shardsim::engine {

// vLLM's default share of GPU memory it plans with (gpu_memory_utilization
// = 0.9, vllm/engine/arg_utils.py).
inline constexpr double kDefaultGpuMemoryUtilization = 0.9;

// A replica's KV cache and memory by vLLM's rule, for a plan and a scheduler
// configuration.
struct KvCacheSizing {
  serving::SchedulerLimits limits;    // total_blocks (and host_blocks) filled in
  double utilization = kDefaultGpuMemoryUtilization;
  double swap_space_gib = 0;          // with SWAP: host memory per GPU
  std::vector<int64_t> non_kv_bytes;  // by rank index: weights, activations, runtime
  std::vector<int64_t> block_bytes;   // a KV block's bytes on each stage's GPUs
};
KvCacheSizing SizeKvCache(const model::ModelGraph& graph, const parallel::Plan& plan,
                          const memory::RuntimeOverheads& runtime, int64_t capacity_bytes,
                          const v1::SchedulerConfig& config);

// A scheduled batch on its way through a replica's pipeline stages.
struct ServingBatch {
  serving::StepPlan plan;
  model::StepShape shape;
  int64_t seq = 0;             // the replica's batches are numbered as scheduled
  double start_s = 0;          // when stage 0 began computing it
  double token_s = 0;          // when the last stage finished it (tokens sampled)
  int64_t decodes = 0;         // sequences decoding one token (for the trace)
  int64_t prefill_tokens = 0;  // the other sequences' new tokens
};

struct ServingReplica {
  ServingReplica(const serving::SchedulerLimits& limits, int pp, int replica_index)
      : index(replica_index),
        scheduler(limits),
        compute_s(static_cast<size_t>(pp), 0),
        comm_s(static_cast<size_t>(pp), 0) {}
  int index;
  serving::Scheduler scheduler;
  simgrid::s4u::SemaphorePtr wake = simgrid::s4u::Semaphore::create(0);
  bool idle = false;
  // Batches in flight, oldest first (at most pp); in_flight[i] has sequence
  // number front_seq + i.
  std::deque<ServingBatch> in_flight;
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

// Counts over every step the replicas ran (dummy steps apart).
struct ReplicaStats {
  int64_t steps = 0;
  int64_t batch_size_sum = 0;
  int64_t batch_size_max = 0;
  int64_t tokens_sum = 0;
  int64_t tokens_max = 0;
  double kv_blocks_sum = 0;  // blocks in use when each step was scheduled
  double waiting_sum = 0;    // requests waiting then
  int64_t waiting_peak = 0;
  int64_t preemptions = 0;
  int64_t dummy_steps = 0;
  double group_wait_s = 0;  // waiting at expert groups' all-to-alls, summed
  double swap_s = 0;        // stage time copying swapped blocks
  int64_t swapped_bytes = 0;
};

// What differs between the drivers.
struct ReplicaHooks {
  // A request the scheduler has finished, in a batch whose tokens were
  // sampled at `batch.token_s`. Required.
  std::function<void(ServingReplica& replica, serving::RequestState& done,
                     const ServingBatch& batch)>
      finished;
  // After a batch has completed (optional).
  std::function<void(ServingReplica& replica)> completed;
  // Whether a replica with nothing to do may end: no request can come to it
  // any more. Required.
  std::function<bool()> may_stop;
};

struct ReplicaRunnerOptions {
  const parallel::Deployment* deployment = nullptr;  // model, cluster, runtime
  const parallel::Plan* plan = nullptr;              // the replicas' plan
  v1::SchedulerConfig scheduler;
  const cost::CostModel* cost = nullptr;
  metrics::RequestTally* tally = nullptr;  // gets each sampled token's gap
  // When set, steps, swaps and dummy steps become slices on replica r's
  // process trace_pid + r (named trace_name + r, a thread per stage), KV
  // blocks and queue as its counters, preemptions as instants on the
  // request's track of process requests_pid.
  report::TraceWriter* trace = nullptr;
  int trace_pid = 0;
  std::string trace_name = "replica ";
  int requests_pid = 0;
  ReplicaHooks hooks;
};

// A finished request's life on the trace's process `pid` (its own track, by
// id), now that its times are known: queued until first scheduled, prefill
// until its first token, then decode; `replica` says where it ran, as a JSON
// value (a number, or report::Quote of a name).
void TraceRequestLife(report::TraceWriter& trace, int pid, const serving::RequestState& s,
                      const std::string& replica);

class ReplicaRunner {
 public:
  // Sizes the KV cache and makes the replicas; nothing runs until Start().
  explicit ReplicaRunner(ReplicaRunnerOptions options);
  ReplicaRunner(const ReplicaRunner&) = delete;
  ReplicaRunner& operator=(const ReplicaRunner&) = delete;

  // What this plan cannot run on the cluster, as one line (SWAP without a
  // PCIe bandwidth in the catalog); OK otherwise.
  absl::Status Check() const;

  // Builds the executor on `platform` and starts an actor per replica (and
  // per later stage) named `actor_name` + r. Call from outside the engine,
  // before it runs.
  void Start(const hardware::Platform& platform, const std::string& actor_name);

  // Names the replicas' trace processes and threads and writes their first
  // counters (with a trace).
  void NameTraceTracks();
  // Replica r's KV blocks in use and queue, when they changed (with a trace).
  void TraceCounters(ServingReplica& replica, double now);

  // Wakes replica r if it sleeps.
  void Wake(ServingReplica& replica);

  // Adds a GPU row per rank of the plan to `report` (its compute,
  // communication and idle time over `span_s`, its peak memory) and each
  // one's comm_s / span_s to `comm_share`.
  void AddGpus(double span_s, v1::ServeReport* report, double* comm_share) const;
  // A replica's busy share of `span_s` (compute and communication, mean
  // over its stages).
  double BusyShare(const ServingReplica& replica, double span_s) const;

  // Report notes for what ran (empty when it did not): the lock-step
  // expert groups; swapping (`swaps`: the finished requests' swaps).
  std::string LockStepNote() const;
  std::string SwapNote(int64_t swaps) const;

  bool lock_step() const { return group_size_ > 1; }
  int size() const { return static_cast<int>(replicas_.size()); }
  ServingReplica& replica(int r) { return *replicas_[static_cast<size_t>(r)]; }
  const ServingReplica& replica(int r) const { return *replicas_[static_cast<size_t>(r)]; }
  const serving::SchedulerLimits& limits() const { return sizing_.limits; }
  const KvCacheSizing& sizing() const { return sizing_; }
  // The runtime's memory terms the KV cache was sized with.
  const memory::RuntimeOverheads& runtime() const { return runtime_; }
  // "N blocks of T tokens per replica (the runtime's rule ...)", for the
  // report's KV cache note.
  std::string KvRuleNote() const;
  const ReplicaStats& stats() const { return stats_; }
  const model::ModelGraph& graph() const { return graph_; }
  const parallel::Program& program() const { return program_; }
  const Executor& executor() const { return *executor_; }

 private:
  bool tracing() const { return options_.trace != nullptr; }
  int GroupOf(int r) const { return r / group_size_; }
  bool GroupHasWork(int r) const;
  void WakeGroup(int r);
  int64_t JoinGroupStep(ServingReplica& replica);
  void RunDummyStep(ServingReplica& replica);
  void Serve(int r);
  void FollowStage(int r, int s);
  int Slot(int64_t seq) const { return static_cast<int>(seq % plan_.pp); }
  void RunStage(ServingReplica& replica, const parallel::StageProgram& stage,
                ServingBatch& batch);
  void CompleteOldest(ServingReplica& replica);

  ReplicaRunnerOptions options_;
  const parallel::Deployment& d_;
  const parallel::Plan& plan_;
  model::ModelGraph graph_;
  parallel::Program program_;
  memory::RuntimeOverheads runtime_;
  KvCacheSizing sizing_;
  const hardware::Platform* platform_ = nullptr;
  std::unique_ptr<Executor> executor_;
  std::vector<std::unique_ptr<ServingReplica>> replicas_;
  int group_size_ = 1;                 // replicas per lock-step expert group; 1: none
  std::vector<int64_t> group_opened_;  // by group: the last step opened
  ReplicaStats stats_;
};

}  // namespace shardsim::engine

#endif  // SHARDSIM_SIM_ENGINE_REPLICA_RUNNER_H_
