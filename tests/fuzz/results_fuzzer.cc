// libFuzzer target: sweep result tables as read back. The input is a
// result file, resumed (ResultsFile::Open: parse, check, cut a torn line)
// and merged (MergeResults), as CSV and as JSON Lines.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "sim/scenario/sweep_spec.h"
#include "sim/sweep/results.h"
#include "tests/fuzz/fuzz_sandbox.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using shardsim::sweep::TableFormat;
  const shardsim::fuzz::Sandbox& sandbox = shardsim::fuzz::Sandbox::Get();
  static const std::vector<shardsim::scenario::SweepPoint>* points = [] {
    auto* p = new std::vector<shardsim::scenario::SweepPoint>(3);
    for (int i = 0; i < 3; ++i) {
      (*p)[i].index = i;
      (*p)[i].key = absl::StrCat("a=", i);
      (*p)[i].values = {absl::StrCat(i)};
    }
    return p;
  }();
  std::vector<const shardsim::scenario::SweepPoint*> pointers;
  for (const auto& p : *points) pointers.push_back(&p);
  const shardsim::sweep::SweepIdentity identity = {"fnv1a64:00000000000000aa",
                                                   3};
  for (TableFormat format : {TableFormat::kCsv, TableFormat::kJsonl}) {
    const std::string path = sandbox.Write("scenarios", "table", data, size);
    (void)shardsim::sweep::MergeResults({path},
                                        sandbox.root() + "/scenarios/merged");
    auto file = shardsim::sweep::ResultsFile::Open(
        path, format, shardsim::sweep::TableColumns({"a"}), identity, pointers);
    if (file.ok()) (void)(*file)->SortByPoint();
  }
  return 0;
}
