#include "sim/cost/collective_model.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "absl/strings/str_cat.h"

namespace shardsim::cost {

std::string CollectivePlan::Name() const {
  if (IsCustomAllReduce(algorithm)) return CollectiveAlgorithmName(algorithm);
  return absl::StrCat(CollectiveAlgorithmName(algorithm), "/", NcclProtocolName(protocol));
}

bool IsCustomAllReduce(CollectiveAlgorithm algorithm) {
  return algorithm == CollectiveAlgorithm::kOneShot || algorithm == CollectiveAlgorithm::kTwoShot;
}

CollectiveAlgorithm CustomAllReduceChoice(int ranks, int64_t bytes, bool one_node,
                                          bool fully_nvlink) {
  // custom_all_reduce.py: _SUPPORTED_WORLD_SIZES = [2, 4, 6, 8]; one node
  // only; should_custom_ar(): inp_size % 16 == 0, inp_size < max_size, and
  // world_size == 2 or fully connected by NVLink.
  const bool supported = ranks == 2 || ranks == 4 || ranks == 6 || ranks == 8;
  if (!supported || !one_node || bytes <= 0 || bytes % 16 != 0 ||
      bytes >= kCustomAllReduceMaxBytes || (ranks != 2 && !fully_nvlink)) {
    return CollectiveAlgorithm::kRing;
  }
  // custom_all_reduce.cuh, allreduce(): 1-stage for world size 2; with full
  // NVLink, 1-stage when (ws <= 4 and bytes < 512 KiB) or (ws <= 8 and
  // bytes < 256 KiB), else 2-stage.
  if (ranks == 2 || (ranks <= 4 && bytes < 512 * 1024) || (ranks <= 8 && bytes < 256 * 1024)) {
    return CollectiveAlgorithm::kOneShot;
  }
  return CollectiveAlgorithm::kTwoShot;
}

namespace {

bool AllNvlink(const hardware::Cluster& cluster, const std::vector<hardware::Hop>& route) {
  for (const hardware::Hop& hop : route) {
    if (cluster.links[static_cast<size_t>(hop.link)].kind != "nvlink") return false;
  }
  return !route.empty();
}

double KindEfficiency(const v1::CollectiveTuning& tuning, const std::string& kind) {
  for (const v1::LinkKindEfficiency& k : tuning.link_kinds()) {
    if (k.kind() == kind && k.bandwidth_efficiency() > 0) return k.bandwidth_efficiency();
  }
  return tuning.bandwidth_efficiency() > 0 ? tuning.bandwidth_efficiency() : 1.0;
}

const v1::ProtocolTuning* ProtocolEntry(const v1::CollectiveTuning& tuning,
                                        const CollectivePlan& plan) {
  const std::string key = ProtocolKey(plan);
  for (const v1::ProtocolTuning& p : tuning.protocols()) {
    if (p.protocol() == key) return &p;
  }
  return nullptr;
}

// Parent of each member of `group` (by position; -1 for the root) in the
// tree described in the header: a chain inside each node, node leaders in a
// binary tree of nodes in order of first appearance.
std::vector<int> TreeParents(const hardware::Cluster& cluster, const std::vector<int>& group) {
  std::vector<int> parent(group.size(), -1);
  std::map<int, int> last_of_node;  // node -> position of its latest member
  std::vector<int> leaders;         // position of each node's first member
  for (size_t i = 0; i < group.size(); ++i) {
    const int node = cluster.NodeOf(group[i]);
    auto it = last_of_node.find(node);
    if (it != last_of_node.end()) {
      parent[i] = it->second;
      it->second = static_cast<int>(i);
    } else {
      const size_t m = leaders.size();
      if (m > 0) parent[i] = leaders[(m - 1) / 2];
      leaders.push_back(static_cast<int>(i));
      last_of_node[node] = static_cast<int>(i);
    }
  }
  return parent;
}

}  // namespace

NcclFabric NcclFabricOf(const hardware::Cluster& cluster, const std::vector<int>& group) {
  NcclFabric f;
  f.ranks = static_cast<int>(group.size());
  f.compute_capability = cluster.gpu.compute_capability();
  std::map<int, int> nodes;
  for (int g : group) ++nodes[cluster.NodeOf(g)];
  f.nodes = static_cast<int>(nodes.size());
  bool nvlink = cluster.gpu.nvlink_generation() > 0;
  bool switched = true;
  bool any_intra = false;
  double intra = std::numeric_limits<double>::infinity();
  double inter = std::numeric_limits<double>::infinity();
  for (size_t i = 0; i < group.size(); ++i) {
    for (size_t j = 0; j < group.size(); ++j) {
      if (i == j) continue;
      const int a = group[i];
      const int b = group[j];
      if (cluster.NodeOf(a) == cluster.NodeOf(b)) {
        const std::vector<hardware::Hop> route = cluster.Route(a, b);
        any_intra = true;
        nvlink = nvlink && AllNvlink(cluster, route);
        switched = switched && route.size() == 2;
        intra = std::min(intra, cluster.RouteBandwidth(a, b));
      } else {
        inter = std::min(inter, cluster.RouteBandwidth(a, b));
      }
    }
  }
  f.nvlink = nvlink && any_intra;
  // A switch joins more than two GPUs; two GPUs of a node are a pair.
  f.nvswitch_generation = f.nvlink && switched && cluster.gpus_per_node > 2
                              ? std::max(0, cluster.gpu.nvlink_generation() - 1)
                              : 0;
  if (std::isfinite(intra)) f.intra_bandwidth_gbps = intra / 1e9;
  if (std::isfinite(inter)) f.inter_bandwidth_gbps = inter / 1e9;
  if (!any_intra) f.intra_bandwidth_gbps = f.inter_bandwidth_gbps;
  return f;
}

bool IsFullMesh(const hardware::Cluster& cluster, const std::vector<int>& group) {
  for (int a : group) {
    for (int b : group) {
      if (a != b && cluster.Route(a, b).size() != 1) return false;
    }
  }
  return true;
}

CollectivePlan PlanCollective(const hardware::Cluster& cluster, const std::vector<int>& group,
                              parallel::CommKind kind, int64_t bytes, bool custom_all_reduce) {
  CollectivePlan plan;
  if (custom_all_reduce && kind == parallel::CommKind::kAllReduce && group.size() > 1) {
    const NcclFabric fabric = NcclFabricOf(cluster, group);
    const CollectiveAlgorithm custom = CustomAllReduceChoice(
        static_cast<int>(group.size()), bytes, fabric.nodes == 1, fabric.nvlink);
    if (IsCustomAllReduce(custom)) {
      plan.algorithm = custom;
      return plan;
    }
  }
  if (kind == parallel::CommKind::kAllToAll || kind == parallel::CommKind::kSendRecv ||
      (group.size() > 2 && IsFullMesh(cluster, group))) {
    plan.algorithm = CollectiveAlgorithm::kDirect;
    return plan;
  }
  if (group.size() <= 1) return plan;
  const NcclCollective collective = kind == parallel::CommKind::kAllGather
                                        ? NcclCollective::kAllGather
                                    : kind == parallel::CommKind::kReduceScatter
                                        ? NcclCollective::kReduceScatter
                                        : NcclCollective::kAllReduce;
  const NcclChoice choice = ChooseNccl(collective, bytes, NcclFabricOf(cluster, group));
  plan.protocol = choice.protocol;
  plan.algorithm = choice.algorithm;
  return plan;
}

CollectiveShape ShapeCollective(const CollectivePlan& plan, parallel::CommKind kind,
                                int64_t bytes, const hardware::Cluster& cluster,
                                const std::vector<int>& group) {
  CollectiveShape shape;
  shape.plan = plan;
  const int n = static_cast<int>(group.size());
  if (n <= 1 || bytes <= 0) return shape;
  const bool all_reduce = kind == parallel::CommKind::kAllReduce;
  // Each GPU's 1/N share of the buffer, rounded up.
  const double share = static_cast<double>((bytes + n - 1) / n);
  switch (plan.algorithm) {
    case CollectiveAlgorithm::kRing:
      shape.phases = all_reduce ? 2 * (n - 1) : n - 1;
      shape.flow_bytes = share;
      break;
    case CollectiveAlgorithm::kDirect:
    case CollectiveAlgorithm::kTwoShot:
      shape.phases = all_reduce ? 2 : 1;
      shape.flow_bytes = share;
      break;
    case CollectiveAlgorithm::kOneShot:
      // Every GPU reads each peer's whole buffer.
      shape.phases = 1;
      shape.flow_bytes = static_cast<double>(bytes);
      break;
    case CollectiveAlgorithm::kNvls:
      shape.phases = 1;
      shape.flow_bytes = all_reduce ? static_cast<double>(bytes)
                                    : static_cast<double>(bytes) - share;
      break;
    case CollectiveAlgorithm::kTree:
    case CollectiveAlgorithm::kNvlsTree: {
      shape.phases = 2;
      shape.flow_bytes = static_cast<double>(bytes);
      std::map<int, int> per_node;
      for (int g : group) ++per_node[cluster.NodeOf(g)];
      int chain = 0;
      for (const auto& [node, count] : per_node) chain = std::max(chain, count);
      shape.latency_steps =
          std::max(1, chain - 1 + Log2Floor(static_cast<int>(per_node.size())));
      break;
    }
  }
  return shape;
}

std::vector<std::pair<int, int>> PhaseFlows(const CollectiveShape& shape,
                                            const hardware::Cluster& cluster,
                                            const std::vector<int>& group, int phase) {
  std::vector<std::pair<int, int>> flows;
  const size_t n = group.size();
  if (n <= 1 || phase >= shape.phases) return flows;
  switch (shape.plan.algorithm) {
    case CollectiveAlgorithm::kRing:
    case CollectiveAlgorithm::kNvls:
      for (size_t r = 0; r < n; ++r) flows.push_back({group[r], group[(r + 1) % n]});
      break;
    case CollectiveAlgorithm::kDirect:
    case CollectiveAlgorithm::kOneShot:
    case CollectiveAlgorithm::kTwoShot:
      for (size_t from = 0; from < n; ++from) {
        for (size_t to = 0; to < n; ++to) {
          if (from != to) flows.push_back({group[from], group[to]});
        }
      }
      break;
    case CollectiveAlgorithm::kTree:
    case CollectiveAlgorithm::kNvlsTree: {
      const std::vector<int> parent = TreeParents(cluster, group);
      for (size_t i = 0; i < n; ++i) {
        if (parent[i] < 0) continue;
        const int child = group[i];
        const int up = group[static_cast<size_t>(parent[i])];
        // Phase 0 reduces towards the root, phase 1 broadcasts back.
        flows.push_back(phase == 0 ? std::make_pair(child, up) : std::make_pair(up, child));
      }
      break;
    }
  }
  return flows;
}

const char* ProtocolKey(const CollectivePlan& plan) {
  if (plan.algorithm == CollectiveAlgorithm::kOneShot) return "ONESHOT";
  if (plan.algorithm == CollectiveAlgorithm::kTwoShot) return "TWOSHOT";
  if (plan.algorithm == CollectiveAlgorithm::kNvls ||
      plan.algorithm == CollectiveAlgorithm::kNvlsTree) {
    return "NVLS";
  }
  return NcclProtocolName(plan.protocol);
}

double StepLatency(const v1::CollectiveTuning& tuning, const CollectivePlan& plan) {
  const v1::ProtocolTuning* p = ProtocolEntry(tuning, plan);
  return p != nullptr ? p->step_latency_s() : tuning.step_latency_s();
}

double BandwidthFactor(const v1::CollectiveTuning& tuning, const CollectivePlan& plan) {
  const v1::ProtocolTuning* p = ProtocolEntry(tuning, plan);
  return p != nullptr && p->bandwidth_factor() > 0 ? p->bandwidth_factor() : 1.0;
}

uint64_t SimulatedBytes(double bytes, double efficiency) {
  return static_cast<uint64_t>(std::ceil(bytes / (efficiency > 0 ? efficiency : 1.0)));
}

double FlowEfficiency(const hardware::Cluster& cluster, const v1::CollectiveTuning& tuning,
                      const CollectivePlan& plan, int from, int to) {
  return std::min(1.0, KindEfficiency(tuning, cluster.Bottleneck(from, to).kind) *
                           BandwidthFactor(tuning, plan));
}

double CustomAllReduceTimeAlone(const hardware::Cluster& cluster,
                                const v1::CollectiveTuning& tuning,
                                const std::vector<int>& group, const CollectivePlan& plan,
                                int64_t bytes) {
  if (group.size() <= 1 || bytes <= 0) return 0;
  const CollectiveShape shape =
      ShapeCollective(plan, parallel::CommKind::kAllReduce, bytes, cluster, group);
  double t = 0;  // no NCCL launch: the kernel's fixed cost is its step latency
  for (int phase = 0; phase < shape.phases; ++phase) {
    t += shape.latency_steps * StepLatency(tuning, plan);
    const std::vector<std::pair<int, int>> flows = PhaseFlows(shape, cluster, group, phase);
    // Bytes each link carries in each direction in this phase.
    std::map<std::pair<int, bool>, double> load;
    std::vector<double> moved;
    for (const auto& [from, to] : flows) {
      moved.push_back(static_cast<double>(
          SimulatedBytes(shape.flow_bytes, FlowEfficiency(cluster, tuning, plan, from, to))));
      for (const hardware::Hop& hop : cluster.Route(from, to)) {
        load[{hop.link, hop.forward}] += moved.back();
      }
    }
    double slowest = 0;
    for (const auto& [from, to] : flows) {
      double busiest = 0;  // the flow ends when its most loaded link has drained
      for (const hardware::Hop& hop : cluster.Route(from, to)) {
        busiest = std::max(busiest, load[{hop.link, hop.forward}] /
                                        cluster.links[static_cast<size_t>(hop.link)]
                                            .bandwidth_bytes_per_s);
      }
      slowest = std::max(slowest, cluster.RouteLatency(from, to) + busiest);
    }
    t += slowest;
  }
  return t;
}

double CollectiveTimeAlone(const hardware::Cluster& cluster, const v1::CollectiveTuning& tuning,
                           const std::vector<int>& group, parallel::CommKind kind,
                           int64_t bytes, bool custom_all_reduce) {
  if (group.size() <= 1 || bytes <= 0) return 0;
  const CollectivePlan plan = PlanCollective(cluster, group, kind, bytes, custom_all_reduce);
  if (IsCustomAllReduce(plan.algorithm)) {
    return CustomAllReduceTimeAlone(cluster, tuning, group, plan, bytes);
  }
  const CollectiveShape shape = ShapeCollective(plan, kind, bytes, cluster, group);
  double t = tuning.launch_s();
  for (int phase = 0; phase < shape.phases; ++phase) {
    t += shape.latency_steps * StepLatency(tuning, plan);
    double slowest = 0;
    for (const auto& [from, to] : PhaseFlows(shape, cluster, group, phase)) {
      const double bytes_moved = static_cast<double>(
          SimulatedBytes(shape.flow_bytes, FlowEfficiency(cluster, tuning, plan, from, to)));
      slowest = std::max(slowest, cluster.RouteLatency(from, to) +
                                      bytes_moved / cluster.RouteBandwidth(from, to));
    }
    t += slowest;
  }
  return t;
}

}  // namespace shardsim::cost
