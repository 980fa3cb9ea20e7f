// Every config file in the repository loads and validates, and bad input is
// one clear error naming the file, line:column and field.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "sim/base/config_file.h"
#include "sim/scenario/scenario.h"

namespace shardsim {
namespace {

std::vector<std::string> FilesIn(const std::string& dir) {
  std::vector<std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    // Hidden files are not zoo files: the bad-input tests below write
    // scenarios/.test_*.textproto while this test may be listing the folder.
    if (entry.is_regular_file() && entry.path().filename().string()[0] != '.') {
      files.push_back(entry.path().string());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

TEST(Configs, EveryFileValidates) {
  int checked = 0;
  for (const char* dir : {"models", "topologies", "scenarios"}) {
    for (const std::string& file : FilesIn(dir)) {
      absl::StatusOr<std::string> summary = scenario::ValidateFile(file);
      EXPECT_TRUE(summary.ok()) << file << ": " << summary.status();
      ++checked;
    }
  }
  EXPECT_GE(checked, 16 + 7 + 4);
}

// Writes `text` to a scenario file under a temporary directory that mirrors
// the repository's (so ../models and ../topologies resolve) and loads it.
absl::Status LoadScenarioText(const std::string& text,
                              const std::vector<std::string>& overrides = {}) {
  // Not in the source tree: a temporary folder where models/ and
  // topologies/ link to the repository's, entered for the load, so errors
  // name "scenarios/.test_<test>.textproto" as if it were in the repository.
  namespace fs = std::filesystem;
  const fs::path repo = fs::current_path();
  std::string pattern = ::testing::TempDir() + "shardsim_config_XXXXXX";
  const fs::path root = ::mkdtemp(pattern.data());
  fs::create_directory(root / "scenarios");
  fs::create_directory_symlink(repo / "models", root / "models");
  fs::create_directory_symlink(repo / "topologies", root / "topologies");
  const std::string path =
      std::string("scenarios/.test_") +
      ::testing::UnitTest::GetInstance()->current_test_info()->name() +
      ".textproto";
  std::ofstream(root / path, std::ios::binary) << text;
  fs::current_path(root);
  absl::Status status = scenario::LoadScenario(path, overrides).status();
  fs::current_path(repo);
  fs::remove_all(root);
  return status;
}

constexpr char kGood[] =
    "model_file: \"../models/llama3_8b.json\"\n"
    "topology_file: \"../topologies/dgx_h100.textproto\"\n"
    "parallelism { tp: 2 }\n"
    "workload { batch_size: 4 prompt_len: 128 output_len: 16 }\n";

TEST(BadInput, GoodScenarioLoads) { EXPECT_TRUE(LoadScenarioText(kGood).ok()); }

TEST(BadInput, MisspelledField) {
  absl::Status s = LoadScenarioText(
      "model_file: \"../models/llama3_8b.json\"\nworkload { batchsize: 4 }\n");
  EXPECT_EQ(std::string(s.message()),
            "scenarios/.test_MisspelledField.textproto:2:21: Message type "
            "\"shardsim.v1.Workload\" has no field named \"batchsize\".");
}

TEST(BadInput, NegativeSize) {
  absl::Status s = LoadScenarioText(
      "model_file: \"../models/llama3_8b.json\"\n"
      "topology_file: \"../topologies/dgx_h100.textproto\"\n"
      "workload {\n  batch_size: -4 prompt_len: 128 }\n");
  EXPECT_EQ(std::string(s.message()),
            "scenarios/.test_NegativeSize.textproto:4:3: workload.batch_size: must "
            "be positive, got -4");
}

TEST(BadInput, NegativeSizeInInlineModelOverride) {
  absl::Status s = LoadScenarioText(std::string(kGood) +
                                    "model {\n  num_layers: -1 }\n");
  EXPECT_EQ(std::string(s.message()),
            "scenarios/.test_NegativeSizeInInlineModelOverride.textproto:6:3: model.num_layers: must be "
            "positive, got -1");
}

TEST(BadInput, TpMustDivideTheHeads) {
  absl::Status s = LoadScenarioText(kGood, {"parallelism.tp=3"});
  EXPECT_EQ(std::string(s.message()),
            "--set parallelism.tp=3: parallelism.tp: tp=3 does not divide the 32 "
            "attention heads of llama3_8b");
}

TEST(BadInput, TpBeyondTheKvHeadsReplicatesThem) {
  // Llama-3-8B: 32 query heads, 8 KV heads; tp=16 replicates each KV head
  // twice (as vLLM does) but needs 16 GPUs.
  absl::Status s = LoadScenarioText(kGood, {"parallelism.tp=16"});
  EXPECT_EQ(std::string(s.message()),
            "--set parallelism.tp=16: parallelism: tp x pp x dp = 16 x 1 x 1 = "
            "16 GPUs, but DGX-H100 has 8");
  EXPECT_TRUE(LoadScenarioText(
                  kGood, {"parallelism.tp=16",
                          "topology_file=../topologies/h100_2node_ib.textproto"})
                  .ok());
}

TEST(BadInput, MissingFile) {
  absl::Status s = LoadScenarioText(
      "model_file: \"../models/nope.json\"\n"
      "topology_file: \"../topologies/dgx_h100.textproto\"\n");
  EXPECT_EQ(std::string(s.message()),
            "scenarios/.test_MissingFile.textproto:1:1: model_file: "
            "scenarios/../models/nope.json: cannot open file");
  EXPECT_TRUE(absl::IsNotFound(
      scenario::LoadScenario("scenarios/missing.textproto", {}).status()));
}

TEST(BadInput, UnknownGpu) {
  absl::Status s = LoadScenarioText(kGood, {"topology.gpu=H300"});
  EXPECT_TRUE(absl::StartsWith(
      s.message(),
      "--set topology.gpu=H300: topology.gpu: unknown GPU 'H300' "
      "(scenarios/../topologies/gpus.textproto has A100-SXM4-40GB, "))
      << s;
}

TEST(BadInput, SetPathThatDoesNotExist) {
  absl::Status s = LoadScenarioText(kGood, {"workload.batchsize=8"});
  EXPECT_EQ(std::string(s.message()),
            "--set workload.batchsize=8: no field 'batchsize' in "
            "shardsim.v1.Workload (fields: batch_size, prompt_len, output_len)");
  s = LoadScenarioText(kGood, {"parallelism.tp=two"});
  EXPECT_EQ(std::string(s.message()),
            "--set parallelism.tp=two: invalid value 'two' for "
            "shardsim.v1.Parallelism.tp (expected a int32)");
  s = LoadScenarioText(kGood, {"model.precision.weight_dtype=INT3"});
  EXPECT_EQ(std::string(s.message()),
            "--set model.precision.weight_dtype=INT3: invalid value 'INT3' for "
            "shardsim.v1.Precision.weight_dtype (one of DTYPE_UNSPECIFIED, FP32, "
            "BF16, FP16, FP8, INT8, INT4)");
  s = LoadScenarioText(kGood, {"workload"});
  EXPECT_EQ(std::string(s.message()), "--set workload: expected field.path=value");
}

TEST(BadInput, UnknownLinkEndpoint) {
  absl::Status s = LoadScenarioText(
      std::string(kGood) +
      "topology {\n  links { a: \"gpu9\" b: \"nvswitch\" bandwidth_bytes_per_s: 1e9 }\n}\n");
  EXPECT_EQ(std::string(s.message()),
            "scenarios/.test_UnknownLinkEndpoint.textproto:6:3: topology.links[0]: "
            "no GPU 'gpu9' on a node of 8 GPUs (gpu0 .. gpu7)");
}

TEST(BadInput, RouteToNowhere) {
  absl::StatusOr<hardware::Cluster> cluster =
      scenario::LoadAndCheckTopology("tests/data/island.textproto");
  EXPECT_EQ(std::string(cluster.status().message()),
            "tests/data/island.textproto:7:1: links: no route from GPU 0 (node 0) "
            "to GPU 3 (node 0)");
}

TEST(BadInput, MisspelledSwitchName) {
  std::string links;
  for (int g = 0; g < 8; ++g) {
    links += absl::StrCat("  links { a: \"gpu", g, "\" b: \"",
                          g == 5 ? "nvswtich" : "nvswitch",
                          "\" bandwidth_bytes_per_s: 1e9 }\n");
  }
  absl::Status s = LoadScenarioText(std::string(kGood) + "topology {\n" + links + "}\n");
  EXPECT_EQ(std::string(s.message()),
            "scenarios/.test_MisspelledSwitchName.textproto:11:3: topology.links[5]: "
            "'nvswtich' is on this link only, so no route can pass through it (a "
            "misspelled name?)");
}

TEST(BadInput, NonPositiveLinkBandwidth) {
  absl::Status s = LoadScenarioText(
      std::string(kGood) +
      "topology {\n  links { a: \"gpu1\" b: \"nvswitch\"\n bandwidth_bytes_per_s: -1 }\n}\n");
  EXPECT_EQ(std::string(s.message()),
            "scenarios/.test_NonPositiveLinkBandwidth.textproto:7:2: "
            "topology.links[0].bandwidth_bytes_per_s: must be between 1e3 and 1e18 bytes "
            "per second");
}

TEST(Placement, ExplicitGpusAndTheirErrors) {
  absl::StatusOr<scenario::LoadedScenario> s = scenario::LoadScenario(
      "scenarios/default.textproto",
      {"parallelism.tp=2", "parallelism.dp=2", "parallelism.placement=7,6,0,3"});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->plan.TpGroup(0, 0), (std::vector<int>{7, 6}));
  EXPECT_EQ(s->plan.TpGroup(1, 0), (std::vector<int>{0, 3}));
  EXPECT_EQ(std::string(LoadScenarioText(kGood, {"parallelism.placement=0,0"}).message()),
            "--set parallelism.placement=0,0: parallelism.placement: GPU 0 is named twice");
  EXPECT_EQ(std::string(LoadScenarioText(kGood, {"parallelism.placement=0,8"}).message()),
            "--set parallelism.placement=0,8: parallelism.placement: GPU 8 is not in "
            "DGX-H100 (0 .. 7)");
  EXPECT_EQ(std::string(LoadScenarioText(kGood, {"parallelism.placement=1"}).message()),
            "--set parallelism.placement=1: parallelism.placement: names 1 GPUs for "
            "tp x pp x dp = 2 ranks");
  EXPECT_EQ(std::string(LoadScenarioText(kGood, {"parallelism.placement=1,x"}).message()),
            "--set parallelism.placement=1,x: invalid list '1,x' for "
            "shardsim.v1.Parallelism.placement (expected comma-separated int32 values)");
}

TEST(BadInput, ImplausibleSizesAreRefusedNotOverflowed) {
  auto message = [&](const std::string& set) {
    return std::string(LoadScenarioText(kGood, {set}).message());
  };
  EXPECT_EQ(message("workload.output_len=100000000"),
            "--set workload.output_len=100000000: workload.output_len: 100000000 tokens is "
            "implausibly long (at most 1048576)");
  EXPECT_EQ(message("workload.batch_size=1000000000000"),
            "--set workload.batch_size=1000000000000: workload.batch_size: 1000000000000 "
            "sequences is implausibly many (at most 16777216)");
  EXPECT_EQ(message("parallelism.dp=536870912"),
            "--set parallelism.dp=536870912: parallelism: tp x pp x dp = 2 x 1 x 536870912 = "
            "1073741824 GPUs, but DGX-H100 has 8");
  EXPECT_EQ(message("model.num_layers=1000000000"),
            "--set model.num_layers=1000000000: model.num_layers: 1000000000 is implausibly "
            "large (at most 16777216)");
  EXPECT_EQ(message("model.num_layers=1000000"),
            "--set model.num_layers=1000000: model.num_layers: num_layers x num_kv_heads x "
            "head_dim: the KV cache would take about 8.19e+09 bytes per token (at most 1 GiB)");
  EXPECT_EQ(message("model.ffn_hidden_size=16000000"), "")
      << "6e12 parameters: big, but a model";
  EXPECT_EQ(message("model.num_experts=1000"),
            "scenarios/../models/llama3_8b.json: model.experts_per_token: must be positive, "
            "got 0");
  EXPECT_EQ(std::string(LoadScenarioText(kGood, {"model.ffn_hidden_size=16000000",
                                                 "model.num_experts=1000",
                                                 "model.experts_per_token=2"})
                            .message()),
            "--set model.num_experts=1000: model.num_experts: the model would have about "
            "6.29e+15 parameters (at most 1e+15)");
  EXPECT_EQ(message("runtime.allocator_overhead_fraction=nan"),
            "--set runtime.allocator_overhead_fraction=nan: "
            "runtime.allocator_overhead_fraction: must be between 0 and 1");
}

TEST(BadInput, NotANumberLinkBandwidth) {
  absl::Status s = LoadScenarioText(
      std::string(kGood) +
      "topology {\n  links { a: \"gpu0\" b: \"gpu1\" bandwidth_bytes_per_s: nan }\n}\n");
  EXPECT_EQ(std::string(s.message()),
            "scenarios/.test_NotANumberLinkBandwidth.textproto:6:31: "
            "topology.links[0].bandwidth_bytes_per_s: must be between 1e3 and 1e18 bytes "
            "per second");
}

TEST(BadInput, DirectoryInsteadOfAFile) {
  EXPECT_EQ(std::string(LoadScenarioText(kGood, {"model_file=../models"}).message()),
            "--set model_file=../models: model_file: scenarios/../models: is a directory, "
            "not a file");
  EXPECT_EQ(std::string(scenario::LoadScenario("scenarios", {}).status().message()),
            "scenarios: is a directory, not a file");
}

TEST(BadInput, SetReachesModelFieldsFromAFile) {
  EXPECT_TRUE(LoadScenarioText(kGood, {"model.precision.weight_dtype=INT4",
                                       "model.name=custom"})
                  .ok());
}

}  // namespace
}  // namespace shardsim

namespace shardsim {
namespace {

// Item 12: an error inside a scenario's inline topology names the scenario
// file and the line:column where the bad field is written.
TEST(BadInput, InlineTopologyCollectivesNameTheScenarioFile) {
  absl::Status s = LoadScenarioText(std::string(kGood) +
                                    "topology {\n  collectives {\n    launch_s: 5\n  }\n}\n");
  EXPECT_EQ(std::string(s.message()),
            "scenarios/.test_InlineTopologyCollectivesNameTheScenarioFile.textproto:7:5: "
            "topology.collectives.launch_s: must be in [0, 1 s), got 5");
  s = LoadScenarioText(std::string(kGood) +
                       "topology {\n  collectives {\n    link_kinds { kind: \"nvlink\" "
                       "bandwidth_efficiency: 1.5 }\n  }\n}\n");
  EXPECT_EQ(std::string(s.message()),
            "scenarios/.test_InlineTopologyCollectivesNameTheScenarioFile.textproto:7:33: "
            "topology.collectives.link_kinds[0].bandwidth_efficiency: must be in [0, 1], got 1.5");
  s = LoadScenarioText(std::string(kGood) + "topology { collective_tuning: \"nope\" }\n");
  EXPECT_TRUE(absl::StartsWith(
      s.message(), "scenarios/.test_InlineTopologyCollectivesNameTheScenarioFile.textproto:5:12: "
                   "topology.collective_tuning: no collective tuning named 'nope'"))
      << s.message();
}

// Writes `text` to a file named by this test and process; returns its path.
std::string WriteTemp(const std::string& name, const std::string& text) {
  const std::string path =
      absl::StrCat(::testing::TempDir(), "/shardsim_", getpid(), "_", name);
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

// Item 12: `validate` on collectives and efficiency files runs the checks
// the built-in files and a topology's collectives block pass
// (hardware::CheckTuning, hardware::CheckProfile): before, it checked the
// default's bandwidth alone and two GEMM efficiencies.
TEST(Validate, CollectivesFilesGetTheLoadersChecks) {
  const std::string path = WriteTemp(
      "collectives.textproto",
      "# proto-message: shardsim.v1.CollectiveTunings\n"
      "default_tuning { launch_s: 1e-5 bandwidth_efficiency: 0.5 }\n"
      "machines {\n  name: \"m\"\n  tuning {\n    step_latency_s: 2\n  }\n}\n");
  absl::StatusOr<std::string> summary = scenario::ValidateFile(path);
  EXPECT_EQ(std::string(summary.status().message()),
            path + ":6:5: machines[0].tuning.step_latency_s: must be in [0, 1 s), got 2");
  std::filesystem::remove(path);
}

TEST(Validate, EfficiencyFilesGetTheLoadersChecks) {
  std::string kernels;
  for (const char* k : {"norm", "activation", "rope", "residual_add", "embedding"}) {
    absl::StrAppend(&kernels, "  ", k, " { memory_efficiency: 0.5 launch_s: 2e-6 }\n");
  }
  const std::string good = absl::StrCat(
      "# proto-message: shardsim.v1.EfficiencyProfiles\nprofiles {\n  gpu: \"X\"\n"
      "  gemm_max_compute_efficiency: 0.8\n  gemm_memory_efficiency: 0.8\n",
      kernels);
  std::string path = WriteTemp("efficiency_good.textproto", good + "}\n");
  EXPECT_TRUE(scenario::ValidateFile(path).ok()) << scenario::ValidateFile(path).status();
  std::filesystem::remove(path);
  // A launch time of a minute, and a kernel left out (efficiency 0).
  path = WriteTemp("efficiency_slow.textproto",
                   good + "  vllm_attention {\n    prefill_max_compute_efficiency: 0.5\n"
                          "    memory_efficiency: 0.5\n    launch_s: 60\n  }\n}\n");
  EXPECT_EQ(std::string(scenario::ValidateFile(path).status().message()),
            path + ":14:5: profiles[0].vllm_attention.launch_s: must be in [0, 1 s), got 60");
  std::filesystem::remove(path);
  path = WriteTemp("efficiency_missing.textproto",
                   "# proto-message: shardsim.v1.EfficiencyProfiles\nprofiles {\n  gpu: \"X\"\n"
                   "  gemm_max_compute_efficiency: 0.8\n  gemm_memory_efficiency: 0.8\n}\n");
  EXPECT_EQ(std::string(scenario::ValidateFile(path).status().message()),
            path + ":2:1: profiles[0].norm.memory_efficiency: must be in (0, 1], got 0");
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace shardsim
