#include "sim/cli/command_line.h"

#include <algorithm>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "sim/cli/version.h"

namespace shardsim::cli {
namespace {

constexpr int kExitUsage = 2;

// `--format` with the values a command prints; the message names them.
CLI::Validator OneOf(std::vector<std::string> values) {
  const std::string names = absl::StrJoin(values, "|");
  return CLI::Validator(
      [values, names](std::string& value) -> std::string {
        if (std::find(values.begin(), values.end(), value) != values.end()) return "";
        return absl::StrCat("must be ", names, ", got '", value, "'");
      },
      "");
}

// An integer flag in [min, max]; the message says what it takes.
CLI::Validator Integer(int64_t min, int64_t max) {
  return CLI::Validator(
      [min, max](std::string& value) -> std::string {
        int64_t n = 0;
        if (absl::SimpleAtoi(value, &n) && n >= min && n <= max) return "";
        return absl::StrCat("expected an integer from ", min, " to ", max, ", got '", value,
                            "'");
      },
      "");
}

// A number of seconds in [0, max] (NaN fails).
CLI::Validator Seconds(double max) {
  return CLI::Validator(
      [max](std::string& value) -> std::string {
        double s = 0;
        if (absl::SimpleAtod(value, &s) && s >= 0 && s <= max) return "";
        return absl::StrCat("expected seconds from 0 to ", max, ", got '", value, "'");
      },
      "");
}

// A file name given as --flag=FILE: empty is a mistake, not "none".
const CLI::Validator kNonEmpty(
    [](std::string& value) -> std::string {
      return value.empty() ? std::string("needs a file name") : std::string();
    },
    "");

// The flags every scenario command takes.
void ScenarioFlags(CLI::App* c, Args* a, std::vector<std::string> formats) {
  c->add_option("SCENARIO", a->files, "the scenario file (.textproto)")
      ->required()
      ->expected(1)
      ->type_name("");
  c->add_option("--set", a->overrides,
                "change a scenario field by its proto path, e.g. parallelism.tp=4 "
                "(repeatable; applied in order)")
      ->type_name("field.path=value");
  c->add_option("--format", a->format,
                absl::StrCat("output format (default ", formats[0], ")"))
      ->check(OneOf(formats))
      ->type_name(absl::StrJoin(formats, "|"));
}

// Every command and its flags. One line per flag: add a flag here (and its
// field in Args) and help, parsing and errors follow.
void DeclareCommands(CLI::App* app, Args* a) {
  CLI::App* c = app->add_subcommand(
      "run", "replay prefill and decode of the scenario's static batch on the simulated "
             "cluster: latency, throughput, communication, peak memory per GPU");
  ScenarioFlags(c, a, {"text", "json", "csv"});
  c->add_option("--trace", a->trace,
                "write a Chrome/Perfetto trace (ui.perfetto.dev): per GPU a compute "
                "and a communication track and a memory counter")
      ->check(kNonEmpty)->type_name("FILE");
  c->add_option("--trace-ops", a->trace_ops,
                "trace the first STEPS steps op by op and collective by collective")
      ->check(Integer(0, 1 << 30))->type_name("STEPS");

  c = app->add_subcommand(
      "serve", "a stream of requests (the scenario's serving block) through continuous "
               "batching: TTFT, TPOT, ITL, E2E percentiles, goodput, KV cache, preemptions");
  ScenarioFlags(c, a, {"text", "json"});
  c->add_option("--requests", a->requests,
                "write a CSV row per request as it finishes or is refused")
      ->check(kNonEmpty)->type_name("FILE");
  c->add_option("--trace", a->trace,
                "write a Chrome/Perfetto trace as the run goes: steps per replica and "
                "stage, each request's life, KV and queue counters")
      ->check(kNonEmpty)->type_name("FILE");
  c->add_flag("--find-max-rate", a->find_max_rate,
              "search the highest arrival rate meeting serving.slo (bisection, every "
              "probe a full simulation, each probe listed)");

  c = app->add_subcommand(
      "memory", "per-GPU memory breakdown (weights, KV cache, activations, buffers, "
                "runtime) and whether the plan fits; loads no simulator");
  ScenarioFlags(c, a, {"text", "json"});

  c = app->add_subcommand(
      "ops", "one layer on one GPU, an op a row: FLOPs, bytes, predicted time, what "
             "bounds it; default step: a decode step of the scenario's batch");
  ScenarioFlags(c, a, {"text", "json", "csv"});
  c->add_option("--tokens", a->tokens,
                "alone: the prefill of one N-token prompt; with --context: a decode "
                "step of N sequences")
      ->check(Integer(1, int64_t{1} << 24))->type_name("N");
  c->add_option("--context", a->context, "the context of each sequence in a decode step")
      ->check(Integer(1, int64_t{1} << 24))->type_name("N");

  c = app->add_subcommand(
      "calibrate", "fit the GPU efficiency profiles and collective tuning to the "
                   "measurements (rebuild afterwards: they are built in)");
  c->add_option("--calibration", a->calibration_dir,
                "the measurements (default topologies/calibration_data)")
      ->type_name("DIR");
  c->add_option("--out", a->out,
                "where efficiency.textproto and collectives.textproto go (default "
                "topologies)")
      ->check(kNonEmpty)->type_name("DIR");

  c = app->add_subcommand(
      "fidelity", "predict every measurement and print n, median, p90 and signed median "
                  "of the error per category");
  c->add_option("--calibration", a->calibration_dir,
                "the measurements (default topologies/calibration_data)")
      ->type_name("DIR");
  c->add_flag("--no-end-to-end", a->no_end_to_end,
              "leave out the end-to-end rows (which run shardsim per published run)");
  c->add_option("--format", a->format, "output format (default text)")
      ->check(OneOf({"text", "json"}))->type_name("text|json");

  c = app->add_subcommand(
      "sweep", "every point of a sweep file in parallel worker processes, a row each "
               "appended as it finishes; the same command resumes an interrupted sweep");
  c->add_option("SWEEP", a->files,
                "the sweep file (.textproto); with `command: SERVE` its points run serve")
      ->required()->expected(1)->type_name("");
  c->add_option("--out", a->out, "the result table, created or resumed")
      ->required()->check(kNonEmpty)->type_name("FILE");
  c->add_option("--jobs", a->jobs, "points run at once (default: one per core)")
      ->check(Integer(1, 1 << 16))->type_name("N");
  c->add_option("--format", a->format,
                "csv or jsonl (JSON Lines); default: by --out's extension (.jsonl, "
                "else csv)")
      ->check(OneOf({"csv", "jsonl"}))->type_name("csv|jsonl");
  c->add_option("--shard", a->shard,
                "run only the points whose index i has i % N == K - 1")
      ->type_name("K/N");
  c->add_option("--timeout", a->timeout_s,
                "stop a point that runs longer; it is a row with status timeout "
                "(default 0: no limit)")
      ->check(Seconds(1e9))->type_name("SECONDS");

  c = app->add_subcommand(
      "plan", "search deployments (GPUs, parallelism, precision, scheduler) for a model, a "
              "workload and an SLO: prune by memory, rank by a closed-form estimate, "
              "simulate the top K; writes DIR/chosen.textproto");
  c->add_option("PLAN", a->files, "the plan file (.textproto)")
      ->required()->expected(1)->type_name("");
  c->add_option("--jobs", a->jobs, "simulations run at once (default: one per core)")
      ->check(Integer(1, 1 << 16))->type_name("N");
  c->add_option("--top", a->top_k,
                "candidates simulated fully (default: the plan's top_k, else 8)")
      ->check(Integer(0, 1 << 20))->type_name("K");
  c->add_option("--out", a->out,
                "where simulated.jsonl (resumable), candidates.csv and chosen.textproto "
                "go (default NAME.plan)")
      ->check(kNonEmpty)->type_name("DIR");
  c->add_option("--format", a->format, "output format (default text)")
      ->check(OneOf({"text", "json", "csv"}))->type_name("text|json|csv");
  c->add_flag("--estimate-only", a->estimate_only,
              "stop after the estimate and print how many candidates per second it ranked");

  c = app->add_subcommand(
      "merge", "join the result files of a sweep's shards into one table in point "
               "order; exits 1 (after writing it) when points are missing");
  c->add_option("SHARD_FILE", a->files, "a shard's result file")
      ->required()->type_name("");
  c->add_option("--out", a->out, "the merged table")
      ->required()->check(kNonEmpty)->type_name("FILE");

  c = app->add_subcommand(
      "validate", "parse and check model, topology, GPU catalog, scenario, sweep, "
                  "collectives and efficiency files");
  c->add_option("FILE", a->files, "a file to check")->required()->type_name("");
}

std::unique_ptr<CLI::App> BuildApp(Args* args) {
  auto app = std::make_unique<CLI::App>(
      "shardsim: a discrete-event simulator of LLM inference on multi-GPU clusters",
      "shardsim");
  app->require_subcommand(1);
  auto formatter = std::make_shared<CLI::Formatter>();
  formatter->label("Usage", "usage");
  formatter->column_width(34);
  app->formatter(formatter);
  DeclareCommands(app.get(), args);
  for (CLI::App* sub : app->get_subcommands({})) {
    // Extras are reported by ParseCommandLine, one line each.
    sub->allow_extras(true);
    sub->set_help_flag("-h,--help", "print this help and exit");
  }
  return app;
}

int UsageError(const std::string& command, const std::string& why) {
  std::cerr << "shardsim" << (command.empty() ? "" : " ") << command << ": " << why
            << (command.empty() ? " (shardsim help lists the commands)"
                                : absl::StrCat(" (shardsim ", command,
                                               " --help lists its flags)"))
            << "\n";
  return kExitUsage;
}

}  // namespace

std::vector<std::string> CommandNames() {
  Args args;
  const std::unique_ptr<CLI::App> app = BuildApp(&args);
  std::vector<std::string> names;
  for (const CLI::App* sub : app->get_subcommands({})) {
    names.push_back(sub->get_name());
  }
  return names;
}

bool IsSimulatorCommand(const std::string& command) {
  return command == "run" || command == "serve" || command == "ops" ||
         command == "sweep" || command == "merge" || command == "plan";
}

std::string HelpText(const std::string& command) {
  Args args;
  std::unique_ptr<CLI::App> app = BuildApp(&args);
  if (!command.empty()) {
    for (const CLI::App* sub : app->get_subcommands({})) {
      if (sub->get_name() == command) return sub->help("shardsim");
    }
    return "";
  }
  std::string out =
      "usage: shardsim COMMAND [ARGS...]\n"
      "A discrete-event simulator of LLM inference on multi-GPU clusters.\n\n"
      "commands:\n";
  for (const CLI::App* sub : app->get_subcommands({})) {
    // The description wrapped at 80 columns beside the name.
    std::string line = absl::StrCat("  ", sub->get_name(),
                                    std::string(12 - sub->get_name().size(), ' '));
    for (absl::string_view word : absl::StrSplit(sub->get_description(), ' ')) {
      if (line.size() + word.size() > 80) {
        absl::StrAppend(&out, line, "\n");
        line = std::string(13, ' ');
      } else if (line.back() != ' ') {
        line += ' ';
      }
      absl::StrAppend(&line, word);
    }
    absl::StrAppend(&out, line, "\n");
  }
  absl::StrAppend(&out,
                  "\n`shardsim help COMMAND` or `shardsim COMMAND --help` lists a command's "
                  "flags;\n`shardsim --version` prints the version and git commit.\n");
  return out;
}

std::string VersionText() {
  return absl::StrCat("shardsim ", kVersion, " (git ", kGitCommit, ")\n");
}

std::optional<int> ParseCommandLine(int argc, const char* const* argv, Args* args) {
  const std::string first = argc > 1 ? argv[1] : "";
  if (argc < 2) {
    std::cerr << HelpText();
    return kExitUsage;
  }
  if (first == "--version" || first == "-V") {
    if (argc > 2) return UsageError("", "--version takes nothing after it");
    std::cout << VersionText();
    return 0;
  }
  if (first == "help" || first == "-h" || first == "--help") {
    if (argc == 2) {
      std::cout << HelpText();
      return 0;
    }
    const std::string text = HelpText(argv[2]);
    if (argc > 3 || text.empty()) {
      return UsageError("", absl::StrCat("help: no command '", argv[2], "'"));
    }
    std::cout << text;
    return 0;
  }
  const std::vector<std::string> names = CommandNames();
  if (std::find(names.begin(), names.end(), first) == names.end()) {
    return UsageError("", absl::StartsWith(first, "-")
                              ? absl::StrCat("unknown option ", first, " before the command")
                              : absl::StrCat("unknown command '", first, "'"));
  }
  args->command = first;
  std::unique_ptr<CLI::App> app = BuildApp(args);
  CLI::App* sub = app->get_subcommand(first);
  try {
    app->parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::cout << sub->help("shardsim");
    return 0;
  } catch (const CLI::ParseError& e) {
    // An unknown flag is the likelier mistake behind a missing argument
    // ("--outt=x": --out is required): name it first.
    const std::vector<std::string> extras = sub->remaining();
    if (extras.empty() || !absl::StartsWith(extras.front(), "-")) {
      return UsageError(first, e.what());
    }
  }
  const std::vector<std::string> extras = sub->remaining();
  if (!extras.empty()) {
    const std::string& word = extras.front();
    return UsageError(first, absl::StartsWith(word, "-") && word != "-"
                                 ? absl::StrCat("unknown option ", word)
                                 : absl::StrCat("unexpected argument '", word, "'"));
  }
  return std::nullopt;
}

}  // namespace shardsim::cli
