#include "sim/serving/request_table.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace shardsim::serving {

absl::Status RequestTable::Open(const std::string& path) {
  if (path.empty()) return absl::OkStatus();
  path_ = path;
  file_.open(path, std::ios::trunc);
  if (!file_) return absl::UnavailableError(absl::StrCat(path, ": cannot write the request table"));
  file_ << "id,status,arrival_s,first_scheduled_s,first_token_s,finish_s,"
           "prompt_tokens,output_tokens,preemptions\n";
  return absl::OkStatus();
}

void RequestTable::Row(const RequestState& s, const char* status) {
  if (!file_.is_open()) return;
  // Nine decimals: nanoseconds, as the simulation clock resolves them.
  file_ << absl::StrFormat("%d,%s,%.9f,%.9f,%.9f,%.9f,%d,%d,%d\n", s.request.id, status,
                           s.request.arrival_s, s.first_scheduled_s, s.first_token_s,
                           s.finished_s, s.request.prompt_tokens, s.request.output_tokens,
                           s.preemptions);
}

absl::Status RequestTable::Close() {
  if (!file_.is_open()) return absl::OkStatus();
  file_.close();
  if (!file_) return absl::UnavailableError(absl::StrCat(path_, ": cannot write the request table"));
  return absl::OkStatus();
}

}  // namespace shardsim::serving
