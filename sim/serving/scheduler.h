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
// A request whose known tokens (prompt plus tokens generated so far) are all
// computed after a step samples its next token; it finishes when it has its
// output tokens, and its blocks are freed. A preempted request recomputes
// its prompt and the tokens it had generated, then goes on.
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
};

// The config's limits with vLLM's defaults for unset fields.
SchedulerLimits ResolveLimits(const v1::SchedulerConfig& config, int64_t total_blocks);

// A request as the scheduler tracks it.
struct RequestState {
  Request request;
  int64_t computed = 0;   // tokens whose KV is in the cache
  int64_t generated = 0;  // output tokens sampled so far
  int64_t blocks = 0;     // KV blocks held
  int64_t preemptions = 0;
  double first_scheduled_s = -1;
  double first_token_s = -1;
  double last_token_s = -1;
  double finished_s = -1;

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

  bool HasWork() const { return !waiting_.empty() || !running_.empty(); }
  // The next step's batch, built at time `now_s`.
  StepPlan Schedule(double now_s);
  // The step of `plan` finished at `now_s`: tokens computed, tokens sampled,
  // requests finished (returned, and their blocks freed).
  std::vector<RequestState> Complete(const StepPlan& plan, double now_s);

  int64_t BlocksFor(int64_t tokens) const {
    return (tokens + limits_.block_size - 1) / limits_.block_size;
  }
  int64_t used_blocks() const { return used_blocks_; }
  int64_t outstanding() const { return static_cast<int64_t>(waiting_.size() + running_.size()); }
  int64_t waiting() const { return static_cast<int64_t>(waiting_.size()); }
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
  int64_t running() const { return static_cast<int64_t>(running_.size()); }

 private:
  void Preempt(std::unique_ptr<RequestState> victim);

  SchedulerLimits limits_;
  std::deque<std::unique_ptr<RequestState>> waiting_;
  std::vector<std::unique_ptr<RequestState>> running_;  // in admission order
  int64_t used_blocks_ = 0;
};

}  // namespace shardsim::serving

#endif  // SHARDSIM_SIM_SERVING_SCHEDULER_H_
