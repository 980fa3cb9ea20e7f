#include "sim/hardware/cluster.h"

#include <algorithm>
#include <deque>
#include <limits>
#include <map>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "sim/base/status_macros.h"
#include "sim/hardware/builtin_calibration.h"

namespace shardsim::hardware {

absl::StatusOr<v1::GpuCatalog> LoadGpuCatalog(const std::string& path) {
  v1::GpuCatalog catalog;
  FieldLocator where;
  SHARDSIM_RETURN_IF_ERROR(LoadTextProto(path, &catalog, &where));
  std::set<std::string> names;
  for (int i = 0; i < catalog.gpus_size(); ++i) {
    const v1::GpuSpec& gpu = catalog.gpus(i);
    const std::string field = absl::StrCat("gpus[", i, "]");
    if (gpu.name().empty()) return where.Error(field + ".name", "missing");
    if (!names.insert(gpu.name()).second) {
      return where.Error(field + ".name",
                         absl::StrCat("duplicate GPU '", gpu.name(), "'"));
    }
    if (gpu.capacity_bytes() <= 0) {
      return where.Error(field + ".capacity_bytes", "must be positive");
    }
    // Written so that NaN and infinity fail too.
    if (!(gpu.hbm_bandwidth_bytes_per_s() >= 1e6 && gpu.hbm_bandwidth_bytes_per_s() <= 1e18)) {
      return where.Error(field + ".hbm_bandwidth_bytes_per_s",
                         "must be between 1e6 and 1e18 bytes per second");
    }
    if (!(gpu.price_per_hour() >= 0 && gpu.price_per_hour() < 1e9)) {
      return where.Error(field + ".price_per_hour", "must be a non-negative amount");
    }
    if (!(gpu.measured_matmul_efficiency() >= 0 && gpu.measured_matmul_efficiency() <= 1)) {
      return where.Error(field + ".measured_matmul_efficiency", "must be between 0 and 1");
    }
    for (int j = 0; j < gpu.dense_throughput_size(); ++j) {
      if (!(gpu.dense_throughput(j).flops_per_s() >= 1e6 &&
            gpu.dense_throughput(j).flops_per_s() <= 1e20)) {
        return where.Error(
            absl::StrCat(field, ".dense_throughput[", j, "].flops_per_s"),
            "must be between 1e6 and 1e20");
      }
    }
  }
  return catalog;
}

absl::StatusOr<v1::GpuSpec> FindGpu(const v1::GpuCatalog& catalog,
                                    const std::string& name,
                                    const std::string& catalog_path) {
  std::vector<std::string> known;
  for (const v1::GpuSpec& gpu : catalog.gpus()) {
    if (gpu.name() == name) return gpu;
    known.push_back(gpu.name());
  }
  return absl::NotFoundError(absl::StrCat(
      "unknown GPU '", name, "' (", catalog_path, " has ",
      absl::StrJoin(known, ", "), ")"));
}

std::string CatalogPathFor(const v1::Topology& topology,
                           const std::string& topology_file) {
  const std::string& file = topology.gpu_catalog_file().empty()
                                ? std::string("gpus.textproto")
                                : topology.gpu_catalog_file();
  return ResolveRelative(topology_file, file);
}

namespace {

constexpr char kFabric[] = "fabric";

// Instantiates the topology's links on every node, and finds the routes of
// one node: from each GPU to each other and to the fabric, fewest links
// first, then the widest bottleneck. Every node is wired alike, so these
// serve every node (Cluster::Route).
absl::Status BuildRoutes(const v1::Topology& topology, const FieldLocator& where,
                         Cluster* cluster) {
  const int per_node = cluster->gpus_per_node;
  // One node's graph: its GPUs first (vertex = local index), then its other
  // endpoints and the fabric in the order links name them.
  std::map<std::string, int> vertex_of;
  auto vertex = [&](const std::string& name) {
    auto [it, inserted] = vertex_of.emplace(name, static_cast<int>(vertex_of.size()));
    return it->second;
  };
  for (int g = 0; g < per_node; ++g) vertex(absl::StrCat("gpu", g));
  struct Edge {
    int to;
    int link;  // topology link index
    bool forward;
  };
  std::vector<std::vector<Edge>> adjacency;
  cluster->links_per_node = topology.links_size();
  cluster->links.resize(static_cast<size_t>(topology.links_size()) *
                        static_cast<size_t>(cluster->num_nodes));
  for (int i = 0; i < topology.links_size(); ++i) {
    const v1::Link& link = topology.links(i);
    const std::string field = absl::StrCat("links[", i, "]");
    for (const std::string* end : {&link.a(), &link.b()}) {
      if (end->empty()) return where.Error(field, "a link needs both ends, a and b");
      if (absl::StartsWith(*end, "gpu")) {
        int index = -1;
        if (!absl::SimpleAtoi(end->substr(3), &index) || index < 0 ||
            index >= cluster->gpus_per_node) {
          return where.Error(
              field, absl::StrCat("no GPU '", *end, "' on a node of ",
                                  cluster->gpus_per_node, " GPUs (gpu0 .. gpu",
                                  cluster->gpus_per_node - 1, ")"));
        }
      }
    }
    if (link.a() == link.b()) {
      return where.Error(field, absl::StrCat("links '", link.a(), "' to itself"));
    }
    // Written so that NaN fails too.
    if (!(link.bandwidth_bytes_per_s() >= 1e3 && link.bandwidth_bytes_per_s() <= 1e18)) {
      return where.Error(field + ".bandwidth_bytes_per_s",
                         "must be between 1e3 and 1e18 bytes per second");
    }
    if (!(link.latency_s() >= 0 && link.latency_s() <= 1)) {
      return where.Error(field + ".latency_s", "must be between 0 and 1 second");
    }
    if (link.count() < 0) return where.Error(field + ".count", "must not be negative");
    const int count = link.count() == 0 ? 1 : link.count();
    for (int node = 0; node < cluster->num_nodes; ++node) {
      cluster->links[static_cast<size_t>(cluster->NodeLink(i, node))] =
          ClusterLink{absl::StrCat("n", node, "/", link.a(), "-", link.b()),
                      link.bandwidth_bytes_per_s() * count, link.latency_s(), link.kind()};
    }
    const int a = vertex(link.a());
    const int b = vertex(link.b());
    adjacency.resize(vertex_of.size());
    adjacency[static_cast<size_t>(a)].push_back(Edge{b, i, true});
    adjacency[static_cast<size_t>(b)].push_back(Edge{a, i, false});
  }
  adjacency.resize(vertex_of.size());

  // A switch, bridge or NIC on one link only is a dead end no route can use:
  // almost always a misspelled name.
  // The fabric is one switch shared by every node, so a link to it, written
  // once, is num_nodes links to it: one uplink per node is no dead end.
  std::map<std::string, int> uses;
  for (const v1::Link& link : topology.links()) {
    for (const std::string* end : {&link.a(), &link.b()}) {
      if (!absl::StartsWith(*end, "gpu")) {
        uses[*end] += *end == kFabric ? cluster->num_nodes : 1;
      }
    }
  }
  for (int i = 0; i < topology.links_size(); ++i) {
    for (const std::string* end : {&topology.links(i).a(), &topology.links(i).b()}) {
      if (!absl::StartsWith(*end, "gpu") && uses[*end] == 1) {
        return where.Error(absl::StrCat("links[", i, "]"),
                           absl::StrCat("'", *end, "' is on this link only, so no "
                                        "route can pass through it (a misspelled name?)"));
      }
    }
  }

  auto no_route = [&](int src, int dst) {
    return where.Error("links", absl::StrCat("no route from GPU ", src, " (node ",
                                             cluster->NodeOf(src), ") to GPU ", dst,
                                             " (node ", cluster->NodeOf(dst), ")"));
  };
  const auto fabric = vertex_of.find(kFabric);
  const size_t vertices = vertex_of.size();
  cluster->node_routes.assign(static_cast<size_t>(per_node),
                              std::vector<std::vector<Hop>>(static_cast<size_t>(per_node)));
  cluster->to_fabric.assign(static_cast<size_t>(per_node), {});
  for (int src = 0; src < per_node; ++src) {
    std::vector<int> depth(vertices, -1);
    std::vector<double> bottleneck(vertices, 0);
    std::vector<Edge> parent(vertices, Edge{-1, -1, true});  // .to = from
    std::deque<int> queue = {src};
    depth[static_cast<size_t>(src)] = 0;
    bottleneck[static_cast<size_t>(src)] = std::numeric_limits<double>::infinity();
    while (!queue.empty()) {
      const int u = queue.front();
      queue.pop_front();
      for (const Edge& e : adjacency[static_cast<size_t>(u)]) {
        const size_t v = static_cast<size_t>(e.to);
        const double width =
            std::min(bottleneck[static_cast<size_t>(u)],
                     topology.links(e.link).bandwidth_bytes_per_s() *
                         std::max(1, topology.links(e.link).count()));
        if (depth[v] < 0) {
          depth[v] = depth[static_cast<size_t>(u)] + 1;
          queue.push_back(e.to);
        } else if (depth[v] != depth[static_cast<size_t>(u)] + 1 || width <= bottleneck[v]) {
          continue;
        }
        bottleneck[v] = width;
        parent[v] = Edge{u, e.link, e.forward};
      }
    }
    auto path_to = [&](int dst) {
      std::vector<Hop> route;
      for (int v = dst; v != src; v = parent[static_cast<size_t>(v)].to) {
        const Edge& p = parent[static_cast<size_t>(v)];
        route.push_back(Hop{p.link, p.forward});
      }
      std::reverse(route.begin(), route.end());
      return route;
    };
    for (int dst = 0; dst < per_node; ++dst) {
      if (dst == src) continue;
      if (depth[static_cast<size_t>(dst)] < 0) return no_route(src, dst);
      cluster->node_routes[static_cast<size_t>(src)][static_cast<size_t>(dst)] = path_to(dst);
    }
    if (cluster->num_nodes > 1) {
      // Every GPU must reach the fabric, or it cannot talk to another node.
      if (fabric == vertex_of.end() || depth[static_cast<size_t>(fabric->second)] < 0) {
        return no_route(src, per_node + src);
      }
      cluster->to_fabric[static_cast<size_t>(src)] = path_to(fabric->second);
    }
  }
  return absl::OkStatus();
}

// The fabric's shape, checked before any route is sought.
absl::Status CheckFabric(const v1::Fabric& fabric, const FieldLocator& where) {
  if (fabric.levels() < 0 || fabric.levels() > 2) {
    return where.Error("fabric.levels", "must be 1 (one switch) or 2 (leaves and a spine)");
  }
  if (fabric.levels() < 2) return absl::OkStatus();
  if (fabric.nodes_per_leaf() < 1) {
    return where.Error("fabric.nodes_per_leaf", "must be positive with two levels");
  }
  // Written so that NaN fails too.
  if (!(fabric.oversubscription() == 0 ||
        (fabric.oversubscription() >= 1 && fabric.oversubscription() <= 1e3))) {
    return where.Error("fabric.oversubscription", "must be between 1 and 1000");
  }
  if (!(fabric.uplink_latency_s() >= 0 && fabric.uplink_latency_s() <= 1)) {
    return where.Error("fabric.uplink_latency_s", "must be between 0 and 1 second");
  }
  return absl::OkStatus();
}

// Two-level fabrics: one uplink per leaf switch to the spine, carrying the
// leaf's nodes' fabric bandwidth over the oversubscription.
absl::Status BuildLeafUplinks(const v1::Topology& topology, const FieldLocator& where,
                              Cluster* cluster) {
  const v1::Fabric& fabric = topology.fabric();
  if (fabric.levels() < 2) return absl::OkStatus();
  double node_bandwidth = 0;
  std::string kind;
  for (const v1::Link& link : topology.links()) {
    if (link.a() != kFabric && link.b() != kFabric) continue;
    node_bandwidth += link.bandwidth_bytes_per_s() * std::max(1, link.count());
    if (kind.empty()) kind = link.kind();
  }
  if (node_bandwidth == 0) {
    return where.Error("fabric", "two levels need links to \"fabric\" on each node");
  }
  const double oversubscription =
      fabric.oversubscription() == 0 ? 1.0 : fabric.oversubscription();
  cluster->nodes_per_leaf = fabric.nodes_per_leaf();
  cluster->first_uplink = static_cast<int>(cluster->links.size());
  const int leaves = (cluster->num_nodes + fabric.nodes_per_leaf() - 1) / fabric.nodes_per_leaf();
  for (int leaf = 0; leaf < leaves; ++leaf) {
    const int nodes = std::min(fabric.nodes_per_leaf(),
                               cluster->num_nodes - leaf * fabric.nodes_per_leaf());
    cluster->links.push_back(ClusterLink{absl::StrCat("leaf", leaf, "-spine"),
                                         node_bandwidth * nodes / oversubscription,
                                         fabric.uplink_latency_s(), kind});
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Cluster> BuildCluster(const v1::Topology& topology,
                                     const v1::GpuSpec& gpu,
                                     const FieldLocator& where) {
  if (topology.num_nodes() < 0) {
    return where.Error("num_nodes", "must be positive");
  }
  if (topology.gpus_per_node() <= 0) {
    return where.Error("gpus_per_node", "must be positive");
  }
  constexpr int64_t kMaxGpus = 65536;
  if (int64_t{std::max(1, topology.num_nodes())} * topology.gpus_per_node() > kMaxGpus) {
    return where.Error("num_nodes", absl::StrCat("num_nodes x gpus_per_node is more than ",
                                                 kMaxGpus, " GPUs"));
  }
  if (gpu.capacity_bytes() <= 0) {
    return where.Error("gpu", "the GPU has no capacity_bytes");
  }
  Cluster cluster;
  cluster.name = topology.name().empty() ? "cluster" : topology.name();
  cluster.gpu = gpu;
  cluster.num_nodes = topology.num_nodes() == 0 ? 1 : topology.num_nodes();
  cluster.gpus_per_node = topology.gpus_per_node();
  if (!(topology.gpu_price_per_hour() >= 0 && topology.gpu_price_per_hour() < 1e9)) {
    return where.Error("gpu_price_per_hour", "must be a non-negative amount");
  }
  if (!topology.collective_tuning().empty() && !topology.has_collectives()) {
    absl::StatusOr<v1::CollectiveTuning> named = BuiltInNamedTuning(topology.collective_tuning());
    if (!named.ok()) return where.Error("collective_tuning", named.status().message());
  }
  // The topology's own price wins; without one, the catalog's list price.
  cluster.gpu_price_per_hour = topology.gpu_price_per_hour() > 0 ? topology.gpu_price_per_hour()
                                                                 : gpu.price_per_hour();
  SHARDSIM_RETURN_IF_ERROR(CheckFabric(topology.fabric(), where));
  SHARDSIM_RETURN_IF_ERROR(BuildRoutes(topology, where, &cluster));
  SHARDSIM_RETURN_IF_ERROR(BuildLeafUplinks(topology, where, &cluster));
  return cluster;
}

std::vector<Hop> Cluster::Route(int src, int dst) const {
  std::vector<Hop> route;
  if (src == dst) return route;
  const int from = NodeOf(src);
  const int to = NodeOf(dst);
  const size_t a = static_cast<size_t>(src % gpus_per_node);
  const size_t b = static_cast<size_t>(dst % gpus_per_node);
  if (from == to) {
    for (const Hop& hop : node_routes[a][b]) route.push_back({NodeLink(hop.link, from), hop.forward});
    return route;
  }
  // Up to the fabric, across the spine between leaves, down to the GPU.
  for (const Hop& hop : to_fabric[a]) route.push_back({NodeLink(hop.link, from), hop.forward});
  if (nodes_per_leaf > 0 && LeafOf(from) != LeafOf(to)) {
    route.push_back({first_uplink + LeafOf(from), true});
    route.push_back({first_uplink + LeafOf(to), false});
  }
  for (auto hop = to_fabric[b].rbegin(); hop != to_fabric[b].rend(); ++hop) {
    route.push_back({NodeLink(hop->link, to), !hop->forward});
  }
  return route;
}

double Cluster::RouteLatency(int src, int dst) const {
  double latency = 0;
  for (const Hop& hop : Route(src, dst)) {
    latency += links[static_cast<size_t>(hop.link)].latency_s;
  }
  return latency;
}

const ClusterLink& Cluster::Bottleneck(int src, int dst) const {
  const ClusterLink* slowest = nullptr;
  for (const Hop& hop : Route(src, dst)) {
    const ClusterLink& link = links[static_cast<size_t>(hop.link)];
    if (slowest == nullptr || link.bandwidth_bytes_per_s < slowest->bandwidth_bytes_per_s) {
      slowest = &link;
    }
  }
  static const ClusterLink kNone;
  return slowest == nullptr ? kNone : *slowest;
}

double Cluster::CollectiveEfficiency(int src, int dst) const {
  const std::string& kind = Bottleneck(src, dst).kind;
  for (const v1::LinkKindEfficiency& k : collectives.link_kinds()) {
    if (k.kind() == kind && k.bandwidth_efficiency() > 0) return k.bandwidth_efficiency();
  }
  return collectives.bandwidth_efficiency() > 0 ? collectives.bandwidth_efficiency() : 1.0;
}

double Cluster::RouteBandwidth(int src, int dst) const {
  double bandwidth = std::numeric_limits<double>::infinity();
  for (const Hop& hop : Route(src, dst)) {
    bandwidth = std::min(bandwidth,
                         links[static_cast<size_t>(hop.link)].bandwidth_bytes_per_s);
  }
  return bandwidth;
}

absl::Status LoadCalibration(const v1::Topology& topology, Cluster* cluster) {
  cluster->profile.Clear();
  absl::StatusOr<v1::EfficiencyProfile> profile = BuiltInProfile(cluster->gpu.name());
  if (profile.ok()) {
    cluster->profile = *std::move(profile);
    cluster->profile.set_source(absl::StrCat("the built-in profile of ", cluster->gpu.name(),
                                             " (by catalog name): ",
                                             cluster->profile.source()));
  } else if (!absl::IsNotFound(profile.status())) {
    return profile.status();
  }  // else none: the cost model's roofline defaults, which say so
  cluster->collectives.Clear();
  if (topology.has_collectives()) {
    cluster->collectives = topology.collectives();
    if (!ValidTuning(cluster->collectives)) {
      return absl::InvalidArgumentError(absl::StrCat(
          topology.name(), ": collectives: times must be in [0, 1 s) and efficiencies in [0, 1]"));
    }
    cluster->collectives.set_source(absl::StrCat(
        "the topology's own collectives block (complete, it replaces the built-in tuning)",
        cluster->collectives.source().empty() ? "" : ": ", cluster->collectives.source()));
  } else if (!topology.collective_tuning().empty()) {
    SHARDSIM_ASSIGN_OR_RETURN(cluster->collectives,
                              BuiltInNamedTuning(topology.collective_tuning()));
  } else {
    SHARDSIM_ASSIGN_OR_RETURN(const v1::CollectiveTunings* tunings, BuiltInTunings());
    cluster->collectives = tunings->default_tuning();
    // The fit of the link generation this GPU carries, where one was measured.
    for (const v1::GenerationTuning& g : tunings->generations()) {
      if (std::find(g.gpus().begin(), g.gpus().end(), cluster->gpu.name()) == g.gpus().end()) {
        continue;
      }
      cluster->collectives = g.tuning();
      cluster->collectives.set_source(absl::StrCat("'", g.name(), "', the fit of the link "
                                                   "generation ", cluster->gpu.name(),
                                                   " carries (by catalog name): ",
                                                   g.tuning().source()));
      break;
    }
  }
  return absl::OkStatus();
}

double DenseFlopsPerSecond(const v1::GpuSpec& gpu, v1::DType dtype) {
  for (const v1::DTypeThroughput& t : gpu.dense_throughput()) {
    if (t.dtype() == dtype) return t.flops_per_s();
  }
  return 0;
}

}  // namespace shardsim::hardware
