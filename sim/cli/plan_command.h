// shardsim plan PLAN [--jobs=N] [--top=K] [--out=DIR] [--format=text|json|csv]
//                    [--estimate-only]
// (sim/search/planner.h). Returns the process exit status.
#ifndef SHARDSIM_SIM_CLI_PLAN_COMMAND_H_
#define SHARDSIM_SIM_CLI_PLAN_COMMAND_H_

namespace shardsim::cli {

int PlanMain(int argc, char** argv);

}  // namespace shardsim::cli

#endif  // SHARDSIM_SIM_CLI_PLAN_COMMAND_H_
