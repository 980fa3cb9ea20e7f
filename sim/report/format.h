// Turning reports into text for people and JSON for machines.
//
// JSON is the proto's canonical JSON mapping with the proto field names
// (snake_case) and every field printed, so a consumer never has to know the
// defaults, with two changes a JSON reader expects: 64-bit integers are
// numbers (the mapping quotes them, for JavaScript's 53-bit doubles; every
// count and byte total shardsim reports is far below 2^53), and a value
// that is not known or none (a field marked unknown_if_unset in
// report.proto, 0 or "": the cost without a GPU price, the overflowing
// component of a GPU that fits; a latency over no samples, such as the time
// per output token of one-token outputs: a LatencyStats of zeros, or a
// Distribution with count 0, marked unknown_if_no_samples) is null. Text
// says "n/a" or "-" there, and CSV leaves the cell empty. The sweep's JSON
// Lines write numbers and null alike.
#ifndef SHARDSIM_SIM_REPORT_FORMAT_H_
#define SHARDSIM_SIM_REPORT_FORMAT_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"
#include "sim/proto/report.pb.h"
#include "sim/scenario/scenario.h"

namespace shardsim::report {

// One JSON document, newline-terminated.
absl::StatusOr<std::string> ToJson(const google::protobuf::Message& message);

// A CSV field as RFC 4180 writes it: quoted when it holds a comma, a quote
// or a line break, with quotes doubled (pandas reads it back as it was).
std::string CsvField(absl::string_view text);

// What produced a report's numbers: the precision of each tensor kind, the
// runtime overheads (defaults applied), the --set `overrides` applied, and
// the calibration profile and collective tuning with why they were chosen.
v1::WhatRan DescribeWhatRan(const scenario::LoadedScenario& loaded,
                            const std::vector<std::string>& overrides);

// The lines that say what ran, for the text outputs ("precision ...",
// "runtime ...", "engine ..." (the named runtime's time terms), "overrides
// ...", "calibration ...", "collectives ..."), each name padded to `width`.
// Without `timings` (the memory report, which prints its own precision line
// and times nothing) only runtime and overrides.
std::string WhatRanText(const v1::WhatRan& what_ran, int width, bool timings);

// The same lines as WhatRanText with timings, on one line, each after "; "
// ("precision recipe bf16: ...; runtime ...; overrides none; calibration
// ...; collectives ..."): a sweep row's `what_ran` cell.
std::string WhatRanLine(const v1::WhatRan& what_ran);

// "recipe fp8: weights FP8 (scale per tensor), GEMM inputs FP8, ...": every
// tensor kind's dtype, as the memory report and the notes print it.
std::string PrecisionText(const v1::Precision& precision);

// The `shardsim memory` table: a header with the model, precision, cluster,
// plan and workload (led by "does not fit: " and why when it does not), one
// row per GPU, then whether it fits and the notes.
std::string MemoryText(const scenario::LoadedScenario& loaded,
                       const v1::MemoryReport& report);

// The `shardsim run` summary: latency, throughput, communication, and per
// GPU the peak memory against capacity and where the time went. A plan that
// does not fit starts with "does not fit: " and the GPU, the component and
// by how much, before any latency or cost.
std::string RunText(const v1::RunReport& report);

// The `shardsim serve` summary: requests, throughput, latency percentiles,
// the SLO, the scheduler and KV cache, and per GPU where the time went.
std::string ServeText(const v1::ServeReport& report);

// The `shardsim run --format=csv` output: a header line and one row; text
// quoted as CsvField does, an unknown cost empty.
std::string RunCsv(const v1::RunReport& report);

}  // namespace shardsim::report

#endif  // SHARDSIM_SIM_REPORT_FORMAT_H_
