// Sweeps: the sweep file (enumeration, zipped axes, skip rules, errors), the
// result table (rows, resume after a kill, merge), and `shardsim sweep` /
// `shardsim merge` as a user runs them. The runs are small (a few points of
// a few output tokens) so the whole file takes seconds.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

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
#include "tests/run_shardsim.h"
#include "nlohmann/json.hpp"
#include "sim/scenario/scenario.h"
#include "sim/scenario/sweep_spec.h"
#include "sim/sweep/results.h"
#include "sim/sweep/runner.h"

namespace shardsim {
namespace {

namespace fs = std::filesystem;

// A fresh directory per test (ctest runs tests in parallel processes).
class TempDir {
 public:
  TempDir() {
    std::string pattern =
        (fs::temp_directory_path() / "shardsim_sweep_XXXXXX").string();
    path_ = ::mkdtemp(pattern.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string operator/(const std::string& name) const {
    return path_ + "/" + name;
  }

 private:
  std::string path_;
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// A scenario of the repository, by absolute path, so that a sweep file
// written in a temporary directory can name it.
std::string Repo(const std::string& relative) {
  return (fs::current_path() / relative).string();
}

std::vector<std::string> Lines(const std::string& text) {
  return absl::StrSplit(text, '\n', absl::SkipEmpty());
}

using ::shardsim::testing::Result;
using ::shardsim::testing::RunShardsim;

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

// Waits until `path` has at least `lines` lines; false if `pid` ended first.
bool WaitForLines(const std::string& path, size_t lines, pid_t pid) {
  for (int i = 0; i < 2000; ++i) {
    if (Lines(ReadFile(path)).size() >= lines) return true;
    int status;
    if (waitpid(pid, &status, WNOHANG) == pid) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
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
  TempDir dir;
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
  TempDir dir;
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
  TempDir dir;
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
  TempDir dir;
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
  TempDir dir;
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

TEST(Results, CsvQuotesAndJsonLinesParse) {
  scenario::SweepPoint point;
  point.index = 7;
  point.key = "parallelism.tp=3;topology_file=a,b.textproto";
  point.values = {"3", "a,b.textproto"};
  const std::vector<std::string> columns =
      sweep::TableColumns({"parallelism.tp", "topology_file"});
  const sweep::Row row =
      sweep::SkippedRow(point, "tp=3 does not divide 64, \"heads\"");
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
  const std::string line =
      sweep::FormatRow(columns, sweep::ResultRow(point, report, "nvlink"),
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
  EXPECT_EQ(json.size(), columns.size());
}

std::vector<const scenario::SweepPoint*> Pointers(
    const std::vector<scenario::SweepPoint>& points) {
  std::vector<const scenario::SweepPoint*> out;
  for (const scenario::SweepPoint& p : points) out.push_back(&p);
  return out;
}

TEST(Results, OpenCutsATornLineAndChecksTheFileIsThisSweeps) {
  TempDir dir;
  std::vector<scenario::SweepPoint> points(3);
  for (int i = 0; i < 3; ++i) {
    points[i].index = i;
    points[i].key = absl::StrCat("a=", i);
    points[i].values = {absl::StrCat(i)};
  }
  const std::vector<std::string> columns = sweep::TableColumns({"a"});
  const std::string path = dir / "r.csv";
  const std::string header =
      sweep::FormatHeader(columns, sweep::TableFormat::kCsv);
  const std::string row2 = sweep::FormatRow(
      columns, sweep::SkippedRow(points[2], "x"), sweep::TableFormat::kCsv);
  WriteFile(path, header + row2 + "0,a=0,ok,,0,Llama");  // killed mid-row
  {
    absl::StatusOr<std::unique_ptr<sweep::ResultsFile>> file =
        sweep::ResultsFile::Open(path, sweep::TableFormat::kCsv, columns,
                                 Pointers(points));
    ASSERT_TRUE(file.ok()) << file.status();
    EXPECT_EQ((*file)->rows(), (std::map<std::string, int64_t>{{"a=2", 2}}));
    EXPECT_EQ(ReadFile(path), header + row2);
    const std::string row0 = sweep::FormatRow(
        columns, sweep::SkippedRow(points[0], "y"), sweep::TableFormat::kCsv);
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
                               sweep::TableColumns({"b"}), Pointers(points));
  EXPECT_TRUE(absl::StrContains(other.status().message(),
                                "r.csv:1: its columns are not this sweep's"))
      << other.status();
  points[2].key = "a=other";
  absl::StatusOr<std::unique_ptr<sweep::ResultsFile>> foreign =
      sweep::ResultsFile::Open(path, sweep::TableFormat::kCsv, columns,
                               Pointers(points));
  EXPECT_TRUE(
      absl::StrContains(foreign.status().message(),
                        "r.csv:3: point 2 (a=2) is not a point of this run"))
      << foreign.status();
  absl::StatusOr<std::unique_ptr<sweep::ResultsFile>> jsonl =
      sweep::ResultsFile::Open(path, sweep::TableFormat::kJsonl, columns,
                               Pointers(points));
  EXPECT_TRUE(
      absl::StrContains(jsonl.status().message(),
                        "holds CSV rows, but this sweep writes JSON Lines"))
      << jsonl.status();
  EXPECT_EQ(ReadFile(path), before);
}

TEST(Results, MergeKeepsEachPointOnceInOrder) {
  TempDir dir;
  const std::string header = "point,key,status,reason,a\n";
  WriteFile(dir / "1.csv", header + "3,a=3,ok,,3\n0,a=0,ok,,0\n");
  WriteFile(dir / "2.csv",
            header + "1,a=1,skipped,\"why, indeed\",1\n3,a=3,ok,,3\n2,a=2");
  WriteFile(dir / "3.csv", "");
  absl::StatusOr<int64_t> rows = sweep::MergeResults(
      {dir / "1.csv", dir / "2.csv", dir / "3.csv"}, dir / "all.csv");
  ASSERT_TRUE(rows.ok()) << rows.status();
  EXPECT_EQ(*rows, 3);
  EXPECT_EQ(
      ReadFile(dir / "all.csv"),
      header + "0,a=0,ok,,0\n1,a=1,skipped,\"why, indeed\",1\n3,a=3,ok,,3\n");

  WriteFile(dir / "4.csv", header + "3,a=3,ok,,4\n");
  EXPECT_TRUE(absl::StrContains(
      sweep::MergeResults({dir / "1.csv", dir / "4.csv"}, dir / "x.csv")
          .status()
          .message(),
      "4.csv:2: point 3 (a=3) differs from its row at "));
  WriteFile(dir / "5.csv", "point,key,status,reason,b\n");
  EXPECT_TRUE(absl::StrContains(
      sweep::MergeResults({dir / "1.csv", dir / "5.csv"}, dir / "x.csv")
          .status()
          .message(),
      "5.csv: its columns or format differ from "));
  EXPECT_TRUE(absl::StrContains(
      sweep::MergeResults({dir / "1.csv"}, dir / "1.csv").status().message(),
      "1.csv: is also an input"));
}

// ---- The runner, with workers that need no simulator ------------------------

// The batch size a worker was given (the last override).
int BatchOf(const std::vector<std::string>& overrides) {
  const std::string& last = overrides.back();
  return std::stoi(last.substr(last.find('=') + 1));
}

int GoodWorker(const std::string&, const std::vector<std::string>& overrides) {
  v1::RunReport report;
  report.set_batch_size(BatchOf(overrides));
  report.set_output_tokens_per_s(10.0 * BatchOf(overrides));
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(report, &json);
  std::cout << json << "\n";
  return 0;
}

// Batch 3 is an invalid point, 4 crashes, 5 prints no report.
int FlakyWorker(const std::string& scenario,
                const std::vector<std::string>& overrides) {
  switch (BatchOf(overrides)) {
    case 3:
      std::cerr << "shardsim: batch 3 is odd\n";
      return 1;
    case 4:
      kill(getpid(), SIGKILL);
      return 0;
    case 5:
      std::cout << "not a report";
      return 0;
    default:
      return GoodWorker(scenario, overrides);
  }
}

TEST(Runner, CrashedPointsHaveNoRowAndARerunRetriesThem) {
  TempDir dir;
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

// ---- shardsim sweep and merge -----------------------------------------------

std::string Sweep(const TempDir& dir, const std::string& text,
                  const std::string& out, const std::string& flags,
                  int expected_exit = 0) {
  WriteFile(dir / "sweep.textproto", text);
  const Result r = RunShardsim(absl::StrCat("sweep ", dir / "sweep.textproto",
                                            " --out=", dir / out, " ", flags));
  EXPECT_EQ(r.exit_code, expected_exit) << r.out;
  return ReadFile(dir / out);
}

TEST(SweepCli, InvalidPointsAreSkippedRowsWithTheReason) {
  TempDir dir;
  const std::string csv = Sweep(dir,
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
  TempDir dir;
  const std::string one = Sweep(dir, SmallSweep(), "one.csv", "--jobs=1");
  const std::string two = Sweep(dir, SmallSweep(), "two.csv", "--jobs=2");
  EXPECT_EQ(Lines(one).size(), 7u);
  EXPECT_EQ(one, two);
  // Running again finds every point done and changes nothing.
  EXPECT_EQ(Sweep(dir, SmallSweep(), "two.csv", "--jobs=2"), one);
}

TEST(SweepCli, ResumeAfterATornRowGivesTheUninterruptedRows) {
  TempDir dir;
  const std::string whole = Sweep(dir, SmallSweep(), "whole.csv", "--jobs=2");
  const std::vector<std::string> lines = Lines(whole);
  ASSERT_EQ(lines.size(), 7u);
  // As a kill leaves it: half of the rows, out of order, and half a row.
  WriteFile(dir / "part.csv", lines[0] + "\n" + lines[5] + "\n" + lines[2] +
                                  "\n" + lines[1] + "\n" +
                                  lines[4].substr(0, 30));
  EXPECT_EQ(Sweep(dir, SmallSweep(), "part.csv", "--jobs=2"), whole);
}

TEST(SweepCli, KilledAndRerunGivesTheUninterruptedRows) {
  TempDir dir;
  // Long enough to be killed part-way: 24 pipelined points (pp=4 replays
  // step by step) of about 0.1 s each.
  const std::string text = absl::StrCat(
      Base(),
      "set: \"workload.output_len=256\"\n"
      "set: \"workload.prompt_len=256\"\n"
      "set: \"parallelism.tp=2\"\n"
      "set: \"parallelism.pp=4\"\n"
      "axes { path: \"workload.batch_size\" values: [\"1\", \"8\", \"16\"] }\n"
      "axes { path: \"runtime.kv_block_tokens\"\n"
      "       values: [\"0\", \"16\", \"32\", \"64\", \"128\", \"256\", "
      "\"512\", \"1024\"] }\n");
  const std::string whole = Sweep(dir, text, "whole.jsonl", "--jobs=2");
  ASSERT_EQ(Lines(whole).size(), 24u);
  for (int signal : {SIGKILL, SIGINT}) {
    const std::string out = dir / absl::StrCat("killed", signal, ".jsonl");
    const pid_t pid = StartShardsim(
        {"sweep", dir / "sweep.textproto", "--out=" + out, "--jobs=2"},
        dir / "log");
    ASSERT_TRUE(WaitForLines(out, 4, pid)) << "finished before it was killed";
    kill(pid, signal);
    int status = 0;
    waitpid(pid, &status, 0);
    if (signal == SIGINT) {
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 130) << status;
      EXPECT_TRUE(
          absl::StrContains(ReadFile(dir / "log"), "shardsim: interrupted: "))
          << ReadFile(dir / "log");
    } else {
      EXPECT_TRUE(WIFSIGNALED(status)) << status;
    }
    // Whatever is in the file is whole rows of the uninterrupted run.
    const std::vector<std::string> whole_lines = Lines(whole);
    const std::set<std::string> all_rows(whole_lines.begin(),
                                         whole_lines.end());
    const std::string partial = ReadFile(out);
    for (const std::string& line :
         Lines(partial.substr(0, partial.rfind('\n') + 1))) {
      EXPECT_EQ(all_rows.count(line), 1u) << line;
    }
    const Result again = RunShardsim(absl::StrCat(
        "sweep ", dir / "sweep.textproto", " --out=", out, " --jobs=2"));
    EXPECT_EQ(again.exit_code, 0) << again.out;
    EXPECT_EQ(ReadFile(out), whole) << "signal " << signal;
  }
}

TEST(SweepCli, ShardsMergedGiveTheWholeSweep) {
  TempDir dir;
  const std::string whole = Sweep(dir, SmallSweep(), "whole.csv", "--jobs=2");
  std::vector<std::string> shards;
  for (int k = 1; k <= 3; ++k) {
    const std::string name = absl::StrCat("shard", k, ".csv");
    const std::string shard = Sweep(dir, SmallSweep(), name,
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
  TempDir dir;
  const std::vector<std::string> csv =
      Lines(Sweep(dir, SmallSweep(), "r.csv", "--jobs=2"));
  const std::vector<std::string> jsonl =
      Lines(Sweep(dir, SmallSweep(), "r.jsonl", "--jobs=2"));
  ASSERT_EQ(csv.size(), jsonl.size() + 1);
  const std::vector<std::string> header = absl::StrSplit(csv[0], ',');
  for (size_t i = 0; i < jsonl.size(); ++i) {
    const nlohmann::json row = nlohmann::json::parse(jsonl[i]);
    ASSERT_EQ(row.size(), header.size());
    if (row["status"] != "ok") continue;
    const std::vector<std::string> fields = absl::StrSplit(csv[i + 1], ',');
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

// One line, starting "shardsim: ", exit 1.
void ExpectOneLineError(const Result& r, const std::string& contains) {
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  EXPECT_EQ(r.out.rfind("shardsim: ", 0), 0u) << r.out;
  EXPECT_NE(r.out.find(contains), std::string::npos) << r.out;
}

TEST(SweepCli, BadInputIsOneLine) {
  TempDir dir;
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
                     "other.csv:1: its columns are not this sweep's");
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
       {"--jobs=0", "--shard=4/3", "--format=xml", "--frob"}) {
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
