#include "sim/hardware/cluster.h"

#include <set>

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
    if (gpu.hbm_bandwidth_bytes_per_s() <= 0) {
      return where.Error(field + ".hbm_bandwidth_bytes_per_s",
                         "must be positive");
    }
    for (int j = 0; j < gpu.dense_throughput_size(); ++j) {
      if (gpu.dense_throughput(j).flops_per_s() <= 0) {
        return where.Error(
            absl::StrCat(field, ".dense_throughput[", j, "].flops_per_s"),
            "must be positive");
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

absl::StatusOr<Cluster> BuildCluster(const v1::Topology& topology,
                                     const v1::GpuSpec& gpu,
                                     const FieldLocator& where) {
  if (topology.num_nodes() < 0) {
    return where.Error("num_nodes", "must be positive");
  }
  if (topology.gpus_per_node() <= 0) {
    return where.Error("gpus_per_node", "must be positive");
  }
  if (gpu.capacity_bytes() <= 0) {
    return where.Error("gpu", "the GPU has no capacity_bytes");
  }
  Cluster cluster;
  cluster.name = topology.name();
  cluster.gpu = gpu;
  cluster.num_nodes = topology.num_nodes() == 0 ? 1 : topology.num_nodes();
  cluster.gpus_per_node = topology.gpus_per_node();
  return cluster;
}

double DenseFlopsPerSecond(const v1::GpuSpec& gpu, v1::DType dtype) {
  for (const v1::DTypeThroughput& t : gpu.dense_throughput()) {
    if (t.dtype() == dtype) return t.flops_per_s();
  }
  return 0;
}

}  // namespace shardsim::hardware
