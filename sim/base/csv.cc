#include "sim/base/csv.h"

#include <algorithm>
#include <cstdlib>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "sim/base/config_file.h"

namespace shardsim {
namespace {

// Splits `text` into records of fields, honouring quotes.
std::vector<std::vector<std::string>> Records(const std::string& text) {
  std::vector<std::vector<std::string>> records;
  std::vector<std::string> record;
  std::string field;
  bool quoted = false;
  bool any = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        field.push_back('"');
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        field.push_back(c);
      }
      continue;
    }
    any = true;
    if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      record.push_back(field);
      field.clear();
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      record.push_back(field);
      field.clear();
      records.push_back(record);
      record.clear();
      any = false;
    } else {
      field.push_back(c);
    }
  }
  if (any || !field.empty() || !record.empty()) {
    record.push_back(field);
    records.push_back(record);
  }
  return records;
}

}  // namespace

absl::StatusOr<CsvTable> CsvTable::Load(const std::string& path) {
  std::string text;
  absl::Status status = ReadFile(path, &text);
  if (!status.ok()) return status;
  return Parse(text, path);
}

absl::StatusOr<CsvTable> CsvTable::Parse(const std::string& text,
                                         const std::string& name) {
  CsvTable table;
  table.name_ = name;
  std::vector<std::vector<std::string>> records = Records(text);
  if (records.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": empty CSV"));
  }
  for (size_t i = 0; i < records[0].size(); ++i) table.index_[records[0][i]] = i;
  for (size_t r = 1; r < records.size(); ++r) {
    if (records[r].size() == 1 && records[r][0].empty()) continue;  // blank
    if (records[r].size() != records[0].size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          name, ":", r + 1, ": ", records[r].size(), " fields, the header has ",
          records[0].size()));
    }
    table.rows_.push_back(std::move(records[r]));
  }
  return table;
}

const std::string& CsvTable::Get(size_t row, const std::string& column) const {
  return rows_[row][index_.at(column)];
}

std::string CsvTable::Where(size_t row) const {
  return absl::StrCat(name_, ":", row + 2);  // the header is line 1
}

absl::StatusOr<double> CsvTable::Number(size_t row,
                                        const std::string& column) const {
  if (!HasColumn(column)) {
    return absl::InvalidArgumentError(
        absl::StrCat(name_, ": no column '", column, "'"));
  }
  double value = 0;
  const std::string& cell = Get(row, column);
  if (!absl::SimpleAtod(cell, &value)) {
    // A cell that is not UTF-8 or holds a control character is escaped:
    // the error must be one line of text.
    const bool printable =
        FirstInvalidUtf8(cell) == absl::string_view::npos &&
        std::none_of(cell.begin(), cell.end(), [](char c) {
          return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
        });
    return absl::InvalidArgumentError(
        absl::StrCat(Where(row), ": ", column, ": not a number: '",
                     printable ? cell : absl::CHexEscape(cell), "'"));
  }
  return value;
}

}  // namespace shardsim
