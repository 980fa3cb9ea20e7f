// The shardsim binary as a user runs it: exit codes, and bad input reported
// as one line on stderr (never an abort or a stack trace).
#include <unistd.h>

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/run_shardsim.h"
#include "nlohmann/json.hpp"

namespace {

using ::shardsim::testing::Result;
using ::shardsim::testing::RunShardsim;

// One line, starting "shardsim: ", exit 1.
void ExpectOneLineError(const Result& r, const std::string& contains) {
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  EXPECT_EQ(r.out.rfind("shardsim: ", 0), 0u) << r.out;
  EXPECT_NE(r.out.find(contains), std::string::npos) << r.out;
}

TEST(Cli, MemoryOfTheDefaultScenario) {
  const Result r = RunShardsim("memory scenarios/default.textproto");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("fits: yes, on every GPU"), std::string::npos) << r.out;
}

TEST(Cli, ModelThatDoesNotFitIsAResult) {
  const Result r = RunShardsim("memory scenarios/llama2_70b_one_gpu.textproto --format=json");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("\"overflow_component\": \"weights\""), std::string::npos);
  EXPECT_NE(r.out.find("\"weights_bytes\": \"137953296384\""), std::string::npos);
}

TEST(Cli, ValidateEveryZooFile) {
  // topologies/calibration_data/ holds measurements, not config files.
  const Result r = RunShardsim("validate models/* topologies/*.textproto scenarios/*.textproto");
  EXPECT_EQ(r.exit_code, 0) << r.out;
}

TEST(Cli, BadInputIsOneLine) {
  ExpectOneLineError(RunShardsim("memory scenarios/nope.textproto"),
                     "scenarios/nope.textproto: cannot open file");
  ExpectOneLineError(
      RunShardsim("memory scenarios/default.textproto --set workload.batch_size=-1"),
      "--set workload.batch_size=-1: workload.batch_size: must be positive");
  ExpectOneLineError(RunShardsim("memory scenarios/default.textproto --set nosuch=1"),
                     "no field 'nosuch' in shardsim.v1.Scenario");
  ExpectOneLineError(RunShardsim("validate tests/data/malformed.json"),
                     "tests/data/malformed.json:3:");
  ExpectOneLineError(RunShardsim("validate tests/data/unknown_arch.json"),
                     "model_type: unknown architecture 'rwkv'");
  ExpectOneLineError(RunShardsim("validate tests/data/typo_model.textproto"),
                     "tests/data/typo_model.textproto:4:10: Message type \"shardsim.v1.ModelSpec\" has no field named \"num_layer\"");
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// Field `name` of a one-row CSV from `shardsim run --format=csv`.
double CsvField(const std::string& csv, const std::string& name) {
  const std::vector<std::string> lines = absl::StrSplit(csv, '\n');
  const std::vector<std::string> header = absl::StrSplit(lines.at(0), ',');
  const std::vector<std::string> row = absl::StrSplit(lines.at(1), ',');
  for (size_t i = 0; i < header.size(); ++i) {
    if (header[i] == name) return std::stod(row.at(i));
  }
  ADD_FAILURE() << "no column " << name;
  return 0;
}

TEST(Cli, GoldenReportOfTheDefaultScenario) {
  // Regenerate after an intended change to the model or the report with:
  //   build/sim/cli/shardsim run scenarios/default.textproto > tests/golden/default_run.txt
  const Result r = RunShardsim("run scenarios/default.textproto");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, ReadFile("tests/golden/default_run.txt"));
}

TEST(Cli, SameScenarioTwiceGivesIdenticalJson) {
  const std::string args =
      "run scenarios/default.textproto --format=json --set parallelism.tp=4 "
      "--set parallelism.pp=2 --set workload.output_len=64";
  const Result a = RunShardsim(args);
  const Result b = RunShardsim(args);
  EXPECT_EQ(a.exit_code, 0);
  EXPECT_EQ(a.out, b.out);
  EXPECT_GT(a.out.size(), 1000u);
}

TEST(Cli, PcieCommunicatesMoreThanNvSwitch) {
  const std::string common =
      "run scenarios/llama2_70b_one_gpu.textproto --format=csv --set parallelism.tp=8 "
      "--set workload.batch_size=16 --set workload.prompt_len=512 "
      "--set workload.output_len=32 --set topology_file=../topologies/";
  const Result l40s = RunShardsim(common + "pcie_l40s_8x.textproto");
  const Result h100 = RunShardsim(common + "dgx_h100.textproto");
  ASSERT_EQ(l40s.exit_code, 0) << l40s.out;
  ASSERT_EQ(h100.exit_code, 0) << h100.out;
  EXPECT_GT(CsvField(l40s.out, "comm_overhead"), CsvField(h100.out, "comm_overhead"));
  EXPECT_GT(CsvField(h100.out, "comm_overhead"), 0);
}

TEST(Cli, PlacementAcrossThePcieBridgeCommunicatesMore) {
  // 4x A100 PCIe with NVLink bridges between GPUs 0-1 and 2-3: a tp=2 group
  // on a bridged pair communicates faster than one split across the sockets.
  const std::string common =
      "run scenarios/default.textproto --format=csv --set model_file=../models/llama2_7b.json "
      "--set topology_file=../topologies/pcie_a100_4x_nvlink_pairs.textproto "
      "--set parallelism.tp=2 --set workload.batch_size=16 --set workload.prompt_len=2048 "
      "--set workload.output_len=4 --set parallelism.placement=";
  const Result bridged = RunShardsim(common + "0,1");
  const Result split = RunShardsim(common + "1,2");
  ASSERT_EQ(bridged.exit_code, 0) << bridged.out;
  ASSERT_EQ(split.exit_code, 0) << split.out;
  // The prefill's large all-reduces move at PCIe speed instead of NVLink's.
  EXPECT_GT(CsvField(split.out, "comm_overhead"), 2 * CsvField(bridged.out, "comm_overhead"));
}

TEST(Cli, TraceOpensAsChromeTraceJson) {
  const std::string path = "build_trace_test.json";
  const Result r = RunShardsim(
      "run scenarios/default.textproto --set workload.output_len=8 --trace=" + path);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const nlohmann::json trace = nlohmann::json::parse(ReadFile(path));
  std::remove(path.c_str());
  std::set<int> gpus;
  int slices = 0;
  int counters = 0;
  for (const auto& event : trace.at("traceEvents")) {
    gpus.insert(event.at("pid").get<int>());
    slices += event.at("ph") == "X" ? 1 : 0;
    counters += event.at("ph") == "C" ? 1 : 0;
  }
  EXPECT_EQ(gpus.size(), 8u);
  // 8 steps on 8 GPUs, each with a compute and a communication slice.
  EXPECT_EQ(slices, 8 * 8 * 2);
  EXPECT_EQ(counters, 8 * 8);
}

TEST(Cli, TraceOpsShowsTheFirstStepsOpByOp) {
  const std::string path = "build_trace_ops_test.json";
  const Result r = RunShardsim("run scenarios/default.textproto --set workload.output_len=4 "
                               "--trace-ops=1 --trace=" + path);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const nlohmann::json trace = nlohmann::json::parse(ReadFile(path));
  std::remove(path.c_str());
  std::vector<nlohmann::json> gpu0;
  for (const auto& event : trace.at("traceEvents")) {
    if (event.at("ph") == "X" && event.at("pid") == 0) gpu0.push_back(event);
  }
  // Prefill op by op: embedding and its all-reduce, 80 layers of 10 ops and
  // 2 all-reduces, final norm, head and the logits all-gather; then 3 decode
  // steps of one compute and one communication slice.
  ASSERT_EQ(gpu0.size(), 2u + 80 * 12 + 3 + 3 * 2);
  // The op slices tile the prefill: each starts where the previous ended, and
  // the last ends where the first decode step starts.
  for (size_t i = 1; i < 2 + 80 * 12 + 3; ++i) {
    EXPECT_NEAR(gpu0[i].at("ts").get<double>(),
                gpu0[i - 1].at("ts").get<double>() + gpu0[i - 1].at("dur").get<double>(),
                1e-2)
        << i;
  }
  EXPECT_EQ(gpu0[2 + 80 * 12 + 3].at("name"), "decode 1 mb0");
  EXPECT_EQ(RunShardsim("run scenarios/default.textproto --trace-ops=x").exit_code, 2);
}

TEST(Cli, RunBadInputIsOneLine) {
  ExpectOneLineError(
      RunShardsim("run scenarios/default.textproto --set topology.gpu=H300"),
      "topology.gpu: unknown GPU 'H300'");
  ExpectOneLineError(
      RunShardsim("run scenarios/default.textproto --set parallelism.dp=2"),
      "tp x pp x dp = 8 x 1 x 2 = 16 GPUs, but DGX-H100 has 8");
  ExpectOneLineError(
      RunShardsim("run scenarios/default.textproto --set topology_file=../tests/data/island.textproto --set parallelism.tp=4"),
      "links: no route from GPU 0 (node 0) to GPU 3 (node 0)");
  ExpectOneLineError(
      RunShardsim("run scenarios/default.textproto --trace=/nonexistent/dir/t.json --set workload.output_len=2"),
      "/nonexistent/dir/t.json: cannot write the trace");
}

TEST(Cli, OpsListsOneLayerOpByOp) {
  const Result r = RunShardsim("ops scenarios/default.textproto --format=csv");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  for (const char* op : {"embedding", "input_norm", "qkv_proj", "rope", "attention",
                         "o_proj", "post_attn_norm", "gate_up_proj", "act", "down_proj",
                         "residual_add", "final_norm", "lm_head", "all_reduce"}) {
    EXPECT_NE(r.out.find(absl::StrCat(",", op, ",")), std::string::npos) << op;
  }
  // A decode step of a 70B model at tp=8: the GEMMs stream their weights.
  EXPECT_NE(r.out.find("layer,qkv_proj,1,"), std::string::npos);
  EXPECT_NE(r.out.find(",memory,"), std::string::npos);
  // A 4096-token prefill is compute-bound.
  const Result prefill = RunShardsim("ops scenarios/default.textproto --tokens=4096");
  ASSERT_EQ(prefill.exit_code, 0) << prefill.out;
  EXPECT_NE(prefill.out.find("compute"), std::string::npos);
  EXPECT_EQ(RunShardsim("ops scenarios/default.textproto --tokens=-3").exit_code, 2);
}

// Each collective row names the algorithm and protocol NCCL's model picks:
// on a DGX H100 a decode step's 1 MiB all-reduces reduce in the switch (NVLS),
// on a DGX A100 (no NVLS) the same all-reduce runs a ring.
TEST(Cli, OpsShowsEachCollectivesAlgorithmAndProtocol) {
  const Result h100 = RunShardsim("ops scenarios/default.textproto --format=csv");
  ASSERT_EQ(h100.exit_code, 0) << h100.out;
  EXPECT_NE(h100.out.find("efficiency,algorithm,protocol\n"), std::string::npos);
  EXPECT_NE(h100.out.find("collective,all_reduce,1,0,1048576,"), std::string::npos);
  EXPECT_NE(h100.out.find(",network,0.4"), std::string::npos);
  EXPECT_NE(h100.out.find(",nvls,Simple\n"), std::string::npos);
  const Result a100 = RunShardsim(
      "ops scenarios/default.textproto --format=json "
      "--set topology_file=../topologies/dgx_a100.textproto");
  ASSERT_EQ(a100.exit_code, 0) << a100.out;
  int collectives = 0;
  const nlohmann::json report = nlohmann::json::parse(a100.out);
  for (const auto& op : report.at("ops")) {
    if (op.at("part") != "collective") continue;
    ++collectives;
    EXPECT_EQ(op.at("algorithm"), "ring") << op;
    EXPECT_NE(op.at("protocol"), "") << op;
  }
  EXPECT_GT(collectives, 0);
}

TEST(Cli, OpsWithoutTensorParallelismSumsToTheLayerTime) {
  const Result r = RunShardsim(
      "ops scenarios/llama3_8b_one_gpu.textproto --format=json");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const nlohmann::json report = nlohmann::json::parse(r.out);
  double sum = 0;
  for (const auto& op : report.at("ops")) {
    if (op.at("part") == "layer") sum += op.at("time_s").get<double>();
    EXPECT_NE(op.at("part"), "collective");
  }
  EXPECT_NEAR(report.at("layer_time_s").get<double>(), sum, 1e-15);
}

TEST(Cli, CalibrateReproducesTheCommittedProfiles) {
  // The data is in the project (topologies/calibration_data): no ../shared.
  const std::string dir = ::testing::TempDir() + "/calibrate_test_" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  for (const char* file : {"gpus.textproto", "dgx_a100.textproto",
                           "pcie_a100_4x_nvlink_pairs.textproto", "dgx_h100.textproto",
                           "hgx_h200.textproto", "dgx_b200.textproto"}) {
    std::filesystem::copy(std::string("topologies/") + file, dir);
  }
  const Result r = RunShardsim("calibrate --out=" + dir);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(ReadFile(dir + "/efficiency.textproto"),
            ReadFile("topologies/efficiency.textproto"));
  EXPECT_EQ(ReadFile(dir + "/collectives.textproto"),
            ReadFile("topologies/collectives.textproto"));
  std::filesystem::remove_all(dir);
}

// Calibration follows the hardware, not the files: a user's copy of a shipped
// cluster and catalog, anywhere, gets the shipped numbers byte for byte.
TEST(Cli, AClusterCopiedElsewhereWithItsCatalogGivesIdenticalOutput) {
  const std::string dir = ::testing::TempDir() + "/copied_cluster_" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  for (const char* file : {"dgx_h100.textproto", "gpus.textproto", "dgx_a100.textproto"}) {
    std::filesystem::copy(std::string("topologies/") + file, dir);
  }
  const Result shipped = RunShardsim("run scenarios/default.textproto --format=json");
  const Result copied = RunShardsim("run scenarios/default.textproto --format=json "
                                    "--set topology_file=" + dir + "/dgx_h100.textproto");
  ASSERT_EQ(shipped.exit_code, 0) << shipped.out;
  EXPECT_EQ(copied.out, shipped.out);
  EXPECT_NE(shipped.out.find("the built-in profile of H100-SXM5-80GB (by catalog name)"),
            std::string::npos);
  // A measured machine's own collective fit is chosen by name in the file,
  // so renaming the cluster keeps it.
  std::string a100 = ReadFile(dir + "/dgx_a100.textproto");
  a100.replace(a100.find("name: \"DGX-A100\""), 16, "name: \"my cluster\"");
  std::ofstream(dir + "/dgx_a100.textproto") << a100;
  const Result renamed = RunShardsim("run scenarios/default.textproto --set topology_file=" +
                                     dir + "/dgx_a100.textproto");
  const Result original = RunShardsim(
      "run scenarios/default.textproto --set topology_file=../topologies/dgx_a100.textproto");
  ASSERT_EQ(renamed.exit_code, 0) << renamed.out;
  auto line = [](const std::string& out, const std::string& start) {
    const size_t at = out.find(start);
    return at == std::string::npos ? std::string() : out.substr(at, out.find('\n', at) - at);
  };
  EXPECT_NE(line(renamed.out, "note: collective tuning: 'dgx_a100_measured'"), "");
  EXPECT_EQ(line(renamed.out, "time per output token"),
            line(original.out, "time per output token"));
  std::filesystem::remove_all(dir);
}

TEST(Cli, FidelityAsJsonHasEveryCategoryWithItsFigures) {
  const Result r = RunShardsim("fidelity --no-end-to-end --format=json");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const nlohmann::json report = nlohmann::json::parse(r.out);
  ASSERT_GT(report.at("categories").size(), 20u);
  for (const auto& c : report.at("categories")) {
    for (const char* key : {"name", "basis", "n", "median", "p90", "signed_median"}) {
      EXPECT_TRUE(c.contains(key)) << c.dump();
    }
    EXPECT_LE(c.at("median").get<double>(), c.at("p90").get<double>()) << c.dump();
  }
  EXPECT_EQ(RunShardsim("fidelity --format=xml").exit_code, 2);
}

TEST(Cli, EndToEndFidelityDoesNotGrowPastWhatWasReached) {
  const Result r = RunShardsim("fidelity");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  // "name   n   median%   p90%  basis": the median of the two end-to-end rows.
  auto median = [&](const std::string& name) {
    const size_t at = r.out.find(name);
    EXPECT_NE(at, std::string::npos) << name;
    if (at == std::string::npos) return 1.0;
    int count = 0;
    double value = 0;
    std::sscanf(r.out.c_str() + at + name.size(), " %d %lf", &count, &value);
    return value / 100;
  };
  EXPECT_LE(median("static-batch throughput (tok/s/GPU)"), 0.065);
  EXPECT_LE(median("first-token latency (batch 1)"), 0.135);
}

TEST(Cli, UsageErrorsExitTwo) {
  // Our own help, not SimGrid's; SimGrid's options are not ours to take.
  const Result help = RunShardsim("--help");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_EQ(help.out.rfind("usage: shardsim COMMAND", 0), 0u) << help.out;
  EXPECT_EQ(RunShardsim("run scenarios/default.textproto --cfg=foo:bar").exit_code, 2);
  EXPECT_EQ(RunShardsim("run scenarios/default.textproto --trace=").exit_code, 2);
  EXPECT_EQ(RunShardsim("").exit_code, 2);
  EXPECT_EQ(RunShardsim("frobnicate").exit_code, 2);
  EXPECT_EQ(RunShardsim("memory").exit_code, 2);
  EXPECT_EQ(RunShardsim("memory scenarios/default.textproto --format=xml").exit_code, 2);
}

}  // namespace
