// GPUs and clusters: the GPU catalog and a checked description of a cluster.
//
// A Topology (topologies/*.textproto) names a GPU from the catalog
// (topologies/gpus.textproto) and says how many nodes and GPUs per node there
// are. CheckTopology() validates one before anything uses it; Cluster is the
// validated result the simulator reads.
//
// Routes are kept per node, not per pair of GPUs, so a cluster of thousands
// of nodes costs what one node costs: every node is wired alike, so the route
// between two GPUs of one node is the node's route between their local
// indices, and a route between nodes is the source GPU's way to the fabric,
// the fabric (one non-blocking switch, or leaf switches under a spine whose
// shared uplinks carry the traffic between leaves), and the destination GPU's
// way back. Route() assembles one on demand.
#ifndef SHARDSIM_SIM_HARDWARE_CLUSTER_H_
#define SHARDSIM_SIM_HARDWARE_CLUSTER_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "sim/base/config_file.h"
#include "sim/proto/hardware.pb.h"

namespace shardsim::hardware {

// Loads and checks a catalog (unique names, positive capacities and rates).
absl::StatusOr<v1::GpuCatalog> LoadGpuCatalog(const std::string& path);

// The catalog entry called `name`; NotFound lists the known names.
absl::StatusOr<v1::GpuSpec> FindGpu(const v1::GpuCatalog& catalog,
                                    const std::string& name,
                                    const std::string& catalog_path);

// The catalog a topology uses: its gpu_catalog_file resolved against the file
// the topology came from, or gpus.textproto beside that file.
std::string CatalogPathFor(const v1::Topology& topology,
                           const std::string& topology_file);

// One physical link of the cluster (a topology Link instantiated on a node).
struct ClusterLink {
  std::string name;  // "n0/gpu3-nvswitch", "n1/nic0-fabric"
  double bandwidth_bytes_per_s = 0;  // per direction, all parallel links
  double latency_s = 0;
  std::string kind;
};

// A step of a route: a link, and whether it is crossed from its `a` end to
// its `b` end (forward) or back.
struct Hop {
  int link = 0;
  bool forward = true;
};

struct Cluster {
  std::string name;
  v1::GpuSpec gpu;
  int num_nodes = 1;
  int gpus_per_node = 1;
  int links_per_node = 0;  // the topology's links; instance of link i on node n: i x num_nodes + n
  double gpu_price_per_hour = 0;
  // How close the GPU's kernels come to its roofline (fitted, derived, or
  // the defaults) and how collectives behave on the links.
  v1::EfficiencyProfile profile;
  v1::CollectiveTuning collectives;
  // Every link instance: the topology's links on each node (see
  // links_per_node), then the leaves' uplinks to the spine.
  std::vector<ClusterLink> links;
  // Within a node, by local GPU index: node_routes[a][b] are the hops from
  // GPU a to GPU b, as topology link indices (instantiate with NodeLink).
  std::vector<std::vector<std::vector<Hop>>> node_routes;
  // to_fabric[a]: the hops from local GPU a to the fabric, as topology link
  // indices (empty on a single node).
  std::vector<std::vector<Hop>> to_fabric;
  // Leaf-spine fabric: nodes per leaf switch (0: one non-blocking switch),
  // and the link index of leaf 0's uplink (leaf k's is first_uplink + k).
  int nodes_per_leaf = 0;
  int first_uplink = 0;

  int num_gpus() const { return num_nodes * gpus_per_node; }
  int NodeOf(int gpu_index) const { return gpu_index / gpus_per_node; }
  int LeafOf(int node) const { return nodes_per_leaf > 0 ? node / nodes_per_leaf : 0; }
  // The index in `links` of topology link `link` on node `node`.
  int NodeLink(int link, int node) const { return link * num_nodes + node; }
  // The hops from GPU src to GPU dst (empty when equal).
  std::vector<Hop> Route(int src, int dst) const;
  // Sum of the latencies along the route.
  double RouteLatency(int src, int dst) const;
  // The smallest bandwidth along the route.
  double RouteBandwidth(int src, int dst) const;
  // The link with the smallest bandwidth along the route (the first if tied).
  const ClusterLink& Bottleneck(int src, int dst) const;
  // The share of the bottleneck's bandwidth a collective's flow from src to
  // dst gets: the tuning's efficiency for the bottleneck's link kind, else
  // its bandwidth_efficiency (0 means 1).
  double CollectiveEfficiency(int src, int dst) const;
};

// Checks `topology` (positive counts, links between known endpoints with
// positive bandwidth, a route between every pair of GPUs) and returns the
// cluster with its routes. `gpu` is the resolved catalog entry; its
// price_per_hour is the cluster's GPU price when the topology gives none.
absl::StatusOr<Cluster> BuildCluster(const v1::Topology& topology,
                                     const v1::GpuSpec& gpu,
                                     const FieldLocator& where);

// Attaches the calibration built into shardsim (builtin_calibration.h) to
// `cluster`: `cluster->profile` is the built-in profile of its GPU, found by
// catalog name (empty when there is none: the cost model's roofline defaults);
// `cluster->collectives` is the topology's own collectives block if it has
// one, else the built-in tuning it names in collective_tuning, else the
// built-in default by link kind. Each source() says which and why.
absl::Status LoadCalibration(const v1::Topology& topology, Cluster* cluster);

// Dense tensor throughput of `gpu` for `dtype` (0 if the GPU lacks it).
double DenseFlopsPerSecond(const v1::GpuSpec& gpu, v1::DType dtype);

}  // namespace shardsim::hardware

#endif  // SHARDSIM_SIM_HARDWARE_CLUSTER_H_
