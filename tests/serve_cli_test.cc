// `shardsim serve` as a user runs it, against `shardsim run` where the two
// must agree, and its bad input.
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/run_shardsim.h"

namespace {

using ::shardsim::testing::Result;
using ::shardsim::testing::RunShardsim;

nlohmann::json Json(const std::string& args) {
  const Result r = RunShardsim(args + " --format=json");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  return nlohmann::json::parse(r.out);
}

// `count` requests of `prompt` + `output` tokens all at time 0, on the
// default scenario's plan, without chunking and with room for all at once.
std::string OfflineBatch(int count, int prompt, int output) {
  return absl::StrCat(
      "serve scenarios/serve_llama3_70b_h100_tp8.textproto",
      " --set serving.arrival.kind=ALL_AT_ONCE --set serving.num_requests=", count,
      " --set serving.prompt_len.kind=FIXED --set serving.prompt_len.mean=", prompt,
      " --set serving.prompt_len.min=0 --set serving.prompt_len.max=0",
      " --set serving.output_len.kind=FIXED --set serving.output_len.mean=", output,
      " --set serving.output_len.min=0 --set serving.output_len.max=0",
      " --set serving.scheduler.chunked_prefill=false",
      " --set serving.scheduler.max_num_batched_tokens=", count * prompt);
}

std::string StaticBatch(int count, int prompt, int output) {
  return absl::StrCat("run scenarios/default.textproto --set workload.batch_size=", count,
                      " --set workload.prompt_len=", prompt, " --set workload.output_len=", output);
}

TEST(Serve, OneRequestAloneTakesTheStaticReplaysTimes) {
  const nlohmann::json serve = Json(OfflineBatch(1, 1024, 16));
  const nlohmann::json run = Json(StaticBatch(1, 1024, 16));
  ASSERT_EQ(serve.at("completed"), 1);
  const double ttft = run.at("ttft").at("mean_s").get<double>();
  const double tpot = run.at("tpot").at("mean_s").get<double>();
  EXPECT_NEAR(serve.at("ttft").at("mean_s").get<double>(), ttft, 1e-9 * ttft);
  EXPECT_NEAR(serve.at("tpot").at("mean_s").get<double>(), tpot, 1e-9 * tpot);
}

TEST(Serve, AnOfflineBatchHasTheStaticReplaysThroughput) {
  const nlohmann::json serve = Json(OfflineBatch(32, 512, 64));
  const nlohmann::json run = Json(StaticBatch(32, 512, 64));
  const double tokens_per_s = run.at("output_tokens_per_s").get<double>();
  EXPECT_NEAR(serve.at("output_tokens_per_s").get<double>(), tokens_per_s, 1e-9 * tokens_per_s);
  EXPECT_EQ(serve.at("output_tokens"), run.at("output_tokens"));
  EXPECT_EQ(serve.at("batch_size_max"), 32);
}

TEST(Serve, ConservationAndTheCacheEmpties) {
  const nlohmann::json r = Json("serve scenarios/serve_llama3_70b_h100_tp8.textproto"
                                " --set serving.num_requests=200");
  EXPECT_EQ(r.at("requests"), 200);
  EXPECT_EQ(r.at("completed"), 200);
  EXPECT_EQ(r.at("refused"), 0);
  EXPECT_LE(r.at("kv_blocks_peak").get<int64_t>(),
            r.at("kv_blocks_capacity").get<int64_t>());
  EXPECT_EQ(r.at("ttft").at("count"), 200);
}

TEST(Serve, RisingRateSaturatesThroughputAndGrowsTheQueue) {
  auto at = [](int rate) {
    return Json(absl::StrCat("serve scenarios/serve_llama3_70b_h100_tp8.textproto",
                             " --set serving.num_requests=300 --set serving.arrival.rate_per_s=",
                             rate));
  };
  const nlohmann::json low = at(1), high = at(50), higher = at(100);
  const double low_rps = low.at("requests_per_s").get<double>();
  const double high_rps = high.at("requests_per_s").get<double>();
  const double higher_rps = higher.at("requests_per_s").get<double>();
  EXPECT_NEAR(low_rps, 1, 0.2);  // keeps up with a light load
  EXPECT_LT(high_rps, 50 * 0.5); // far below the offered load: saturated
  EXPECT_LT(std::abs(higher_rps - high_rps) / high_rps, 0.15);
  EXPECT_GT(high.at("queue").at("mean_s").get<double>(),
            10 * low.at("queue").at("mean_s").get<double>());
}

TEST(Serve, ASmallCachePreemptsAndStillFinishesEveryone) {
  const nlohmann::json roomy = Json(OfflineBatch(64, 1024, 256));
  // 64 x (1024 + 256) tokens need 64 x 80 = 5,120 blocks at the end.
  const nlohmann::json tight = Json(absl::StrCat(
      OfflineBatch(64, 1024, 256), " --set serving.scheduler.num_gpu_blocks_override=1500"));
  EXPECT_EQ(roomy.at("preemptions"), 0);
  EXPECT_NE(tight.at("preemptions"), 0);
  EXPECT_EQ(tight.at("completed"), 64);
  EXPECT_GT(tight.at("ttft").at("mean_s").get<double>(),
            roomy.at("ttft").at("mean_s").get<double>());
}

TEST(Serve, SameSeedSameBytesOtherSeedOtherRun) {
  const std::string args = "serve scenarios/serve_llama3_70b_h100_tp8.textproto "
                           "--set serving.num_requests=100 --format=json";
  const Result a = RunShardsim(args), b = RunShardsim(args);
  const Result c = RunShardsim(args + " --set serving.seed=7");
  EXPECT_EQ(a.out, b.out);
  EXPECT_NE(a.out, c.out);
}

TEST(Serve, TooLongARequestIsRefusedAndNamed) {
  const Result r = RunShardsim(
      "serve scenarios/serve_llama3_70b_h100_tp8.textproto --set serving.num_requests=3"
      " --set serving.scheduler.num_gpu_blocks_override=1000 --set serving.prompt_len.kind=FIXED"
      " --set serving.prompt_len.mean=2000000 --set serving.prompt_len.max=0");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("3 arrived, 0 completed, 3 refused"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("refused: request 0 (2000000 prompt"), std::string::npos) << r.out;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

TEST(Serve, TheRequestTableHasARowPerRequestAndTheSameBytesTwice) {
  const std::string a = ::testing::TempDir() + "/requests_a_" + std::to_string(::getpid()) + ".csv";
  const std::string b = ::testing::TempDir() + "/requests_b_" + std::to_string(::getpid()) + ".csv";
  const std::string args = "serve scenarios/serve_llama3_70b_h100_tp8.textproto "
                           "--set serving.num_requests=40 --requests=";
  ASSERT_EQ(RunShardsim(args + a).exit_code, 0);
  ASSERT_EQ(RunShardsim(args + b).exit_code, 0);
  const std::string table = ReadFile(a);
  EXPECT_EQ(table, ReadFile(b));
  EXPECT_EQ(std::count(table.begin(), table.end(), '\n'), 1 + 40);
  EXPECT_EQ(table.rfind("id,status,arrival_s,first_scheduled_s,first_token_s,finish_s,", 0), 0u);
  EXPECT_EQ(RunShardsim("serve scenarios/serve_llama3_70b_h100_tp8.textproto "
                        "--set serving.num_requests=2 --requests=/nonexistent/dir/r.csv")
                .exit_code,
            1);
}

TEST(Serve, BadInputIsOneLine) {
  auto one_line = [](const Result& r, const std::string& contains) {
    EXPECT_EQ(r.exit_code, 1) << r.out;
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
    EXPECT_NE(r.out.find(contains), std::string::npos) << r.out;
  };
  one_line(RunShardsim("serve scenarios/serve_llama3_70b_h100_tp8.textproto "
                       "--set serving.arrival.rate_per_s=-2"),
           "serving.arrival.rate_per_s: must be a positive rate per second");
  one_line(RunShardsim("serve scenarios/serve_llama3_70b_h100_tp8.textproto "
                       "--set serving.trace.file=nope.csv"),
           "nope.csv");
  one_line(RunShardsim("serve scenarios/serve_llama3_70b_h100_tp8.textproto "
                       "--set parallelism.tp=4 --set parallelism.pp=2"),
           "pipeline parallelism (pp=2) is not simulated for serving yet");
}

}  // namespace
