// The SimGrid side of a process, for code outside sim/engine (which never
// includes SimGrid itself):
//   * Simulator: the process's one SimGrid engine, created before anything
//     else parses the command line (SimGrid would take --cfg and --log
//     options itself) and before sweep workers are forked, so each child
//     inherits a ready engine;
//   * ProbeCollectives: the time of given collectives on a deployment's
//     cluster, each simulated as flows with every tensor-parallel group at
//     once (what `shardsim ops` prints).
#ifndef SHARDSIM_SIM_ENGINE_SIMULATOR_H_
#define SHARDSIM_SIM_ENGINE_SIMULATOR_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "sim/engine/collective_key.h"
#include "sim/parallel/deployment.h"

namespace simgrid::s4u {
class Engine;
}

namespace shardsim::engine {

class Simulator {
 public:
  // `program_name` is argv[0]; SimGrid gets no other argument: shardsim
  // configures it in code.
  explicit Simulator(const char* program_name);
  ~Simulator();
  Simulator(const Simulator&) = delete;
  Simulator& operator=(const Simulator&) = delete;

 private:
  std::unique_ptr<simgrid::s4u::Engine> engine_;
};

struct ProbedCollectives {
  std::map<CollectiveKey, double> seconds;
  // What each ran: "ring", "tree", "nvls", "nvls_tree", "direct", "custom
  // one-shot" or "custom two-shot", and the protocol ("LL", "LL128",
  // "Simple"; empty for the custom kernels).
  std::map<CollectiveKey, std::string> algorithm;
  std::map<CollectiveKey, std::string> protocol;
};

// Builds `deployment`'s platform and simulates each of `keys`, one after the
// other, with every group of the plan that runs it at once (the expert-
// parallel groups of `program` for all-to-alls, the TP groups otherwise), as
// the deployment's runtime runs them (its custom all-reduce). Runs the
// process's SimGrid engine, so call it at most once per process.
ProbedCollectives ProbeCollectives(const parallel::Deployment& deployment,
                                   const parallel::Program& program,
                                   const std::vector<CollectiveKey>& keys);

}  // namespace shardsim::engine

#endif  // SHARDSIM_SIM_ENGINE_SIMULATOR_H_
