#include "sim/report/format.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "google/protobuf/util/json_util.h"
#include "sim/base/units.h"

namespace shardsim::report {

absl::StatusOr<std::string> ToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  std::string json;
  const auto status =
      google::protobuf::util::MessageToJsonString(message, &json, options);
  if (!status.ok()) {
    return absl::InternalError(absl::StrCat("JSON output failed: ",
                                            status.ToString()));
  }
  return json;
}

std::string MemoryText(const scenario::LoadedScenario& loaded,
                       const v1::MemoryReport& report) {
  const model::ModelDims& m = loaded.model;
  const parallel::Plan& plan = loaded.plan;
  const v1::Workload& w = loaded.scenario.workload();
  std::string out;
  absl::StrAppendFormat(&out, "scenario  %s\n",
                        report.scenario().empty() ? loaded.path : report.scenario());
  absl::StrAppendFormat(
      &out, "model     %s: %s parameters, %s of weights (%s), KV %s per token (%s)\n",
      m.name, FormatCount(report.parameters()),
      FormatBytes(report.weight_bytes_total()), DTypeName(m.weight_dtype),
      FormatBytes(report.kv_cache_bytes_per_token()), DTypeName(m.kv_cache_dtype));
  absl::StrAppendFormat(&out, "cluster   %s: %d x %d %s, %s each\n",
                        loaded.cluster.name, loaded.cluster.num_nodes,
                        loaded.cluster.gpus_per_node, loaded.cluster.gpu.name(),
                        FormatBytes(loaded.cluster.gpu.capacity_bytes()));
  absl::StrAppendFormat(&out, "plan      tp=%d pp=%d dp=%d (%d GPUs)\n", plan.tp,
                        plan.pp, plan.dp, plan.num_gpus());
  absl::StrAppendFormat(&out, "workload  batch %d, prompt %d, output %d tokens\n\n",
                        w.batch_size(), w.prompt_len(), w.output_len());

  absl::StrAppendFormat(&out, "%4s %4s %8s %8s %12s %12s %12s %10s %10s %12s %12s  %s\n",
                        "gpu", "node", "tp/pp/dp", "layers", "weights",
                        "kv_cache", "activations", "comm", "runtime", "total",
                        "capacity", "fits");
  for (const v1::GpuMemory& g : report.gpus()) {
    const v1::MemoryBreakdown& b = g.memory();
    std::string kv = FormatBytes(b.kv_cache_reserved_bytes());
    std::string fits = g.fits() ? "yes"
                                : absl::StrCat("NO: over by ",
                                               FormatBytes(g.over_by_bytes()));
    absl::StrAppendFormat(
        &out, "%4d %4d %8s %8s %12s %12s %12s %10s %10s %12s %12s  %s\n",
        g.gpu(), g.node(),
        absl::StrFormat("%d/%d/%d", g.tp_rank(), g.pp_stage(), g.dp_replica()),
        absl::StrFormat("%d-%d", g.first_layer(),
                        g.first_layer() + g.num_layers() - 1),
        FormatBytes(b.weights_bytes()), kv, FormatBytes(b.activation_peak_bytes()),
        FormatBytes(b.comm_buffer_bytes()), FormatBytes(b.runtime_overhead_bytes()),
        FormatBytes(b.total_bytes()), FormatBytes(g.capacity_bytes()), fits);
  }
  out += "\n";
  if (report.fits()) {
    out += "fits: yes, on every GPU\n";
  } else {
    int failing = 0;
    for (const v1::GpuMemory& g : report.gpus()) failing += g.fits() ? 0 : 1;
    const v1::GpuMemory* worst = nullptr;
    for (const v1::GpuMemory& g : report.gpus()) {
      if (!g.fits() && (worst == nullptr || g.over_by_bytes() > worst->over_by_bytes())) {
        worst = &g;
      }
    }
    absl::StrAppendFormat(
        &out,
        "fits: NO on %d of %d GPUs. GPU %d needs %s of %s (over by %s); the "
        "total passes capacity at %s",
        failing, report.gpus_size(), worst->gpu(),
        FormatBytes(worst->memory().total_bytes()),
        FormatBytes(worst->capacity_bytes()), FormatBytes(worst->over_by_bytes()),
        worst->overflow_component());
    if (worst->overflow_component() == "weights") {
      absl::StrAppendFormat(&out, ": the weights alone are %s",
                            FormatBytes(worst->memory().weights_bytes()));
    }
    out += "\n";
  }
  for (const std::string& note : report.notes()) {
    absl::StrAppendFormat(&out, "note: %s\n", note);
  }
  return out;
}

}  // namespace shardsim::report
