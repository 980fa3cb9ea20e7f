#include "sim/hardware/platform_builder.h"

#include "absl/strings/str_cat.h"
#include "xbt/log.h"

namespace shardsim::hardware {
namespace {

namespace s4u = simgrid::s4u;
using s4u::LinkInRoute;

std::vector<LinkInRoute> Links(const std::vector<Hop>& hops,
                               const std::vector<s4u::Link*>& links) {
  std::vector<LinkInRoute> route;
  for (const Hop& hop : hops) {
    route.emplace_back(links[static_cast<size_t>(hop.link)],
                       hop.forward ? LinkInRoute::Direction::UP : LinkInRoute::Direction::DOWN);
  }
  return route;
}

// Creates every link of the cluster in `zone`. All in one zone, created
// before any child zone exists: SimGrid checks each new link's name against
// every zone of the platform, which over a thousand node zones would cost
// seconds.
// Then each GPU's link to its node's host memory: index
// cluster.links.size() + GPU index (see HostLink).
std::vector<s4u::Link*> CreateLinks(const Cluster& cluster, s4u::NetZone* zone) {
  std::vector<s4u::Link*> links;
  for (const ClusterLink& link : cluster.links) {
    s4u::Link* l = zone->create_split_duplex_link(link.name, link.bandwidth_bytes_per_s);
    l->set_latency(link.latency_s);
    links.push_back(l->seal());
  }
  if (cluster.gpu.pcie_bandwidth_bytes_per_s() > 0) {
    for (int g = 0; g < cluster.num_gpus(); ++g) {
      s4u::Link* l = zone->create_split_duplex_link(
          absl::StrCat("n", cluster.NodeOf(g), "/gpu", g % cluster.gpus_per_node, "-host-memory"),
          cluster.gpu.pcie_bandwidth_bytes_per_s());
      l->set_latency(kHostLinkLatencyS);
      links.push_back(l->seal());
    }
  }
  return links;
}

s4u::Link* HostLink(const Cluster& cluster, const std::vector<s4u::Link*>& links, int gpu) {
  return links[cluster.links.size() + static_cast<size_t>(gpu)];
}

// One node as a full zone (`zone`, or a new one under `parent`): its GPUs,
// the route between every pair of them, and (on a multi-node cluster) a
// gateway standing for the fabric port, with each GPU's own way to it (its
// NIC, its PCIe path). Returns the gateway (nullptr on a single node).
simgrid::kernel::routing::NetPoint* BuildNode(const Cluster& cluster, int node,
                                              s4u::NetZone* zone, s4u::NetZone* parent,
                                              Platform* platform,
                                              const std::vector<s4u::Link*>& links) {
  if (zone == nullptr) {
    zone = s4u::create_full_zone(absl::StrCat("node", node));
    zone->set_parent(parent);
  }
  const int first = node * cluster.gpus_per_node;
  for (int g = first; g < first + cluster.gpus_per_node; ++g) {
    // Hosts only sleep (op times come from sim/cost); the speed is unused.
    platform->gpus[static_cast<size_t>(g)] = zone->create_host(absl::StrCat("gpu", g), 1e9);
  }
  auto netpoint = [&](int gpu) { return platform->gpus[static_cast<size_t>(gpu)]->get_netpoint(); };
  for (int src = first; src < first + cluster.gpus_per_node; ++src) {
    for (int dst = first; dst < first + cluster.gpus_per_node; ++dst) {
      if (src == dst) continue;
      zone->add_route(netpoint(src), netpoint(dst), nullptr, nullptr,
                      Links(cluster.Route(src, dst), links), /*symmetrical=*/false);
    }
  }
  if (links.size() > cluster.links.size()) {
    s4u::Host* memory = zone->create_host(absl::StrCat("host-memory", node), 1e9);
    platform->host_memory[static_cast<size_t>(node)] = memory;
    for (int g = first; g < first + cluster.gpus_per_node; ++g) {
      s4u::Link* link = HostLink(cluster, links, g);
      zone->add_route(netpoint(g), memory->get_netpoint(), nullptr, nullptr,
                      {LinkInRoute(link, LinkInRoute::Direction::UP)}, /*symmetrical=*/false);
      zone->add_route(memory->get_netpoint(), netpoint(g), nullptr, nullptr,
                      {LinkInRoute(link, LinkInRoute::Direction::DOWN)}, /*symmetrical=*/false);
    }
  }
  simgrid::kernel::routing::NetPoint* gateway = nullptr;
  if (cluster.num_nodes > 1) {
    gateway = zone->create_router(absl::StrCat("n", node, "/fabric-port"));
    for (int g = 0; g < cluster.gpus_per_node; ++g) {
      std::vector<Hop> up;
      for (const Hop& hop : cluster.to_fabric[static_cast<size_t>(g)]) {
        up.push_back({cluster.NodeLink(hop.link, node), hop.forward});
      }
      std::vector<Hop> down;
      for (auto hop = up.rbegin(); hop != up.rend(); ++hop) down.push_back({hop->link, !hop->forward});
      zone->add_route(netpoint(first + g), gateway, nullptr, nullptr, Links(up, links), false);
      zone->add_route(gateway, netpoint(first + g), nullptr, nullptr, Links(down, links), false);
    }
  }
  zone->seal();
  if (parent != nullptr) {
    // The node reaches its parent switch through its gateway with no link of
    // its own: its NIC links are already on each GPU's way to the gateway.
    parent->add_route(zone->get_netpoint(), nullptr, gateway, nullptr, {}, /*symmetrical=*/true);
  }
  return gateway;
}

}  // namespace

Platform BuildPlatform(const Cluster& cluster, s4u::Engine* engine) {
  // SimGrid logs every configuration change at INFO; our output is the report.
  xbt_log_control_set("root.thresh:warning");
  engine->set_config("network/model:CM02");
  engine->set_config("network/crosstraffic:0");
  // CM02 caps a flow at TCP-gamma / (2 x latency) (a TCP window); GPU fabrics
  // are not TCP, so lift the cap far above any link here.
  engine->set_config("network/TCP-gamma:1e18");

  Platform platform;
  platform.gpus.resize(static_cast<size_t>(cluster.num_gpus()));
  if (cluster.gpu.pcie_bandwidth_bytes_per_s() > 0) {
    platform.host_memory.resize(static_cast<size_t>(cluster.num_nodes));
  }
  if (cluster.num_nodes == 1) {
    s4u::NetZone* zone = s4u::create_full_zone(cluster.name);
    BuildNode(cluster, 0, zone, nullptr, &platform, CreateLinks(cluster, zone));
    return platform;
  }
  // Nodes hang off a star (the fabric). With leaves, the root star holds one
  // star per leaf, each reaching the spine through its uplink.
  s4u::NetZone* root = s4u::create_star_zone(cluster.name);
  const std::vector<s4u::Link*> links = CreateLinks(cluster, root);
  if (cluster.nodes_per_leaf == 0) {
    for (int node = 0; node < cluster.num_nodes; ++node) {
      BuildNode(cluster, node, nullptr, root, &platform, links);
    }
  } else {
    const int leaves = cluster.LeafOf(cluster.num_nodes - 1) + 1;
    for (int leaf = 0; leaf < leaves; ++leaf) {
      s4u::Link* uplink = links[static_cast<size_t>(cluster.first_uplink + leaf)];
      s4u::NetZone* leaf_zone = s4u::create_star_zone(absl::StrCat("leaf", leaf));
      leaf_zone->set_parent(root);
      // The leaf reaches the spine through its first node's fabric port: a
      // netpoint inside a child zone (SimGrid 3.32 does not route to a
      // router that sits directly in a star zone between two child zones).
      simgrid::kernel::routing::NetPoint* gateway = nullptr;
      const int last = std::min(cluster.num_nodes, (leaf + 1) * cluster.nodes_per_leaf);
      for (int node = leaf * cluster.nodes_per_leaf; node < last; ++node) {
        simgrid::kernel::routing::NetPoint* port =
            BuildNode(cluster, node, nullptr, leaf_zone, &platform, links);
        if (gateway == nullptr) gateway = port;
      }
      leaf_zone->seal();
      root->add_route(leaf_zone->get_netpoint(), nullptr, gateway, nullptr,
                      {LinkInRoute(uplink, LinkInRoute::Direction::UP)}, /*symmetrical=*/true);
    }
  }
  root->seal();
  return platform;
}

}  // namespace shardsim::hardware
