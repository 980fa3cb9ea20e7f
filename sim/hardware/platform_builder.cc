#include "sim/hardware/platform_builder.h"

#include "absl/strings/str_cat.h"
#include "xbt/log.h"

namespace shardsim::hardware {

Platform BuildPlatform(const Cluster& cluster, simgrid::s4u::Engine* engine) {
  // SimGrid logs every configuration change at INFO; our output is the report.
  xbt_log_control_set("root.thresh:warning");
  engine->set_config("network/model:CM02");
  engine->set_config("network/crosstraffic:0");
  // CM02 caps a flow at TCP-gamma / (2 x latency) (a TCP window); GPU fabrics
  // are not TCP, so lift the cap far above any link here.
  engine->set_config("network/TCP-gamma:1e18");

  simgrid::s4u::NetZone* zone = simgrid::s4u::create_full_zone(cluster.name);
  Platform platform;
  for (int g = 0; g < cluster.num_gpus(); ++g) {
    // Hosts only sleep (op times come from sim/cost); the speed is unused.
    platform.gpus.push_back(zone->create_host(absl::StrCat("gpu", g), 1e9));
  }
  std::vector<simgrid::s4u::Link*> links;
  for (const ClusterLink& link : cluster.links) {
    simgrid::s4u::Link* l =
        zone->create_split_duplex_link(link.name, link.bandwidth_bytes_per_s);
    l->set_latency(link.latency_s);
    links.push_back(l->seal());
  }
  using simgrid::s4u::LinkInRoute;
  for (int src = 0; src < cluster.num_gpus(); ++src) {
    for (int dst = 0; dst < cluster.num_gpus(); ++dst) {
      if (src == dst) continue;
      std::vector<LinkInRoute> route;
      for (const Hop& hop : cluster.Route(src, dst)) {
        route.emplace_back(links[static_cast<size_t>(hop.link)],
                           hop.forward ? LinkInRoute::Direction::UP
                                       : LinkInRoute::Direction::DOWN);
      }
      zone->add_route(platform.gpus[static_cast<size_t>(src)]->get_netpoint(),
                      platform.gpus[static_cast<size_t>(dst)]->get_netpoint(),
                      nullptr, nullptr, route, /*symmetrical=*/false);
    }
  }
  zone->seal();
  return platform;
}

}  // namespace shardsim::hardware
