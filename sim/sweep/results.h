// Sweep result tables: one row per point, as CSV or JSON Lines, written so a
// sweep killed at any moment can be resumed and shards can be merged.
//
// Rows are appended with one write() each, so a kill leaves at most a torn
// last line, which ResultsFile::Open() cuts off; the points already in the
// file are known by their key. When a file holds every point of its run it is
// rewritten in point order (a temporary file, then rename()), so a sweep
// gives the same bytes however it ran: one job or many, interrupted or not.
//
// Columns: point, key, status ("ok" or "skipped"), reason (why skipped); one
// column per swept field path; then kResultColumns. Cells a skipped point
// has no value for are empty (CSV) or null (JSON), as is the cost when the
// topology gives no GPU price.
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

// Every column of a table whose swept field paths are `swept`.
std::vector<std::string> TableColumns(const std::vector<std::string>& swept);

// A cell: its text, and how JSON writes it.
struct Cell {
  enum Kind { kNull, kNumber, kText, kBool };
  Kind kind = kNull;
  std::string text;
};
using Row = std::vector<Cell>;

// The row of a point that ran. `interconnect` names the kinds of link the
// cluster has ("nvlink", "pcie+upi").
Row ResultRow(const scenario::SweepPoint& point, const v1::RunReport& report,
              const std::string& interconnect);

// The row of a point that did not run: a skip rule matched, or its scenario
// is invalid (`reason` is then the one-line error).
Row SkippedRow(const scenario::SweepPoint& point, const std::string& reason);

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
  // empty. An existing file must have been written for the same columns, and
  // each of its rows must be one of `points` (the points of this run, by
  // key); otherwise InvalidArgument names path:line and says what differs. A
  // torn last line is cut off the file.
  static absl::StatusOr<std::unique_ptr<ResultsFile>> Open(
      const std::string& path, TableFormat format,
      const std::vector<std::string>& columns,
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

  std::string path_;
  TableFormat format_;
  int fd_;
  std::map<std::string, int64_t> rows_;
  bool in_order_ = true;  // rows were appended in point order
  int64_t last_point_ = -1;
};

// Merges result files written by shards of one sweep into `out`: one header,
// every row once, in point order. Rows of the same point in two files must
// be identical; files must have the same columns and format. A torn last line
// (a shard still running or killed) is left out. Returns the number of rows.
absl::StatusOr<int64_t> MergeResults(const std::vector<std::string>& inputs,
                                     const std::string& out);

}  // namespace shardsim::sweep

#endif  // SHARDSIM_SIM_SWEEP_RESULTS_H_
