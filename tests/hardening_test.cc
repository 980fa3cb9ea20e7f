// Input checks added after the 2026-11-30 review (issue 14): each test here
// failed before its fix. Files are written under a fresh temporary folder;
// scenarios name the repository's models and topologies by absolute path.
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "sim/base/config_file.h"
#include "sim/proto/scenario.pb.h"
#include "sim/scenario/overrides.h"
#include "sim/scenario/scenario.h"
#include "tests/test_util.h"

namespace shardsim {
namespace {

using ::shardsim::testing::Repo;
using ::shardsim::testing::TempDir;
using ::shardsim::testing::WriteFile;

// Item 12: proto3 leaves a field equal to its default out of ListFields(),
// so an error about "batch_size: 0" used to point at `workload {`.
TEST(Locations, AFieldWrittenAsZeroHasItsOwnLineAndColumn) {
  v1::Scenario scenario;
  FieldLocator where;
  ASSERT_TRUE(ParseTextProto("name: \"x\"\n"
                             "workload {\n"
                             "  prompt_len: 8\n"
                             "  batch_size: 0\n"
                             "}\n",
                             "f.textproto", &scenario, &where)
                  .ok());
  EXPECT_EQ(where.Where("workload.batch_size"), "f.textproto:4:3");
  EXPECT_EQ(where.Where("workload.prompt_len"), "f.textproto:3:3");
  // Not written at all: the enclosing message, as before.
  EXPECT_EQ(where.Where("workload.output_len"), "f.textproto:2:1");

  TempDir dir("hardening");
  WriteFile(dir / "s.textproto",
            absl::StrCat("model_file: \"", Repo("models/llama3_8b.json"),
                         "\"\ntopology_file: \"",
                         Repo("topologies/dgx_h100.textproto"),
                         "\"\nworkload { prompt_len: 8 output_len: 8\n"
                         "           batch_size: 0 }\n"));
  EXPECT_EQ(scenario::LoadScenario(dir / "s.textproto", {}).status().message(),
            dir /
                "s.textproto:4:12: workload.batch_size: must be positive, "
                "got 0");
}

// Item 11: libprotobuf logged its own line for a non-UTF-8 string, kept the
// bytes, and the JSON report then dropped the field.
TEST(Utf8, ConfigFilesAndSetValuesMustBeUtf8) {
  EXPECT_EQ(FirstInvalidUtf8("plain"), absl::string_view::npos);
  EXPECT_EQ(FirstInvalidUtf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
            absl::string_view::npos);
  EXPECT_EQ(FirstInvalidUtf8("ab\xff"), 2u);
  EXPECT_EQ(FirstInvalidUtf8("ab\xc3"), 2u);            // cut short
  EXPECT_EQ(FirstInvalidUtf8("\xc0\xaf"), 0u);          // overlong '/'
  EXPECT_EQ(FirstInvalidUtf8("x\xed\xa0\x80"), 1u);     // a surrogate
  EXPECT_EQ(FirstInvalidUtf8("\xf4\x90\x80\x80"), 0u);  // past U+10FFFF

  v1::Scenario scenario;
  FieldLocator where;
  EXPECT_EQ(ParseTextProto("name: \"ok\"\ndescription: \"caf\xe9\"\n",
                           "f.textproto", &scenario, &where)
                .message(),
            "f.textproto:2:18: not UTF-8 text (byte 0xe9); save the file as "
            "UTF-8");
  EXPECT_EQ(scenario::ParseOverride("name=caf\xe9").status().message(),
            "--set name=caf\\xe9: not UTF-8 text");
}

// The parser reports an unknown enum value at the token after it (the next
// line's field here); the error now points at the value itself.
TEST(Locations, AnUnknownEnumValueIsWhereItIsWritten) {
  v1::Scenario scenario;
  FieldLocator where;
  EXPECT_EQ(ParseTextProto("name: \"x\"\n"
                           "serving { arrival { kind: POISON\n"
                           "  rate_per_s: 1 } }\n",
                           "f.textproto", &scenario, &where)
                .message(),
            "f.textproto:2:27: Unknown enumeration value of \"POISON\" for field \"kind\".");
  // The same value earlier in the file is not taken for it.
  EXPECT_EQ(ParseTextProto("description: \"POISON\"\n"
                           "serving { arrival { kind: POISON } }\n",
                           "f.textproto", &scenario, &where)
                .message(),
            "f.textproto:2:27: Unknown enumeration value of \"POISON\" for field \"kind\".");
}

// A device was read until memory ran out (/dev/zero never ends).
TEST(Files, ADeviceIsNotReadAsAFile) {
  std::string text;
  EXPECT_EQ(ReadFile("/dev/zero", &text).message(),
            "/dev/zero: is not a regular file (a character device)");
  EXPECT_EQ(ReadFile("/dev/null", &text).message(),
            "/dev/null: is not a regular file (a character device)");
  TempDir dir("hardening");
  WriteFile(dir / "ok.textproto", "name: \"x\"\n");
  EXPECT_TRUE(ReadFile(dir / "ok.textproto", &text).ok());
  EXPECT_EQ(text, "name: \"x\"\n");
}

// Item 12: the value was printed as is, so the error took three lines.
TEST(Overrides, AValueWithALineBreakIsAOneLineError) {
  EXPECT_EQ(scenario::ParseOverride("name=a\nb\r\nc").status().message(),
            "--set name=a\\nb\\r\\nc: a value must be one line");
}

// Item 4: micro_batches had no upper bound; 2e9 grew past 4 GB.
TEST(Bounds, MicroBatchesAtMostTheSequencesOfAReplica) {
  const std::string scenario =
      "scenarios/strategy_llama3_70b_h100_tp4_pp2.textproto";
  EXPECT_EQ(
      scenario::LoadScenario(scenario, {"workload.batch_size=10",
                                        "parallelism.micro_batches=2000000000"})
          .status()
          .message(),
      "--set parallelism.micro_batches=2000000000: parallelism.micro_batches: "
      "2000000000 micro-batches, but a replica has 10 sequences "
      "(workload.batch_size / dp): at most 10");
  EXPECT_TRUE(scenario::LoadScenario(scenario, {"workload.batch_size=10",
                                                "parallelism.micro_batches=10"})
                  .ok());

  TempDir dir("hardening");
  WriteFile(dir / "s.textproto",
            absl::StrCat("model_file: \"", Repo("models/llama3_8b.json"),
                         "\"\ntopology_file: \"",
                         Repo("topologies/dgx_h100.textproto"),
                         "\"\nparallelism { dp: 2\n"
                         "  micro_batches: 3 }\n"
                         "workload { batch_size: 4 prompt_len: 8 "
                         "output_len: 8 }\n"));
  EXPECT_EQ(scenario::LoadScenario(dir / "s.textproto", {}).status().message(),
            dir /
                "s.textproto:4:3: parallelism.micro_batches: 3 "
                "micro-batches, but a replica has 2 sequences "
                "(workload.batch_size / dp): at most 2");
}

// Item 13: "fabric" written on one link (one uplink per node) counted as a
// name used once, and was refused as a likely misspelling.
TEST(Topology, OneSwitchUplinkPerNodeIsNotAMisspelling) {
  TempDir dir("hardening");
  std::string text = absl::StrCat(
      "name: \"uplink\"\ngpu: \"H100-SXM5-80GB\"\ngpu_catalog_file: \"",
      Repo("topologies/gpus.textproto"),
      "\"\nnum_nodes: 2\ngpus_per_node: 2\n");
  for (int g = 0; g < 2; ++g) {
    absl::StrAppend(&text, "links { a: \"gpu", g,
                    "\" b: \"sw\" bandwidth_bytes_per_s: 4.5e11 }\n");
  }
  absl::StrAppend(&text,
                  "links { a: \"sw\" b: \"fabric\" bandwidth_bytes_per_s: 5e10 "
                  "kind: \"infiniband\" }\n");
  WriteFile(dir / "t.textproto", text);
  absl::StatusOr<hardware::Cluster> cluster =
      scenario::LoadAndCheckTopology(dir / "t.textproto");
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  EXPECT_EQ(cluster->num_nodes, 2);

  // On one node the same uplink is a dead end: still refused.
  WriteFile(dir / "one.textproto",
            absl::StrCat(text.substr(0, text.find("num_nodes: 2")),
                         "num_nodes: 1", text.substr(text.find("\ngpus_per"))));
  EXPECT_EQ(
      scenario::LoadAndCheckTopology(dir / "one.textproto").status().message(),
      dir /
          "one.textproto:8:1: links[2]: 'fabric' is on this link "
          "only, so no route can pass through it (a misspelled "
          "name?)");
}

}  // namespace
}  // namespace shardsim
