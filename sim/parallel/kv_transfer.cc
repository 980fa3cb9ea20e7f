#include "sim/parallel/kv_transfer.h"

#include <algorithm>
#include <limits>
#include <map>
#include <utility>

#include "sim/model/graph.h"

namespace shardsim::parallel {
namespace {

// The tp ranks of a tp-way group that hold KV head `head` of `heads`.
std::vector<int> Holders(int64_t heads, int tp, int64_t head) {
  std::vector<int> holders;
  if (heads >= tp) {
    holders.push_back(static_cast<int>(head / (heads / tp)));
  } else {
    const int64_t per_head = tp / heads;
    for (int64_t t = head * per_head; t < (head + 1) * per_head; ++t) {
      holders.push_back(static_cast<int>(t));
    }
  }
  return holders;
}

// The KV heads tp rank `t` of a tp-way group holds.
std::vector<int64_t> HeadsOf(int64_t heads, int tp, int t) {
  std::vector<int64_t> held;
  if (heads >= tp) {
    for (int64_t h = t * (heads / tp); h < (t + 1) * (heads / tp); ++h) held.push_back(h);
  } else {
    held.push_back(t / (tp / heads));
  }
  return held;
}

// The stage of `plan` that holds layer `layer`.
int StageOf(const Plan& plan, int replica, int64_t layer) {
  for (int s = 0; s < plan.pp; ++s) {
    const Rank& rank = plan.ranks[static_cast<size_t>(plan.RankIndex(replica, s, 0))];
    if (layer >= rank.first_layer && layer < rank.first_layer + rank.num_layers) return s;
  }
  return plan.pp - 1;  // unreachable: the stages cover every layer
}

}  // namespace

std::vector<KvFlow> KvTransferFlows(const model::ModelDims& dims, const Plan& from,
                                    int from_replica, const Plan& to, int to_replica) {
  std::map<std::pair<int, int>, KvFlow> flows;
  if (dims.kind == v1::ENCODER_ONLY) return {};
  const bool mla = dims.is_mla();
  // MLA: one latent per layer, on every rank; otherwise per head.
  const int64_t unit_bytes = model::KvBytesPerTokenPerLayer(dims, 1);
  const int64_t heads = dims.num_kv_heads;
  for (int s = 0; s < to.pp; ++s) {
    for (int j = 0; j < to.tp; ++j) {
      const Rank& dst = to.ranks[static_cast<size_t>(to.RankIndex(to_replica, s, j))];
      const std::vector<int64_t> needed = mla ? std::vector<int64_t>{0} : HeadsOf(heads, to.tp, j);
      for (int64_t l = dst.first_layer; l < dst.first_layer + dst.num_layers; ++l) {
        const int stage = StageOf(from, from_replica, l);
        const bool sliding = dims.sliding_window > 0 && dims.IsSlidingLayer(l);
        for (int64_t h : needed) {
          std::vector<int> holders;
          if (mla) {
            for (int t = 0; t < from.tp; ++t) holders.push_back(t);
          } else {
            holders = Holders(heads, from.tp, h);
          }
          const int t = holders[static_cast<size_t>(j) % holders.size()];
          const int src =
              from.ranks[static_cast<size_t>(from.RankIndex(from_replica, stage, t))].gpu;
          KvFlow& flow = flows[{src, dst.gpu}];
          flow.src_gpu = src;
          flow.dst_gpu = dst.gpu;
          (sliding ? flow.sliding_bytes_per_token : flow.full_bytes_per_token) += unit_bytes;
        }
      }
    }
  }
  std::vector<KvFlow> result;
  result.reserve(flows.size());
  for (const auto& [pair, flow] : flows) result.push_back(flow);
  return result;
}

double IdleKvTransferSeconds(const hardware::Cluster& cluster, const std::vector<KvFlow>& flows,
                             int64_t tokens, int64_t sliding_window, double efficiency) {
  std::map<int, int> flows_on_link;
  for (const KvFlow& flow : flows) {
    if (flow.Bytes(tokens, sliding_window) <= 0) continue;
    for (const hardware::Hop& hop : cluster.Route(flow.src_gpu, flow.dst_gpu)) {
      ++flows_on_link[hop.link];
    }
  }
  double seconds = 0;
  for (const KvFlow& flow : flows) {
    const int64_t bytes = flow.Bytes(tokens, sliding_window);
    if (bytes <= 0) continue;
    double rate = std::numeric_limits<double>::infinity();
    for (const hardware::Hop& hop : cluster.Route(flow.src_gpu, flow.dst_gpu)) {
      rate = std::min(rate, cluster.links[static_cast<size_t>(hop.link)].bandwidth_bytes_per_s *
                                efficiency / flows_on_link[hop.link]);
    }
    seconds = std::max(seconds, cluster.RouteLatency(flow.src_gpu, flow.dst_gpu) +
                                    static_cast<double>(bytes) / rate);
  }
  return seconds;
}

}  // namespace shardsim::parallel
