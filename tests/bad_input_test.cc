// The bad-input corpus (issue 14): each case is run through the shardsim
// binary as a user would run it, and must end in one clean line: exit 1
// (bad input) or 2 (bad command line), "shardsim CMD: " first, the file and
// line:column where there is one; never an abort, a hang, a stack trace or
// a sanitizer report (any of which would add lines or change the exit).
// Files are written under a fresh temporary folder.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gtest/gtest.h"
#include "tests/run_shardsim.h"

namespace shardsim {
namespace {

namespace fs = std::filesystem;
using ::shardsim::testing::Result;
using ::shardsim::testing::RunShardsim;

class BadInput : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "shardsim_bad_input_XXXXXX";
    dir_ = ::mkdtemp(pattern.data());
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Writes `text` to `name` in the temporary folder; returns its path.
  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }

  // Runs `shardsim ARGS` ("$D" stands for the temporary folder) and checks
  // the one clean line: `exit_code`, and the line starts with "shardsim
  // CMD: " (CMD: the first word of `args`) and holds `expected` ("$D" again
  // for the folder).
  void ExpectOneLine(const std::string& args, int exit_code,
                     const std::string& expected) {
    const Result r = RunShardsim(absl::StrReplaceAll(args, {{"$D", dir_}}));
    const std::string want = absl::StrReplaceAll(expected, {{"$D", dir_}});
    EXPECT_EQ(r.exit_code, exit_code) << args << "\n" << r.out;
    const std::string first = r.out.substr(0, r.out.find('\n') + 1);
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << args << "\n" << r.out;
    const std::string prefix = absl::StrCat("shardsim ", args.substr(0, args.find(' ')), ": ");
    EXPECT_EQ(first.rfind(prefix, 0), 0u) << args << "\n" << r.out;
    EXPECT_NE(first.find(want), std::string::npos)
        << args << "\n"
        << r.out << "\nwanted: " << want;
  }

  std::string Repo(const std::string& relative) const {
    return (fs::current_path() / relative).string();
  }

  // A scenario on the repository's files, with `extra` after the usual
  // fields.
  std::string Scenario(const std::string& extra) const {
    return absl::StrCat(
        "model_file: \"", Repo("models/llama3_8b.json"),
        "\"\ntopology_file: \"", Repo("topologies/dgx_h100.textproto"),
        "\"\nworkload { prompt_len: 8 output_len: 4 ", extra, " }\n");
  }

  std::string SmallSweep(const std::string& set = "") const {
    return absl::StrCat("base_scenario: \"",
                        Repo("scenarios/default.textproto"),
                        "\"\nset: \"workload.output_len=2\"\n", set,
                        "axes { path: \"workload.batch_size\" values: [\"1\", "
                        "\"2\", \"3\"] }\n");
  }

  std::string dir_;
};

// Items 8 and 9: --out that is not this sweep's file is refused, untouched.
TEST_F(BadInput, SweepOutIsARegularFileOfThisSweep) {
  const std::string sweep = Write("s.textproto", SmallSweep());
  ExpectOneLine("sweep $D/s.textproto --out=/dev/null", 1,
                "/dev/null: is not a regular file");
  ASSERT_EQ(mkfifo((dir_ + "/fifo").c_str(), 0644), 0);
  ExpectOneLine("sweep $D/s.textproto --out=$D/fifo", 1,
                "$D/fifo: is not a regular file");
  ExpectOneLine("sweep $D/s.textproto --out=$D", 1,
                "$D: is not a regular file (a directory)");
  Write("notes.csv", "dear diary");
  ExpectOneLine("sweep $D/s.textproto --out=$D/notes.csv", 1,
                "$D/notes.csv:1: does not start with this sweep's header");
  std::ifstream in(dir_ + "/notes.csv");
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), "dear diary");
}

// Item 10: shards of two sweeps sharing their columns; missing points.
TEST_F(BadInput, MergeChecksTheSweepAndCountsWhatIsMissing) {
  Write("a.textproto", SmallSweep());
  Write("b.textproto", SmallSweep("set: \"workload.prompt_len=64\"\n"));
  ASSERT_EQ(RunShardsim(absl::StrCat("sweep ", dir_, "/a.textproto --out=",
                                     dir_, "/a1.csv --shard=1/2 --jobs=1"))
                .exit_code,
            0);
  ASSERT_EQ(RunShardsim(absl::StrCat("sweep ", dir_, "/b.textproto --out=",
                                     dir_, "/b2.csv --shard=2/2 --jobs=1"))
                .exit_code,
            0);
  ExpectOneLine("merge --out=$D/m.csv $D/a1.csv $D/b2.csv", 1,
                "$D/b2.csv:2: sweep_id fnv1a64:");
  ExpectOneLine("merge --out=$D/m.csv $D/a1.csv", 1,
                "merged 2 rows into $D/m.csv, but 1 of 3 points have no row "
                "(1)");
}

// Item 11: text that is not UTF-8, in a file or a --set.
TEST_F(BadInput, TextThatIsNotUtf8) {
  Write("latin1.textproto", "name: \"caf\xe9\"\n" + Scenario("batch_size: 1"));
  ExpectOneLine("run $D/latin1.textproto", 1,
                "$D/latin1.textproto:1:11: not UTF-8 text (byte 0xe9)");
  ExpectOneLine(absl::StrCat("memory ", Repo("scenarios/default.textproto"),
                             " --set 'name=caf\xe9'"),
                1, "--set name=caf\\xe9: not UTF-8 text");
  Write("latin1_sweep.textproto",
        SmallSweep() + "axes { path: \"name\" values: [\"\xe9t\xe9\"] }\n");
  ExpectOneLine("sweep $D/latin1_sweep.textproto --out=$D/r.jsonl", 1,
                "$D/latin1_sweep.textproto:4:31: not UTF-8 text (byte 0xe9)");
}

// Item 12: a field written as 0, and a --set value with a line break.
TEST_F(BadInput, ErrorsSayWhere) {
  Write("zero.textproto", Scenario("batch_size: 0"));
  ExpectOneLine(
      "memory $D/zero.textproto", 1,
      "$D/zero.textproto:3:40: workload.batch_size: must be positive");
  ExpectOneLine(absl::StrCat("memory ", Repo("scenarios/default.textproto"),
                             " --set 'name=two\nlines'"),
                1, "--set name=two\\nlines: a value must be one line");
}

// Item 4: more micro-batches than sequences.
TEST_F(BadInput, MicroBatchesBoundedByTheBatch) {
  for (const char* command : {"run", "memory"}) {
    ExpectOneLine(
        absl::StrCat(command, " ", Repo("scenarios/default.textproto"),
                     " --set parallelism.micro_batches=2000000000"),
        1,
        "--set parallelism.micro_batches=2000000000: "
        "parallelism.micro_batches: 2000000000 micro-batches, but a replica "
        "has 64 sequences");
  }
}

// Item 7: --timeout's value.
TEST_F(BadInput, SweepTimeoutIsSeconds) {
  Write("s.textproto", SmallSweep());
  for (const char* value : {"-1", "soon", "nan", "1e400"}) {
    ExpectOneLine(
        absl::StrCat("sweep $D/s.textproto --out=$D/r.csv --timeout=", value),
        2, absl::StrCat("--timeout: expected seconds from 0 to 1e+09, got '", value, "'"));
  }
}

}  // namespace
}  // namespace shardsim
