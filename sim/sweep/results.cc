#include "sim/sweep/results.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"
#include "sim/base/config_file.h"
#include "sim/base/status_macros.h"
#include "sim/report/format.h"
#include "sim/scenario/pools.h"

namespace shardsim::sweep {

const char* const kResultColumns[] = {
    "model", "cluster", "gpu", "interconnect", "num_gpus", "tp", "pp", "dp",
    "micro_batches", "batch_size", "prompt_len", "output_len", "fits",
    // The GPU with the highest peak, and its breakdown.
    "peak_memory_bytes", "peak_memory_gpu", "peak_memory_largest",
    "peak_memory_largest_bytes", "capacity_bytes", "weights_bytes",
    "kv_cache_bytes", "activations_bytes", "comm_buffers_bytes",
    "runtime_overhead_bytes", "overflow_component", "over_by_bytes",
    "ttft_mean_s", "ttft_p99_s", "tpot_mean_s", "tpot_p50_s", "tpot_p99_s",
    "total_s", "output_tokens", "output_tokens_per_s",
    "output_tokens_per_s_per_gpu", "comm_overhead",
    "cost_per_million_output_tokens",
    // What produced the row (report::WhatRanLine): precision, runtime,
    // overrides, calibration profile and collective tuning.
    "what_ran"};
const size_t kNumResultColumns =
    sizeof(kResultColumns) / sizeof(kResultColumns[0]);

const char* const kServeResultColumns[] = {
    "model", "cluster", "gpu", "interconnect", "num_gpus", "tp", "pp", "dp",
    // Every pool's role and plan ("P tp4x2 + D tp8x1"; scenario::DeploymentName).
    "deployment",
    // Whether every GPU's peak (the KV cache at its fullest) fits: a plan
    // whose weights leave no cache runs, and refuses every request.
    "fits",
    // The scheduler of each replica and the router.
    "max_num_seqs", "max_num_batched_tokens", "chunked_prefill", "block_size",
    "router",
    // The offered load.
    "arrival", "rate_per_s",
    // Throughput.
    "requests", "completed", "refused", "span_s", "requests_per_s",
    "requests_per_s_per_gpu", "input_tokens", "output_tokens",
    "input_tokens_per_s", "output_tokens_per_s", "output_tokens_per_s_per_gpu",
    // Latency distributions: mean, p50, p90, p99 and the maximum.
    "ttft_mean_s", "ttft_p50_s", "ttft_p90_s", "ttft_p99_s", "ttft_max_s",
    "tpot_mean_s", "tpot_p50_s", "tpot_p90_s", "tpot_p99_s", "tpot_max_s",
    "itl_mean_s", "itl_p50_s", "itl_p90_s", "itl_p99_s", "itl_max_s",
    "e2e_mean_s", "e2e_p50_s", "e2e_p90_s", "e2e_p99_s", "e2e_max_s",
    "queue_mean_s", "queue_p50_s", "queue_p90_s", "queue_p99_s", "queue_max_s",
    // The objective and who met it.
    "slo_ttft_s", "slo_tpot_s", "slo_e2e_s", "slo_met", "slo_attainment",
    "goodput_requests_per_s", "preemptions",
    // The KV cache (blocks per replica) and the steps.
    "kv_blocks_capacity", "kv_blocks_peak", "kv_blocks_mean",
    "kv_peak_fraction", "steps", "batch_size_mean", "batch_size_max",
    "tokens_per_step_mean", "tokens_per_step_max",
    // GPUs: communication no compute hides; the highest peak memory.
    "comm_overhead", "peak_memory_bytes", "capacity_bytes",
    // What produced the row, as for a RUN sweep.
    "what_ran"};
const size_t kNumServeResultColumns =
    sizeof(kServeResultColumns) / sizeof(kServeResultColumns[0]);

namespace {

namespace fs = std::filesystem;

constexpr size_t kLeadingColumns = 4;  // point, key, status, reason
constexpr char kIdColumn[] = "sweep_id";
constexpr char kPointsColumn[] = "sweep_points";
// How every JSON Lines row starts (FormatRow): a file that does not is not
// a table of ours, torn or whole.
constexpr char kJsonRowStart[] = "{\"point\": ";

Cell Null() { return Cell{}; }
Cell Text(std::string text) { return Cell{Cell::kText, std::move(text)}; }
Cell Bool(bool b) { return Cell{Cell::kBool, b ? "true" : "false"}; }
Cell Int(int64_t n) { return Cell{Cell::kNumber, absl::StrCat(n)}; }
// Nine significant digits, as `shardsim run --format=csv` prints.
Cell Real(double x) {
  if (!std::isfinite(x)) return Null();
  return Cell{Cell::kNumber, absl::StrFormat("%.9g", x)};
}

// The shortest text that reads back as exactly `x` (std::to_chars without
// a precision), for serve rows, which promise `shardsim serve`'s values.
Cell Exact(double x) {
  if (!std::isfinite(x)) return Null();
  char buffer[64];
  const std::to_chars_result end =
      std::to_chars(buffer, buffer + sizeof(buffer), x);
  return Cell{Cell::kNumber, std::string(buffer, end.ptr)};
}

// A swept value as JSON writes it: a number when it is one in JSON's
// grammar (so "08" or "1e" stay text), else text.
bool IsJsonNumber(absl::string_view s) {
  size_t i = 0;
  auto digits = [&] {
    const size_t start = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    return i > start;
  };
  if (i < s.size() && s[i] == '-') ++i;
  if (i < s.size() && s[i] == '0') {
    ++i;
  } else if (!digits()) {
    return false;
  }
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (!digits()) return false;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    if (!digits()) return false;
  }
  return i == s.size();
}

// Rows are lines: a cell never holds a line break.
std::string OneLine(absl::string_view text) {
  std::string out(text);
  std::replace(out.begin(), out.end(), '\n', ' ');
  std::replace(out.begin(), out.end(), '\r', ' ');
  return out;
}

std::string CsvField(absl::string_view text) {
  if (text.find_first_of(",\"") == absl::string_view::npos) {
    return std::string(text);
  }
  std::string out = "\"";
  for (char c : text) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

// Splits one CSV line (RFC 4180 quoting, no line breaks in fields).
std::vector<std::string> SplitCsv(absl::string_view line) {
  std::vector<std::string> fields(1);
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        fields.back() += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        fields.back() += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      fields.emplace_back();
    } else {
      fields.back() += c;
    }
  }
  return fields;
}

std::string JsonString(absl::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += absl::StrFormat("\\u%04x", static_cast<int>(c));
        } else {
          out += c;
        }
    }
  }
  out += '"';
  return out;
}

// One row of a table file, as read back.
struct Line {
  int number = 0;  // 1-based line in the file
  int64_t point = 0;
  std::string key;
  std::string sweep_id;  // "" in a table without the column
  int64_t sweep_points = -1;
  std::string text;  // with its newline
};

struct Table {
  TableFormat format = TableFormat::kCsv;
  std::string header;                // CSV: the header line with its newline
  std::vector<std::string> columns;  // from the header or the first JSON row
  std::vector<Line> rows;
  size_t whole_bytes = 0;  // up to and including the last newline
  int lines = 0;           // whole lines, header included
};

// The position of `name` in `columns`, or -1.
int ColumnIndex(const std::vector<std::string>& columns,
                absl::string_view name) {
  for (size_t i = 0; i < columns.size(); ++i) {
    if (columns[i] == name) return static_cast<int>(i);
  }
  return -1;
}

// CSV, unless the first row is a JSON object.
TableFormat DetectFormat(const std::string& text, TableFormat fallback) {
  const size_t first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return fallback;
  return text[first] == '{' ? TableFormat::kJsonl : TableFormat::kCsv;
}

absl::StatusOr<Table> ParseTable(const std::string& path,
                                 const std::string& text,
                                 TableFormat fallback) {
  Table table;
  table.format = DetectFormat(text, fallback);
  const size_t last_newline = text.rfind('\n');
  table.whole_bytes = last_newline == std::string::npos ? 0 : last_newline + 1;
  size_t start = 0;
  int number = 0;
  while (start < table.whole_bytes) {
    const size_t end = text.find('\n', start);
    const std::string line = text.substr(start, end - start);
    Line row;
    row.number = ++number;
    row.text = text.substr(start, end + 1 - start);
    start = end + 1;
    auto error = [&](absl::string_view what) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", row.number, ": ", what));
    };
    if (table.format == TableFormat::kCsv) {
      const std::vector<std::string> fields = SplitCsv(line);
      if (number == 1) {
        table.header = row.text;
        table.columns = fields;
        if (fields.size() < kLeadingColumns || fields[0] != "point" ||
            fields[1] != "key") {
          return error(
              "not a sweep table: the header does not start with "
              "point,key");
        }
        continue;
      }
      if (fields.size() != table.columns.size()) {
        return error(absl::StrCat("has ", fields.size(), " fields, the header ",
                                  table.columns.size()));
      }
      if (!absl::SimpleAtoi(fields[0], &row.point) || row.point < 0) {
        return error(
            absl::StrCat("point '", fields[0], "' is not a point index"));
      }
      row.key = fields[1];
      const int id = ColumnIndex(table.columns, kIdColumn);
      const int points = ColumnIndex(table.columns, kPointsColumn);
      if (id >= 0) row.sweep_id = fields[id];
      if (points >= 0 && !absl::SimpleAtoi(fields[points], &row.sweep_points)) {
        return error(absl::StrCat("sweep_points '", fields[points],
                                  "' is not a number"));
      }
    } else {
      nlohmann::ordered_json json = nlohmann::ordered_json::parse(
          line, nullptr, /*allow_exceptions=*/false);
      if (!json.is_object() || !json.contains("point") ||
          !json["point"].is_number_unsigned() || !json.contains("key") ||
          !json["key"].is_string()) {
        return error(
            "not a sweep row: expected a JSON object with point and key");
      }
      std::vector<std::string> columns;
      for (const auto& item : json.items()) columns.push_back(item.key());
      if (number == 1) {
        table.columns = columns;
      } else if (columns != table.columns) {
        return error("has other columns than the first row");
      }
      row.point = json["point"].get<int64_t>();
      row.key = json["key"].get<std::string>();
      if (json.contains(kIdColumn) && json[kIdColumn].is_string()) {
        row.sweep_id = json[kIdColumn].get<std::string>();
      }
      if (json.contains(kPointsColumn) &&
          json[kPointsColumn].is_number_unsigned()) {
        row.sweep_points = json[kPointsColumn].get<int64_t>();
      }
    }
    table.rows.push_back(std::move(row));
  }
  table.lines = number;
  return table;
}

std::string ErrnoText() { return std::strerror(errno); }

absl::Status WriteAll(int fd, const std::string& data,
                      const std::string& path) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      return absl::InternalError(
          absl::StrCat(path, ": cannot write: ", ErrnoText()));
    }
    done += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

// The file `path` names once symbolic links are followed: rename() onto a
// link would replace the link, not write the file the user pointed at. A
// dangling link gives the file it would create.
absl::StatusOr<std::string> FollowLinks(const std::string& path) {
  std::string current = path;
  for (int hops = 0; hops < 40; ++hops) {  // Linux's own limit (MAXSYMLINKS)
    struct stat st;
    if (::lstat(current.c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) {
      return current;
    }
    std::error_code error;
    fs::path target = fs::read_symlink(current, error);
    if (error) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": cannot read the link: ", error.message()));
    }
    if (target.is_relative()) target = fs::path(current).parent_path() / target;
    current = target.string();
  }
  return absl::InvalidArgumentError(
      absl::StrCat(path, ": too many levels of symbolic links"));
}

// Refuses a path that exists and is not a regular file: writing a table
// over /dev/null or a FIFO would replace the device node or block.
absl::Status CheckRegularOrMissing(const std::string& path,
                                   const std::string& shown) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0 || S_ISREG(st.st_mode)) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat(
      shown, ": is not a regular file (",
      S_ISDIR(st.st_mode) ? "a directory" : "a device, FIFO or socket",
      "); name a file to write the table to"));
}

// Writes `contents` to `path` through a temporary file and rename(), so a
// reader (or a kill) sees the old file or the new one, never a mix. `path`
// is a regular file or missing (symbolic links already followed).
absl::Status ReplaceFile(const std::string& path, const std::string& contents) {
  // A unique name in the same folder: rename() must not cross file systems,
  // and two merges into one folder must not share a temporary file.
  std::string tmp = path + ".tmp.XXXXXX";
  const int fd = ::mkostemp(tmp.data(), O_CLOEXEC);
  if (fd < 0) {
    return absl::InternalError(
        absl::StrCat(tmp, ": cannot create: ", ErrnoText()));
  }
  // The rewritten file keeps the old one's permissions; a new one gets the
  // usual 0644 (mkostemp creates 0600).
  struct stat old;
  (void)::fchmod(
      fd, ::stat(path.c_str(), &old) == 0 ? (old.st_mode & 07777) : 0644);
  absl::Status status = WriteAll(fd, contents, tmp);
  if (status.ok() && ::fsync(fd) != 0) {
    status = absl::InternalError(absl::StrCat(tmp, ": fsync: ", ErrnoText()));
  }
  ::close(fd);
  if (status.ok() && std::rename(tmp.c_str(), path.c_str()) != 0) {
    status = absl::InternalError(
        absl::StrCat("cannot rename ", tmp, " to ", path, ": ", ErrnoText()));
  }
  if (!status.ok()) std::remove(tmp.c_str());
  return status;
}

absl::Status ReadFd(int fd, const std::string& path, std::string* text) {
  text->clear();
  char buffer[65536];
  off_t offset = 0;
  for (;;) {
    const ssize_t n = ::pread(fd, buffer, sizeof(buffer), offset);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      return absl::InternalError(
          absl::StrCat(path, ": cannot read: ", ErrnoText()));
    }
    if (n == 0) return absl::OkStatus();
    text->append(buffer, static_cast<size_t>(n));
    offset += n;
  }
}

std::string SortedContents(Table table) {
  std::stable_sort(
      table.rows.begin(), table.rows.end(),
      [](const Line& a, const Line& b) { return a.point < b.point; });
  std::string out = table.header;
  for (const Line& row : table.rows) out += row.text;
  return out;
}

}  // namespace

absl::StatusOr<TableFormat> ParseTableFormat(absl::string_view name) {
  if (name == "csv") return TableFormat::kCsv;
  if (name == "jsonl") return TableFormat::kJsonl;
  return absl::InvalidArgumentError(
      absl::StrCat("--format must be csv or jsonl, got '", name, "'"));
}

TableFormat FormatForPath(absl::string_view path) {
  const size_t dot = path.rfind('.');
  const absl::string_view ext =
      dot == absl::string_view::npos ? "" : path.substr(dot);
  return ext == ".jsonl" || ext == ".json" ? TableFormat::kJsonl
                                           : TableFormat::kCsv;
}

std::vector<std::string> TableColumns(const std::vector<std::string>& swept,
                                      v1::Sweep::Command command) {
  std::vector<std::string> columns = {"point", "key", "status", "reason"};
  columns.insert(columns.end(), swept.begin(), swept.end());
  if (command == v1::Sweep::SERVE) {
    columns.insert(columns.end(), kServeResultColumns,
                   kServeResultColumns + kNumServeResultColumns);
  } else {
    columns.insert(columns.end(), kResultColumns,
                   kResultColumns + kNumResultColumns);
  }
  columns.push_back(kIdColumn);
  columns.push_back(kPointsColumn);
  return columns;
}

SweepIdentity IdentityOf(const scenario::SweepSpec& spec) {
  // FNV-1a (64 bit): stable across processes, builds and machines, which
  // std::hash and absl::Hash are not. Each field is length-prefixed, so
  // ("ab", "c") and ("a", "bc") differ.
  uint64_t hash = 0xcbf29ce484222325ull;
  auto add = [&hash](absl::string_view text) {
    const std::string field = absl::StrCat(text.size(), ":", text);
    for (unsigned char c : field) {
      hash ^= c;
      hash *= 0x100000001b3ull;
    }
  };
  add(spec.sweep.base_scenario());
  add(absl::StrJoin(spec.columns, ";"));
  // Only a SERVE sweep adds its command, so a RUN sweep keeps the id it had
  // before sweeps had commands (and its old tables still resume).
  if (spec.sweep.command() == v1::Sweep::SERVE) add("command=SERVE");
  for (const scenario::SweepPoint& p : spec.points) {
    add(absl::StrCat(p.index));
    add(absl::StrJoin(spec.Overrides(p), ";"));
    add(p.skip_reason);
  }
  SweepIdentity identity;
  identity.id = absl::StrFormat("fnv1a64:%016x", hash);
  identity.points = static_cast<int64_t>(spec.points.size());
  return identity;
}

namespace {

void AddIdentity(const SweepIdentity& sweep, Row* row) {
  row->push_back(Text(sweep.id));
  row->push_back(Int(sweep.points));
}

// The report's what_ran on one line; empty for a report without one.
template <typename Report>
Cell WhatRanCell(const Report& r) {
  return r.has_what_ran() ? Text(report::WhatRanLine(r.what_ran())) : Null();
}

Row Leading(const scenario::SweepPoint& point, const char* status,
            const std::string& reason) {
  Row row = {Int(point.index), Text(point.key), Text(status),
             reason.empty() ? Null() : Text(OneLine(reason))};
  for (const std::string& value : point.values) {
    row.push_back(
        Cell{IsJsonNumber(value) ? Cell::kNumber : Cell::kText, value});
  }
  return row;
}

}  // namespace

Row ResultRow(const SweepIdentity& sweep, const scenario::SweepPoint& point,
              const v1::RunReport& r, const std::string& interconnect) {
  Row row = Leading(point, "ok", "");
  // The GPU that decides whether the plan fits: the highest peak (the first
  // of equals, so the choice is the same every run).
  const v1::GpuRun* peak = nullptr;
  for (const v1::GpuRun& g : r.gpus()) {
    if (peak == nullptr ||
        g.peak_memory().total_bytes() > peak->peak_memory().total_bytes()) {
      peak = &g;
    }
  }
  const v1::GpuRun none;
  const v1::GpuRun& p = peak != nullptr ? *peak : none;
  const v1::MemoryBreakdown& m = p.peak_memory();
  const std::pair<const char*, int64_t> components[] = {
      {"weights", m.weights_bytes()},
      {"kv_cache", m.kv_cache_reserved_bytes()},
      {"activations", m.activation_peak_bytes()},
      {"comm_buffers", m.comm_buffer_bytes()},
      {"runtime_overhead", m.runtime_overhead_bytes()}};
  const auto* largest = &components[0];
  for (const auto& c : components) {
    if (c.second > largest->second) largest = &c;
  }
  // A latency of 0 has no samples (TPOT of one-token outputs): empty, as
  // the report's JSON has null.
  auto seconds = [](double x) { return x > 0 ? Real(x) : Null(); };
  const Row results = {
      Text(r.model()), Text(r.cluster()), Text(r.gpu()), Text(interconnect),
      Int(int64_t{r.tp()} * r.pp() * r.dp()), Int(r.tp()), Int(r.pp()),
      Int(r.dp()), Int(r.micro_batches()), Int(r.batch_size()),
      Int(r.prompt_len()), Int(r.output_len()), Bool(r.fits()),
      Int(m.total_bytes()), Int(p.gpu()), Text(largest->first),
      Int(largest->second), Int(p.capacity_bytes()), Int(m.weights_bytes()),
      Int(m.kv_cache_reserved_bytes()), Int(m.activation_peak_bytes()),
      Int(m.comm_buffer_bytes()), Int(m.runtime_overhead_bytes()),
      p.overflow_component().empty() ? Null() : Text(p.overflow_component()),
      Int(p.over_by_bytes()), seconds(r.ttft().mean_s()), seconds(r.ttft().p99_s()),
      seconds(r.tpot().mean_s()), seconds(r.tpot().p50_s()), seconds(r.tpot().p99_s()),
      Real(r.total_s()), Int(r.output_tokens()), Real(r.output_tokens_per_s()),
      Real(r.output_tokens_per_s_per_gpu()), Real(r.comm_overhead()),
      // 0 means the topology gives no GPU price: no cost rather than free.
      r.cost_per_million_output_tokens() > 0
          ? Real(r.cost_per_million_output_tokens())
          : Null(),
      WhatRanCell(r)};
  row.insert(row.end(), results.begin(), results.end());
  AddIdentity(sweep, &row);
  return row;
}

ServeRowContext ServeContextOf(const v1::Scenario& scenario,
                               std::string interconnect) {
  const v1::Serving& serving = scenario.serving();
  ServeRowContext context;
  context.interconnect = std::move(interconnect);
  context.slo = serving.slo();
  if (!serving.trace().file().empty()) {
    context.arrival = "TRACE";
    return context;
  }
  const v1::ArrivalProcess::Kind kind =
      serving.arrival().kind() == v1::ArrivalProcess::ARRIVAL_KIND_UNSPECIFIED
          ? v1::ArrivalProcess::POISSON  // serving.proto's default
          : serving.arrival().kind();
  context.arrival = v1::ArrivalProcess::Kind_Name(kind);
  if (kind != v1::ArrivalProcess::ALL_AT_ONCE) {
    context.rate_per_s = serving.arrival().rate_per_s();
  }
  return context;
}

Row ServeResultRow(const SweepIdentity& sweep,
                   const scenario::SweepPoint& point,
                   const v1::ServeReport& r, const ServeRowContext& context) {
  Row row = Leading(point, "ok", "");
  // The GPU with the highest peak (the first of equals).
  const v1::GpuServe* peak = nullptr;
  bool fits = true;
  for (const v1::GpuServe& g : r.gpus()) {
    if (peak == nullptr || g.peak_memory_bytes() > peak->peak_memory_bytes()) {
      peak = &g;
    }
    fits = fits && g.peak_memory_bytes() <= g.capacity_bytes();
  }
  // The GPUs that serve: one GpuServe each (with disaggregation pools,
  // every pool's; tp, pp and dp are then the first pool's).
  const int64_t gpus = r.gpus_size() > 0 ? int64_t{r.gpus_size()}
                                         : int64_t{r.tp()} * r.pp() * r.dp();
  // 0 is "none" for rates, ratios and targets: an empty cell, not a zero.
  auto positive = [](double x) { return x > 0 ? Exact(x) : Null(); };
  const Row results = {
      Text(r.model()), Text(r.cluster()), Text(r.gpu()),
      Text(context.interconnect), Int(gpus), Int(r.tp()), Int(r.pp()),
      Int(r.dp()), Text(scenario::DeploymentName(r)), Bool(fits), Int(r.max_num_seqs()),
      Int(r.max_num_batched_tokens()),
      Bool(r.chunked_prefill()), Int(r.block_size()), Text(r.router()),
      Text(context.arrival), positive(context.rate_per_s), Int(r.requests()),
      Int(r.completed()), Int(r.refused()), Exact(r.span_s()),
      Exact(r.requests_per_s()),
      gpus > 0 ? Exact(r.requests_per_s() / static_cast<double>(gpus))
               : Null(),
      Int(r.input_tokens()), Int(r.output_tokens()),
      Exact(r.input_tokens_per_s()), Exact(r.output_tokens_per_s()),
      Exact(r.output_tokens_per_s_per_gpu())};
  row.insert(row.end(), results.begin(), results.end());
  for (const v1::Distribution* d :
       {&r.ttft(), &r.tpot(), &r.itl(), &r.e2e(), &r.queue()}) {
    // A distribution with no samples (TPOT when every answer is one token)
    // has no statistics: empty cells rather than zeros.
    const bool any = d->count() > 0;
    for (double x : {d->mean_s(), d->p50_s(), d->p90_s(), d->p99_s(),
                     d->max_s()}) {
      row.push_back(any ? Exact(x) : Null());
    }
  }
  const Row rest = {
      positive(context.slo.ttft_s()), positive(context.slo.tpot_s()),
      positive(context.slo.e2e_s()), Int(r.slo_met()),
      Exact(r.slo_attainment()), Exact(r.goodput_requests_per_s()),
      Int(r.preemptions()), Int(r.kv_blocks_capacity()),
      Int(r.kv_blocks_peak()), Exact(r.kv_blocks_mean()),
      r.kv_blocks_capacity() > 0
          ? Exact(static_cast<double>(r.kv_blocks_peak()) /
                  static_cast<double>(r.kv_blocks_capacity()))
          : Null(),
      Int(r.steps()), Exact(r.batch_size_mean()), Int(r.batch_size_max()),
      Exact(r.tokens_per_step_mean()), Int(r.tokens_per_step_max()),
      Exact(r.comm_overhead()),
      peak != nullptr ? Int(peak->peak_memory_bytes()) : Null(),
      peak != nullptr ? Int(peak->capacity_bytes()) : Null(), WhatRanCell(r)};
  row.insert(row.end(), rest.begin(), rest.end());
  AddIdentity(sweep, &row);
  return row;
}

Row SkippedRow(const SweepIdentity& sweep, const scenario::SweepPoint& point,
               const std::string& reason, const char* status,
               v1::Sweep::Command command) {
  Row row = Leading(point, status, reason);
  row.resize(row.size() + (command == v1::Sweep::SERVE
                               ? kNumServeResultColumns
                               : kNumResultColumns));
  AddIdentity(sweep, &row);
  return row;
}

std::string FormatHeader(const std::vector<std::string>& columns,
                         TableFormat format) {
  if (format == TableFormat::kJsonl) return "";
  std::vector<std::string> fields;
  for (const std::string& c : columns) fields.push_back(CsvField(c));
  return absl::StrCat(absl::StrJoin(fields, ","), "\n");
}

std::string FormatRow(const std::vector<std::string>& columns, const Row& row,
                      TableFormat format) {
  std::string out;
  if (format == TableFormat::kCsv) {
    for (size_t i = 0; i < row.size(); ++i) {
      if (i > 0) out += ',';
      // A line break in a name (model, cluster) would split the row, and
      // rows are lines: resume and merge read them so.
      out += CsvField(OneLine(row[i].text));
    }
    out += '\n';
    return out;
  }
  out = "{";
  for (size_t i = 0; i < row.size(); ++i) {
    if (i > 0) out += ", ";
    out += JsonString(columns[i]);
    out += ": ";
    switch (row[i].kind) {
      case Cell::kNull:
        out += "null";
        break;
      case Cell::kText:
        out += JsonString(row[i].text);
        break;
      case Cell::kNumber:
      case Cell::kBool:
        out += row[i].text;
        break;
    }
  }
  out += "}\n";
  return out;
}

absl::StatusOr<std::unique_ptr<ResultsFile>> ResultsFile::Open(
    const std::string& path, TableFormat format,
    const std::vector<std::string>& columns, const SweepIdentity& sweep,
    const std::vector<const scenario::SweepPoint*>& points) {
  SHARDSIM_ASSIGN_OR_RETURN(const std::string target, FollowLinks(path));
  SHARDSIM_RETURN_IF_ERROR(CheckRegularOrMissing(target, path));
  // O_NOFOLLOW and O_NONBLOCK: if the path changed since the check, opening
  // a new link fails and a FIFO does not block; fstat() below refuses both.
  const int fd = ::open(
      target.c_str(),
      O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0644);
  if (fd < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": cannot open for writing: ", ErrnoText()));
  }
  std::unique_ptr<ResultsFile> file(new ResultsFile(target, format, fd));
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": is not a regular file; name a file to write the table to"));
  }
  // Two sweeps appending to one file would interleave their rows.
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, ": another shardsim sweep is writing this file"));
  }
  std::string text;
  SHARDSIM_RETURN_IF_ERROR(ReadFd(fd, path, &text));
  // Check everything before changing anything: a file that is refused is
  // left as it was. First, that the file is a table of ours at all, torn
  // first line included: without this a file with no newline would be taken
  // for one torn row and emptied.
  const std::string header = FormatHeader(columns, format);
  const absl::string_view start =
      format == TableFormat::kCsv ? absl::string_view(header) : kJsonRowStart;
  const size_t common = std::min(text.size(), start.size());
  if (!text.empty() &&
      absl::string_view(text).substr(0, common) != start.substr(0, common)) {
    const bool other_format =
        format == TableFormat::kCsv
            ? DetectFormat(text, format) == TableFormat::kJsonl
            : absl::StartsWith(text, "point,key,");
    if (other_format) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": holds ", format == TableFormat::kCsv ? "JSON Lines" : "CSV",
          " rows, but "
          "this sweep writes ",
          format == TableFormat::kCsv ? "CSV" : "JSON Lines",
          "; use another --out or --format"));
    }
    return absl::InvalidArgumentError(absl::StrCat(
        path, ":1: does not start with ",
        format == TableFormat::kCsv
            ? "this sweep's header (its columns are not this sweep's)"
            : "a sweep row",
        ": written by another sweep, or not a sweep table? use another --out"));
  }
  SHARDSIM_ASSIGN_OR_RETURN(Table table, ParseTable(path, text, format));
  if (format == TableFormat::kJsonl && !table.rows.empty() &&
      table.columns != columns) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ":1: its columns are not this sweep's (", table.columns.size(),
        " columns; this sweep has ", columns.size(),
        "): written by another sweep? use another --out"));
  }
  std::map<std::string, int64_t> wanted;
  for (const scenario::SweepPoint* p : points) wanted[p->key] = p->index;
  for (const Line& row : table.rows) {
    if (row.sweep_id != sweep.id) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ":", row.number, ": written by another sweep (sweep_id ",
          row.sweep_id, "; this sweep is ", sweep.id,
          "): was the sweep file changed? use another --out"));
    }
    auto it = wanted.find(row.key);
    if (it == wanted.end() || it->second != row.point) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ":", row.number, ": point ", row.point, " (", row.key,
          ") is not a point of this run: was --shard changed? use another "
          "--out"));
    }
    if (!file->rows_.emplace(row.key, row.point).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", row.number, ": point ", row.point, " (",
                       row.key, ") is in the file twice"));
    }
    if (row.point < file->last_point_) file->in_order_ = false;
    file->last_point_ = row.point;
  }
  // What is left after the last newline was being written when the sweep
  // was killed: part of a row, or (CSV) of the header.
  const size_t keep = table.whole_bytes;
  if (keep < text.size()) {
    if (::ftruncate(fd, static_cast<off_t>(keep)) != 0) {
      return absl::InternalError(absl::StrCat(
          path, ": cannot cut off the torn last line: ", ErrnoText()));
    }
  }
  if (keep == 0) SHARDSIM_RETURN_IF_ERROR(WriteAll(fd, header, path));
  return file;
}

ResultsFile::~ResultsFile() { ::close(fd_); }

absl::Status ResultsFile::Append(const scenario::SweepPoint& point,
                                 const std::string& line) {
  SHARDSIM_RETURN_IF_ERROR(WriteAll(fd_, line, path_));
  rows_.emplace(point.key, point.index);
  if (point.index < last_point_) in_order_ = false;
  last_point_ = point.index;
  return absl::OkStatus();
}

absl::Status ResultsFile::SortByPoint() {
  if (in_order_) return absl::OkStatus();
  std::string text;
  SHARDSIM_RETURN_IF_ERROR(ReadFd(fd_, path_, &text));
  SHARDSIM_ASSIGN_OR_RETURN(Table table, ParseTable(path_, text, format_));
  SHARDSIM_RETURN_IF_ERROR(
      ReplaceFile(path_, SortedContents(std::move(table))));
  in_order_ = true;
  return absl::OkStatus();
}

absl::StatusOr<MergeSummary> MergeResults(
    const std::vector<std::string>& inputs, const std::string& out) {
  SHARDSIM_ASSIGN_OR_RETURN(const std::string target, FollowLinks(out));
  SHARDSIM_RETURN_IF_ERROR(CheckRegularOrMissing(target, out));
  std::error_code ignored;
  for (const std::string& input : inputs) {
    if (fs::equivalent(input, target, ignored)) {
      return absl::InvalidArgumentError(absl::StrCat(
          out, ": is also an input; write the merge to a new file"));
    }
  }
  MergeSummary summary;
  Table merged;
  std::string first;  // the file the columns came from
  struct Source {
    std::string file;
    const Line* line;
  };
  std::vector<Table> tables;
  tables.reserve(inputs.size());
  std::map<std::string, Source> by_key;
  std::map<int64_t, Source> by_point;
  for (const std::string& input : inputs) {
    std::string text;
    SHARDSIM_RETURN_IF_ERROR(ReadFile(input, &text));
    SHARDSIM_ASSIGN_OR_RETURN(Table table,
                              ParseTable(input, text, TableFormat::kCsv));
    if (table.whole_bytes < text.size()) {
      summary.torn.push_back(absl::StrCat(input, ":", table.lines + 1));
    }
    if (table.columns.empty()) continue;  // an empty shard
    if (first.empty()) {
      first = input;
      merged.format = table.format;
      merged.header = table.header;
      merged.columns = table.columns;
      if (ColumnIndex(table.columns, kIdColumn) < 0 ||
          ColumnIndex(table.columns, kPointsColumn) < 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            input,
            ":1: has no sweep_id and sweep_points columns: written by "
            "an older shardsim? run its sweep again"));
      }
    } else if (table.format != merged.format ||
               table.columns != merged.columns) {
      return absl::InvalidArgumentError(
          absl::StrCat(input, ": its columns or format differ from ", first,
                       "'s: not shards of one sweep"));
    }
    tables.push_back(std::move(table));
    for (const Line& row : tables.back().rows) {
      const Line* head =
          by_point.empty() ? nullptr : by_point.begin()->second.line;
      if (head != nullptr && (row.sweep_id != head->sweep_id ||
                              row.sweep_points != head->sweep_points)) {
        return absl::InvalidArgumentError(absl::StrCat(
            input, ":", row.number, ": sweep_id ", row.sweep_id, " but ",
            by_point.begin()->second.file, ":", head->number, " has ",
            head->sweep_id, ": not shards of one sweep"));
      }
      if (row.sweep_points < 0 || row.point >= row.sweep_points) {
        return absl::InvalidArgumentError(absl::StrCat(
            input, ":", row.number, ": point ", row.point,
            " is not below sweep_points (", row.sweep_points, ")"));
      }
      auto [it, added] = by_key.emplace(row.key, Source{input, &row});
      if (!added && it->second.line->text != row.text) {
        return absl::InvalidArgumentError(
            absl::StrCat(input, ":", row.number, ": point ", row.point, " (",
                         row.key, ") differs from its row at ", it->second.file,
                         ":", it->second.line->number));
      }
      auto [at, fresh] = by_point.emplace(row.point, Source{input, &row});
      if (!fresh && at->second.line->key != row.key) {
        return absl::InvalidArgumentError(absl::StrCat(
            input, ":", row.number, ": point ", row.point, " is ", row.key,
            " here but ", at->second.line->key, " at ", at->second.file, ":",
            at->second.line->number, ": not shards of one sweep"));
      }
      if (added) merged.rows.push_back(row);
    }
  }
  if (first.empty() || merged.rows.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("nothing to merge: ", absl::StrJoin(inputs, ", "),
                     inputs.size() == 1 ? " holds" : " hold", " no rows"));
  }
  summary.points = merged.rows.front().sweep_points;
  for (int64_t p = 0; p < summary.points; ++p) {
    if (by_point.count(p) == 0) summary.missing.push_back(p);
  }
  summary.rows = static_cast<int64_t>(merged.rows.size());
  SHARDSIM_RETURN_IF_ERROR(
      ReplaceFile(target, SortedContents(std::move(merged))));
  return summary;
}

}  // namespace shardsim::sweep
