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

std::string PrecisionText(const v1::Precision& p) {
  std::string weights = DTypeName(p.weight_dtype());
  if (IsGroupQuantized(p.weight_dtype())) {
    absl::StrAppend(&weights, p.quant_group_size() < 0
                                  ? " (scale per channel)"
                                  : absl::StrCat(" (groups of ", p.quant_group_size(), ")"));
  } else if (p.weight_dtype() == v1::FP8) {
    absl::StrAppend(&weights, p.fp8_block_size() > 0
                                  ? absl::StrCat(" (", p.fp8_block_size(), "x",
                                                 p.fp8_block_size(), " block scales)")
                                  : p.fp8_block_size() < 0 ? " (scale per channel)"
                                                           : " (scale per tensor)");
  }
  return absl::StrFormat(
      "recipe %s: weights %s, GEMM inputs %s, activations %s, communication %s, KV cache %s",
      p.recipe().empty() ? "(none: dtypes as given)" : p.recipe(), weights,
      DTypeName(p.gemm_dtype()), DTypeName(p.activation_dtype()),
      DTypeName(p.communication_dtype()), DTypeName(p.kv_cache_dtype()));
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
  absl::StrAppendFormat(&out, "precision %s\n", PrecisionText(report.precision()));
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

std::string RunText(const v1::RunReport& r) {
  std::string out;
  absl::StrAppendFormat(&out, "scenario   %s\n", r.scenario());
  absl::StrAppendFormat(&out, "model      %s on %s (%s), tp=%d pp=%d dp=%d, %d micro-batch(es)\n",
                        r.model(), r.cluster(), r.gpu(), r.tp(), r.pp(), r.dp(),
                        r.micro_batches());
  absl::StrAppendFormat(&out, "workload   batch %d x (prompt %d + output %d tokens)\n\n",
                        r.batch_size(), r.prompt_len(), r.output_len());
  absl::StrAppendFormat(&out, "time to first token     %s (p50 %s, p99 %s)\n",
                        FormatSeconds(r.ttft().mean_s()), FormatSeconds(r.ttft().p50_s()),
                        FormatSeconds(r.ttft().p99_s()));
  if (r.output_len() > 1) {
    absl::StrAppendFormat(&out, "time per output token   %s (p50 %s, p99 %s)\n",
                          FormatSeconds(r.tpot().mean_s()), FormatSeconds(r.tpot().p50_s()),
                          FormatSeconds(r.tpot().p99_s()));
  } else {
    out += "time per output token   n/a (no decode steps)\n";
  }
  absl::StrAppendFormat(&out, "total time              %s\n", FormatSeconds(r.total_s()));
  absl::StrAppendFormat(&out, "output tokens/s         %.1f total, %.1f per GPU\n",
                        r.output_tokens_per_s(), r.output_tokens_per_s_per_gpu());
  absl::StrAppendFormat(&out, "communication overhead  %.1f%% of GPU time\n",
                        100 * r.comm_overhead());
  if (r.cost_per_million_output_tokens() > 0) {
    absl::StrAppendFormat(&out, "cost                    $%.3f per million output tokens\n",
                          r.cost_per_million_output_tokens());
  }
  absl::StrAppendFormat(&out, "fits                    %s\n\n", r.fits() ? "yes" : "NO");
  absl::StrAppendFormat(&out, "%4s %4s %8s %12s %12s %12s %12s  %10s %10s %10s\n", "gpu",
                        "node", "tp/pp/dp", "peak memory", "weights", "kv_cache",
                        "capacity", "compute", "comm", "idle");
  for (const v1::GpuRun& g : r.gpus()) {
    absl::StrAppendFormat(
        &out, "%4d %4d %8s %12s %12s %12s %12s  %10s %10s %10s%s\n", g.gpu(), g.node(),
        absl::StrFormat("%d/%d/%d", g.tp_rank(), g.pp_stage(), g.dp_replica()),
        FormatBytes(g.peak_memory().total_bytes()),
        FormatBytes(g.peak_memory().weights_bytes()),
        FormatBytes(g.peak_memory().kv_cache_reserved_bytes()),
        FormatBytes(g.capacity_bytes()), FormatSeconds(g.compute_s()),
        FormatSeconds(g.comm_s()), FormatSeconds(g.idle_s()),
        g.fits() ? "" : absl::StrCat("  over by ", FormatBytes(g.over_by_bytes()),
                                     " at ", g.overflow_component()));
  }
  absl::StrAppendFormat(&out, "\nsimulated %d flows for %d distinct collectives, replayed %d times\n",
                        r.simulated_flows(), r.distinct_collectives(),
                        r.collectives_replayed());
  for (const std::string& note : r.notes()) {
    absl::StrAppendFormat(&out, "note: %s\n", note);
  }
  return out;
}

std::string RunCsv(const v1::RunReport& r) {
  int64_t peak = 0;
  for (const v1::GpuRun& g : r.gpus()) {
    peak = std::max(peak, g.peak_memory().total_bytes());
  }
  std::string out =
      "scenario,model,gpu,tp,pp,dp,batch_size,prompt_len,output_len,fits,"
      "peak_memory_bytes,ttft_s,tpot_mean_s,tpot_p50_s,tpot_p99_s,total_s,"
      "output_tokens_per_s,output_tokens_per_s_per_gpu,comm_overhead,"
      "cost_per_million_output_tokens\n";
  absl::StrAppendFormat(&out, "%s,%s,%s,%d,%d,%d,%d,%d,%d,%s,%d,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g\n",
                        r.scenario(), r.model(), r.gpu(), r.tp(), r.pp(), r.dp(),
                        r.batch_size(), r.prompt_len(), r.output_len(),
                        r.fits() ? "true" : "false",
                        peak, r.ttft().mean_s(), r.tpot().mean_s(), r.tpot().p50_s(),
                        r.tpot().p99_s(), r.total_s(), r.output_tokens_per_s(),
                        r.output_tokens_per_s_per_gpu(), r.comm_overhead(),
                        r.cost_per_million_output_tokens());
  return out;
}

namespace {

// Disaggregated serving: each pool, then the KV transfers between them.
std::string PoolsText(const v1::ServeReport& r) {
  std::string out = "\n";
  absl::StrAppendFormat(&out, "%-12s %-8s %-14s %5s %9s %8s %8s %20s\n", "pool", "role",
                        "plan", "gpus", "requests", "busy", "waiting", "KV blocks peak/mean/cap");
  for (const v1::PoolServe& p : r.pools()) {
    absl::StrAppendFormat(
        &out, "%-12s %-8s %-14s %5d %9d %7.1f%% %8.1f %20s\n", p.name(), p.role(),
        absl::StrFormat("tp=%d dp=%d", p.tp(), p.dp()), p.gpus_size(), p.requests(),
        100 * p.busy_share(), p.waiting_mean(),
        absl::StrFormat("%d/%.0f/%d", p.kv_blocks_peak(), p.kv_blocks_mean(),
                        p.kv_blocks_capacity()));
  }
  const v1::KvTransferReport& kv = r.kv_transfer();
  absl::StrAppendFormat(&out, "\nKV transfers %d (%s in %d flows); %d waited for decode KV",
                        kv.transfers(), FormatBytes(kv.bytes()), kv.flows(),
                        kv.waited_for_decode_kv());
  if (kv.waited_for_decode_kv() > 0) {
    absl::StrAppendFormat(&out, " (mean %s, max %s)", FormatSeconds(kv.decode_kv_wait().mean_s()),
                          FormatSeconds(kv.decode_kv_wait().max_s()));
  }
  absl::StrAppendFormat(&out, "\n%-8s %11s %11s %11s %11s %11s\n", "", "mean", "p50", "p90",
                        "p99", "max");
  absl::StrAppendFormat(&out, "%-8s %11s %11s %11s %11s %11s\n", "transfer",
                        FormatSeconds(kv.time().mean_s()), FormatSeconds(kv.time().p50_s()),
                        FormatSeconds(kv.time().p90_s()), FormatSeconds(kv.time().p99_s()),
                        FormatSeconds(kv.time().max_s()));
  for (const v1::LinkUsage& link : kv.links()) {
    absl::StrAppendFormat(&out, "link %-22s %-11s %12s %6.2f%% busy\n", link.link(), link.kind(),
                          FormatBytes(link.bytes()), 100 * link.busy_share());
  }
  return out;
}

}  // namespace

std::string ServeText(const v1::ServeReport& r) {
  std::string out;
  absl::StrAppendFormat(&out, "scenario  %s\nmodel     %s\ncluster   %s (%s)\n", r.scenario(),
                        r.model(), r.cluster(), r.gpu());
  absl::StrAppendFormat(&out, "plan      tp=%d pp=%d dp=%d, router %s\n", r.tp(), r.pp(), r.dp(),
                        r.router());
  absl::StrAppendFormat(
      &out, "scheduler max %d sequences, %d tokens per step, chunked prefill %s, %d-token blocks\n\n",
      r.max_num_seqs(), r.max_num_batched_tokens(), r.chunked_prefill() ? "on" : "off",
      r.block_size());
  absl::StrAppendFormat(&out, "requests  %d arrived, %d completed, %d refused, over %s\n",
                        r.requests(), r.completed(), r.refused(), FormatSeconds(r.span_s()));
  absl::StrAppendFormat(&out,
                        "throughput %.2f requests/s, %.1f input and %.1f output tokens/s "
                        "(%.1f output tokens/s per GPU)\n\n",
                        r.requests_per_s(), r.input_tokens_per_s(), r.output_tokens_per_s(),
                        r.output_tokens_per_s_per_gpu());
  absl::StrAppendFormat(&out, "%-8s %11s %11s %11s %11s %11s\n", "latency", "mean", "p50", "p90",
                        "p99", "max");
  for (const auto& [name, d] : {std::pair{"TTFT", &r.ttft()}, std::pair{"TPOT", &r.tpot()},
                                std::pair{"ITL", &r.itl()}, std::pair{"E2E", &r.e2e()},
                                std::pair{"queue", &r.queue()}}) {
    absl::StrAppendFormat(&out, "%-8s %11s %11s %11s %11s %11s\n", name, FormatSeconds(d->mean_s()),
                          FormatSeconds(d->p50_s()), FormatSeconds(d->p90_s()),
                          FormatSeconds(d->p99_s()), FormatSeconds(d->max_s()));
  }
  absl::StrAppendFormat(&out,
                        "\nSLO       %d of %d completed requests met it (%.1f%%), goodput %.2f "
                        "requests/s\n",
                        r.slo_met(), r.completed(), 100 * r.slo_attainment(),
                        r.goodput_requests_per_s());
  absl::StrAppendFormat(&out, "KV cache  %d blocks per replica, peak %d, mean %.1f; %d preemptions\n",
                        r.kv_blocks_capacity(), r.kv_blocks_peak(), r.kv_blocks_mean(),
                        r.preemptions());
  absl::StrAppendFormat(&out,
                        "steps     %d: %.1f sequences (max %d) and %.1f tokens (max %d) each\n",
                        r.steps(), r.batch_size_mean(), r.batch_size_max(), r.tokens_per_step_mean(),
                        r.tokens_per_step_max());
  absl::StrAppendFormat(&out, "comm      %.1f%% of GPU time\n\n", 100 * r.comm_overhead());
  absl::StrAppendFormat(&out, "%4s %8s %12s %12s %12s %12s %12s\n", "gpu", "tp/dp", "compute",
                        "comm", "idle", "peak memory", "capacity");
  for (const v1::GpuServe& g : r.gpus()) {
    absl::StrAppendFormat(&out, "%4d %8s %12s %12s %12s %12s %12s\n", g.gpu(),
                          absl::StrFormat("%d/%d", g.tp_rank(), g.dp_replica()),
                          FormatSeconds(g.compute_s()), FormatSeconds(g.comm_s()),
                          FormatSeconds(g.idle_s()), FormatBytes(g.peak_memory_bytes()),
                          FormatBytes(g.capacity_bytes()));
  }
  if (r.pools_size() > 0) out += PoolsText(r);
  for (const std::string& refusal : r.refused_requests()) {
    absl::StrAppendFormat(&out, "refused: %s\n", refusal);
  }
  for (const std::string& note : r.notes()) absl::StrAppendFormat(&out, "note: %s\n", note);
  return out;
}

}  // namespace shardsim::report
