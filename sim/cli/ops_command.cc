#include "sim/cli/commands.h"

#include <iostream>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "sim/base/units.h"
#include "sim/cli/cli_util.h"
#include "sim/cli/serve_scenario.h"
#include "sim/cost/collective_model.h"
#include "sim/cost/roofline.h"
#include "sim/engine/simulator.h"
#include "sim/parallel/program.h"
#include "sim/report/format.h"
#include "sim/scenario/runtime_profile.h"
#include "sim/scenario/scenario.h"

namespace shardsim::cli {
namespace {

std::string Csv(const v1::OpsReport& report) {
  std::string out =
      "stage,part,name,count,flops,bytes,time_s,bound,efficiency,algorithm,protocol\n";
  for (const v1::OpRow& r : report.ops()) {
    absl::StrAppendFormat(&out, "%d,%s,%s,%d,%.17g,%.17g,%.9g,%s,%.4f,%s,%s\n", r.stage(),
                          r.part(), r.name(), r.count(), r.flops(), r.bytes(), r.time_s(),
                          r.bound(), r.efficiency(), r.algorithm(), r.protocol());
  }
  return out;
}

std::string Text(const v1::OpsReport& report) {
  std::string out = absl::StrFormat(
      "scenario  %s\nmodel     %s on GPU %d (%s)\nstep      %d sequences, %d new tokens, "
      "context %d tokens per sequence\n\n",
      report.scenario(), report.model(), report.gpu_index(), report.gpu(),
      report.sequences(), report.new_tokens(), report.context_tokens());
  absl::StrAppendFormat(&out, "%5s %-10s %-22s %5s %12s %12s %11s %-8s %10s  %s\n", "stage",
                        "part", "op", "count", "GFLOP", "MB", "time", "bound", "efficiency",
                        "algorithm/protocol");
  for (const v1::OpRow& r : report.ops()) {
    absl::StrAppendFormat(
        &out, "%5d %-10s %-22s %5d %12.3f %12.3f %11s %-8s %10.3f  %s\n", r.stage(), r.part(),
        r.name(), r.count(), r.flops() / 1e9, r.bytes() / 1e6, FormatSeconds(r.time_s()),
        r.bound(), r.efficiency(),
        r.algorithm().empty()  ? ""
        : r.protocol().empty() ? r.algorithm()
                               : absl::StrCat(r.algorithm(), "/", r.protocol()));
  }
  absl::StrAppendFormat(&out, "\none layer: %s\n", FormatSeconds(report.layer_time_s()));
  for (const std::string& note : report.notes()) absl::StrAppendFormat(&out, "note: %s\n", note);
  return out;
}

}  // namespace

int OpsMain(const Args& args) {
  // --tokens and --context are range-checked by the command line.
  const int64_t tokens = args.tokens;
  const int64_t context = args.context;
  const std::string format = args.format.empty() ? "text" : args.format;
  absl::StatusOr<scenario::LoadedScenario> loaded =
      scenario::LoadScenario(args.files[0], args.overrides);
  if (!loaded.ok()) return Fail("ops", loaded.status());
  if (absl::Status plain = CheckNoPools(*loaded, "ops"); !plain.ok()) return Fail("ops", plain);
  const v1::Workload& w = loaded->scenario.workload();

  // The step: by default a decode step of the first replica's batch right
  // after the prefill; --tokens alone is the prefill of one N-token prompt;
  // --tokens with --context, a decode step of N sequences at that context.
  model::StepShape shape;
  if (loaded->model.kind == v1::ENCODER_ONLY && tokens == 0 && context == 0) {
    // An encoder runs one forward pass over the whole prompt.
    shape = model::PrefillStep(
        parallel::SequencesOnReplica(w.batch_size(), loaded->plan.dp, 0), w.prompt_len());
  } else if (tokens > 0 && context == 0) {
    shape = model::PrefillStep(1, tokens);
  } else {
    const int64_t sequences =
        tokens > 0 ? tokens : parallel::SequencesOnReplica(w.batch_size(), loaded->plan.dp, 0);
    shape = model::DecodeStep(sequences, context > 0 ? context : w.prompt_len() + 1);
  }
  // The program of the first replica, stage by stage: what the engine runs
  // for this step, op by op and collective by collective.
  const parallel::Plan& plan = loaded->plan;
  const model::ModelGraph graph = model::BuildGraph(loaded->model, plan.shard);
  const parallel::Program program = parallel::BuildProgram(graph, plan);
  const cost::CostModel cost(loaded->cluster.gpu, loaded->model, loaded->cluster.profile);

  std::vector<engine::CollectiveKey> keys;
  for (int s = 0; s < plan.pp; ++s) {
    const parallel::StageProgram& stage = program.Stage(0, s);
    for (const parallel::CollectiveCount& c : parallel::CountCollectives(stage)) {
      keys.push_back({c.comm.kind, static_cast<int>(parallel::GroupOf(stage, c.comm).size()),
                      c.comm.Bytes(shape)});
    }
  }
  engine::ProbedCollectives probed;
  if (!keys.empty()) probed = engine::ProbeCollectives(*loaded, program, keys);

  v1::OpsReport report;
  report.set_scenario(loaded->scenario.name());
  report.set_model(loaded->model.name);
  report.set_gpu(loaded->cluster.gpu.name());
  report.set_gpu_index(program.Stage(0, 0).gpus[0]);
  report.set_sequences(shape.sequences);
  report.set_new_tokens(shape.new_tokens);
  report.set_context_tokens(shape.sequences > 0 ? shape.context_tokens / shape.sequences : 0);
  double layer_s = 0;
  for (int s = 0; s < plan.pp; ++s) {
    const parallel::StageProgram& stage = program.Stage(0, s);
    std::set<int> kinds_shown;  // one layer of each kind stands for its repeats
    for (const parallel::Block& block : stage.blocks) {
      if (block.name == "layers" && !kinds_shown.insert(block.layer_kind).second) continue;
      const std::string part = block.name == "layers" ? "layer" : block.name;
      for (const parallel::Instruction& i : block.instructions) {
        v1::OpRow* row = report.add_ops();
        row->set_stage(s);
        if (i.type == parallel::Instruction::Type::kCompute) {
          const cost::OpCost c = cost.Op(i.op, shape);
          row->set_part(part);
          row->set_name(i.op.name);
          row->set_count(i.op.count);
          row->set_flops(c.flops);
          row->set_bytes(c.bytes);
          row->set_time_s(c.time_s);
          row->set_bound(cost::BoundName(c.bound));
          row->set_efficiency(c.efficiency);
        } else {
          const int64_t bytes = i.comm.Bytes(shape);
          row->set_part("collective");
          row->set_name(i.comm.name);
          row->set_count(1);
          row->set_bytes(static_cast<double>(bytes));
          const std::vector<int>& group = parallel::GroupOf(stage, i.comm);
          const engine::CollectiveKey key{i.comm.kind, static_cast<int>(group.size()), bytes};
          row->set_time_s(probed.seconds.at(key));
          row->set_bound("network");
          row->set_algorithm(probed.algorithm.at(key));
          row->set_protocol(probed.protocol.at(key));
          // The link kind's efficiency times the protocol's factor.
          row->set_efficiency(cost::FlowEfficiency(
              loaded->cluster, loaded->cluster.collectives,
              cost::PlanCollective(loaded->cluster, group, i.comm.kind, bytes,
                                   scenario::ResolveRuntimeProfile(loaded->runtime)
                                       .custom_all_reduce),
              group[0],
              group[1]));
        }
        // One layer: its ops and the collectives inside it, on the first stage.
        if (s == 0 && block.name == "layers") layer_s += row->time_s();
      }
    }
  }
  if (!keys.empty()) {
    report.add_notes(absl::StrCat(
        "collectives simulated as flows with every group at once: ",
        plan.tp > 1 ? absl::StrCat("NCCL's algorithm and protocol for each size (or direct on "
                                   "a full mesh) over the ",
                                   plan.tp, " GPUs of a TP group")
                    : std::string(),
        plan.tp > 1 && !program.Stage(0, 0).expert_gpus.empty() ? "; " : "",
        program.Stage(0, 0).expert_gpus.empty()
            ? std::string()
            : absl::StrCat("all-to-all over the ", plan.ep, " GPUs of an expert-parallel group")));
  }
  report.set_layer_time_s(layer_s);
  const v1::EfficiencyProfile& profile = cost.profile();
  report.add_notes(profile.derived()
                       ? absl::StrCat("UNCALIBRATED for ", loaded->cluster.gpu.name(), ": ",
                                      profile.source())
                       : absl::StrCat("calibrated: ", profile.source()));

  if (format == "json") {
    absl::StatusOr<std::string> json = report::ToJson(report);
    if (!json.ok()) return Fail("ops", json.status());
    std::cout << *json;
  } else if (format == "csv") {
    std::cout << Csv(report);
  } else {
    std::cout << Text(report);
  }
  return 0;
}

}  // namespace shardsim::cli
