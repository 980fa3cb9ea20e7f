// Every golden run in tests/golden/run_json/MANIFEST: `shardsim run ARGS
// --format=json` must print exactly the stored bytes. The engine can be
// rebuilt underneath; what a user sees may only change on purpose.
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/run_shardsim.h"

namespace {

using ::shardsim::testing::Result;
using ::shardsim::testing::RunShardsim;

constexpr char kDir[] = "tests/golden/run_json/";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// (golden file, arguments) from the manifest.
std::vector<std::pair<std::string, std::string>> Manifest() {
  std::vector<std::pair<std::string, std::string>> runs;
  std::istringstream lines(ReadFile(absl::StrCat(kDir, "MANIFEST")));
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> parts = absl::StrSplit(line, absl::MaxSplits(' ', 1));
    if (parts.size() == 2) runs.emplace_back(parts[0], parts[1]);
  }
  return runs;
}

TEST(GoldenRuns, ManifestListsEveryShippedRunScenario) {
  EXPECT_GE(Manifest().size(), 21u);
}

TEST(GoldenRuns, EveryRunPrintsItsStoredJson) {
  for (const auto& [file, args] : Manifest()) {
    const Result r = RunShardsim(absl::StrCat("run ", args, " --format=json"));
    EXPECT_EQ(r.exit_code, 0) << file << ": " << r.out;
    EXPECT_EQ(r.out, ReadFile(absl::StrCat(kDir, file))) << file << " differs";
  }
}

}  // namespace
