#include "sim/engine/disagg_driver.h"

#include <algorithm>
#include <deque>
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
#include "sim/engine/replica_runner.h"
#include "sim/hardware/platform_builder.h"
#include "sim/memory/ledger.h"
#include "sim/metrics/digest.h"
#include "sim/metrics/request_tally.h"
#include "sim/metrics/run_metrics.h"
#include "sim/parallel/program.h"
#include "sim/report/trace.h"
#include "sim/serving/request_table.h"
#include "sim/serving/scheduler.h"
#include "simgrid/s4u.hpp"

namespace shardsim::engine {
namespace {

namespace s4u = simgrid::s4u;

// One pool as it runs: its replicas (their plan's program, executor, KV
// cache and actors), what this driver adds to them.
struct PoolRun {
  const parallel::PoolPlan* pool = nullptr;
  std::unique_ptr<ReplicaRunner> replicas;
  std::vector<int64_t> incoming;  // by replica: KV transfers on their way there
  int64_t requests = 0;
  int64_t swaps = 0;  // preemptions that swapped, on this pool
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
        efficiency_(kv_transfer.bandwidth_efficiency() > 0 ? kv_transfer.bandwidth_efficiency()
                                                           : 1.0),
        overlap_layers_(kv_transfer.overlap_layers()) {
    // The trace's processes: each pool's replicas in turn, then the requests.
    for (const parallel::PoolPlan& pool : pools) requests_pid_ += pool.plan.dp;
    int trace_pid = 0;
    for (int p = 0; p < static_cast<int>(pools.size()); ++p) {
      const parallel::PoolPlan& pool = pools[static_cast<size_t>(p)];
      auto run = std::make_unique<PoolRun>();
      run->pool = &pool;
      ReplicaRunnerOptions replicas;
      replicas.deployment = &d;
      replicas.plan = &pool.plan;
      replicas.scheduler = pool.scheduler;
      replicas.cost = &cost_;
      replicas.tally = &tally_;
      if (!options.trace_path.empty()) replicas.trace = &trace_;
      replicas.trace_pid = trace_pid;
      replicas.trace_name = absl::StrCat("pool '", pool.name, "' replica ");
      replicas.requests_pid = requests_pid_;
      trace_pid += pool.plan.dp;
      const bool prefill = pool.role == v1::Pool::PREFILL;
      replicas.hooks.finished = [this, p, prefill](ServingReplica& replica,
                                                   serving::RequestState& done,
                                                   const ServingBatch& batch) {
        runs_[static_cast<size_t>(p)]->swaps += done.swaps;
        if (prefill) {
          HandOn(p, replica, done, batch);
        } else {
          Finish(done, p, replica.index);
        }
      };
      replicas.hooks.completed = [this, prefill](ServingReplica&) {
        if (!prefill) WakeDispatcher();  // a decode step may have freed room
      };
      replicas.hooks.may_stop = [this] { return AllDone(); };
      run->replicas = std::make_unique<ReplicaRunner>(std::move(replicas));
      run->incoming.assign(static_cast<size_t>(pool.plan.dp), 0);
      for (int r = 0; r < pool.plan.dp; ++r) {
        if (pool.role == v1::Pool::DECODE) {
          decode_.emplace_back(p, r);
        } else {
          entry_.emplace_back(p, r);
        }
      }
      runs_.push_back(std::move(run));
    }
  }

  absl::StatusOr<v1::ServeReport> Run() {
    if (absl::Status opened = requests_table_.Open(options_.requests_path); !opened.ok()) {
      return opened;
    }
    for (const auto& run : runs_) {
      if (absl::Status checked = run->replicas->Check(); !checked.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("pool '", run->pool->name, "': ", checked.message()));
      }
    }
    if (tracing()) {
      if (absl::Status opened = trace_.Open(options_.trace_path); !opened.ok()) return opened;
      for (const auto& run : runs_) run->replicas->NameTraceTracks();
      trace_.NameProcess(requests_pid_, "requests");
    }
    s4u::Engine* engine = s4u::Engine::get_instance();
    platform_ = hardware::BuildPlatform(d_.cluster, engine);
    s4u::Actor::create("arrivals", platform_.gpus[0], [this] { Arrivals(); });
    s4u::Actor::create("hand-offs", platform_.gpus[0], [this] { Dispatch(); });
    for (const auto& run : runs_) {
      run->replicas->Start(platform_, absl::StrCat(run->pool->name, "/replica"));
    }
    engine->run();
    // Conservation: every request finished or refused, every KV block given
    // back. Anything else is a bug in this driver, said as such.
    int64_t held = 0;
    for (const auto& run : runs_) {
      for (int r = 0; r < run->replicas->size(); ++r) {
        held += run->replicas->replica(r).scheduler.used_blocks();
      }
    }
    const int64_t requests = tally_.requests();
    const int64_t accounted = tally_.completed() + tally_.refused();
    if (accounted != requests || held != 0 || !pending_.empty()) {
      return absl::InternalError(absl::StrFormat(
          "serve: the disaggregated run ended with %d of %d requests unaccounted for and %d KV "
          "blocks held (a bug: please report it with the scenario)",
          requests - accounted, requests, held));
    }
    if (tracing()) {
      if (absl::Status closed = trace_.Close(); !closed.ok()) return closed;
    }
    if (absl::Status closed = requests_table_.Close(); !closed.ok()) return closed;
    return Report();
  }

 private:
  bool tracing() const { return !options_.trace_path.empty(); }

  ReplicaRunner& ReplicasOf(int pool) { return *runs_[static_cast<size_t>(pool)]->replicas; }
  ServingReplica& ReplicaOf(int pool, int replica) { return ReplicasOf(pool).replica(replica); }
  const ServingReplica& ReplicaOf(int pool, int replica) const {
    return runs_[static_cast<size_t>(pool)]->replicas->replica(replica);
  }
  int64_t& Incoming(int pool, int replica) {
    return runs_[static_cast<size_t>(pool)]->incoming[static_cast<size_t>(replica)];
  }
  int64_t Incoming(int pool, int replica) const {
    return runs_[static_cast<size_t>(pool)]->incoming[static_cast<size_t>(replica)];
  }
  void Wake(int pool, int replica) { ReplicasOf(pool).Wake(ReplicaOf(pool, replica)); }
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
      for (int r = 0; r < run->replicas->size(); ++r) run->replicas->Wake(run->replicas->replica(r));
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
      const serving::Scheduler& s = ReplicaOf(p, r).scheduler;
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
      ServingReplica& replica = run.replicas->replica(r);
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
                   run.replicas->limits().block_size, run.pool->name,
                   run.replicas->limits().total_blocks));
        continue;
      }
      if (prefill) outputs_[request->id] = request->output_tokens;
      ++run.requests;
      run.replicas->TraceCounters(replica, s4u::Engine::get_clock());
      run.replicas->Wake(replica);
    }
    arrivals_done_ = true;
    WakeAllIfDone();
  }

  // A request prefill replica (p, replica) has prefilled in `batch`: it
  // finishes there if it wanted one token, else waits for a decode replica
  // holding its prompt's blocks.
  void HandOn(int p, ServingReplica& replica, serving::RequestState& done,
              const ServingBatch& batch) {
    auto it = outputs_.find(done.request.id);
    done.request.output_tokens = it->second;
    outputs_.erase(it);
    if (done.request.output_tokens <= 1) {
      Finish(done, p, replica.index);
      return;
    }
    // Its prompt's blocks stay held until its KV cache has left.
    const int64_t blocks = replica.scheduler.BlocksFor(done.request.prompt_tokens);
    replica.scheduler.Reserve(blocks);  // just freed by Complete: always fits
    replica.peak_blocks = std::max(replica.peak_blocks, replica.scheduler.used_blocks());
    // Layer l of the batch ends at (l + 1) / L of its time from its first
    // stage's start to its tokens (spread evenly over the model's L layers;
    // with pp, the stages' layers in turn).
    const double layers = static_cast<double>(std::max<int64_t>(1, d_.model.num_layers));
    const double overlap =
        overlap_layers_ ? (batch.token_s - batch.start_s) * (layers - 1) / layers : 0.0;
    pending_.push_back({done, p, replica.index, blocks, s4u::Engine::get_clock(), overlap});
    WakeDispatcher();
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
      const auto [ep, er] = decode_[e];
      const serving::Scheduler& s = ReplicaOf(ep, er).scheduler;
      const int64_t incoming = Incoming(ep, er);
      const bool room =
          s.BlocksFor(request.prompt_tokens + request.output_tokens - 1) <=
              s.limits().total_blocks &&
          s.used_blocks() + s.BlocksFor(request.prompt_tokens) <= s.limits().total_blocks &&
          s.running() + incoming < s.limits().max_num_seqs;
      if (!room) continue;
      if (best < 0) {
        best = static_cast<int>(e);
        if (policy != v1::Router::LEAST_OUTSTANDING && policy != v1::Router::LEAST_KV) break;
        continue;
      }
      const auto [bp, br] = decode_[static_cast<size_t>(best)];
      const ServingReplica& current = ReplicaOf(bp, br);
      if (policy == v1::Router::LEAST_OUTSTANDING &&
          s.outstanding() + incoming < current.scheduler.outstanding() + Incoming(bp, br)) {
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
      ServingReplica& decode = ReplicaOf(dp, dr);
      const int64_t blocks = decode.scheduler.BlocksFor(h.state.request.prompt_tokens);
      decode.scheduler.Reserve(blocks);
      decode.peak_blocks = std::max(decode.peak_blocks, decode.scheduler.used_blocks());
      ++Incoming(dp, dr);
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
    ServingReplica& prefill = ReplicaOf(h.pool, h.replica);
    prefill.scheduler.Release(h.prefill_blocks);
    ReplicasOf(h.pool).TraceCounters(prefill, end);
    Wake(h.pool, h.replica);
    // The client's first token: the KV cache is on the decode replica.
    h.state.first_token_s = end;
    h.state.last_token_s = end;
    ServingReplica& decode = ReplicaOf(dp, dr);
    --Incoming(dp, dr);
    decode.scheduler.AdmitPrefilled(h.state, blocks);
    PoolRun& run = *runs_[static_cast<size_t>(dp)];
    ++run.requests;
    run.swaps -= h.state.swaps;  // the prefill pool's, counted there
    run.replicas->TraceCounters(decode, end);
    Wake(dp, dr);
  }

  // A request is done, on replica `replica` of pool `pool`.
  void Finish(const serving::RequestState& s, int pool, int replica) {
    RequestRow(s, "completed");
    if (tracing()) {
      TraceRequestLife(trace_, requests_pid_, s,
                       report::Quote(absl::StrCat(runs_[static_cast<size_t>(pool)]->pool->name,
                                                  "/", replica)));
    }
    tally_.Finished({s.request.arrival_s, s.first_scheduled_s, s.first_token_s, s.finished_s,
                     s.request.prompt_tokens, s.request.output_tokens});
    WakeAllIfDone();
  }

  v1::ServeReport Report() const {
    v1::ServeReport report;
    metrics::SetDeploymentFields(d_, &report);
    // The plan is per pool (pools below); the top line shows the first pool's.
    const PoolRun& first = *runs_.front();
    const serving::SchedulerLimits& first_limits = first.replicas->limits();
    report.set_tp(first.pool->plan.tp);
    report.set_pp(first.pool->plan.pp);
    report.set_dp(first.pool->plan.dp);
    report.set_max_num_seqs(first_limits.max_num_seqs);
    report.set_max_num_batched_tokens(first_limits.max_num_batched_tokens);
    report.set_chunked_prefill(first_limits.chunked_prefill);
    report.set_block_size(first_limits.block_size);
    report.set_router(v1::Router::Policy_Name(
        serving_.router().policy() == v1::Router::POLICY_UNSPECIFIED ? v1::Router::ROUND_ROBIN
                                                                     : serving_.router().policy()));
    int num_gpus = 0;
    for (const auto& run : runs_) num_gpus += run->pool->plan.num_gpus();
    tally_.Fill(num_gpus, &report);
    const double span = tally_.span_s();
    int64_t preemptions = 0, peak_blocks = 0, capacity = 0;
    double kv_sum = 0;
    int64_t steps = 0, batch_size_sum = 0, batch_size_max = 0, tokens_sum = 0, tokens_max = 0;
    double comm_share = 0;
    int64_t distinct = 0, flows = 0;
    for (const auto& run : runs_) {
      const parallel::PoolPlan& pool = *run->pool;
      const ReplicaRunner& replicas = *run->replicas;
      const ReplicaStats& stats = replicas.stats();
      const serving::SchedulerLimits& limits = replicas.limits();
      v1::PoolServe* out = report.add_pools();
      out->set_name(pool.name);
      out->set_role(v1::Pool::Role_Name(pool.role));
      out->set_tp(pool.plan.tp);
      out->set_pp(pool.plan.pp);
      out->set_dp(pool.plan.dp);
      out->set_ep(pool.plan.ep);
      for (int gpu : pool.gpus) out->add_gpus(gpu);
      out->set_requests(run->requests);
      out->set_steps(stats.steps);
      double busy = 0;
      int64_t pool_peak = 0;
      for (int r = 0; r < replicas.size(); ++r) {
        busy += replicas.BusyShare(replicas.replica(r), span);
        pool_peak = std::max(pool_peak, replicas.replica(r).peak_blocks);
      }
      out->set_busy_share(busy / static_cast<double>(replicas.size()));
      if (stats.steps > 0) {
        out->set_waiting_mean(stats.waiting_sum / static_cast<double>(stats.steps));
        out->set_kv_blocks_mean(stats.kv_blocks_sum / static_cast<double>(stats.steps));
      }
      out->set_waiting_peak(stats.waiting_peak);
      out->set_kv_blocks_capacity(limits.total_blocks);
      out->set_kv_blocks_peak(pool_peak);
      out->set_max_num_seqs(limits.max_num_seqs);
      out->set_max_num_batched_tokens(limits.max_num_batched_tokens);
      out->set_block_size(limits.block_size);
      out->set_preemptions(stats.preemptions);
      preemptions += stats.preemptions;
      kv_sum += stats.kv_blocks_sum;
      steps += stats.steps;
      batch_size_sum += stats.batch_size_sum;
      batch_size_max = std::max(batch_size_max, stats.batch_size_max);
      tokens_sum += stats.tokens_sum;
      tokens_max = std::max(tokens_max, stats.tokens_max);
      if (pool.role == v1::Pool::DECODE || pool.role == v1::Pool::MIXED) {
        peak_blocks = std::max(peak_blocks, pool_peak);
        capacity = std::max(capacity, limits.total_blocks);
      }
      replicas.AddGpus(span, &report, &comm_share);
      distinct += replicas.executor().distinct_collectives();
      flows += replicas.executor().flows();
    }
    report.set_preemptions(preemptions);
    report.set_kv_blocks_capacity(capacity);
    report.set_kv_blocks_peak(peak_blocks);
    report.set_steps(steps);
    if (steps > 0) {
      report.set_kv_blocks_mean(kv_sum / static_cast<double>(steps));
      report.set_batch_size_mean(static_cast<double>(batch_size_sum) /
                                 static_cast<double>(steps));
      report.set_tokens_per_step_mean(static_cast<double>(tokens_sum) /
                                      static_cast<double>(steps));
    }
    report.set_batch_size_max(batch_size_max);
    report.set_tokens_per_step_max(tokens_max);
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
      const ReplicaRunner& replicas = *run->replicas;
      const serving::SchedulerLimits& limits = replicas.limits();
      report.add_notes(absl::StrFormat("pool '%s' (%s): KV cache %s", run->pool->name,
                                       v1::Pool::Role_Name(run->pool->role), replicas.KvRuleNote()));
      if (limits.swap) {
        report.add_notes(absl::StrCat("pool '", run->pool->name, "': ", replicas.SwapNote(run->swaps)));
      }
      if (replicas.lock_step()) {
        report.add_notes(absl::StrCat("pool '", run->pool->name, "': ", replicas.LockStepNote()));
      }
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
  report::TraceWriter trace_;
  int requests_pid_ = 0;  // the trace's process for requests (after every replica's)
  const parallel::Deployment& d_;
  const v1::Serving& serving_;
  serving::RequestSource& source_;
  cost::CostModel cost_;
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
  if (deployment.model.kind == v1::ENCODER_ONLY) {
    return absl::InvalidArgumentError(
        absl::StrCat("serve: ", deployment.model.name, " is encoder-only: it generates no tokens"));
  }
  DisaggDriver driver(deployment, pools, kv_transfer, serving, source, options);
  return driver.Run();
}

}  // namespace shardsim::engine
