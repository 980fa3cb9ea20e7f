#include "sim/cli/serve_scenario.h"

#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "sim/base/status_macros.h"
#include "sim/engine/disagg_driver.h"
#include "sim/serving/requests.h"

namespace shardsim::cli {

absl::StatusOr<v1::ServeReport> ServeScenario(const scenario::LoadedScenario& loaded,
                                              const v1::Serving& serving,
                                              const engine::ServingOptions& options) {
  SHARDSIM_RETURN_IF_ERROR(serving::CheckServing(serving, loaded.where));
  absl::StatusOr<std::unique_ptr<serving::RequestSource>> made =
      serving::MakeSource(serving, loaded.path);
  if (absl::IsNotFound(made.status())) {
    // The trace file cannot be read (missing, a directory, a device): say
    // which field named it, and where, as a missing model file is said.
    return loaded.where.Error("serving.trace.file", made.status().message());
  }
  SHARDSIM_ASSIGN_OR_RETURN(std::unique_ptr<serving::RequestSource> source, std::move(made));
  if (loaded.pools.empty()) return engine::RunServing(loaded, serving, *source, options);
  return engine::RunDisaggregated(loaded, loaded.pools, loaded.scenario.kv_transfer(), serving,
                                  *source, options);
}

absl::Status CheckNoPools(const scenario::LoadedScenario& loaded, const char* command) {
  if (loaded.pools.empty()) return absl::OkStatus();
  return loaded.where.Error(
      "pools[0]", absl::StrCat("`", command, "` replays one plan, the scenario's parallelism, "
                               "but this scenario deploys ", loaded.pools.size(),
                               " pools: serve them with `shardsim serve` (`shardsim memory` "
                               "reports each pool's memory)"));
}

}  // namespace shardsim::cli
