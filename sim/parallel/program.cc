#include "sim/parallel/program.h"

#include <cmath>

#include "sim/base/units.h"

namespace shardsim::parallel {
namespace {

// Token ids travel as 32-bit integers (what vLLM and TensorRT-LLM send
// between pipeline ranks); FP32 has the same width.
constexpr v1::DType kTokenIdDType = v1::FP32;

Instruction Compute(const model::Op& op) {
  Instruction i;
  i.type = Instruction::Type::kCompute;
  i.op = op;
  return i;
}

Instruction Collective(Communication comm) {
  Instruction i;
  i.type = Instruction::Type::kCollective;
  i.comm = std::move(comm);
  return i;
}

Communication HiddenStates(const model::ModelDims& dims, std::string name, CommKind kind) {
  Communication c;
  c.name = std::move(name);
  c.kind = kind;
  c.rows = PayloadRows::kNewTokens;
  c.row_elements = dims.hidden_size;
  // What collectives move: the precision's communication dtype (the
  // activations' unless set apart; BF16 under the fp8 recipe).
  c.dtype = dims.communication_dtype;
  return c;
}

// An all-to-all of the routed tokens: each token's hidden state goes to its
// top-k experts, the TP ranks of a replica each sending their share.
Communication Dispatch(const model::ModelDims& dims, const Plan& plan, std::string name) {
  Communication c;
  c.name = std::move(name);
  c.kind = CommKind::kAllToAll;
  c.rows = PayloadRows::kNewTokens;
  c.row_elements = (dims.experts_per_token * dims.hidden_size + plan.tp - 1) / plan.tp;
  if (!plan.shard.expert_loads.empty()) {
    // Skewed routing: the busiest rank receives (and sends back) ep x its
    // share of the routed rows, and every rank waits for it; the exchange
    // is simulated as if each rank moved what the busiest one does.
    double share = 0;
    for (double p : plan.shard.expert_loads) share += p;
    c.row_elements = static_cast<int64_t>(std::ceil(
        static_cast<double>(dims.experts_per_token * dims.hidden_size) *
        static_cast<double>(plan.ep) * share / static_cast<double>(plan.tp)));
  }
  c.dtype = dims.communication_dtype;
  c.expert_group = true;
  return c;
}

}  // namespace

const char* CommKindName(CommKind kind) {
  switch (kind) {
    case CommKind::kAllReduce:
      return "all_reduce";
    case CommKind::kAllGather:
      return "all_gather";
    case CommKind::kReduceScatter:
      return "reduce_scatter";
    case CommKind::kAllToAll:
      return "all_to_all";
    case CommKind::kSendRecv:
      return "send_recv";
  }
  return "?";
}

int64_t Communication::Bytes(const model::StepShape& shape) const {
  int64_t rows_in_step = shape.new_tokens;
  if (rows == PayloadRows::kHeadRows) rows_in_step = shape.head_rows;
  if (rows == PayloadRows::kSequences) rows_in_step = shape.sequences;
  return BytesOf(rows_in_step * row_elements, dtype);
}

Program BuildProgram(const model::ModelGraph& graph, const Plan& plan) {
  const model::ModelDims& dims = graph.dims;
  const bool tensor_parallel = plan.tp > 1;
  const bool expert_all_to_all = dims.is_moe() && plan.ep > plan.tp;
  Program program;
  program.pp = plan.pp;
  for (int replica = 0; replica < plan.dp; ++replica) {
    for (int stage = 0; stage < plan.pp; ++stage) {
      const Rank& rank = plan.ranks[static_cast<size_t>(plan.RankIndex(replica, stage, 0))];
      StageProgram sp;
      sp.replica = replica;
      sp.stage = stage;
      sp.gpus = plan.TpGroup(replica, stage);
      if (expert_all_to_all) {
        // ep / tp consecutive replicas form an expert-parallel group.
        const int replicas_per_group = plan.ep / plan.tp;
        const int first = replica / replicas_per_group * replicas_per_group;
        for (int r = first; r < first + replicas_per_group; ++r) {
          for (int gpu : plan.TpGroup(r, stage)) sp.expert_gpus.push_back(gpu);
        }
      }
      if (rank.has_embedding) {
        Block block{"embedding", 0, 1, {}, -1};
        for (const model::Op& op : graph.embedding) block.instructions.push_back(Compute(op));
        // Each rank looks up its slice of the vocabulary; the partial
        // embeddings are summed across the group.
        if (tensor_parallel) {
          block.instructions.push_back(Collective(
              HiddenStates(dims, "all_reduce (embedding)", CommKind::kAllReduce)));
        }
        sp.blocks.push_back(std::move(block));
      }
      for (int64_t l = rank.first_layer; l < rank.first_layer + rank.num_layers;) {
        // A run of consecutive layers of one kind is one block.
        const int kind = graph.LayerKindOf(l);
        int64_t run = 1;
        while (l + run < rank.first_layer + rank.num_layers && graph.LayerKindOf(l + run) == kind) {
          ++run;
        }
        Block block{"layers", l, run, {}, kind};
        const bool all_to_all = expert_all_to_all && graph.layer_kinds[static_cast<size_t>(kind)].moe;
        for (const model::Op& op : graph.LayerOps(l)) {
          // The routed experts (the grouped GEMMs: count > 1) run on the
          // tokens the dispatch brought.
          const bool routed = op.count > 1 && op.kind == model::OpKind::kGemm;
          if (all_to_all && routed && op.name == "gate_up_proj") {
            block.instructions.push_back(Collective(Dispatch(dims, plan, "all_to_all (dispatch)")));
          }
          block.instructions.push_back(Compute(op));
          if (all_to_all && routed && op.name == "down_proj") {
            block.instructions.push_back(Collective(Dispatch(dims, plan, "all_to_all (combine)")));
          }
          // Row-parallel projections leave partial sums: the attention output
          // (unless it shares the FFN's all-reduce) and the FFN output.
          const bool ends_attention = op.name == "o_proj" && !dims.parallel_attention;
          if (tensor_parallel && (ends_attention || op.name == "down_proj")) {
            block.instructions.push_back(
                Collective(HiddenStates(dims, "all_reduce", CommKind::kAllReduce)));
          }
        }
        sp.blocks.push_back(std::move(block));
        l += run;
      }
      if (rank.has_tail) {
        Block block{"tail", 0, 1, {}, -1};
        for (const model::Op& op : graph.tail) {
          if (op.kind != model::OpKind::kSampler) block.instructions.push_back(Compute(op));
        }
        if (tensor_parallel && dims.has_lm_head()) {
          // Each rank computes the logits of its vocabulary slice; sampling
          // needs the whole row.
          Communication logits;
          logits.name = "all_gather (logits)";
          logits.kind = CommKind::kAllGather;
          logits.rows = PayloadRows::kHeadRows;
          logits.row_elements = plan.shard.vocab * plan.tp;
          logits.dtype = dims.activation_dtype;
          block.instructions.push_back(Collective(std::move(logits)));
        }
        // The sampler works on the gathered rows.
        for (const model::Op& op : graph.tail) {
          if (op.kind == model::OpKind::kSampler) block.instructions.push_back(Compute(op));
        }
        sp.blocks.push_back(std::move(block));
      }
      if (stage + 1 < plan.pp) {
        sp.to_next_stage = HiddenStates(dims, "activations", CommKind::kSendRecv);
      } else if (plan.pp > 1) {
        Communication tokens;
        tokens.name = "sampled tokens";
        tokens.kind = CommKind::kSendRecv;
        tokens.rows = PayloadRows::kSequences;
        tokens.row_elements = 1;
        tokens.dtype = kTokenIdDType;
        sp.to_first_stage = std::move(tokens);
      }
      program.stages.push_back(std::move(sp));
    }
  }
  return program;
}

std::vector<CollectiveCount> CountCollectives(const StageProgram& stage) {
  std::vector<CollectiveCount> counts;
  for (const Block& block : stage.blocks) {
    for (const Instruction& i : block.instructions) {
      if (i.type != Instruction::Type::kCollective) continue;
      counts.push_back({i.comm, block.repeat});
    }
  }
  return counts;
}

int64_t KernelLaunches(const StageProgram& stage) {
  int64_t kernels = 0;
  for (const Block& block : stage.blocks) {
    int64_t per_block = 0;
    for (const Instruction& i : block.instructions) {
      if (i.type != Instruction::Type::kCompute) {
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

}  // namespace shardsim::parallel
