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

// Instantiates the topology's links on every node and finds, from every GPU,
// the route to every other: fewest links first, then the widest bottleneck.
absl::Status BuildRoutes(const v1::Topology& topology, const FieldLocator& where,
                         Cluster* cluster) {
  std::map<std::string, int> vertex_of;  // "n0/gpu3", "n1/nvswitch", "fabric"
  auto vertex = [&](const std::string& name) {
    auto [it, inserted] =
        vertex_of.emplace(name, static_cast<int>(vertex_of.size()));
    return it->second;
  };
  for (int g = 0; g < cluster->num_gpus(); ++g) {
    vertex(absl::StrCat("n", cluster->NodeOf(g), "/gpu",
                        g % cluster->gpus_per_node));
  }
  struct Edge {
    int to;
    int link;
    bool forward;
  };
  std::vector<std::vector<Edge>> adjacency;
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
      auto local = [&](const std::string& end) {
        return end == kFabric ? std::string(kFabric)
                              : absl::StrCat("n", node, "/", end);
      };
      const int a = vertex(local(link.a()));
      const int b = vertex(local(link.b()));
      const int id = static_cast<int>(cluster->links.size());
      cluster->links.push_back(ClusterLink{
          absl::StrCat(local(link.a()), "-", link.b()),
          link.bandwidth_bytes_per_s() * count, link.latency_s(), link.kind()});
      adjacency.resize(vertex_of.size());
      adjacency[static_cast<size_t>(a)].push_back(Edge{b, id, true});
      adjacency[static_cast<size_t>(b)].push_back(Edge{a, id, false});
      // A link to the shared fabric is made once, not once per node.
      if (link.a() == kFabric && link.b() == kFabric) break;
    }
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

  const int n = cluster->num_gpus();
  cluster->routes.assign(static_cast<size_t>(n),
                         std::vector<std::vector<Hop>>(static_cast<size_t>(n)));
  const size_t vertices = vertex_of.size();
  for (int src = 0; src < n; ++src) {
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
                     cluster->links[static_cast<size_t>(e.link)].bandwidth_bytes_per_s);
        if (depth[v] < 0) {
          depth[v] = depth[static_cast<size_t>(u)] + 1;
          queue.push_back(e.to);
        } else if (depth[v] != depth[static_cast<size_t>(u)] + 1 ||
                   width <= bottleneck[v]) {
          continue;
        }
        bottleneck[v] = width;
        parent[v] = Edge{u, e.link, e.forward};
      }
    }
    for (int dst = 0; dst < n; ++dst) {
      if (dst == src) continue;
      if (depth[static_cast<size_t>(dst)] < 0) {
        return where.Error(
            "links", absl::StrCat("no route from GPU ", src, " (node ",
                                  cluster->NodeOf(src), ") to GPU ", dst, " (node ",
                                  cluster->NodeOf(dst), ")"));
      }
      std::vector<Hop>& route =
          cluster->routes[static_cast<size_t>(src)][static_cast<size_t>(dst)];
      for (int v = dst; v != src; v = parent[static_cast<size_t>(v)].to) {
        const Edge& p = parent[static_cast<size_t>(v)];
        route.push_back(Hop{p.link, p.forward});
      }
      std::reverse(route.begin(), route.end());
    }
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
  cluster.gpu_price_per_hour = topology.gpu_price_per_hour();
  SHARDSIM_RETURN_IF_ERROR(BuildRoutes(topology, where, &cluster));
  return cluster;
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

absl::Status LoadCalibration(const std::string& catalog_path,
                             const v1::Topology& topology, Cluster* cluster) {
  const std::string efficiency_path =
      ResolveRelative(catalog_path, "efficiency.textproto");
  const std::string collectives_path =
      ResolveRelative(catalog_path, "collectives.textproto");
  cluster->profile.Clear();
  std::string unused;
  if (ReadFile(efficiency_path, &unused).ok()) {
    v1::EfficiencyProfiles profiles;
    FieldLocator where;
    SHARDSIM_RETURN_IF_ERROR(LoadTextProto(efficiency_path, &profiles, &where));
    for (int i = 0; i < profiles.profiles_size(); ++i) {
      const v1::EfficiencyProfile& p = profiles.profiles(i);
      const std::string field = absl::StrCat("profiles[", i, "]");
      bool ok = p.gemm_max_compute_efficiency() > 0 && p.gemm_max_compute_efficiency() <= 1 &&
                p.gemm_memory_efficiency() > 0 && p.gemm_memory_efficiency() <= 1 &&
                p.gemm_rows_half() >= 0 && p.gemm_rows_half() < 1e9 &&
                p.gemm_launch_s() >= 0 && p.gemm_launch_s() < 1;
      for (const v1::KernelEfficiency* k : {&p.norm(), &p.activation(), &p.rope(),
                                            &p.residual_add(), &p.embedding()}) {
        ok = ok && k->memory_efficiency() > 0 && k->memory_efficiency() <= 1 &&
             k->launch_s() >= 0 && k->launch_s() < 1;
      }
      if (!ok) {
        return where.Error(field, "efficiencies must be in (0, 1] and times in [0, 1 s)");
      }
      if (p.gpu() == cluster->gpu.name()) cluster->profile = p;
    }
  }
  // Written so that NaN fails too.
  auto valid = [](const v1::CollectiveTuning& t) {
    bool ok = t.launch_s() >= 0 && t.launch_s() < 1 && t.step_latency_s() >= 0 &&
              t.step_latency_s() < 1 && t.p2p_launch_s() >= 0 && t.p2p_launch_s() < 1 &&
              t.bandwidth_efficiency() >= 0 && t.bandwidth_efficiency() <= 1 &&
              t.p2p_bandwidth_efficiency() >= 0 && t.p2p_bandwidth_efficiency() <= 1;
    for (const v1::LinkKindEfficiency& k : t.link_kinds()) {
      ok = ok && k.bandwidth_efficiency() >= 0 && k.bandwidth_efficiency() <= 1;
    }
    return ok;
  };
  constexpr char kRule[] = "times must be in [0, 1 s) and efficiencies in [0, 1]";
  if (topology.has_collectives()) {
    cluster->collectives = topology.collectives();
    if (!valid(cluster->collectives)) {
      return absl::InvalidArgumentError(
          absl::StrCat(topology.name(), ": collectives: ", kRule));
    }
  } else if (ReadFile(collectives_path, &unused).ok()) {
    v1::CollectiveTunings tunings;
    FieldLocator where;
    SHARDSIM_RETURN_IF_ERROR(LoadTextProto(collectives_path, &tunings, &where));
    if (!valid(tunings.default_tuning())) return where.Error("default_tuning", kRule);
    cluster->collectives = tunings.default_tuning();
    for (int i = 0; i < tunings.machines_size(); ++i) {
      const v1::MachineTuning& machine = tunings.machines(i);
      if (!valid(machine.tuning())) {
        return where.Error(absl::StrCat("machines[", i, "].tuning"), kRule);
      }
      if (machine.topology() == topology.name()) cluster->collectives = machine.tuning();
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
