// Sweeps of `shardsim serve` points (`command: SERVE`): the sweep file's
// checks, the serve row, and `shardsim sweep` / `merge` as a user runs them,
// against `shardsim serve` of each point; and the shipped serve sweeps
// (scenarios/sweep_serve_*), run whole. Points serve few requests, so the
// file takes seconds.
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "sim/scenario/sweep_spec.h"
#include "sim/sweep/results.h"
#include "sim/sweep/runner.h"
#include "tests/csv_cells.h"
#include "tests/run_shardsim.h"
#include "tests/test_util.h"

namespace shardsim {
namespace {

namespace fs = std::filesystem;
using ::shardsim::testing::CsvCells;
using ::shardsim::testing::Result;
using ::shardsim::testing::RunShardsim;
using ::shardsim::testing::SweepTable;

using ::shardsim::testing::Lines;
using ::shardsim::testing::ReadFile;
using ::shardsim::testing::Repo;
using ::shardsim::testing::TempDir;
using ::shardsim::testing::WriteFile;

// A CSV table as one map per row, column -> cell.
std::vector<std::map<std::string, std::string>> Rows(const std::string& csv) {
  const std::vector<std::string> lines = Lines(csv);
  std::vector<std::map<std::string, std::string>> rows;
  if (lines.empty()) return rows;
  const std::vector<std::string> header = CsvCells(lines[0]);
  for (size_t i = 1; i < lines.size(); ++i) {
    const std::vector<std::string> cells = CsvCells(lines[i]);
    EXPECT_EQ(cells.size(), header.size()) << lines[i];
    std::map<std::string, std::string> row;
    for (size_t c = 0; c < header.size() && c < cells.size(); ++c) {
      row[header[c]] = cells[c];
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

double Number(const std::string& text) {
  double x = 0;
  EXPECT_TRUE(absl::SimpleAtod(text, &x)) << "'" << text << "'";
  return x;
}

// The serve scenario with few requests, two plans and two rates, and
// tp=3, which does not divide Llama-3-70B's 64 heads.
std::string SmallServeSweep() {
  return absl::StrCat(
      "name: \"small_serve\"\n"
      "command: SERVE\n"
      "base_scenario: \"",
      Repo("scenarios/serve_llama3_70b_h100_tp8.textproto"),
      "\"\n"
      "set: \"serving.num_requests=12\"\n"
      "zipped {\n"
      "  axes { path: \"parallelism.tp\" values: [\"8\", \"4\", \"3\"] }\n"
      "  axes { path: \"parallelism.dp\" values: [\"1\", \"2\", \"1\"] }\n"
      "}\n"
      "axes { path: \"serving.arrival.rate_per_s\" values: [\"2\", \"50\"] "
      "}\n");
}

// ---- The sweep file ---------------------------------------------------------

TEST(ServeSweepSpec, ASweepSaysItsPointsServe) {
  TempDir dir("serve_sweep");
  WriteFile(dir / "s.textproto", SmallServeSweep());
  absl::StatusOr<scenario::SweepSpec> spec =
      scenario::LoadSweep(dir / "s.textproto");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->sweep.command(), v1::Sweep::SERVE);
  EXPECT_EQ(spec->points.size(), 6u);
  const Result r = RunShardsim(absl::StrCat("validate ", dir / "s.textproto"));
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "sweep small_serve: 6 serve points"))
      << r.out;
}

TEST(ServeSweepSpec, AServeSweepOfAScenarioWithoutServingIsOneError) {
  TempDir dir("serve_sweep");
  WriteFile(dir / "s.textproto",
            absl::StrCat("base_scenario: \"",
                         Repo("scenarios/default.textproto"),
                         "\"\n"
                         "command: SERVE\n"
                         "axes { path: \"parallelism.tp\" values: [\"8\"] }\n"));
  absl::StatusOr<scenario::SweepSpec> spec =
      scenario::LoadSweep(dir / "s.textproto");
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.status().message(),
            absl::StrCat(dir / "s.textproto", ":2:1: command: SERVE, but ",
                         Repo("scenarios/default.textproto"),
                         " has no serving block to run"));
}

TEST(ServeSweepSpec, ABadServingFieldOnEveryPointIsOneError) {
  TempDir dir("serve_sweep");
  WriteFile(dir / "s.textproto",
            absl::StrCat(
                "base_scenario: \"",
                Repo("scenarios/serve_llama3_70b_h100_tp8.textproto"),
                "\"\n"
                "command: SERVE\n"
                "set: \"serving.scheduler.gpu_memory_utilization=2\"\n"
                "axes { path: \"parallelism.tp\" values: [\"8\"] }\n"));
  absl::StatusOr<scenario::SweepSpec> spec =
      scenario::LoadSweep(dir / "s.textproto");
  ASSERT_FALSE(spec.ok());
  EXPECT_TRUE(absl::StartsWith(spec.status().message(),
                               absl::StrCat(dir / "s.textproto",
                                            ":1:1: base_scenario: ")))
      << spec.status();
  EXPECT_TRUE(absl::StrContains(spec.status().message(),
                                "serving.scheduler.gpu_memory_utilization"))
      << spec.status();
}

// The command is part of a serve sweep's identity, and only of a serve
// sweep's: a run sweep keeps the id it had before sweeps had commands.
TEST(ServeSweepSpec, TheCommandIsPartOfAServeSweepsIdentity) {
  TempDir dir("serve_sweep");
  const std::string axes =
      absl::StrCat("base_scenario: \"",
                   Repo("scenarios/serve_llama3_70b_h100_tp8.textproto"),
                   "\"\naxes { path: \"parallelism.tp\" values: [\"8\"] }\n");
  WriteFile(dir / "run.textproto", axes);
  WriteFile(dir / "explicit_run.textproto", axes + "command: RUN\n");
  WriteFile(dir / "serve.textproto", axes + "command: SERVE\n");
  absl::StatusOr<scenario::SweepSpec> run =
      scenario::LoadSweep(dir / "run.textproto");
  absl::StatusOr<scenario::SweepSpec> explicit_run =
      scenario::LoadSweep(dir / "explicit_run.textproto");
  absl::StatusOr<scenario::SweepSpec> serve =
      scenario::LoadSweep(dir / "serve.textproto");
  ASSERT_TRUE(run.ok() && explicit_run.ok() && serve.ok());
  EXPECT_EQ(sweep::IdentityOf(*run).id, sweep::IdentityOf(*explicit_run).id);
  EXPECT_NE(sweep::IdentityOf(*run).id, sweep::IdentityOf(*serve).id);
}

// ---- The serve row ----------------------------------------------------------

TEST(ServeRow, EveryColumnFromTheReportAndTheScenario) {
  scenario::SweepPoint point;
  point.index = 3;
  point.key = "serving.arrival.rate_per_s=2.5";
  point.values = {"2.5"};
  v1::ServeReport r;
  r.set_model("M");
  r.set_cluster("C");
  r.set_gpu("G");
  r.set_tp(4);
  r.set_pp(1);
  r.set_dp(2);
  r.set_max_num_seqs(256);
  r.set_max_num_batched_tokens(8192);
  r.set_chunked_prefill(true);
  r.set_block_size(16);
  r.set_router("round_robin");
  r.set_requests(10);
  r.set_completed(9);
  r.set_refused(1);
  r.set_span_s(4.0);
  r.set_requests_per_s(2.25);
  r.set_output_tokens_per_s(0.1);  // not a short binary fraction
  r.mutable_ttft()->set_count(9);
  r.mutable_ttft()->set_mean_s(0.125);
  r.mutable_ttft()->set_p50_s(0.1);
  r.mutable_ttft()->set_p90_s(0.2);
  r.mutable_ttft()->set_p99_s(1.0 / 3);
  r.mutable_ttft()->set_max_s(0.5);
  r.set_kv_blocks_capacity(400);
  r.set_kv_blocks_peak(100);
  r.set_slo_attainment(0.5);
  v1::GpuServe* low = r.add_gpus();
  low->set_peak_memory_bytes(10);
  low->set_capacity_bytes(80);
  v1::GpuServe* high = r.add_gpus();
  high->set_peak_memory_bytes(70);
  high->set_capacity_bytes(81);

  v1::Scenario scenario;
  scenario.mutable_serving()->mutable_arrival()->set_rate_per_s(2.5);
  scenario.mutable_serving()->mutable_slo()->set_ttft_s(1);
  sweep::ServeRowContext context =
      sweep::ServeContextOf(scenario, "nvlink");
  EXPECT_EQ(context.arrival, "POISSON");  // serving.proto's default
  EXPECT_EQ(context.rate_per_s, 2.5);

  const std::vector<std::string> columns =
      sweep::TableColumns({"serving.arrival.rate_per_s"}, v1::Sweep::SERVE);
  const sweep::SweepIdentity identity{"fnv1a64:00000000000000aa", 4};
  const sweep::Row row = sweep::ServeResultRow(identity, point, r, context);
  ASSERT_EQ(row.size(), columns.size());
  std::map<std::string, std::string> cells;
  for (size_t i = 0; i < columns.size(); ++i) cells[columns[i]] = row[i].text;
  EXPECT_EQ(cells["status"], "ok");
  EXPECT_EQ(cells["interconnect"], "nvlink");
  EXPECT_EQ(cells["num_gpus"], "2");  // the GPUs that serve
  EXPECT_EQ(cells["fits"], "true");
  EXPECT_EQ(cells["chunked_prefill"], "true");
  EXPECT_EQ(cells["arrival"], "POISSON");
  EXPECT_EQ(cells["rate_per_s"], "2.5");
  EXPECT_EQ(cells["requests_per_s"], "2.25");
  EXPECT_EQ(cells["requests_per_s_per_gpu"], "1.125");  // 2.25 / 2
  // Shortest text that reads back as the same double.
  EXPECT_EQ(cells["output_tokens_per_s"], "0.1");
  EXPECT_EQ(cells["ttft_p99_s"], "0.3333333333333333");
  EXPECT_EQ(Number(cells["ttft_p99_s"]), 1.0 / 3);
  EXPECT_EQ(cells["ttft_max_s"], "0.5");
  // No samples: no statistics, rather than zeros.
  EXPECT_EQ(cells["tpot_p50_s"], "");
  EXPECT_EQ(cells["slo_ttft_s"], "1");
  EXPECT_EQ(cells["slo_tpot_s"], "");
  EXPECT_EQ(cells["slo_attainment"], "0.5");
  EXPECT_EQ(cells["kv_peak_fraction"], "0.25");
  EXPECT_EQ(cells["peak_memory_bytes"], "70");
  EXPECT_EQ(cells["capacity_bytes"], "81");
  EXPECT_EQ(cells["sweep_points"], "4");
  EXPECT_EQ(cells["deployment"], "tp4x2");  // no pools: the one plan

  // A trace has no rate setting; all at once has none either.
  scenario.mutable_serving()->mutable_trace()->set_file("t.csv");
  context = sweep::ServeContextOf(scenario, "nvlink");
  EXPECT_EQ(context.arrival, "TRACE");
  EXPECT_EQ(context.rate_per_s, 0);
  scenario.mutable_serving()->clear_trace();
  scenario.mutable_serving()->mutable_arrival()->set_kind(
      v1::ArrivalProcess::ALL_AT_ONCE);
  context = sweep::ServeContextOf(scenario, "nvlink");
  EXPECT_EQ(context.arrival, "ALL_AT_ONCE");
  EXPECT_EQ(context.rate_per_s, 0);
  const sweep::Row offline = sweep::ServeResultRow(identity, point, r, context);
  for (size_t i = 0; i < columns.size(); ++i) {
    if (columns[i] == "rate_per_s") {
      EXPECT_EQ(offline[i].kind, sweep::Cell::kNull);
    }
  }

  const sweep::Row skipped = sweep::SkippedRow(identity, point, "no", "skipped",
                                               v1::Sweep::SERVE);
  EXPECT_EQ(skipped.size(), columns.size());
}

// ---- The runner with workers of its own ------------------------------------

absl::StatusOr<scenario::SweepSpec> SmallServeSpec(const TempDir& dir) {
  WriteFile(dir / "s.textproto", SmallServeSweep());
  return scenario::LoadSweep(dir / "s.textproto");
}

// A ServeReport whose throughput is the point's rate (the last override).
absl::StatusOr<v1::PointResult> ServeWorker(
    const std::string&, const std::vector<std::string>& overrides) {
  const std::string& last = overrides.back();
  v1::PointResult result;
  result.mutable_serve()->set_requests_per_s(
      std::stod(last.substr(last.find('=') + 1)));
  return result;
}

// A RunReport where a ServeReport belongs.
absl::StatusOr<v1::PointResult> RunWorker(const std::string&,
                                          const std::vector<std::string>&) {
  v1::PointResult result;
  result.mutable_report()->set_output_tokens_per_s(1);
  return result;
}

absl::StatusOr<v1::PointResult> HangingWorker(const std::string&,
                                              const std::vector<std::string>&) {
  for (;;) pause();
}

TEST(ServeRunner, ARunReportIsNoServeRowAndTimeoutsAreServeRows) {
  TempDir dir("serve_sweep");
  absl::StatusOr<scenario::SweepSpec> spec = SmallServeSpec(dir);
  ASSERT_TRUE(spec.ok()) << spec.status();
  const std::vector<std::string> columns =
      sweep::TableColumns(spec->columns, v1::Sweep::SERVE);
  sweep::SweepOptions options;
  options.out_path = dir / "r.csv";
  options.jobs = 2;
  // A worker that sends the wrong report writes no row: a re-run retries.
  options.run_point = RunWorker;
  absl::StatusOr<sweep::SweepSummary> summary = sweep::RunSweep(*spec, options);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->failed, 6);
  EXPECT_EQ(summary->first_failure,
            "point 0 (parallelism.tp=8;parallelism.dp=1;"
            "serving.arrival.rate_per_s=2): unreadable result");
  EXPECT_EQ(ReadFile(dir / "r.csv"),
            sweep::FormatHeader(columns, sweep::TableFormat::kCsv));

  options.run_point = ServeWorker;
  summary = sweep::RunSweep(*spec, options);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->ok, 6);
  const auto rows = Rows(ReadFile(dir / "r.csv"));
  ASSERT_EQ(rows.size(), 6u);
  for (const auto& row : rows) {
    EXPECT_EQ(row.at("requests_per_s"), row.at("serving.arrival.rate_per_s"));
    EXPECT_EQ(row.at("rate_per_s"), row.at("serving.arrival.rate_per_s"));
    EXPECT_EQ(row.at("slo_tpot_s"), "0.05");  // from the base scenario
  }

  // Every point hangs, so every point times out however slow the machine.
  options.run_point = HangingWorker;
  options.out_path = dir / "t.csv";
  options.timeout_s = 0.05;
  summary = sweep::RunSweep(*spec, options);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->timed_out, 6);
  for (const auto& row : Rows(ReadFile(dir / "t.csv"))) {
    EXPECT_EQ(row.at("status"), "timeout");
    EXPECT_EQ(row.at("ttft_p99_s"), "");
    EXPECT_EQ(row.at("sweep_points"), "6");
  }
}

// ---- shardsim sweep of serve points ----------------------------------------

// The numbers of `shardsim serve` JSON under a row's column name.
std::map<std::string, double> ServeNumbers(const nlohmann::json& j) {
  auto number = [](const nlohmann::json& v) {
    // Protobuf's JSON writes 64-bit integers as strings.
    return v.is_string() ? Number(v.get<std::string>()) : v.get<double>();
  };
  std::map<std::string, double> out;
  for (const char* field :
       {"requests", "completed", "refused", "span_s", "requests_per_s",
        "input_tokens", "output_tokens", "input_tokens_per_s",
        "output_tokens_per_s", "output_tokens_per_s_per_gpu", "slo_met",
        "slo_attainment", "goodput_requests_per_s", "preemptions",
        "kv_blocks_capacity", "kv_blocks_peak", "kv_blocks_mean", "steps",
        "batch_size_mean", "batch_size_max", "tokens_per_step_mean",
        "tokens_per_step_max", "comm_overhead", "tp", "pp", "dp"}) {
    out[field] = j.contains(field) ? number(j.at(field)) : 0.0;
  }
  for (const char* d : {"ttft", "tpot", "itl", "e2e", "queue"}) {
    for (const char* stat : {"mean_s", "p50_s", "p90_s", "p99_s", "max_s"}) {
      const std::string column = absl::StrCat(d, "_", stat);
      out[column] = j.at(d).contains(stat) ? number(j.at(d).at(stat)) : 0.0;
    }
  }
  return out;
}

// Each row that ran holds exactly what `shardsim serve` of its point prints,
// as CSV and as JSON Lines; the invalid point is a skipped row with the
// error `serve` gives.
TEST(ServeSweepCli, RowsCarryTheNumbersOfServeForThatPoint) {
  TempDir dir("serve_sweep");
  const std::string csv =
      SweepTable(dir, SmallServeSweep(), "r.csv", "--jobs=2");
  const std::vector<std::map<std::string, std::string>> rows = Rows(csv);
  ASSERT_EQ(rows.size(), 6u);
  const std::string jsonl =
      SweepTable(dir, SmallServeSweep(), "r.jsonl", "--jobs=2");
  const std::vector<std::string> json_rows = Lines(jsonl);
  ASSERT_EQ(json_rows.size(), 6u);
  int ok = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& row = rows[i];
    const nlohmann::json json_row = nlohmann::json::parse(json_rows[i]);
    const std::string base =
        absl::StrCat("serve ", Repo("scenarios/serve_llama3_70b_h100_tp8.textproto"),
                     " --set serving.num_requests=12 --set parallelism.tp=",
                     row.at("parallelism.tp"), " --set parallelism.dp=",
                     row.at("parallelism.dp"),
                     " --set serving.arrival.rate_per_s=",
                     row.at("serving.arrival.rate_per_s"));
    const Result serve = RunShardsim(base + " --format=json");
    if (row.at("parallelism.tp") == "3") {
      EXPECT_EQ(row.at("status"), "skipped");
      EXPECT_NE(serve.exit_code, 0);
      EXPECT_TRUE(absl::StrContains(serve.out, "does not divide")) << serve.out;
      EXPECT_TRUE(absl::StrContains(csv, "tp=3 does not divide the 64"));
      EXPECT_TRUE(json_row.at("ttft_p99_s").is_null());
      continue;
    }
    ++ok;
    ASSERT_EQ(row.at("status"), "ok") << row.at("key");
    ASSERT_EQ(serve.exit_code, 0) << serve.out;
    const nlohmann::json j = nlohmann::json::parse(serve.out);
    EXPECT_EQ(row.at("model"), j.at("model").get<std::string>());
    EXPECT_EQ(row.at("gpu"), j.at("gpu").get<std::string>());
    EXPECT_EQ(row.at("arrival"), "POISSON");
    EXPECT_EQ(Number(row.at("rate_per_s")),
              Number(row.at("serving.arrival.rate_per_s")));
    EXPECT_EQ(row.at("slo_ttft_s"), "1");
    EXPECT_EQ(row.at("slo_tpot_s"), "0.05");
    for (const auto& [column, value] : ServeNumbers(j)) {
      // Exactly: the row's text reads back as the double serve printed.
      EXPECT_EQ(Number(row.at(column)), value) << row.at("key") << " " << column;
      EXPECT_EQ(json_row.at(column).get<double>(), value)
          << row.at("key") << " " << column;
    }
    EXPECT_EQ(Number(row.at("num_gpus")), Number(row.at("parallelism.tp")) *
                                              Number(row.at("parallelism.dp")));
    // What ran, as serve says it.
    EXPECT_TRUE(absl::StrContains(
        row.at("what_ran"),
        absl::StrCat("; overrides serving.num_requests=12 parallelism.tp=",
                     row.at("parallelism.tp"), " parallelism.dp=", row.at("parallelism.dp"),
                     " serving.arrival.rate_per_s=", row.at("serving.arrival.rate_per_s"),
                     "; calibration ",
                     j.at("what_ran").at("calibration_profile").get<std::string>(),
                     "; collectives ",
                     j.at("what_ran").at("collective_tuning").get<std::string>())))
        << row.at("what_ran");
    EXPECT_EQ(json_row.at("what_ran"), row.at("what_ran"));
  }
  EXPECT_EQ(ok, 4);
}

// A scenario with prefill/decode pools runs disaggregated, as `serve` runs
// it, and its row counts every pool's GPUs.
TEST(ServeSweepCli, PoolsServeDisaggregatedAsServeDoes) {
  TempDir dir("serve_sweep");
  const std::string base =
      Repo("scenarios/serve_disagg_qwen3_32b_h100_2p1d.textproto");
  const std::vector<std::map<std::string, std::string>> rows = Rows(SweepTable(
      dir,
      absl::StrCat("command: SERVE\nbase_scenario: \"", base,
                   "\"\nset: \"serving.num_requests=16\"\n"
                   "axes { path: \"serving.arrival.rate_per_s\" "
                   "values: [\"3\", \"30\"] }\n"),
      "r.csv", "--jobs=2"));
  ASSERT_EQ(rows.size(), 2u);
  for (const auto& row : rows) {
    ASSERT_EQ(row.at("status"), "ok") << row.at("reason");
    const Result serve = RunShardsim(absl::StrCat(
        "serve ", base, " --set serving.num_requests=16",
        " --set serving.arrival.rate_per_s=", row.at("rate_per_s"),
        " --format=json"));
    ASSERT_EQ(serve.exit_code, 0) << serve.out;
    const nlohmann::json j = nlohmann::json::parse(serve.out);
    for (const auto& [column, value] : ServeNumbers(j)) {
      EXPECT_EQ(Number(row.at(column)), value) << row.at("key") << " " << column;
    }
    EXPECT_EQ(row.at("num_gpus"), "8");  // 2 x tp=2 prefill + tp=4 decode
    EXPECT_EQ(row.at("deployment"), "P tp2x2 + D tp4x1");
  }
}

// Resume and shards work as for run sweeps: a sweep killed after a row and
// half of the next, resumed, and one run as two shards merged, give the
// bytes of one uninterrupted run.
TEST(ServeSweepCli, ResumeAndMergeGiveTheBytesOfOneRun) {
  TempDir dir("serve_sweep");
  const std::string whole = SweepTable(dir, SmallServeSweep(), "whole.csv",
                                  "--jobs=2");
  const std::vector<std::string> lines = Lines(whole);
  ASSERT_EQ(lines.size(), 7u);
  WriteFile(dir / "torn.csv", absl::StrCat(lines[0], "\n", lines[1], "\n",
                                           lines[2].substr(0, 40)));
  EXPECT_EQ(SweepTable(dir, SmallServeSweep(), "torn.csv", "--jobs=2"), whole);

  SweepTable(dir, SmallServeSweep(), "s1.jsonl", "--shard=1/2");
  SweepTable(dir, SmallServeSweep(), "s2.jsonl", "--shard=2/2");
  const Result merged = RunShardsim(absl::StrCat(
      "merge --out=", dir / "m.jsonl", " ", dir / "s1.jsonl", " ",
      dir / "s2.jsonl"));
  ASSERT_EQ(merged.exit_code, 0) << merged.out;
  EXPECT_EQ(ReadFile(dir / "m.jsonl"),
            SweepTable(dir, SmallServeSweep(), "whole.jsonl", "--jobs=2"));

  // A run sweep's table is not this sweep's: refused, left as it was.
  const std::string run_sweep = absl::StrCat(
      "base_scenario: \"", Repo("scenarios/default.textproto"),
      "\"\nset: \"workload.output_len=2\"\n"
      "axes { path: \"parallelism.tp\" values: [\"8\"] }\n");
  const std::string run_table =
      SweepTable(dir, run_sweep, "run.csv", "--jobs=1");
  WriteFile(dir / "sweep.textproto", SmallServeSweep());
  const Result refused = RunShardsim(absl::StrCat(
      "sweep ", dir / "sweep.textproto", " --out=", dir / "run.csv"));
  EXPECT_EQ(refused.exit_code, 1) << refused.out;
  EXPECT_TRUE(absl::StrContains(refused.out, "does not start with this sweep's header"))
      << refused.out;
  EXPECT_EQ(ReadFile(dir / "run.csv"), run_table);
}

// ---- The shipped serve sweeps -----------------------------------------------

std::vector<std::map<std::string, std::string>> RunShipped(
    const TempDir& dir, const std::string& name) {
  const Result r = RunShardsim(absl::StrCat("sweep scenarios/", name,
                                            ".textproto --jobs=2 --out=",
                                            dir / (name + ".csv")));
  EXPECT_EQ(r.exit_code, 0) << r.out;
  return Rows(ReadFile(dir / (name + ".csv")));
}

TEST(ShippedServeSweeps, Strategies) {
  TempDir dir("serve_sweep");
  const auto rows = RunShipped(dir, "sweep_serve_strategies_llama3_70b_h100");
  ASSERT_EQ(rows.size(), 16u);
  std::map<std::string, const std::map<std::string, std::string>*> ran;
  for (const auto& row : rows) {
    if (row.at("status") == "ok") ran[row.at("key")] = &row;
  }
  // The four plans of 8 GPUs run; the others are skipped by the rule.
  ASSERT_EQ(ran.size(), 4u);
  // tp=1 cannot hold the weights: no KV cache, every request refused.
  const auto& tp1 = *ran.at("parallelism.tp=1;parallelism.dp=8");
  EXPECT_EQ(tp1.at("fits"), "false");
  EXPECT_EQ(tp1.at("completed"), "0");
  EXPECT_EQ(tp1.at("refused"), "200");
  EXPECT_EQ(tp1.at("ttft_p50_s"), "");
  // The three others serve every request.
  for (const char* key : {"parallelism.tp=2;parallelism.dp=4",
                          "parallelism.tp=4;parallelism.dp=2",
                          "parallelism.tp=8;parallelism.dp=1"}) {
    const auto& row = *ran.at(key);
    EXPECT_EQ(row.at("fits"), "true") << key;
    EXPECT_EQ(row.at("completed"), "200") << key;
    EXPECT_EQ(row.at("refused"), "0") << key;
    EXPECT_EQ(row.at("rate_per_s"), "4") << key;
  }
}

TEST(ShippedServeSweeps, Hardware) {
  TempDir dir("serve_sweep");
  const auto rows = RunShipped(dir, "sweep_serve_hardware_llama2_70b");
  ASSERT_EQ(rows.size(), 3u);
  std::vector<std::string> gpus;
  for (const auto& row : rows) {
    ASSERT_EQ(row.at("status"), "ok") << row.at("key");
    EXPECT_EQ(row.at("arrival"), "TRACE");
    EXPECT_EQ(row.at("rate_per_s"), "");
    EXPECT_EQ(row.at("requests"), rows[0].at("requests"));  // one trace
    gpus.push_back(row.at("gpu"));
  }
  EXPECT_EQ(absl::StrJoin(gpus, ","),
            "A100-SXM4-80GB,H100-SXM5-80GB,H200-SXM5-141GB");
  // A faster GPU serves the same requests sooner.
  EXPECT_GT(Number(rows[0].at("ttft_p50_s")), Number(rows[1].at("ttft_p50_s")));
  EXPECT_GT(Number(rows[0].at("tpot_p50_s")), Number(rows[1].at("tpot_p50_s")));
}

// xPyD: the replica counts of two automatically placed tp=2 pools. Every
// ratio that fits the node's 8 GPUs runs on 2 (x + y) GPUs and names its
// deployment; the others are skipped with the loader's line naming each
// pool's GPU count; a row is `serve` of its point.
TEST(ShippedServeSweeps, PrefillDecodeRatiosOnOneNode) {
  TempDir dir("serve_sweep");
  const auto rows = RunShipped(dir, "sweep_serve_disagg_xpyd_qwen3_32b_h100");
  ASSERT_EQ(rows.size(), 9u);
  int ran = 0;
  for (const auto& row : rows) {
    const int x = std::stoi(row.at("pools[0].parallelism.dp"));
    const int y = std::stoi(row.at("pools[1].parallelism.dp"));
    if (x + y > 4) {
      EXPECT_EQ(row.at("status"), "skipped") << row.at("key");
      EXPECT_TRUE(absl::StrContains(
          row.at("reason"), absl::StrCat("the pools need ", 2 * (x + y), " GPUs ('prefill' ",
                                         2 * x, " + 'decode' ", 2 * y, ") but DGX-H100 has 8")))
          << row.at("reason");
      continue;
    }
    ++ran;
    ASSERT_EQ(row.at("status"), "ok") << row.at("reason");
    EXPECT_EQ(row.at("deployment"), absl::StrCat("P tp2x", x, " + D tp2x", y));
    EXPECT_EQ(row.at("num_gpus"), absl::StrCat(2 * (x + y)));
    EXPECT_EQ(row.at("completed"), "200") << row.at("key");
    if (x == 3 && y == 1) {
      const Result serve = RunShardsim(
          "serve scenarios/serve_disagg_qwen3_32b_h100_xpyd.textproto"
          " --set pools[0].parallelism.dp=3 --format=json");
      ASSERT_EQ(serve.exit_code, 0) << serve.out;
      for (const auto& [column, value] : ServeNumbers(nlohmann::json::parse(serve.out))) {
        EXPECT_EQ(Number(row.at(column)), value) << column;
      }
    }
  }
  EXPECT_EQ(ran, 6);
}

TEST(ShippedServeSweeps, RateFromLightToSaturated) {
  TempDir dir("serve_sweep");
  const auto rows = RunShipped(dir, "sweep_serve_rate_llama3_70b_h100_tp8");
  ASSERT_GE(rows.size(), 5u);
  for (const auto& row : rows) ASSERT_EQ(row.at("status"), "ok");
  const auto& light = rows.front();
  const auto& heavy = rows.back();
  // Light: it keeps up and meets the SLO. Saturated: it serves far fewer
  // requests a second than arrive, the queue grows, goodput falls.
  EXPECT_GT(Number(light.at("requests_per_s")),
            0.5 * Number(light.at("rate_per_s")));
  EXPECT_LT(Number(heavy.at("requests_per_s")),
            0.5 * Number(heavy.at("rate_per_s")));
  EXPECT_GT(Number(heavy.at("queue_p99_s")),
            10 * Number(light.at("queue_p99_s")));
  EXPECT_GT(Number(light.at("slo_attainment")),
            Number(heavy.at("slo_attainment")));
}

}  // namespace
}  // namespace shardsim
