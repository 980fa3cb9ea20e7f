// Where serving requests come from: a synthetic process (arrivals and token
// lengths drawn from a seeded generator) or a CSV trace. A source yields the
// requests in arrival order one at a time, so a million-request run holds
// only the requests in flight. Same configuration and seed, same requests.
// No SimGrid here.
#ifndef SHARDSIM_SIM_SERVING_REQUESTS_H_
#define SHARDSIM_SIM_SERVING_REQUESTS_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "sim/base/config_file.h"
#include "sim/proto/serving.pb.h"

namespace shardsim::serving {

struct Request {
  int64_t id = 0;  // 0, 1, ... in arrival order
  double arrival_s = 0;
  int64_t prompt_tokens = 0;
  int64_t output_tokens = 0;
};

class RequestSource {
 public:
  virtual ~RequestSource() = default;
  // The next request in arrival order, or nothing when there are no more.
  virtual std::optional<Request> Next() = 0;
};

// The request count an unset serving.num_requests means.
inline constexpr int64_t kDefaultNumRequests = 1000;

// Requests drawn from `serving`'s arrival process and length distributions
// (num_requests of them; default kDefaultNumRequests), seeded with
// serving.seed.
class SyntheticSource : public RequestSource {
 public:
  explicit SyntheticSource(const v1::Serving& serving);
  std::optional<Request> Next() override;

 private:
  int64_t Length(const v1::LengthDistribution& d);

  v1::Serving serving_;
  int64_t count_ = 0;
  int64_t next_id_ = 0;
  double clock_s_ = 0;
  std::mt19937_64 random_;
};

// Every row of a trace, in file order (times must not go backwards).
class TraceSource : public RequestSource {
 public:
  explicit TraceSource(std::vector<Request> requests) : requests_(std::move(requests)) {}
  std::optional<Request> Next() override;

 private:
  std::vector<Request> requests_;
  size_t next_ = 0;
};

// Reads a trace CSV. Errors are one line naming the file, line and column.
absl::StatusOr<std::vector<Request>> ReadTrace(const std::string& path,
                                               const v1::RequestTrace& trace);

// Checks `serving`'s fields (rates, lengths, scheduler limits), naming them
// through `where`.
absl::Status CheckServing(const v1::Serving& serving, const FieldLocator& where);

// The source `serving` describes; `scenario_path` resolves the trace file.
absl::StatusOr<std::unique_ptr<RequestSource>> MakeSource(const v1::Serving& serving,
                                                          const std::string& scenario_path);

}  // namespace shardsim::serving

#endif  // SHARDSIM_SIM_SERVING_REQUESTS_H_
