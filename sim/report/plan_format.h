// Text for the planner's reports: `serve --find-max-rate` (and, in
// sim/search, `shardsim plan`). JSON is report::ToJson of the same protos.
#ifndef SHARDSIM_SIM_REPORT_PLAN_FORMAT_H_
#define SHARDSIM_SIM_REPORT_PLAN_FORMAT_H_

#include <string>

#include "sim/proto/plan.pb.h"

namespace shardsim::report {

// "tpot_p90 0.123 s > 0.100 s (+23.0%)", or "-" when nothing missed.
std::string MissText(const v1::RateProbe& probe);

// The answer, then every probe in the order it ran: rate, met or not, and
// the worst miss; then the serving report at the answer's rate.
std::string MaxRateText(const v1::MaxRateReport& report);

}  // namespace shardsim::report

#endif  // SHARDSIM_SIM_REPORT_PLAN_FORMAT_H_
