// One replica's scheduler, with vLLM v1's rules (vllm/v1/core/sched/
// scheduler.py, read for the rules; the code is ours), and its paged KV cache.
//
// Each step, with a budget of max_num_batched_tokens tokens:
//   1. Running requests first, in the order they were admitted: each gets the
//      tokens it has not computed yet (one for a decode; the rest of its
//      prompt, or with chunked prefill as much of it as the budget allows).
//      Its KV blocks grow to hold them; when the cache is full the most
//      recently admitted running request is preempted (its blocks freed, its
//      computed tokens forgotten, back to the head of the queue: recompute),
//      until the blocks fit or the request itself was the one preempted.
//   2. Then, if nobody was preempted this step, waiting requests in arrival
//      order (first come, first served, none skipped) while the budget, the
//      max_num_seqs limit and the free blocks allow. Without chunked
//      prefill a prompt must fit the budget whole.
// With swap preemption (vLLM V0's preemption_mode="swap", vllm/core/
// scheduler.py: _preempt_by_swap, _schedule_swapped) a victim's blocks go to
// host memory when the swap space has room for them, it keeps its computed
// tokens, and it waits in the swapped queue; each step after the running
// requests, swapped ones come back first come first served while blocks
// allow (their blocks copied back), and waiting requests are admitted only
// when none is swapped out (V0's _schedule_default). A victim that does not
// fit the swap space is recomputed. The plan says how many blocks move each
// way, for the caller to copy before the step.
//
// A request whose known tokens (prompt plus tokens generated so far) are all
// computed after a step samples its next token; it finishes when it has its
// output tokens, and its blocks are freed. A preempted request recomputes
// its prompt and the tokens it had generated, then goes on.
//
// Batches in flight (pipeline parallelism): with pp stages the caller keeps
// up to pp batches in flight at once (vLLM V1's batch queue, whose size is
// the executor's max_concurrent_batches = pipeline_parallel_size, in
// vllm/v1/executor/multiproc_executor.py; vllm/v1/engine/core.py's
// step_with_batch_queue schedules while the queue has room and otherwise
// waits for the oldest batch). Schedule() may be called again before the
// previous plan is Complete()d: a request in a batch still in flight is not
// scheduled again until its batch completes (vLLM's scheduler skips a
// request with no new tokens to schedule, "when PP>1 and we have already
// scheduled all prompt tokens but they are not finished yet",
// vllm/v1/core/sched/scheduler.py; we also hold back a prompt's next chunk
// until the chunk before it has come back, which vLLM V1 does not), it keeps
// its blocks, and it is never the preemption victim (its batch is on the
// GPUs). Victims are the most recently admitted running requests not in
// flight. Batches complete in the order they were scheduled. With one batch
// at a time (pp = 1) none of this changes anything.
// No SimGrid here: the clock is whatever the caller says it is.
#ifndef SHARDSIM_SIM_SERVING_SCHEDULER_H_
#define SHARDSIM_SIM_SERVING_SCHEDULER_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "sim/model/graph.h"
#include "sim/proto/serving.pb.h"
#include "sim/serving/requests.h"

namespace shardsim::serving {

struct SchedulerLimits {
  int64_t max_num_seqs = 256;             // vLLM's default
  int64_t max_num_batched_tokens = 8192;  // vLLM v1's default with chunked prefill
  bool chunked_prefill = true;            // on by default in vLLM v1
  int64_t block_size = 16;                // vLLM's default KV block
  int64_t total_blocks = 0;               // the KV cache, in blocks
  bool swap = false;        // preempt by swapping to host memory (else recompute)
  int64_t host_blocks = 0;  // the swap space, in blocks
};

// The config's limits with vLLM's defaults for unset fields.
SchedulerLimits ResolveLimits(const v1::SchedulerConfig& config, int64_t total_blocks);

// A request as the scheduler tracks it.
struct RequestState {
  Request request;
  int64_t computed = 0;   // tokens whose KV is in the cache
  int64_t generated = 0;  // output tokens sampled so far
  int64_t blocks = 0;     // KV blocks held
  int64_t host_blocks = 0;  // KV blocks swapped out to host memory
  int64_t preemptions = 0;
  int64_t swaps = 0;      // preemptions that swapped (the rest recomputed)
  double first_scheduled_s = -1;
  double first_token_s = -1;
  double last_token_s = -1;
  double finished_s = -1;
  bool in_flight = false;  // in a scheduled batch not yet completed

  int64_t known_tokens() const { return request.prompt_tokens + generated; }
};

struct ScheduledSequence {
  RequestState* state = nullptr;
  int64_t new_tokens = 0;
  int64_t cached_tokens = 0;
  bool samples = false;
};

struct StepPlan {
  std::vector<ScheduledSequence> sequences;
  int64_t preempted = 0;  // requests preempted while building it
  std::vector<int64_t> preempted_ids;  // which, in order
  int64_t swapped_out_blocks = 0;  // to copy GPU -> host before the step
  int64_t swapped_in_blocks = 0;   // to copy host -> GPU before the step

  bool empty() const { return sequences.empty(); }
  // The batch as the cost model sees it.
  model::StepShape Shape() const;
};

class Scheduler {
 public:
  explicit Scheduler(const SchedulerLimits& limits);

  // Queues a request. False (and nothing queued) when it could never run:
  // its prompt and output need more blocks than the whole cache.
  bool Add(const Request& request);

  bool HasWork() const { return !waiting_.empty() || !running_.empty() || !swapped_.empty(); }
  // The next step's batch, built at time `now_s`, of requests not in a batch
  // in flight. Empty when nothing can run until a batch in flight completes.
  StepPlan Schedule(double now_s);
  // The step of `plan` finished at `now_s`: tokens computed, tokens sampled,
  // requests finished (returned, and their blocks freed).
  std::vector<RequestState> Complete(const StepPlan& plan, double now_s);

  int64_t BlocksFor(int64_t tokens) const {
    return (tokens + limits_.block_size - 1) / limits_.block_size;
  }
  int64_t used_blocks() const { return used_blocks_; }
  int64_t outstanding() const {
    return static_cast<int64_t>(waiting_.size() + running_.size() + swapped_.size());
  }
  int64_t waiting() const { return static_cast<int64_t>(waiting_.size()); }
  int64_t running() const { return static_cast<int64_t>(running_.size()); }
  int64_t swapped() const { return static_cast<int64_t>(swapped_.size()); }
  int64_t used_host_blocks() const { return used_host_blocks_; }
  const SchedulerLimits& limits() const { return limits_; }

  // For prefill/decode disaggregation (sim/engine/disagg_driver.h):
  // Takes `blocks` free blocks outside any request (a prefilled request's KV
  // held until its transfer ends; room kept on a decode replica for a KV
  // cache on its way). False, and nothing taken, when they are not free.
  bool Reserve(int64_t blocks);
  // Gives back blocks Reserve took.
  void Release(int64_t blocks);
  // Admits a request whose prompt's KV was computed elsewhere and whose first
  // token was sampled (`state` says when): it runs from its next decode, in
  // `blocks` blocks Reserve took for it.
  void AdmitPrefilled(const RequestState& state, int64_t blocks);

 private:
  void Preempt(std::unique_ptr<RequestState> victim, StepPlan& plan);

  SchedulerLimits limits_;
  std::deque<std::unique_ptr<RequestState>> waiting_;
  std::vector<std::unique_ptr<RequestState>> running_;  // in admission order
  std::deque<std::unique_ptr<RequestState>> swapped_;   // in the order swapped out
  int64_t used_blocks_ = 0;
  int64_t used_host_blocks_ = 0;
};

}  // namespace shardsim::serving

#endif  // SHARDSIM_SIM_SERVING_SCHEDULER_H_
