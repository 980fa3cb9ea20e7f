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
#include <utility>
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

// ---- The newer commands and files (the 2026-11-30 hardening sweep) ------

// A device is not an input: /dev/zero was read until memory ran out (a
// hang, then an abort), as a scenario, a model, a trace, a plan or a table.
TEST_F(BadInput, ADeviceIsNotAnInputFile) {
  ExpectOneLine("run /dev/zero", 1, "/dev/zero: is not a regular file (a character device)");
  ExpectOneLine("validate /dev/zero", 1, "/dev/zero: is not a regular file");
  ExpectOneLine("plan /dev/zero", 1, "/dev/zero: is not a regular file");
  ExpectOneLine(absl::StrCat("memory ", Repo("scenarios/default.textproto"),
                             " --set model_file=/dev/zero"),
                1, "--set model_file=/dev/zero: model_file: /dev/zero: is not a regular file");
  ExpectOneLine(absl::StrCat("serve ", Repo("scenarios/serve_llama3_70b_h100_tp8.textproto"),
                             " --set serving.trace.file=/dev/zero"),
                1,
                "--set serving.trace.file=/dev/zero: serving.trace.file: /dev/zero: is not a "
                "regular file (a character device)");
  ExpectOneLine("merge --out=$D/m.csv /dev/zero", 1, "/dev/zero: is not a regular file");
}

// A trace file that cannot be read names the field that named it, and
// where (it said only the path).
TEST_F(BadInput, AnUnreadableTraceNamesItsField) {
  const std::string serve = Repo("scenarios/serve_llama3_70b_h100_tp8.textproto");
  ExpectOneLine(absl::StrCat("serve ", serve, " --set serving.trace.file=$D"), 1,
                "--set serving.trace.file=$D: serving.trace.file: $D: is a directory, not a file");
  Write("s.textproto", absl::StrCat("model_file: \"", Repo("models/llama3_70b.textproto"),
                                    "\"\ntopology_file: \"", Repo("topologies/dgx_h100.textproto"),
                                    "\"\nparallelism { tp: 8 }\n"
                                    "serving {\n  trace { file: \"missing.csv\" }\n}\n"));
  ExpectOneLine("serve $D/s.textproto", 1,
                "$D/s.textproto:5:11: serving.trace.file: $D/missing.csv: cannot open file");
}

// Trace rows: each bad cell is its file:line:column and column name; a cell
// that is not UTF-8 is escaped (its raw bytes made the error line itself not
// UTF-8).
TEST_F(BadInput, TraceRows) {
  const std::string serve = absl::StrCat(
      "serve ", Repo("scenarios/serve_llama3_70b_h100_tp8.textproto"), " --set serving.trace.file=");
  const std::string header = "arrived_at,num_prefill_tokens,num_decode_tokens\n0,10,5\n";
  const std::pair<std::string, std::string> cases[] = {
      {"1,10,3\xff\n", "$D/t.csv:3:6: num_decode_tokens: not a number: '3\\xff'"},
      {"1,abc,4\n", "$D/t.csv:3:3: num_prefill_tokens: not a number: 'abc'"},
      {"1,-10,4\n", "$D/t.csv:3:3: num_prefill_tokens: must be a whole number of tokens"},
      {"1,10", "$D/t.csv:3: 2 fields, the header has 3"},
      {"nan,10,3\n", "$D/t.csv:3:1: arrived_at: not a time in seconds"},
      {"1e300,10,3\n", "$D/t.csv:3:1: arrived_at: not a time in seconds"},
      {"1,10,99999999999999999999\n", "$D/t.csv:3:6: num_decode_tokens: must be a whole number"},
  };
  for (const auto& [rows, want] : cases) {
    Write("t.csv", header + rows);
    ExpectOneLine(serve + "$D/t.csv", 1, want);
  }
  Write("t.csv", "");
  ExpectOneLine(serve + "$D/t.csv", 1, "$D/t.csv: empty CSV");
  Write("t.csv", "a,b\n");
  ExpectOneLine(serve + "$D/t.csv", 1, "$D/t.csv:1: no column 'arrived_at'");
}

// A trace with a quoted text column that spans lines (RFC 4180 allows line
// breaks in quotes): a bad value is named by the physical line and column
// an editor shows, on the record's second line or on a later row, not by
// the record's index.
TEST_F(BadInput, TraceRowsAfterAQuotedLineBreak) {
  const std::string serve = absl::StrCat(
      "serve ", Repo("scenarios/serve_llama3_70b_h100_tp8.textproto"), " --set serving.trace.file=");
  const std::string header = "note,arrived_at,num_prefill_tokens,num_decode_tokens\n";
  Write("t.csv", header + "\"two\nlines\",0,10,5\nx,1,abc,4\n");
  ExpectOneLine(serve + "$D/t.csv", 1, "$D/t.csv:4:5: num_prefill_tokens: not a number: 'abc'");
  Write("t.csv", header + "x,0,10,5\r\n\"a\r\nb\",1,-3,4\r\n");
  ExpectOneLine(serve + "$D/t.csv", 1,
                "$D/t.csv:4:6: num_prefill_tokens: must be a whole number of tokens");
  Write("t.csv", header + "\"a\nb\",0,10,5\n\n\"c\",2,10\n");
  ExpectOneLine(serve + "$D/t.csv", 1, "$D/t.csv:5: 3 fields, the header has 4");
}

// A HuggingFace config.json that is not UTF-8 is refused where the byte is,
// as a text proto is (the JSON parser quoted the raw byte in its message).
TEST_F(BadInput, ConfigJsonThatIsNotUtf8) {
  Write("m.json", "{\"model_type\": \"llama\xff\"}");
  ExpectOneLine(absl::StrCat("memory ", Repo("scenarios/default.textproto"),
                             " --set model_file=$D/m.json"),
                1, "$D/m.json:1:22: not UTF-8 text (byte 0xff)");
  Write("cut.json", "{\"model_type\": \"llama\", \"hidden_size\": 40");
  ExpectOneLine(absl::StrCat("memory ", Repo("scenarios/default.textproto"),
                             " --set model_file=$D/cut.json"),
                1, "$D/cut.json:1:");
}

// An unknown enum value is placed at the value: the parser reported the
// start of the next token, on the next line here (a sweep's command, a
// scenario's arrival kind).
TEST_F(BadInput, AnUnknownEnumValueIsWhereItIsWritten) {
  Write("s.textproto", "command: SERV\nbase_scenario: \"x\"\n");
  ExpectOneLine("sweep $D/s.textproto --out=$D/r.csv", 1,
                "$D/s.textproto:1:10: Unknown enumeration value of \"SERV\" for field \"command\"");
  Write("a.textproto", "name: \"x\"\nserving { arrival { kind: POISON\n  rate_per_s: 1 } }\n");
  ExpectOneLine("serve $D/a.textproto", 1,
                "$D/a.textproto:2:27: Unknown enumeration value of \"POISON\"");
}

// Plan files: the file, its base scenario and its ranges, each one line.
TEST_F(BadInput, PlanFiles) {
  ExpectOneLine("plan $D", 1, "$D: is a directory, not a file");
  ExpectOneLine("plan $D/none.textproto", 1, "$D/none.textproto: cannot open file");
  const std::string base = absl::StrCat("base_scenario: \"", Repo("scenarios/default.textproto"),
                                        "\"\n");
  Write("cut.textproto", base + "space { tp: [1, 2");
  ExpectOneLine("plan $D/cut.textproto", 1, "$D/cut.textproto:2:18: ");
  Write("typo.textproto", base + "spac { tp: [1] }\n");
  ExpectOneLine("plan $D/typo.textproto", 1,
                "$D/typo.textproto:2:6: Message type \"shardsim.v1.Plan\" has no field named "
                "\"spac\"");
  Write("neg.textproto", base + "space { tp: [-1, 2] }\n");
  ExpectOneLine("plan $D/neg.textproto --estimate-only", 1,
                "$D/neg.textproto:2:9: space.tp[0]: must be from 1 to 65536, got -1");
  Write("top.textproto", base + "top_k: -3\n");
  ExpectOneLine("plan $D/top.textproto", 1, "$D/top.textproto:2:1: top_k: must be from 0 to");
  Write("dir.textproto", "base_scenario: \"/\"\n");
  ExpectOneLine("plan $D/dir.textproto", 1,
                "$D/dir.textproto:1:1: base_scenario: /: is a directory, not a file");
  ExpectOneLine(absl::StrCat("plan ", Repo("scenarios/plan_cheapest_llama3_8b_20rps.textproto"),
                             " --out=/proc/version/x --top=1 --jobs=1"),
                1, "cannot create --out folder /proc/version/x: Not a directory");
}

// Serving fields by --set: a typo'd path or value, and absurd sizes.
TEST_F(BadInput, ServeSetTyposAndAbsurdSizes) {
  const std::string serve =
      absl::StrCat("serve ", Repo("scenarios/serve_llama3_70b_h100_tp8.textproto"), " --set ");
  ExpectOneLine(serve + "serving.arival.rate_per_s=3", 1,
                "--set serving.arival.rate_per_s=3: no field 'arival' in shardsim.v1.Serving");
  ExpectOneLine(serve + "serving.arrival.kind=POISON", 1,
                "--set serving.arrival.kind=POISON: invalid value 'POISON'");
  for (const char* rate : {"nan", "inf", "-1", "0"}) {
    ExpectOneLine(serve + "serving.arrival.rate_per_s=" + rate, 1,
                  "serving.arrival.rate_per_s: must be a positive rate per second");
  }
  ExpectOneLine(serve + "serving.arrival.rate_per_s=fast", 1, "(expected a double)");
  for (const char* n : {"-5", "99999999999999"}) {
    ExpectOneLine(serve + "serving.num_requests=" + n, 1,
                  "serving.num_requests: must be from 1 to 4294967296");
  }
  ExpectOneLine(serve + "serving.prompt_len.mean=999999999999", 1,
                "serving.prompt_len.mean: must be from 1 to 16777216 tokens");
  ExpectOneLine(serve + "pools.gpus=1", 1, "--set pools.gpus=1: 'pools' is a repeated message");
}

// Outputs that cannot be written: one line, nothing half-written.
TEST_F(BadInput, UnwritableOutputs) {
  const std::string serve =
      absl::StrCat("serve ", Repo("scenarios/serve_llama3_70b_h100_tp8.textproto"),
                   " --set serving.num_requests=3");
  ExpectOneLine(serve + " --requests=$D", 1, "$D: cannot write the request table");
  ExpectOneLine(serve + " --requests=$D/no/such/r.csv", 1,
                "$D/no/such/r.csv: cannot write the request table");
  ExpectOneLine(serve + " --trace=$D/no/such/t.json", 1, "$D/no/such/t.json: cannot write the trace");
  ExpectOneLine(absl::StrCat("run ", Repo("scenarios/default.textproto"),
                             " --set workload.output_len=2 --trace=$D"),
                1, "$D: cannot write the trace");
  Write("s.textproto", SmallSweep());
  ExpectOneLine("sweep $D/s.textproto --out=$D/no/such/r.csv", 1,
                "$D/no/such/r.csv: cannot open for writing");
}

// An output that names one of the run's inputs is refused, and the input
// is left whole (--trace=the scenario replaced it with a trace).
TEST_F(BadInput, AnOutputIsNotAnInput) {
  const std::string run = Scenario("batch_size: 1");
  Write("s.textproto", run);
  ExpectOneLine("run $D/s.textproto --trace=$D/s.textproto", 1,
                "$D/s.textproto: --trace would overwrite the scenario, an input of this run");
  std::ifstream json(Repo("models/llama3_8b.json"));
  const std::string model_text((std::istreambuf_iterator<char>(json)), {});
  Write("m.json", model_text);
  ExpectOneLine(absl::StrCat("run ", Repo("scenarios/default.textproto"),
                             " --set model_file=$D/m.json --trace=$D/m.json"),
                1, "$D/m.json: --trace would overwrite model_file, an input of this run");
  const std::string serve =
      absl::StrCat("model_file: \"", Repo("models/llama3_70b.textproto"), "\"\ntopology_file: \"",
                   Repo("topologies/dgx_h100.textproto"),
                   "\"\nparallelism { tp: 8 }\nserving { num_requests: 2 arrival { rate_per_s: 1 }\n"
                   "  prompt_len { mean: 8 } output_len { mean: 4 } }\n");
  Write("v.textproto", serve);
  ExpectOneLine("serve $D/v.textproto --requests=$D/v.textproto", 1,
                "$D/v.textproto: --requests would overwrite the scenario");
  auto read = [&](const std::string& name) {
    std::ifstream in(dir_ + "/" + name);
    return std::string((std::istreambuf_iterator<char>(in)), {});
  };
  EXPECT_EQ(read("s.textproto"), run);
  EXPECT_EQ(read("m.json"), model_text);
  EXPECT_EQ(read("v.textproto"), serve);
}

// Serve sweeps: a base without a serving block, a value its field cannot
// take (the sweep file's line:column), and an absurd one (a skipped row).
TEST_F(BadInput, ServeSweeps) {
  Write("none.textproto",
        absl::StrCat("command: SERVE\nbase_scenario: \"", Repo("scenarios/default.textproto"),
                     "\"\naxes { path: \"serving.arrival.rate_per_s\" values: [\"1\"] }\n"));
  ExpectOneLine("sweep $D/none.textproto --out=$D/r.csv", 1,
                "$D/none.textproto:1:1: command: SERVE, but");
  const std::string serve_base = absl::StrCat(
      "command: SERVE\nbase_scenario: \"",
      Repo("scenarios/serve_llama3_70b_h100_tp8.textproto"), "\"\n");
  Write("x.textproto", serve_base + "axes { path: \"serving.arrival.rate_per_s\" values: "
                                    "[\"1\", \"x\"] }\n");
  ExpectOneLine("sweep $D/x.textproto --out=$D/r.csv", 1,
                "$D/x.textproto:3:1: axes[0].values[1]: invalid value 'x'");
  EXPECT_FALSE(fs::exists(dir_ + "/r.csv"));
}

}  // namespace
}  // namespace shardsim
