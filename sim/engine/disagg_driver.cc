#include "sim/engine/disagg_driver.h"

#include <algorithm>
#include <deque>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "sim/cost/roofline.h"
#include "sim/engine/collectives.h"
#include "sim/engine/executor.h"
#include "sim/hardware/platform_builder.h"
#include "sim/memory/ledger.h"
#include "sim/metrics/digest.h"
#include "sim/metrics/request_tally.h"
#include "sim/metrics/run_metrics.h"
#include "sim/parallel/program.h"
#include "sim/serving/request_table.h"
#include "sim/serving/scheduler.h"
#include "simgrid/s4u.hpp"

namespace shardsim::engine {
namespace {

namespace s4u = simgrid::s4u;

// vLLM's default share of GPU memory it plans with (as serving_driver.cc).
constexpr double kDefaultUtilization = 0.9;

struct Replica {
  explicit Replica(const serving::SchedulerLimits& limits) : scheduler(limits) {}
  serving::Scheduler scheduler;
  s4u::SemaphorePtr wake = s4u::Semaphore::create(0);
  bool idle = false;
  double compute_s = 0;
  double comm_s = 0;
  int64_t peak_blocks = 0;
  int64_t incoming = 0;  // KV transfers on their way here
};

// One pool as it runs: its plan's program and executor, its replicas.
struct PoolRun {
  const parallel::PoolPlan* pool = nullptr;
  model::ModelGraph graph;
  parallel::Program program;
  serving::SchedulerLimits limits;
  double utilization = kDefaultUtilization;
  std::vector<int64_t> non_kv_bytes;  // by rank index
  std::unique_ptr<Executor> executor;
  std::vector<std::unique_ptr<Replica>> replicas;
  int64_t requests = 0;
  int64_t steps = 0;
  int64_t preemptions = 0;
  int64_t waiting_peak = 0;
  double waiting_sum = 0;
  double kv_blocks_sum = 0;
};

// A prefilled request waiting to be handed to a decode replica.
struct HandOff {
  serving::RequestState state;  // request.output_tokens restored
  int pool = 0;                 // the prefill replica
  int replica = 0;
  int64_t prefill_blocks = 0;
  double ready_s = 0;  // when its prefill ended
  // With kv_transfer.overlap_layers: how long the prefill's last step ran
  // before its last layer began (its first L-1 layers), time in which the
  // KV of those layers could already leave.
  double overlap_s = 0;
};

// A KV cache to move to decode replica (pool, replica), into `blocks`
// blocks reserved there.
struct TransferJob {
  HandOff handoff;
  int pool = 0;
  int replica = 0;
  int64_t blocks = 0;
};

// An actor that moves KV caches, one at a time.
struct Mover {
  s4u::SemaphorePtr wake = s4u::Semaphore::create(0);
  std::optional<TransferJob> job;
};

class DisaggDriver {
 public:
  DisaggDriver(const parallel::Deployment& d, const std::vector<parallel::PoolPlan>& pools,
               const v1::KvTransfer& kv_transfer, const v1::Serving& serving,
               serving::RequestSource& source, const ServingOptions& options)
      : options_(options),
        d_(d),
        serving_(serving),
        source_(source),
        cost_(d.cluster.gpu, d.model, d.cluster.profile),
        runtime_(memory::ResolveRuntime(d.runtime, d.cluster.gpu.capacity_bytes())),
        efficiency_(kv_transfer.bandwidth_efficiency() > 0 ? kv_transfer.bandwidth_efficiency()
                                                           : 1.0),
        overlap_layers_(kv_transfer.overlap_layers()) {
    for (size_t p = 0; p < pools.size(); ++p) {
      auto run = std::make_unique<PoolRun>();
      run->pool = &pools[p];
      const parallel::Plan& plan = pools[p].plan;
      run->graph = model::BuildGraph(d.model, plan.shard);
      run->program = parallel::BuildProgram(run->graph, plan);
      SizeCache(*run);
      for (int r = 0; r < plan.dp; ++r) {
        run->replicas.push_back(std::make_unique<Replica>(run->limits));
        if (pools[p].role == v1::Pool::DECODE) {
          decode_.emplace_back(static_cast<int>(p), r);
        } else {
          entry_.emplace_back(static_cast<int>(p), r);
        }
      }
      runs_.push_back(std::move(run));
    }
  }

  absl::StatusOr<v1::ServeReport> Run() {
    if (absl::Status opened = requests_table_.Open(options_.requests_path); !opened.ok()) {
      return opened;
    }
    s4u::Engine* engine = s4u::Engine::get_instance();
    platform_ = hardware::BuildPlatform(d_.cluster, engine);
    for (auto& run : runs_) {
      const parallel::Plan& plan = run->pool->plan;
      run->executor =
          std::make_unique<Executor>(d_.cluster, platform_, cost_, run->program, TpGroups(plan),
                                     ChooseAlgorithm(d_.cluster, plan.TpGroup(0, 0)),
                                     scenario::ResolveRuntimeProfile(d_.runtime));
    }
    s4u::Actor::create("arrivals", platform_.gpus[0], [this] { Arrivals(); });
    s4u::Actor::create("hand-offs", platform_.gpus[0], [this] { Dispatch(); });
    for (size_t p = 0; p < runs_.size(); ++p) {
      for (size_t r = 0; r < runs_[p]->replicas.size(); ++r) {
        s4u::Actor::create(absl::StrCat(runs_[p]->pool->name, "/replica", r),
                           Host(static_cast<int>(p), static_cast<int>(r)),
                           [this, p, r] { Serve(static_cast<int>(p), static_cast<int>(r)); });
      }
    }
    engine->run();
    // Conservation: every request finished or refused, every KV block given
    // back. Anything else is a bug in this driver, said as such.
    int64_t held = 0;
    for (const auto& run : runs_) {
      for (const auto& replica : run->replicas) held += replica->scheduler.used_blocks();
    }
    const int64_t requests = tally_.requests();
    const int64_t accounted = tally_.completed() + tally_.refused();
    if (accounted != requests || held != 0 || !pending_.empty()) {
      return absl::InternalError(absl::StrFormat(
          "serve: the disaggregated run ended with %d of %d requests unaccounted for and %d KV "
          "blocks held (a bug: please report it with the scenario)",
          requests - accounted, requests, held));
    }
    if (absl::Status closed = requests_table_.Close(); !closed.ok()) return closed;
    return Report();
  }

 private:
  // The pool's KV cache by vLLM's rule (serving_driver.h), for its plan.
  void SizeCache(PoolRun& run) {
    const v1::SchedulerConfig& config = run.pool->scheduler;
    run.utilization =
        config.gpu_memory_utilization() > 0 ? config.gpu_memory_utilization() : kDefaultUtilization;
    serving::SchedulerLimits limits = serving::ResolveLimits(config, 0);
    const int64_t profile_sequences = std::min(limits.max_num_seqs, limits.max_num_batched_tokens);
    std::vector<model::SequenceStep> profile;
    for (int64_t s = 0; s < profile_sequences; ++s) {
      const int64_t share = limits.max_num_batched_tokens / profile_sequences +
                            (s < limits.max_num_batched_tokens % profile_sequences ? 1 : 0);
      profile.push_back({share, 0, true});
    }
    const model::StepShape shape = model::ShapeOf(profile);
    const parallel::Plan& plan = run.pool->plan;
    int64_t blocks = std::numeric_limits<int64_t>::max();
    for (const parallel::Rank& rank : plan.ranks) {
      blocks = std::min(blocks, memory::KvCacheBlocks(run.graph, plan, rank, runtime_,
                                                      d_.cluster.gpu.capacity_bytes(),
                                                      run.utilization, limits.block_size, shape));
      memory::RankLedger ledger(run.graph, plan, rank, runtime_);
      ledger.Step(shape, 0, 0);
      run.non_kv_bytes.push_back(ledger.current().total_bytes());
    }
    limits.total_blocks =
        config.num_gpu_blocks_override() > 0 ? config.num_gpu_blocks_override() : blocks;
    run.limits = limits;
  }

  s4u::Host* Host(int pool, int replica) const {
    const int gpu = runs_[static_cast<size_t>(pool)]->program.Stage(replica, 0).gpus[0];
    return platform_.gpus[static_cast<size_t>(gpu)];
  }
  Replica& ReplicaOf(int pool, int replica) {
    return *runs_[static_cast<size_t>(pool)]->replicas[static_cast<size_t>(replica)];
  }
  static void Wake(Replica& replica) {
    if (!replica.idle) return;
    replica.idle = false;
    replica.wake->release();
  }
  void WakeDispatcher() {
    if (!dispatcher_idle_) return;
    dispatcher_idle_ = false;
    dispatcher_wake_->release();
  }
  bool AllDone() const {
    return arrivals_done_ && tally_.completed() + tally_.refused() == tally_.requests();
  }
  void WakeAllIfDone() {
    if (!AllDone()) return;
    for (auto& run : runs_) {
      for (auto& replica : run->replicas) Wake(*replica);
    }
    WakeDispatcher();
    for (Mover* mover : idle_movers_) mover->wake->release();
    idle_movers_.clear();
  }

  void RequestRow(const serving::RequestState& s, const char* status) {
    requests_table_.Row(s, status);
  }

  // The entry replica (PREFILL or MIXED) a request goes to, by the router's policy.
  std::pair<int, int> Route() {
    const v1::Router::Policy policy = serving_.router().policy();
    if (policy != v1::Router::LEAST_OUTSTANDING && policy != v1::Router::LEAST_KV) {
      return entry_[static_cast<size_t>(tally_.requests() % static_cast<int64_t>(entry_.size()))];
    }
    size_t best = 0;
    for (size_t e = 1; e < entry_.size(); ++e) {
      const serving::Scheduler& a = ReplicaOf(entry_[e].first, entry_[e].second).scheduler;
      const serving::Scheduler& b = ReplicaOf(entry_[best].first, entry_[best].second).scheduler;
      if (policy == v1::Router::LEAST_OUTSTANDING && a.outstanding() < b.outstanding()) best = e;
      if (policy == v1::Router::LEAST_KV && a.used_blocks() < b.used_blocks()) best = e;
    }
    return entry_[best];
  }

  // Whether some decode replica could ever hold `request` whole.
  bool DecodeCanHold(const serving::Request& request) const {
    for (const auto& [p, r] : decode_) {
      const serving::Scheduler& s =
          runs_[static_cast<size_t>(p)]->replicas[static_cast<size_t>(r)]->scheduler;
      if (s.BlocksFor(request.prompt_tokens + request.output_tokens - 1) <=
          s.limits().total_blocks) {
        return true;
      }
    }
    return false;
  }

  void Refuse(const serving::Request& request, const std::string& why) {
    serving::RequestState refused;
    refused.request = request;
    RequestRow(refused, "refused");
    tally_.Refused(absl::StrFormat("request %d (%d prompt + %d output tokens): %s", request.id,
                                   request.prompt_tokens, request.output_tokens, why));
  }

  void Arrivals() {
    while (std::optional<serving::Request> request = source_.Next()) {
      const double now = s4u::Engine::get_clock();
      if (request->arrival_s > now) s4u::this_actor::sleep_for(request->arrival_s - now);
      const auto [p, r] = Route();
      tally_.Arrived(request->arrival_s);
      PoolRun& run = *runs_[static_cast<size_t>(p)];
      Replica& replica = *run.replicas[static_cast<size_t>(r)];
      const bool prefill = run.pool->role == v1::Pool::PREFILL;
      serving::Request queued = *request;
      if (prefill) {
        if (request->output_tokens > 1 && !DecodeCanHold(*request)) {
          Refuse(*request, "no decode replica's KV cache could ever hold it");
          continue;
        }
        queued.output_tokens = 1;  // the prefill instance samples the first token only
      }
      if (!replica.scheduler.Add(queued)) {
        Refuse(*request,
               absl::StrFormat(
                   "needs %d KV blocks of %d tokens on pool '%s'; its cache holds %d",
                   replica.scheduler.BlocksFor(queued.prompt_tokens + queued.output_tokens - 1),
                   run.limits.block_size, run.pool->name, run.limits.total_blocks));
        continue;
      }
      if (prefill) outputs_[request->id] = request->output_tokens;
      ++run.requests;
      Wake(replica);
    }
    arrivals_done_ = true;
    WakeAllIfDone();
  }

  void Serve(int p, int r) {
    PoolRun& run = *runs_[static_cast<size_t>(p)];
    Replica& replica = *run.replicas[static_cast<size_t>(r)];
    const parallel::StageProgram& stage = run.program.Stage(r, 0);
    const bool prefill = run.pool->role == v1::Pool::PREFILL;
    while (!AllDone()) {
      if (!replica.scheduler.HasWork()) {
        replica.idle = true;
        replica.wake->acquire();
        continue;
      }
      const serving::StepPlan plan = replica.scheduler.Schedule(s4u::Engine::get_clock());
      run.preemptions += plan.preempted;
      if (plan.empty()) {
        // Its free blocks are held by KV caches on their way in or out: the
        // end of a transfer wakes it.
        replica.idle = true;
        replica.wake->acquire();
        continue;
      }
      const model::StepShape shape = plan.Shape();
      ++run.steps;
      ++steps_;
      batch_size_sum_ += shape.sequences;
      batch_size_max_ = std::max(batch_size_max_, shape.sequences);
      tokens_sum_ += shape.new_tokens;
      tokens_max_ = std::max(tokens_max_, shape.new_tokens);
      run.kv_blocks_sum += static_cast<double>(replica.scheduler.used_blocks());
      run.waiting_sum += static_cast<double>(replica.scheduler.waiting());
      run.waiting_peak = std::max(run.waiting_peak, replica.scheduler.waiting());
      replica.peak_blocks = std::max(replica.peak_blocks, replica.scheduler.used_blocks());
      const double step_start = s4u::Engine::get_clock();
      const StageStepTime time = run.executor->RunStageStep(stage, shape);
      replica.compute_s += time.compute_s;
      replica.comm_s += time.comm_s;
      const double now = s4u::Engine::get_clock();
      for (const serving::ScheduledSequence& s : plan.sequences) {
        if (s.samples && s.state->last_token_s >= 0) tally_.TokenGap(now - s.state->last_token_s);
      }
      for (serving::RequestState& done : replica.scheduler.Complete(plan, now)) {
        if (!prefill) {
          Finish(done);
          continue;
        }
        auto it = outputs_.find(done.request.id);
        done.request.output_tokens = it->second;
        outputs_.erase(it);
        if (done.request.output_tokens <= 1) {
          Finish(done);
          continue;
        }
        // Its prompt's blocks stay held until its KV cache has left.
        const int64_t blocks = replica.scheduler.BlocksFor(done.request.prompt_tokens);
        replica.scheduler.Reserve(blocks);  // just freed by Complete: always fits
        replica.peak_blocks = std::max(replica.peak_blocks, replica.scheduler.used_blocks());
        // Layer l of the step ends at (l + 1) / L of it (the step's time
        // spread evenly over the model's L layers).
        const double layers = static_cast<double>(std::max<int64_t>(1, d_.model.num_layers));
        const double overlap = overlap_layers_ ? (now - step_start) * (layers - 1) / layers : 0.0;
        pending_.push_back({done, p, r, blocks, now, overlap});
        WakeDispatcher();
      }
      if (!prefill) WakeDispatcher();  // a decode step may have freed room
    }
  }

  // A decode replica with room for `h` now, by the router's policy; or none.
  int ChooseDecode(const HandOff& h) {
    const v1::Router::Policy policy = serving_.router().policy();
    const serving::Request& request = h.state.request;
    int best = -1;
    for (size_t k = 0; k < decode_.size(); ++k) {
      // Round robin: the first with room from where the last one went.
      const size_t e = policy == v1::Router::LEAST_OUTSTANDING || policy == v1::Router::LEAST_KV
                           ? k
                           : (next_decode_ + k) % decode_.size();
      const Replica& replica = ReplicaOf(decode_[e].first, decode_[e].second);
      const serving::Scheduler& s = replica.scheduler;
      const bool room =
          s.BlocksFor(request.prompt_tokens + request.output_tokens - 1) <=
              s.limits().total_blocks &&
          s.used_blocks() + s.BlocksFor(request.prompt_tokens) <= s.limits().total_blocks &&
          s.running() + replica.incoming < s.limits().max_num_seqs;
      if (!room) continue;
      if (best < 0) {
        best = static_cast<int>(e);
        if (policy != v1::Router::LEAST_OUTSTANDING && policy != v1::Router::LEAST_KV) break;
        continue;
      }
      const Replica& current = ReplicaOf(decode_[static_cast<size_t>(best)].first,
                                         decode_[static_cast<size_t>(best)].second);
      if (policy == v1::Router::LEAST_OUTSTANDING &&
          s.outstanding() + replica.incoming < current.scheduler.outstanding() + current.incoming) {
        best = static_cast<int>(e);
      }
      if (policy == v1::Router::LEAST_KV && s.used_blocks() < current.scheduler.used_blocks()) {
        best = static_cast<int>(e);
      }
    }
    if (best >= 0) next_decode_ = (static_cast<size_t>(best) + 1) % decode_.size();
    return best;
  }

  // Hands prefilled requests to decode replicas, first come first served.
  void Dispatch() {
    while (!AllDone()) {
      const int target = pending_.empty() ? -1 : ChooseDecode(pending_.front());
      if (target < 0) {
        dispatcher_idle_ = true;
        dispatcher_wake_->acquire();
        continue;
      }
      HandOff h = std::move(pending_.front());
      pending_.pop_front();
      const auto [dp, dr] = decode_[static_cast<size_t>(target)];
      Replica& decode = ReplicaOf(dp, dr);
      const int64_t blocks = decode.scheduler.BlocksFor(h.state.request.prompt_tokens);
      decode.scheduler.Reserve(blocks);
      decode.peak_blocks = std::max(decode.peak_blocks, decode.scheduler.used_blocks());
      ++decode.incoming;
      const double waited = s4u::Engine::get_clock() - h.ready_s;
      if (waited > 0) {
        ++waited_;
        kv_wait_.Add(waited);
        // Its destination was not known while it prefilled: nothing could
        // leave early, the whole cache goes now.
        h.overlap_s = 0;
      }
      StartTransfer({std::move(h), dp, dr, blocks});
    }
  }

  // Gives `job` to an idle mover actor, or to a new one when all are busy:
  // movers are reused, since starting an actor costs far more than a
  // transfer's flows (a stack to map and unmap).
  void StartTransfer(TransferJob job) {
    if (!idle_movers_.empty()) {
      Mover* mover = idle_movers_.back();
      idle_movers_.pop_back();
      mover->job = std::move(job);
      mover->wake->release();
      return;
    }
    movers_.push_back(std::make_unique<Mover>());
    Mover* mover = movers_.back().get();
    mover->job = std::move(job);
    s4u::Actor::create("kv-mover", platform_.gpus[0], [this, mover] { Move(mover); });
  }

  void Move(Mover* mover) {
    while (mover->job.has_value()) {
      TransferJob job = std::move(*mover->job);
      mover->job.reset();
      Transfer(std::move(job.handoff), job.pool, job.replica, job.blocks);
      if (AllDone()) return;
      idle_movers_.push_back(mover);
      mover->wake->acquire();  // a job, or the end of the run
    }
  }

  const std::vector<parallel::KvFlow>& FlowsFor(int from_pool, int from_replica, int to_pool,
                                                int to_replica) {
    const auto key = std::make_tuple(from_pool, from_replica, to_pool, to_replica);
    auto it = flows_.find(key);
    if (it == flows_.end()) {
      it = flows_
               .emplace(key, parallel::KvTransferFlows(
                                 d_.model, runs_[static_cast<size_t>(from_pool)]->pool->plan,
                                 from_replica, runs_[static_cast<size_t>(to_pool)]->pool->plan,
                                 to_replica))
               .first;
    }
    return it->second;
  }

  // Moves `h`'s KV cache to decode replica (dp, dr), then admits it there.
  void Transfer(HandOff h, int dp, int dr, int64_t blocks) {
    const int64_t tokens = h.state.request.prompt_tokens;
    std::vector<s4u::CommPtr> comms;
    const double start = s4u::Engine::get_clock();
    const std::vector<parallel::KvFlow>& flows = FlowsFor(h.pool, h.replica, dp, dr);
    // Layer by layer: how many of this transfer's flows cross each link, so
    // that each flow's idle-link rate is its share of its slowest hop.
    std::map<int, int> flows_on_link;
    if (h.overlap_s > 0) {
      for (const parallel::KvFlow& flow : flows) {
        if (flow.Bytes(tokens, d_.model.sliding_window) <= 0) continue;
        for (const hardware::Hop& hop : d_.cluster.Route(flow.src_gpu, flow.dst_gpu)) {
          ++flows_on_link[hop.link];
        }
      }
    }
    for (const parallel::KvFlow& flow : flows) {
      const int64_t bytes = flow.Bytes(tokens, d_.model.sliding_window);
      if (bytes <= 0) continue;
      double left = static_cast<double>(bytes);
      if (h.overlap_s > 0) {
        // During the last prefill step's first L-1 layers the flow moved
        // what its idle-link rate allows, at most all but the last layer's
        // share: a closed form that assumes no other traffic on its links
        // during the prefill (what is left is simulated as flows, shared).
        double rate = std::numeric_limits<double>::infinity();
        for (const hardware::Hop& hop : d_.cluster.Route(flow.src_gpu, flow.dst_gpu)) {
          rate = std::min(rate, d_.cluster.links[static_cast<size_t>(hop.link)]
                                        .bandwidth_bytes_per_s *
                                    efficiency_ / flows_on_link[hop.link]);
        }
        const double layers = static_cast<double>(std::max<int64_t>(1, d_.model.num_layers));
        left = std::max(left / layers, left - h.overlap_s * rate);
      }
      comms.push_back(
          s4u::Comm::sendto_async(platform_.gpus[static_cast<size_t>(flow.src_gpu)],
                                  platform_.gpus[static_cast<size_t>(flow.dst_gpu)],
                                  SimulatedBytes(left, efficiency_)));
      transfer_bytes_ += bytes;
      for (const hardware::Hop& hop : d_.cluster.Route(flow.src_gpu, flow.dst_gpu)) {
        link_bytes_[hop.link] += bytes;
      }
    }
    transfer_flows_ += static_cast<int64_t>(comms.size());
    s4u::Comm::wait_all(comms);
    const double end = s4u::Engine::get_clock();
    ++transfers_;
    transfer_.Add(end - start);
    Replica& prefill = ReplicaOf(h.pool, h.replica);
    prefill.scheduler.Release(h.prefill_blocks);
    Wake(prefill);
    // The client's first token: the KV cache is on the decode replica.
    h.state.first_token_s = end;
    h.state.last_token_s = end;
    Replica& decode = ReplicaOf(dp, dr);
    --decode.incoming;
    decode.scheduler.AdmitPrefilled(h.state, blocks);
    ++runs_[static_cast<size_t>(dp)]->requests;
    Wake(decode);
  }

  void Finish(const serving::RequestState& s) {
    RequestRow(s, "completed");
    tally_.Finished({s.request.arrival_s, s.first_scheduled_s, s.first_token_s, s.finished_s,
                     s.request.prompt_tokens, s.request.output_tokens});
    WakeAllIfDone();
  }

  v1::ServeReport Report() const {
    v1::ServeReport report;
    metrics::SetDeploymentFields(d_, &report);
    // The plan is per pool (pools below); the top line shows the first pool's.
    const PoolRun& first = *runs_.front();
    report.set_tp(first.pool->plan.tp);
    report.set_pp(first.pool->plan.pp);
    report.set_dp(first.pool->plan.dp);
    report.set_max_num_seqs(first.limits.max_num_seqs);
    report.set_max_num_batched_tokens(first.limits.max_num_batched_tokens);
    report.set_chunked_prefill(first.limits.chunked_prefill);
    report.set_block_size(first.limits.block_size);
    report.set_router(v1::Router::Policy_Name(
        serving_.router().policy() == v1::Router::POLICY_UNSPECIFIED ? v1::Router::ROUND_ROBIN
                                                                     : serving_.router().policy()));
    int num_gpus = 0;
    for (const auto& run : runs_) num_gpus += run->pool->plan.num_gpus();
    tally_.Fill(num_gpus, &report);
    const double span = tally_.span_s();
    int64_t preemptions = 0, peak_blocks = 0, capacity = 0;
    double kv_sum = 0;
    int64_t kv_steps = 0;
    double comm_share = 0;
    int64_t distinct = 0, flows = 0;
    for (const auto& run : runs_) {
      const parallel::PoolPlan& pool = *run->pool;
      v1::PoolServe* out = report.add_pools();
      out->set_name(pool.name);
      out->set_role(v1::Pool::Role_Name(pool.role));
      out->set_tp(pool.plan.tp);
      out->set_pp(pool.plan.pp);
      out->set_dp(pool.plan.dp);
      out->set_ep(pool.plan.ep);
      for (int gpu : pool.gpus) out->add_gpus(gpu);
      out->set_requests(run->requests);
      out->set_steps(run->steps);
      double busy = 0;
      int64_t pool_peak = 0;
      for (const auto& replica : run->replicas) {
        if (span > 0) busy += (replica->compute_s + replica->comm_s) / span;
        pool_peak = std::max(pool_peak, replica->peak_blocks);
      }
      out->set_busy_share(busy / static_cast<double>(run->replicas.size()));
      if (run->steps > 0) {
        out->set_waiting_mean(run->waiting_sum / static_cast<double>(run->steps));
        out->set_kv_blocks_mean(run->kv_blocks_sum / static_cast<double>(run->steps));
      }
      out->set_waiting_peak(run->waiting_peak);
      out->set_kv_blocks_capacity(run->limits.total_blocks);
      out->set_kv_blocks_peak(pool_peak);
      out->set_max_num_seqs(run->limits.max_num_seqs);
      out->set_max_num_batched_tokens(run->limits.max_num_batched_tokens);
      out->set_block_size(run->limits.block_size);
      out->set_preemptions(run->preemptions);
      preemptions += run->preemptions;
      kv_sum += run->kv_blocks_sum;
      kv_steps += run->steps;
      if (pool.role == v1::Pool::DECODE || pool.role == v1::Pool::MIXED) {
        peak_blocks = std::max(peak_blocks, pool_peak);
        capacity = std::max(capacity, run->limits.total_blocks);
      }
      for (size_t index = 0; index < pool.plan.ranks.size(); ++index) {
        const parallel::Rank& rank = pool.plan.ranks[index];
        const Replica& replica = *run->replicas[static_cast<size_t>(rank.dp_replica)];
        v1::GpuServe* gpu = report.add_gpus();
        gpu->set_gpu(rank.gpu);
        gpu->set_node(rank.node);
        gpu->set_tp_rank(rank.tp_rank);
        gpu->set_pp_stage(rank.pp_stage);
        gpu->set_dp_replica(rank.dp_replica);
        gpu->set_compute_s(replica.compute_s);
        gpu->set_comm_s(replica.comm_s);
        gpu->set_idle_s(std::max(0.0, span - replica.compute_s - replica.comm_s));
        gpu->set_peak_memory_bytes(run->non_kv_bytes[index] +
                                   replica.peak_blocks * memory::RankKvBytes(run->graph, rank, 1,
                                                                             run->limits.block_size,
                                                                             0));
        gpu->set_capacity_bytes(d_.cluster.gpu.capacity_bytes());
        if (span > 0) comm_share += replica.comm_s / span;
      }
      distinct += run->executor->distinct_collectives();
      flows += run->executor->flows();
    }
    report.set_preemptions(preemptions);
    report.set_kv_blocks_capacity(capacity);
    report.set_kv_blocks_peak(peak_blocks);
    report.set_steps(steps_);
    if (kv_steps > 0) {
      report.set_kv_blocks_mean(kv_sum / static_cast<double>(kv_steps));
      report.set_batch_size_mean(static_cast<double>(batch_size_sum_) /
                                 static_cast<double>(steps_));
      report.set_tokens_per_step_mean(static_cast<double>(tokens_sum_) /
                                      static_cast<double>(steps_));
    }
    report.set_batch_size_max(batch_size_max_);
    report.set_tokens_per_step_max(tokens_max_);
    report.set_comm_overhead(comm_share / num_gpus);

    v1::KvTransferReport* kv = report.mutable_kv_transfer();
    kv->set_transfers(transfers_);
    kv->set_bytes(transfer_bytes_);
    kv->set_flows(transfer_flows_);
    *kv->mutable_time() = transfer_.ToProto();
    kv->set_waited_for_decode_kv(waited_);
    *kv->mutable_decode_kv_wait() = kv_wait_.ToProto();
    for (const auto& [index, bytes] : link_bytes_) {
      const hardware::ClusterLink& link = d_.cluster.links[static_cast<size_t>(index)];
      v1::LinkUsage* usage = kv->add_links();
      usage->set_link(link.name);
      usage->set_kind(link.kind);
      usage->set_bytes(bytes);
      if (span > 0) {
        usage->set_busy_share(static_cast<double>(bytes) / link.bandwidth_bytes_per_s / span);
      }
    }

    for (const auto& run : runs_) {
      report.add_notes(absl::StrFormat(
          "pool '%s' (%s): KV cache %d blocks of %d tokens per replica (%s)", run->pool->name,
          v1::Pool::Role_Name(run->pool->role), run->limits.total_blocks, run->limits.block_size,
          memory::KvRuleText(runtime_, run->pool->plan, run->utilization,
                             run->limits.max_num_batched_tokens)));
    }
    report.add_notes(
        "TTFT ends when a request's KV cache has reached its decode replica (the first token is "
        "streamed from there, as vLLM's disaggregated proxy and Dynamo do); TPOT counts from then");
    report.add_notes(absl::StrFormat(
        "KV transfers: flows from each prefill rank to the decode ranks needing its heads, at "
        "%.2f of the links' bandwidth",
        efficiency_));
    if (overlap_layers_) {
      report.add_notes(
          "KV transfers overlap the prefill layer by layer: the transfer times are what is left "
          "after the prefill (at least the last layer's share; the part sent during the "
          "prefill's last step assumes its links idle then); a request that waited for decode "
          "room sends its whole cache after the wait");
    }
    report.add_notes(absl::StrFormat(
        "percentiles from a histogram of 0.1%%-wide buckets; means and maxima are exact; "
        "%d distinct collectives simulated as flows (%d flows)",
        distinct, flows));
    const v1::EfficiencyProfile& profile = cost_.profile();
    report.add_notes(profile.derived() ? absl::StrCat("op times: UNCALIBRATED for ",
                                                      d_.cluster.gpu.name(), ": ", profile.source())
                                       : absl::StrCat("op times: calibrated: ", profile.source()));
    return report;
  }

  ServingOptions options_;
  serving::RequestTable requests_table_;
  const parallel::Deployment& d_;
  const v1::Serving& serving_;
  serving::RequestSource& source_;
  cost::CostModel cost_;
  memory::RuntimeOverheads runtime_;
  double efficiency_;
  bool overlap_layers_;
  hardware::Platform platform_;
  std::vector<std::unique_ptr<PoolRun>> runs_;
  std::vector<std::pair<int, int>> entry_;   // (pool, replica) of PREFILL and MIXED pools
  std::vector<std::pair<int, int>> decode_;  // (pool, replica) of DECODE pools
  size_t next_decode_ = 0;
  std::map<int64_t, int64_t> outputs_;  // request id -> output tokens, while prefilling
  std::deque<HandOff> pending_;
  bool dispatcher_idle_ = false;
  s4u::SemaphorePtr dispatcher_wake_ = s4u::Semaphore::create(0);
  std::map<std::tuple<int, int, int, int>, std::vector<parallel::KvFlow>> flows_;
  std::map<int, int64_t> link_bytes_;
  std::vector<std::unique_ptr<Mover>> movers_;
  std::vector<Mover*> idle_movers_;

  bool arrivals_done_ = false;
  metrics::RequestTally tally_{serving_.slo()};
  int64_t steps_ = 0;
  int64_t batch_size_sum_ = 0;
  int64_t batch_size_max_ = 0;
  int64_t tokens_sum_ = 0;
  int64_t tokens_max_ = 0;
  int64_t transfers_ = 0;
  int64_t transfer_bytes_ = 0;
  int64_t transfer_flows_ = 0;
  int64_t waited_ = 0;
  metrics::Digest transfer_, kv_wait_;
};

}  // namespace

absl::StatusOr<v1::ServeReport> RunDisaggregated(const parallel::Deployment& deployment,
                                                 const std::vector<parallel::PoolPlan>& pools,
                                                 const v1::KvTransfer& kv_transfer,
                                                 const v1::Serving& serving,
                                                 serving::RequestSource& source,
                                                 const ServingOptions& options) {
  if (pools.empty()) return absl::InvalidArgumentError("serve: no pools to run");
  for (const parallel::PoolPlan& pool : pools) {
    if (pool.plan.pp > 1) {
      return absl::UnimplementedError(
          absl::StrCat("serve: pool '", pool.name, "' has pp=", pool.plan.pp,
                       ": pipeline parallelism inside a pool is not simulated yet (serve "
                       "without pools runs it); use tp and dp"));
    }
  }
  if (deployment.model.kind == v1::ENCODER_ONLY) {
    return absl::InvalidArgumentError(
        absl::StrCat("serve: ", deployment.model.name, " is encoder-only: it generates no tokens"));
  }
  // The pools driver neither streams a trace nor swaps KV to host memory:
  // say so rather than run something other than what was asked.
  if (!options.trace_path.empty()) {
    return absl::UnimplementedError(
        "serve: --trace does not cover scenarios with pools yet; run without it");
  }
  for (const parallel::PoolPlan& pool : pools) {
    if (pool.scheduler.preemption_mode() == v1::SchedulerConfig::SWAP) {
      return absl::UnimplementedError(absl::StrCat(
          "serve: pool '", pool.name,
          "' has preemption_mode SWAP: pools preempt by recompute only for now"));
    }
  }
  DisaggDriver driver(deployment, pools, kv_transfer, serving, source, options);
  return driver.Run();
}

}  // namespace shardsim::engine
