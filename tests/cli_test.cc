// The shardsim binary as a user runs it: exit codes, and bad input reported
// as one line on stderr (never an abort or a stack trace).
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"

namespace {

struct Result {
  int exit_code = -1;
  std::string out;  // stdout and stderr together
};

Result RunShardsim(const std::string& args) {
  Result r;
  const std::string command = absl::StrCat(SHARDSIM_BINARY, " ", args, " 2>&1");
  FILE* pipe = popen(command.c_str(), "r");
  std::array<char, 4096> buffer;
  size_t n;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0) {
    r.out.append(buffer.data(), n);
  }
  const int status = pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

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
  const Result r = RunShardsim("validate models/* topologies/* scenarios/*");
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

TEST(Cli, UsageErrorsExitTwo) {
  EXPECT_EQ(RunShardsim("").exit_code, 2);
  EXPECT_EQ(RunShardsim("frobnicate").exit_code, 2);
  EXPECT_EQ(RunShardsim("memory").exit_code, 2);
  EXPECT_EQ(RunShardsim("memory scenarios/default.textproto --format=xml").exit_code, 2);
}

}  // namespace
