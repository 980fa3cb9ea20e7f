// What a collective's simulated time depends on, once the platform and the
// groups that communicate together are fixed: its kind, the size of its
// groups and the bytes. The executor caches collective times by this key.
// No SimGrid here: code outside the engine names collectives with it.
#ifndef SHARDSIM_SIM_ENGINE_COLLECTIVE_KEY_H_
#define SHARDSIM_SIM_ENGINE_COLLECTIVE_KEY_H_

#include <cstdint>
#include <tuple>

#include "sim/parallel/program.h"

namespace shardsim::engine {

struct CollectiveKey {
  parallel::CommKind kind = parallel::CommKind::kAllReduce;
  int group_size = 0;
  int64_t bytes = 0;
  bool operator<(const CollectiveKey& o) const {
    return std::tie(kind, group_size, bytes) < std::tie(o.kind, o.group_size, o.bytes);
  }
};

}  // namespace shardsim::engine

#endif  // SHARDSIM_SIM_ENGINE_COLLECTIVE_KEY_H_
