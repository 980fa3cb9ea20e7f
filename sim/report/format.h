// Turning reports into text for people and JSON for machines.
//
// JSON is the proto's canonical JSON mapping with the proto field names
// (snake_case) and every field printed, so a consumer never has to know the
// defaults. Note that the mapping writes 64-bit integers as strings.
#ifndef SHARDSIM_SIM_REPORT_FORMAT_H_
#define SHARDSIM_SIM_REPORT_FORMAT_H_

#include <string>

#include "absl/status/statusor.h"
#include "google/protobuf/message.h"
#include "sim/proto/report.pb.h"
#include "sim/scenario/scenario.h"

namespace shardsim::report {

// One JSON document, newline-terminated.
absl::StatusOr<std::string> ToJson(const google::protobuf::Message& message);

// "recipe fp8: weights FP8 (scale per tensor), GEMM inputs FP8, ...": every
// tensor kind's dtype, as the memory report and the notes print it.
std::string PrecisionText(const v1::Precision& precision);

// The `shardsim memory` table: a header with the model, precision, cluster,
// plan and workload, one row per GPU, then whether it fits and the notes.
std::string MemoryText(const scenario::LoadedScenario& loaded,
                       const v1::MemoryReport& report);

// The `shardsim run` summary: latency, throughput, communication, and per
// GPU the peak memory against capacity and where the time went.
std::string RunText(const v1::RunReport& report);

// The `shardsim serve` summary: requests, throughput, latency percentiles,
// the SLO, the scheduler and KV cache, and per GPU where the time went.
std::string ServeText(const v1::ServeReport& report);

// The `shardsim run --format=csv` output: a header line and one row.
std::string RunCsv(const v1::RunReport& report);

}  // namespace shardsim::report

#endif  // SHARDSIM_SIM_REPORT_FORMAT_H_
