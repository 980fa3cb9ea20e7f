// The step executor: runs step programs (sim/parallel/program.h) on the
// SimGrid platform, one pipeline stage's step at a time, for any batch.
//
// A stage's step takes its compute time (each op by sim/cost, for the step's
// batch shape) plus its collectives, back to back: a layer's all-reduce waits
// for the layer's compute, and the next layer waits for the all-reduce.
//
// Collective times are cached by (kind, group size, bytes). Each runs the
// algorithm and protocol the collective library would choose for it
// (cost::PlanCollective, on the first group of its kind; plans()). The first
// time a collective is met it is simulated as flows on the links with every group
// of that kind communicating at once (so groups that share a PCIe switch or a
// NIC slow each other down); afterwards its time is reused. A stage that meets
// a collective another stage is already simulating waits for that result.
// Measurements (collectives and hand-offs) run one at a time: each already
// has every group of its kind communicating at once, and two at once (two
// pipeline stages meeting new sizes together) would slow each other down
// and cache times of a load that never runs.
// Pipeline hand-offs (hidden states to the next stage, sampled token ids back
// to the first) are memoized the same way, by (stage, direction, bytes), the
// first one simulated as flows with every replica's transfer of that stage at
// once. A hand-off does not block its sender: the receiver gets it when it
// has arrived.
//
// The named runtime (sim/scenario/runtime_profile.h) sets what a step costs
// besides its kernels and collectives: a CUDA graph launch for a decode-only
// step (its batch padded up to a captured size; the sampler's kernels,
// launched after the graph, bind a step shorter than their launches), the
// host's launch bound on an eager step, the CPU's step on the first stage,
// and whether all-reduces may run the runtime's custom kernels. GENERIC adds
// nothing. The sampler's own kernels are ops of the last stage's program.
//
// Every call that advances simulated time must be made from inside a SimGrid
// actor of the engine the platform belongs to.
#ifndef SHARDSIM_SIM_ENGINE_EXECUTOR_H_
#define SHARDSIM_SIM_ENGINE_EXECUTOR_H_

#include <cstdint>
#include <deque>
#include <map>
#include <set>
#include <tuple>
#include <vector>

#include "simgrid/s4u.hpp"
#include "sim/cost/roofline.h"
#include "sim/engine/collective_key.h"
#include "sim/engine/collectives.h"
#include "sim/hardware/cluster.h"
#include "sim/hardware/platform_builder.h"
#include "sim/parallel/program.h"
#include "sim/scenario/runtime_profile.h"

namespace shardsim::engine {

// One stage's step: time computing and time in collectives.
struct StageStepTime {
  double compute_s = 0;
  double comm_s = 0;
  int64_t collectives = 0;  // collectives run (each layer's counted)
  // The runtime's time on top (graph launch, the host's launch bound, the
  // CPU's step): the GPU idles through it.
  double host_s = 0;
  // Of comm_s, the time spent at the expert group's all-to-alls waiting for
  // slower members (RunExpertGroupStep; 0 otherwise).
  double wait_s = 0;
};

// The step a data-parallel replica with no work runs so that its expert
// group's all-to-alls complete: one decode token at context 1, as vLLM's
// engine core does when other DP ranks are busy (DPEngineCoreProc's busy
// loop calls execute_dummy_batch, vllm/v1/engine/core.py; the GPU worker's
// execute_dummy_batch runs model_runner._dummy_run(1, uniform_decode=True),
// vllm/v1/worker/gpu_worker.py). _dummy_run runs the model's forward pass
// only: no logits, so RunExpertGroupStep skips a dummy step's head and
// its logits' collective.
model::StepShape DummyStep();

class Executor {
 public:
  // `tp_groups` are the groups that run tensor-parallel collectives together
  // (every replica's and stage's); `algorithm` is the wiring's family, for
  // reports (each collective's algorithm and protocol are planned per key).
  // References must outlive the executor.
  Executor(const hardware::Cluster& cluster, const hardware::Platform& platform,
           const cost::CostModel& cost, const parallel::Program& program,
           std::vector<std::vector<int>> tp_groups, Algorithm algorithm,
           scenario::RuntimeProfile runtime = {});

  // The compute time of `stage` for a step of `shape`, summed op by op.
  double ComputeTime(const parallel::StageProgram& stage, const model::StepShape& shape) const;

  // Whether `shape` is a decode-only step (one new token per sequence).
  static bool IsDecodeOnly(const model::StepShape& shape);
  // The shape a step of `shape` computes: a decode-only step in a CUDA graph
  // padded up to the runtime's captured batch size, else `shape`.
  model::StepShape RunShape(const model::StepShape& shape) const;

  // Kernels `stage` launches in a step: a GEMM, attention or head op is one,
  // a memory-bound op one per instance (as sim/cost charges launch_s), each
  // collective one; layers counted.
  int64_t Kernels(const parallel::StageProgram& stage) const;

  // Runs `stage`'s step for `shape`: simulates any collective not yet in the
  // cache, then sleeps until the step's compute and collectives (and the
  // runtime's time on top) are done. A decode-only step in a CUDA graph
  // computes its padded batch.
  StageStepTime RunStageStep(const parallel::StageProgram& stage,
                             const model::StepShape& shape);

  // One member's part of a step that `stage`'s expert-parallel group (its
  // expert_gpus: this stage of ep / tp consecutive replicas) runs in lock
  // step, as vLLM's and SGLang's DP attention + EP do: every rank of the
  // group must enter each MoE layer's all-to-all, so at each one the members
  // wait for the slowest, and a member without work runs a dummy step
  // (DummyStep()) so the collective completes. Every member calls this with
  // the same `seq` (a step number the caller's members agree on) and its own
  // `shape`; it returns when this member's step is done:
  //   * between all-to-alls each member runs its own ops and TP collectives;
  //   * at an all-to-all the group's clock is the latest member's, plus the
  //     all-to-all, sized by the member that sends most (the flows all
  //     finish when its do);
  //   * the routed experts serve every member's tokens (the group's sum),
  //     not token_sources copies of this member's;
  //   * after the last all-to-all (the tail) each member finishes on its own;
  //   * a dummy member starts when the first member with work does (its
  //     replica idles until then).
  // With equal shapes this takes exactly RunStageStep's time. The time spent
  // waiting is communication (the GPU sits in the all-to-all kernel).
  // `dummy`: this member runs DummyStep() (`shape` is ignored).
  StageStepTime RunExpertGroupStep(const parallel::StageProgram& stage,
                                   const model::StepShape& shape, int64_t seq,
                                   bool dummy = false);

  // The time of a collective, simulated now if it is not in the cache.
  double CollectiveTime(const CollectiveKey& key);
  // The cached time of a collective (it must be cached).
  double CachedCollectiveTime(const CollectiveKey& key) const { return collective_s_.at(key); }

  // Starts `stage`'s hand-off of micro-batch `micro_batch` after a step of
  // `shape`: to the next stage (`to_first` false) or back to the first.
  // Returns at once.
  void Send(const parallel::StageProgram& stage, const model::StepShape& shape,
            int micro_batch, bool to_first);
  // Waits until the hand-off for (replica, stage, micro_batch) has arrived.
  void Receive(int replica, int stage, int micro_batch);

  // Copies `bytes_per_gpu` of KV cache from each GPU of `stage` to its
  // node's host memory (`to_host`) or back, as flows on each GPU's PCIe link
  // (hardware/platform_builder.h), all at once; returns when the last is
  // done, with the seconds taken. Not memoized: swaps are rare, and each
  // meets whatever else is on those links then. The platform must have host
  // memory.
  double Swap(const parallel::StageProgram& stage, int64_t bytes_per_gpu, bool to_host);

  // The plan each cached collective ran with.
  const std::map<CollectiveKey, cost::CollectivePlan>& plans() const { return plans_; }
  int64_t flows() const { return flows_; }
  int64_t distinct_collectives() const { return static_cast<int64_t>(collective_s_.size()); }
  Algorithm algorithm() const { return algorithm_; }

 private:
  struct TransferKey {
    int stage = 0;  // the sending stage
    bool to_first = false;
    int64_t bytes = 0;
    bool operator<(const TransferKey& o) const {
      return std::tie(stage, to_first, bytes) < std::tie(o.stage, o.to_first, o.bytes);
    }
  };
  // Hand-offs that have left a stage for (replica, stage, micro-batch): when
  // each arrives, in the order they were sent.
  struct Inbox {
    std::deque<double> arrivals_s;
    simgrid::s4u::SemaphorePtr ready;
  };

  // A lock-step step of one expert group: who has arrived, and (when the
  // last has) each member's end and times.
  struct GroupStep {
    std::vector<double> arrival_s;  // by member; < 0: not arrived
    std::vector<model::StepShape> shapes;
    std::vector<bool> dummy;  // by member: a dummy step (no head)
    int arrived = 0;
    int left = 0;
    bool done = false;
    std::vector<double> end_s;
    std::vector<StageStepTime> times;
  };
  // The lock-step timeline of `stages` (the group's members, in member
  // order) arriving at `arrival_s` with `shapes`: each member's end and
  // times. Simulates any collective not yet cached.
  void LockStep(const std::vector<const parallel::StageProgram*>& stages, GroupStep* step);

  Inbox& InboxOf(int replica, int stage, int micro_batch);
  void Deliver(int replica, int stage, int micro_batch, double arrival_s);
  // Simulates the hand-off of every replica's `key.stage` at once; returns
  // the time until the last arrives.
  double MeasureTransfer(const TransferKey& key);

  const hardware::Cluster& cluster_;
  const hardware::Platform& platform_;
  const cost::CostModel& cost_;
  const parallel::Program& program_;
  std::vector<std::vector<int>> tp_groups_;
  std::vector<std::vector<int>> ep_groups_;  // for all-to-alls, from the program
  Algorithm algorithm_;
  scenario::RuntimeProfile runtime_;

  std::map<CollectiveKey, double> collective_s_;
  std::map<CollectiveKey, cost::CollectivePlan> plans_;
  std::map<TransferKey, double> transfer_s_;
  bool measuring_ = false;  // a collective or a hand-off is being simulated
  // Wakes stages waiting for a collective or a transfer being simulated.
  simgrid::s4u::MutexPtr mutex_;
  simgrid::s4u::ConditionVariablePtr measured_;
  std::map<std::tuple<int, int, int>, Inbox> inboxes_;
  // Lock-step steps in progress, by (the group's first GPU, seq).
  std::map<std::pair<int, int64_t>, GroupStep> group_steps_;
  simgrid::s4u::ConditionVariablePtr group_ready_;
  int64_t flows_ = 0;
};

}  // namespace shardsim::engine

#endif  // SHARDSIM_SIM_ENGINE_EXECUTOR_H_
