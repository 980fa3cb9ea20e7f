// `shardsim serve --find-max-rate` and `shardsim plan` as a user runs them:
// the rate search against single serve runs, the plan's choice against an
// exhaustive evaluation of its space, byte-identical output, resuming, the
// chosen scenario reproduced by `serve`, and bad input.
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/run_shardsim.h"

namespace {

namespace fs = std::filesystem;
using ::shardsim::testing::Result;
using ::shardsim::testing::RunShardsim;

constexpr char kServe[] = "tests/data/plan/serve_small.textproto";
constexpr char kPlan[] = "tests/data/plan/plan_small.textproto";

// A fresh directory per test, named by process (ctest runs tests at once).
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() /
                           absl::StrCat("shardsim_plan_", ::getpid(), "_XXXXXX"))
                              .string();
    path_ = ::mkdtemp(pattern.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// stdout alone (RunShardsim joins stderr to it, where `plan` says how long
// it took).
std::string Stdout(const std::string& args) {
  return RunShardsim(args + " 2>/dev/null; exit $?").out;
}

nlohmann::json Json(const std::string& args) {
  const Result r = RunShardsim(args + " --format=json 2>/dev/null; exit $?");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  return nlohmann::json::parse(r.out);
}

double Num(const nlohmann::json& j) {
  if (j.is_string()) return std::stod(j.get<std::string>());
  return j.get<double>();
}

// Whether a serve report meets serve_small's SLO (p90 TTFT 200 ms, TPOT 15 ms).
bool Meets(const nlohmann::json& serve) {
  return Num(serve.at("refused")) == 0 && Num(serve.at("ttft").at("p90_s")) <= 0.2 &&
         Num(serve.at("tpot").at("p90_s")) <= 0.015;
}

TEST(FindMaxRate, FindsARateThatMeetsWhileOneToleranceAboveMisses) {
  const nlohmann::json r = Json(absl::StrCat("serve ", kServe, " --find-max-rate"));
  const double max_rate = Num(r.at("max_rate_per_s"));
  const double missed = Num(r.at("missed_rate_per_s"));
  const double tolerance = Num(r.at("tolerance"));
  ASSERT_GT(max_rate, 0);
  EXPECT_TRUE(r.at("converged").get<bool>());
  EXPECT_LE(missed, max_rate * (1 + tolerance));
  // Every probe's arrivals span the first's window: its request count grows
  // with the rate (never below the scenario's own).
  const double start = Num(r.at("probes").at(0).at("rate_per_s"));
  const double base = Num(r.at("probes").at(0).at("requests"));
  auto requests_at = [&](double rate) {
    return std::max(base, std::ceil(base * (rate / start)));
  };
  // Monotone over the probes, and each agrees with a plain `serve` at its
  // rate and request count.
  for (const nlohmann::json& p : r.at("probes")) {
    const double rate = Num(p.at("rate_per_s"));
    EXPECT_EQ(p.at("met").get<bool>(), rate <= max_rate) << rate;
    EXPECT_EQ(Num(p.at("requests")), requests_at(rate)) << rate;
  }
  const nlohmann::json at_max =
      Json(absl::StrCat("serve ", kServe, " --set serving.arrival.rate_per_s=", max_rate,
                        " --set serving.num_requests=",
                        static_cast<int64_t>(requests_at(max_rate))));
  EXPECT_TRUE(Meets(at_max));
  EXPECT_EQ(Num(at_max.at("requests")), Num(r.at("at_max").at("requests")));
  const double over = max_rate * (1 + tolerance);
  const nlohmann::json above =
      Json(absl::StrCat("serve ", kServe, " --set serving.arrival.rate_per_s=", over,
                        " --set serving.num_requests=",
                        static_cast<int64_t>(requests_at(over))));
  EXPECT_FALSE(Meets(above));
  // Same input, same probes.
  EXPECT_EQ(r, Json(absl::StrCat("serve ", kServe, " --find-max-rate")));
  const Result text = RunShardsim(absl::StrCat("serve ", kServe, " --find-max-rate"));
  EXPECT_EQ(text.exit_code, 0);
  EXPECT_NE(text.out.find("max rate"), std::string::npos) << text.out;
}

TEST(FindMaxRate, WithoutAnSloIsOneLine) {
  const Result r = RunShardsim(absl::StrCat("serve ", kServe,
                                            " --find-max-rate --set serving.slo.ttft_s=0"
                                            " --set serving.slo.tpot_s=0"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  EXPECT_NE(r.out.find("serving.slo"), std::string::npos) << r.out;
}

// Rows of the candidates CSV by column name.
std::vector<std::map<std::string, std::string>> ReadCsv(const std::string& path) {
  std::vector<std::map<std::string, std::string>> rows;
  std::ifstream in(path);
  std::string line;
  std::vector<std::string> header;
  while (std::getline(in, line)) {
    // Fields: quoted ones may hold commas.
    std::vector<std::string> fields;
    std::string field;
    bool quoted = false;
    for (size_t i = 0; i < line.size(); ++i) {
      const char c = line[i];
      if (quoted) {
        if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
          field += '"';
          ++i;
        } else if (c == '"') {
          quoted = false;
        } else {
          field += c;
        }
      } else if (c == '"') {
        quoted = true;
      } else if (c == ',') {
        fields.push_back(field);
        field.clear();
      } else {
        field += c;
      }
    }
    fields.push_back(field);
    if (header.empty()) {
      header = fields;
      continue;
    }
    std::map<std::string, std::string> row;
    for (size_t i = 0; i < header.size() && i < fields.size(); ++i) row[header[i]] = fields[i];
    rows.push_back(row);
  }
  return rows;
}

TEST(Plan, ChoosesTheBestOfAnExhaustiveEvaluationAndReproducesIt) {
  TempDir dir;
  const Result r = RunShardsim(absl::StrCat("plan ", kPlan, " --jobs=2 --out=", dir.path()));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto rows = ReadCsv(dir / "candidates.csv");
  ASSERT_EQ(rows.size(), 12u);
  // Exhaustive: every candidate that fits, served at the plan's rate.
  int best = -1;
  double best_cost = std::numeric_limits<double>::infinity();
  int evaluated = 0;
  for (const auto& row : rows) {
    if (row.at("fits") != "true" || row.at("status") == "invalid") continue;
    ++evaluated;
    std::vector<std::string> sets = absl::StrSplit(row.at("key"), ';');
    std::string args = absl::StrCat("serve ", kServe);
    for (const std::string& s : sets) absl::StrAppend(&args, " --set ", s);
    const nlohmann::json serve = Json(args);
    EXPECT_EQ(row.at("simulated"), "true") << row.at("key");
    if (!Meets(serve)) {
      EXPECT_EQ(row.at("meets_slo"), "false") << row.at("key");
      continue;
    }
    EXPECT_EQ(row.at("meets_slo"), "true") << row.at("key");
    const double cost = std::stod(row.at("price_per_hour")) * std::stod(row.at("num_gpus")) *
                        1e6 / (Num(serve.at("output_tokens_per_s")) * 3600);
    EXPECT_NEAR(std::stod(row.at("cost_per_million_tokens")), cost, 1e-6 * cost);
    if (cost < best_cost) {
      best_cost = cost;
      best = std::stoi(row.at("index"));
    }
  }
  EXPECT_GT(evaluated, 4);
  ASSERT_GE(best, 0);
  EXPECT_EQ(rows[static_cast<size_t>(best)].at("chosen"), "true");
  EXPECT_NE(r.out.find("chosen\n"), std::string::npos) << r.out;

  // The written scenario reproduces the chosen candidate's run.
  const nlohmann::json chosen = Json(absl::StrCat("serve ", dir / "chosen.textproto"));
  const double tput = Num(chosen.at("output_tokens_per_s_per_gpu"));
  EXPECT_NEAR(std::stod(rows[static_cast<size_t>(best)].at("output_tokens_per_s_per_gpu")),
              tput, 1e-9 * tput);
}

TEST(Plan, SameInputSameBytesAndAKilledPlanResumes) {
  TempDir a, b, c;
  const std::string first =
      Stdout(absl::StrCat("plan ", kPlan, " --format=json --jobs=1 --out=", a.path()));
  // Resumed entirely from its own result file.
  const std::string again =
      Stdout(absl::StrCat("plan ", kPlan, " --format=json --jobs=1 --out=", a.path()));
  EXPECT_EQ(first, again);
  // Another folder, more workers: the same bytes but for the folder's name.
  const std::string other =
      Stdout(absl::StrCat("plan ", kPlan, " --format=json --jobs=2 --out=", b.path()));
  EXPECT_EQ(first, absl::StrReplaceAll(other, {{b.path(), a.path()}}));
  // Killed after two results, the second torn mid-line: the re-run cuts the
  // torn line, simulates the rest and says the same.
  const std::string results = Slurp(a / "simulated.jsonl");
  std::vector<std::string> lines = absl::StrSplit(results, '\n', absl::SkipEmpty());
  ASSERT_GT(lines.size(), 3u);
  {
    std::ofstream partial(c / "simulated.jsonl");
    partial << lines[0] << "\n" << lines[1] << "\n" << lines[2].substr(0, lines[2].size() / 2);
  }
  const Result resumed = RunShardsim(absl::StrCat("plan ", kPlan, " --format=json --out=", c.path()));
  EXPECT_NE(resumed.out.find("(1 from"), std::string::npos) << resumed.out;
  const std::string resumed_json =
      Stdout(absl::StrCat("plan ", kPlan, " --format=json --out=", c.path()));
  EXPECT_EQ(first, absl::StrReplaceAll(resumed_json, {{c.path(), a.path()}}));
  // A result file of another plan is refused.
  const Result refused = RunShardsim(
      absl::StrCat("plan tests/data/plan/plan_impossible.textproto --out=", a.path()));
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.out.find("another plan"), std::string::npos) << refused.out;
}

TEST(Plan, NothingMeetingTheSloSaysSoAndShowsTheClosest) {
  TempDir dir;
  const Result r = RunShardsim(
      absl::StrCat("plan tests/data/plan/plan_impossible.textproto --out=", dir.path()));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("chosen     none"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("closest"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("misses the SLO: tpot_p90"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(dir / "chosen.textproto"));
}

// A plan searching prefill/decode pool pairs: the shipped example. Every
// pair that fits is estimated in closed form and the top K pairs (top_k 6)
// simulated beside the top K plans without pools, so those are all simulated
// as without pairs; the pairs one tp=2 prefill replica feeds are pruned as
// missing the SLO (the simulation agrees: TTFT p90 2-4 s), and one 8-GPU
// pair by rank. A pair's numbers are those of `serve` with its overrides
// (the same serving run, judged the same way); the report says which kind
// won against the best of the other.
TEST(Plan, PoolPairsAreSimulatedAndReproducedByServe) {
  TempDir dir;
  constexpr char kPools[] = "scenarios/plan_disagg_qwen3_32b_h100.textproto";
  const Result r = RunShardsim(absl::StrCat("plan ", kPools, " --jobs=2 --out=", dir.path()));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find(" won: #"), std::string::npos) << r.out;
  const auto rows = ReadCsv(dir / "candidates.csv");
  ASSERT_EQ(rows.size(), 17u);  // 6 plans over the node + 11 pool pairs (plan_test)
  const std::map<std::string, std::string>* pair = nullptr;
  int pairs = 0, simulated_pairs = 0, plans = 0;
  for (const auto& row : rows) {
    if (row.at("deployment").empty()) {
      // Every valid plan without pools is simulated (5 of top_k 6).
      plans += row.at("simulated") == "true";
      continue;
    }
    ++pairs;
    EXPECT_NE(row.at("est_rank"), "") << row.at("key");
    if (row.at("simulated") != "true") {
      EXPECT_EQ(row.at("status"), "pruned_by_estimate") << row.at("key");
      const bool one_prefill = row.at("prefill_tp") == "2" && row.at("prefill_replicas") == "1";
      EXPECT_EQ(row.at("est_meets_slo"), one_prefill ? "false" : "true") << row.at("key");
      continue;
    }
    ++simulated_pairs;
    if (pair == nullptr || row.at("chosen") == "true") pair = &row;
  }
  EXPECT_EQ(pairs, 11);
  EXPECT_EQ(simulated_pairs, 6);
  EXPECT_EQ(plans, 5);
  EXPECT_NE(r.out.find("over the 6 pool pairs"), std::string::npos) << r.out;
  ASSERT_NE(pair, nullptr);
  // `serve` with the pair's overrides gives the plan's numbers exactly.
  std::string args = absl::StrCat("serve ", fs::current_path().string(),
                                  "/scenarios/serve_qwen3_32b_h100_8rps.textproto");
  for (absl::string_view o : absl::StrSplit(pair->at("key"), ';')) {
    absl::StrAppend(&args, " --set '", o, "'");
  }
  const nlohmann::json serve = Json(args);
  auto g10 = [](double v) {
    char buffer[64];
    std::snprintf(buffer, sizeof buffer, "%.10g", v);
    return std::string(buffer);
  };
  EXPECT_EQ(pair->at("ttft_s"), g10(Num(serve.at("ttft").at("p90_s"))));
  EXPECT_EQ(pair->at("tpot_s"), g10(Num(serve.at("tpot").at("p90_s"))));
  EXPECT_EQ(pair->at("output_tokens_per_s_per_gpu"),
            g10(Num(serve.at("output_tokens_per_s_per_gpu"))));
  ASSERT_EQ(serve.at("pools").size(), 2u);
  double gpus = 0;
  for (const nlohmann::json& pool : serve.at("pools")) {
    gpus += static_cast<double>(pool.at("gpus").size());
  }
  EXPECT_EQ(std::stod(pair->at("num_gpus")), gpus);
  // The whole serving report the plan kept for it is the same as serve's.
  std::ifstream results(dir / "simulated.jsonl");
  std::string line;
  bool found = false;
  while (std::getline(results, line)) {
    const nlohmann::json row = nlohmann::json::parse(line);
    if (!row.contains("key") || row.at("key") != pair->at("key")) continue;
    found = true;
    const nlohmann::json& kept = row.at("result").at("serve");
    // Exactly the same numbers (the result file writes int64 as strings).
    for (const char* metric : {"ttft", "tpot", "e2e"}) {
      ASSERT_FALSE(kept.at(metric).empty()) << metric;
      for (const auto& [field, value] : kept.at(metric).items()) {
        EXPECT_EQ(Num(value), Num(serve.at(metric).at(field))) << metric << "." << field;
      }
    }
    for (const char* metric : {"completed", "output_tokens_per_s", "span_s"}) {
      EXPECT_EQ(Num(kept.at(metric)), Num(serve.at(metric))) << metric;
    }
  }
  EXPECT_TRUE(found);
}

TEST(Plan, BadInputIsOneLine) {
  TempDir dir;
  const std::string path = dir / "bad.textproto";
  {
    std::ofstream out(path);
    out << "base_scenario: \"x.textproto\"\nspace { tp: [1, 0] }\n";
  }
  Result r = RunShardsim(absl::StrCat("plan ", path, " --out=", dir / "out"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  EXPECT_NE(r.out.find("bad.textproto:2:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("space.tp[1]"), std::string::npos) << r.out;
  {
    std::ofstream out(path);
    out << "base_scenario: \"x.textproto\"\nspace { tpp: 2 }\n";
  }
  r = RunShardsim(absl::StrCat("plan ", path, " --out=", dir / "out"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  EXPECT_NE(r.out.find("bad.textproto:2:"), std::string::npos) << r.out;
  // A base with prefill/decode pools is refused, not planned as if it had none.
  {
    std::ofstream out(path);
    out << "base_scenario: \"" << fs::current_path().string()
        << "/scenarios/serve_disagg_qwen3_32b_h100_2p1d.textproto\"\n";
  }
  r = RunShardsim(absl::StrCat("plan ", path, " --out=", dir / "out"));
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  EXPECT_NE(r.out.find("has prefill/decode pools"), std::string::npos) << r.out;
}

}  // namespace
