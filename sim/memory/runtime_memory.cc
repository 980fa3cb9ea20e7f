#include "sim/memory/runtime_memory.h"

#include <algorithm>
#include <cmath>

namespace shardsim::memory {

SglangDefaults SglangServerDefaults(int64_t gpu_capacity_bytes, int tp, int pp) {
  SglangDefaults d;
  // gpu_mem in MiB, as SGLang reads it (get_device_memory_capacity).
  const double gpu_mib = std::floor(static_cast<double>(gpu_capacity_bytes) / (1 << 20));
  if (gpu_capacity_bytes <= 0) {
    // "Fallback defaults when gpu_mem is None".
    d.chunked_prefill_size = 4096;
    d.cuda_graph_max_bs = 160;
  } else if (gpu_mib < 20 * 1024) {  // T4, 4080
    d.chunked_prefill_size = 2048;
    d.cuda_graph_max_bs = 8;
  } else if (gpu_mib < 35 * 1024) {  // A10, 4090, 5090
    d.chunked_prefill_size = 2048;
    d.cuda_graph_max_bs = tp < 4 ? 24 : 80;
  } else if (gpu_mib < 60 * 1024) {  // A100 40GB, L40
    d.chunked_prefill_size = 4096;
    d.cuda_graph_max_bs = tp < 4 ? 32 : 160;
  } else if (gpu_mib < 160 * 1024) {  // H100, A100 80GB, H20, H200 (two bands, same values)
    d.chunked_prefill_size = 8192;
    d.cuda_graph_max_bs = tp < 4 ? 256 : 512;
  } else {  // B200, MI300
    d.chunked_prefill_size = 16384;
    d.cuda_graph_max_bs = 512;
  }
  double reserved = 512;
  reserved += static_cast<double>(std::max<int64_t>(d.chunked_prefill_size, 2048)) * 1.5;
  reserved += static_cast<double>(d.cuda_graph_max_bs) * 2;
  reserved += static_cast<double>(tp) * pp / 8 * 1024;
  if (gpu_capacity_bytes > 0 && gpu_mib > 60 * 1024) reserved = std::max(reserved, 10.0 * 1024);
  d.reserved_mib = reserved;
  d.mem_fraction_static =
      gpu_capacity_bytes > 0 ? std::round((gpu_mib - reserved) / gpu_mib * 1000) / 1000 : 0.88;
  return d;
}

int64_t SglangKvPoolBytes(int64_t free_before_weights_bytes, int64_t weights_bytes,
                          double fraction) {
  const double pool = fraction * static_cast<double>(free_before_weights_bytes) -
                      static_cast<double>(weights_bytes);
  return pool > 0 ? static_cast<int64_t>(pool) : 0;
}

int64_t TrtllmKvCacheBytes(int64_t free_bytes, double fraction) {
  const double cache = fraction * static_cast<double>(free_bytes);
  return cache > 0 ? static_cast<int64_t>(cache) : 0;
}

}  // namespace shardsim::memory
