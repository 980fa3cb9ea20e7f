// The calibration built into shardsim: the efficiency profiles and collective
// tunings `shardsim calibrate` wrote to topologies/ when this binary was built.
// Profiles are found by the GPU's catalog name and collective tunings by link
// kind (or by a name the topology gives), never by where a file lives: a
// user's copy of a shipped cluster gets the shipped numbers.
#ifndef SHARDSIM_SIM_HARDWARE_BUILTIN_CALIBRATION_H_
#define SHARDSIM_SIM_HARDWARE_BUILTIN_CALIBRATION_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "sim/proto/hardware.pb.h"

namespace shardsim::hardware {

// The built-in files, parsed and checked once (efficiencies in (0, 1], times
// in [0, 1 s)). Internal if the built-in text is malformed (a build problem).
absl::StatusOr<const v1::EfficiencyProfiles*> BuiltInProfiles();
absl::StatusOr<const v1::CollectiveTunings*> BuiltInTunings();

// The built-in profile of the catalog GPU `gpu_name`; NotFound if none.
absl::StatusOr<v1::EfficiencyProfile> BuiltInProfile(const std::string& gpu_name);

// The built-in named machine tuning `name` (Topology.collective_tuning);
// NotFound listing the names there are.
absl::StatusOr<v1::CollectiveTuning> BuiltInNamedTuning(const std::string& name);

// What is wrong with a profile or a tuning: the path of the first field out
// of range under the message ("norm.launch_s",
// "link_kinds[1].bandwidth_efficiency") and why, with the value.
struct CalibrationProblem {
  std::string field;
  std::string why;
};

// The one set of checks every efficiency profile and collective tuning
// passes wherever it comes from: the built-in files, a topology's own
// collectives block, and `shardsim validate` on an efficiency or collectives
// file (efficiencies in (0, 1] or [0, 1] where 0 means 1, times in [0, 1 s),
// half-saturation counts in [0, 1e9); NaN fails). nullopt when valid.
std::optional<CalibrationProblem> CheckProfile(const v1::EfficiencyProfile& profile);
std::optional<CalibrationProblem> CheckTuning(const v1::CollectiveTuning& tuning);

// CheckTuning found nothing.
bool ValidTuning(const v1::CollectiveTuning& tuning);

}  // namespace shardsim::hardware

#endif  // SHARDSIM_SIM_HARDWARE_BUILTIN_CALIBRATION_H_
