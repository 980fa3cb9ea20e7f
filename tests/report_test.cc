// sim/report in-process: trace slices that never overlap by rounding, op
// arguments in the trace, CSV quoting, and the JSON mapping's integers and
// unknown values.
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "sim/report/format.h"
#include "sim/report/trace.h"

namespace shardsim::report {
namespace {

// Writes `trace` to a temporary file named by this process and reads it
// back as JSON.
nlohmann::json WriteAndRead(const TraceWriter& trace, const std::string& name) {
  const std::string path =
      absl::StrCat(::testing::TempDir(), "/shardsim_", name, "_", getpid(), ".json");
  EXPECT_TRUE(trace.Write(path).ok());
  std::ifstream in(path);
  nlohmann::json json = nlohmann::json::parse(in);
  std::filesystem::remove(path);
  return json;
}

// A trace time ("12.345" microseconds) in whole nanoseconds.
int64_t Nanos(const nlohmann::json& micros) {
  return std::llround(micros.get<double>() * 1000);
}

// Back-to-back slices whose starts and durations fall between nanoseconds:
// each ends exactly where the next starts. Rounding ts and dur apart (the
// old writer) made 0.6 ns + 0.6 ns print as 1 + 1 = 2 ns against a next
// start of 1 ns.
TEST(Trace, BackToBackSlicesNeverOverlapByRounding) {
  TraceWriter trace;
  double at = 0.6e-9;
  uint64_t state = 12345;  // a fixed linear congruential sequence
  for (int i = 0; i < 1000; ++i) {
    state = state * 6364136223846793005u + 1442695040888963407u;
    const double duration = static_cast<double>(state >> 11) / static_cast<double>(1ull << 53) *
                            3e-9;  // [0, 3 ns)
    trace.Slice(0, TraceWriter::kCompute, absl::StrCat("op", i), at, duration);
    at += duration;
  }
  const nlohmann::json json = WriteAndRead(trace, "trace_rounding");
  const nlohmann::json& events = json.at("traceEvents");
  ASSERT_EQ(events.size(), 1000u);
  for (size_t i = 1; i < events.size(); ++i) {
    const int64_t end = Nanos(events[i - 1].at("ts")) + Nanos(events[i - 1].at("dur"));
    EXPECT_EQ(end, Nanos(events[i].at("ts"))) << i;
    EXPECT_GE(Nanos(events[i].at("dur")), 0) << i;
  }
}

TEST(Trace, SliceArgsAreNumbers) {
  TraceWriter trace;
  trace.Slice(3, TraceWriter::kCompute, "L0 qkv_proj", 1e-3, 2e-6,
              {{"flops", 1.5e12}, {"bytes", 123456789.0}});
  trace.Slice(3, TraceWriter::kComm, "L0 all_reduce", 1.002e-3, 1e-6);
  const nlohmann::json json = WriteAndRead(trace, "trace_args");
  const nlohmann::json& op = json.at("traceEvents").at(0);
  EXPECT_EQ(op.at("ts").get<double>(), 1000.0);
  EXPECT_EQ(op.at("dur").get<double>(), 2.0);
  EXPECT_EQ(op.at("args").at("flops").get<double>(), 1.5e12);
  EXPECT_EQ(op.at("args").at("bytes").get<double>(), 123456789.0);
  EXPECT_FALSE(json.at("traceEvents").at(1).contains("args"));
}

TEST(Csv, FieldsAreQuotedWhereNeeded) {
  EXPECT_EQ(CsvField("plain"), "plain");
  EXPECT_EQ(CsvField("a,b"), "\"a,b\"");
  EXPECT_EQ(CsvField("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(CsvField("two\nlines"), "\"two\nlines\"");
  EXPECT_EQ(CsvField(""), "");
}

TEST(Csv, RunRowQuotesNamesAndLeavesAnUnknownCostEmpty) {
  v1::RunReport r;
  r.set_scenario("tp8, \"fast\"");
  r.set_model("llama");
  r.set_gpu("H100");
  const std::string csv = RunCsv(r);
  const std::string row = csv.substr(csv.find('\n') + 1);
  EXPECT_EQ(row.rfind("\"tp8, \"\"fast\"\"\",llama,H100,", 0), 0u) << row;
  EXPECT_EQ(row.substr(row.size() - 2), ",\n") << row;  // the cost: empty
  r.set_cost_per_million_output_tokens(0.5);
  EXPECT_NE(RunCsv(r).find(",0.5\n"), std::string::npos);
}

// 64-bit integers print as numbers, found by the descriptor (a string that
// looks like a number stays a string); a zero cost and the overflowing
// component of a GPU that fits are null; the rest is protobuf's mapping
// byte for byte.
TEST(Json, IntegersAreNumbersAndUnknownValuesAreNull) {
  v1::RunReport r;
  r.set_scenario("1234");
  r.set_batch_size(64);
  r.set_output_tokens(int64_t{1} << 40);
  r.set_tp(8);
  r.add_notes("\"quoted\", and {braces} [brackets]: 99");
  v1::GpuRun* gpu = r.add_gpus();
  gpu->mutable_peak_memory()->set_weights_bytes(-5);
  gpu->set_overflow_component("42");
  r.add_gpus();  // fits: no overflow component
  absl::StatusOr<std::string> json = ToJson(r);
  ASSERT_TRUE(json.ok());
  const nlohmann::json parsed = nlohmann::json::parse(*json);
  EXPECT_EQ(parsed.at("scenario"), "1234");
  EXPECT_EQ(parsed.at("batch_size"), 64);
  EXPECT_EQ(parsed.at("output_tokens"), int64_t{1} << 40);
  EXPECT_EQ(parsed.at("tp"), 8);
  EXPECT_EQ(parsed.at("notes").at(0), "\"quoted\", and {braces} [brackets]: 99");
  EXPECT_EQ(parsed.at("gpus").at(0).at("peak_memory").at("weights_bytes"), -5);
  EXPECT_EQ(parsed.at("gpus").at(0).at("overflow_component"), "42");
  EXPECT_TRUE(parsed.at("gpus").at(1).at("overflow_component").is_null());
  EXPECT_TRUE(parsed.at("cost_per_million_output_tokens").is_null());
  EXPECT_NE(json->find("\n \"batch_size\": 64,\n"), std::string::npos) << *json;
  r.set_cost_per_million_output_tokens(1.25);
  EXPECT_EQ(nlohmann::json::parse(*ToJson(r)).at("cost_per_million_output_tokens"), 1.25);
}

// A run with one output token has no time per output token: unknown (null
// in JSON, empty in CSV), never 0. Before, JSON and CSV said 0.
TEST(Unknown, TimePerOutputTokenOfOneTokenOutputs) {
  v1::RunReport r;
  r.set_output_len(1);
  r.mutable_ttft()->set_mean_s(0.25);
  r.mutable_ttft()->set_p50_s(0.25);
  r.mutable_ttft()->set_p99_s(0.25);
  r.mutable_tpot();  // present, as the run's report has it, with no samples
  const nlohmann::json parsed = nlohmann::json::parse(*ToJson(r));
  EXPECT_EQ(parsed.at("ttft").at("mean_s"), 0.25);
  for (const char* field : {"mean_s", "p50_s", "p99_s"}) {
    EXPECT_TRUE(parsed.at("tpot").at(field).is_null()) << field << ": " << parsed.dump();
  }
  const std::string csv = RunCsv(r);
  EXPECT_NE(csv.find(",0.25,,,,"), std::string::npos) << csv;
  EXPECT_NE(RunText(r).find("time per output token   n/a"), std::string::npos);
}

// A serving distribution with no samples (every answer one token: no TPOT)
// is null in JSON and "-" in text; with samples a 0 stays a 0 (a request
// scheduled on arrival queued for 0 s).
TEST(Unknown, ADistributionWithoutSamples) {
  v1::ServeReport r;
  r.mutable_ttft()->set_count(3);
  r.mutable_ttft()->set_mean_s(0.5);
  r.mutable_queue()->set_count(3);  // every one scheduled at once: zeros
  r.mutable_tpot();                  // present, with no samples
  const nlohmann::json parsed = nlohmann::json::parse(*ToJson(r));
  EXPECT_EQ(parsed.at("tpot").at("count"), 0);
  for (const char* field : {"mean_s", "p50_s", "p90_s", "p99_s", "max_s"}) {
    EXPECT_TRUE(parsed.at("tpot").at(field).is_null()) << field;
    EXPECT_TRUE(parsed.at("queue").at(field).is_number()) << field;
    EXPECT_EQ(parsed.at("queue").at(field), 0.0) << field;
  }
  EXPECT_EQ(parsed.at("ttft").at("mean_s"), 0.5);
  const std::string text = ServeText(r);
  EXPECT_NE(text.find("\nTPOT               -           -           -           -           -\n"),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find("\nqueue              -"), std::string::npos) << text;
}

}  // namespace
}  // namespace shardsim::report
