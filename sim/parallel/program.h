// Step programs: what each GPU of a plan runs in one step, as data.
//
// A plan (tp, pp, dp and the placement) says which GPUs hold which layers; a
// program says what each pipeline stage of each replica executes in a step,
// in order: the model graph's compute ops, and every communication where it
// happens. What tensor parallelism implies lives here and only here:
//   * the vocabulary-parallel embedding ends in an all-reduce;
//   * each layer all-reduces after the attention output projection and after
//     the FFN's down projection (Megatron-LM's row-parallel layers), or once
//     when attention and FFN run in parallel and share it (GPT-J, Falcon);
//   * the vocabulary-parallel head all-gathers the logits, and the sampler's
//     passes (model::OpKind::kSampler) run after that gather, on the last
//     stage only;
// expert parallelism wider than tp (attention data parallel, as vLLM's
// --enable-expert-parallel and SGLang's DP attention run it): each MoE layer
// sends every token's hidden state to the ranks holding its top-k experts
// (all-to-all dispatch, before the routed experts) and brings the results
// back (all-to-all combine, after them), within groups of ep GPUs that span
// ep / tp replicas' stages; with ep <= tp the experts sit inside the TP group
// and the layer's all-reduce combines them, so there is no all-to-all;
// and pipeline parallelism: the hidden states go from each stage to the next
// (every TP rank to its peer), and the sampled token ids go from the last
// stage back to the first before that sequence's next step.
//
// A program does not depend on the batch: communication sizes are per row
// (per new token, per sampled sequence), so one program serves every step.
// The engine (sim/engine) runs it; `shardsim ops` prints it. No SimGrid here.
#ifndef SHARDSIM_SIM_PARALLEL_PROGRAM_H_
#define SHARDSIM_SIM_PARALLEL_PROGRAM_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sim/model/graph.h"
#include "sim/parallel/partition.h"

namespace shardsim::parallel {

enum class CommKind {
  kAllReduce,
  kAllGather,
  kReduceScatter,
  kAllToAll,
  kSendRecv,  // point to point, each rank of one group to its peer in another
};

// "all_reduce", "all_gather", ...
const char* CommKindName(CommKind kind);

// What a payload grows with in a step.
enum class PayloadRows {
  kNewTokens,  // hidden states: one row per token computed in the step
  kHeadRows,   // logits: one row per sequence that samples a token
  kSequences,  // token ids: one per sequence in the step
};

struct Communication {
  std::string name;  // "all_reduce (embedding)", "activations", ...
  CommKind kind = CommKind::kAllReduce;
  PayloadRows rows = PayloadRows::kNewTokens;
  int64_t row_elements = 0;  // elements per row, in `dtype`
  v1::DType dtype = v1::BF16;
  bool expert_group = false;  // over the stage's expert-parallel group, not its TP group

  // Bytes moved for a step of `shape` (the whole buffer, not a rank's share).
  int64_t Bytes(const model::StepShape& shape) const;
};

// One entry of a program: a compute op of the model graph, or a collective
// over the stage's tensor-parallel group.
struct Instruction {
  enum class Type { kCompute, kCollective };
  Type type = Type::kCompute;
  model::Op op;        // kCompute
  Communication comm;  // kCollective
};

// A run of instructions executed `repeat` times in a row (a stage's layers
// are a block per run of consecutive layers of one kind: one block for a
// uniform model, dense then MoE for DeepSeek, alternating for Gemma-2).
struct Block {
  std::string name;         // "embedding", "layers", "tail"
  int64_t first_layer = 0;  // for "layers": the model layer of the first repeat
  int64_t repeat = 1;
  std::vector<Instruction> instructions;
  int layer_kind = -1;      // for "layers": the index in ModelGraph::layer_kinds
};

// What one pipeline stage of one replica runs in a step.
struct StageProgram {
  int replica = 0;
  int stage = 0;
  std::vector<int> gpus;  // the stage's tensor-parallel group, by tp rank
  // The stage's expert-parallel group when ep > tp (ep GPUs: this stage of
  // ep / tp consecutive replicas); empty otherwise.
  std::vector<int> expert_gpus;
  std::vector<Block> blocks;
  // After the step: the hidden states to the next stage (all but the last
  // stage), or the sampled token ids back to the first (last stage, pp > 1).
  std::optional<Communication> to_next_stage;
  std::optional<Communication> to_first_stage;
};

struct Program {
  int pp = 1;
  std::vector<StageProgram> stages;  // by replica * pp + stage

  const StageProgram& Stage(int replica, int stage) const {
    return stages[static_cast<size_t>(replica * pp + stage)];
  }
};

// The program of `plan` for the model whose one-shard graph is `graph`
// (BuildGraph(dims, plan.shard)).
Program BuildProgram(const model::ModelGraph& graph, const Plan& plan);

// The GPUs of a collective of `stage`: its expert-parallel or its TP group.
inline const std::vector<int>& GroupOf(const StageProgram& stage, const Communication& comm) {
  return comm.expert_group ? stage.expert_gpus : stage.gpus;
}

// Every collective `stage` runs in a step, with how many times it runs
// (block repeats included), in instruction order of first appearance.
struct CollectiveCount {
  Communication comm;
  int64_t count = 0;
};
std::vector<CollectiveCount> CountCollectives(const StageProgram& stage);

// Kernels `stage` launches in a step: a GEMM, attention or head op is one,
// a memory-bound op one per instance (as sim/cost charges launch_s), each
// collective one; layers counted. What an eager step's host launches
// (scenario::RuntimeProfile::StepTime).
int64_t KernelLaunches(const StageProgram& stage);

}  // namespace shardsim::parallel

#endif  // SHARDSIM_SIM_PARALLEL_PROGRAM_H_
