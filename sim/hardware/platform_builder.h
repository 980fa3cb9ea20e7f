// The cluster as a SimGrid platform: one host per GPU, one split-duplex link
// per physical link, and the routes Cluster computed, set explicitly.
//
// Built as zones, so a datacenter costs what its nodes cost: each node is a
// full zone (its GPUs, its links, the route between each pair of its GPUs,
// and a gateway that each GPU reaches through its own NIC path); the nodes
// hang off a star zone standing for the fabric switch, or, with two fabric
// levels, off one star per leaf whose uplink to the spine is a shared link.
// SimGrid joins the pieces of a route across zones in order, so a route
// between nodes crosses exactly the links Cluster::Route lists.
//
// Host memory: each node also has a host ("host-memory<node>", the CPU
// side) that each of its GPUs reaches over a link of its own, the GPU's PCIe
// link (the catalog's pcie_bandwidth_bytes_per_s per direction, latency
// kHostLinkLatencyS): where swapped-out KV blocks go. It carries only
// GPU <-> host copies: the topology's own PCIe switches and CPU links, and
// traffic on them, are not on that path (so two GPUs behind one PCIe
// switch swap at full speed each), and host memory bandwidth is not a limit.
// No host memory when the catalog gives no PCIe bandwidth.
//
// Uses the CM02 network model with cross-traffic off, so one transfer of S
// bytes alone on a route takes exactly sum(latency) + S / min(bandwidth), and
// flows that share a link split its bandwidth (max-min fairness). Links carry
// their raw bandwidth; a collective library's efficiency is applied by the
// senders (sim/engine/collectives.h) as a larger simulated size.
#ifndef SHARDSIM_SIM_HARDWARE_PLATFORM_BUILDER_H_
#define SHARDSIM_SIM_HARDWARE_PLATFORM_BUILDER_H_

#include <vector>

#include "simgrid/s4u.hpp"
#include "sim/hardware/cluster.h"

namespace shardsim::hardware {

// One PCIe hop and the copy engine's start, a planning figure (PCIe round
// trips measure 0.5-1 us: Neugebauer et al., "Understanding PCIe
// performance for end host networking", SIGCOMM 2018), not a datasheet one.
constexpr double kHostLinkLatencyS = 1e-6;

struct Platform {
  std::vector<simgrid::s4u::Host*> gpus;  // by global GPU index
  std::vector<simgrid::s4u::Host*> host_memory;  // by node; empty without PCIe bandwidth
};

// Configures `engine` (network model, quiet logs) and builds the platform.
// Call once per process, before any actor is created; `cluster` must come
// from BuildCluster (checked), so SimGrid never sees an unknown name.
Platform BuildPlatform(const Cluster& cluster, simgrid::s4u::Engine* engine);

}  // namespace shardsim::hardware

#endif  // SHARDSIM_SIM_HARDWARE_PLATFORM_BUILDER_H_
