// A small reader for the calibration CSV files and request traces: a header
// line, then rows; fields may be quoted ("a, b", "" and line breaks inside
// quotes), as RFC 4180 allows. Messages name the physical line (and byte
// column) a value is on, as an editor shows it, also after a quoted field
// that spans lines or a blank line.
#ifndef SHARDSIM_SIM_BASE_CSV_H_
#define SHARDSIM_SIM_BASE_CSV_H_

#include <initializer_list>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace shardsim {

class CsvTable {
 public:
  // Reads `path`. NotFound if it cannot be opened; InvalidArgument naming
  // path:line (where the record starts) when a row has a different number
  // of fields than the header.
  static absl::StatusOr<CsvTable> Load(const std::string& path);
  static absl::StatusOr<CsvTable> Parse(const std::string& text,
                                        const std::string& name);

  size_t num_rows() const { return rows_.size(); }
  bool HasColumn(const std::string& column) const {
    return index_.count(column) > 0;
  }
  // OK if the header has every one of `columns`; else InvalidArgument
  // "file:1: no column 'NAME' in the header" for the first it lacks. Loaders
  // call it before Get, so a file without a column they read is one line.
  absl::Status RequireColumns(std::initializer_list<const char*> columns) const;
  // The field of `row` in `column` (which must exist: check HasColumn or
  // RequireColumns).
  const std::string& Get(size_t row, const std::string& column) const;
  // The same as a number; InvalidArgument "file:line:column: COLUMN: not a
  // number: 'CELL'" if it is not one.
  absl::StatusOr<double> Number(size_t row, const std::string& column) const;
  // "file:line" of `row` (the line it starts on), for messages about a row.
  std::string Where(size_t row) const;
  // "file:line:column" of the cell of `row` in `column` (1-based; the column
  // counts bytes, and a quoted cell starts at its quote), for messages
  // about one value; Where(row) for a column the table does not have.
  std::string Where(size_t row, const std::string& column) const;

 private:
  std::string name_;
  std::map<std::string, size_t> index_;
  std::vector<std::vector<std::string>> rows_;
  // Per row, per field: the 1-based line and byte column where it starts.
  std::vector<std::vector<std::pair<int, int>>> starts_;
};

}  // namespace shardsim

#endif  // SHARDSIM_SIM_BASE_CSV_H_
