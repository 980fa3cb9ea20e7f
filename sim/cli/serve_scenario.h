// What `shardsim serve` runs for a loaded scenario, shared by `serve`, serve
// sweeps' points and the planner's serving candidates, so the three give the
// same numbers: check the serving block, open its request source, and run
// it on the plain serving driver, or on the prefill/decode pools driver
// when the scenario has pools. Links SimGrid: shardsim-sim only.
#ifndef SHARDSIM_SIM_CLI_SERVE_SCENARIO_H_
#define SHARDSIM_SIM_CLI_SERVE_SCENARIO_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "sim/engine/serving_driver.h"
#include "sim/proto/report.pb.h"
#include "sim/proto/serving.pb.h"
#include "sim/scenario/scenario.h"

namespace shardsim::cli {

// Runs `serving` (the scenario's serving block, or one derived from it) on
// `loaded`. Errors are one line (an invalid block names the scenario file,
// line:column and field). Builds a SimGrid platform: once per process.
absl::StatusOr<v1::ServeReport> ServeScenario(const scenario::LoadedScenario& loaded,
                                              const v1::Serving& serving,
                                              const engine::ServingOptions& options = {});

// `run`, `ops` and the points of a run sweep replay the scenario's one plan
// (its top-level parallelism); a scenario with pools deploys something else,
// so rather than compute a plan it does not ask for, they refuse it: one line
// naming the file, line:column and `pools[0]`, pointing to `serve` (and to
// `memory`, which reports each pool). OK without pools.
absl::Status CheckNoPools(const scenario::LoadedScenario& loaded, const char* command);

}  // namespace shardsim::cli

#endif  // SHARDSIM_SIM_CLI_SERVE_SCENARIO_H_
