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

// One line, starting "shardsim CMD: ", exit 1.
void ExpectOneLineError(const Result& r, const std::string& contains) {
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  EXPECT_EQ(r.out.rfind("shardsim ", 0), 0u) << r.out;
  EXPECT_NE(r.out.find(": "), std::string::npos) << r.out;
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
  // 64-bit integers are JSON numbers (sim/report/format.h).
  EXPECT_NE(r.out.find("\"weights_bytes\": 137953296384,"), std::string::npos) << r.out;
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
  // Written outside the source tree (tests run from it), named by the pid.
  const std::string path =
      ::testing::TempDir() + "/shardsim_trace_" + std::to_string(getpid()) + ".json";
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
  const std::string path =
      ::testing::TempDir() + "/shardsim_trace_ops_" + std::to_string(getpid()) + ".json";
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
  // 2 all-reduces, final norm, head, the logits all-gather and the sampler's
  // argmax; then 3 decode steps of one compute and one communication slice.
  ASSERT_EQ(gpu0.size(), 2u + 80 * 12 + 4 + 3 * 2);
  // The op slices tile the prefill: each starts where the previous ended, and
  // the last ends where the first decode step starts.
  for (size_t i = 1; i < 2 + 80 * 12 + 4; ++i) {
    EXPECT_NEAR(gpu0[i].at("ts").get<double>(),
                gpu0[i - 1].at("ts").get<double>() + gpu0[i - 1].at("dur").get<double>(),
                1e-2)
        << i;
  }
  EXPECT_EQ(gpu0[2 + 80 * 12 + 4].at("name"), "decode 1 mb0");
  EXPECT_EQ(gpu0[2 + 80 * 12 + 3].at("name"), "sample_argmax");
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
  // Identical but for the --set that the report says was applied.
  nlohmann::json copied_json = nlohmann::json::parse(copied.out);
  EXPECT_EQ(copied_json.at("what_ran").at("overrides"),
            nlohmann::json::array({"topology_file=" + dir + "/dgx_h100.textproto"}));
  copied_json["what_ran"]["overrides"] = nlohmann::json::array();
  EXPECT_EQ(copied_json, nlohmann::json::parse(shipped.out));
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
  EXPECT_EQ(RunShardsim("help").out, help.out);
  EXPECT_EQ(RunShardsim("run scenarios/default.textproto --cfg=foo:bar").exit_code, 2);
  EXPECT_EQ(RunShardsim("run scenarios/default.textproto --trace=").exit_code, 2);
  EXPECT_EQ(RunShardsim("").exit_code, 2);
  EXPECT_EQ(RunShardsim("frobnicate").exit_code, 2);
  EXPECT_EQ(RunShardsim("memory").exit_code, 2);
  EXPECT_EQ(RunShardsim("memory scenarios/default.textproto --format=xml").exit_code, 2);
}

// Every command and its flags, as sim/cli/command_line.cc declares them:
// `shardsim help CMD` and `shardsim CMD --help` print the same text, which
// names every flag with a description beside it or on the next line.
TEST(Cli, HelpListsEveryFlagOfEveryCommand) {
  const std::vector<std::pair<std::string, std::vector<std::string>>> commands = {
      {"run", {"SCENARIO", "--set", "--format", "--trace", "--trace-ops"}},
      {"serve", {"SCENARIO", "--set", "--format", "--requests"}},
      {"memory", {"SCENARIO", "--set", "--format"}},
      {"ops", {"SCENARIO", "--set", "--format", "--tokens", "--context"}},
      {"calibrate", {"--calibration", "--out"}},
      {"fidelity", {"--calibration", "--no-end-to-end", "--format"}},
      {"sweep", {"SWEEP", "--out", "--jobs", "--format", "--shard", "--timeout"}},
      {"merge", {"SHARD_FILE", "--out"}},
      {"validate", {"FILE"}}};
  const Result top = RunShardsim("help");
  ASSERT_EQ(top.exit_code, 0) << top.out;
  for (const auto& [command, flags] : commands) {
    EXPECT_NE(top.out.find("\n  " + command + " "), std::string::npos) << command;
    const Result help = RunShardsim("help " + command);
    ASSERT_EQ(help.exit_code, 0) << help.out;
    EXPECT_EQ(RunShardsim(command + " --help").out, help.out) << command;
    EXPECT_NE(help.out.find("usage: shardsim " + command), std::string::npos) << help.out;
    const std::vector<std::string> lines = absl::StrSplit(help.out, '\n');
    for (const std::string& flag : std::vector<std::string>(flags)) {
      bool described = false;
      for (size_t i = 0; i < lines.size(); ++i) {
        if (lines[i].rfind("  " + flag + " ", 0) != 0) continue;
        // The description: past the flag column (34), or the next line.
        described = lines[i].size() > 36 ||
                    (i + 1 < lines.size() && lines[i + 1].rfind(std::string(34, ' '), 0) == 0 &&
                     lines[i + 1].size() > 36);
      }
      EXPECT_TRUE(described) << command << " " << flag << "\n" << help.out;
    }
  }
}

// An unknown flag, for every command: one line naming it, exit 2, before
// anything is loaded (even when a required argument is missing too).
TEST(Cli, UnknownFlagIsOneLineAndExitTwo) {
  for (const std::string command : {"run", "serve", "memory", "ops", "calibrate", "fidelity",
                                    "sweep", "merge", "validate"}) {
    const Result r = RunShardsim(command + " --bogus=1");
    EXPECT_EQ(r.exit_code, 2) << command << ": " << r.out;
    EXPECT_EQ(r.out, absl::StrCat("shardsim ", command, ": unknown option --bogus=1 (shardsim ",
                                  command, " --help lists its flags)\n"));
  }
  const Result typo = RunShardsim("memory scenarios/default.textproto --fromat=json");
  EXPECT_EQ(typo.exit_code, 2);
  EXPECT_EQ(typo.out.rfind("shardsim memory: unknown option --fromat=json", 0), 0u) << typo.out;
  const Result value = RunShardsim("run scenarios/default.textproto --trace-ops=x");
  EXPECT_EQ(value.exit_code, 2);
  EXPECT_EQ(value.out,
            "shardsim run: --trace-ops: expected an integer from 0 to 1073741824, got 'x' "
            "(shardsim run --help lists its flags)\n");
  const Result command = RunShardsim("frobnicate");
  EXPECT_EQ(command.out,
            "shardsim: unknown command 'frobnicate' (shardsim help lists the commands)\n");
}

// `--set a=b` and `--set=a=b` are one flag; values apply in order.
TEST(Cli, BothSpellingsOfAFlag) {
  const Result a = RunShardsim(
      "memory scenarios/default.textproto --set parallelism.tp=4 --set=parallelism.tp=2 "
      "--format json");
  const Result b = RunShardsim(
      "memory --set=parallelism.tp=4 --format=json scenarios/default.textproto --set "
      "parallelism.tp=2");
  ASSERT_EQ(a.exit_code, 0) << a.out;
  const nlohmann::json report = nlohmann::json::parse(a.out);
  EXPECT_EQ(report.at("gpus").size(), 2u);
  // The overrides as given, in order (what_ran), differ only in spelling.
  EXPECT_EQ(report.at("what_ran").at("overrides"),
            nlohmann::json::array({"parallelism.tp=4", "parallelism.tp=2"}));
  EXPECT_EQ(a.out, b.out);
}

// "shardsim 0.1.0 (git <describe>)": the CMake project version, and the
// commit the build was configured from (or "unknown").
TEST(Cli, Version) {
  const Result r = RunShardsim("--version");
  EXPECT_EQ(r.exit_code, 0);
  ASSERT_EQ(r.out.rfind("shardsim ", 0), 0u) << r.out;
  const std::vector<std::string> words = absl::StrSplit(r.out, ' ');
  ASSERT_EQ(words.size(), 4u) << r.out;
  const std::vector<std::string> version = absl::StrSplit(words[1], '.');
  ASSERT_EQ(version.size(), 3u) << r.out;
  for (const std::string& part : version) {
    EXPECT_FALSE(part.empty());
    EXPECT_EQ(part.find_first_not_of("0123456789"), std::string::npos) << r.out;
  }
  EXPECT_EQ(words[2], "(git");
  EXPECT_EQ(words[3].back(), '\n');
  EXPECT_EQ(words[3].substr(words[3].size() - 2), ")\n");
  const std::string commit = words[3].substr(0, words[3].size() - 2);
  EXPECT_FALSE(commit.empty());
  EXPECT_EQ(commit.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789.-_"
                                     "ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
            std::string::npos)
      << r.out;
}

// Item 16: the run's text and JSON say what ran: precision, runtime,
// overrides, calibration profile and collective tuning.
TEST(Cli, ReportsSayWhatRan) {
  const std::string args =
      "run scenarios/default.textproto --set workload.output_len=2 "
      "--set=model.precision.recipe=fp8";
  const Result text = RunShardsim(args);
  ASSERT_EQ(text.exit_code, 0) << text.out;
  for (const std::string line :
       {"\nprecision  recipe fp8: weights FP8 (scale per tensor), GEMM inputs FP8, activations "
        "BF16, communication BF16, KV cache BF16\n",
        "\nruntime    CUDA context 1.79 GiB, comm buffers 256.00 MiB per communicator, allocator "
        "slack 0%, contiguous KV cache, fused attention\n",
        "\nengine     GENERIC: no CPU step time, no host launch bound, NCCL all-reduce, sampling "
        "GREEDY (argmax: 1 kernel, 2 B a BF16 logit)\n",
        "\noverrides  workload.output_len=2 model.precision.recipe=fp8\n",
        "\ncalibration calibrated on H100-SXM5-80GB (",
        "\ncollectives "}) {
    EXPECT_NE(text.out.find(line), std::string::npos) << line << "\n" << text.out;
  }
  const Result json = RunShardsim(args + " --format=json");
  ASSERT_EQ(json.exit_code, 0) << json.out;
  const nlohmann::json what = nlohmann::json::parse(json.out).at("what_ran");
  EXPECT_EQ(what.at("precision").at("recipe"), "fp8");
  EXPECT_EQ(what.at("precision").at("weight_dtype"), "FP8");
  // sim/memory/ledger.h's defaults: 1.79 GiB, 32 channels x 2 x 4 MiB.
  EXPECT_EQ(what.at("runtime").at("cuda_context_bytes"),
            static_cast<int64_t>(1.79 * (int64_t{1} << 30)));
  EXPECT_EQ(what.at("runtime").at("comm_buffer_bytes_per_communicator"), int64_t{256} << 20);
  EXPECT_EQ(what.at("overrides"),
            nlohmann::json::array({"workload.output_len=2", "model.precision.recipe=fp8"}));
  EXPECT_EQ(what.at("calibrated"), true);
  EXPECT_NE(what.at("calibration_profile").get<std::string>().find("H100-SXM5-80GB"),
            std::string::npos);
  EXPECT_FALSE(what.at("collective_tuning").get<std::string>().empty());
  const Result memory = RunShardsim("memory scenarios/default.textproto --set parallelism.tp=4");
  EXPECT_NE(memory.out.find("\noverrides parallelism.tp=4\n"), std::string::npos) << memory.out;
}

// Item 16: a plan that does not fit says so first, before any latency or
// cost: which GPU, the component that crosses capacity, and by how much.
TEST(Cli, DoesNotFitComesFirst) {
  const Result run =
      RunShardsim("run scenarios/llama2_70b_one_gpu.textproto --set workload.output_len=2");
  ASSERT_EQ(run.exit_code, 0) << run.out;
  EXPECT_EQ(run.out.rfind("does not fit: GPU 0 needs ", 0), 0u) << run.out;
  const std::string first = run.out.substr(0, run.out.find('\n'));
  EXPECT_NE(first.find("(over by "), std::string::npos) << first;
  EXPECT_NE(first.find("passing capacity at weights"), std::string::npos) << first;
  const Result memory = RunShardsim("memory scenarios/llama2_70b_one_gpu.textproto");
  EXPECT_EQ(memory.out.rfind("does not fit: GPU 0 needs ", 0), 0u) << memory.out;
  const Result fits = RunShardsim("memory scenarios/default.textproto");
  EXPECT_EQ(fits.out.rfind("scenario ", 0), 0u) << fits.out;
}

// Item 17: CSV quotes what needs it; a cost without a GPU price (H100-NVL has
// no public one in the catalog, and DGX B200 names none) is empty in
// CSV and null in JSON; 64-bit integers are JSON numbers; a name that looks
// like a number stays a string.
TEST(Cli, CsvAndJsonValues) {
  const std::string args =
      "run scenarios/default.textproto --set workload.output_len=2 "
      "--set topology_file=../topologies/dgx_b200.textproto --set topology.gpu=H100-NVL-94GB";
  const Result csv = RunShardsim(args + " --format=csv --set 'name=tp8, \"quoted\"'");
  ASSERT_EQ(csv.exit_code, 0) << csv.out;
  const std::vector<std::string> lines = absl::StrSplit(csv.out, '\n');
  ASSERT_EQ(lines.size(), 3u) << csv.out;
  EXPECT_EQ(lines[1].rfind("\"tp8, \"\"quoted\"\"\",", 0), 0u) << csv.out;
  EXPECT_EQ(lines[1].back(), ',') << "no price, no cost: " << csv.out;
  const Result json = RunShardsim(args + " --format=json --set name=123");
  ASSERT_EQ(json.exit_code, 0) << json.out;
  const nlohmann::json report = nlohmann::json::parse(json.out);
  EXPECT_TRUE(report.at("cost_per_million_output_tokens").is_null()) << json.out;
  EXPECT_EQ(report.at("scenario"), "123");
  EXPECT_TRUE(report.at("output_tokens").is_number_integer()) << json.out;
  EXPECT_TRUE(report.at("gpus").at(0).at("peak_memory").at("weights_bytes").is_number_integer());
  const Result priced = RunShardsim(
      "run scenarios/default.textproto --set workload.output_len=2 --format=json");
  EXPECT_GT(nlohmann::json::parse(priced.out).at("cost_per_million_output_tokens").get<double>(),
            0);
}

// One output token: the prefill alone, no decode step, so no time per
// output token. JSON says null and CSV leaves it empty (both said 0).
TEST(Cli, OneOutputTokenHasNoTimePerOutputToken) {
  const std::string args = "run scenarios/default.textproto --set workload.output_len=1";
  const Result json = RunShardsim(args + " --format=json");
  ASSERT_EQ(json.exit_code, 0) << json.out;
  const nlohmann::json report = nlohmann::json::parse(json.out);
  EXPECT_TRUE(report.at("tpot").at("mean_s").is_null()) << json.out;
  EXPECT_TRUE(report.at("tpot").at("p99_s").is_null()) << json.out;
  EXPECT_GT(report.at("ttft").at("mean_s").get<double>(), 0);
  const Result csv = RunShardsim(args + " --format=csv");
  ASSERT_EQ(csv.exit_code, 0) << csv.out;
  const std::vector<std::string> lines = absl::StrSplit(csv.out, '\n');
  ASSERT_EQ(lines.size(), 3u) << csv.out;
  const std::vector<std::string> header = absl::StrSplit(lines[0], ',');
  const std::vector<std::string> row = absl::StrSplit(lines[1], ',');
  ASSERT_EQ(header.size(), row.size()) << csv.out;
  for (size_t i = 0; i < header.size(); ++i) {
    if (header[i].rfind("tpot_", 0) == 0) {
      EXPECT_EQ(row[i], "") << header[i];
    }
    if (header[i] == "ttft_s") {
      EXPECT_NE(row[i], "") << header[i];
    }
  }
}

// Item 18: op slices carry their FLOPs and bytes, collectives their bytes.
TEST(Cli, TraceOpSlicesCarryFlopsAndBytes) {
  const std::string path =
      ::testing::TempDir() + "/shardsim_trace_args_" + std::to_string(getpid()) + ".json";
  const Result r = RunShardsim("run scenarios/default.textproto --set workload.output_len=2 "
                               "--trace-ops=1 --trace=" + path);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  std::ifstream in(path);
  const nlohmann::json trace = nlohmann::json::parse(in);
  std::filesystem::remove(path);
  int ops = 0;
  int collectives = 0;
  for (const auto& event : trace.at("traceEvents")) {
    if (event.at("ph") != "X" || !event.contains("args")) continue;
    const std::string name = event.at("name");
    if (event.at("tid") == 0) {
      ++ops;
      EXPECT_GE(event.at("args").at("flops").get<double>(), 0) << name;
      EXPECT_GT(event.at("args").at("bytes").get<double>(), 0) << name;
    } else {
      ++collectives;
      EXPECT_GT(event.at("args").at("bytes").get<double>(), 0) << name;
    }
  }
  EXPECT_GT(ops, 80 * 8);  // 80 layers of several ops, on each of 8 GPUs
  EXPECT_GT(collectives, 80 * 8);
}

}  // namespace
