#include "sim/engine/executor.h"

#include <algorithm>
#include <mutex>
#include <set>
#include <utility>

namespace shardsim::engine {

namespace s4u = simgrid::s4u;

Executor::Executor(const hardware::Cluster& cluster, const hardware::Platform& platform,
                   const cost::CostModel& cost, const parallel::Program& program,
                   std::vector<std::vector<int>> tp_groups, Algorithm algorithm,
                   scenario::RuntimeProfile runtime)
    : cluster_(cluster),
      platform_(platform),
      cost_(cost),
      program_(program),
      tp_groups_(GroupsToSimulate(cluster, tp_groups)),
      algorithm_(algorithm),
      runtime_(std::move(runtime)),
      mutex_(s4u::Mutex::create()),
      measured_(s4u::ConditionVariable::create()) {
  ep_groups_ = GroupsToSimulate(cluster, ExpertGroups(program));
}

double Executor::ComputeTime(const parallel::StageProgram& stage,
                             const model::StepShape& shape) const {
  // Each block's ops once, times its repeats: a stage's layers are identical
  // for a given batch, so one layer's cost serves them all.
  double total = 0;
  for (const parallel::Block& block : stage.blocks) {
    double block_s = 0;
    for (const parallel::Instruction& i : block.instructions) {
      if (i.type == parallel::Instruction::Type::kCompute) block_s += cost_.Op(i.op, shape).time_s;
    }
    total += static_cast<double>(block.repeat) * block_s;
  }
  return total;
}

int64_t Executor::Kernels(const parallel::StageProgram& stage) const {
  int64_t kernels = 0;
  for (const parallel::Block& block : stage.blocks) {
    int64_t per_block = 0;
    for (const parallel::Instruction& i : block.instructions) {
      if (i.type != parallel::Instruction::Type::kCompute) {
        ++per_block;
        continue;
      }
      const bool matrix = i.op.kind == model::OpKind::kGemm ||
                          i.op.kind == model::OpKind::kHead ||
                          i.op.kind == model::OpKind::kAttention;
      per_block += matrix ? 1 : i.op.count;
    }
    kernels += block.repeat * per_block;
  }
  return kernels;
}

bool Executor::IsDecodeOnly(const model::StepShape& shape) {
  return shape.sequences > 0 && shape.new_tokens == shape.sequences;
}

model::StepShape Executor::RunShape(const model::StepShape& step_shape) const {
  model::StepShape shape = step_shape;
  if (!IsDecodeOnly(step_shape) || !runtime_.UsesGraph(step_shape.sequences)) return shape;
  // The padding rows are computed and communicated; each attends to one token.
  const int64_t pad = runtime_.GraphBatch(step_shape.sequences) - step_shape.sequences;
  shape.sequences += pad;
  shape.new_tokens += pad;
  shape.head_rows += pad;
  shape.context_tokens += pad;
  shape.attention_pairs += pad;
  shape.score_elements += pad;
  return shape;
}

StageStepTime Executor::RunStageStep(const parallel::StageProgram& stage,
                                     const model::StepShape& step_shape) {
  const double start = s4u::Engine::get_clock();
  StageStepTime time;
  const bool decode_only = IsDecodeOnly(step_shape);
  const model::StepShape shape = RunShape(step_shape);
  time.compute_s = ComputeTime(stage, shape);
  // Collectives of equal size take equal time: count them by key, then add
  // each key's count x time (in key order, so the sum is reproducible).
  std::map<CollectiveKey, int64_t> counts;
  for (const parallel::CollectiveCount& c : parallel::CountCollectives(stage)) {
    counts[{c.comm.kind, static_cast<int>(parallel::GroupOf(stage, c.comm).size()),
             c.comm.Bytes(shape)}] += c.count;
  }
  for (const auto& [key, count] : counts) {
    time.comm_s += static_cast<double>(count) * CollectiveTime(key);
    time.collectives += count;
  }
  // A collective simulated just now has already taken its time once.
  const double waited = s4u::Engine::get_clock() - start;
  const double gpu_s = time.compute_s + time.comm_s;
  const double step_s = runtime_.StepTime(gpu_s, Kernels(stage), decode_only,
                                          step_shape.sequences, stage.stage == 0);
  time.host_s = step_s - gpu_s;
  s4u::this_actor::sleep_for(waited > 0 ? std::max(0.0, step_s - waited) : step_s);
  return time;
}

double Executor::CollectiveTime(const CollectiveKey& key) {
  std::unique_lock<s4u::Mutex> lock(*mutex_);
  while (true) {
    if (auto it = collective_s_.find(key); it != collective_s_.end()) return it->second;
    if (!measuring_) break;
    measured_->wait(lock);  // another stage is simulating this one, or another
  }
  measuring_ = true;
  lock.unlock();
  // All-to-alls run in the expert-parallel groups, the rest in the TP groups.
  const std::vector<std::vector<int>>& groups =
      key.kind == parallel::CommKind::kAllToAll ? ep_groups_ : tp_groups_;
  const CollectiveStats stats =
      RunCollective(Fabric{&platform_, &cluster_, runtime_.custom_all_reduce}, groups, key.kind,
                    key.bytes);
  lock.lock();
  collective_s_[key] = stats.seconds;
  plans_[key] = stats.plan;
  flows_ += stats.flows;
  measuring_ = false;
  measured_->notify_all();
  return stats.seconds;
}

Executor::Inbox& Executor::InboxOf(int replica, int stage, int micro_batch) {
  Inbox& inbox = inboxes_[{replica, stage, micro_batch}];
  if (!inbox.ready) inbox.ready = s4u::Semaphore::create(0);
  return inbox;
}

void Executor::Deliver(int replica, int stage, int micro_batch, double arrival_s) {
  Inbox& inbox = InboxOf(replica, stage, micro_batch);
  inbox.arrivals_s.push_back(arrival_s);
  inbox.ready->release();
}

void Executor::Receive(int replica, int stage, int micro_batch) {
  Inbox& inbox = InboxOf(replica, stage, micro_batch);
  inbox.ready->acquire();
  const double arrival_s = inbox.arrivals_s.front();
  inbox.arrivals_s.pop_front();
  const double now = s4u::Engine::get_clock();
  if (arrival_s > now) s4u::this_actor::sleep_for(arrival_s - now);
}

void Executor::Send(const parallel::StageProgram& stage, const model::StepShape& shape,
                    int micro_batch, bool to_first) {
  const parallel::Communication& comm = to_first ? *stage.to_first_stage : *stage.to_next_stage;
  const TransferKey key{stage.stage, to_first, comm.Bytes(shape)};
  const int replica = stage.replica;
  const int destination = to_first ? 0 : stage.stage + 1;
  const double sent_s = s4u::Engine::get_clock();
  if (auto it = transfer_s_.find(key); it != transfer_s_.end()) {
    Deliver(replica, destination, micro_batch, sent_s + it->second);
    return;
  }
  // Not known yet: a helper actor simulates it (or waits for the stage that
  // is simulating it) while the sender goes on with its next micro-batch.
  const int host = stage.gpus[0];
  s4u::Actor::create("hand-off", platform_.gpus[static_cast<size_t>(host)],
                     [this, key, replica, destination, micro_batch, sent_s] {
                       std::unique_lock<s4u::Mutex> lock(*mutex_);
                       while (transfer_s_.count(key) == 0 && measuring_) {
                         measured_->wait(lock);
                       }
                       if (transfer_s_.count(key) == 0) {
                         measuring_ = true;
                         lock.unlock();
                         const double seconds = MeasureTransfer(key);
                         lock.lock();
                         transfer_s_[key] = seconds;
                         measuring_ = false;
                         measured_->notify_all();
                       }
                       Deliver(replica, destination, micro_batch,
                               sent_s + transfer_s_.at(key));
                     });
}

double Executor::Swap(const parallel::StageProgram& stage, int64_t bytes_per_gpu, bool to_host) {
  const double start = s4u::Engine::get_clock();
  std::vector<s4u::CommPtr> comms;
  for (int gpu : stage.gpus) {
    s4u::Host* device = platform_.gpus[static_cast<size_t>(gpu)];
    s4u::Host* memory = platform_.host_memory.at(static_cast<size_t>(cluster_.NodeOf(gpu)));
    comms.push_back(to_host ? s4u::Comm::sendto_async(device, memory,
                                                      static_cast<uint64_t>(bytes_per_gpu))
                            : s4u::Comm::sendto_async(memory, device,
                                                      static_cast<uint64_t>(bytes_per_gpu)));
  }
  flows_ += static_cast<int64_t>(comms.size());
  s4u::Comm::wait_all(comms);
  return s4u::Engine::get_clock() - start;
}

double Executor::MeasureTransfer(const TransferKey& key) {
  const v1::CollectiveTuning& tuning = cluster_.collectives;
  const double start = s4u::Engine::get_clock();
  std::vector<s4u::CommPtr> comms;
  auto host = [&](int gpu) { return platform_.gpus[static_cast<size_t>(gpu)]; };
  const int replicas = static_cast<int>(program_.stages.size()) / program_.pp;
  if (key.to_first) {
    // Token ids: a few bytes from the last stage's first rank to the first
    // stage's, as the runtime's scheduler sends them (no collective library).
    for (int r = 0; r < replicas; ++r) {
      comms.push_back(s4u::Comm::sendto_async(host(program_.Stage(r, key.stage).gpus[0]),
                                              host(program_.Stage(r, 0).gpus[0]),
                                              static_cast<uint64_t>(key.bytes)));
    }
  } else {
    // Hidden states: every TP rank to its peer in the next stage, through the
    // collective library's point-to-point path (its launch and efficiency).
    s4u::this_actor::sleep_for(tuning.p2p_launch_s());
    for (int r = 0; r < replicas; ++r) {
      const std::vector<int>& from = program_.Stage(r, key.stage).gpus;
      const std::vector<int>& to = program_.Stage(r, key.stage + 1).gpus;
      for (size_t t = 0; t < from.size(); ++t) {
        comms.push_back(s4u::Comm::sendto_async(
            host(from[t]), host(to[t]),
            SimulatedBytes(static_cast<double>(key.bytes), tuning.p2p_bandwidth_efficiency())));
      }
    }
  }
  flows_ += static_cast<int64_t>(comms.size());
  s4u::Comm::wait_all(comms);
  return s4u::Engine::get_clock() - start;
}

}  // namespace shardsim::engine
