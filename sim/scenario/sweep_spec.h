// Loading a sweep file (sim/proto/sweep.proto) and listing its points.
//
// A sweep is a base scenario and the fields to vary. LoadSweep() checks all
// of it before anything runs, so a typo is one error naming the sweep file's
// line:column: every axis path and value is applied to the base scenario as
// a --set would be, the base scenario must load on its own, and every skip
// rule is parsed and evaluated on every point. It lives beside the scenario
// loader because `shardsim validate` checks sweeps with the other config
// files; running the points is sim/sweep's job.
//
//   SHARDSIM_ASSIGN_OR_RETURN(SweepSpec spec, LoadSweep("sweeps/s.textproto"));
//   for (const SweepPoint& p : spec.points)
//     if (p.skip_reason.empty()) Run(spec.base_scenario, spec.Overrides(p));
#ifndef SHARDSIM_SIM_SCENARIO_SWEEP_SPEC_H_
#define SHARDSIM_SIM_SCENARIO_SWEEP_SPEC_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "sim/base/config_file.h"
#include "sim/proto/sweep.pb.h"

namespace shardsim::scenario {

// The most points one sweep file may have: each is held in memory, and a
// larger product is more likely a mistake than a plan.
inline constexpr int64_t kMaxSweepPoints = 1'000'000;

struct SweepPoint {
  // Position in the enumeration (axes and zipped groups in file order, the
  // last varying fastest). Stable while the sweep file is unchanged; used
  // for sharding and to order result rows.
  int64_t index = 0;
  // "path=value;path=value" over the swept columns: what identifies the
  // point's row in a result file.
  std::string key;
  std::vector<std::string> values;  // one per SweepSpec::columns
  // The reason of the first skip rule that matches; empty when the point runs.
  std::string skip_reason;
};

struct SweepSpec {
  std::string path;  // the sweep file
  v1::Sweep sweep;
  FieldLocator where;  // for the sweep file's fields
  std::string name;    // sweep.name, or the file name without extension
  // The base scenario, resolved against the sweep file's directory.
  std::string base_scenario;
  std::vector<std::string> columns;  // swept field paths, in point order
  std::vector<SweepPoint> points;    // every point, by index
  int64_t skipped_by_rules = 0;

  // The --set overrides that make `point` from the base scenario: the
  // sweep's fixed `set`, then one per column.
  std::vector<std::string> Overrides(const SweepPoint& point) const;
};

// Reads and checks `path`. InvalidArgument names path:line:column and the
// sweep field (e.g. "axes[1].path") for a malformed file, an unknown field
// path, a value the field cannot take, axes of a zipped group with different
// lengths, a path swept twice, a rule that does not parse, or a base
// scenario that does not load (for `command: SERVE`, one without a valid
// serving block); NotFound when `path` cannot be read.
absl::StatusOr<SweepSpec> LoadSweep(const std::string& path);

}  // namespace shardsim::scenario

#endif  // SHARDSIM_SIM_SCENARIO_SWEEP_SPEC_H_
