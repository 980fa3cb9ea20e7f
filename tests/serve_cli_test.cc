// `shardsim serve` as a user runs it, against `shardsim run` where the two
// must agree, and its bad input.
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <utility>
#include <vector>
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

// Answers of one token have no time per output token: null in JSON, "-" in
// the text's TPOT row (both said 0, which also read as a met TPOT target).
TEST(Serve, OneTokenAnswersHaveNoTimePerOutputToken) {
  const std::string args = OfflineBatch(4, 128, 1);
  const nlohmann::json serve = Json(args);
  ASSERT_EQ(serve.at("completed"), 4);
  EXPECT_EQ(serve.at("tpot").at("count"), 0);
  for (const char* field : {"mean_s", "p50_s", "p90_s", "p99_s", "max_s"}) {
    EXPECT_TRUE(serve.at("tpot").at(field).is_null()) << field;
    EXPECT_TRUE(serve.at("ttft").at(field).is_number()) << field;
  }
  const Result text = RunShardsim(args);
  ASSERT_EQ(text.exit_code, 0) << text.out;
  EXPECT_NE(text.out.find("\nTPOT               -           -"), std::string::npos) << text.out;
}

// Pipeline parallelism: one request alone goes through the stages as the
// static replay's batch of one does, hand-offs and all.
TEST(Serve, OneRequestAloneThroughPipelineStagesTakesTheStaticReplaysTimes) {
  for (const char* plan : {" --set parallelism.tp=4 --set parallelism.pp=2",
                           " --set parallelism.tp=2 --set parallelism.pp=4"}) {
    const nlohmann::json serve = Json(OfflineBatch(1, 1024, 16) + plan);
    const nlohmann::json run = Json(StaticBatch(1, 1024, 16) + plan);
    ASSERT_EQ(serve.at("completed"), 1) << plan;
    const double ttft = run.at("ttft").at("mean_s").get<double>();
    const double tpot = run.at("tpot").at("mean_s").get<double>();
    EXPECT_NEAR(serve.at("ttft").at("mean_s").get<double>(), ttft, 1e-9 * ttft) << plan;
    EXPECT_NEAR(serve.at("tpot").at("mean_s").get<double>(), tpot, 1e-9 * tpot) << plan;
  }
}

std::string ReadFile(const std::string& path);

// Every request finishes with its tokens through 2 and 4 stages (the driver
// also fails the run if a replica's KV cache is not empty at the end).
TEST(Serve, ConservationThroughPipelineStages) {
  for (const char* plan : {" --set parallelism.tp=4 --set parallelism.pp=2",
                           " --set parallelism.tp=2 --set parallelism.pp=4"}) {
    const std::string table =
        ::testing::TempDir() + "/requests_pp_" + std::to_string(::getpid()) + ".csv";
    const nlohmann::json r = Json(absl::StrCat(
        "serve scenarios/serve_llama3_70b_h100_tp8.textproto --set serving.num_requests=150"
        " --set serving.arrival.rate_per_s=20 --requests=", table, plan));
    EXPECT_EQ(r.at("requests"), 150) << plan;
    EXPECT_EQ(r.at("completed"), 150) << plan;
    EXPECT_EQ(r.at("ttft").at("count"), 150) << plan;
    EXPECT_LE(r.at("kv_blocks_peak").get<int64_t>(),
              r.at("kv_blocks_capacity").get<int64_t>());
    // Output tokens: the sum of the requests' output lengths.
    std::istringstream rows(ReadFile(table));
    std::string line;
    std::getline(rows, line);  // header
    int64_t outputs = 0, completed = 0;
    while (std::getline(rows, line)) {
      std::vector<std::string> cells;
      std::stringstream cell_stream(line);
      for (std::string cell; std::getline(cell_stream, cell, ',');) cells.push_back(cell);
      ASSERT_EQ(cells.size(), 9u) << line;
      completed += cells[1] == "completed";
      outputs += std::stoll(cells[7]);
    }
    EXPECT_EQ(completed, 150) << plan;
    EXPECT_EQ(outputs, r.at("output_tokens").get<int64_t>()) << plan;
  }
}

// Under load the two stages work on different batches at once: their busy
// times add up to more than the whole run, which one batch at a time (each
// batch through stage 0, then stage 1) could never do.
TEST(Serve, PipelineStagesOverlapUnderLoad) {
  const nlohmann::json r = Json(
      "serve scenarios/serve_llama3_70b_h100_tp8.textproto --set serving.num_requests=200"
      " --set serving.arrival.rate_per_s=50 --set parallelism.tp=4 --set parallelism.pp=2");
  ASSERT_EQ(r.at("completed"), 200);
  const double span = r.at("span_s").get<double>();
  double busy[2] = {0, 0};
  for (const nlohmann::json& gpu : r.at("gpus")) {
    if (gpu.value("tp_rank", 0) != 0) continue;
    busy[gpu.value("pp_stage", 0)] =
        gpu.value("compute_s", 0.0) + gpu.value("comm_s", 0.0);
  }
  ASSERT_GT(busy[0], 0);
  ASSERT_GT(busy[1], 0);
  EXPECT_GT(busy[0] + busy[1], 1.3 * span) << busy[0] << " + " << busy[1] << " vs " << span;
}

// Qwen3-30B-A3B with attention data parallel 2 and ep = 2: one request
// leaves replica 1 idle, but it must enter every MoE all-to-all, so it runs
// a dummy step for each of replica 0's, in serve as in the static replay of
// a batch of one (which dp = 2 leaves to replica 0 alone).
TEST(Serve, AnIdleReplicaOfAnExpertGroupRunsDummyStepsAsTheStaticReplayDoes) {
  const std::string plan =
      " --set model_file=../models/qwen3_30b_a3b.json --set parallelism.tp=1"
      " --set parallelism.dp=2 --set parallelism.ep=2";
  const nlohmann::json serve = Json(OfflineBatch(1, 1024, 16) + plan);
  const nlohmann::json run = Json(StaticBatch(1, 1024, 16) + plan);
  ASSERT_EQ(serve.at("completed"), 1);
  const double ttft = run.at("ttft").at("mean_s").get<double>();
  const double tpot = run.at("tpot").at("mean_s").get<double>();
  EXPECT_NEAR(serve.at("ttft").at("mean_s").get<double>(), ttft, 1e-9 * ttft);
  EXPECT_NEAR(serve.at("tpot").at("mean_s").get<double>(), tpot, 1e-9 * tpot);
  // GPU 1 (replica 1) computed and communicated: 16 dummy steps, each one
  // token through every layer and each MoE layer's two all-to-alls.
  const nlohmann::json& idle = run.at("gpus").at(1);
  EXPECT_GT(idle.at("compute_s").get<double>(), 0);
  EXPECT_GT(idle.at("comm_s").get<double>(), 0);
  EXPECT_NEAR(serve.at("gpus").at(1).at("compute_s").get<double>(),
              idle.at("compute_s").get<double>(), 1e-9);
  EXPECT_NEAR(serve.at("gpus").at(1).at("comm_s").get<double>(),
              idle.at("comm_s").get<double>(), 1e-9);
  bool noted = false;
  for (const auto& note : serve.at("notes")) {
    noted = noted || note.get<std::string>().find("16 dummy steps") != std::string::npos;
  }
  EXPECT_TRUE(noted) << serve.at("notes");
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

// Swap preemption: the same tight cache, but preempted requests' blocks go
// to host memory and come back: every token is computed once.
TEST(Serve, SwappedRequestsResumeWithoutRecomputing) {
  const std::string tight = absl::StrCat(OfflineBatch(64, 1024, 256),
                                         " --set serving.scheduler.num_gpu_blocks_override=1500");
  const nlohmann::json recompute = Json(tight);
  const nlohmann::json swap = Json(tight + " --set serving.scheduler.preemption_mode=SWAP");
  auto computed = [](const nlohmann::json& r) {
    return r.at("tokens_per_step_mean").get<double>() *
           static_cast<double>(r.at("steps").get<int64_t>());
  };
  // Each request computes its prompt and all but its last token once.
  const double needed = 64.0 * (1024 + 256 - 1);
  EXPECT_NE(swap.at("preemptions"), 0);
  EXPECT_EQ(swap.at("completed"), 64);
  EXPECT_NEAR(computed(swap), needed, 1e-9 * needed);
  EXPECT_GT(computed(recompute), needed + 1000);
  bool noted = false;
  for (const nlohmann::json& note : swap.at("notes")) {
    noted |= note.get<std::string>().find("preemptions swapped") != std::string::npos;
  }
  EXPECT_TRUE(noted) << swap.at("notes");
  // Not the same run: the victims wait for blocks instead of recomputing.
  EXPECT_NE(swap.at("ttft").at("mean_s"), recompute.at("ttft").at("mean_s"));
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

// `serve --trace`: a slice per stage step, each request's life as nested
// async slices, counters; whole microseconds, no overlap on a track.
TEST(Serve, TheTraceHasStepsRequestsAndCountersInOrder) {
  const std::string path =
      ::testing::TempDir() + "/serve_trace_" + std::to_string(::getpid()) + ".json";
  // Two stages and a cache tight enough to preempt.
  const nlohmann::json report = Json(absl::StrCat(
      OfflineBatch(48, 1024, 128), " --set parallelism.tp=4 --set parallelism.pp=2",
      " --set serving.scheduler.num_gpu_blocks_override=2000 --trace=", path));
  ASSERT_NE(report.at("preemptions"), 0);
  const int64_t capacity = report.at("kv_blocks_capacity").get<int64_t>();
  const nlohmann::json trace = nlohmann::json::parse(ReadFile(path));
  std::map<std::pair<int, int>, std::vector<std::pair<int64_t, int64_t>>> tracks;
  std::map<int64_t, std::vector<nlohmann::json>> requests;  // by id, in file order
  std::map<std::string, std::vector<nlohmann::json>> counters;  // by name
  int64_t steps = 0;
  for (const nlohmann::json& e : trace.at("traceEvents")) {
    const std::string ph = e.at("ph").get<std::string>();
    if (ph == "X") {
      ASSERT_TRUE(e.at("ts").is_number_integer()) << e;
      ASSERT_TRUE(e.at("dur").is_number_integer()) << e;
      tracks[{e.at("pid").get<int>(), e.at("tid").get<int>()}].push_back(
          {e.at("ts").get<int64_t>(), e.at("dur").get<int64_t>()});
      for (const char* arg : {"sequences", "prefill_tokens", "decodes", "compute_ms"}) {
        EXPECT_TRUE(e.at("args").contains(arg)) << e;
      }
      if (e.at("tid") == 1) ++steps;
    } else if (ph == "b" || ph == "e" || ph == "n") {
      requests[e.at("id").get<int64_t>()].push_back(e);
    } else if (ph == "C") {
      counters[e.at("name").get<std::string>()].push_back(e);
    }
  }
  // Both stages have their steps, in order, none overlapping the next.
  ASSERT_EQ(tracks.size(), 2u);
  EXPECT_EQ(steps, report.at("steps").get<int64_t>());
  for (const auto& [track, slices] : tracks) {
    EXPECT_EQ(slices.size(), static_cast<size_t>(steps));
    for (size_t i = 1; i < slices.size(); ++i) {
      EXPECT_LE(slices[i - 1].first + slices[i - 1].second, slices[i].first)
          << "track " << track.second << " slice " << i;
    }
  }
  // Every request: begin, then queued, prefill, decode, end; a preemption
  // instant inside its life.
  ASSERT_EQ(requests.size(), 48u);
  int64_t preempted = 0;
  for (const auto& [id, events] : requests) {
    int64_t begin = -1, end = -1, depth = 0;
    std::vector<int64_t> instants;
    for (const nlohmann::json& e : events) {
      const int64_t ts = e.at("ts").get<int64_t>();
      if (e.at("ph") == "n") {
        instants.push_back(ts);
        continue;
      }
      if (e.at("ph") == "b") {
        if (depth++ == 0) begin = ts;
        EXPECT_GE(ts, begin);
      } else {
        EXPECT_GT(depth--, 0);
        end = ts;
      }
    }
    EXPECT_EQ(depth, 0) << id;
    const auto first = std::find_if(events.begin(), events.end(), [](const nlohmann::json& e) {
      return e.at("ph") == "b";
    });
    ASSERT_NE(first, events.end());
    EXPECT_EQ(first->at("name"), absl::StrCat("request ", id));
    for (int64_t t : instants) {
      EXPECT_GE(t, begin);
      EXPECT_LE(t, end);
    }
    preempted += static_cast<int64_t>(instants.size());
  }
  EXPECT_EQ(preempted, report.at("preemptions").get<int64_t>());
  // Counters: in time order, the KV cache within its capacity and empty at
  // the end, the queue never negative.
  ASSERT_FALSE(counters["KV blocks"].empty());
  ASSERT_FALSE(counters["requests"].empty());
  for (const auto& [name, series] : counters) {
    for (size_t i = 1; i < series.size(); ++i) {
      EXPECT_LE(series[i - 1].at("ts").get<int64_t>(), series[i].at("ts").get<int64_t>()) << name;
    }
  }
  int64_t peak = 0;
  for (const nlohmann::json& c : counters["KV blocks"]) {
    const int64_t used = c.at("args").at("used").get<int64_t>();
    EXPECT_GE(used, 0);
    EXPECT_LE(used, capacity);
    peak = std::max(peak, used);
  }
  EXPECT_EQ(peak, report.at("kv_blocks_peak").get<int64_t>());
  EXPECT_EQ(counters["KV blocks"].back().at("args").at("used"), 0);
  for (const nlohmann::json& c : counters["requests"]) {
    EXPECT_GE(c.at("args").at("waiting").get<int64_t>(), 0);
    EXPECT_GE(c.at("args").at("running").get<int64_t>(), 0);
  }
  EXPECT_EQ(counters["requests"].back().at("args").at("running"), 0);
  EXPECT_EQ(RunShardsim("serve scenarios/serve_llama3_70b_h100_tp8.textproto "
                        "--set serving.num_requests=2 --trace=/nonexistent/dir/t.json")
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
                       "--set serving.scheduler.swap_space_gib=-1"),
           "serving.scheduler.swap_space_gib: must be from 0 to 1,000,000 GiB");
}

}  // namespace
