// `shardsim serve --find-max-rate`: the highest arrival rate at which a
// deployment meets its serving SLO, by the bisection of
// sim/serving/max_rate.h with every probe a full serving simulation
// (RunServing) in a child process forked for it, since SimGrid runs one
// simulation per process. Call it from a process that has not run a
// simulation itself.
#ifndef SHARDSIM_SIM_ENGINE_FIND_MAX_RATE_H_
#define SHARDSIM_SIM_ENGINE_FIND_MAX_RATE_H_

#include <string>

#include "absl/status/statusor.h"
#include "sim/parallel/deployment.h"
#include "sim/proto/plan.pb.h"
#include "sim/proto/serving.pb.h"
#include "sim/serving/max_rate.h"

namespace shardsim::engine {

// Searches the rate of `serving`'s arrival process (which must pass
// serving::CheckRateSearch), each probe with serving::ProbeServing's request
// count (the first probe's arrival window at every rate); `scenario_path`
// resolves its files. An error of a probe's simulation is returned as it is.
absl::StatusOr<v1::MaxRateReport> FindMaxRate(const parallel::Deployment& deployment,
                                              const v1::Serving& serving,
                                              const std::string& scenario_path,
                                              const serving::MaxRateOptions& options = {});

}  // namespace shardsim::engine

#endif  // SHARDSIM_SIM_ENGINE_FIND_MAX_RATE_H_
