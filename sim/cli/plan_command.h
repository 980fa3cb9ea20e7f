// shardsim plan PLAN [--jobs=N] [--top=K] [--out=DIR] [--format=text|json|csv]
//                    [--estimate-only]
// (sim/search/planner.h). Returns the process exit status.
#ifndef SHARDSIM_SIM_CLI_PLAN_COMMAND_H_
#define SHARDSIM_SIM_CLI_PLAN_COMMAND_H_

#include "sim/cli/command_line.h"

namespace shardsim::cli {

int PlanMain(const Args& args);

}  // namespace shardsim::cli

#endif  // SHARDSIM_SIM_CLI_PLAN_COMMAND_H_
