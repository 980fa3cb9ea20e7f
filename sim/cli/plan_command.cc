#include "sim/cli/plan_command.h"

#include <unistd.h>

#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "sim/base/status_macros.h"
#include "sim/cli/cli_util.h"
#include "sim/cli/serve_scenario.h"
#include "sim/engine/find_max_rate.h"
#include "sim/engine/serving_driver.h"
#include "sim/engine/static_batch.h"
#include "sim/report/format.h"
#include "sim/scenario/scenario.h"
#include "sim/scenario/plan_spec.h"
#include "sim/search/planner.h"
#include "sim/serving/max_rate.h"
#include "sim/serving/requests.h"

namespace shardsim::cli {
namespace {

// One candidate, in the worker process the planner forked for it.
absl::StatusOr<v1::SimulatedCandidate> Simulate(const std::string& scenario_path,
                                                const std::vector<std::string>& overrides,
                                                search::SimulationKind kind,
                                                double start_rate_per_s) {
  absl::StatusOr<scenario::LoadedScenario> loaded =
      scenario::LoadScenario(scenario_path, overrides);
  if (!loaded.ok()) return loaded.status();
  v1::SimulatedCandidate result;
  if (kind == search::SimulationKind::kStatic) {
    absl::StatusOr<v1::RunReport> run =
        engine::RunStaticBatch(*loaded, loaded->scenario.workload(), {});
    if (!run.ok()) return run.status();
    *result.mutable_run() = *std::move(run);
    return result;
  }
  v1::Serving serving = loaded->scenario.serving();
  SHARDSIM_RETURN_IF_ERROR(serving::CheckServing(serving, loaded->where));
  if (kind == search::SimulationKind::kFindMaxRate) {
    if (start_rate_per_s > 0) serving.mutable_arrival()->set_rate_per_s(start_rate_per_s);
    absl::StatusOr<v1::MaxRateReport> found =
        engine::FindMaxRate(*loaded, serving, loaded->path);
    if (!found.ok()) return found.status();
    *result.mutable_max_rate() = *std::move(found);
    return result;
  }
  absl::StatusOr<v1::ServeReport> served = ServeScenario(*loaded, serving);
  if (!served.ok()) return served.status();
  *result.mutable_serve() = *std::move(served);
  return result;
}

}  // namespace

int PlanMain(const Args& args) {
  search::PlanOptions options;
  long cores = ::sysconf(_SC_NPROCESSORS_ONLN);
  options.jobs = args.jobs > 0 ? args.jobs : (cores > 0 ? static_cast<int>(cores) : 1);
  options.top_k = args.top_k;
  options.out_dir = args.out;
  options.estimate_only = args.estimate_only;
  const std::string format = args.format.empty() ? "text" : args.format;
  const std::vector<std::string>& positional = args.files;
  absl::StatusOr<scenario::PlanSpec> spec = scenario::LoadPlan(positional[0]);
  if (!spec.ok()) return Fail("plan", spec.status());
  if (options.out_dir.empty()) options.out_dir = spec->name + ".plan";
  options.simulate = Simulate;
  absl::StatusOr<search::PlanRun> run = search::RunPlan(*spec, options);
  if (!run.ok()) return Fail("plan", run.status());
  if (options.estimate_only) {
    std::cout << absl::StrFormat(
        "%d candidates: %d invalid, %d do not fit, %d estimated in %.3f s (%.0f candidates/s)\n",
        run->report.candidates(), run->report.invalid(), run->report.does_not_fit(),
        run->estimated, run->estimate_seconds,
        run->estimate_seconds > 0 ? run->report.candidates() / run->estimate_seconds : 0);
    return 0;
  }
  if (run->interrupted_by != 0) {
    std::cerr << absl::StrFormat(
        "shardsim plan: interrupted: finished simulations are in %s/simulated.jsonl; run the same "
        "command again to resume\n",
        options.out_dir);
    return 128 + run->interrupted_by;
  }
  if (format == "json") {
    absl::StatusOr<std::string> json = report::ToJson(run->report);
    if (!json.ok()) return Fail("plan", json.status());
    std::cout << *json;
  } else if (format == "csv") {
    std::cout << search::PlanCsv(run->report);
  } else {
    std::cout << search::PlanText(run->report);
  }
  // Timing is for people, on stderr: the report itself is the same bytes
  // every time.
  std::cerr << absl::StrFormat(
      "plan %s: %d candidates, %d estimated in %.2f s; %d simulated in %.2f s (%d from %s)\n",
      spec->name, run->report.candidates(), run->estimated, run->estimate_seconds,
      run->report.simulated(), run->simulate_seconds, run->resumed,
      options.out_dir + "/simulated.jsonl");
  for (const v1::PlanCandidate& c : run->report.all()) {
    if (c.status() == "failed") {
      std::cerr << "shardsim plan: some simulations failed; run the same command again to retry "
                   "them\n";
      return kExitError;
    }
  }
  return 0;
}

}  // namespace shardsim::cli
