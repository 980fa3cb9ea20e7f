// --set field.path=value: change any field of a message from the command line.
//
// The path follows proto field names through nested messages
// ("workload.batch_size", "model.precision.weight_dtype"); the value is
// written as in text format (numbers, true/false, enum names; strings may be
// left unquoted). A repeated scalar takes a comma-separated list that replaces
// it ("parallelism.placement=0,2,4,6"). An entry of a repeated message is
// addressed by its index from 0 ("pools[1].parallelism.dp=2"); the index one
// past the last entry appends an entry ("pools[0].role=PREFILL" on a scenario
// without pools adds pools[0]); an index beyond that is an error.
#ifndef SHARDSIM_SIM_SCENARIO_OVERRIDES_H_
#define SHARDSIM_SIM_SCENARIO_OVERRIDES_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"

namespace shardsim::scenario {

struct Override {
  std::string path;   // "workload.batch_size"
  std::string value;  // "64"
  std::string text;   // "workload.batch_size=64", for error messages
};

// Splits "path=value". InvalidArgument if there is no '=' or no path.
absl::StatusOr<Override> ParseOverride(absl::string_view text);

// Sets the field. InvalidArgument names the override and says which part of
// the path does not exist (listing the fields that do) or why the value is
// not valid for the field.
absl::Status ApplyOverride(const Override& o, google::protobuf::Message* root);

}  // namespace shardsim::scenario

#endif  // SHARDSIM_SIM_SCENARIO_OVERRIDES_H_
