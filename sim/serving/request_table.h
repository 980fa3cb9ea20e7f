// `serve --requests=FILE`: a CSV row per request as it finishes or is
// refused (id, status, arrival, first scheduled, first token and finish
// times, prompt and output tokens, preemptions), written as the run goes so
// no per-request state is kept for it. Shared by both serving drivers, so
// the table has one format.
#ifndef SHARDSIM_SIM_SERVING_REQUEST_TABLE_H_
#define SHARDSIM_SIM_SERVING_REQUEST_TABLE_H_

#include <fstream>
#include <string>

#include "absl/status/status.h"
#include "sim/serving/scheduler.h"

namespace shardsim::serving {

class RequestTable {
 public:
  // Creates `path` with the header; an empty path writes nothing at all.
  // Unavailable names the path if it cannot be written.
  absl::Status Open(const std::string& path);
  // One row; `status` is "completed" or "refused". Nothing without Open().
  void Row(const RequestState& s, const char* status);
  // Flushes and closes; Unavailable if anything could not be written.
  absl::Status Close();

 private:
  std::string path_;
  std::ofstream file_;
};

}  // namespace shardsim::serving

#endif  // SHARDSIM_SIM_SERVING_REQUEST_TABLE_H_
