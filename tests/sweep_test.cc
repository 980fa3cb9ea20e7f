// Sweeps: the sweep file (enumeration, zipped axes, skip rules, errors), the
// result table (rows, resume after a kill, merge), and `shardsim sweep` /
// `shardsim merge` as a user runs them. The runs are small (a few points of
// a few output tokens) so the whole file takes seconds.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "sim/scenario/scenario.h"
#include "sim/scenario/sweep_spec.h"
#include "sim/sweep/results.h"
#include "sim/sweep/runner.h"
#include "tests/csv_cells.h"
#include "tests/run_shardsim.h"
#include "tests/test_util.h"

namespace shardsim {
namespace {

namespace fs = std::filesystem;

using ::shardsim::testing::Lines;
using ::shardsim::testing::ReadFile;
using ::shardsim::testing::Repo;
using ::shardsim::testing::TempDir;
using ::shardsim::testing::WriteFile;
using ::shardsim::testing::CsvCells;
using ::shardsim::testing::Result;
using ::shardsim::testing::RunShardsim;
using ::shardsim::testing::SweepTable;

// Starts shardsim in the background, its output going to `log`.
pid_t StartShardsim(const std::vector<std::string>& args,
                    const std::string& log) {
  std::vector<std::string> argv = {SHARDSIM_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> raw;
  for (std::string& a : argv) raw.push_back(a.data());
  raw.push_back(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    execv(raw[0], raw.data());
    _exit(127);
  }
  return pid;
}

// Waits until `path` has at least `lines` whole lines; false if `pid` ended
// first. The caller makes sure `pid` cannot finish before it has them and
// cannot go past them (its other points block), so nothing here depends on
// how fast the machine is; the bound only turns a bug into a failure rather
// than a hang.
bool WaitForLines(const std::string& path, size_t lines, pid_t pid) {
  for (int i = 0; i < 300'000; ++i) {  // 5 minutes
    const std::string text = ReadFile(path);
    if (static_cast<size_t>(std::count(text.begin(), text.end(), '\n')) >=
        lines) {
      return true;
    }
    int status;
    if (waitpid(pid, &status, WNOHANG) == pid) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return false;
}

// A small sweep on the default scenario (Llama-3-70B, DGX H100), 4 output
// tokens: 3 tp x 2 batch sizes, and tp=3, which does not divide 64 heads.
std::string SmallSweep(int output_len = 4) {
  return absl::StrCat(
      "name: \"small\"\n"
      "base_scenario: \"",
      Repo("scenarios/default.textproto"),
      "\"\n"
      "set: \"workload.output_len=",
      output_len,
      "\"\n"
      "set: \"workload.prompt_len=256\"\n"
      "axes { path: \"parallelism.tp\" values: [\"2\", \"3\", \"8\"] }\n"
      "axes { path: \"workload.batch_size\" values: [\"1\", \"8\"] }\n");
}

// ---- The sweep file ---------------------------------------------------------

absl::StatusOr<scenario::SweepSpec> LoadSweepText(const TempDir& dir,
                                                  const std::string& text) {
  WriteFile(dir / "s.textproto", text);
  return scenario::LoadSweep(dir / "s.textproto");
}

std::string Base() {
  return absl::StrCat("base_scenario: \"", Repo("scenarios/default.textproto"),
                      "\"\n");
}

TEST(SweepSpec, CartesianProductVariesTheLastAxisFastest) {
  TempDir dir("sweep");
  absl::StatusOr<scenario::SweepSpec> spec = LoadSweepText(
      dir, Base() +
               "axes { path: \"parallelism.tp\" values: [\"4\", \"8\"] }\n"
               "axes { path: \"workload.batch_size\" values: [\"1\", \"2\", "
               "\"3\"] }\n");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->name, "s");
  EXPECT_EQ(spec->columns, (std::vector<std::string>{"parallelism.tp",
                                                     "workload.batch_size"}));
  std::vector<std::string> keys;
  for (const scenario::SweepPoint& p : spec->points) {
    EXPECT_EQ(p.index, static_cast<int64_t>(keys.size()));
    keys.push_back(p.key);
  }
  EXPECT_EQ(keys, (std::vector<std::string>{
                      "parallelism.tp=4;workload.batch_size=1",
                      "parallelism.tp=4;workload.batch_size=2",
                      "parallelism.tp=4;workload.batch_size=3",
                      "parallelism.tp=8;workload.batch_size=1",
                      "parallelism.tp=8;workload.batch_size=2",
                      "parallelism.tp=8;workload.batch_size=3"}));
  EXPECT_EQ(
      spec->Overrides(spec->points[4]),
      (std::vector<std::string>{"parallelism.tp=8", "workload.batch_size=2"}));
}

TEST(SweepSpec, ZippedAxesMoveTogetherInFileOrder) {
  TempDir dir("sweep");
  // The zipped group is written first, so it is the outer loop.
  absl::StatusOr<scenario::SweepSpec> spec = LoadSweepText(
      dir,
      Base() +
          "set: \"workload.output_len=8\"\n"
          "zipped {\n"
          "  axes { path: \"parallelism.tp\" values: [\"8\", \"4\", \"2\"] }\n"
          "  axes { path: \"parallelism.pp\" values: [\"1\", \"2\", \"4\"] }\n"
          "}\n"
          "axes { path: \"workload.batch_size\" values: [\"16\", \"32\"] }\n");
  ASSERT_TRUE(spec.ok()) << spec.status();
  ASSERT_EQ(spec->points.size(), 6u);
  EXPECT_EQ(spec->columns,
            (std::vector<std::string>{"parallelism.tp", "parallelism.pp",
                                      "workload.batch_size"}));
  EXPECT_EQ(spec->points[0].key,
            "parallelism.tp=8;parallelism.pp=1;workload.batch_size=16");
  EXPECT_EQ(spec->points[3].key,
            "parallelism.tp=4;parallelism.pp=2;workload.batch_size=32");
  EXPECT_EQ(spec->points[5].key,
            "parallelism.tp=2;parallelism.pp=4;workload.batch_size=32");
  EXPECT_EQ(
      spec->Overrides(spec->points[5]),
      (std::vector<std::string>{"workload.output_len=8", "parallelism.tp=2",
                                "parallelism.pp=4", "workload.batch_size=32"}));
}

TEST(SweepSpec, SkipRulesRecordTheirReason) {
  TempDir dir("sweep");
  absl::StatusOr<scenario::SweepSpec> spec = LoadSweepText(
      dir, Base() +
               "axes { path: \"parallelism.tp\" values: [\"1\", \"2\", \"4\", "
               "\"8\"] }\n"
               "axes { path: \"parallelism.dp\" values: [\"1\", \"2\", \"4\", "
               "\"8\"] }\n"
               "axes { path: \"model.precision.weight_dtype\" values: "
               "[\"BF16\", \"INT8\"] }\n"
               "skip { when: \"parallelism.tp * parallelism.dp != 8\" reason: "
               "\"not 8 GPUs\" }\n"
               "skip { when: \"model.precision.weight_dtype == INT8\"\n"
               "       when: \"parallelism.tp >= 4\" reason: \"no INT8 kernels "
               "at tp>=4\" }\n");
  ASSERT_TRUE(spec.ok()) << spec.status();
  std::vector<std::string> run;
  for (const scenario::SweepPoint& p : spec->points) {
    if (p.skip_reason.empty()) run.push_back(p.key);
  }
  EXPECT_EQ(
      run,
      (std::vector<std::string>{
          "parallelism.tp=1;parallelism.dp=8;model.precision.weight_dtype=BF16",
          "parallelism.tp=1;parallelism.dp=8;model.precision.weight_dtype=INT8",
          "parallelism.tp=2;parallelism.dp=4;model.precision.weight_dtype=BF16",
          "parallelism.tp=2;parallelism.dp=4;model.precision.weight_dtype=INT8",
          "parallelism.tp=4;parallelism.dp=2;model.precision.weight_dtype=BF16",
          "parallelism.tp=8;parallelism.dp=1;model.precision.weight_dtype="
          "BF16"}));
  EXPECT_EQ(spec->skipped_by_rules, 32 - 6);
  EXPECT_EQ(spec->points[0].skip_reason, "not 8 GPUs");
  // tp=4, dp=2, INT8: the second rule.
  EXPECT_EQ(spec->points[2 * 8 + 1 * 2 + 1].skip_reason,
            "no INT8 kernels at tp>=4");
}

TEST(SweepSpec, ShardsCoverEveryPointExactlyOnce) {
  TempDir dir("sweep");
  absl::StatusOr<scenario::SweepSpec> spec = LoadSweepText(
      dir,
      Base() +
          "axes { path: \"workload.batch_size\" values: [\"1\", \"2\", \"3\", "
          "\"4\", \"5\", \"6\", \"7\"] }\n"
          "axes { path: \"workload.prompt_len\" values: [\"64\", \"128\"] }\n");
  ASSERT_TRUE(spec.ok()) << spec.status();
  for (int n = 1; n <= 5; ++n) {
    std::multiset<int64_t> seen;
    for (int k = 1; k <= n; ++k) {
      for (const scenario::SweepPoint* p : sweep::ShardPoints(*spec, k, n)) {
        EXPECT_EQ(p->index % n, k - 1);
        seen.insert(p->index);
      }
    }
    EXPECT_EQ(seen.size(), 14u) << n;
    EXPECT_EQ(std::set<int64_t>(seen.begin(), seen.end()).size(), 14u) << n;
  }
  int shard, of;
  EXPECT_TRUE(sweep::ParseShard("2/3", &shard, &of).ok());
  EXPECT_EQ(shard, 2);
  EXPECT_EQ(of, 3);
  for (const char* bad : {"0/3", "4/3", "3", "a/b", "1/0", "1/2/3"}) {
    EXPECT_FALSE(sweep::ParseShard(bad, &shard, &of).ok()) << bad;
  }
}

// The message of loading a sweep file, with the temporary directory removed.
std::string SweepError(const std::string& text) {
  TempDir dir("sweep");
  absl::StatusOr<scenario::SweepSpec> spec = LoadSweepText(dir, text);
  if (spec.ok()) return "ok";
  std::string message(spec.status().message());
  const std::string prefix = dir / "";
  return absl::StrReplaceAll(message, {{prefix, ""}});
}

TEST(SweepSpec, BadFilesAreOneErrorAtTheLine) {
  const std::string base = Base();  // line 1
  EXPECT_TRUE(absl::StartsWith(
      SweepError(base + "axes { path: \"parallelism.tpp\" values: [\"2\"] }\n"),
      "s.textproto:2:8: axes[0].path: no field 'tpp' in "
      "shardsim.v1.Parallelism (fields: tp, pp, dp, "));
  EXPECT_EQ(SweepError(base + "axes { path: \"workload.batch_size\"\n"
                              "       values: [\"1\", \"many\"] }\n"),
            "s.textproto:2:1: axes[0].values[1]: invalid value 'many' for "
            "shardsim.v1.Workload.batch_size (expected a int64)");
  EXPECT_EQ(
      SweepError(base + "axes { path: \"workload.batch_size\" }\n"),
      "s.textproto:2:1: axes[0].values: no values for workload.batch_size");
  EXPECT_EQ(
      SweepError(base +
                 "zipped {\n"
                 "  axes { path: \"parallelism.tp\" values: [\"1\", \"2\"] }\n"
                 "  axes { path: \"parallelism.pp\" values: [\"1\"] }\n"
                 "}\n"),
      "s.textproto:4:33: zipped[0].axes[1].values: has 1 values but "
      "zipped[0].axes[0] has 2; zipped axes move together");
  EXPECT_EQ(
      SweepError(base + "axes { path: \"parallelism.tp\" values: [\"1\"] }\n"
                        "axes { path: \"parallelism.tp\" values: [\"2\"] }\n"),
      "s.textproto:3:8: axes[1].path: parallelism.tp is already swept or "
      "set by axes[0].path");
  EXPECT_EQ(
      SweepError(base + "axes { path: \"parallelism.tp\" values: [\"1\"] }\n"
                        "skip { when: \"paralelism.tp > 2\" reason: \"x\" }\n"),
      "s.textproto:3:8: skip[0].when[0]: 'paralelism.tp' is not a swept "
      "field (swept: parallelism.tp); quote text to compare with it");
  EXPECT_EQ(SweepError(base +
                       "axes { path: \"parallelism.tp\" values: [\"1\"] }\n"
                       "skip { when: \"parallelism.tp = 2\" reason: \"x\" }\n"),
            "s.textproto:3:8: skip[0].when[0]: unknown operator '=' in "
            "'parallelism.tp = 2' (one of == != < <= > >=)");
  EXPECT_EQ(
      SweepError(base + "axes { path: \"topology_file\" values: [\"a\"] }\n"
                        "skip { when: \"topology_file < 3\" reason: \"x\" }\n"),
      "s.textproto:3:8: skip[0].when[0]: 'a' and '3' are not both "
      "numbers; only == and != compare text (at point topology_file=a)");
  EXPECT_EQ(SweepError(base + "skip { when: \"1 < 2\" }\n"),
            "s.textproto:2:1: skip[0].reason: missing: say why these points "
            "are skipped");
  EXPECT_EQ(SweepError(base + "set: \"workload.output_len\"\n"),
            "s.textproto:2:1: set[0]: --set workload.output_len: expected "
            "field.path=value");
  EXPECT_EQ(
      SweepError(base + "axes { path: \"parallelism.tp\" values: [\"1\"] \n"),
      "s.textproto:3:1: Expected identifier, got: ");
  EXPECT_EQ(SweepError("axes { path: \"parallelism.tp\" values: [\"1\"] }\n"),
            "s.textproto: base_scenario: missing: name the scenario to sweep");
  EXPECT_EQ(SweepError("base_scenario: \"nope.textproto\"\n"),
            "s.textproto:1:1: base_scenario: nope.textproto: cannot open file");
}

// ---- Result tables ----------------------------------------------------------

// The identity of the made-up sweeps below (a real one comes from IdentityOf).
const sweep::SweepIdentity kSweep = {"fnv1a64:00000000000000aa", 3};

TEST(Results, CsvQuotesAndJsonLinesParse) {
  scenario::SweepPoint point;
  point.index = 7;
  point.key = "parallelism.tp=3;topology_file=a,b.textproto";
  point.values = {"3", "a,b.textproto"};
  const std::vector<std::string> columns =
      sweep::TableColumns({"parallelism.tp", "topology_file"});
  const sweep::Row row =
      sweep::SkippedRow(kSweep, point, "tp=3 does not divide 64, \"heads\"");
  const std::string csv =
      sweep::FormatRow(columns, row, sweep::TableFormat::kCsv);
  EXPECT_EQ(csv.substr(0, csv.find(",,")),
            "7,\"parallelism.tp=3;topology_file=a,b.textproto\",skipped,"
            "\"tp=3 does not divide 64, \"\"heads\"\"\",3,\"a,b.textproto\"");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 1);

  v1::RunReport report;
  report.set_model("M");
  report.set_tp(3);
  report.set_pp(1);
  report.set_dp(2);
  report.set_fits(true);
  report.set_output_tokens_per_s(1234.56789012);
  v1::GpuRun* a = report.add_gpus();
  a->mutable_peak_memory()->set_total_bytes(100);
  a->mutable_peak_memory()->set_weights_bytes(60);
  v1::GpuRun* b = report.add_gpus();
  b->set_gpu(1);
  b->mutable_peak_memory()->set_total_bytes(120);
  b->mutable_peak_memory()->set_kv_cache_reserved_bytes(70);
  b->mutable_peak_memory()->set_weights_bytes(50);
  const std::string line = sweep::FormatRow(
      columns, sweep::ResultRow(kSweep, point, report, "nvlink"),
      sweep::TableFormat::kJsonl);
  const nlohmann::json json = nlohmann::json::parse(line);
  EXPECT_EQ(json["point"], 7);
  EXPECT_EQ(json["status"], "ok");
  EXPECT_TRUE(json["reason"].is_null());
  EXPECT_EQ(json["parallelism.tp"], 3);
  EXPECT_EQ(json["num_gpus"], 6);
  EXPECT_EQ(json["fits"], true);
  EXPECT_EQ(json["interconnect"], "nvlink");
  EXPECT_EQ(json["peak_memory_bytes"], 120);
  EXPECT_EQ(json["peak_memory_gpu"], 1);
  EXPECT_EQ(json["peak_memory_largest"], "kv_cache");
  EXPECT_EQ(json["peak_memory_largest_bytes"], 70);
  EXPECT_DOUBLE_EQ(json["output_tokens_per_s"].get<double>(), 1234.56789);
  // No GPU price: no cost, rather than a cost of 0.
  EXPECT_TRUE(json["cost_per_million_output_tokens"].is_null());
  // No decode step (one output token): no time per output token, rather
  // than 0 (which it was).
  for (const char* column : {"tpot_mean_s", "tpot_p50_s", "tpot_p99_s", "ttft_mean_s"}) {
    EXPECT_TRUE(json[column].is_null()) << column;
  }
  EXPECT_EQ(json["sweep_id"], "fnv1a64:00000000000000aa");
  EXPECT_EQ(json["sweep_points"], 3);
  EXPECT_EQ(json.size(), columns.size());
  EXPECT_TRUE(json["what_ran"].is_null());  // the report says nothing of it
  EXPECT_TRUE(absl::EndsWith(csv, ",fnv1a64:00000000000000aa,3\n")) << csv;

  // A name with a comma, a quote and a line break stays one quoted cell of
  // one line (a line break used to split the row in two).
  report.set_model("M, \"big\"\nv2");
  const std::string named = sweep::FormatRow(
      columns, sweep::ResultRow(kSweep, point, report, "nvlink"),
      sweep::TableFormat::kCsv);
  EXPECT_EQ(std::count(named.begin(), named.end(), '\n'), 1) << named;
  EXPECT_TRUE(absl::StrContains(named, ",\"M, \"\"big\"\" v2\",")) << named;
}

// Points 0, 1, 2 of a sweep over one axis `a` taking the values 0, 1, 2.
std::vector<scenario::SweepPoint> ThreePoints() {
  std::vector<scenario::SweepPoint> points(3);
  for (int i = 0; i < 3; ++i) {
    points[i].index = i;
    points[i].key = absl::StrCat("a=", i);
    points[i].values = {absl::StrCat(i)};
  }
  return points;
}

std::vector<const scenario::SweepPoint*> Pointers(
    const std::vector<scenario::SweepPoint>& points) {
  std::vector<const scenario::SweepPoint*> out;
  for (const scenario::SweepPoint& p : points) out.push_back(&p);
  return out;
}

TEST(Results, OpenCutsATornLineAndChecksTheFileIsThisSweeps) {
  TempDir dir("sweep");
  std::vector<scenario::SweepPoint> points = ThreePoints();
  const std::vector<std::string> columns = sweep::TableColumns({"a"});
  const std::string path = dir / "r.csv";
  const std::string header =
      sweep::FormatHeader(columns, sweep::TableFormat::kCsv);
  const std::string row2 =
      sweep::FormatRow(columns, sweep::SkippedRow(kSweep, points[2], "x"),
                       sweep::TableFormat::kCsv);
  WriteFile(path, header + row2 + "0,a=0,ok,,0,Llama");  // killed mid-row
  {
    absl::StatusOr<std::unique_ptr<sweep::ResultsFile>> file =
        sweep::ResultsFile::Open(path, sweep::TableFormat::kCsv, columns,
                                 kSweep, Pointers(points));
    ASSERT_TRUE(file.ok()) << file.status();
    EXPECT_EQ((*file)->rows(), (std::map<std::string, int64_t>{{"a=2", 2}}));
    EXPECT_EQ(ReadFile(path), header + row2);
    const std::string row0 =
        sweep::FormatRow(columns, sweep::SkippedRow(kSweep, points[0], "y"),
                         sweep::TableFormat::kCsv);
    ASSERT_TRUE((*file)->Append(points[0], row0).ok());
    ASSERT_TRUE((*file)->SortByPoint().ok());
    EXPECT_EQ(ReadFile(path), header + row0 + row2);
  }
  // Another sweep's columns, or a point this run does not have: refused,
  // and the file is left as it was (torn line included).
  WriteFile(path, ReadFile(path) + "1,a=1,sk");
  const std::string before = ReadFile(path);
  absl::StatusOr<std::unique_ptr<sweep::ResultsFile>> other =
      sweep::ResultsFile::Open(path, sweep::TableFormat::kCsv,
                               sweep::TableColumns({"b"}), kSweep,
                               Pointers(points));
  EXPECT_TRUE(absl::StrContains(
      other.status().message(),
      "r.csv:1: does not start with this sweep's header (its columns are not "
      "this sweep's)"))
      << other.status();
  points[2].key = "a=other";
  absl::StatusOr<std::unique_ptr<sweep::ResultsFile>> foreign =
      sweep::ResultsFile::Open(path, sweep::TableFormat::kCsv, columns, kSweep,
                               Pointers(points));
  EXPECT_TRUE(
      absl::StrContains(foreign.status().message(),
                        "r.csv:3: point 2 (a=2) is not a point of this run"))
      << foreign.status();
  absl::StatusOr<std::unique_ptr<sweep::ResultsFile>> jsonl =
      sweep::ResultsFile::Open(path, sweep::TableFormat::kJsonl, columns,
                               kSweep, Pointers(points));
  EXPECT_TRUE(
      absl::StrContains(jsonl.status().message(),
                        "holds CSV rows, but this sweep writes JSON Lines"))
      << jsonl.status();
  EXPECT_EQ(ReadFile(path), before);
}

// Before: a file with no newline was taken for one torn row and emptied.
TEST(Results, OpenRefusesAFileThatDoesNotStartWithThisSweepsTable) {
  TempDir dir("sweep");
  std::vector<scenario::SweepPoint> points(1);
  points[0].key = "a=0";
  points[0].values = {"0"};
  const std::vector<std::string> columns = sweep::TableColumns({"a"});
  const std::string header =
      sweep::FormatHeader(columns, sweep::TableFormat::kCsv);
  for (const auto format :
       {sweep::TableFormat::kCsv, sweep::TableFormat::kJsonl}) {
    WriteFile(dir / "notes", "my notes, no newline");
    absl::StatusOr<std::unique_ptr<sweep::ResultsFile>> file =
        sweep::ResultsFile::Open(dir / "notes", format, columns, kSweep,
                                 Pointers(points));
    EXPECT_TRUE(absl::StrContains(file.status().message(),
                                  "notes:1: does not start with "))
        << file.status();
    EXPECT_EQ(ReadFile(dir / "notes"), "my notes, no newline");
  }
  // A header cut short by a kill is ours: completed, not refused.
  WriteFile(dir / "torn.csv", header.substr(0, 20));
  ASSERT_TRUE(sweep::ResultsFile::Open(dir / "torn.csv",
                                       sweep::TableFormat::kCsv, columns,
                                       kSweep, Pointers(points))
                  .ok());
  EXPECT_EQ(ReadFile(dir / "torn.csv"), header);
  // The same columns, written by another sweep (another base scenario or
  // fixed --set, so other points under the same keys).
  const sweep::SweepIdentity other = {"fnv1a64:00000000000000bb", 3};
  const std::string row =
      sweep::FormatRow(columns, sweep::SkippedRow(other, points[0], "x"),
                       sweep::TableFormat::kCsv);
  WriteFile(dir / "other.csv", header + row);
  absl::StatusOr<std::unique_ptr<sweep::ResultsFile>> file =
      sweep::ResultsFile::Open(dir / "other.csv", sweep::TableFormat::kCsv,
                               columns, kSweep, Pointers(points));
  EXPECT_EQ(file.status().message(),
            dir /
                "other.csv:2: written by another sweep (sweep_id "
                "fnv1a64:00000000000000bb; this sweep is "
                "fnv1a64:00000000000000aa): was the sweep file changed? use "
                "another --out");
  EXPECT_EQ(ReadFile(dir / "other.csv"), header + row);
}

// Before: the final rewrite renamed a new file over the link or the device.
TEST(Results, OpenRefusesDevicesAndWritesThroughLinks) {
  TempDir dir("sweep");
  const std::vector<scenario::SweepPoint> points = ThreePoints();
  const std::vector<std::string> columns = sweep::TableColumns({"a"});
  ASSERT_EQ(mkfifo((dir / "fifo").c_str(), 0644), 0);
  for (const std::string& path : {std::string("/dev/null"), dir / "fifo"}) {
    absl::StatusOr<std::unique_ptr<sweep::ResultsFile>> file =
        sweep::ResultsFile::Open(path, sweep::TableFormat::kCsv, columns,
                                 kSweep, Pointers(points));
    EXPECT_EQ(file.status().message(),
              path +
                  ": is not a regular file (a device, FIFO or socket); "
                  "name a file to write the table to");
  }
  struct stat st;
  ASSERT_EQ(lstat("/dev/null", &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));

  // A resumed file whose rows end out of order is rewritten in order: into
  // the file the link names, and the link stays a link.
  const std::string header =
      sweep::FormatHeader(columns, sweep::TableFormat::kCsv);
  auto row = [&](int i) {
    return sweep::FormatRow(columns, sweep::SkippedRow(kSweep, points[i], "x"),
                            sweep::TableFormat::kCsv);
  };
  fs::create_directory(dir / "real");
  WriteFile(dir / "real/r.csv", header + row(2));
  fs::create_symlink("real/r.csv", dir / "link.csv");
  {
    absl::StatusOr<std::unique_ptr<sweep::ResultsFile>> file =
        sweep::ResultsFile::Open(dir / "link.csv", sweep::TableFormat::kCsv,
                                 columns, kSweep, Pointers(points));
    ASSERT_TRUE(file.ok()) << file.status();
    ASSERT_TRUE((*file)->Append(points[0], row(0)).ok());
    ASSERT_TRUE((*file)->Append(points[1], row(1)).ok());
    ASSERT_TRUE((*file)->SortByPoint().ok());
  }
  EXPECT_TRUE(fs::is_symlink(dir / "link.csv"));
  EXPECT_EQ(ReadFile(dir / "real/r.csv"), header + row(0) + row(1) + row(2));
  EXPECT_EQ(fs::directory_iterator(dir / "real")->path().filename(), "r.csv");
}

TEST(Results, MergeKeepsEachPointOnceInOrderAndSaysWhatIsMissing) {
  TempDir dir("sweep");
  const std::string header =
      "point,key,status,reason,a,sweep_id,sweep_points\n";
  WriteFile(dir / "1.csv", header + "3,a=3,ok,,3,s1,5\n0,a=0,ok,,0,s1,5\n");
  WriteFile(dir / "2.csv", header +
                               "1,a=1,skipped,\"why, indeed\",1,s1,5\n"
                               "3,a=3,ok,,3,s1,5\n2,a=2");
  WriteFile(dir / "3.csv", "");
  absl::StatusOr<sweep::MergeSummary> merged = sweep::MergeResults(
      {dir / "1.csv", dir / "2.csv", dir / "3.csv"}, dir / "all.csv");
  ASSERT_TRUE(merged.ok()) << merged.status();
  EXPECT_EQ(merged->rows, 3);
  EXPECT_EQ(merged->points, 5);
  // Point 2's row is torn in 2.csv (line 4); point 4 has no row anywhere.
  EXPECT_EQ(merged->missing, (std::vector<int64_t>{2, 4}));
  EXPECT_EQ(merged->torn, (std::vector<std::string>{dir / "2.csv:4"}));
  EXPECT_EQ(ReadFile(dir / "all.csv"),
            header +
                "0,a=0,ok,,0,s1,5\n1,a=1,skipped,\"why, indeed\",1,s1,5\n"
                "3,a=3,ok,,3,s1,5\n");

  WriteFile(dir / "4.csv", header + "3,a=3,ok,,4,s1,5\n");
  EXPECT_TRUE(absl::StrContains(
      sweep::MergeResults({dir / "1.csv", dir / "4.csv"}, dir / "x.csv")
          .status()
          .message(),
      "4.csv:2: point 3 (a=3) differs from its row at "));
  WriteFile(dir / "5.csv", "point,key,status,reason,b,sweep_id,sweep_points\n");
  EXPECT_TRUE(absl::StrContains(
      sweep::MergeResults({dir / "1.csv", dir / "5.csv"}, dir / "x.csv")
          .status()
          .message(),
      "5.csv: its columns or format differ from "));
  // The same columns and keys, but another sweep: refused, where before
  // the rows were joined.
  WriteFile(dir / "6.csv", header + "1,a=1,ok,,1,s2,5\n");
  EXPECT_EQ(sweep::MergeResults({dir / "1.csv", dir / "6.csv"}, dir / "x.csv")
                .status()
                .message(),
            absl::StrCat(dir / "6.csv", ":2: sweep_id s2 but ", dir / "1.csv",
                         ":3 has s1: not shards of one sweep"));
  EXPECT_TRUE(absl::StrContains(
      sweep::MergeResults({dir / "1.csv"}, dir / "1.csv").status().message(),
      "1.csv: is also an input"));
  EXPECT_EQ(
      sweep::MergeResults({dir / "1.csv"}, "/dev/null").status().message(),
      "/dev/null: is not a regular file (a device, FIFO or socket); "
      "name a file to write the table to");
}

// ---- The runner, with workers that need no simulator ------------------------

// The batch size a worker was given (the last override).
int BatchOf(const std::vector<std::string>& overrides) {
  const std::string& last = overrides.back();
  return std::stoi(last.substr(last.find('=') + 1));
}

absl::StatusOr<v1::PointResult> GoodWorker(
    const std::string&, const std::vector<std::string>& overrides) {
  v1::PointResult result;
  v1::RunReport& report = *result.mutable_report();
  report.set_batch_size(BatchOf(overrides));
  report.set_output_tokens_per_s(10.0 * BatchOf(overrides));
  return result;
}

// Batch 3 is an invalid point, 4 crashes, 5 sends no result.
absl::StatusOr<v1::PointResult> FlakyWorker(
    const std::string& scenario, const std::vector<std::string>& overrides) {
  switch (BatchOf(overrides)) {
    case 3:
      return absl::InvalidArgumentError("batch 3 is odd");
    case 4:
      kill(getpid(), SIGKILL);
      return absl::InternalError("unreachable");
    case 5:
      std::cout << "not a report";
      std::cout.flush();
      ::_exit(0);
    default:
      return GoodWorker(scenario, overrides);
  }
}

// Points 3 and 4 both fail, in whichever order their workers end: the
// failure reported is the lower point's (before, the first to end, so the
// test failed when point 4's worker happened to end first).
TEST(Runner, CrashedPointsHaveNoRowAndARerunRetriesThem) {
  TempDir dir("sweep");
  absl::StatusOr<scenario::SweepSpec> spec = LoadSweepText(
      dir, Base() +
               "axes { path: \"workload.batch_size\" "
               "values: [\"1\", \"2\", \"3\", \"4\", \"5\", \"6\"] }\n");
  ASSERT_TRUE(spec.ok()) << spec.status();
  sweep::SweepOptions options;
  options.run_point = FlakyWorker;
  options.out_path = dir / "r.csv";
  options.jobs = 2;
  absl::StatusOr<sweep::SweepSummary> first = sweep::RunSweep(*spec, options);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->points, 6);
  EXPECT_EQ(first->ok, 3);
  EXPECT_EQ(first->skipped, 1);
  EXPECT_EQ(first->failed, 2);
  EXPECT_EQ(first->interrupted_by, 0);
  EXPECT_EQ(first->first_failure,
            "point 3 (workload.batch_size=4): killed by signal 9");
  std::vector<std::string> lines = Lines(ReadFile(dir / "r.csv"));
  ASSERT_EQ(lines.size(), 1u + 4);
  EXPECT_TRUE(absl::StrContains(ReadFile(dir / "r.csv"),
                                "\n2,workload.batch_size=3,skipped,batch 3 is "
                                "odd,3,,"));

  options.run_point = GoodWorker;
  absl::StatusOr<sweep::SweepSummary> second = sweep::RunSweep(*spec, options);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->already_done, 4);
  EXPECT_EQ(second->ok, 2);
  EXPECT_EQ(second->failed, 0);
  lines = Lines(ReadFile(dir / "r.csv"));
  ASSERT_EQ(lines.size(), 1u + 6);
  for (int i = 0; i < 6; ++i) {
    // Every point once, in point order now that all are there.
    EXPECT_TRUE(absl::StartsWith(
        lines[i + 1], absl::StrCat(i, ",workload.batch_size=", i + 1, ",")))
        << lines[i + 1];
  }
}

// Never ends: only --timeout stops it.
absl::StatusOr<v1::PointResult> HangingWorker(
    const std::string&, const std::vector<std::string>&) {
  for (;;) pause();
}

// Every point hangs, so every point times out however slow the machine is:
// no good point can be caught by the limit.
TEST(Runner, PointsPastTheTimeoutAreRowsWithThatReason) {
  TempDir dir("sweep");
  absl::StatusOr<scenario::SweepSpec> spec =
      LoadSweepText(dir, Base() +
                             "axes { path: \"workload.batch_size\" "
                             "values: [\"1\", \"2\", \"3\"] }\n");
  ASSERT_TRUE(spec.ok()) << spec.status();
  sweep::SweepOptions options;
  options.run_point = HangingWorker;
  options.out_path = dir / "r.csv";
  options.jobs = 2;
  options.timeout_s = 0.05;
  absl::StatusOr<sweep::SweepSummary> summary = sweep::RunSweep(*spec, options);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->timed_out, 3);
  EXPECT_EQ(summary->ok + summary->skipped + summary->failed, 0);
  const std::vector<std::string> lines = Lines(ReadFile(dir / "r.csv"));
  ASSERT_EQ(lines.size(), 1u + 3);
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(absl::StartsWith(
        lines[i + 1],
        absl::StrCat(i, ",workload.batch_size=", i + 1,
                     ",timeout,ran longer than --timeout=0.05s,", i + 1, ",")))
        << lines[i + 1];
  }
  // A re-run keeps the rows: the points are results, not failures.
  options.run_point = GoodWorker;
  summary = sweep::RunSweep(*spec, options);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->already_done, 3);
  options.timeout_s = -1;
  EXPECT_EQ(sweep::RunSweep(*spec, options).status().message(),
            "--timeout must be a number of seconds (0 for none), got -1");
}

// ---- shardsim sweep and merge -----------------------------------------------

TEST(SweepCli, InvalidPointsAreSkippedRowsWithTheReason) {
  TempDir dir("sweep");
  const std::string csv = SweepTable(dir,
                                SmallSweep() +
                                    "zipped { axes { path: \"parallelism.dp\" "
                                    "values: [\"1\", \"2\"] } }\n",
                                "r.csv", "--jobs=2");
  const std::vector<std::string> lines = Lines(csv);
  ASSERT_EQ(lines.size(), 1u + 3 * 2 * 2);
  int ok = 0;
  for (size_t i = 1; i < lines.size(); ++i) {
    const std::string& line = lines[i];
    EXPECT_TRUE(absl::StartsWith(line, absl::StrCat(i - 1, ","))) << line;
    if (absl::StrContains(line, ",ok,")) {
      ++ok;
    } else if (absl::StrContains(line, "parallelism.tp=3")) {
      EXPECT_TRUE(absl::StrContains(
          line,
          ",skipped,--set parallelism.tp=3: parallelism.tp: tp=3 does not "
          "divide the 64 attention heads of Llama-3-70B,"))
          << line;
    } else {
      // tp=8 x dp=2 needs 16 GPUs.
      EXPECT_TRUE(absl::StrContains(
          line,
          ",skipped,\"--set parallelism.dp=2: parallelism: tp x pp x dp = "
          "8 x 1 x 2 = 16 GPUs, but DGX-H100 has 8\","))
          << line;
    }
  }
  EXPECT_EQ(ok, 2 + 2 + 2);  // tp=2 (dp 1 and 2) and tp=8 (dp 1), 2 batch sizes
}

TEST(SweepCli, OneJobAndTwoJobsWriteTheSameBytes) {
  TempDir dir("sweep");
  const std::string one = SweepTable(dir, SmallSweep(), "one.csv", "--jobs=1");
  const std::string two = SweepTable(dir, SmallSweep(), "two.csv", "--jobs=2");
  EXPECT_EQ(Lines(one).size(), 7u);
  EXPECT_EQ(one, two);
  // Running again finds every point done and changes nothing.
  EXPECT_EQ(SweepTable(dir, SmallSweep(), "two.csv", "--jobs=2"), one);
  // A time limit no point reaches changes nothing either.
  EXPECT_EQ(SweepTable(dir, SmallSweep(), "limit.csv", "--jobs=2 --timeout=600"),
            one);
}

TEST(SweepCli, ResumeAfterATornRowGivesTheUninterruptedRows) {
  TempDir dir("sweep");
  const std::string whole = SweepTable(dir, SmallSweep(), "whole.csv", "--jobs=2");
  const std::vector<std::string> lines = Lines(whole);
  ASSERT_EQ(lines.size(), 7u);
  // As a kill leaves it: half of the rows, out of order, and half a row.
  WriteFile(dir / "part.csv", lines[0] + "\n" + lines[5] + "\n" + lines[2] +
                                  "\n" + lines[1] + "\n" +
                                  lines[4].substr(0, 30));
  EXPECT_EQ(SweepTable(dir, SmallSweep(), "part.csv", "--jobs=2"), whole);
}

// Killed with exactly three rows written, on any machine: the second model's
// points read their model file from a FIFO nobody writes to while the sweep
// runs, so they block until the sweep is killed (before, the test waited up
// to 4 s for rows and called a slow machine's sweep "finished").
TEST(SweepCli, KilledAndRerunGivesTheUninterruptedRows) {
  TempDir dir("sweep");
  const std::string model = ReadFile(Repo("models/llama3_70b.textproto"));
  const std::string blocking = dir / "model.textproto";
  WriteFile(blocking, model);
  const std::string text =
      absl::StrCat(Base(),
                   "set: \"workload.output_len=4\"\n"
                   "set: \"workload.prompt_len=256\"\n"
                   "axes { path: \"model_file\"\n"
                   "       values: [\"",
                   Repo("models/llama3_70b.textproto"), "\", \"", blocking,
                   "\"] }\n"
                   "axes { path: \"workload.batch_size\" values: [\"1\", "
                   "\"8\", \"16\"] }\n");
  const std::string whole = SweepTable(dir, text, "whole.jsonl", "--jobs=2");
  ASSERT_EQ(Lines(whole).size(), 6u);
  const std::vector<std::string> whole_lines = Lines(whole);
  for (int signal : {SIGKILL, SIGINT}) {
    ASSERT_TRUE(fs::remove(blocking));
    ASSERT_EQ(mkfifo(blocking.c_str(), 0644), 0);
    const std::string out = dir / absl::StrCat("killed", signal, ".jsonl");
    const pid_t pid = StartShardsim(
        {"sweep", dir / "sweep.textproto", "--out=" + out, "--jobs=2"},
        dir / "log");
    ASSERT_TRUE(WaitForLines(out, 3, pid)) << ReadFile(dir / "log");
    kill(pid, signal);
    int status = 0;
    waitpid(pid, &status, 0);
    if (signal == SIGINT) {
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 130) << status;
      EXPECT_TRUE(
          absl::StrContains(ReadFile(dir / "log"), "shardsim sweep: interrupted: "))
          << ReadFile(dir / "log");
    } else {
      EXPECT_TRUE(WIFSIGNALED(status)) << status;
    }
    // The rows of the first model's points, in the order they finished.
    std::vector<std::string> rows = Lines(ReadFile(out));
    std::sort(rows.begin(), rows.end());
    EXPECT_EQ(rows, std::vector<std::string>(whole_lines.begin(),
                                             whole_lines.begin() + 3));
    ASSERT_TRUE(fs::remove(blocking));
    WriteFile(blocking, model);
    const Result again = RunShardsim(absl::StrCat(
        "sweep ", dir / "sweep.textproto", " --out=", out, " --jobs=2"));
    EXPECT_EQ(again.exit_code, 0) << again.out;
    EXPECT_EQ(ReadFile(out), whole) << "signal " << signal;
  }
}

// --timeout through the CLI. The points read their model from a FIFO that
// nobody writes, so they outlast any limit however fast the machine is.
TEST(SweepCli, PointsPastTheTimeoutAreRows) {
  TempDir dir("sweep");
  ASSERT_EQ(mkfifo((dir / "model.textproto").c_str(), 0644), 0);
  const std::string text = absl::StrCat(
      Base(), "set: \"workload.output_len=4\"\n",
      // An axis, not a fixed set: the sweep loads its base with the fixed
      // sets before it starts, and would block on the FIFO itself.
      "axes { path: \"model_file\" values: [\"", dir / "model.textproto",
      "\"] }\n"
      "axes { path: \"workload.batch_size\" values: [\"1\", \"8\"] }\n");
  WriteFile(dir / "sweep.textproto", text);
  const Result r = RunShardsim(absl::StrCat("sweep ", dir / "sweep.textproto",
                                            " --out=", dir / "r.csv",
                                            " --jobs=2 --timeout=0.2"));
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, ": 0 ok, 0 skipped, 2 timed out, "))
      << r.out;
  const std::vector<std::string> lines = Lines(ReadFile(dir / "r.csv"));
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_TRUE(absl::StartsWith(lines[2], "1,model_file=")) << lines[2];
  EXPECT_TRUE(
      absl::StrContains(lines[2],
                        ";workload.batch_size=8,timeout,ran longer than "
                        "--timeout=0.2s,"))
      << lines[2];
}

TEST(SweepCli, ShardsMergedGiveTheWholeSweep) {
  TempDir dir("sweep");
  const std::string whole = SweepTable(dir, SmallSweep(), "whole.csv", "--jobs=2");
  std::vector<std::string> shards;
  for (int k = 1; k <= 3; ++k) {
    const std::string name = absl::StrCat("shard", k, ".csv");
    const std::string shard = SweepTable(dir, SmallSweep(), name,
                                    absl::StrCat("--shard=", k, "/3 --jobs=1"));
    EXPECT_EQ(Lines(shard).size(), 1u + 2) << shard;
    shards.push_back(dir / name);
  }
  const Result merged = RunShardsim(absl::StrCat(
      "merge --out=", dir / "merged.csv", " ", absl::StrJoin(shards, " ")));
  EXPECT_EQ(merged.exit_code, 0) << merged.out;
  EXPECT_TRUE(absl::StrContains(merged.out, "merged 6 rows from 3 files"))
      << merged.out;
  EXPECT_EQ(ReadFile(dir / "merged.csv"), whole);
}

TEST(SweepCli, JsonLinesHoldTheSameValuesAsCsv) {
  TempDir dir("sweep");
  const std::vector<std::string> csv =
      Lines(SweepTable(dir, SmallSweep(), "r.csv", "--jobs=2"));
  const std::vector<std::string> jsonl =
      Lines(SweepTable(dir, SmallSweep(), "r.jsonl", "--jobs=2"));
  ASSERT_EQ(csv.size(), jsonl.size() + 1);
  const std::vector<std::string> header = CsvCells(csv[0]);
  for (size_t i = 0; i < jsonl.size(); ++i) {
    const nlohmann::json row = nlohmann::json::parse(jsonl[i]);
    ASSERT_EQ(row.size(), header.size());
    if (row["status"] != "ok") continue;
    const std::vector<std::string> fields = CsvCells(csv[i + 1]);
    ASSERT_EQ(fields.size(), header.size()) << csv[i + 1];
    for (size_t c = 0; c < header.size(); ++c) {
      const nlohmann::json& cell = row[header[c]];
      if (cell.is_number()) {
        // The same text, so the same double.
        EXPECT_EQ(cell.get<double>(), std::stod(fields[c])) << header[c];
      } else {
        const std::string text = cell.is_string() ? cell.get<std::string>()
                                 : cell.is_null() ? ""
                                                  : cell.dump();
        EXPECT_EQ(text, fields[c]) << header[c];
      }
    }
  }
}

// Each row says what produced it (the what_ran column, last before the
// sweep's identity): the what_ran of `shardsim run BASE --set ...` of its
// point, on one line; empty for a skipped point.
TEST(SweepCli, RowsSayWhatRan) {
  TempDir dir("sweep");
  const std::vector<std::string> csv =
      Lines(SweepTable(dir, SmallSweep(), "r.csv", "--jobs=2"));
  ASSERT_EQ(csv.size(), 7u);
  const std::vector<std::string> header = CsvCells(csv[0]);
  ASSERT_GE(header.size(), 3u);
  EXPECT_EQ(header[header.size() - 3], "what_ran");
  for (size_t i = 1; i < csv.size(); ++i) {
    const std::vector<std::string> row = CsvCells(csv[i]);
    ASSERT_EQ(row.size(), header.size()) << csv[i];
    const std::string& what_ran = row[header.size() - 3];
    if (row[2] != "ok") {
      EXPECT_EQ(what_ran, "") << csv[i];
      continue;
    }
    const std::string tp = row[4], batch = row[5];
    const Result run = RunShardsim(absl::StrCat(
        "run ", Repo("scenarios/default.textproto"),
        " --set workload.output_len=4 --set workload.prompt_len=256 --set parallelism.tp=", tp,
        " --set workload.batch_size=", batch, " --format=json"));
    ASSERT_EQ(run.exit_code, 0) << run.out;
    const nlohmann::json w = nlohmann::json::parse(run.out).at("what_ran");
    EXPECT_TRUE(absl::StartsWith(what_ran, "precision recipe ")) << what_ran;
    EXPECT_TRUE(absl::StrContains(
        what_ran, absl::StrCat("; overrides workload.output_len=4 workload.prompt_len=256 "
                               "parallelism.tp=", tp, " workload.batch_size=", batch, "; ")))
        << what_ran;
    EXPECT_TRUE(absl::StrContains(
        what_ran, absl::StrCat("; calibration ", w.at("calibration_profile").get<std::string>(),
                               "; collectives ", w.at("collective_tuning").get<std::string>())))
        << what_ran;
    EXPECT_EQ(what_ran.find('\n'), std::string::npos);
  }
}

// One line, starting "shardsim sweep: " or "shardsim merge: ", exit 1.
void ExpectOneLineError(const Result& r, const std::string& contains) {
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  EXPECT_TRUE(r.out.rfind("shardsim sweep: ", 0) == 0 || r.out.rfind("shardsim merge: ", 0) == 0)
      << r.out;
  EXPECT_NE(r.out.find(contains), std::string::npos) << r.out;
}

TEST(SweepCli, BadInputIsOneLine) {
  TempDir dir("sweep");
  WriteFile(dir / "typo.textproto",
            Base() + "axes { path: \"workload.batch\" values: [\"1\"] }\n");
  ExpectOneLineError(RunShardsim(absl::StrCat("sweep ", dir / "typo.textproto",
                                              " --out=", dir / "r.csv")),
                     "typo.textproto:2:8: axes[0].path: no field 'batch' in "
                     "shardsim.v1.Workload");
  WriteFile(dir / "malformed.textproto", Base() + "axes { path: }\n");
  ExpectOneLineError(
      RunShardsim(absl::StrCat("sweep ", dir / "malformed.textproto",
                               " --out=", dir / "r.csv")),
      "malformed.textproto:2:14: ");
  ExpectOneLineError(RunShardsim("sweep scenarios/nope.textproto --out=r.csv"),
                     "scenarios/nope.textproto: cannot open file");
  // A result file of another sweep is never appended to.
  WriteFile(dir / "other.csv", "point,key,status,reason,x\n");
  WriteFile(dir / "small.textproto", SmallSweep());
  ExpectOneLineError(RunShardsim(absl::StrCat("sweep ", dir / "small.textproto",
                                              " --out=", dir / "other.csv")),
                     "other.csv:1: does not start with this sweep's header");
  ExpectOneLineError(RunShardsim(absl::StrCat("sweep ", dir / "small.textproto",
                                              " --out=/dev/null")),
                     "/dev/null: is not a regular file");
  ExpectOneLineError(RunShardsim(absl::StrCat("sweep ", dir / "small.textproto",
                                              " --out=/nonexistent/dir/r.csv")),
                     "/nonexistent/dir/r.csv: cannot open for writing");
  ExpectOneLineError(RunShardsim(absl::StrCat("merge --out=", dir / "m.csv",
                                              " ", dir / "missing.csv")),
                     "missing.csv: cannot open file");
  // Malformed command lines: exit 2.
  EXPECT_EQ(RunShardsim("sweep").exit_code, 2);
  EXPECT_EQ(
      RunShardsim(absl::StrCat("sweep ", dir / "small.textproto")).exit_code,
      2);
  for (const char* flags :
       {"--jobs=0", "--shard=4/3", "--format=xml", "--frob", "--timeout=-1",
        "--timeout=soon", "--timeout=nan"}) {
    EXPECT_EQ(RunShardsim(absl::StrCat("sweep ", dir / "small.textproto",
                                       " --out=", dir / "r.csv ", flags))
                  .exit_code,
              2)
        << flags;
  }
  EXPECT_EQ(RunShardsim("merge --out=x.csv").exit_code, 2);
}

TEST(SweepCli, ExampleSweepsValidate) {
  const Result r = RunShardsim(
      "validate scenarios/sweep_strategies_llama3_70b_h100.textproto "
      "scenarios/sweep_hardware_llama3_70b.textproto "
      "scenarios/sweep_batch_prompt_llama3_8b_h100.textproto "
      "tests/benchmarks/sweep_bench.textproto");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_TRUE(absl::StrContains(
      r.out,
      "sweep strategies_llama3_70b_h100: 384 points (324 skipped by rules)"))
      << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "sweep hardware_llama3_70b: 24 points"))
      << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "sweep sweep_bench: 1000 points"))
      << r.out;
}

}  // namespace
}  // namespace shardsim
