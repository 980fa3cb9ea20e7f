#include "sim/report/trace.h"

#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace shardsim::report {
namespace {

std::string Quote(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out + "\"";
}

// Trace timestamps are microseconds; three decimals keep nanoseconds.
std::string Micros(double seconds) { return absl::StrFormat("%.3f", seconds * 1e6); }

}  // namespace

void TraceWriter::NameGpu(int gpu, const std::string& name) {
  events_.push_back(absl::StrFormat(
      R"({"ph":"M","pid":%d,"name":"process_name","args":{"name":%s}})", gpu,
      Quote(name)));
  events_.push_back(absl::StrFormat(
      R"({"ph":"M","pid":%d,"tid":0,"name":"thread_name","args":{"name":"compute"}})",
      gpu));
  events_.push_back(absl::StrFormat(
      R"({"ph":"M","pid":%d,"tid":1,"name":"thread_name","args":{"name":"communication"}})",
      gpu));
}

void TraceWriter::Slice(int gpu, Track track, const std::string& name,
                        double start_s, double duration_s) {
  events_.push_back(absl::StrFormat(
      R"({"ph":"X","pid":%d,"tid":%d,"name":%s,"ts":%s,"dur":%s})", gpu,
      static_cast<int>(track), Quote(name), Micros(start_s), Micros(duration_s)));
}

void TraceWriter::Memory(int gpu, double time_s, int64_t bytes) {
  events_.push_back(absl::StrFormat(
      R"({"ph":"C","pid":%d,"name":"memory","ts":%s,"args":{"bytes":%d}})", gpu,
      Micros(time_s), bytes));
}

absl::Status TraceWriter::Write(const std::string& path) const {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) {
    return absl::UnavailableError(absl::StrCat(path, ": cannot write the trace"));
  }
  out << "{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n"
      << absl::StrJoin(events_, ",\n") << "\n]}\n";
  out.close();
  if (!out) return absl::UnavailableError(absl::StrCat(path, ": write failed"));
  return absl::OkStatus();
}

}  // namespace shardsim::report
