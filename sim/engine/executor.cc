#include "sim/engine/executor.h"

#include <algorithm>
#include <limits>
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
      measured_(s4u::ConditionVariable::create()),
      group_ready_(s4u::ConditionVariable::create()) {
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

namespace {

// Kernels of the sampler's passes in `stage` (the last stage's tail).
int64_t SamplerKernels(const parallel::StageProgram& stage) {
  int64_t kernels = 0;
  for (const parallel::Block& block : stage.blocks) {
    for (const parallel::Instruction& i : block.instructions) {
      if (i.type == parallel::Instruction::Type::kCompute &&
          i.op.kind == model::OpKind::kSampler) {
        kernels += block.repeat * i.op.count;
      }
    }
  }
  return kernels;
}

}  // namespace

int64_t Executor::Kernels(const parallel::StageProgram& stage) const {
  return parallel::KernelLaunches(stage);
}

bool Executor::IsDecodeOnly(const model::StepShape& shape) {
  return scenario::RuntimeProfile::IsDecodeOnly(shape);
}

model::StepShape Executor::RunShape(const model::StepShape& step_shape) const {
  return runtime_.RunShape(step_shape);
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
                                          step_shape.sequences, stage.stage == 0,
                                          SamplerKernels(stage));
  time.host_s = step_s - gpu_s;
  s4u::this_actor::sleep_for(waited > 0 ? std::max(0.0, step_s - waited) : step_s);
  return time;
}

model::StepShape DummyStep() { return model::DecodeStep(1, 1); }

StageStepTime Executor::RunExpertGroupStep(const parallel::StageProgram& stage,
                                           const model::StepShape& shape, int64_t seq,
                                           bool dummy) {
  const size_t tp = stage.gpus.size();
  const int members = static_cast<int>(stage.expert_gpus.size() / tp);
  const auto at = std::find(stage.expert_gpus.begin(), stage.expert_gpus.end(), stage.gpus[0]);
  const int member = static_cast<int>((at - stage.expert_gpus.begin()) / static_cast<long>(tp));
  const std::pair<int, int64_t> id{stage.expert_gpus[0], seq};
  std::unique_lock<s4u::Mutex> lock(*mutex_);
  GroupStep& step = group_steps_[id];
  if (step.arrival_s.empty()) {
    step.arrival_s.assign(static_cast<size_t>(members), -1);
    step.shapes.resize(static_cast<size_t>(members));
    step.dummy.assign(static_cast<size_t>(members), false);
  }
  step.arrival_s[static_cast<size_t>(member)] = s4u::Engine::get_clock();
  step.shapes[static_cast<size_t>(member)] = dummy ? DummyStep() : shape;
  step.dummy[static_cast<size_t>(member)] = dummy;
  if (++step.arrived == members) {
    // The last to arrive works out everyone's timeline (simulating any
    // collective met for the first time, without the lock held).
    std::vector<const parallel::StageProgram*> stages;
    const int first_replica = stage.replica - member;
    for (int m = 0; m < members; ++m) stages.push_back(&program_.Stage(first_replica + m, stage.stage));
    lock.unlock();
    LockStep(stages, &step);
    lock.lock();
    step.done = true;
    group_ready_->notify_all();
  }
  while (!step.done) group_ready_->wait(lock);
  const double end_s = step.end_s[static_cast<size_t>(member)];
  const StageStepTime time = step.times[static_cast<size_t>(member)];
  if (++step.left == members) group_steps_.erase(id);
  lock.unlock();
  const double now = s4u::Engine::get_clock();
  if (end_s > now) s4u::this_actor::sleep_for(end_s - now);
  return time;
}

void Executor::LockStep(const std::vector<const parallel::StageProgram*>& stages,
                        GroupStep* step) {
  const size_t members = stages.size();
  // What each member computes: a decode in a CUDA graph runs its padded
  // batch (RunShape), as in RunStageStep.
  std::vector<model::StepShape> shapes;
  for (const model::StepShape& s : step->shapes) shapes.push_back(RunShape(s));
  // The routed experts' rows come from every member's tokens.
  model::StepShape group_shape;
  for (const model::StepShape& s : shapes) group_shape.new_tokens += s.new_tokens;
  // A dummy step starts when a member with work starts the group's step
  // (until then its replica is idle, not waiting): as serve's idle replicas
  // are woken, and the same in the static replay.
  std::vector<double> arrival = step->arrival_s;
  double opened_s = std::numeric_limits<double>::infinity();
  for (size_t m = 0; m < members; ++m) {
    if (!step->dummy[m]) opened_s = std::min(opened_s, arrival[m]);
  }
  for (size_t m = 0; m < members; ++m) {
    if (step->dummy[m] && opened_s < std::numeric_limits<double>::infinity()) {
      arrival[m] = std::max(arrival[m], opened_s);
    }
  }
  std::vector<double> clock;  // each member's own clock
  // One pass over a block's instructions, for every member at once.
  auto run_block = [&](const parallel::Block& block, size_t b) {
    for (size_t i = 0; i < block.instructions.size(); ++i) {
      const parallel::Instruction& in = block.instructions[i];
      if (in.type == parallel::Instruction::Type::kCompute) {
        if (in.op.total_experts > 0) {
          // Each rank's experts get the group's tokens: the op as if one
          // source sent them all.
          model::Op op = in.op;
          op.token_sources = 1;
          const double t = cost_.Op(op, group_shape).time_s;
          for (size_t m = 0; m < members; ++m) {
            clock[m] += t;
            step->times[m].compute_s += t;
          }
        } else {
          for (size_t m = 0; m < members; ++m) {
            if (step->dummy[m] && (in.op.kind == model::OpKind::kHead ||
                                   in.op.kind == model::OpKind::kSampler)) {
              continue;
            }
            const double t = cost_.Op(stages[m]->blocks[b].instructions[i].op, shapes[m]).time_s;
            clock[m] += t;
            step->times[m].compute_s += t;
          }
        }
        continue;
      }
      if (!in.comm.expert_group) {
        for (size_t m = 0; m < members; ++m) {
          const parallel::Communication& c = stages[m]->blocks[b].instructions[i].comm;
          if (step->dummy[m] && c.rows == parallel::PayloadRows::kHeadRows) continue;
          const double t =
              CollectiveTime({c.kind, static_cast<int>(stages[m]->gpus.size()), c.Bytes(shapes[m])});
          clock[m] += t;
          step->times[m].comm_s += t;
          ++step->times[m].collectives;
        }
        continue;
      }
      // The all-to-all: everyone waits for the last member, then the
      // exchange sized by the largest sender.
      int64_t bytes = 0;
      double start = 0;
      for (size_t m = 0; m < members; ++m) {
        bytes = std::max(bytes, in.comm.Bytes(shapes[m]));
        start = std::max(start, clock[m]);
      }
      const double t = CollectiveTime(
          {in.comm.kind, static_cast<int>(stages[0]->expert_gpus.size()), bytes});
      for (size_t m = 0; m < members; ++m) {
        const double wait = start - clock[m];
        clock[m] = start + t;
        step->times[m].comm_s += wait + t;
        step->times[m].wait_s += wait;
        ++step->times[m].collectives;
      }
    }
  };
  // The timeline from each member's start.
  auto timeline = [&](const std::vector<double>& start) {
    clock = start;
    step->times.assign(members, StageStepTime{});
    const std::vector<parallel::Block>& blocks = stages[0]->blocks;
    for (size_t b = 0; b < blocks.size(); ++b) {
      const int64_t repeat = blocks[b].repeat;
      if (repeat >= 1) run_block(blocks[b], b);
      if (repeat < 2) continue;
      // From the second repeat on, each repeat adds the same: run one more
      // and add its increments for the rest.
      const std::vector<double> clock_before = clock;
      const std::vector<StageStepTime> before = step->times;
      run_block(blocks[b], b);
      const double more = static_cast<double>(repeat - 2);
      for (size_t m = 0; m < members; ++m) {
        StageStepTime& t = step->times[m];
        clock[m] += more * (clock[m] - clock_before[m]);
        t.compute_s += more * (t.compute_s - before[m].compute_s);
        t.comm_s += more * (t.comm_s - before[m].comm_s);
        t.wait_s += more * (t.wait_s - before[m].wait_s);
        t.collectives += (repeat - 2) * (t.collectives - before[m].collectives);
      }
    }
  };
  timeline(arrival);
  // The runtime's time on top of each member's own GPU work (its kernels
  // and collectives, not its waits), taken before its GPU work starts (the
  // CPU schedules and launches the step); GENERIC adds none.
  std::vector<double> host(members, 0);
  bool any_host = false;
  for (size_t m = 0; m < members; ++m) {
    const StageStepTime& t = step->times[m];
    const double gpu_s = t.compute_s + t.comm_s - t.wait_s;
    const model::StepShape& asked = step->shapes[m];
    host[m] = runtime_.StepTime(gpu_s, Kernels(*stages[m]), IsDecodeOnly(asked), asked.sequences,
                                stages[m]->stage == 0,
                                step->dummy[m] ? 0 : SamplerKernels(*stages[m])) -
              gpu_s;
    any_host = any_host || host[m] != 0;
  }
  if (any_host) {
    std::vector<double> start = arrival;
    for (size_t m = 0; m < members; ++m) start[m] += host[m];
    timeline(start);
    for (size_t m = 0; m < members; ++m) step->times[m].host_s = host[m];
  }
  step->end_s = clock;
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
