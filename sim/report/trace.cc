#include "sim/report/trace.h"

#include <cmath>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace shardsim::report {

std::string Quote(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out + "\"";
}

namespace {

// Trace timestamps are microseconds; three decimals keep nanoseconds. Times
// are rounded to whole nanoseconds first and printed from the integer, so a
// start and an end rounded alike differ by exactly the printed duration.
int64_t Nanos(double seconds) { return std::llround(seconds * 1e9); }

std::string Micros(int64_t nanos) {
  const char* sign = nanos < 0 ? "-" : "";
  const int64_t magnitude = nanos < 0 ? -nanos : nanos;
  return absl::StrFormat("%s%d.%03d", sign, magnitude / 1000, magnitude % 1000);
}

std::string Micros(double seconds) { return Micros(Nanos(seconds)); }

// Whole microseconds, for the generic events.
int64_t WholeMicros(double seconds) { return std::llround(seconds * 1e6); }

std::string ArgsJson(const TraceWriter::Args& args) {
  std::string out = "{";
  for (size_t i = 0; i < args.size(); ++i) {
    if (i > 0) out += ",";
    out += Quote(args[i].first) + ":" + args[i].second;
  }
  return out + "}";
}

}  // namespace

void TraceWriter::NameGpu(int gpu, const std::string& name) {
  Add(absl::StrFormat(
      R"({"ph":"M","pid":%d,"name":"process_name","args":{"name":%s}})", gpu,
      Quote(name)));
  Add(absl::StrFormat(
      R"({"ph":"M","pid":%d,"tid":0,"name":"thread_name","args":{"name":"compute"}})",
      gpu));
  Add(absl::StrFormat(
      R"({"ph":"M","pid":%d,"tid":1,"name":"thread_name","args":{"name":"communication"}})",
      gpu));
}

void TraceWriter::Slice(int gpu, Track track, const std::string& name,
                        double start_s, double duration_s, const std::vector<Arg>& args) {
  // Rounding start and duration apart could put a slice's rounded end past
  // the next slice's rounded start; rounding start and end cannot.
  const int64_t start_ns = Nanos(start_s);
  const int64_t end_ns = Nanos(start_s + duration_s);
  std::string event = absl::StrFormat(
      R"({"ph":"X","pid":%d,"tid":%d,"name":%s,"ts":%s,"dur":%s)", gpu,
      static_cast<int>(track), Quote(name), Micros(start_ns), Micros(end_ns - start_ns));
  if (!args.empty()) {
    std::vector<std::string> fields;
    for (const auto& [key, value] : args) {
      // %.17g: the value exactly (FLOPs and bytes are whole numbers that
      // can pass 2^53 only in the last digits).
      fields.push_back(absl::StrFormat("%s:%.17g", Quote(key), value));
    }
    absl::StrAppend(&event, R"(,"args":{)", absl::StrJoin(fields, ","), "}");
  }
  Add(event + "}");
}

void TraceWriter::Memory(int gpu, double time_s, int64_t bytes) {
  Add(absl::StrFormat(
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

namespace shardsim::report {

void TraceWriter::Add(std::string event) {
  if (!stream_.is_open()) {
    events_.push_back(std::move(event));
    return;
  }
  if (!first_streamed_) stream_ << ",\n";
  first_streamed_ = false;
  stream_ << event;
}

absl::Status TraceWriter::Open(const std::string& path) {
  stream_.open(path, std::ios::binary | std::ios::trunc);
  if (!stream_) {
    return absl::UnavailableError(absl::StrCat(path, ": cannot write the trace"));
  }
  stream_path_ = path;
  first_streamed_ = true;
  stream_ << "{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n";
  for (std::string& event : events_) Add(std::move(event));
  events_.clear();
  return absl::OkStatus();
}

absl::Status TraceWriter::Close() {
  if (!stream_.is_open()) return absl::OkStatus();
  stream_ << "\n]}\n";
  stream_.close();
  if (!stream_) return absl::UnavailableError(absl::StrCat(stream_path_, ": write failed"));
  return absl::OkStatus();
}

void TraceWriter::NameProcess(int pid, const std::string& name) {
  Add(absl::StrFormat(R"({"ph":"M","pid":%d,"name":"process_name","args":{"name":%s}})", pid,
                      Quote(name)));
}

void TraceWriter::NameThread(int pid, int tid, const std::string& name) {
  Add(absl::StrFormat(R"({"ph":"M","pid":%d,"tid":%d,"name":"thread_name","args":{"name":%s}})",
                      pid, tid, Quote(name)));
}

void TraceWriter::Span(int pid, int tid, const std::string& name, double start_s, double end_s,
                       const Args& args) {
  const int64_t start = WholeMicros(start_s);
  Add(absl::StrFormat(R"({"ph":"X","pid":%d,"tid":%d,"name":%s,"ts":%d,"dur":%d,"args":%s})", pid,
                      tid, Quote(name), start, WholeMicros(end_s) - start, ArgsJson(args)));
}

void TraceWriter::AsyncBegin(int pid, const std::string& category, int64_t id,
                             const std::string& name, double time_s, const Args& args) {
  Add(absl::StrFormat(
      R"({"ph":"b","pid":%d,"tid":0,"cat":%s,"id":%d,"name":%s,"ts":%d,"args":%s})", pid,
      Quote(category), id, Quote(name), WholeMicros(time_s), ArgsJson(args)));
}

void TraceWriter::AsyncEnd(int pid, const std::string& category, int64_t id,
                           const std::string& name, double time_s) {
  Add(absl::StrFormat(R"({"ph":"e","pid":%d,"tid":0,"cat":%s,"id":%d,"name":%s,"ts":%d})", pid,
                      Quote(category), id, Quote(name), WholeMicros(time_s)));
}

void TraceWriter::AsyncInstant(int pid, const std::string& category, int64_t id,
                               const std::string& name, double time_s) {
  Add(absl::StrFormat(R"({"ph":"n","pid":%d,"tid":0,"cat":%s,"id":%d,"name":%s,"ts":%d})", pid,
                      Quote(category), id, Quote(name), WholeMicros(time_s)));
}

void TraceWriter::Counter(int pid, const std::string& name, double time_s, const Args& args) {
  Add(absl::StrFormat(R"({"ph":"C","pid":%d,"name":%s,"ts":%d,"args":%s})", pid, Quote(name),
                      WholeMicros(time_s), ArgsJson(args)));
}

}  // namespace shardsim::report
