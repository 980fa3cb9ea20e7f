// Prefill/decode disaggregation without a simulation:
//   * the KV hand-off's rank-to-rank byte matrix, in closed form, for equal
//     tp, tp growing and shrinking, KV heads replicated over ranks, pipeline
//     stages, MLA's latent and sliding-window layers; and that it always
//     moves exactly the bytes the decode ranks hold (memory::RankKvBytes);
//   * every bad pool a scenario can give is one line naming the file,
//     line:column and field.
// Scenario files are written under a fresh temporary folder.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "sim/base/config_file.h"
#include "sim/memory/ledger.h"
#include "sim/model/graph.h"
#include "sim/parallel/kv_transfer.h"
#include "sim/parallel/partition.h"
#include "sim/scenario/overrides.h"
#include "sim/scenario/scenario.h"

namespace shardsim {
namespace {

namespace fs = std::filesystem;

model::ModelDims Model(const std::string& file) {
  absl::StatusOr<model::ModelDims> dims = scenario::LoadAndCheckModel("models/" + file);
  EXPECT_TRUE(dims.ok()) << dims.status();
  return *dims;
}

const hardware::Cluster& TwoNodes() {
  static const hardware::Cluster* cluster = [] {
    absl::StatusOr<hardware::Cluster> c =
        scenario::LoadAndCheckTopology("topologies/h100_2node_ib.textproto");
    EXPECT_TRUE(c.ok()) << c.status();
    return new hardware::Cluster(*c);
  }();
  return *cluster;
}

parallel::Plan PlanOn(const model::ModelDims& dims, int tp, int pp, int dp,
                      const std::vector<int>& gpus) {
  v1::Parallelism p;
  p.set_tp(tp);
  p.set_pp(pp);
  p.set_dp(dp);
  for (int g : gpus) p.add_placement(g);
  absl::StatusOr<parallel::Plan> plan = parallel::Partition(dims, p, TwoNodes(), FieldLocator());
  EXPECT_TRUE(plan.ok()) << plan.status();
  return *plan;
}

std::vector<int> Gpus(int first, int count) {
  std::vector<int> gpus;
  for (int g = first; g < first + count; ++g) gpus.push_back(g);
  return gpus;
}

int64_t FlowBytes(const std::vector<parallel::KvFlow>& flows, int64_t tokens, int64_t window) {
  int64_t total = 0;
  for (const parallel::KvFlow& f : flows) total += f.Bytes(tokens, window);
  return total;
}

// What the decode replica's ranks hold for one sequence of `tokens` tokens.
int64_t DecodeHolds(const model::ModelDims& dims, const parallel::Plan& plan, int replica,
                    int64_t tokens) {
  const model::ModelGraph graph = model::BuildGraph(dims, plan.shard);
  int64_t total = 0;
  for (const parallel::Rank& rank : plan.ranks) {
    if (rank.dp_replica == replica) total += memory::RankKvBytes(graph, rank, 1, tokens, 0);
  }
  return total;
}

// Llama-3-70B: 80 layers, 8 KV heads of 128 in BF16: one head of one layer
// is 2 x 128 x 2 = 512 bytes per token, 80 layers of it 40,960.
constexpr int64_t kLlamaHeadBytes = 80 * 512;

TEST(KvTransferFlows, EqualTpSendsEachRanksHeadsToItsPeer) {
  const model::ModelDims dims = Model("llama3_70b.textproto");
  const parallel::Plan from = PlanOn(dims, 8, 1, 1, Gpus(0, 8));
  const parallel::Plan to = PlanOn(dims, 8, 1, 1, Gpus(8, 8));
  const std::vector<parallel::KvFlow> flows = parallel::KvTransferFlows(dims, from, 0, to, 0);
  ASSERT_EQ(flows.size(), 8u);
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(flows[i].src_gpu, i);
    EXPECT_EQ(flows[i].dst_gpu, 8 + i);
    EXPECT_EQ(flows[i].full_bytes_per_token, kLlamaHeadBytes);
    EXPECT_EQ(flows[i].sliding_bytes_per_token, 0);
  }
  EXPECT_EQ(FlowBytes(flows, 1000, 0), 8 * kLlamaHeadBytes * 1000);
  EXPECT_EQ(FlowBytes(flows, 1000, 0), DecodeHolds(dims, to, 0, 1000));
}

TEST(KvTransferFlows, Tp4IntoTp8SplitsEachSendersHeadsOverTwoReceivers) {
  const model::ModelDims dims = Model("llama3_70b.textproto");
  const parallel::Plan from = PlanOn(dims, 4, 1, 1, Gpus(0, 4));
  const parallel::Plan to = PlanOn(dims, 8, 1, 1, Gpus(8, 8));
  const std::vector<parallel::KvFlow> flows = parallel::KvTransferFlows(dims, from, 0, to, 0);
  ASSERT_EQ(flows.size(), 8u);
  for (int j = 0; j < 8; ++j) {
    EXPECT_EQ(flows[j].src_gpu, j / 2);  // prefill rank t holds heads 2t, 2t + 1
    EXPECT_EQ(flows[j].dst_gpu, 8 + j);
    EXPECT_EQ(flows[j].full_bytes_per_token, kLlamaHeadBytes);
  }
  EXPECT_EQ(FlowBytes(flows, 777, 0), DecodeHolds(dims, to, 0, 777));
}

TEST(KvTransferFlows, Tp8IntoTp2GathersFourSendersIntoEachReceiver) {
  const model::ModelDims dims = Model("llama3_70b.textproto");
  const parallel::Plan from = PlanOn(dims, 8, 1, 1, Gpus(0, 8));
  const parallel::Plan to = PlanOn(dims, 2, 1, 2, Gpus(8, 4));
  // The second decode replica (GPUs 10, 11).
  const std::vector<parallel::KvFlow> flows = parallel::KvTransferFlows(dims, from, 0, to, 1);
  ASSERT_EQ(flows.size(), 8u);
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(flows[i].src_gpu, i);
    EXPECT_EQ(flows[i].dst_gpu, 10 + i / 4);
    EXPECT_EQ(flows[i].full_bytes_per_token, kLlamaHeadBytes);
  }
  EXPECT_EQ(FlowBytes(flows, 100, 0), DecodeHolds(dims, to, 1, 100));
}

TEST(KvTransferFlows, ReplicatedHeadsComeFromDifferentHolders) {
  // Two KV heads: tp=8 prefill holds head h on ranks 4h .. 4h + 3; a tp=4
  // decode rank j needs head j / 2 and takes it from holder j mod 4.
  model::ModelDims dims = Model("llama3_70b.textproto");
  dims.num_kv_heads = 2;
  const parallel::Plan from = PlanOn(dims, 8, 1, 1, Gpus(0, 8));
  const parallel::Plan to = PlanOn(dims, 4, 1, 1, Gpus(8, 4));
  const std::vector<parallel::KvFlow> flows = parallel::KvTransferFlows(dims, from, 0, to, 0);
  ASSERT_EQ(flows.size(), 4u);
  const int sources[] = {0, 1, 6, 7};
  for (int j = 0; j < 4; ++j) {
    EXPECT_EQ(flows[j].src_gpu, sources[j]);
    EXPECT_EQ(flows[j].dst_gpu, 8 + j);
    EXPECT_EQ(flows[j].full_bytes_per_token, kLlamaHeadBytes);
  }
  EXPECT_EQ(FlowBytes(flows, 64, 0), DecodeHolds(dims, to, 0, 64));
}

TEST(KvTransferFlows, EachPipelineStageSendsItsOwnLayers) {
  const model::ModelDims dims = Model("llama3_70b.textproto");
  const parallel::Plan from = PlanOn(dims, 1, 2, 1, {0, 1});
  const parallel::Plan to = PlanOn(dims, 1, 1, 1, {8});
  const std::vector<parallel::KvFlow> flows = parallel::KvTransferFlows(dims, from, 0, to, 0);
  ASSERT_EQ(flows.size(), 2u);
  for (int s = 0; s < 2; ++s) {
    EXPECT_EQ(flows[s].src_gpu, s);
    EXPECT_EQ(flows[s].dst_gpu, 8);
    EXPECT_EQ(flows[s].full_bytes_per_token, 40 * 8 * 512);  // 40 layers, 8 heads each
  }
}

TEST(KvTransferFlows, MlaLatentGoesWholeToEveryDecodeRank) {
  // DeepSeek-V3: per layer a 512 + 64 BF16 latent, the same on every rank.
  const model::ModelDims dims = Model("deepseek_v3.json");
  const parallel::Plan from = PlanOn(dims, 4, 1, 1, Gpus(0, 4));
  const parallel::Plan to = PlanOn(dims, 8, 1, 1, Gpus(8, 8));
  const std::vector<parallel::KvFlow> flows = parallel::KvTransferFlows(dims, from, 0, to, 0);
  ASSERT_EQ(flows.size(), 8u);
  for (const parallel::KvFlow& f : flows) {  // sorted by sender: 0 -> 8, 0 -> 12, 1 -> 9, ...
    EXPECT_EQ(f.src_gpu, (f.dst_gpu - 8) % 4);
    EXPECT_EQ(f.full_bytes_per_token, 61 * (512 + 64) * 2);
  }
  EXPECT_EQ(flows[1].dst_gpu, 12);
  EXPECT_EQ(FlowBytes(flows, 300, 0), DecodeHolds(dims, to, 0, 300));
}

TEST(KvTransferFlows, SlidingLayersMoveOnlyTheirWindow) {
  // Gemma-2-27B: 23 of 46 layers slide over 4,096 tokens; 16 KV heads of 128.
  const model::ModelDims dims = Model("gemma2_27b.json");
  const parallel::Plan from = PlanOn(dims, 2, 1, 1, Gpus(0, 2));
  const parallel::Plan to = PlanOn(dims, 4, 1, 1, Gpus(8, 4));
  const std::vector<parallel::KvFlow> flows = parallel::KvTransferFlows(dims, from, 0, to, 0);
  ASSERT_EQ(flows.size(), 4u);
  for (const parallel::KvFlow& f : flows) {
    EXPECT_EQ(f.full_bytes_per_token, 23 * 4 * 512);  // 4 heads per decode rank
    EXPECT_EQ(f.sliding_bytes_per_token, 23 * 4 * 512);
  }
  EXPECT_EQ(flows[0].Bytes(6000, 4096), 23 * 4 * 512 * (6000 + 4096));
  EXPECT_EQ(FlowBytes(flows, 6000, dims.sliding_window), DecodeHolds(dims, to, 0, 6000));
}

class TempDir {
 public:
  TempDir() {
    std::string pattern =
        absl::StrCat(::testing::TempDir(), "shardsim_disagg_", ::getpid(), "_XXXXXX");
    path_ = ::mkdtemp(pattern.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Loads a scenario whose pools are `pools` (lines 4 on) and returns the error.
std::string PoolError(const std::string& pools, std::string* path_out) {
  static TempDir dir;
  static int count = 0;
  const std::string path = dir / absl::StrCat("pools", ++count, ".textproto");
  const std::string repo = fs::current_path().string();
  std::ofstream(path) << "name: \"pools\"\n"
                      << "model_file: \"" << repo << "/models/llama3_8b.json\"\n"
                      << "topology_file: \"" << repo << "/topologies/h100_2node_ib.textproto\"\n"
                      << pools << "serving { num_requests: 1 }\n";
  *path_out = path;
  absl::StatusOr<scenario::LoadedScenario> loaded = scenario::LoadScenario(path, {});
  return loaded.ok() ? "" : std::string(loaded.status().message());
}

void ExpectPoolError(const std::string& pools, const std::string& at, const std::string& message) {
  std::string path;
  const std::string error = PoolError(pools, &path);
  EXPECT_EQ(error.find('\n'), std::string::npos) << error;
  EXPECT_EQ(error.rfind(absl::StrCat(path, ":", at, ": "), 0), 0u) << error;
  EXPECT_NE(error.find(message), std::string::npos) << error;
}

constexpr char kPrefill[] =
    "pools { name: \"p\" role: PREFILL gpus: [0, 1] parallelism { tp: 2 } }\n";

TEST(PoolChecks, GoodPoolsArePlacedOnTheirGpus) {
  std::string path;
  EXPECT_EQ(PoolError(absl::StrCat(kPrefill,
                                   "pools { name: \"d\" role: DECODE nodes: [1] "
                                   "parallelism { tp: 4 dp: 2 } }\n"),
                      &path),
            "");
  absl::StatusOr<scenario::LoadedScenario> loaded = scenario::LoadScenario(path, {});
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_EQ(loaded->pools.size(), 2u);
  EXPECT_EQ(loaded->pools[1].plan.TpGroup(1, 0), (std::vector<int>{12, 13, 14, 15}));
  EXPECT_EQ(loaded->pools[0].plan.TpGroup(0, 0), (std::vector<int>{0, 1}));
}

TEST(PoolChecks, EachBadPoolIsOneLineAtItsField) {
  ExpectPoolError(absl::StrCat(kPrefill, "pools { name: \"d\" gpus: [8, 9] }\n"), "5:1",
                  "pools[1].role: pool 'd' has no role");
  ExpectPoolError(
      absl::StrCat(kPrefill,
                   "pools { name: \"d\" role: DECODE gpus: [1, 2] parallelism { tp: 2 } }\n"),
      "5:32", "pools[1].gpus: GPU 1 of pool 'd' is also in pool 'p': pools may not overlap");
  ExpectPoolError(
      absl::StrCat(kPrefill,
                   "pools { name: \"d\" role: DECODE gpus: [8, 16] parallelism { tp: 2 } }\n"),
      "5:32", "pools[1].gpus: GPU 16 is not in 2x DGX-H100 IB (0 .. 15)");
  ExpectPoolError(
      absl::StrCat(kPrefill,
                   "pools { name: \"d\" role: DECODE nodes: [2] parallelism { tp: 8 } }\n"),
      "5:32", "pools[1].nodes: node 2 is not in 2x DGX-H100 IB (0 .. 1)");
  ExpectPoolError(
      absl::StrCat(kPrefill,
                   "pools { name: \"d\" role: MIXED gpus: [8, 9] parallelism { tp: 2 } }\n"),
      "4:19", "pools[0].role: a PREFILL pool needs a DECODE pool");
  ExpectPoolError(
      absl::StrCat(kPrefill,
                   "pools { name: \"d\" role: DECODE gpus: [8, 9] parallelism { tp: 4 } }\n"),
      "5:45", "pools[1].parallelism: tp x pp x dp = 4 x 1 x 1 = 4 GPUs, but pool 'd' has 2");
  ExpectPoolError(
      absl::StrCat(kPrefill,
                   "pools { name: \"d\" role: DECODE gpus: [8, 9, 10] parallelism { tp: 3 } }\n"),
      "5:63", "pools[1].parallelism.tp: tp=3 does not divide the 32 attention heads");
  ExpectPoolError(
      absl::StrCat(kPrefill,
                   "pools { name: \"d\" role: DECODE gpus: [8, 9] parallelism { tp: 2 } "
                   "model_file: \"../models/llama3_70b.textproto\" }\n"),
      "5:67",
      "pools[1].model_file: pool 'd' names ../models/llama3_70b.textproto, but "
      "every pool serves the scenario's one model");
}

// Loads `pools` (as PoolError) with --set `overrides` and returns the pools.
std::vector<parallel::PoolPlan> PlacedPools(const std::string& pools,
                                            const std::vector<std::string>& overrides = {}) {
  std::string path;
  PoolError(pools, &path);
  absl::StatusOr<scenario::LoadedScenario> loaded = scenario::LoadScenario(path, overrides);
  EXPECT_TRUE(loaded.ok()) << loaded.status();
  return loaded.ok() ? loaded->pools : std::vector<parallel::PoolPlan>{};
}

TEST(PoolChecks, PoolsWithoutGpusArePlacedInOrderOnTheGpusLeft) {
  // Two automatic pools: tp=4 x 2 replicas takes GPUs 0-7 (node 0), the
  // tp=2 decode pool the next two (node 1).
  std::vector<parallel::PoolPlan> pools = PlacedPools(
      "pools { name: \"p\" role: PREFILL parallelism { tp: 4 dp: 2 } }\n"
      "pools { name: \"d\" role: DECODE parallelism { tp: 2 } }\n");
  ASSERT_EQ(pools.size(), 2u);
  EXPECT_EQ(pools[0].gpus, Gpus(0, 8));
  EXPECT_EQ(pools[0].plan.TpGroup(1, 0), (std::vector<int>{4, 5, 6, 7}));
  EXPECT_EQ(pools[1].gpus, Gpus(8, 2));
  // A pool naming its GPUs keeps them; the automatic one goes around them,
  // so its GPUs need not be consecutive: 0-1, then 4-5.
  pools = PlacedPools(
      "pools { name: \"p\" role: PREFILL parallelism { tp: 4 } }\n"
      "pools { name: \"d\" role: DECODE gpus: [2, 3] parallelism { tp: 2 } }\n");
  ASSERT_EQ(pools.size(), 2u);
  EXPECT_EQ(pools[0].gpus, (std::vector<int>{0, 1, 4, 5}));
  EXPECT_EQ(pools[1].gpus, (std::vector<int>{2, 3}));
  // --set reaches into a pool: 2P1D from 1P1D.
  pools = PlacedPools(
      "pools { name: \"p\" role: PREFILL parallelism { tp: 2 } }\n"
      "pools { name: \"d\" role: DECODE parallelism { tp: 4 } }\n",
      {"pools[0].parallelism.dp=2"});
  ASSERT_EQ(pools.size(), 2u);
  EXPECT_EQ(pools[0].plan.dp, 2);
  EXPECT_EQ(pools[0].gpus, Gpus(0, 4));
  EXPECT_EQ(pools[1].gpus, Gpus(4, 4));
}

TEST(PoolChecks, AutomaticPoolsLargerThanTheClusterAreOneLineNamingEachPool) {
  ExpectPoolError(
      "pools { name: \"p\" role: PREFILL parallelism { tp: 8 dp: 2 } }\n"
      "pools { name: \"d\" role: DECODE parallelism { tp: 4 } }\n",
      "5:32",
      "pools[1].parallelism: the pools need 20 GPUs ('p' 16 + 'd' 4) but 2x DGX-H100 IB has 16: "
      "pool 'd' (tp x pp x dp, placed automatically) does not fit on the GPUs left");
  // Named GPUs count against what is left.
  ExpectPoolError(
      "pools { name: \"p\" role: PREFILL nodes: [0] parallelism { tp: 8 } }\n"
      "pools { role: DECODE parallelism { tp: 8 dp: 2 } }\n",
      "5:22", "pools[1].parallelism: the pools need 24 GPUs ('p' 8 + 'pools[1]' 16)");
  // Absurd sizes cannot overflow the count.
  ExpectPoolError(
      "pools { name: \"p\" role: PREFILL parallelism { tp: 2000000000 pp: 2000000000 dp: "
      "2000000000 } }\npools { name: \"d\" role: DECODE parallelism { tp: 8 } }\n",
      "4:33", "pools[0].parallelism: the pools need 4921 GPUs ('p' 4913 + 'd' 8)");
  // Neither GPUs nor a plan: nothing to place.
  ExpectPoolError(
      absl::StrCat(kPrefill, "pools { name: \"d\" role: DECODE }\n"), "5:19",
      "pools[1].role: pool 'd' has role DECODE but no GPUs: give gpus: [...], nodes: [...] or "
      "a parallelism to place it automatically");
}

TEST(IndexedOverrides, ReachAnEntryOfARepeatedMessageAndSayWhyNot) {
  v1::Scenario s;
  s.add_pools()->set_name("p");
  s.add_pools()->set_name("d");
  const auto apply = [&s](const std::string& text) -> std::string {
    absl::StatusOr<scenario::Override> o = scenario::ParseOverride(text);
    if (!o.ok()) return std::string(o.status().message());
    const absl::Status status = scenario::ApplyOverride(*o, &s);
    return status.ok() ? "" : std::string(status.message());
  };
  EXPECT_EQ(apply("pools[1].parallelism.dp=3"), "");
  EXPECT_EQ(s.pools(1).parallelism().dp(), 3);
  EXPECT_EQ(s.pools(0).parallelism().dp(), 0);
  EXPECT_EQ(apply("pools[0].role=DECODE"), "");
  EXPECT_EQ(s.pools(0).role(), v1::Pool::DECODE);
  EXPECT_EQ(apply("pools[0].gpus=0,1"), "");
  EXPECT_EQ(s.pools(0).gpus_size(), 2);
  // One past the last entry appends one; two past is out of range.
  EXPECT_EQ(apply("pools[3].role=DECODE"),
            "--set pools[3].role=DECODE: pools[3] is out of range: pools has 2 entries "
            "(pools[0] .. pools[1])");
  EXPECT_EQ(s.pools_size(), 2);
  EXPECT_EQ(apply("pools[2].role=DECODE"), "");
  ASSERT_EQ(s.pools_size(), 3);
  EXPECT_EQ(s.pools(2).role(), v1::Pool::DECODE);
  EXPECT_EQ(s.pools(2).name(), "");
  // Appending needs a field to set: the entry alone is still a message.
  EXPECT_EQ(apply("pools[3]=x"),
            "--set pools[3]=x: pools[3] is out of range: pools has 3 entries (pools[0] .. "
            "pools[2])");
  EXPECT_EQ(s.pools_size(), 3);
  EXPECT_EQ(apply("pools.role=DECODE"),
            "--set pools.role=DECODE: 'pools' is a repeated message: address one entry, "
            "pools[0].field");
  EXPECT_EQ(apply("pools[0]=x"),
            "--set pools[0]=x: 'pools[0]' is a message; set one of its fields (name, role, gpus, "
            "nodes, parallelism, scheduler, model_file)");
  EXPECT_EQ(apply("parallelism[0].tp=2"),
            "--set parallelism[0].tp=2: 'parallelism' is not a repeated message, so takes no "
            "[index]");
  EXPECT_EQ(apply("pools[0].gpus[1]=2"),
            "--set pools[0].gpus[1]=2: 'gpus' is not a repeated message, so takes no [index] (a "
            "list is set whole: 0,2,4,6)");
  EXPECT_EQ(apply("pools[0].gpus.x=1"),
            "--set pools[0].gpus.x=1: 'gpus' is a list, not a message");
  for (const char* bad : {"pools[].role=MIXED", "pools[-1].role=MIXED", "pools[x].role=MIXED",
                          "pools[0.role=MIXED", "pools[1]x.role=MIXED"}) {
    EXPECT_NE(apply(bad).find("is not a field name or an entry of one (name[index], index from "
                              "0)"),
              std::string::npos)
        << bad;
  }
  EXPECT_NE(apply("pools[99999999999].role=MIXED").find("is not a field name"), std::string::npos);
  s.clear_pools();
  EXPECT_EQ(apply("pools[1].role=DECODE"),
            "--set pools[1].role=DECODE: pools[1] is out of range: pools has no entries");
  // On a scenario without pools, pools[0] adds the first.
  EXPECT_EQ(apply("pools[0].role=PREFILL"), "");
  ASSERT_EQ(s.pools_size(), 1);
  EXPECT_EQ(s.pools(0).role(), v1::Pool::PREFILL);
}

}  // namespace
}  // namespace shardsim
