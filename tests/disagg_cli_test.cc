// `shardsim serve` with prefill/decode pools, as a user runs it, against
// closed forms and against `serve` of each pool's plan alone:
//   * one request: TTFT = the prefill pool's prefill + the KV transfer in
//     closed form on idle links; TPOT = the decode pool's alone;
//   * requests handed off at once share the NIC links: each transfer takes
//     the closed form of all their bytes on the shared link;
//   * a decode pool without room holds requests (and their prefill blocks)
//     until room frees; nothing is lost; it is counted;
//   * pipeline stages and expert groups inside pools run as `serve` runs
//     them, each layer's KV from the prefill stage that holds it;
//   * conservation, same bytes twice, and bad pools as one line;
//   * `memory` reports each pool's plan on its own GPUs (the ledger of that
//     plan alone, the prefill pool holding prompts only); `run`, `ops` and
//     run sweeps refuse pools in one line rather than replay another plan.
// Files are written under a fresh temporary folder.
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/run_shardsim.h"

namespace {

namespace fs = std::filesystem;
using ::shardsim::testing::Result;
using ::shardsim::testing::RunShardsim;

nlohmann::json Json(const std::string& args) {
  const Result r = RunShardsim(args + " --format=json");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  return nlohmann::json::parse(r.out, nullptr, false);
}

double Num(const nlohmann::json& j) {
  return j.is_string() ? std::stod(j.get<std::string>()) : j.get<double>();
}

class TempDir {
 public:
  TempDir() {
    std::string pattern =
        absl::StrCat(::testing::TempDir(), "shardsim_disagg_cli_", ::getpid(), "_XXXXXX");
    path_ = ::mkdtemp(pattern.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

constexpr char kTwoNodes[] = "scenarios/serve_disagg_llama3_70b_h100_2node.textproto";

// `count` requests of `prompt` + `output` tokens all at time 0.
std::string Offline(int count, int prompt, int output) {
  return absl::StrCat(" --set serving.arrival.kind=ALL_AT_ONCE --set serving.num_requests=", count,
                      " --set serving.prompt_len.kind=FIXED --set serving.prompt_len.mean=", prompt,
                      " --set serving.prompt_len.min=0 --set serving.prompt_len.max=0",
                      " --set serving.output_len.kind=FIXED --set serving.output_len.mean=", output,
                      " --set serving.output_len.min=0 --set serving.output_len.max=0");
}

// One node of the same cluster serving requests whole with tp=8: the
// prefill pool's plan (node 0), and the decode pool's (node 1 is wired alike).
std::string Whole(int count, int prompt, int output) {
  return absl::StrCat("serve scenarios/serve_llama3_70b_h100_tp8.textproto",
                      " --set topology_file=../topologies/h100_2node_ib.textproto",
                      Offline(count, prompt, output));
}

// Llama-3-70B: each tp rank holds one of the 8 KV heads: 80 layers x 2 x
// 128 x 2 bytes = 40,960 bytes per token. Prefill rank i sends them to
// decode rank i on the other node: GPU -> NIC (64 GB/s, 1 us) -> fabric
// (50 GB/s, 2 us) -> NIC (2 us) -> GPU (1 us); eight such routes share no
// link, so a transfer is 6 us + bytes / 50 GB/s.
constexpr double kBytesPerToken = 40960;
constexpr double kRouteLatency = 6e-6;
constexpr double kIb = 50e9;

TEST(Disagg, OneRequestTakesPrefillPlusTransferThenTheDecodePoolsTpot) {
  const nlohmann::json d = Json(absl::StrCat("serve ", kTwoNodes, Offline(1, 1000, 16)));
  const nlohmann::json prefill = Json(Whole(1, 1000, 1));
  const nlohmann::json decode = Json(Whole(1, 1000, 16));
  ASSERT_EQ(d.at("completed"), 1);
  const double transfer = kRouteLatency + 1000 * kBytesPerToken / kIb;
  const nlohmann::json& kv = d.at("kv_transfer");
  EXPECT_EQ(kv.at("transfers"), 1);
  EXPECT_EQ(kv.at("flows"), 8);
  EXPECT_EQ(kv.at("bytes"), int64_t{8 * 1000 * 40960});
  EXPECT_NEAR(Num(kv.at("time").at("mean_s")), transfer, 1e-9 * transfer);
  const double ttft = Num(prefill.at("ttft").at("mean_s")) + transfer;
  EXPECT_NEAR(Num(d.at("ttft").at("mean_s")), ttft, 1e-9 * ttft);
  const double tpot = Num(decode.at("tpot").at("mean_s"));
  EXPECT_NEAR(Num(d.at("tpot").at("mean_s")), tpot, 1e-9 * tpot);
  EXPECT_EQ(kv.at("waited_for_decode_kv"), 0);
  // Every link of the eight routes carried one flow's bytes.
  ASSERT_EQ(kv.at("links").size(), 32u);
  for (const nlohmann::json& link : kv.at("links")) {
    EXPECT_EQ(link.at("bytes"), int64_t{1000 * 40960}) << link;
  }
}

// Layer by layer: the prefill's step of d seconds ends layer l at
// (l + 1) d / 80, so by its end each route (one flow on it, at r bytes/s)
// has sent min(79/80 B, r 79/80 d) of its B bytes; the rest goes after it:
// TTFT = d + 6 us + max(B / 80, B - r 79/80 d) / r.
TEST(Disagg, OverlappedLayersLeaveTheLastLayersShareOrWhatTheLinkCouldNotCarry) {
  const nlohmann::json prefill = Json(Whole(1, 1000, 1));
  const double d = Num(prefill.at("ttft").at("mean_s"));  // one step, from time 0
  const double bytes = 1000 * kBytesPerToken;
  // 1.0: the link keeps up, only the last layer's share is left. 0.002: a
  // 100 MB/s link cannot, the part the prefill could not hide is left.
  for (const double efficiency : {1.0, 0.002}) {
    const nlohmann::json d_run = Json(absl::StrCat(
        "serve ", kTwoNodes, Offline(1, 1000, 16), " --set kv_transfer.overlap_layers=true",
        " --set kv_transfer.bandwidth_efficiency=", efficiency));
    ASSERT_EQ(d_run.at("completed"), 1);
    const double rate = kIb * efficiency;
    const double left = std::max(bytes / 80, bytes - rate * d * 79 / 80);
    const double transfer = kRouteLatency + left / rate;
    const nlohmann::json& kv = d_run.at("kv_transfer");
    EXPECT_EQ(kv.at("bytes"), int64_t{8 * 1000 * 40960});  // the cache, all of it
    EXPECT_NEAR(Num(kv.at("time").at("mean_s")), transfer, 1e-9 * transfer) << efficiency;
    EXPECT_NEAR(Num(d_run.at("ttft").at("mean_s")), d + transfer, 1e-9 * (d + transfer))
        << efficiency;
    if (efficiency == 1.0) {
      EXPECT_NEAR(transfer, kRouteLatency + bytes / 80 / kIb, 1e-15);
    } else {
      EXPECT_GT(left, bytes / 80);  // the other regime
    }
  }
}

TEST(Disagg, TransfersAtOnceShareTheNicLinks) {
  // Four prompts prefilled in one step hand off at once: each of the eight
  // routes carries four flows, so every transfer ends after 4 x its bytes.
  const nlohmann::json d = Json(absl::StrCat("serve ", kTwoNodes, Offline(4, 1000, 16),
                                             " --set serving.scheduler.chunked_prefill=false"));
  const nlohmann::json& kv = d.at("kv_transfer");
  ASSERT_EQ(kv.at("transfers"), 4);
  const double shared = kRouteLatency + 4 * 1000 * kBytesPerToken / kIb;
  EXPECT_NEAR(Num(kv.at("time").at("mean_s")), shared, 1e-9 * shared);
  EXPECT_NEAR(Num(kv.at("time").at("max_s")), shared, 1e-9 * shared);
  bool saw_nic = false;
  for (const nlohmann::json& link : kv.at("links")) {
    EXPECT_EQ(link.at("bytes"), int64_t{4 * 1000 * 40960}) << link;
    if (link.at("link") == "n0/nic0-fabric") saw_nic = true;
  }
  EXPECT_TRUE(saw_nic);
}

TEST(Disagg, ADecodePoolWithoutRoomHoldsRequestsAndTheirPrefillBlocks) {
  // Prefill cache: 126 blocks (two 1,000-token prompts of 63 blocks); decode
  // cache: 64 blocks (one request of 1,000 + 16 tokens). Four requests at
  // once: two prefill; the first moves on, the second waits for the decode
  // pool, holding its blocks; the third starts its prefill only when the
  // first's transfer has freed the first's blocks.
  TempDir dir;
  const std::string scenario = dir / "room.textproto";
  const std::string repo = fs::current_path().string();
  std::ofstream(scenario)
      << "model_file: \"" << repo << "/models/llama3_70b.textproto\"\n"
      << "topology_file: \"" << repo << "/topologies/h100_2node_ib.textproto\"\n"
      << "pools { name: \"prefill\" role: PREFILL nodes: [0] parallelism { tp: 8 }"
         " scheduler { num_gpu_blocks_override: 126 } }\n"
      << "pools { name: \"decode\" role: DECODE nodes: [1] parallelism { tp: 8 }"
         " scheduler { num_gpu_blocks_override: 64 } }\n"
      << "serving { num_requests: 4 }\n";
  const std::string table = dir / "requests.csv";
  const nlohmann::json d =
      Json(absl::StrCat("serve ", scenario, Offline(4, 1000, 16), " --requests=", table));
  EXPECT_EQ(d.at("requests"), 4);
  EXPECT_EQ(d.at("completed"), 4);
  EXPECT_EQ(d.at("refused"), 0);
  EXPECT_EQ(d.at("output_tokens"), 64);
  const nlohmann::json& kv = d.at("kv_transfer");
  EXPECT_EQ(kv.at("transfers"), 4);
  EXPECT_EQ(kv.at("waited_for_decode_kv"), 3);
  EXPECT_EQ(kv.at("decode_kv_wait").at("count"), 3);
  EXPECT_GT(Num(kv.at("decode_kv_wait").at("max_s")), 15 * Num(d.at("tpot").at("p50_s")));
  const nlohmann::json& prefill = d.at("pools").at(0);
  const nlohmann::json& decode = d.at("pools").at(1);
  EXPECT_EQ(prefill.at("kv_blocks_peak"), 126);
  EXPECT_EQ(prefill.at("kv_blocks_capacity"), 126);
  EXPECT_LE(decode.at("kv_blocks_peak").get<int64_t>(), 64);
  EXPECT_EQ(decode.at("requests"), 4);
  EXPECT_EQ(decode.at("preemptions"), 0);
  // Rows: id,status,arrival,first_scheduled,first_token,finish,...
  std::ifstream in(table);
  std::string line;
  std::getline(in, line);
  std::vector<std::vector<std::string>> rows(4);
  while (std::getline(in, line)) {
    std::vector<std::string> cells = absl::StrSplit(line, ',');
    rows[std::stoul(cells[0])] = cells;
  }
  ASSERT_EQ(rows[2].size(), 9u);
  EXPECT_EQ(rows[2][3], rows[0][4]);  // prefill of 2 starts as 0's KV arrives
  EXPECT_EQ(rows[0][1], "completed");
}

TEST(Disagg, XpYdOnOneNodeConservesAndRepeatsItselfByteForByte) {
  const std::string args =
      "serve scenarios/serve_disagg_qwen3_32b_h100_2p1d.textproto --set serving.num_requests=60";
  const Result a = RunShardsim(args + " --format=json");
  const Result b = RunShardsim(args + " --format=json");
  ASSERT_EQ(a.exit_code, 0) << a.out;
  EXPECT_EQ(a.out, b.out);
  const nlohmann::json d = nlohmann::json::parse(a.out);
  EXPECT_EQ(d.at("requests"), 60);
  EXPECT_EQ(d.at("completed"), 60);
  EXPECT_EQ(d.at("ttft").at("count"), 60);
  EXPECT_EQ(d.at("kv_transfer").at("transfers"), 60);
  ASSERT_EQ(d.at("pools").size(), 2u);
  EXPECT_EQ(d.at("pools").at(0).at("requests"), 60);
  EXPECT_EQ(d.at("pools").at(1).at("requests"), 60);
  EXPECT_EQ(d.at("gpus").size(), 8u);
  // Transfers stay on NVLink: GPU -> NVSwitch -> GPU.
  for (const nlohmann::json& link : d.at("kv_transfer").at("links")) {
    EXPECT_EQ(link.at("kind"), "nvlink") << link;
  }
  const Result text = RunShardsim(
      "serve scenarios/serve_disagg_qwen3_32b_h100_2p1d.textproto"
      " --set serving.num_requests=20");
  EXPECT_EQ(text.exit_code, 0) << text.out;
  EXPECT_NE(text.out.find("KV transfers 20"), std::string::npos) << text.out;
}

// A scenario on two DGX H100 nodes with `pools` (absolute paths).
std::string WriteScenario(const TempDir& dir, const std::string& name, const std::string& body) {
  const std::string path = dir / name;
  const std::string repo = fs::current_path().string();
  std::ofstream(path) << "model_file: \"" << repo << "/models/llama3_70b.textproto\"\n"
                      << "topology_file: \"" << repo << "/topologies/h100_2node_ib.textproto\"\n"
                      << body;
  return path;
}

constexpr char kPoisson[] =
    "serving { arrival { rate_per_s: 4 } num_requests: 80 seed: 3"
    " prompt_len { kind: UNIFORM min: 256 max: 2048 mean: 1152 }"
    " output_len { kind: UNIFORM min: 64 max: 512 mean: 288 } }\n";

// `serve` of one MIXED pool of `parallelism` on node 0, and of the same plan
// without pools: the same requests, step for step.
std::pair<nlohmann::json, nlohmann::json> ExpectMixedPoolServesAsServe(
    const std::string& parallelism) {
  TempDir dir;
  const nlohmann::json pooled = Json(absl::StrCat(
      "serve ", WriteScenario(dir, "mixed.textproto",
                              absl::StrCat("pools { name: \"all\" role: MIXED nodes: [0]"
                                           " parallelism { ", parallelism, " } }\n", kPoisson))));
  const nlohmann::json plain = Json(absl::StrCat(
      "serve ", WriteScenario(dir, "plain.textproto",
                              absl::StrCat("parallelism { ", parallelism, " }\n", kPoisson))));
  for (const char* field : {"completed", "output_tokens", "steps", "kv_blocks_capacity",
                            "kv_blocks_peak", "preemptions", "batch_size_max"}) {
    EXPECT_EQ(pooled.at(field), plain.at(field)) << field;
  }
  for (const char* field : {"ttft", "tpot", "itl", "e2e", "queue"}) {
    EXPECT_EQ(pooled.at(field), plain.at(field)) << field;
  }
  EXPECT_EQ(pooled.at("kv_transfer").at("transfers"), 0);
  EXPECT_EQ(pooled.at("pools").at(0).at("requests"), 80);
  return {pooled, plain};
}

TEST(Disagg, OneMixedPoolServesAsServeWithoutPools) { ExpectMixedPoolServesAsServe("tp: 4 dp: 2"); }

TEST(Disagg, OneTokenAnswersEndAtThePrefillAndTooLongOnesAreRefused) {
  TempDir dir;
  const std::string scenario =
      WriteScenario(dir, "small_decode.textproto",
                    "pools { name: \"p\" role: PREFILL nodes: [0] parallelism { tp: 8 } }\n"
                    "pools { name: \"d\" role: DECODE nodes: [1] parallelism { tp: 8 }"
                    " scheduler { num_gpu_blocks_override: 100 } }\n"
                    "serving { num_requests: 2 }\n");
  // 1,000 + 1 tokens: nothing to decode, so nothing is handed on.
  const nlohmann::json one = Json(absl::StrCat("serve ", scenario, Offline(2, 1000, 1)));
  EXPECT_EQ(one.at("completed"), 2);
  EXPECT_EQ(one.at("kv_transfer").at("transfers"), 0);
  const nlohmann::json prefill = Json(Whole(2, 1000, 1));
  EXPECT_EQ(one.at("ttft"), prefill.at("ttft"));
  // 1,600 + 10 tokens need 101 blocks: more than the decode cache holds.
  const nlohmann::json big = Json(absl::StrCat("serve ", scenario, Offline(2, 1600, 10)));
  EXPECT_EQ(big.at("completed"), 0);
  EXPECT_EQ(big.at("refused"), 2);
  EXPECT_NE(big.at("refused_requests")
                .at(0)
                .get<std::string>()
                .find("no decode replica's KV cache could ever hold it"),
            std::string::npos);
}

TEST(Disagg, ABadPoolIsOneLine) {
  TempDir dir;
  const std::string scenario = dir / "bad.textproto";
  const std::string repo = fs::current_path().string();
  std::ofstream(scenario)
      << "model_file: \"" << repo << "/models/llama3_8b.json\"\n"
      << "topology_file: \"" << repo << "/topologies/dgx_h100.textproto\"\n"
      << "pools { name: \"p\" role: PREFILL gpus: [0, 1, 2, 3]"
         " parallelism { tp: 4 } }\n"
      << "pools { name: \"d\" role: DECODE gpus: [3, 4] parallelism { tp: 2 } }\n"
      << "serving { num_requests: 1 }\n";
  const Result r = RunShardsim(absl::StrCat("serve ", scenario));
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  EXPECT_NE(r.out.find("pools[1].gpus: GPU 3 of pool 'd' is also in pool 'p'"), std::string::npos)
      << r.out;
  const Result v = RunShardsim(absl::StrCat("validate ", scenario));
  EXPECT_EQ(v.exit_code, 1) << v.out;
}

// A pool runs its replicas on the same machinery as `serve` without pools
// (sim/engine/replica_runner.h): with pp = 2 a lone MIXED pool is `serve`
// of its plan, step for step.
TEST(Disagg, OneMixedPoolWithPipelineStagesServesAsServeWithoutPools) {
  const auto [pooled, plain] = ExpectMixedPoolServesAsServe("tp: 4 pp: 2");
  EXPECT_EQ(pooled.at("pp"), 2);
  EXPECT_EQ(pooled.at("pools").at(0).at("pp"), 2);
  // Each GPU's own stage's time, as in serve.
  ASSERT_EQ(pooled.at("gpus").size(), plain.at("gpus").size());
  for (size_t g = 0; g < plain.at("gpus").size(); ++g) {
    EXPECT_EQ(pooled.at("gpus").at(g), plain.at("gpus").at(g)) << g;
  }
}

// A decode pool of tp=4 x pp=2: rank j of each decode stage holds heads 2j
// and 2j+1 of the stage's 40 layers, each from the prefill rank holding it
// (2j, 2j+1): flows of 40 x 2 x 128 x 2 = 20,480 bytes per token. Every
// prefill rank sends two (one per decode stage) over its own NIC, and every
// decode GPU's NIC link carries two: each link carries 40,960 bytes per
// token, as with tp=8, and the transfer takes the same closed form. TPOT is the decode plan's alone (the same cluster's node 0
// with tp=4 pp=2) but for its first gap (below).
TEST(Disagg, ADecodePoolWithPipelineStagesTakesEachLayerFromItsPrefillStage) {
  const nlohmann::json d = Json(absl::StrCat("serve ", kTwoNodes, Offline(1, 1000, 16),
                                             " --set pools[1].parallelism.tp=4",
                                             " --set pools[1].parallelism.pp=2"));
  const nlohmann::json prefill = Json(Whole(1, 1000, 1));
  const nlohmann::json decode = Json(absl::StrCat(
      Whole(1, 1000, 16), " --set parallelism.tp=4 --set parallelism.pp=2"));
  ASSERT_EQ(d.at("completed"), 1);
  EXPECT_EQ(d.at("pools").at(1).at("pp"), 2);
  const nlohmann::json& kv = d.at("kv_transfer");
  EXPECT_EQ(kv.at("transfers"), 1);
  EXPECT_EQ(kv.at("flows"), 16);
  EXPECT_EQ(kv.at("bytes"), int64_t{8 * 1000 * 40960});
  const double transfer = kRouteLatency + 1000 * kBytesPerToken / kIb;
  EXPECT_NEAR(Num(kv.at("time").at("mean_s")), transfer, 1e-9 * transfer);
  const double ttft = Num(prefill.at("ttft").at("mean_s")) + transfer;
  EXPECT_NEAR(Num(d.at("ttft").at("mean_s")), ttft, 1e-9 * ttft);
  // The pool's first decode step starts as the KV cache arrives, while
  // `serve` first waits for the first token to come back to stage 0 (the
  // sampled tokens' hand-off, r): serve's k-th gap is r + S_k (S_k the k-th
  // decode step through both stages, at the same context in both), the
  // pool's first is S_1 and the rest r + S_k. So 15 x (serve's TPOT - the
  // pool's) is r: a few bytes from GPU 12 to GPU 8 over NVLink, 0.5 us to
  // the NVSwitch and 0.5 us on.
  const double tpot = Num(decode.at("tpot").at("mean_s"));
  EXPECT_NEAR(15 * (tpot - Num(d.at("tpot").at("mean_s"))), 1e-6, 1e-8);
  // Every link carried its 40,960 bytes per token: the prefill GPUs' two
  // flows, the decode GPUs' two.
  for (const nlohmann::json& link : kv.at("links")) {
    EXPECT_EQ(link.at("bytes"), int64_t{1000 * 40960}) << link;
  }
  // Decode GPUs 8-11 ran stage 0, 12-15 stage 1, each its own time.
  const nlohmann::json& gpus = d.at("gpus");
  ASSERT_EQ(gpus.size(), 16u);
  EXPECT_EQ(gpus.at(8).at("pp_stage"), 0);
  EXPECT_EQ(gpus.at(15).at("pp_stage"), 1);
  EXPECT_GT(Num(gpus.at(15).at("compute_s")), 0);
}

// A prefill pool of tp=4 x pp=2 sends each stage's layers from that stage:
// the same 16 flows the other way round, the same closed form on the links.
TEST(Disagg, APrefillPoolWithPipelineStagesSendsEachLayerFromItsStage) {
  const nlohmann::json d = Json(absl::StrCat("serve ", kTwoNodes, Offline(1, 1000, 16),
                                             " --set pools[0].parallelism.tp=4",
                                             " --set pools[0].parallelism.pp=2"));
  const nlohmann::json prefill = Json(absl::StrCat(
      Whole(1, 1000, 1), " --set parallelism.tp=4 --set parallelism.pp=2"));
  ASSERT_EQ(d.at("completed"), 1);
  const nlohmann::json& kv = d.at("kv_transfer");
  EXPECT_EQ(kv.at("flows"), 16);
  EXPECT_EQ(kv.at("bytes"), int64_t{8 * 1000 * 40960});
  const double transfer = kRouteLatency + 1000 * kBytesPerToken / kIb;
  EXPECT_NEAR(Num(kv.at("time").at("mean_s")), transfer, 1e-9 * transfer);
  // The hand-off waits for the sampled tokens to come back to the first
  // stage, as vLLM's scheduler sees the request finish then: a few bytes
  // from GPU 4 to GPU 0 over NVLink, 0.5 us to the NVSwitch and 0.5 us on.
  const double ttft = Num(prefill.at("ttft").at("mean_s")) + 1e-6 + transfer;
  EXPECT_NEAR(Num(d.at("ttft").at("mean_s")), ttft, 1e-8);
}

// Qwen3-30B-A3B, a decode pool of dp=2 x ep=2: one request leaves decode
// replica 1 idle, but it must enter every MoE all-to-all, so it runs a
// dummy step for each of replica 0's 15 decode steps, as `serve` does, and
// TPOT is that of the same plan served whole.
TEST(Disagg, AnIdleDecodeReplicaOfAnExpertGroupRunsDummySteps) {
  TempDir dir;
  const std::string repo = fs::current_path().string();
  const std::string head = absl::StrCat("model_file: \"", repo, "/models/qwen3_30b_a3b.json\"\n",
                                        "topology_file: \"", repo,
                                        "/topologies/dgx_h100.textproto\"\n");
  const std::string pooled_path = dir / "moe_pools.textproto";
  std::ofstream(pooled_path) << head
                             << "pools { name: \"prefill\" role: PREFILL gpus: [0]"
                                " parallelism { tp: 1 } }\n"
                                "pools { name: \"decode\" role: DECODE gpus: [1, 2]"
                                " parallelism { tp: 1 dp: 2 ep: 2 } }\n"
                                "serving { num_requests: 1 }\n";
  const std::string plain_path = dir / "moe_plain.textproto";
  std::ofstream(plain_path) << head << "parallelism { tp: 1 dp: 2 ep: 2 }\n"
                            << "serving { num_requests: 1 }\n";
  const nlohmann::json d = Json(absl::StrCat("serve ", pooled_path, Offline(1, 1024, 16)));
  const nlohmann::json plain = Json(absl::StrCat("serve ", plain_path, Offline(1, 1024, 16)));
  ASSERT_EQ(d.at("completed"), 1);
  const double tpot = Num(plain.at("tpot").at("mean_s"));
  EXPECT_NEAR(Num(d.at("tpot").at("mean_s")), tpot, 1e-9 * tpot);
  EXPECT_EQ(d.at("pools").at(1).at("steps"), 15);
  // GPU 2 (decode replica 1) computed and communicated in its dummy steps.
  const nlohmann::json& idle = d.at("gpus").at(2);
  EXPECT_EQ(idle.at("dp_replica"), 1);
  EXPECT_GT(Num(idle.at("compute_s")), 0);
  EXPECT_GT(Num(idle.at("comm_s")), 0);
  bool noted = false;
  for (const auto& note : d.at("notes")) {
    const std::string text = note.get<std::string>();
    noted = noted || (text.find("pool 'decode': expert groups of 2 replicas ran in lock step") !=
                          std::string::npos &&
                      text.find(": 15 dummy steps") != std::string::npos);
  }
  EXPECT_TRUE(noted) << d.at("notes");
}

// --trace with pools: a process per pool replica (a thread per stage), the
// requests' lives; SWAP with pools copies preempted blocks and says so.
TEST(Disagg, TraceAndSwapWorkWithPools) {
  TempDir dir;
  const std::string trace = dir / "pools.trace.json";
  const Result traced = RunShardsim(
      absl::StrCat("serve scenarios/serve_disagg_qwen3_32b_h100_xpyd.textproto",
                   " --set serving.num_requests=20 --set pools[1].parallelism.pp=2 --trace=", trace));
  ASSERT_EQ(traced.exit_code, 0) << traced.out;
  std::ifstream in(trace);
  const nlohmann::json events = nlohmann::json::parse(in, nullptr, false);
  ASSERT_FALSE(events.is_discarded());
  const nlohmann::json& list = events.is_array() ? events : events.at("traceEvents");
  int decode_stage1_steps = 0, requests_done = 0;
  bool named_prefill = false, named_decode = false;
  for (const nlohmann::json& e : list) {
    if (e.value("ph", "") == "M" && e.value("name", "") == "process_name") {
      const std::string name = e.at("args").at("name");
      named_prefill = named_prefill || name == "pool 'prefill' replica 0";
      named_decode = named_decode || name == "pool 'decode' replica 0";
    }
    // Processes: prefill replica 0 (pid 0), decode replica 0 (pid 1), requests (2).
    if (e.value("ph", "") == "X" && e.value("pid", -1) == 1 && e.value("tid", -1) == 1) {
      ++decode_stage1_steps;
    }
    if (e.value("ph", "") == "e" && e.value("pid", -1) == 2 &&
        e.value("name", "").rfind("request ", 0) == 0) {
      ++requests_done;
    }
  }
  EXPECT_TRUE(named_prefill);
  EXPECT_TRUE(named_decode);
  EXPECT_GT(decode_stage1_steps, 0);
  EXPECT_EQ(requests_done, 20);
  // A decode cache of 200 blocks for 40 requests at once: preemptions, swapped.
  const nlohmann::json swapped = Json(absl::StrCat(
      "serve scenarios/serve_disagg_qwen3_32b_h100_xpyd.textproto",
      Offline(40, 1024, 256), " --set serving.scheduler.preemption_mode=SWAP",
      " --set pools[1].scheduler.num_gpu_blocks_override=200"));
  EXPECT_EQ(swapped.at("completed"), 40);
  EXPECT_GT(swapped.at("pools").at(1).at("preemptions").get<int64_t>(), 0);
  bool noted = false;
  for (const auto& note : swapped.at("notes")) {
    noted = noted || note.get<std::string>().find("pool 'decode': preemption by swapping") !=
                         std::string::npos;
  }
  EXPECT_TRUE(noted) << swapped.at("notes");
}


// `memory` with pools: each pool's plan on its own GPUs, each row naming its
// pool and role. Qwen3-32B: 64 layers x 8 KV heads x 128 x 2 (K, V) x 2
// bytes; a tp=2 rank holds 4 heads (131,072 bytes per token), a tp=4 rank 2
// (65,536). The batch of 8 (1,000 + 100 tokens) is split over each pool's
// replicas: a prefill replica (dp=2) holds 4 prompts of 1,000 tokens, the
// decode replica all 8 sequences of 1,000 + 99 tokens (the last token is
// never fed back). Every row is the ledger of that plan without pools.
constexpr char kTwoPOneD[] = "scenarios/serve_disagg_qwen3_32b_h100_2p1d.textproto";
constexpr char kBatch[] =
    " --set workload.batch_size=8 --set workload.prompt_len=1000 --set workload.output_len=100";

TEST(Disagg, MemoryReportsEachPoolsPlanOnItsOwnGpus) {
  const nlohmann::json m = Json(absl::StrCat("memory ", kTwoPOneD, kBatch));
  ASSERT_EQ(m.at("gpus").size(), 8u) << m;
  EXPECT_EQ(m.at("fits"), true);
  // The same plans without pools (GPUs 0-3 each), the prefill one holding
  // one-token outputs.
  const std::string plain = absl::StrCat("memory scenarios/serve_qwen3_32b_h100_8rps.textproto",
                                         kBatch);
  const nlohmann::json prefill_alone =
      Json(absl::StrCat(plain, " --set parallelism.tp=2 --set parallelism.dp=2",
                        " --set workload.output_len=1"));
  const nlohmann::json decode_alone = Json(absl::StrCat(plain, " --set parallelism.tp=4"));
  for (int g = 0; g < 8; ++g) {
    const nlohmann::json& row = m.at("gpus").at(g);
    const bool prefill = g < 4;
    EXPECT_EQ(row.at("gpu"), g);
    EXPECT_EQ(row.at("pool"), prefill ? "prefill" : "decode");
    EXPECT_EQ(row.at("pool_role"), prefill ? "PREFILL" : "DECODE");
    EXPECT_EQ(row.at("memory").at("kv_cache_bytes"),
              prefill ? int64_t{4} * 1000 * 131072 : int64_t{8} * 1099 * 65536)
        << row;
    const nlohmann::json& alone = (prefill ? prefill_alone : decode_alone).at("gpus").at(g % 4);
    EXPECT_EQ(row.at("memory"), alone.at("memory")) << g;
    EXPECT_EQ(row.at("tp_rank"), alone.at("tp_rank")) << g;
    EXPECT_EQ(row.at("dp_replica"), alone.at("dp_replica")) << g;
  }
  // Without pools the pool fields are null.
  EXPECT_TRUE(decode_alone.at("gpus").at(0).at("pool").is_null());
  // The text names each pool's plan and every row's pool; a pool that does
  // not fit says which GPU of which pool.
  const Result text = RunShardsim(absl::StrCat("memory ", kTwoPOneD, kBatch));
  ASSERT_EQ(text.exit_code, 0) << text.out;
  EXPECT_NE(text.out.find("pool      'prefill' PREFILL: tp=2 pp=1 dp=2 on GPUs 0,1,2,3\n"
                          "pool      'decode' DECODE: tp=4 pp=1 dp=1 on GPUs 4,5,6,7\n"),
            std::string::npos)
      << text.out;
  EXPECT_NE(text.out.find("\ndecode     4    0"), std::string::npos) << text.out;
  const Result full = RunShardsim(
      absl::StrCat("memory ", kTwoPOneD, kBatch, " --set workload.batch_size=4000"));
  ASSERT_EQ(full.exit_code, 0) << full.out;
  EXPECT_NE(full.out.find("(pool 'decode') needs"), std::string::npos) << full.out;
}

// A static batch replays one plan; a scenario with pools is refused by
// `run`, `ops` and a run sweep's points in one line naming pools[0].
TEST(Disagg, RunOpsAndRunSweepsRefusePoolsInOneLine) {
  for (const char* command : {"run", "ops"}) {
    const Result r = RunShardsim(absl::StrCat(command, " ", kTwoPOneD, kBatch));
    EXPECT_EQ(r.exit_code, 1) << command << ": " << r.out;
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
    EXPECT_NE(r.out.find(absl::StrCat("shardsim ", command, ": ", kTwoPOneD, ":11:")),
              std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find(absl::StrCat("pools[0]: `", command,
                                      "` replays one plan, the scenario's parallelism, but this "
                                      "scenario deploys 2 pools: serve them with `shardsim "
                                      "serve`")),
              std::string::npos)
        << r.out;
  }
  TempDir dir;
  std::ofstream(dir / "sweep.textproto")
      << "name: \"run_pools\"\nbase_scenario: \"" << fs::current_path().string() << "/"
      << kTwoPOneD << "\"\n"
      << "set: \"workload.batch_size=8\"\nset: \"workload.prompt_len=1000\"\n"
      << "set: \"workload.output_len=100\"\n"
      << "axes { path: \"pools[1].parallelism.tp\" values: [\"4\"] }\n";
  const Result swept = RunShardsim(absl::StrCat("sweep ", dir / "sweep.textproto",
                                                " --jobs=1 --out=", dir / "out.csv"));
  std::ifstream in(dir / "out.csv");
  const std::string table((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(table.find("`run` replays one plan"), std::string::npos) << swept.out << table;
}

}  // namespace
