#include "sim/serving/scheduler.h"

#include <algorithm>
#include <utility>

namespace shardsim::serving {

SchedulerLimits ResolveLimits(const v1::SchedulerConfig& config, int64_t total_blocks) {
  SchedulerLimits limits;
  if (config.max_num_seqs() > 0) limits.max_num_seqs = config.max_num_seqs();
  if (config.max_num_batched_tokens() > 0) {
    limits.max_num_batched_tokens = config.max_num_batched_tokens();
  }
  if (config.has_chunked_prefill()) limits.chunked_prefill = config.chunked_prefill();
  if (config.block_size() > 0) limits.block_size = config.block_size();
  limits.swap = config.preemption_mode() == v1::SchedulerConfig::SWAP;
  limits.total_blocks = total_blocks;
  return limits;
}

model::StepShape StepPlan::Shape() const {
  std::vector<model::SequenceStep> batch;
  batch.reserve(sequences.size());
  for (const ScheduledSequence& s : sequences) {
    batch.push_back({s.new_tokens, s.cached_tokens, s.samples});
  }
  return model::ShapeOf(batch);
}

Scheduler::Scheduler(const SchedulerLimits& limits) : limits_(limits) {}

bool Scheduler::Add(const Request& request) {
  // The most a request ever holds: every token but the last sampled one.
  if (BlocksFor(request.prompt_tokens + request.output_tokens - 1) > limits_.total_blocks) {
    return false;
  }
  // Without chunked prefill a prompt must fit one step's budget.
  if (!limits_.chunked_prefill && request.prompt_tokens > limits_.max_num_batched_tokens) {
    return false;
  }
  auto state = std::make_unique<RequestState>();
  state->request = request;
  waiting_.push_back(std::move(state));
  return true;
}

void Scheduler::Preempt(std::unique_ptr<RequestState> victim, StepPlan& plan) {
  ++plan.preempted;
  plan.preempted_ids.push_back(victim->request.id);
  ++victim->preemptions;
  used_blocks_ -= victim->blocks;
  if (limits_.swap && victim->blocks > 0 &&
      used_host_blocks_ + victim->blocks <= limits_.host_blocks) {
    // Swap: its KV goes to host memory and comes back as it was.
    plan.swapped_out_blocks += victim->blocks;
    used_host_blocks_ += victim->blocks;
    victim->host_blocks = victim->blocks;
    victim->blocks = 0;
    ++victim->swaps;
    swapped_.push_back(std::move(victim));
    return;
  }
  victim->blocks = 0;
  victim->computed = 0;  // recompute: its KV is gone
  waiting_.push_front(std::move(victim));
}

StepPlan Scheduler::Schedule(double now_s) {
  StepPlan plan;
  int64_t budget = limits_.max_num_batched_tokens;
  auto add = [&](RequestState* state, int64_t tokens) {
    if (state->first_scheduled_s < 0) state->first_scheduled_s = now_s;
    plan.sequences.push_back({state, tokens, state->computed,
                              state->computed + tokens == state->known_tokens()});
    state->in_flight = true;
    budget -= tokens;
  };
  // The most recently admitted running request not in a batch in flight
  // (running_.size() when there is none).
  auto victim_index = [&]() {
    size_t v = running_.size();
    while (v > 0 && running_[v - 1]->in_flight) --v;
    return v == 0 ? running_.size() : v - 1;
  };
  // 1. Running requests, oldest admission first.
  for (size_t i = 0; i < running_.size() && budget > 0;) {
    RequestState* state = running_[i].get();
    if (state->in_flight) {
      ++i;
      continue;
    }
    const int64_t need = state->known_tokens() - state->computed;
    if (!limits_.chunked_prefill && need > budget) {
      ++i;
      continue;
    }
    const int64_t tokens = std::min(need, budget);
    const int64_t more = BlocksFor(state->computed + tokens) - state->blocks;
    bool preempted_self = false;
    while (used_blocks_ + more > limits_.total_blocks) {
      // Free the most recently admitted request's blocks (of those not in
      // flight; `state` itself is one of them).
      const size_t v = victim_index();
      std::unique_ptr<RequestState> victim = std::move(running_[v]);
      running_.erase(running_.begin() + static_cast<std::ptrdiff_t>(v));
      preempted_self = victim.get() == state;
      Preempt(std::move(victim), plan);
      if (preempted_self) break;
    }
    if (preempted_self) break;
    state->blocks += more;
    used_blocks_ += more;
    add(state, tokens);
    ++i;
  }
  // 2. Swapped-out requests back, in the order they left, unless this step
  // preempted: their blocks come back from host memory, nothing recomputed.
  while (plan.preempted == 0 && !swapped_.empty() && budget > 0 &&
         static_cast<int64_t>(running_.size()) < limits_.max_num_seqs) {
    RequestState* state = swapped_.front().get();
    const int64_t need = state->known_tokens() - state->computed;
    if (!limits_.chunked_prefill && need > budget) break;
    const int64_t tokens = std::min(need, budget);
    const int64_t blocks = BlocksFor(state->computed + tokens);
    if (used_blocks_ + blocks > limits_.total_blocks) break;
    plan.swapped_in_blocks += state->host_blocks;
    used_host_blocks_ -= state->host_blocks;
    state->host_blocks = 0;
    state->blocks = blocks;
    used_blocks_ += blocks;
    running_.push_back(std::move(swapped_.front()));
    swapped_.pop_front();
    add(state, tokens);
  }
  // 3. Waiting requests, first come first served, unless this step
  // preempted or a swapped-out request is still waiting to come back.
  while (plan.preempted == 0 && swapped_.empty() && !waiting_.empty() && budget > 0 &&
         static_cast<int64_t>(running_.size()) < limits_.max_num_seqs) {
    RequestState* state = waiting_.front().get();
    const int64_t need = state->known_tokens() - state->computed;
    if (!limits_.chunked_prefill && need > budget) break;
    const int64_t tokens = std::min(need, budget);
    const int64_t blocks = BlocksFor(state->computed + tokens) - state->blocks;
    if (used_blocks_ + blocks > limits_.total_blocks) break;
    state->blocks += blocks;
    used_blocks_ += blocks;
    running_.push_back(std::move(waiting_.front()));
    waiting_.pop_front();
    add(state, tokens);
  }
  return plan;
}

std::vector<RequestState> Scheduler::Complete(const StepPlan& plan, double now_s) {
  std::vector<RequestState> finished;
  for (const ScheduledSequence& s : plan.sequences) {
    RequestState* state = s.state;
    state->computed += s.new_tokens;
    state->in_flight = false;
    if (!s.samples) continue;
    ++state->generated;
    if (state->first_token_s < 0) state->first_token_s = now_s;
    state->last_token_s = now_s;
    if (state->generated < state->request.output_tokens) continue;
    state->finished_s = now_s;
    used_blocks_ -= state->blocks;
    state->blocks = 0;
    auto it = std::find_if(running_.begin(), running_.end(),
                           [&](const std::unique_ptr<RequestState>& r) { return r.get() == state; });
    finished.push_back(**it);
    running_.erase(it);
  }
  return finished;
}

bool Scheduler::Reserve(int64_t blocks) {
  if (used_blocks_ + blocks > limits_.total_blocks) return false;
  used_blocks_ += blocks;
  return true;
}

void Scheduler::Release(int64_t blocks) { used_blocks_ -= blocks; }

void Scheduler::AdmitPrefilled(const RequestState& state, int64_t blocks) {
  auto admitted = std::make_unique<RequestState>(state);
  admitted->computed = state.request.prompt_tokens;
  admitted->generated = 1;
  admitted->blocks = blocks;
  running_.push_back(std::move(admitted));
}

}  // namespace shardsim::serving
