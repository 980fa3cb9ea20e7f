#include "sim/fidelity/fidelity.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"
#include "sim/base/csv.h"
#include "sim/base/status_macros.h"
#include "sim/base/units.h"
#include "sim/fidelity/calibrate.h"
#include "sim/hardware/cluster.h"
#include "sim/memory/ledger.h"
#include "sim/memory/vllm_memory.h"
#include "sim/scenario/scenario.h"

namespace shardsim::fidelity {
namespace {

// Signed: positive when the prediction is too large (too slow).
double RelativeError(double predicted, double measured) { return predicted / measured - 1; }

absl::Status OpTimes(const Options& options, Report* report) {
  SHARDSIM_ASSIGN_OR_RETURN(
      std::vector<cost::OpSample> samples,
      cost::LoadOpSamples(options.calibration_dir + "/vidur/data/profiling/compute/a100"));
  SHARDSIM_ASSIGN_OR_RETURN(
      v1::GpuCatalog catalog,
      hardware::LoadGpuCatalog(options.topologies_dir + "/gpus.textproto"));
  SHARDSIM_ASSIGN_OR_RETURN(v1::GpuSpec gpu, hardware::FindGpu(catalog, kVidurGpu, "catalog"));
  std::set<std::string> models;
  for (const cost::OpSample& s : samples) models.insert(s.model);
  std::vector<double> gemm;
  std::vector<double> memory_bound;
  std::map<std::string, std::vector<double>> by_model;
  for (const std::string& held_out : models) {
    std::vector<cost::OpSample> train;
    for (const cost::OpSample& s : samples) {
      if (s.model != held_out) train.push_back(s);
    }
    const v1::EfficiencyProfile profile = cost::FitProfile(train, gpu);
    for (const cost::OpSample& s : samples) {
      if (s.model != held_out) continue;
      const double e = RelativeError(cost::PredictOp(s, gpu, profile), s.measured_s);
      const bool matrix = s.op_def.kind == model::OpKind::kGemm;
      (matrix ? gemm : memory_bound).push_back(e);
      by_model[held_out].push_back(e);
    }
  }
  std::vector<double> all = gemm;
  all.insert(all.end(), memory_bound.begin(), memory_bound.end());
  const std::string basis = "leave-one-model-out over 8 models, A100 (Vidur)";
  report->categories.push_back({"op time: all ops", basis, cost::SummarizeSigned(all)});
  report->categories.push_back({"op time: GEMMs", basis, cost::SummarizeSigned(gemm)});
  report->categories.push_back(
      {"op time: memory-bound ops", basis, cost::SummarizeSigned(memory_bound)});
  for (const auto& [name, errors] : by_model) {
    report->categories.push_back(
        {absl::StrCat("op time: held-out ", name), basis, cost::SummarizeSigned(errors)});
  }
  return absl::OkStatus();
}

// FP8 GEMMs (AIConfigurator's FP8 grid: vLLM's CUTLASS scaled-mm with
// per-tensor scales) on each GPU measured in FP8: its own FP8 curve
// (gemm_fp8); the curve derived with that GPU left out (its BF16 numbers
// from the datasheet, the FP8 ratios from the other GPUs); both over all
// GPUs; and, for comparison, the BF16 curve at the FP8 rate (what FP8
// recipes got before gemm_fp8).
void Fp8Gemms(const std::vector<cost::MeasuredGpu>& fits,
              const std::vector<cost::GemmSample>& samples,
              const v1::EfficiencyProfile& elementwise, Report* report) {
  auto judge = [&](const v1::GpuSpec& gpu, const v1::EfficiencyProfile& profile) {
    std::vector<double> errors;
    for (const cost::GemmSample& s : samples) {
      if (s.gpu != gpu.name() || s.dtype != v1::FP8) continue;
      errors.push_back(RelativeError(cost::PredictGemm(s, gpu, profile), s.measured_s));
    }
    return errors;
  };
  std::vector<double> own_all, derived_all, bf16_curve_all;
  for (const cost::MeasuredGpu& m : fits) {
    if (m.profile.gemm_fp8().samples() == 0) continue;
    const std::vector<double> own = judge(m.spec, m.profile);
    own_all.insert(own_all.end(), own.begin(), own.end());
    report->categories.push_back({absl::StrCat("GEMM FP8: ", m.spec.name(), " own fit"),
                                  "AIConfigurator FP8 grid, this GPU's own FP8 fit",
                                  cost::SummarizeSigned(own)});
    std::vector<cost::MeasuredGpu> others;
    for (const cost::MeasuredGpu& o : fits) {
      if (o.spec.name() != m.spec.name()) others.push_back(o);
    }
    const std::vector<double> derived =
        judge(m.spec, cost::DeriveProfile(m.spec, others, elementwise));
    derived_all.insert(derived_all.end(), derived.begin(), derived.end());
    report->categories.push_back(
        {absl::StrCat("GEMM FP8 derived, left out: ", m.spec.name()),
         "held out: datasheet derivation and the other GPUs' FP8/BF16 ratios",
         cost::SummarizeSigned(derived)});
    v1::EfficiencyProfile bf16_curve = m.profile;
    bf16_curve.clear_gemm_fp8();
    const std::vector<double> before = judge(m.spec, bf16_curve);
    bf16_curve_all.insert(bf16_curve_all.end(), before.begin(), before.end());
  }
  if (own_all.empty()) return;
  report->categories.push_back({"GEMM FP8: all measured GPUs", "each GPU's own FP8 fit",
                                cost::SummarizeSigned(own_all)});
  report->categories.push_back({"GEMM FP8 derived: leave-one-GPU-out",
                                "held out: each GPU derived from the others",
                                cost::SummarizeSigned(derived_all)});
  report->categories.push_back({"GEMM FP8 with the BF16 curve at the FP8 rate",
                                "diagnostic: what FP8 recipes used before gemm_fp8",
                                cost::SummarizeSigned(bf16_curve_all)});
}

// Decode attention over an FP8 KV cache (AIConfigurator's fp8 rows: the
// same grid as BF16, FlashAttention 3 on H100/H200, TRT-LLM's FlashInfer
// kernel on B200, FlashInfer's decode on L40S): each GPU's own attention fit
// (fitted on both KV formats), and held out: the fit without any FP8-KV row
// predicting them, which tests "FP8 KV halves the bytes read at the same
// memory efficiency" (the cost model's assumption) directly.
void Fp8KvDecode(const std::vector<cost::MeasuredGpu>& fits,
                 const std::vector<cost::AttentionSample>& attention, Report* report) {
  std::vector<double> own_all, held_out_all;
  for (const cost::MeasuredGpu& m : fits) {
    std::vector<cost::AttentionSample> bf16_only, fp8_decode;
    for (const cost::AttentionSample& s : attention) {
      if (s.gpu != m.spec.name()) continue;
      if (s.kv_dtype == v1::FP8) {
        if (!s.prefill) fp8_decode.push_back(s);
      } else {
        bf16_only.push_back(s);
      }
    }
    if (fp8_decode.empty()) continue;
    v1::EfficiencyProfile own = m.profile;
    *own.mutable_attention() = own.vllm_attention();
    v1::EfficiencyProfile without = m.profile;
    *without.mutable_attention() = cost::FitAttention(bf16_only, m.spec);
    std::vector<double> own_errors, held_out;
    for (const cost::AttentionSample& s : fp8_decode) {
      own_errors.push_back(
          RelativeError(cost::PredictAttention(s, m.spec, own), s.measured_s));
      held_out.push_back(
          RelativeError(cost::PredictAttention(s, m.spec, without), s.measured_s));
    }
    own_all.insert(own_all.end(), own_errors.begin(), own_errors.end());
    held_out_all.insert(held_out_all.end(), held_out.begin(), held_out.end());
    report->categories.push_back({absl::StrCat("attention decode FP8 KV: ", m.spec.name()),
                                  "AIConfigurator grid, this GPU's own fit (both KV formats)",
                                  cost::SummarizeSigned(own_errors)});
    report->categories.push_back(
        {absl::StrCat("attention decode FP8 KV, BF16-KV fit: ", m.spec.name()),
         "held out: fitted without FP8 KV; FP8 halves the KV bytes, same efficiency",
         cost::SummarizeSigned(held_out)});
  }
  if (own_all.empty()) return;
  report->categories.push_back({"attention decode FP8 KV: all measured GPUs",
                                "each GPU's own fit (both KV formats)",
                                cost::SummarizeSigned(own_all)});
  report->categories.push_back(
      {"attention decode FP8 KV, BF16-KV fit: all measured GPUs",
       "held out: fitted without FP8 KV; FP8 halves the KV bytes, same efficiency",
       cost::SummarizeSigned(held_out_all)});
}

// GEMMs measured on five GPUs (AIConfigurator, in vLLM): each GPU's BF16 fit
// judged on its own BF16 grid (FP8: Fp8Gemms); the datasheet
// derivation judged with that GPU left out of the fits it derives from; and
// the Vidur A100 profile (what A100 runs use) on AIConfigurator's A100 grid.
absl::Status GemmsPerGpu(const Options& options, Report* report) {
  SHARDSIM_ASSIGN_OR_RETURN(
      v1::GpuCatalog catalog,
      hardware::LoadGpuCatalog(options.topologies_dir + "/gpus.textproto"));
  SHARDSIM_ASSIGN_OR_RETURN(
      std::vector<cost::OpSample> op_samples,
      cost::LoadOpSamples(options.calibration_dir + "/vidur/data/profiling/compute/a100"));
  SHARDSIM_ASSIGN_OR_RETURN(v1::GpuSpec a100, hardware::FindGpu(catalog, kVidurGpu, "catalog"));
  const v1::EfficiencyProfile vidur = cost::FitProfile(op_samples, a100);
  SHARDSIM_ASSIGN_OR_RETURN(std::vector<cost::GemmSample> samples,
                            LoadAicGemms(options.calibration_dir));
  SHARDSIM_ASSIGN_OR_RETURN(std::vector<cost::AttentionSample> attention,
                            LoadAicAttention(options.calibration_dir));
  const std::vector<cost::MeasuredGpu> fits =
      FitMeasuredGpus(catalog, samples, attention, vidur);
  auto judge = [&](const v1::GpuSpec& gpu, const v1::EfficiencyProfile& profile,
                   v1::DType dtype) {
    std::vector<double> errors;
    for (const cost::GemmSample& s : samples) {
      if (s.gpu != gpu.name() || s.dtype != dtype) continue;
      errors.push_back(RelativeError(cost::PredictGemm(s, gpu, profile), s.measured_s));
    }
    return errors;
  };
  std::vector<double> own_all, derived_all;
  for (const cost::MeasuredGpu& m : fits) {
    const std::vector<double> own = judge(m.spec, m.profile, v1::BF16);
    own_all.insert(own_all.end(), own.begin(), own.end());
    report->categories.push_back(
        {absl::StrCat("GEMM BF16: ", m.spec.name()),
         "AIConfigurator grid, this GPU's own fit", cost::SummarizeSigned(own)});
    std::vector<cost::MeasuredGpu> others;
    for (const cost::MeasuredGpu& o : fits) {
      if (o.spec.name() != m.spec.name()) others.push_back(o);
    }
    const std::vector<double> derived =
        judge(m.spec, cost::DeriveProfile(m.spec, others, vidur), v1::BF16);
    derived_all.insert(derived_all.end(), derived.begin(), derived.end());
    report->categories.push_back(
        {absl::StrCat("GEMM BF16 derived, left out: ", m.spec.name()),
         "held out: datasheet derivation from the other GPUs' fits",
         cost::SummarizeSigned(derived)});
  }
  report->categories.push_back({"GEMM BF16: all measured GPUs", "each GPU's own fit",
                                cost::SummarizeSigned(own_all)});
  report->categories.push_back(
      {"GEMM BF16 derived: leave-one-GPU-out", "held out: each GPU derived from the others",
       cost::SummarizeSigned(derived_all)});
  // Attention: each GPU's own fit, prefill and decode apart; the same with
  // the GPU left out and derived; and what the GEMM figures (the model before
  // attention had its own) gave.
  std::vector<double> prefill_all, decode_all, attention_derived_all, prefill_as_gemm,
      decode_as_gemm;
  for (const cost::MeasuredGpu& m : fits) {
    std::vector<cost::MeasuredGpu> others;
    for (const cost::MeasuredGpu& o : fits) {
      if (o.spec.name() != m.spec.name()) others.push_back(o);
    }
    // The cost model reads `attention`: judge the vLLM fit through it.
    v1::EfficiencyProfile own = m.profile;
    *own.mutable_attention() = own.vllm_attention();
    v1::EfficiencyProfile derived = cost::DeriveProfile(m.spec, others, vidur);
    *derived.mutable_attention() = derived.vllm_attention();
    v1::EfficiencyProfile as_gemm = m.profile;
    as_gemm.clear_attention();
    std::vector<double> prefill, decode, held_out;
    for (const cost::AttentionSample& s : attention) {
      if (s.gpu != m.spec.name()) continue;
      const double e =
          RelativeError(cost::PredictAttention(s, m.spec, own), s.measured_s);
      (s.prefill ? prefill : decode).push_back(e);
      held_out.push_back(
          RelativeError(cost::PredictAttention(s, m.spec, derived), s.measured_s));
      (s.prefill ? prefill_as_gemm : decode_as_gemm)
          .push_back(RelativeError(cost::PredictAttention(s, m.spec, as_gemm), s.measured_s));
    }
    prefill_all.insert(prefill_all.end(), prefill.begin(), prefill.end());
    decode_all.insert(decode_all.end(), decode.begin(), decode.end());
    attention_derived_all.insert(attention_derived_all.end(), held_out.begin(), held_out.end());
    const std::string basis = "AIConfigurator grid, this GPU's own fit";
    report->categories.push_back({absl::StrCat("attention prefill: ", m.spec.name()), basis,
                                  cost::SummarizeSigned(prefill)});
    report->categories.push_back({absl::StrCat("attention decode: ", m.spec.name()), basis,
                                  cost::SummarizeSigned(decode)});
    report->categories.push_back(
        {absl::StrCat("attention derived, left out: ", m.spec.name()),
         "held out: datasheet derivation from the other GPUs' fits",
         cost::SummarizeSigned(held_out)});
  }
  report->categories.push_back({"attention prefill: all measured GPUs",
                                "each GPU's own fit", cost::SummarizeSigned(prefill_all)});
  report->categories.push_back({"attention decode: all measured GPUs", "each GPU's own fit",
                                cost::SummarizeSigned(decode_all)});
  report->categories.push_back({"attention derived: leave-one-GPU-out",
                                "held out: each GPU derived from the others",
                                cost::SummarizeSigned(attention_derived_all)});
  report->categories.push_back({"attention prefill with the GEMM figures",
                                "each GPU's GEMM fit, no attention model",
                                cost::SummarizeSigned(prefill_as_gemm)});
  report->categories.push_back({"attention decode with the GEMM figures",
                                "each GPU's GEMM fit, no attention model",
                                cost::SummarizeSigned(decode_as_gemm)});
  report->categories.push_back({"GEMM BF16: A100 AIConfigurator, Vidur profile",
                                "cross-check: another lab's A100 GEMMs, the shipped A100 fit",
                                cost::SummarizeSigned(judge(a100, vidur, v1::BF16))});
  Fp8Gemms(fits, samples, vidur, report);
  Fp8KvDecode(fits, attention, report);
  return absl::OkStatus();
}


// `base` with the custom all-reduce entries (ONESHOT, TWOSHOT) of `from`.
v1::CollectiveTuning WithCustomEntries(const v1::CollectiveTuning& base,
                                       const v1::CollectiveTuning& from) {
  v1::CollectiveTuning out = base;
  out.clear_protocols();
  for (const v1::ProtocolTuning& p : base.protocols()) {
    if (p.protocol() != "ONESHOT" && p.protocol() != "TWOSHOT") *out.add_protocols() = p;
  }
  for (const v1::ProtocolTuning& p : from.protocols()) {
    if (p.protocol() == "ONESHOT" || p.protocol() == "TWOSHOT") *out.add_protocols() = p;
  }
  return out;
}

// vLLM's custom all-reduce (one-shot / two-shot, replayed in a CUDA graph,
// the sizes its own kernels take) per AIConfigurator machine: with the
// kernels fitted on that machine alone, and held out, fitted on another GPU
// type and carried over (at the target's own link efficiencies).
absl::Status JudgeCustomAllReduce(const Options& options, Report* report) {
  struct Machine {
    std::string system;
    std::string topology_file;
    std::string held_out_from;  // whose fit predicts it in the held-out row
  };
  const std::vector<Machine> machines = {{"a100_sxm", "dgx_a100.textproto", "h100_sxm"},
                                         {"h100_sxm", "dgx_h100.textproto", "h200_sxm"},
                                         {"h200_sxm", "hgx_h200.textproto", "h100_sxm"},
                                         {"b200_sxm", "dgx_b200.textproto", "h100_sxm"},
                                         {"l40s", "pcie_l40s_8x.textproto", "a100_sxm"}};
  std::map<std::string, hardware::Cluster> clusters;
  std::map<std::string, std::vector<cost::CollectiveSample>> samples;
  std::map<std::string, v1::CollectiveTuning> own;
  for (const Machine& m : machines) {
    SHARDSIM_ASSIGN_OR_RETURN(
        hardware::Cluster cluster,
        scenario::LoadAndCheckTopology(options.topologies_dir + "/" + m.topology_file));
    clusters.emplace(m.system, std::move(cluster));
  }
  for (const Machine& m : machines) {
    const hardware::Cluster& cluster = clusters.at(m.system);
    SHARDSIM_ASSIGN_OR_RETURN(samples[m.system],
                              LoadAicCustomAllReduce(options.calibration_dir, m.system, cluster));
    own[m.system] = cost::FitCustomAllReduce({{&cluster, samples[m.system]}}, cluster.collectives);
  }
  auto judge = [&](const std::string& system, const v1::CollectiveTuning& tuning) {
    std::vector<double> errors;
    for (const cost::CollectiveSample& s : samples.at(system)) {
      errors.push_back(RelativeError(cost::PredictCollective(s, clusters.at(system), tuning),
                                     s.measured_s));
    }
    return cost::SummarizeSigned(errors);
  };
  for (const Machine& m : machines) {
    report->categories.push_back(
        {absl::StrCat("custom all-reduce: ", m.system, " (one-shot / two-shot, 2-8 GPUs)"),
         "this machine's own fit (vLLM's kernels in a CUDA graph, below 8 MiB)",
         judge(m.system, own.at(m.system))});
    report->categories.push_back(
        {absl::StrCat("custom all-reduce: ", m.system, ", fit on ", m.held_out_from),
         "held out: another GPU type's fit",
         judge(m.system,
               WithCustomEntries(clusters.at(m.system).collectives, own.at(m.held_out_from)))});
  }
  return absl::OkStatus();
}

absl::Status Collectives(const Options& options, Report* report) {
  const std::string network = options.calibration_dir + "/vidur/data/profiling/network";
  constexpr int64_t kMaxBytes = 64 * kMiB;
  SHARDSIM_ASSIGN_OR_RETURN(
      hardware::Cluster dgx,
      scenario::LoadAndCheckTopology(options.topologies_dir + "/dgx_a100.textproto"));
  SHARDSIM_ASSIGN_OR_RETURN(
      hardware::Cluster pairs,
      scenario::LoadAndCheckTopology(options.topologies_dir +
                                     "/pcie_a100_4x_nvlink_pairs.textproto"));
  SHARDSIM_ASSIGN_OR_RETURN(std::vector<cost::CollectiveSample> dgx_samples,
                            cost::LoadCollectiveSamples(network, "a100_dgx", kMaxBytes));
  SHARDSIM_ASSIGN_OR_RETURN(
      std::vector<cost::CollectiveSample> pair_samples,
      cost::LoadCollectiveSamples(network, "a100_pairwise_nvlink", kMaxBytes));
  auto at_least_1kib = [](std::vector<cost::CollectiveSample> samples) {
    samples.erase(std::remove_if(samples.begin(), samples.end(),
                                 [](const cost::CollectiveSample& s) { return s.bytes < kKiB; }),
                  samples.end());
    return samples;
  };
  dgx_samples = at_least_1kib(dgx_samples);
  pair_samples = at_least_1kib(pair_samples);
  // What `shardsim calibrate` fits: each machine on its own measurements,
  // and a default for unmeasured clusters on both together.
  const v1::CollectiveTuning dgx_only = cost::FitCollectives({{&dgx, dgx_samples}});
  const v1::CollectiveTuning pairs_only = cost::FitCollectives({{&pairs, pair_samples}});
  const v1::CollectiveTuning joint =
      cost::FitCollectives({{&dgx, dgx_samples}, {&pairs, pair_samples}});
  auto judge = [&](const std::vector<cost::CollectiveSample>& samples,
                   const hardware::Cluster& cluster, const v1::CollectiveTuning& with,
                   const std::string& collective, int gpus, const std::string& name,
                   const std::string& basis) {
    std::vector<double> errors;
    for (const cost::CollectiveSample& s : samples) {
      if (s.collective != collective || (gpus > 0 && s.num_gpus != gpus)) continue;
      errors.push_back(RelativeError(cost::PredictCollective(s, cluster, with), s.measured_s));
    }
    report->categories.push_back({name, basis, cost::SummarizeSigned(errors)});
  };
  const std::string fitted = "fitted on this machine's own, 1 KB - 64 MB";
  std::vector<double> all;
  for (const cost::CollectiveSample& s : dgx_samples) {
    all.push_back(RelativeError(cost::PredictCollective(s, dgx, dgx_only), s.measured_s));
  }
  for (const cost::CollectiveSample& s : pair_samples) {
    all.push_back(RelativeError(cost::PredictCollective(s, pairs, pairs_only), s.measured_s));
  }
  report->categories.push_back(
      {"collective: all measurements", fitted, cost::SummarizeSigned(all)});
  judge(dgx_samples, dgx, dgx_only, "all_reduce", 0,
        "collective: all_reduce, DGX A100 (2-8 GPUs)", fitted);
  judge(dgx_samples, dgx, dgx_only, "send_recv", 0, "collective: send_recv, DGX A100", fitted);
  judge(pair_samples, pairs, pairs_only, "all_reduce", 0,
        "collective: all_reduce, 4x A100 PCIe + NVLink pairs", fitted);
  judge(pair_samples, pairs, pairs_only, "send_recv", 0,
        "collective: send_recv, 4x A100 PCIe + NVLink pairs", fitted);
  std::vector<double> joint_errors;
  for (const cost::CollectiveSample& s : dgx_samples) {
    joint_errors.push_back(RelativeError(cost::PredictCollective(s, dgx, joint), s.measured_s));
  }
  for (const cost::CollectiveSample& s : pair_samples) {
    joint_errors.push_back(RelativeError(cost::PredictCollective(s, pairs, joint), s.measured_s));
  }
  report->categories.push_back({"collective: default tuning (both machines' fit)",
                                "fitted on both together: what unmeasured clusters use",
                                cost::SummarizeSigned(joint_errors)});
  judge(pair_samples, pairs, dgx_only, "all_reduce", 2,
        "collective: all_reduce, NVLink pair, tuning from DGX only",
        "held out (other machine, same link kind)");
  judge(pair_samples, pairs, dgx_only, "send_recv", 2,
        "collective: send_recv, NVLink pair, tuning from DGX only",
        "held out (other machine, same link kind)");

  // Each measured link generation (AIConfigurator's nccl-tests), per machine,
  // with the generation's fit (what clusters of those GPUs get).
  const std::string generation_fit = "the link generation's fit, 1 KB - 64 MB";
  for (const MeasuredGeneration& generation : MeasuredGenerations()) {
    std::vector<hardware::Cluster> machines;
    machines.reserve(generation.systems.size());
    std::vector<cost::CollectiveSet> sets;
    for (const auto& [system, topology_file] : generation.systems) {
      SHARDSIM_ASSIGN_OR_RETURN(
          hardware::Cluster cluster,
          scenario::LoadAndCheckTopology(options.topologies_dir + "/" + topology_file));
      machines.push_back(std::move(cluster));
      SHARDSIM_ASSIGN_OR_RETURN(std::vector<cost::CollectiveSample> samples,
                                LoadAicCollectives(options.calibration_dir, system));
      sets.push_back({&machines.back(), std::move(samples)});
    }
    const v1::CollectiveTuning fit = cost::FitCollectives(sets);
    for (size_t i = 0; i < sets.size(); ++i) {
      std::vector<double> errors;
      for (const cost::CollectiveSample& s : sets[i].samples) {
        errors.push_back(
            RelativeError(cost::PredictCollective(s, *sets[i].cluster, fit), s.measured_s));
      }
      report->categories.push_back(
          {absl::StrCat("collective: ", generation.systems[i].first, " (", generation.name,
                        "; all_reduce, all_gather, reduce_scatter, 2-8 GPUs)"),
           generation_fit, cost::SummarizeSigned(errors)});
    }
    // Held out: the other machine of a generation from the first one's fit.
    if (sets.size() > 1) {
      const v1::CollectiveTuning first = cost::FitCollectives({sets[0]});
      std::vector<double> errors;
      for (const cost::CollectiveSample& s : sets[1].samples) {
        errors.push_back(
            RelativeError(cost::PredictCollective(s, *sets[1].cluster, first), s.measured_s));
      }
      report->categories.push_back(
          {absl::StrCat("collective: ", generation.systems[1].first, ", tuning from ",
                        generation.systems[0].first, " only"),
           "held out (other machine, same link generation)", cost::SummarizeSigned(errors)});
    }
  }
  // AIConfigurator's A100 node with the default tuning (fitted on Vidur's
  // A100 machines): another lab's NCCL on the same link generation.
  SHARDSIM_ASSIGN_OR_RETURN(std::vector<cost::CollectiveSample> aic_a100,
                            LoadAicCollectives(options.calibration_dir, "a100_sxm"));
  std::vector<double> a100_errors;
  for (const cost::CollectiveSample& s : aic_a100) {
    a100_errors.push_back(RelativeError(cost::PredictCollective(s, dgx, joint), s.measured_s));
  }
  report->categories.push_back(
      {"collective: a100_sxm (AIConfigurator) with the default tuning",
       "held out: Vidur's A100 fit on another lab's A100 NCCL (2.27)",
       cost::SummarizeSigned(a100_errors)});
  // AIConfigurator's L40S box on pcie_l40s_8x.textproto: with the default
  // (what PCIe clusters get) and with its own fit, which is not shipped
  // (calibrate.cc: the box is not wired like that topology).
  SHARDSIM_ASSIGN_OR_RETURN(
      hardware::Cluster l40s,
      scenario::LoadAndCheckTopology(options.topologies_dir + "/pcie_l40s_8x.textproto"));
  SHARDSIM_ASSIGN_OR_RETURN(std::vector<cost::CollectiveSample> aic_l40s,
                            LoadAicCollectives(options.calibration_dir, "l40s"));
  const v1::CollectiveTuning l40s_own = cost::FitCollectives({{&l40s, aic_l40s}});
  for (const auto& [name, tuning] :
       std::vector<std::pair<std::string, const v1::CollectiveTuning*>>{
           {"the default tuning", &joint}, {"its own fit (not shipped)", &l40s_own}}) {
    std::vector<double> errors;
    for (const cost::CollectiveSample& s : aic_l40s) {
      errors.push_back(RelativeError(cost::PredictCollective(s, l40s, *tuning), s.measured_s));
    }
    report->categories.push_back(
        {absl::StrCat("collective: l40s (AIConfigurator) with ", name),
         "diagnostic: a PCIe box wired unlike pcie_l40s_8x", cost::SummarizeSigned(errors)});
  }
  return JudgeCustomAllReduce(options, report);
}

// TensorRT-LLM 0.9's published names -> our model files.
const std::map<std::string, std::string>& TrtModels() {
  static const auto* models = new std::map<std::string, std::string>{
      {"GPT-J-6B", "gptj_6b.json"},         {"Mistral-7B", "mistral_7b.json"},
      {"Mixtral-8x7B", "mixtral_8x7b.json"}, {"LLaMA-2-7B", "llama2_7b.json"},
      {"LLaMA-2-70B", "llama2_70b.textproto"}, {"Falcon-180B", "falcon_180b.json"},
  };
  return *models;
}

// Runs `shardsim run` and returns the named CSV columns.
absl::StatusOr<std::map<std::string, double>> RunCsv(const std::string& binary,
                                                     const std::string& args) {
  const std::string command = absl::StrCat(binary, " run ", args, " --format=csv 2>&1");
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return absl::InternalError("cannot start " + binary);
  std::string out;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) out.append(buffer, n);
  if (pclose(pipe) != 0) {
    return absl::InternalError(absl::StrCat("shardsim run ", args, ": ", out));
  }
  const std::vector<std::string> lines = absl::StrSplit(out, '\n');
  if (lines.size() < 2) return absl::InternalError("no CSV row from shardsim run");
  const std::vector<std::string> header = absl::StrSplit(lines[0], ',');
  const std::vector<std::string> row = absl::StrSplit(lines[1], ',');
  std::map<std::string, double> values;
  for (size_t i = 0; i < header.size() && i < row.size(); ++i) {
    values[header[i]] = std::atof(row[i].c_str());
  }
  return values;
}

absl::Status EndToEnd(const Options& options, Report* report) {
  SHARDSIM_ASSIGN_OR_RETURN(
      CsvTable table, CsvTable::Load(options.calibration_dir + "/trtllm_v0.9_a100_fp16.csv"));
  SHARDSIM_RETURN_IF_ERROR(table.RequireColumns({"model", "metric"}));
  std::vector<double> throughput;
  std::vector<double> first_token;
  for (size_t row = 0; row < table.num_rows(); ++row) {
    const std::string& name = table.Get(row, "model");
    auto model = TrtModels().find(name);
    if (model == TrtModels().end()) continue;
    SHARDSIM_ASSIGN_OR_RETURN(double tp, table.Number(row, "tp"));
    SHARDSIM_ASSIGN_OR_RETURN(double batch, table.Number(row, "batch_size"));
    SHARDSIM_ASSIGN_OR_RETURN(double input, table.Number(row, "input_len"));
    SHARDSIM_ASSIGN_OR_RETURN(double output, table.Number(row, "output_len"));
    SHARDSIM_ASSIGN_OR_RETURN(double value, table.Number(row, "value"));
    const std::string& metric = table.Get(row, "metric");
    const std::string args = absl::StrFormat(
        "scenarios/default.textproto --set model_file=../%s/%s "
        "--set topology_file=../%s/dgx_a100.textproto --set parallelism.tp=%d "
        "--set workload.batch_size=%d --set workload.prompt_len=%d "
        "--set workload.output_len=%d --set model.precision.weight_dtype=FP16 "
        "--set model.precision.activation_dtype=FP16",
        options.models_dir, model->second, options.topologies_dir, static_cast<int>(tp),
        static_cast<int>(batch), static_cast<int>(input), static_cast<int>(output));
    SHARDSIM_ASSIGN_OR_RETURN(auto result, RunCsv(options.shardsim_binary, args));
    Line line;
    line.what = absl::StrFormat("%s tp=%d batch %d, %d in / %d out", name,
                                static_cast<int>(tp), static_cast<int>(batch),
                                static_cast<int>(input), static_cast<int>(output));
    line.measured = value;
    if (metric == "first_token_latency") {
      line.category = "first-token latency";
      line.predicted = result["ttft_s"] * 1e3;
      line.unit = "ms";
      first_token.push_back(RelativeError(line.predicted, value));
    } else {
      line.category = "static-batch throughput";
      line.predicted = result["output_tokens_per_s_per_gpu"];
      line.unit = "tok/s/GPU";
      throughput.push_back(RelativeError(line.predicted, value));
    }
    report->lines.push_back(line);
  }
  const std::string basis = "TensorRT-LLM 0.9 A100 fp16 published runs, replayed end to end";
  report->categories.push_back(
      {"static-batch throughput (tok/s/GPU)", basis, cost::SummarizeSigned(throughput)});
  report->categories.push_back(
      {"first-token latency (batch 1)", basis, cost::SummarizeSigned(first_token)});
  return absl::OkStatus();
}

absl::Status MemoryLines(const Options& options, Report* report) {
  // vLLM 0.19's start-up accounting on H100 (59 runs, 34 checkpoints),
  // each model family held out in turn: its runs are predicted by the terms
  // fitted on the other families' (sim/memory/vllm_memory.h). The weights
  // are the logged figure (not every checkpoint has a model file here), so
  // the KV cache budget row judges the runtime terms only.
  SHARDSIM_ASSIGN_OR_RETURN(
      std::vector<memory::VllmRun> runs,
      memory::LoadVllmRuns(options.calibration_dir + "/public/vllm_memory_profiling_h100.csv",
                           options.calibration_dir + "/vllm_memory_checkpoints.csv"));
  std::set<std::string> families;
  for (const memory::VllmRun& run : runs) families.insert(run.family);
  std::vector<double> non_torch, graph_pool, activation, kv, concurrency;
  const double gib = static_cast<double>(kGiB);
  for (const std::string& family : families) {
    std::vector<memory::VllmRun> others;
    for (const memory::VllmRun& run : runs) {
      if (run.family != family) others.push_back(run);
    }
    const memory::VllmMemoryTerms terms = memory::FitVllmMemoryTerms(others);
    for (const memory::VllmRun& run : runs) {
      if (run.family != family) continue;
      const memory::VllmMemory m = memory::PredictVllmMemory(run.rank, run.profile, terms);
      auto b = [](int64_t bytes) { return static_cast<double>(bytes); };
      const double nt = b(m.init_non_torch_bytes + m.forward_non_torch_bytes);
      const double nt_measured = b(run.init_non_torch_bytes + run.forward_non_torch_bytes);
      const double kv_bytes = b(run.budget_bytes - run.weights_bytes - m.activation_peak_bytes -
                                m.forward_non_torch_bytes);
      // vLLM: max concurrency = KV tokens / max_model_len; the bytes per
      // token are the run's own (the ledger's KV per token is exact).
      const double per_token = b(run.kv_cache_bytes) / static_cast<double>(run.kv_cache_tokens);
      const double conc = kv_bytes / per_token / static_cast<double>(run.max_model_len);
      non_torch.push_back(RelativeError(nt, nt_measured));
      graph_pool.push_back(
          RelativeError(b(m.cuda_graph_pool_bytes), b(run.cuda_graph_pool_bytes)));
      activation.push_back(
          RelativeError(b(m.activation_peak_bytes), b(run.activation_peak_bytes)));
      kv.push_back(RelativeError(kv_bytes, b(run.kv_cache_bytes)));
      concurrency.push_back(RelativeError(conc, run.max_concurrency));
      // The reference lines: Llama-3.1-8B bf16 at 8k, tp 1 and 2.
      if (run.model == "meta-llama/Llama-3.1-8B-Instruct" && run.rank.pp == 1 &&
          run.rank.tp <= 2 && run.max_model_len == 8192 && run.dtype == "torch.bfloat16" &&
          run.kv_cache_tokens == (run.rank.tp == 1 ? 476016 : 1044688)) {
        const std::string what = absl::StrCat("Llama-3.1-8B TP", run.rank.tp, ", ");
        const std::string category = "vLLM memory (held out)";
        report->lines.push_back({category, what + "non-torch", nt_measured / gib, nt / gib, "GiB"});
        report->lines.push_back({category, what + "activation peak",
                                 b(run.activation_peak_bytes) / gib,
                                 b(m.activation_peak_bytes) / gib, "GiB"});
        report->lines.push_back({category, what + "CUDA graph pool",
                                 b(run.cuda_graph_pool_bytes) / gib,
                                 b(m.cuda_graph_pool_bytes) / gib, "GiB"});
        report->lines.push_back(
            {category, what + "KV cache", b(run.kv_cache_bytes) / gib, kv_bytes / gib, "GiB"});
      }
    }
  }
  // The whole ledger on the runs whose family has a model file here (BF16
  // or FP16, unquantized, KV cache in the model's dtype): weights from the
  // model, KV blocks by KvCacheBlocks with the VLLM runtime's default terms
  // (fitted on all runs, these included), profiling 8192 tokens over 1024
  // sequences as vLLM V1 does on an H100, blocks of 16 tokens.
  const std::map<std::string, std::string> model_files = {
      {"llama-3-8b", "llama3_8b.json"},     {"qwen2.5-72b", "qwen2_72b.json"},
      {"mixtral-8x7b", "mixtral_8x7b.json"}, {"qwen3-30b-a3b", "qwen3_30b_a3b.json"},
      {"gemma-2-27b", "gemma2_27b.json"}};
  std::vector<double> weights, ledger_kv;
  for (const memory::VllmRun& run : runs) {
    auto file = model_files.find(run.family);
    if (file == model_files.end() || run.dtype == "torch.float32" || run.quantized ||
        !run.kv_cache_dtype_auto) {
      continue;
    }
    SHARDSIM_ASSIGN_OR_RETURN(
        scenario::LoadedScenario loaded,
        scenario::LoadScenario(
            "scenarios/llama3_8b_one_gpu.textproto",
            {absl::StrCat("model_file=../", options.models_dir, "/", file->second),
             absl::StrCat("topology_file=../", options.topologies_dir, "/dgx_h100.textproto"),
             absl::StrCat("parallelism.tp=", run.rank.tp),
             absl::StrCat("parallelism.pp=", run.rank.pp), "runtime.name=VLLM"}));
    const model::ModelGraph graph = model::BuildGraph(loaded.model, loaded.plan.shard);
    const parallel::Rank& rank0 = loaded.plan.ranks[0];
    const memory::RuntimeOverheads runtime =
        memory::ResolveRuntime(loaded.runtime, loaded.cluster.gpu.capacity_bytes());
    model::StepShape profile;
    profile.new_tokens = 8192;
    profile.sequences = 1024;
    const double utilization =
        static_cast<double>(run.budget_bytes) / static_cast<double>(run.total_bytes);
    const int64_t blocks = memory::KvCacheBlocks(graph, loaded.plan, rank0, runtime,
                                                 run.total_bytes, utilization, 16, profile);
    const int64_t kv_bytes = blocks * memory::RankKvBytes(graph, rank0, 1, 16, 0);
    weights.push_back(RelativeError(
        static_cast<double>(memory::RankWeightBytes(graph, rank0, loaded.plan.pp)),
        static_cast<double>(run.weights_bytes)));
    ledger_kv.push_back(
        RelativeError(static_cast<double>(kv_bytes), static_cast<double>(run.kv_cache_bytes)));
  }
  const std::string basis = absl::StrCat(
      "vLLM 0.19 on H100, ", runs.size(), " runs; each of ", families.size(),
      " model families held out (weights as logged)");
  report->categories.push_back(
      {"vLLM memory: non-torch (start-up + forward)", basis, cost::SummarizeSigned(non_torch)});
  report->categories.push_back(
      {"vLLM memory: CUDA graph pool", basis, cost::SummarizeSigned(graph_pool)});
  report->categories.push_back(
      {"vLLM memory: activation peak", basis, cost::SummarizeSigned(activation)});
  report->categories.push_back(
      {"vLLM memory: KV cache budget", basis, cost::SummarizeSigned(kv)});
  report->categories.push_back(
      {"vLLM memory: max concurrency", basis, cost::SummarizeSigned(concurrency)});
  const std::string ledger_basis =
      "the runs with a model file here (Llama-3-8B, Qwen2.5-72B, Mixtral, Qwen3-30B-A3B, "
      "Gemma-2-27B), whole ledger, default terms";
  report->categories.push_back(
      {"vLLM memory: weights from the model file", ledger_basis, cost::SummarizeSigned(weights)});
  report->categories.push_back({"vLLM memory: KV cache through the ledger", ledger_basis,
                                cost::SummarizeSigned(ledger_kv)});
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Report> Run(const Options& options) {
  Report report;
  if (options.ops) {
    SHARDSIM_RETURN_IF_ERROR(OpTimes(options, &report));
    SHARDSIM_RETURN_IF_ERROR(GemmsPerGpu(options, &report));
  }
  if (options.collectives) SHARDSIM_RETURN_IF_ERROR(Collectives(options, &report));
  if (options.end_to_end && !options.shardsim_binary.empty()) {
    SHARDSIM_RETURN_IF_ERROR(EndToEnd(options, &report));
  }
  if (options.memory) SHARDSIM_RETURN_IF_ERROR(MemoryLines(options, &report));
  return report;
}

std::string Format(const Report& report) {
  std::string out = absl::StrFormat("%-58s %6s %9s %9s %9s  %s\n", "category", "n", "median",
                                    "p90", "signed", "basis");
  for (const Category& c : report.categories) {
    absl::StrAppendFormat(&out, "%-58s %6d %8.1f%% %8.1f%% %+8.1f%%  %s\n", c.name,
                          c.error.count, 100 * c.error.median, 100 * c.error.p90,
                          100 * c.error.signed_median, c.basis);
  }
  if (!report.lines.empty()) {
    absl::StrAppendFormat(&out, "\n%-26s %-52s %10s %10s %8s\n", "", "measurement",
                          "measured", "predicted", "error");
    for (const Line& l : report.lines) {
      absl::StrAppendFormat(&out, "%-26s %-52s %10.2f %10.2f %7.1f%%  %s\n", l.category,
                            l.what, l.measured, l.predicted,
                            100 * (l.predicted / l.measured - 1), l.unit);
    }
  }
  return out;
}

std::string FormatJson(const Report& report) {
  nlohmann::ordered_json out;
  out["categories"] = nlohmann::ordered_json::array();
  for (const Category& c : report.categories) {
    out["categories"].push_back({{"name", c.name},
                                 {"basis", c.basis},
                                 {"n", c.error.count},
                                 {"median", c.error.median},
                                 {"p90", c.error.p90},
                                 {"signed_median", c.error.signed_median}});
  }
  out["lines"] = nlohmann::ordered_json::array();
  for (const Line& l : report.lines) {
    out["lines"].push_back({{"category", l.category},
                            {"what", l.what},
                            {"measured", l.measured},
                            {"predicted", l.predicted},
                            {"unit", l.unit}});
  }
  return out.dump(2) + "\n";
}

}  // namespace shardsim::fidelity
