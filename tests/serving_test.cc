// Serving without a simulator: the scheduler on a fake clock (every step
// takes one second), request sources and traces, and the latency digest.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "sim/metrics/digest.h"
#include "sim/metrics/request_tally.h"
#include "sim/serving/requests.h"
#include "sim/serving/scheduler.h"

namespace shardsim {
namespace {

using serving::Request;
using serving::RequestState;
using serving::Scheduler;
using serving::SchedulerLimits;
using serving::StepPlan;

SchedulerLimits Limits(int64_t blocks, int64_t budget = 8192, bool chunked = true) {
  SchedulerLimits limits;
  limits.total_blocks = blocks;
  limits.max_num_batched_tokens = budget;
  limits.chunked_prefill = chunked;
  return limits;
}

struct Outcome {
  std::vector<RequestState> finished;
  int64_t steps = 0;
  int64_t preemptions = 0;
  int64_t peak_blocks = 0;
  std::vector<StepPlan> plans;  // the first few steps' plans
};

// Runs the scheduler until it has no work; step k ends at time k + 1.
Outcome Drain(Scheduler& scheduler, int keep_plans = 0) {
  Outcome out;
  double now = 0;
  while (scheduler.HasWork()) {
    StepPlan plan = scheduler.Schedule(now);
    EXPECT_FALSE(plan.empty());
    if (plan.empty()) break;
    out.preemptions += plan.preempted;
    out.peak_blocks = std::max(out.peak_blocks, scheduler.used_blocks());
    EXPECT_LE(scheduler.used_blocks(), scheduler.limits().total_blocks);
    now += 1;
    for (RequestState& done : scheduler.Complete(plan, now)) out.finished.push_back(done);
    if (out.steps < keep_plans) out.plans.push_back(plan);
    ++out.steps;
  }
  return out;
}

std::vector<Request> Requests(int n, int64_t prompt, int64_t output) {
  std::vector<Request> requests;
  for (int i = 0; i < n; ++i) requests.push_back({i, 0, prompt + 7 * i, output + 3 * i});
  return requests;
}

TEST(Scheduler, EveryRequestFinishesWithItsTokensAndTheCacheEmpties) {
  Scheduler scheduler(Limits(10'000));
  int64_t outputs = 0;
  for (const Request& r : Requests(40, 100, 20)) {
    ASSERT_TRUE(scheduler.Add(r));
    outputs += r.output_tokens;
  }
  const Outcome out = Drain(scheduler);
  ASSERT_EQ(out.finished.size(), 40u);
  int64_t generated = 0;
  for (const RequestState& s : out.finished) {
    EXPECT_EQ(s.generated, s.request.output_tokens);
    // The last sampled token is never fed back: prompt + output - 1 computed.
    EXPECT_EQ(s.computed, s.request.prompt_tokens + s.request.output_tokens - 1);
    generated += s.generated;
  }
  EXPECT_EQ(generated, outputs);
  EXPECT_EQ(out.preemptions, 0);
  EXPECT_EQ(scheduler.used_blocks(), 0);
}

TEST(Scheduler, ChunkedPrefillSpreadsAPromptOverTheBudget) {
  Scheduler scheduler(Limits(1000, /*budget=*/256));
  ASSERT_TRUE(scheduler.Add({0, 0, 1000, 3}));
  const Outcome out = Drain(scheduler, 6);
  ASSERT_EQ(out.plans.size(), 6u);
  // 256 + 256 + 256 + 232 prompt tokens, sampling only after the last chunk.
  const int64_t chunks[] = {256, 256, 256, 232};
  for (int i = 0; i < 4; ++i) {
    ASSERT_EQ(out.plans[i].sequences.size(), 1u);
    EXPECT_EQ(out.plans[i].sequences[0].new_tokens, chunks[i]);
    EXPECT_EQ(out.plans[i].sequences[0].cached_tokens, 256 * i);
    EXPECT_EQ(out.plans[i].sequences[0].samples, i == 3);
  }
  EXPECT_EQ(out.plans[4].sequences[0].new_tokens, 1);  // decodes
  ASSERT_EQ(out.finished.size(), 1u);
  EXPECT_EQ(out.finished[0].first_token_s, 4);   // end of the 4th step
  EXPECT_EQ(out.finished[0].finished_s, 6);      // two decodes later
}

TEST(Scheduler, RunningDecodesGoFirstAndPrefillsTakeWhatIsLeft) {
  Scheduler scheduler(Limits(1000, /*budget=*/100));
  ASSERT_TRUE(scheduler.Add({0, 0, 50, 10}));
  StepPlan first = scheduler.Schedule(0);
  scheduler.Complete(first, 1);
  ASSERT_TRUE(scheduler.Add({1, 1, 500, 10}));
  const StepPlan second = scheduler.Schedule(1);
  ASSERT_EQ(second.sequences.size(), 2u);
  EXPECT_EQ(second.sequences[0].state->request.id, 0);  // the decode
  EXPECT_EQ(second.sequences[0].new_tokens, 1);
  EXPECT_EQ(second.sequences[1].new_tokens, 99);        // the rest of the budget
  EXPECT_FALSE(second.sequences[1].samples);
}

TEST(Scheduler, WithoutChunkingAPromptWaitsForAWholeBudget) {
  Scheduler scheduler(Limits(1000, /*budget=*/600, /*chunked=*/false));
  ASSERT_TRUE(scheduler.Add({0, 0, 400, 5}));
  ASSERT_TRUE(scheduler.Add({1, 0, 400, 5}));
  EXPECT_FALSE(scheduler.Add({2, 0, 700, 5}));  // could never fit one step
  const StepPlan plan = scheduler.Schedule(0);
  ASSERT_EQ(plan.sequences.size(), 1u);  // the second prompt does not fit what is left
  EXPECT_EQ(plan.sequences[0].new_tokens, 400);
}

TEST(Scheduler, ATightCacheForcesRecomputePreemptionsButEveryoneFinishes) {
  // 16-token blocks; 30 requests of ~200 tokens need ~420 blocks at once.
  Scheduler roomy(Limits(10'000));
  Scheduler tight(Limits(60));
  for (const Request& r : Requests(30, 150, 60)) {
    ASSERT_TRUE(roomy.Add(r));
    ASSERT_TRUE(tight.Add(r));
  }
  const Outcome easy = Drain(roomy);
  const Outcome hard = Drain(tight);
  EXPECT_EQ(easy.preemptions, 0);
  EXPECT_GT(hard.preemptions, 0);
  ASSERT_EQ(hard.finished.size(), 30u);
  EXPECT_LE(hard.peak_blocks, 60);
  EXPECT_EQ(tight.used_blocks(), 0);
  double easy_ttft = 0, hard_ttft = 0;
  for (const RequestState& s : easy.finished) easy_ttft += s.first_token_s;
  for (const RequestState& s : hard.finished) hard_ttft += s.first_token_s;
  EXPECT_GT(hard_ttft, easy_ttft);
  int64_t preempted = 0;
  for (const RequestState& s : hard.finished) {
    preempted += s.preemptions;
    EXPECT_EQ(s.generated, s.request.output_tokens);
  }
  EXPECT_EQ(preempted, hard.preemptions);
}

TEST(Scheduler, ARequestLargerThanTheCacheIsRefused) {
  Scheduler scheduler(Limits(10));  // 160 tokens
  EXPECT_FALSE(scheduler.Add({0, 0, 150, 20}));
  EXPECT_TRUE(scheduler.Add({1, 0, 150, 11}));  // 160 tokens held at most
  EXPECT_EQ(Drain(scheduler).finished.size(), 1u);
}

TEST(Scheduler, MaxNumSeqsCapsTheRunningRequests) {
  SchedulerLimits limits = Limits(10'000);
  limits.max_num_seqs = 3;
  Scheduler scheduler(limits);
  for (const Request& r : Requests(5, 10, 5)) ASSERT_TRUE(scheduler.Add(r));
  EXPECT_EQ(scheduler.Schedule(0).sequences.size(), 3u);
}

TEST(Scheduler, ARequestInABatchInFlightWaitsForItsBatch) {
  // Pipeline parallelism: a second batch is built before the first completes.
  Scheduler scheduler(Limits(10'000, /*budget=*/100));
  ASSERT_TRUE(scheduler.Add({0, 0, 60, 4}));
  ASSERT_TRUE(scheduler.Add({1, 0, 60, 4}));
  const StepPlan first = scheduler.Schedule(0);
  ASSERT_EQ(first.sequences.size(), 2u);  // 60 + 40 of the budget
  EXPECT_EQ(first.sequences[1].new_tokens, 40);
  // Both are in flight: nothing to run until the first batch comes back,
  // not even the rest of request 1's prompt.
  EXPECT_TRUE(scheduler.Schedule(0.5).empty());
  ASSERT_TRUE(scheduler.Add({2, 0, 30, 4}));
  const StepPlan second = scheduler.Schedule(0.5);
  ASSERT_EQ(second.sequences.size(), 1u);
  EXPECT_EQ(second.sequences[0].state->request.id, 2);
  scheduler.Complete(first, 1);
  const StepPlan third = scheduler.Schedule(1);  // 0's decode, 1's last 20
  ASSERT_EQ(third.sequences.size(), 2u);
  EXPECT_EQ(third.sequences[0].new_tokens, 1);
  EXPECT_EQ(third.sequences[1].new_tokens, 20);
  EXPECT_TRUE(third.sequences[1].samples);
  scheduler.Complete(second, 1.5);
  scheduler.Complete(third, 2);
}

TEST(Scheduler, ARequestInFlightIsNeverThePreemptionVictim) {
  // One-token blocks, so blocks are tokens. A and Z run; Y (admitted last)
  // is in a batch in flight when A needs one more block than is left.
  SchedulerLimits limits = Limits(13, /*budget=*/100);
  limits.block_size = 1;
  Scheduler scheduler(limits);
  ASSERT_TRUE(scheduler.Add({0, 0, 4, 10}));  // A
  scheduler.Complete(scheduler.Schedule(0), 1);  // A: 4 blocks, 5 tokens known
  ASSERT_TRUE(scheduler.Add({1, 1, 4, 10}));  // Z
  scheduler.Complete(scheduler.Schedule(1), 2);  // A 5 blocks, Z 4
  const StepPlan p1 = scheduler.Schedule(2);     // A 6, Z 5: 11 blocks
  ASSERT_EQ(p1.sequences.size(), 2u);
  ASSERT_TRUE(scheduler.Add({2, 2, 2, 10}));  // Y
  const StepPlan p2 = scheduler.Schedule(2);  // only Y can run: 13 blocks
  ASSERT_EQ(p2.sequences.size(), 1u);
  EXPECT_EQ(scheduler.used_blocks(), 13);
  scheduler.Complete(p1, 3);
  // A needs a 7th block: Z (admitted before Y, but not in flight) gives its
  // 5 back; Y keeps its 2.
  const StepPlan p3 = scheduler.Schedule(3);
  EXPECT_EQ(p3.preempted, 1);
  ASSERT_EQ(p3.sequences.size(), 1u);
  EXPECT_EQ(p3.sequences[0].state->request.id, 0);
  EXPECT_EQ(scheduler.used_blocks(), 7 + 2);
  EXPECT_EQ(scheduler.waiting(), 1);
  scheduler.Complete(p2, 4);
  scheduler.Complete(p3, 4);
  const Outcome rest = Drain(scheduler);
  EXPECT_EQ(rest.finished.size(), 3u);
  EXPECT_EQ(scheduler.used_blocks(), 0);
}

SchedulerLimits Swapping(int64_t blocks, int64_t host_blocks) {
  SchedulerLimits limits = Limits(blocks);
  limits.swap = true;
  limits.host_blocks = host_blocks;
  return limits;
}

// Tokens computed over a whole drain, from the plans' new tokens.
int64_t ComputedTokens(Scheduler& scheduler, Outcome* out) {
  int64_t tokens = 0, out_blocks = 0, in_blocks = 0;
  double now = 0;
  while (scheduler.HasWork()) {
    StepPlan plan = scheduler.Schedule(now);
    EXPECT_FALSE(plan.empty());
    if (plan.empty()) break;
    for (const serving::ScheduledSequence& s : plan.sequences) tokens += s.new_tokens;
    out->preemptions += plan.preempted;
    out_blocks += plan.swapped_out_blocks;
    in_blocks += plan.swapped_in_blocks;
    EXPECT_LE(scheduler.used_blocks(), scheduler.limits().total_blocks);
    EXPECT_LE(scheduler.used_host_blocks(), scheduler.limits().host_blocks);
    now += 1;
    for (RequestState& done : scheduler.Complete(plan, now)) out->finished.push_back(done);
  }
  EXPECT_EQ(out_blocks, in_blocks);  // every block swapped out came back
  return tokens;
}

TEST(Scheduler, SwappedRequestsResumeWithoutRecomputing) {
  Scheduler recompute(Limits(60));
  Scheduler swap(Swapping(60, 1000));
  int64_t needed = 0;
  for (const Request& r : Requests(30, 150, 60)) {
    ASSERT_TRUE(recompute.Add(r));
    ASSERT_TRUE(swap.Add(r));
    needed += r.prompt_tokens + r.output_tokens - 1;
  }
  Outcome by_recompute, by_swap;
  const int64_t recomputed_tokens = ComputedTokens(recompute, &by_recompute);
  const int64_t swapped_tokens = ComputedTokens(swap, &by_swap);
  EXPECT_GT(by_swap.preemptions, 0);
  ASSERT_EQ(by_swap.finished.size(), 30u);
  // Swapping computes each token once; recomputing computes some again.
  EXPECT_EQ(swapped_tokens, needed);
  EXPECT_GT(recomputed_tokens, needed);
  int64_t swaps = 0;
  for (const RequestState& s : by_swap.finished) {
    EXPECT_EQ(s.generated, s.request.output_tokens);
    EXPECT_EQ(s.swaps, s.preemptions);  // the swap space was never full
    swaps += s.swaps;
  }
  EXPECT_EQ(swaps, by_swap.preemptions);
  EXPECT_EQ(swap.used_blocks(), 0);
  EXPECT_EQ(swap.used_host_blocks(), 0);
}

TEST(Scheduler, AFullSwapSpaceFallsBackToRecompute) {
  // Room in host memory for about one victim of ~13 blocks.
  Scheduler scheduler(Swapping(60, 15));
  int64_t needed = 0;
  for (const Request& r : Requests(30, 150, 60)) {
    ASSERT_TRUE(scheduler.Add(r));
    needed += r.prompt_tokens + r.output_tokens - 1;
  }
  Outcome out;
  const int64_t tokens = ComputedTokens(scheduler, &out);
  ASSERT_EQ(out.finished.size(), 30u);
  int64_t swaps = 0;
  for (const RequestState& s : out.finished) swaps += s.swaps;
  EXPECT_GT(swaps, 0);
  EXPECT_LT(swaps, out.preemptions);  // some recomputed
  EXPECT_GT(tokens, needed);
  EXPECT_EQ(scheduler.used_host_blocks(), 0);
}

TEST(Scheduler, ASwappedRequestComesBackBeforeNewOnesAreAdmitted) {
  // One-token blocks, 10 of them. A and B run; B is swapped out when A
  // grows; C, arriving later, would fit but waits until B is back.
  SchedulerLimits limits = Swapping(10, 100);
  limits.block_size = 1;
  Scheduler scheduler(limits);
  ASSERT_TRUE(scheduler.Add({0, 0, 5, 4}));  // A
  ASSERT_TRUE(scheduler.Add({1, 0, 5, 4}));  // B
  scheduler.Complete(scheduler.Schedule(0), 1);  // 10 blocks, 6 tokens known each
  const StepPlan grow = scheduler.Schedule(1);   // A needs an 11th: B goes out
  EXPECT_EQ(grow.preempted, 1);
  EXPECT_EQ(grow.swapped_out_blocks, 5);
  EXPECT_EQ(scheduler.swapped(), 1);
  ASSERT_TRUE(scheduler.Add({2, 1, 1, 1}));  // C
  scheduler.Complete(grow, 2);
  for (double t = 2; t < 4; t += 1) {  // A decodes to 8 blocks; B needs 6
    const StepPlan plan = scheduler.Schedule(t);
    ASSERT_EQ(plan.sequences.size(), 1u);
    EXPECT_EQ(plan.sequences[0].state->request.id, 0);
    EXPECT_EQ(scheduler.waiting(), 1);  // C, though 2 or 3 blocks are free
    scheduler.Complete(plan, t + 1);
  }
  // A finished: B comes back decoding where it left off, then C.
  const StepPlan back = scheduler.Schedule(4);
  ASSERT_EQ(back.sequences.size(), 2u);
  EXPECT_EQ(back.sequences[0].state->request.id, 1);
  EXPECT_EQ(back.sequences[0].new_tokens, 1);  // nothing recomputed
  EXPECT_EQ(back.sequences[0].cached_tokens, 5);
  EXPECT_EQ(back.swapped_in_blocks, 5);
  EXPECT_EQ(back.sequences[1].state->request.id, 2);
  scheduler.Complete(back, 5);
  EXPECT_EQ(scheduler.used_host_blocks(), 0);
}

v1::Serving Synthetic(uint64_t seed) {
  v1::Serving s;
  s.mutable_arrival()->set_kind(v1::ArrivalProcess::POISSON);
  s.mutable_arrival()->set_rate_per_s(10);
  s.set_num_requests(20'000);
  s.set_seed(seed);
  s.mutable_prompt_len()->set_kind(v1::LengthDistribution::UNIFORM);
  s.mutable_prompt_len()->set_min(10);
  s.mutable_prompt_len()->set_max(20);
  s.mutable_prompt_len()->set_mean(15);
  s.mutable_output_len()->set_mean(7);
  return s;
}

std::vector<Request> All(serving::RequestSource& source) {
  std::vector<Request> requests;
  while (std::optional<Request> r = source.Next()) requests.push_back(*r);
  return requests;
}

TEST(Requests, ASeedGivesTheSameRequestsAndAnotherSeedOthers) {
  serving::SyntheticSource a(Synthetic(1)), b(Synthetic(1)), c(Synthetic(2));
  const std::vector<Request> ra = All(a), rb = All(b), rc = All(c);
  ASSERT_EQ(ra.size(), 20'000u);
  int same = 0, differ = 0;
  for (size_t i = 0; i < ra.size(); ++i) {
    same += ra[i].arrival_s == rb[i].arrival_s && ra[i].prompt_tokens == rb[i].prompt_tokens;
    differ += ra[i].arrival_s != rc[i].arrival_s;
    EXPECT_GE(ra[i].prompt_tokens, 10);
    EXPECT_LE(ra[i].prompt_tokens, 20);
    EXPECT_EQ(ra[i].output_tokens, 7);
  }
  EXPECT_EQ(same, 20'000);
  EXPECT_EQ(differ, 20'000);
  // Poisson at 10/s: 20,000 arrivals span about 2,000 s (within 3 standard
  // deviations: sqrt(20,000) / 10 = 14 s).
  EXPECT_NEAR(ra.back().arrival_s, 2000, 45);
}

TEST(Requests, FixedIntervalAndAllAtOnce) {
  v1::Serving s = Synthetic(1);
  s.set_num_requests(4);
  s.mutable_arrival()->set_kind(v1::ArrivalProcess::FIXED_INTERVAL);
  s.mutable_arrival()->set_rate_per_s(4);
  serving::SyntheticSource fixed(s);
  const std::vector<Request> r = All(fixed);
  EXPECT_EQ(r[3].arrival_s, 0.75);
  s.mutable_arrival()->set_kind(v1::ArrivalProcess::ALL_AT_ONCE);
  serving::SyntheticSource batch(s);
  for (const Request& q : All(batch)) EXPECT_EQ(q.arrival_s, 0);
}

std::string WriteTrace(const std::string& name, const std::string& text) {
  const std::string path = ::testing::TempDir() + "/" + std::to_string(::getpid()) + "_" + name;
  std::ofstream(path) << text;
  return path;
}

TEST(Requests, TheVidurTraceReadsAsItIs) {
  absl::StatusOr<std::vector<Request>> r =
      serving::ReadTrace("scenarios/traces/vidur_conv_q2_n10000.csv", v1::RequestTrace());
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->size(), 10'000u);
  EXPECT_EQ((*r)[0].prompt_tokens, 395);
  EXPECT_EQ((*r)[0].output_tokens, 112);
  EXPECT_DOUBLE_EQ((*r)[0].arrival_s, 0.5100301436374005);
}

TEST(Requests, BadTraceRowsAreOneLineWithFileLineAndColumn) {
  const std::string header = "arrived_at,num_prefill_tokens,num_decode_tokens\n";
  auto error = [&](const std::string& name, const std::string& body) {
    const std::string path = WriteTrace(name, header + body);
    return std::string(serving::ReadTrace(path, v1::RequestTrace()).status().message());
  };
  EXPECT_TRUE(absl::StrContains(error("neg.csv", "0.1,10,5\n0.2,-3,5\n"),
                                "neg.csv:3:5: num_prefill_tokens: must be a whole number"));
  EXPECT_TRUE(absl::StrContains(error("back.csv", "0.5,10,5\n0.2,10,5\n"),
                                "back.csv:3:1: arrived_at: goes back in time"));
  EXPECT_TRUE(
      absl::StrContains(error("nan.csv", "0.5,ten,5\n"), "nan.csv:2:5: num_prefill_tokens"));
  EXPECT_TRUE(absl::StrContains(error("short.csv", "0.5,10\n"), "short.csv:2"));
  const std::string missing = WriteTrace("missing.csv", "time,prompt\n0,1\n");
  EXPECT_TRUE(absl::StrContains(serving::ReadTrace(missing, v1::RequestTrace()).status().message(),
                                "missing.csv:1: no column 'arrived_at'"));
}

TEST(Digest, PercentilesWithinABucketAndExactMeanAndMax) {
  metrics::Digest digest;
  for (int i = 1; i <= 1000; ++i) digest.Add(i * 1e-3);  // 1 ms .. 1 s
  const v1::Distribution d = digest.ToProto();
  EXPECT_EQ(d.count(), 1000);
  EXPECT_DOUBLE_EQ(d.mean_s(), 0.5005);
  EXPECT_EQ(d.max_s(), 1.0);
  EXPECT_NEAR(d.p50_s(), 0.500, 0.500 * 5e-4);
  EXPECT_NEAR(d.p90_s(), 0.900, 0.900 * 5e-4);
  EXPECT_NEAR(d.p99_s(), 0.990, 0.990 * 5e-4);
}

}  // namespace
// Both serving drivers count through RequestTally: three requests, one
// refused, in closed form (span, rates, TPOT only where there are two or
// more tokens, the SLO judged on every target that is set).
TEST(RequestTally, CountsAndJudgesTheSloInClosedForm) {
  v1::Slo slo;
  slo.set_ttft_s(0.5);
  slo.set_tpot_s(0.1);
  metrics::RequestTally tally(slo);
  tally.Arrived(1.0);
  tally.Arrived(2.0);
  tally.Arrived(3.0);
  tally.Refused("request 2: too long");
  // Meets both: TTFT 0.25 s, TPOT (3.25 - 1.25) / 20 = 0.1 s.
  tally.Finished({1.0, 1.125, 1.25, 3.25, 100, 21});
  // One token: no TPOT sample; TTFT 1 s misses.
  tally.Finished({2.0, 2.5, 3.0, 3.0, 50, 1});
  EXPECT_EQ(tally.requests(), 3);
  EXPECT_EQ(tally.completed(), 2);
  EXPECT_EQ(tally.refused(), 1);
  EXPECT_DOUBLE_EQ(tally.span_s(), 2.25);
  v1::ServeReport report;
  tally.Fill(2, &report);
  EXPECT_EQ(report.input_tokens(), 150);
  EXPECT_EQ(report.output_tokens(), 22);
  EXPECT_DOUBLE_EQ(report.requests_per_s(), 2 / 2.25);
  EXPECT_DOUBLE_EQ(report.output_tokens_per_s_per_gpu(), 22 / 2.25 / 2);
  EXPECT_EQ(report.tpot().count(), 1);
  EXPECT_EQ(report.ttft().count(), 2);
  EXPECT_EQ(report.slo_met(), 1);
  EXPECT_DOUBLE_EQ(report.slo_attainment(), 0.5);
  EXPECT_DOUBLE_EQ(report.goodput_requests_per_s(), 1 / 2.25);
  ASSERT_EQ(report.refused_requests_size(), 1);
  EXPECT_EQ(report.refused_requests(0), "request 2: too long");
}

}  // namespace shardsim
