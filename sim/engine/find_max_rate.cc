#include "sim/engine/find_max_rate.h"

#include <memory>

#include "absl/strings/str_cat.h"
#include "sim/base/fork_pool.h"
#include "sim/engine/serving_driver.h"
#include "sim/proto/sweep.pb.h"
#include "sim/serving/requests.h"

namespace shardsim::engine {

absl::StatusOr<v1::MaxRateReport> FindMaxRate(const parallel::Deployment& deployment,
                                              const v1::Serving& serving,
                                              const std::string& scenario_path,
                                              const serving::MaxRateOptions& options) {
  auto probe = [&](const v1::Serving& at_rate) -> absl::StatusOr<v1::ServeReport> {
    const double rate_per_s = at_rate.arrival().rate_per_s();
    // In the child: one serving simulation of this probe (its rate and
    // request count), sent back as a PointResult (the report, or the error).
    auto work = [&]() {
      v1::PointResult result;
      absl::StatusOr<std::unique_ptr<serving::RequestSource>> source =
          serving::MakeSource(at_rate, scenario_path);
      absl::StatusOr<v1::ServeReport> report =
          source.ok() ? RunServing(deployment, at_rate, **source) : source.status();
      if (report.ok()) {
        *result.mutable_serve() = *std::move(report);
      } else {
        result.set_error_code(static_cast<int>(report.status().code()));
        result.set_error(std::string(report.status().message()));
      }
      return result.SerializeAsString();
    };
    absl::StatusOr<ChildOutcome> outcome = RunInChild(work);
    if (!outcome.ok()) return outcome.status();
    v1::PointResult result;
    if (!outcome->ok || !result.ParseFromString(outcome->output)) {
      return absl::InternalError(absl::StrCat(
          "the simulation at ", rate_per_s, " requests/s failed: ",
          outcome->ok ? "unreadable result" : outcome->failure));
    }
    if (result.error_code() != 0) {
      return absl::Status(static_cast<absl::StatusCode>(result.error_code()), result.error());
    }
    return result.serve();
  };
  absl::StatusOr<v1::MaxRateReport> report = serving::SearchMaxRate(serving, probe, options);
  if (report.ok()) report->set_scenario(deployment.name);
  return report;
}

}  // namespace shardsim::engine
