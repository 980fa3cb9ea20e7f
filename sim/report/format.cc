#include "sim/report/format.h"

#include <algorithm>
#include <cctype>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/util/json_util.h"
#include "sim/base/units.h"
#include "sim/cost/roofline.h"
#include "sim/scenario/runtime_profile.h"
#include "sim/memory/ledger.h"
#include "sim/scenario/pools.h"

namespace shardsim::report {

namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

// Protobuf's JSON of a message, rewritten as it is read: the quoted 64-bit
// integers of int64/uint64 fields become numbers, and a field marked
// unknown_if_unset that is 0 or "" becomes null. Everything else is copied byte
// for byte, so the output differs from protobuf's only there. The walk
// follows the message's descriptor, so a string field that looks like a
// number ("name": "123") stays a string.
class JsonRewriter {
 public:
  explicit JsonRewriter(const std::string& in) : in_(in) {}

  std::string Rewrite(const Message& message) {
    Space();
    Object(&message);
    out_.append(in_, pos_, std::string::npos);
    return out_;
  }

 private:
  char Peek() const { return pos_ < in_.size() ? in_[pos_] : '\0'; }
  void Copy() { if (pos_ < in_.size()) out_ += in_[pos_++]; }
  void Space() {
    while (pos_ < in_.size() && std::isspace(static_cast<unsigned char>(in_[pos_]))) Copy();
  }

  // A string token at pos_ (protobuf's output is well formed): its text
  // with the quotes, and pos_ past it.
  std::string Token() {
    const size_t start = pos_;
    if (Peek() == '"') {
      for (++pos_; pos_ < in_.size() && in_[pos_] != '"'; ++pos_) {
        if (in_[pos_] == '\\') ++pos_;
      }
      ++pos_;
    } else {
      while (pos_ < in_.size() && std::string(",}] \n\t\r").find(in_[pos_]) ==
                                      std::string::npos) {
        ++pos_;
      }
    }
    return in_.substr(start, std::min(pos_, in_.size()) - start);
  }

  // Any value, copied as it is (fields the descriptor does not name, maps).
  void CopyValue() {
    if (Peek() == '{' || Peek() == '[') {
      int depth = 0;
      do {
        if (Peek() == '"') {
          out_ += Token();
          continue;
        }
        if (Peek() == '{' || Peek() == '[') ++depth;
        if (Peek() == '}' || Peek() == ']') --depth;
        Copy();
      } while (depth > 0 && pos_ < in_.size());
      return;
    }
    out_ += Token();
  }

  void Object(const Message* message) {
    if (Peek() != '{') return CopyValue();
    Copy();
    const Descriptor* type = message->GetDescriptor();
    while (pos_ < in_.size()) {
      Space();
      if (Peek() == '}') break;
      const std::string key = Token();
      out_ += key;
      Space();
      Copy();  // ':'
      Space();
      const FieldDescriptor* field =
          key.size() >= 2 ? type->FindFieldByName(key.substr(1, key.size() - 2)) : nullptr;
      if (field == nullptr || field->is_map()) {
        CopyValue();
      } else if (field->is_repeated() && Peek() == '[') {
        Copy();
        for (int index = 0; pos_ < in_.size(); ++index) {
          Space();
          if (Peek() == ']') break;
          Element(*message, field, index);
          Space();
          if (Peek() == ',') Copy();
        }
        Copy();  // ']'
      } else {
        Element(*message, field, -1);
      }
      Space();
      if (Peek() == ',') Copy();
    }
    Copy();  // '}'
  }

  // The value of `field` in `message` (element `index` of a repeated one).
  void Element(const Message& message, const FieldDescriptor* field, int index) {
    const Reflection* reflection = message.GetReflection();
    if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      return Object(index < 0 ? &reflection->GetMessage(message, field)
                              : &reflection->GetRepeatedMessage(message, field, index));
    }
    const std::string token = Token();
    if (index < 0 && ((field->options().GetExtension(v1::unknown_if_unset) &&
                       IsUnset(message, field)) ||
                      NoSamples(message, field))) {
      out_ += "null";
      return;
    }
    const bool int64 = field->cpp_type() == FieldDescriptor::CPPTYPE_INT64 ||
                       field->cpp_type() == FieldDescriptor::CPPTYPE_UINT64;
    const std::string inner = token.size() >= 2 ? token.substr(1, token.size() - 2) : "";
    if (int64 && token.front() == '"' && !inner.empty() &&
        inner.find_first_not_of("-0123456789") == std::string::npos) {
      out_ += inner;
    } else {
      out_ += token;
    }
  }

  // A field other than the count of a message marked unknown_if_no_samples
  // whose count is 0.
  static bool NoSamples(const Message& message, const FieldDescriptor* field) {
    const Descriptor* type = message.GetDescriptor();
    if (!type->options().GetExtension(v1::unknown_if_no_samples)) return false;
    const FieldDescriptor* count = type->FindFieldByName("count");
    return count != nullptr && count != field &&
           count->cpp_type() == FieldDescriptor::CPPTYPE_INT64 &&
           message.GetReflection()->GetInt64(message, count) == 0;
  }

  static bool IsUnset(const Message& message, const FieldDescriptor* field) {
    const Reflection* r = message.GetReflection();
    switch (field->cpp_type()) {
      case FieldDescriptor::CPPTYPE_DOUBLE: return r->GetDouble(message, field) == 0;
      case FieldDescriptor::CPPTYPE_FLOAT: return r->GetFloat(message, field) == 0;
      case FieldDescriptor::CPPTYPE_INT64: return r->GetInt64(message, field) == 0;
      case FieldDescriptor::CPPTYPE_INT32: return r->GetInt32(message, field) == 0;
      case FieldDescriptor::CPPTYPE_STRING: return r->GetString(message, field).empty();
      default: return false;
    }
  }

  const std::string& in_;
  size_t pos_ = 0;
  std::string out_;
};

}  // namespace

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
  return JsonRewriter(json).Rewrite(message);
}

std::string CsvField(absl::string_view text) {
  if (text.find_first_of(",\"\r\n") == absl::string_view::npos) return std::string(text);
  std::string out = "\"";
  for (char c : text) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

v1::WhatRan DescribeWhatRan(const scenario::LoadedScenario& loaded,
                            const std::vector<std::string>& overrides) {
  v1::WhatRan w;
  *w.mutable_precision() = memory::PrecisionOf(loaded.model);
  const memory::RuntimeOverheads runtime =
      memory::ResolveRuntime(loaded.runtime, loaded.cluster.gpu.capacity_bytes());
  v1::RuntimeUsed* r = w.mutable_runtime();
  r->set_cuda_context_bytes(runtime.cuda_context_bytes);
  r->set_allocator_overhead_fraction(runtime.allocator_overhead_fraction);
  r->set_comm_buffer_bytes_per_communicator(runtime.comm_buffer_bytes_per_communicator);
  r->set_kv_block_tokens(runtime.kv_block_tokens);
  r->set_eager_attention(runtime.eager_attention);
  const scenario::RuntimeProfile engine = scenario::ResolveRuntimeProfile(loaded.runtime);
  r->set_name(scenario::RuntimeNameText(engine.name));
  std::string terms = engine.Describe();
  // SGLang's and TRT-LLM's memory is their sources' rules, with nothing
  // measured to fit them on (sim/memory/runtime_memory.h).
  if (runtime.sglang) {
    absl::StrAppendFormat(&terms,
                          "; memory by SGLang's rules, not fitted (mem_fraction_static %.3f)",
                          memory::SglangMemFractionStatic(runtime, loaded.plan));
  } else if (runtime.trtllm) {
    absl::StrAppendFormat(&terms,
                          "; memory by TensorRT-LLM's rule, not fitted "
                          "(kv_cache_free_gpu_mem_fraction %.2f)",
                          runtime.kv_cache_free_gpu_mem_fraction);
  }
  r->set_time_terms(terms);
  for (const std::string& o : overrides) w.add_overrides(o);
  // The profile the cost model uses (an empty cluster profile means its
  // roofline defaults), said as the run's notes say it.
  const cost::CostModel cost(loaded.cluster.gpu, loaded.model, loaded.cluster.profile);
  const v1::EfficiencyProfile& profile = cost.profile();
  w.set_calibrated(!profile.derived());
  w.set_calibration_profile(
      profile.derived()
          ? absl::StrFormat("UNCALIBRATED for %s: %s", loaded.cluster.gpu.name(),
                            profile.source())
          : absl::StrFormat("calibrated on %s (%d measured op times): %s", profile.gpu(),
                            profile.samples(), profile.source()));
  w.set_collective_tuning(loaded.cluster.collectives.source().empty()
                              ? std::string("none (raw link bandwidth, no launch or step "
                                            "time)")
                              : loaded.cluster.collectives.source());
  return w;
}

std::string WhatRanText(const v1::WhatRan& w, int width, bool timings) {
  const v1::RuntimeUsed& r = w.runtime();
  std::string out;
  if (timings) {
    absl::StrAppendFormat(&out, "%-*s %s\n", width, "precision", PrecisionText(w.precision()));
  }
  absl::StrAppendFormat(
      &out, "%-*s CUDA context %s, comm buffers %s per communicator, allocator slack %g%%, %s, "
      "%s attention\n",
      width, "runtime", FormatBytes(r.cuda_context_bytes()),
      FormatBytes(r.comm_buffer_bytes_per_communicator()),
      100 * r.allocator_overhead_fraction(),
      r.kv_block_tokens() > 0 ? absl::StrCat("KV cache in ", r.kv_block_tokens(), "-token blocks")
                              : std::string("contiguous KV cache"),
      r.eager_attention() ? "eager" : "fused");
  // The named runtime's time terms (sim/scenario/runtime_profile.h).
  if (timings) absl::StrAppendFormat(&out, "%-*s %s\n", width, "engine", r.time_terms());
  absl::StrAppendFormat(&out, "%-*s %s\n", width, "overrides",
                        w.overrides().empty() ? std::string("none")
                                              : absl::StrJoin(w.overrides(), " "));
  if (timings) {
    absl::StrAppendFormat(&out, "%-*s %s\n", width, "calibration", w.calibration_profile());
    absl::StrAppendFormat(&out, "%-*s %s\n", width, "collectives", w.collective_tuning());
  }
  return out;
}

std::string WhatRanLine(const v1::WhatRan& w) {
  std::vector<std::string> lines =
      absl::StrSplit(WhatRanText(w, 0, /*timings=*/true), '\n', absl::SkipEmpty());
  return absl::StrJoin(lines, "; ");
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

namespace {

int64_t TotalBytes(const v1::GpuMemory& g) { return g.memory().total_bytes(); }
int64_t TotalBytes(const v1::GpuRun& g) { return g.peak_memory().total_bytes(); }

// "does not fit: GPU 3 needs 90.1 GB of 80 GB (over by 10.1 GB, passing
// capacity at weights)": the GPU that misses by the most (the first of
// equals), for the first line of a report whose plan does not fit.
template <typename Gpus>
std::string DoesNotFitLine(const Gpus& gpus, int failing) {
  const auto* worst = &*gpus.begin();
  bool found = false;
  for (const auto& g : gpus) {
    if (!g.fits() && (!found || g.over_by_bytes() > worst->over_by_bytes())) {
      worst = &g;
      found = true;
    }
  }
  return absl::StrFormat(
      "does not fit: GPU %d needs %s of %s (over by %s, passing capacity at %s)%s",
      worst->gpu(), FormatBytes(TotalBytes(*worst)), FormatBytes(worst->capacity_bytes()),
      FormatBytes(worst->over_by_bytes()), worst->overflow_component(),
      failing > 1 ? absl::StrFormat("; %d GPUs do not fit", failing) : "");
}

template <typename Report>
std::string DoesNotFitLine(const Report& report) {
  int failing = 0;
  for (const auto& g : report.gpus()) failing += g.fits() ? 0 : 1;
  if (failing == 0) return "does not fit";  // no per-GPU rows to name
  return DoesNotFitLine(report.gpus(), failing);
}

}  // namespace

std::string MemoryText(const scenario::LoadedScenario& loaded,
                       const v1::MemoryReport& report) {
  const model::ModelDims& m = loaded.model;
  const parallel::Plan& plan = loaded.plan;
  const v1::Workload& w = loaded.scenario.workload();
  std::string out;
  if (!report.fits()) out += DoesNotFitLine(report) + "\n";
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
  if (loaded.pools.empty()) {
    absl::StrAppendFormat(&out, "plan      tp=%d pp=%d dp=%d (%d GPUs)\n", plan.tp,
                          plan.pp, plan.dp, plan.num_gpus());
  }
  // With pools, each pool's own plan on its GPUs (sim/memory/pool_memory.h).
  for (const parallel::PoolPlan& pool : loaded.pools) {
    absl::StrAppendFormat(&out, "pool      '%s' %s: tp=%d pp=%d dp=%d on GPUs %s\n", pool.name,
                          v1::Pool::Role_Name(pool.role), pool.plan.tp, pool.plan.pp,
                          pool.plan.dp, absl::StrJoin(pool.gpus, ","));
  }
  absl::StrAppendFormat(&out, "workload  batch %d, prompt %d, output %d tokens\n",
                        w.batch_size(), w.prompt_len(), w.output_len());
  if (report.has_what_ran()) out += WhatRanText(report.what_ran(), 9, /*timings=*/false);
  out += "\n";

  // The pool column only with pools, so plain reports keep their bytes.
  const bool pools = !loaded.pools.empty();
  size_t pool_width = 4;
  for (const v1::GpuMemory& g : report.gpus()) pool_width = std::max(pool_width, g.pool().size());
  auto pool_cell = [&](const std::string& name) {
    return pools ? absl::StrFormat("%-*s ", static_cast<int>(pool_width), name) : std::string();
  };
  out += pool_cell("pool");
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
    out += pool_cell(g.pool());
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
        "fits: NO on %d of %d GPUs. GPU %d%s needs %s of %s (over by %s); the "
        "total passes capacity at %s",
        failing, report.gpus_size(), worst->gpu(),
        worst->pool().empty() ? "" : absl::StrCat(" (pool '", worst->pool(), "')"),
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
  if (!r.fits()) out += DoesNotFitLine(r) + "; the timings below assume it did\n";
  absl::StrAppendFormat(&out, "scenario   %s\n", r.scenario());
  absl::StrAppendFormat(&out, "model      %s on %s (%s), tp=%d pp=%d dp=%d, %d micro-batch(es)\n",
                        r.model(), r.cluster(), r.gpu(), r.tp(), r.pp(), r.dp(),
                        r.micro_batches());
  absl::StrAppendFormat(&out, "workload   batch %d x (prompt %d + output %d tokens)\n",
                        r.batch_size(), r.prompt_len(), r.output_len());
  if (r.has_what_ran()) out += WhatRanText(r.what_ran(), 10, /*timings=*/true);
  out += "\n";
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

namespace {

// A latency for CSV: empty when unknown (0: no samples, as JSON's null).
std::string CsvSeconds(double seconds) {
  return seconds > 0 ? absl::StrFormat("%.9g", seconds) : std::string();
}

}  // namespace

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
  absl::StrAppendFormat(&out, "%s,%s,%s,%d,%d,%d,%d,%d,%d,%s,%d,%s,%s,%s,%s,%.9g,%.9g,%.9g,%.9g,%s\n",
                        CsvField(r.scenario()), CsvField(r.model()), CsvField(r.gpu()), r.tp(), r.pp(), r.dp(),
                        r.batch_size(), r.prompt_len(), r.output_len(),
                        r.fits() ? "true" : "false",
                        peak, CsvSeconds(r.ttft().mean_s()), CsvSeconds(r.tpot().mean_s()),
                        CsvSeconds(r.tpot().p50_s()), CsvSeconds(r.tpot().p99_s()), r.total_s(),
                        r.output_tokens_per_s(), r.output_tokens_per_s_per_gpu(),
                        r.comm_overhead(),
                        // 0: no GPU price, so no cost (empty, as in sweep tables).
                        r.cost_per_million_output_tokens() > 0
                            ? absl::StrFormat("%.9g", r.cost_per_million_output_tokens())
                            : std::string());
  return out;
}

namespace {

// A distribution's row of a latency table: its name, mean, p50, p90, p99
// and max, or "-" in each cell when it has no samples.
std::string DistributionRow(absl::string_view name, const v1::Distribution& d) {
  auto cell = [&](double seconds) {
    return d.count() > 0 ? FormatSeconds(seconds) : std::string("-");
  };
  return absl::StrFormat("%-8s %11s %11s %11s %11s %11s\n", name, cell(d.mean_s()),
                         cell(d.p50_s()), cell(d.p90_s()), cell(d.p99_s()), cell(d.max_s()));
}

// Disaggregated serving: each pool, then the KV transfers between them.
std::string PoolsText(const v1::ServeReport& r) {
  std::string out = "\n";
  absl::StrAppendFormat(&out, "%-12s %-8s %-14s %5s %9s %8s %8s %20s\n", "pool", "role",
                        "plan", "gpus", "requests", "busy", "waiting", "KV blocks peak/mean/cap");
  for (const v1::PoolServe& p : r.pools()) {
    absl::StrAppendFormat(
        &out, "%-12s %-8s %-14s %5d %9d %7.1f%% %8.1f %20s\n", p.name(), p.role(),
        p.pp() > 1 ? absl::StrFormat("tp=%d pp=%d dp=%d", p.tp(), p.pp(), p.dp())
                   : absl::StrFormat("tp=%d dp=%d", p.tp(), p.dp()),
        p.gpus_size(), p.requests(),
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
  out += DistributionRow("transfer", kv.time());
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
  if (r.pools_size() > 0) {  // every pool's plan, rather than the first's
    absl::StrAppendFormat(&out, "plan      %s, router %s\n", scenario::DeploymentName(r),
                          r.router());
  } else {
    absl::StrAppendFormat(&out, "plan      tp=%d pp=%d dp=%d, router %s\n", r.tp(), r.pp(),
                          r.dp(), r.router());
  }
  absl::StrAppendFormat(
      &out, "scheduler max %d sequences, %d tokens per step, chunked prefill %s, %d-token blocks\n\n",
      r.max_num_seqs(), r.max_num_batched_tokens(), r.chunked_prefill() ? "on" : "off",
      r.block_size());
  if (r.has_what_ran()) {
    out.pop_back();  // the blank line goes after what ran
    out += WhatRanText(r.what_ran(), 9, /*timings=*/true) + "\n";
  }
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
    out += DistributionRow(name, *d);
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
