#include "sim/engine/simulator.h"

#include "simgrid/s4u.hpp"
#include "sim/engine/collectives.h"
#include "sim/hardware/platform_builder.h"
#include "sim/scenario/runtime_profile.h"

namespace shardsim::engine {

Simulator::Simulator(const char* program_name) {
  int argc = 1;
  char* argv[] = {const_cast<char*>(program_name), nullptr};
  engine_ = std::make_unique<simgrid::s4u::Engine>(&argc, argv);
}

Simulator::~Simulator() = default;

ProbedCollectives ProbeCollectives(const parallel::Deployment& deployment,
                                   const parallel::Program& program,
                                   const std::vector<CollectiveKey>& keys) {
  simgrid::s4u::Engine* engine = simgrid::s4u::Engine::get_instance();
  const hardware::Platform platform = hardware::BuildPlatform(deployment.cluster, engine);
  const std::vector<std::vector<int>> tp_groups =
      GroupsToSimulate(deployment.cluster, TpGroups(deployment.plan));
  const std::vector<std::vector<int>> ep_groups =
      GroupsToSimulate(deployment.cluster, ExpertGroups(program));
  const bool custom_all_reduce =
      scenario::ResolveRuntimeProfile(deployment.runtime).custom_all_reduce;
  ProbedCollectives probed;
  simgrid::s4u::Actor::create("probe", platform.gpus[0], [&] {
    for (const CollectiveKey& key : keys) {
      const CollectiveStats stats =
          RunCollective(Fabric{&platform, &deployment.cluster, custom_all_reduce},
                        key.kind == parallel::CommKind::kAllToAll ? ep_groups : tp_groups,
                        key.kind, key.bytes);
      probed.seconds[key] = stats.seconds;
      probed.algorithm[key] = cost::CollectiveAlgorithmName(stats.plan.algorithm);
      // The custom kernels have no NCCL protocol.
      probed.protocol[key] = cost::IsCustomAllReduce(stats.plan.algorithm)
                                 ? ""
                                 : cost::NcclProtocolName(stats.plan.protocol);
    }
  });
  engine->run();
  return probed;
}

}  // namespace shardsim::engine
