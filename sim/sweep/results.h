// Sweep result tables: one row per point, as CSV or JSON Lines, written so a
// sweep killed at any moment can be resumed and shards can be merged.
//
// Rows are appended with one write() each, so a kill leaves at most a torn
// last line, which ResultsFile::Open() cuts off; the points already in the
// file are known by their key. When a file holds every point of its run it is
// rewritten in point order (a temporary file, then rename()), so a sweep
// gives the same bytes however it ran: one job or many, interrupted or not.
//
// Columns: point, key, status ("ok", "skipped" or "timeout"), reason (why
// not ok); one column per swept field path; then kResultColumns (a RUN
// sweep) or kServeResultColumns (a SERVE sweep), each ending in what_ran
// (what produced the row, on one line: report::WhatRanLine); then the
// sweep's identity (sweep_id, sweep_points), so a file is never resumed or
// merged with rows of another sweep that happens to share its columns, and
// merge knows how many points there should be. Cells a skipped point has no
// value for are empty (CSV) or null (JSON), as is the cost when the topology
// gives no GPU price.
#ifndef SHARDSIM_SIM_SWEEP_RESULTS_H_
#define SHARDSIM_SIM_SWEEP_RESULTS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "sim/proto/report.pb.h"
#include "sim/proto/scenario.pb.h"
#include "sim/proto/sweep.pb.h"
#include "sim/scenario/sweep_spec.h"

namespace shardsim::sweep {

enum class TableFormat { kCsv, kJsonl };

// "csv" or "jsonl"; InvalidArgument otherwise.
absl::StatusOr<TableFormat> ParseTableFormat(absl::string_view name);

// The format a file name asks for: .jsonl or .json is JSON Lines, anything
// else CSV.
TableFormat FormatForPath(absl::string_view path);

// The result columns after the swept ones. Memory columns describe the GPU
// with the highest peak (the one that decides whether the plan fits).
extern const char* const kResultColumns[];
extern const size_t kNumResultColumns;

// The result columns of a SERVE sweep after the swept ones: the deployment
// and scheduler, the offered load, then what `shardsim serve` reports
// (throughput, latency distributions, SLO, KV cache, steps, memory).
extern const char* const kServeResultColumns[];
extern const size_t kNumServeResultColumns;

// Every column of a table whose swept field paths are `swept`, for a sweep
// whose points run `command` (RUN: kResultColumns, SERVE:
// kServeResultColumns).
std::vector<std::string> TableColumns(
    const std::vector<std::string>& swept,
    v1::Sweep::Command command = v1::Sweep::RUN);

// Which sweep a row belongs to: written in every row (the last two columns).
struct SweepIdentity {
  // "fnv1a64:" and 16 hex digits over the base scenario as the sweep file
  // names it and every point's index, overrides and skip reason. Paths are
  // not resolved, so shards run from different folders or machines agree.
  std::string id;
  int64_t points = 0;  // points of the whole sweep (all shards)
};
SweepIdentity IdentityOf(const scenario::SweepSpec& spec);

// A cell: its text, and how JSON writes it.
struct Cell {
  enum Kind { kNull, kNumber, kText, kBool };
  Kind kind = kNull;
  std::string text;
};
using Row = std::vector<Cell>;

// The row of a point that ran. `interconnect` names the kinds of link the
// cluster has ("nvlink", "pcie+upi").
Row ResultRow(const SweepIdentity& sweep, const scenario::SweepPoint& point,
              const v1::RunReport& report, const std::string& interconnect);

// What a serve row takes from the point's scenario rather than from its
// ServeReport: the links, the offered load and the SLO targets.
struct ServeRowContext {
  std::string interconnect;  // as for ResultRow
  // POISSON, GAMMA, FIXED_INTERVAL, ALL_AT_ONCE, or TRACE when the requests
  // come from a trace file.
  std::string arrival;
  // The offered rate (serving.arrival.rate_per_s); 0, an empty cell, for
  // a trace or requests all at once, which have no rate setting.
  double rate_per_s = 0;
  v1::Slo slo;  // targets; 0 (no target) is an empty cell
};

// The context of a point whose scenario (overrides applied) is `scenario`.
ServeRowContext ServeContextOf(const v1::Scenario& scenario,
                               std::string interconnect);

// The row of a SERVE point that ran. Numbers are written in the shortest
// form that reads back as the same double, so a row holds exactly the
// values `shardsim serve --format=json` prints for the point.
Row ServeResultRow(const SweepIdentity& sweep,
                   const scenario::SweepPoint& point,
                   const v1::ServeReport& report,
                   const ServeRowContext& context);

// The row of a point that did not run: a skip rule matched, or its scenario
// is invalid (`reason` is then the one-line error). `status` is "skipped",
// or "timeout" for a point stopped by --timeout; `command` says which
// result columns the row leaves empty.
Row SkippedRow(const SweepIdentity& sweep, const scenario::SweepPoint& point,
               const std::string& reason, const char* status = "skipped",
               v1::Sweep::Command command = v1::Sweep::RUN);

// The CSV header line ("" for JSON Lines, which names columns in each row).
std::string FormatHeader(const std::vector<std::string>& columns,
                         TableFormat format);

// One row as one newline-terminated line. `row` has a cell per column.
std::string FormatRow(const std::vector<std::string>& columns, const Row& row,
                      TableFormat format);

// A result file being written by one sweep run.
class ResultsFile {
 public:
  // Opens `path` for a table with `columns`, creating it when missing or
  // empty. A symbolic link is followed: the file it names is the one written
  // (and rewritten in order). Anything but a regular file (a device, a FIFO)
  // is refused. An existing file must start with this table's header (CSV)
  // or a row (JSON Lines), be written for the same columns and sweep, and
  // each of its rows must be one of `points` (the points of this run, by
  // key); otherwise InvalidArgument names path:line and says what differs,
  // and the file is left as it was. A torn last line is cut off the file.
  static absl::StatusOr<std::unique_ptr<ResultsFile>> Open(
      const std::string& path, TableFormat format,
      const std::vector<std::string>& columns, const SweepIdentity& sweep,
      const std::vector<const scenario::SweepPoint*>& points);

  ResultsFile(const ResultsFile&) = delete;
  ResultsFile& operator=(const ResultsFile&) = delete;
  ~ResultsFile();

  // Point index by key, for every row in the file.
  const std::map<std::string, int64_t>& rows() const { return rows_; }

  // Appends `line` (one whole row) with one write(), so that a kill cannot
  // leave half a row behind anything else.
  absl::Status Append(const scenario::SweepPoint& point,
                      const std::string& line);

  // Rewrites the file with its rows in point order, atomically: a kill
  // during the rewrite leaves the old file whole.
  absl::Status SortByPoint();

 private:
  ResultsFile(std::string path, TableFormat format, int fd)
      : path_(std::move(path)), format_(format), fd_(fd) {}

  std::string path_;  // the regular file written: symbolic links resolved
  TableFormat format_;
  int fd_;
  std::map<std::string, int64_t> rows_;
  bool in_order_ = true;  // rows were appended in point order
  int64_t last_point_ = -1;
};

struct MergeSummary {
  int64_t rows = 0;    // rows written to the merged file
  int64_t points = 0;  // points of the sweep (sweep_points)
  // Points of the sweep with no row in any input, in order.
  std::vector<int64_t> missing;
  // "file:line" of each torn last line left out (a shard still running, or
  // killed while writing).
  std::vector<std::string> torn;
};

// Merges result files written by shards of one sweep into `out`: one header,
// every row once, in point order. Rows of the same point in two files must
// be identical; files must have the same columns, format and sweep_id.
// A torn last line is left out and listed in the summary, as are points no
// file has a row for: the merge of what there is is still written. `out`
// follows a symbolic link and must otherwise be a regular file or missing.
absl::StatusOr<MergeSummary> MergeResults(
    const std::vector<std::string>& inputs, const std::string& out);

}  // namespace shardsim::sweep

#endif  // SHARDSIM_SIM_SWEEP_RESULTS_H_
