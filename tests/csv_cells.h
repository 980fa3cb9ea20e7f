// Splitting one line of a CSV table as RFC 4180 writes it (what
// report::CsvField and the sweep tables write): a quoted cell may hold
// commas, and "" inside quotes is one quote. For tests that read tables.
#ifndef SHARDSIM_TESTS_CSV_CELLS_H_
#define SHARDSIM_TESTS_CSV_CELLS_H_

#include <string>
#include <vector>

namespace shardsim::testing {

inline std::vector<std::string> CsvCells(const std::string& line) {
  std::vector<std::string> cells(1);
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted && c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
      cells.back() += '"';
      ++i;
    } else if (c == '"') {
      quoted = !quoted;
    } else if (c == ',' && !quoted) {
      cells.emplace_back();
    } else {
      cells.back() += c;
    }
  }
  return cells;
}

}  // namespace shardsim::testing

#endif  // SHARDSIM_TESTS_CSV_CELLS_H_
