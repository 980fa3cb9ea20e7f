// A small reader for the calibration CSV files: a header line, then rows;
// fields may be quoted ("a, b" and "" inside quotes), as RFC 4180 allows.
#ifndef SHARDSIM_SIM_BASE_CSV_H_
#define SHARDSIM_SIM_BASE_CSV_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace shardsim {

class CsvTable {
 public:
  // Reads `path`. NotFound if it cannot be opened; InvalidArgument naming
  // path:line when a row has a different number of fields than the header.
  static absl::StatusOr<CsvTable> Load(const std::string& path);
  static absl::StatusOr<CsvTable> Parse(const std::string& text,
                                        const std::string& name);

  size_t num_rows() const { return rows_.size(); }
  bool HasColumn(const std::string& column) const {
    return index_.count(column) > 0;
  }
  // The field of `row` in `column` (which must exist: check HasColumn).
  const std::string& Get(size_t row, const std::string& column) const;
  // The same as a number; InvalidArgument naming file, row and column if it
  // is not one.
  absl::StatusOr<double> Number(size_t row, const std::string& column) const;
  // "file:line" of `row`, for messages about a row's values.
  std::string Where(size_t row) const;

 private:
  std::string name_;
  std::map<std::string, size_t> index_;
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace shardsim

#endif  // SHARDSIM_SIM_BASE_CSV_H_
