#include "sim/base/csv.h"

#include <algorithm>
#include <cstdlib>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "sim/base/config_file.h"

namespace shardsim {
namespace {

// One record's fields, each with the 1-based physical line and byte column
// where it starts (its opening quote, for a quoted field).
struct Record {
  std::vector<std::string> fields;
  std::vector<std::pair<int, int>> starts;
};

// Splits `text` into records of fields, honouring quotes. Lines are counted
// as an editor shows them: a line break inside a quoted field is one too,
// and "\r\n" is one break, not two.
std::vector<Record> Records(const std::string& text) {
  std::vector<Record> records;
  Record record;
  std::string field;
  bool quoted = false;
  bool any = false;
  int line = 1;
  size_t line_start = 0;  // offset of the current line's first byte
  std::pair<int, int> start = {1, 1};
  const auto end_field = [&] {
    record.fields.push_back(field);
    record.starts.push_back(start);
    field.clear();
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    const bool crlf = c == '\r' && i + 1 < text.size() && text[i + 1] == '\n';
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        field.push_back('"');
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        field.push_back(c);
        if (c == '\n' || (c == '\r' && !crlf)) {
          ++line;
          line_start = i + 1;
        }
      }
      continue;
    }
    any = true;
    if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      end_field();
      start = {line, static_cast<int>(i + 1 - line_start) + 1};
    } else if (c == '\n' || c == '\r') {
      if (crlf) ++i;
      end_field();
      records.push_back(std::move(record));
      record = Record();
      any = false;
      ++line;
      line_start = i + 1;
      start = {line, 1};
    } else {
      field.push_back(c);
    }
  }
  if (any || !field.empty() || !record.fields.empty()) {
    end_field();
    records.push_back(std::move(record));
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
  std::vector<Record> records = Records(text);
  if (records.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": empty CSV"));
  }
  const std::vector<std::string>& header = records[0].fields;
  for (size_t i = 0; i < header.size(); ++i) table.index_[header[i]] = i;
  for (size_t r = 1; r < records.size(); ++r) {
    Record& record = records[r];
    if (record.fields.size() == 1 && record.fields[0].empty()) continue;  // blank
    if (record.fields.size() != header.size()) {
      return absl::InvalidArgumentError(absl::StrCat(name, ":", record.starts[0].first, ": ",
                                                     record.fields.size(),
                                                     " fields, the header has ", header.size()));
    }
    table.rows_.push_back(std::move(record.fields));
    table.starts_.push_back(std::move(record.starts));
  }
  return table;
}

absl::Status CsvTable::RequireColumns(std::initializer_list<const char*> columns) const {
  for (const char* column : columns) {
    if (!HasColumn(column)) {
      return absl::InvalidArgumentError(
          absl::StrCat(name_, ":1: no column '", column, "' in the header"));
    }
  }
  return absl::OkStatus();
}

const std::string& CsvTable::Get(size_t row, const std::string& column) const {
  return rows_[row][index_.at(column)];
}

std::string CsvTable::Where(size_t row) const {
  return absl::StrCat(name_, ":", starts_[row][0].first);
}

std::string CsvTable::Where(size_t row, const std::string& column) const {
  const auto it = index_.find(column);
  if (it == index_.end()) return Where(row);
  const auto& [line, byte] = starts_[row][it->second];
  return absl::StrCat(name_, ":", line, ":", byte);
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
        absl::StrCat(Where(row, column), ": ", column, ": not a number: '",
                     printable ? cell : absl::CHexEscape(cell), "'"));
  }
  return value;
}

}  // namespace shardsim
