// The calibration built into shardsim: the efficiency profiles and collective
// tunings `shardsim calibrate` wrote to topologies/ when this binary was built.
// Profiles are found by the GPU's catalog name and collective tunings by link
// kind (or by a name the topology gives), never by where a file lives: a
// user's copy of a shipped cluster gets the shipped numbers.
#ifndef SHARDSIM_SIM_HARDWARE_BUILTIN_CALIBRATION_H_
#define SHARDSIM_SIM_HARDWARE_BUILTIN_CALIBRATION_H_

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

// Checks the ranges of a tuning (written so NaN fails).
bool ValidTuning(const v1::CollectiveTuning& tuning);

}  // namespace shardsim::hardware

#endif  // SHARDSIM_SIM_HARDWARE_BUILTIN_CALIBRATION_H_
