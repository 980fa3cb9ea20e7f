#include "sim/parallel/partition.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace shardsim::parallel {

model::ShardDims ShardFor(const model::ModelDims& dims, int64_t tp, int64_t ep) {
  model::ShardDims shard;
  shard.attention_heads = dims.num_attention_heads / tp;
  shard.kv_heads = std::max<int64_t>(1, dims.num_kv_heads / tp);
  shard.ffn = dims.ffn_hidden_size / tp;
  if (dims.is_moe()) {
    // An expert group of max(tp, ep) ranks: experts split ep ways, each
    // expert's FFN over the rest (TensorRT-LLM's moe_tp x moe_ep).
    const int64_t expert_tp = std::max(tp, ep) / ep;
    shard.experts = dims.num_experts / ep;
    shard.expert_ffn = dims.expert_ffn_hidden_size / expert_tp;
    // Shared experts are dense FFNs: split by tp like the others.
    shard.shared_ffn = dims.num_shared_experts * dims.shared_expert_ffn_hidden_size / tp;
    shard.expert_token_sources = std::max(tp, ep) / tp;
  }
  // Vocabulary-parallel embedding and head: rows rounded up, as Megatron and
  // vLLM pad the vocabulary to a multiple of tp.
  shard.vocab = (dims.vocab_size + tp - 1) / tp;
  return shard;
}

absl::StatusOr<Plan> Partition(const model::ModelDims& dims,
                               const v1::Parallelism& parallelism,
                               const hardware::Cluster& cluster,
                               const FieldLocator& where) {
  Plan plan;
  for (auto [value, field] :
       {std::pair{parallelism.tp(), "parallelism.tp"},
        std::pair{parallelism.pp(), "parallelism.pp"},
        std::pair{parallelism.dp(), "parallelism.dp"},
       std::pair{parallelism.ep(), "parallelism.ep"}}) {
    if (value < 0) {
      return where.Error(field, absl::StrCat("must be positive, got ", value));
    }
  }
  if (parallelism.micro_batches() < 0) {
    return where.Error("parallelism.micro_batches",
                       absl::StrCat("must be positive, got ",
                                    parallelism.micro_batches()));
  }
  plan.tp = parallelism.tp() == 0 ? 1 : parallelism.tp();
  plan.pp = parallelism.pp() == 0 ? 1 : parallelism.pp();
  plan.dp = parallelism.dp() == 0 ? 1 : parallelism.dp();
  plan.micro_batches =
      parallelism.micro_batches() == 0 ? plan.pp : parallelism.micro_batches();
  const int64_t tp = plan.tp;

  if (dims.num_attention_heads % tp != 0) {
    return where.Error(
        "parallelism.tp",
        absl::StrCat("tp=", tp, " does not divide the ", dims.num_attention_heads,
                     " attention heads of ", dims.name));
  }
  if (dims.num_kv_heads >= tp ? dims.num_kv_heads % tp != 0
                              : tp % dims.num_kv_heads != 0) {
    return where.Error(
        "parallelism.tp",
        absl::StrCat("tp=", tp, " neither divides nor is a multiple of the ",
                     dims.num_kv_heads, " KV heads of ", dims.name));
  }
  if (dims.ffn_hidden_size % tp != 0) {
    return where.Error(
        "parallelism.tp",
        absl::StrCat("tp=", tp, " does not divide the FFN width ",
                     dims.ffn_hidden_size, " of ", dims.name));
  }
  if (plan.pp > dims.num_layers) {
    return where.Error("parallelism.pp",
                       absl::StrCat("pp=", plan.pp, " is more stages than the ",
                                    dims.num_layers, " layers of ", dims.name));
  }
  // In 64 bits: the product of three 32-bit degrees can wrap around.
  const int64_t gpus = int64_t{plan.tp} * plan.pp * plan.dp;
  if (gpus > cluster.num_gpus()) {
    return where.Error(
        "parallelism",
        absl::StrCat("tp x pp x dp = ", plan.tp, " x ", plan.pp, " x ",
                     plan.dp, " = ", gpus, " GPUs, but ",
                     cluster.name, " has ", cluster.num_gpus()));
  }

  plan.ep = parallelism.ep() == 0 ? 1 : parallelism.ep();
  if (plan.ep > 1) {
    const int64_t ep = plan.ep;
    const int64_t stage_ranks = int64_t{plan.tp} * plan.dp;
    if (!dims.is_moe()) {
      return where.Error("parallelism.ep",
                         absl::StrCat("ep=", ep, ", but ", dims.name,
                                      " has no routed experts to spread"));
    }
    if (dims.num_experts % ep != 0) {
      return where.Error("parallelism.ep",
                         absl::StrCat("ep=", ep, " does not divide the ", dims.num_experts,
                                      " routed experts of ", dims.name));
    }
    if (ep > stage_ranks || stage_ranks % ep != 0) {
      return where.Error(
          "parallelism.ep",
          absl::StrCat("ep=", ep, " must divide the tp x dp = ", plan.tp, " x ", plan.dp,
                       " = ", stage_ranks, " ranks of a pipeline stage it spreads experts over"));
    }
    if (ep % tp != 0 && tp % ep != 0) {
      return where.Error("parallelism.ep",
                         absl::StrCat("ep=", ep, " neither divides nor is a multiple of tp=",
                                      tp, " (expert groups are whole tensor-parallel groups)"));
    }
    const int64_t expert_tp = std::max<int64_t>(tp, ep) / ep;
    if (dims.expert_ffn_hidden_size % expert_tp != 0) {
      return where.Error("parallelism.ep",
                         absl::StrCat("each expert's FFN width ", dims.expert_ffn_hidden_size,
                                      " does not split ", expert_tp, " ways (tp=", tp,
                                      " over ep=", ep, ")"));
    }
  } else if (dims.is_moe() && dims.expert_ffn_hidden_size % tp != 0) {
    return where.Error("parallelism.tp",
                       absl::StrCat("tp=", tp, " does not divide the expert FFN width ",
                                    dims.expert_ffn_hidden_size, " of ", dims.name));
  }
  plan.shard = ShardFor(dims, tp, plan.ep);

  // Routing skew: the busiest EP rank's experts (consecutive ids) set the
  // pace. Unset stays uniform (no loads), so uniform runs are unchanged.
  const v1::ExpertRouting& routing = parallelism.expert_routing();
  const int set_fields = (routing.zipf_exponent() != 0) + (routing.hot_expert_share() != 0) +
                         (routing.expert_load_size() > 0);
  if (set_fields > 0) {
    const char* field = routing.expert_load_size() > 0 ? "parallelism.expert_routing.expert_load"
                        : routing.hot_expert_share() != 0
                            ? "parallelism.expert_routing.hot_expert_share"
                            : "parallelism.expert_routing.zipf_exponent";
    if (!dims.is_moe()) {
      return where.Error(field, absl::StrCat(dims.name, " has no routed experts to route to"));
    }
    if (set_fields > 1) {
      return where.Error(field, "give one of zipf_exponent, hot_expert_share, expert_load");
    }
    const double n = static_cast<double>(dims.num_experts);
    if (!(routing.zipf_exponent() >= 0 && routing.zipf_exponent() <= 10)) {
      return where.Error(field, absl::StrCat("must be in [0, 10], got ", routing.zipf_exponent()));
    }
    if (routing.hot_expert_share() != 0 &&
        !(routing.hot_expert_share() >= 1 / n && routing.hot_expert_share() <= 1)) {
      return where.Error(field, absl::StrCat("must be in [1/", dims.num_experts, ", 1], got ",
                                             routing.hot_expert_share()));
    }
    if (routing.expert_load_size() > 0) {
      if (routing.expert_load_size() != dims.num_experts) {
        return where.Error(field, absl::StrCat("has ", routing.expert_load_size(),
                                               " loads, but ", dims.name, " has ",
                                               dims.num_experts, " routed experts"));
      }
      double total = 0;
      for (double w : routing.expert_load()) {
        if (!(w >= 0 && w < 1e300)) {
          return where.Error(field, absl::StrCat("loads must be finite and >= 0, got ", w));
        }
        total += w;
      }
      if (!(total > 0)) return where.Error(field, "loads must not all be 0");
    }
    plan.shard.expert_loads = model::BusiestRank(
        model::ExpertLoadShares(dims.num_experts, routing.zipf_exponent(),
                                routing.hot_expert_share(),
                                {routing.expert_load().begin(), routing.expert_load().end()}),
        plan.ep);
  }

  const auto& placement = parallelism.placement();
  if (!placement.empty()) {
    if (placement.size() != plan.num_gpus()) {
      return where.Error(
          "parallelism.placement",
          absl::StrCat("names ", placement.size(), " GPUs for tp x pp x dp = ",
                       plan.num_gpus(), " ranks"));
    }
    std::vector<bool> used(static_cast<size_t>(cluster.num_gpus()), false);
    for (int gpu : placement) {
      if (gpu < 0 || gpu >= cluster.num_gpus()) {
        return where.Error("parallelism.placement",
                           absl::StrCat("GPU ", gpu, " is not in ", cluster.name,
                                        " (0 .. ", cluster.num_gpus() - 1, ")"));
      }
      if (used[static_cast<size_t>(gpu)]) {
        return where.Error("parallelism.placement",
                           absl::StrCat("GPU ", gpu, " is named twice"));
      }
      used[static_cast<size_t>(gpu)] = true;
    }
  }

  // Layers per stage: as even as possible, the first stages take the extra.
  const int64_t base = dims.num_layers / plan.pp;
  const int64_t extra = dims.num_layers % plan.pp;
  for (int replica = 0; replica < plan.dp; ++replica) {
    int64_t first_layer = 0;
    for (int stage = 0; stage < plan.pp; ++stage) {
      const int64_t layers = base + (stage < extra ? 1 : 0);
      for (int t = 0; t < plan.tp; ++t) {
        Rank rank;
        const int index = static_cast<int>(plan.ranks.size());
        rank.gpu = placement.empty() ? index : placement[index];
        rank.node = cluster.NodeOf(rank.gpu);
        rank.tp_rank = t;
        rank.pp_stage = stage;
        rank.dp_replica = replica;
        rank.first_layer = first_layer;
        rank.num_layers = layers;
        rank.has_embedding = stage == 0;
        rank.has_tail = stage == plan.pp - 1;
        plan.ranks.push_back(rank);
      }
      first_layer += layers;
    }
  }
  return plan;
}

std::vector<int> Plan::TpGroup(int replica, int stage) const {
  std::vector<int> group;
  for (int t = 0; t < tp; ++t) {
    group.push_back(ranks[static_cast<size_t>(RankIndex(replica, stage, t))].gpu);
  }
  return group;
}

int64_t SequencesOnReplica(int64_t batch_size, int dp, int replica) {
  return batch_size / dp + (replica < batch_size % dp ? 1 : 0);
}

int64_t SequencesInMicroBatch(int64_t sequences, int micro_batches, int m) {
  return SequencesOnReplica(sequences, micro_batches, m);
}

}  // namespace shardsim::parallel
