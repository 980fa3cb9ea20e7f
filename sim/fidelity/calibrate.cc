#include "sim/fidelity/calibrate.h"

#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/text_format.h"
#include "sim/base/status_macros.h"
#include "sim/base/units.h"
#include "sim/hardware/cluster.h"
#include "sim/scenario/scenario.h"

namespace shardsim::fidelity {
namespace {

// Writes `message` as text format under a comment `header`, so the file says
// what it is and that `shardsim calibrate` made it.
absl::Status WriteGenerated(const std::string& path, const std::string& header,
                            const google::protobuf::Message& message) {
  std::string text;
  google::protobuf::TextFormat::PrintToString(message, &text);
  std::ofstream out(path, std::ios::trunc);
  out << header << "# Written by `shardsim calibrate`; do not edit by hand, re-run it.\n"
      << "# proto-message: " << message.GetDescriptor()->full_name() << "\n"
      << text;
  out.close();
  if (!out) return absl::UnavailableError(absl::StrCat(path, ": cannot write"));
  return absl::OkStatus();
}

constexpr char kAicSource[] =
    "topologies/calibration_data/public/aiconfigurator/aic_gemm.csv "
    "(ai-dynamo/aiconfigurator@095f58a5, Apache-2.0; vLLM, CUDA graph)";

}  // namespace

const std::map<std::string, std::string>& AicGpus() {
  static const auto* gpus = new std::map<std::string, std::string>{{"a100_sxm", "A100-SXM4-80GB"},
                                                                   {"h100_sxm", "H100-SXM5-80GB"},
                                                                   {"h200_sxm", "H200-SXM5-141GB"},
                                                                   {"l40s", "L40S-48GB"},
                                                                   {"b200_sxm", "B200-180GB"}};
  return *gpus;
}

const std::vector<MeasuredMachine>& MeasuredMachines() {
  static const auto* machines =
      new std::vector<MeasuredMachine>{{"dgx_a100.textproto", "a100_dgx", "dgx_a100_measured"},
                                       {"pcie_a100_4x_nvlink_pairs.textproto",
                                        "a100_pairwise_nvlink", "a100_pcie_nvlink_pairs_measured"}};
  return *machines;
}

const std::vector<MeasuredGeneration>& MeasuredGenerations() {
  // AIConfigurator's systems (README of topologies/calibration_data/public):
  // an 8x H100 SXM and an 8x H200 SXM node (NVLink 4, third-generation
  // NVSwitch) and an 8x B200 node (NVLink 5, fourth generation). Its 8x L40S
  // PCIe box is not one: its bus bandwidth falls from 20 GB/s on 2 GPUs to
  // 5 on 4 and 1.5-2 on 8, which no single efficiency on
  // pcie_l40s_8x.textproto's links reproduces (fidelity shows its fit's
  // error), so PCIe clusters keep the default.
  static const auto* generations = new std::vector<MeasuredGeneration>{
      {"nvlink4_nvswitch3",
       {{"h100_sxm", "dgx_h100.textproto"}, {"h200_sxm", "hgx_h200.textproto"}},
       {"H100-SXM5-80GB", "H200-SXM5-141GB"}},
      {"nvlink5_nvswitch4", {{"b200_sxm", "dgx_b200.textproto"}}, {"B200-180GB"}}};
  return *generations;
}

absl::StatusOr<std::vector<cost::CollectiveSample>> LoadAicCollectives(
    const std::string& calibration_dir, const std::string& system) {
  return cost::LoadAicNcclSamples(calibration_dir + "/public/aiconfigurator/aic_nccl.csv",
                                  system, kKiB, 64 * kMiB);
}

absl::StatusOr<std::vector<cost::CollectiveSample>> LoadAicCustomAllReduce(
    const std::string& calibration_dir, const std::string& system,
    const hardware::Cluster& cluster) {
  SHARDSIM_ASSIGN_OR_RETURN(
      std::vector<cost::CollectiveSample> samples,
      cost::LoadAicCustomAllReduceSamples(
          calibration_dir + "/public/aiconfigurator/aic_custom_allreduce.csv", system,
          "vllm_graph"));
  return cost::CustomAllReduceSamples(samples, cluster);
}

absl::StatusOr<std::vector<cost::GemmSample>> LoadAicGemms(const std::string& calibration_dir) {
  return cost::LoadGemmSamples(calibration_dir + "/public/aiconfigurator/aic_gemm.csv", AicGpus());
}

absl::StatusOr<std::vector<cost::AttentionSample>> LoadAicAttention(
    const std::string& calibration_dir) {
  const std::string dir = calibration_dir + "/public/aiconfigurator/";
  return cost::LoadAttentionSamples(dir + "aic_context_attention.csv",
                                    dir + "aic_generation_attention.csv", AicGpus());
}

std::vector<cost::MeasuredGpu> FitMeasuredGpus(const v1::GpuCatalog& catalog,
                                               const std::vector<cost::GemmSample>& gemms,
                                               const std::vector<cost::AttentionSample>& attention,
                                               const v1::EfficiencyProfile& elementwise) {
  std::vector<cost::MeasuredGpu> fits;
  for (const v1::GpuSpec& gpu : catalog.gpus()) {
    std::vector<cost::GemmSample> own;
    for (const cost::GemmSample& s : gemms) {
      if (s.gpu == gpu.name() && s.dtype == v1::BF16) own.push_back(s);
    }
    if (own.empty()) continue;
    v1::EfficiencyProfile p = cost::FitGemmProfile(own, gpu, elementwise);
    p.clear_reasons();
    p.clear_derived_from();
    p.clear_attention();
    p.clear_vllm_attention();
    std::vector<cost::AttentionSample> own_attention;
    for (const cost::AttentionSample& s : attention) {
      if (s.gpu == gpu.name()) own_attention.push_back(s);
    }
    if (!own_attention.empty()) {
      *p.mutable_vllm_attention() = cost::FitAttention(own_attention, gpu);
      p.mutable_vllm_attention()->set_source(absl::StrFormat(
          "fitted to %d prefill and decode attention times measured on this GPU in vLLM "
          "(aic_context_attention.csv, aic_generation_attention.csv; Apache-2.0)",
          own_attention.size()));
    }
    p.set_source(absl::StrFormat(
        "GEMMs fitted to %d BF16 GEMM times measured on this GPU, %s; vLLM's attention "
        "(vllm_attention, not used by default) to %d attention kernel times; memory-bound kernels: %s's Vidur fit, as "
        "fractions of this GPU's HBM bandwidth (they were measured on no other GPU)",
        p.samples(), kAicSource, own_attention.size(), elementwise.gpu()));
    fits.push_back({gpu, p});
  }
  return fits;
}

absl::StatusOr<Calibration> Calibrate(const CalibrateOptions& options) {
  const std::string& data = options.calibration_dir;
  const std::string& out = options.topologies_dir;
  SHARDSIM_ASSIGN_OR_RETURN(v1::GpuCatalog catalog,
                            hardware::LoadGpuCatalog(out + "/gpus.textproto"));
  SHARDSIM_ASSIGN_OR_RETURN(std::vector<cost::OpSample> samples,
                            cost::LoadOpSamples(data + "/vidur/data/profiling/compute/a100"));
  SHARDSIM_ASSIGN_OR_RETURN(v1::GpuSpec a100, hardware::FindGpu(catalog, kVidurGpu, out));
  Calibration result;
  v1::EfficiencyProfile vidur = cost::FitProfile(samples, a100);
  vidur.set_source(
      absl::StrFormat("fitted by `shardsim calibrate` to %d op times of 8 models at tp 1-8 "
                      "(topologies/calibration_data/vidur/data/profiling/compute/a100, MIT)",
                      vidur.samples()));
  SHARDSIM_ASSIGN_OR_RETURN(std::vector<cost::GemmSample> gemms, LoadAicGemms(data));
  SHARDSIM_ASSIGN_OR_RETURN(std::vector<cost::AttentionSample> attention,
                            LoadAicAttention(data));
  result.measured_gemms = FitMeasuredGpus(catalog, gemms, attention, vidur);
  for (const cost::MeasuredGpu& m : result.measured_gemms) {
    // Vidur's op times leave attention out: A100's comes from AIConfigurator.
    if (m.spec.name() == kVidurGpu) *vidur.mutable_vllm_attention() = m.profile.vllm_attention();
  }
  int measured = 0;
  for (const v1::GpuSpec& gpu : catalog.gpus()) {
    v1::EfficiencyProfile* p = result.profiles.add_profiles();
    if (gpu.name() == kVidurGpu) {
      *p = vidur;  // measured op by op, every kind: the fuller fit
      ++measured;
      continue;
    }
    bool found = false;
    for (const cost::MeasuredGpu& m : result.measured_gemms) {
      if (m.spec.name() == gpu.name()) {
        *p = m.profile;
        found = true;
      }
    }
    if (found) {
      ++measured;
    } else {
      *p = cost::DeriveProfile(gpu, result.measured_gemms, vidur);
    }
  }

  // Collectives: fitted on both measured machines, 1 KB to 64 MB.
  std::vector<hardware::Cluster> clusters;
  clusters.reserve(MeasuredMachines().size());
  std::vector<cost::CollectiveSet> sets;
  size_t fitted_samples = 0;
  for (const MeasuredMachine& machine : MeasuredMachines()) {
    SHARDSIM_ASSIGN_OR_RETURN(hardware::Cluster cluster,
                              scenario::LoadAndCheckTopology(out + "/" + machine.topology_file,
                                                             /*with_calibration=*/false));
    clusters.push_back(std::move(cluster));
    SHARDSIM_ASSIGN_OR_RETURN(std::vector<cost::CollectiveSample> measured_times,
                              cost::LoadCollectiveSamples(data + "/vidur/data/profiling/network",
                                                          machine.vidur_platform, 64 * kMiB));
    cost::CollectiveSet set{&clusters.back(), {}};
    for (const cost::CollectiveSample& s : measured_times) {
      if (s.bytes >= kKiB) set.samples.push_back(s);
    }
    fitted_samples += set.samples.size();
    sets.push_back(set);
  }
  // The runtimes' custom all-reduce, measured on AIConfigurator's A100 node
  // (a DGX A100's wiring): the default's and the DGX A100's ONESHOT and
  // TWOSHOT entries.
  SHARDSIM_ASSIGN_OR_RETURN(std::vector<cost::CollectiveSample> a100_custom,
                            LoadAicCustomAllReduce(data, "a100_sxm", clusters.front()));
  const std::vector<cost::CollectiveSet> a100_custom_set = {{&clusters.front(), a100_custom}};
  v1::CollectiveTuning& tuning = *result.tunings.mutable_default_tuning();
  tuning = cost::FitCustomAllReduce(a100_custom_set, cost::FitCollectives(sets));
  tuning.set_source(absl::StrFormat(
      "the default by link kind, fitted by `shardsim calibrate` to %d NCCL all_reduce and "
      "send_recv times, 1 KB - 64 MB, on a DGX A100 (2-8 GPUs) and 4x A100 PCIe with NVLink "
      "pairs (topologies/calibration_data/vidur/data/profiling/network, MIT); custom "
      "all-reduce (ONESHOT, TWOSHOT) to %d vLLM custom all-reduce times on AIConfigurator's "
      "A100 node (aic_custom_allreduce.csv, CUDA graph, Apache-2.0, NVIDIA)",
      fitted_samples, a100_custom.size()));
  for (size_t i = 0; i < sets.size(); ++i) {
    v1::MachineTuning* named = result.tunings.add_machines();
    named->set_name(MeasuredMachines()[i].tuning_name);
    *named->mutable_tuning() =
        cost::FitCustomAllReduce(a100_custom_set, cost::FitCollectives({sets[i]}));
    named->mutable_tuning()->set_source(absl::StrFormat(
        "'%s', chosen by the topology: fitted by `shardsim calibrate` to %d NCCL all_reduce "
        "and send_recv times measured on %s, 1 KB - 64 MB "
        "(topologies/calibration_data/vidur/data/profiling/network, MIT); custom all-reduce "
        "as the default's",
        named->name(), sets[i].samples.size(), sets[i].cluster->name));
  }
  for (const MeasuredGeneration& generation : MeasuredGenerations()) {
    std::vector<hardware::Cluster> machines;
    machines.reserve(generation.systems.size());
    std::vector<cost::CollectiveSet> generation_sets;
    size_t count = 0;
    std::vector<std::string> systems;
    for (const auto& [system, topology_file] : generation.systems) {
      SHARDSIM_ASSIGN_OR_RETURN(hardware::Cluster cluster,
                                scenario::LoadAndCheckTopology(out + "/" + topology_file,
                                                               /*with_calibration=*/false));
      machines.push_back(std::move(cluster));
      SHARDSIM_ASSIGN_OR_RETURN(std::vector<cost::CollectiveSample> times,
                                LoadAicCollectives(data, system));
      count += times.size();
      systems.push_back(system);
      generation_sets.push_back({&machines.back(), std::move(times)});
    }
    std::vector<cost::CollectiveSet> custom_sets;
    for (size_t i = 0; i < machines.size(); ++i) {
      SHARDSIM_ASSIGN_OR_RETURN(std::vector<cost::CollectiveSample> custom,
                                LoadAicCustomAllReduce(data, systems[i], machines[i]));
      custom_sets.push_back({&machines[i], std::move(custom)});
    }
    size_t custom_count = 0;
    for (const cost::CollectiveSet& set : custom_sets) custom_count += set.samples.size();
    v1::GenerationTuning* g = result.tunings.add_generations();
    g->set_name(generation.name);
    for (const std::string& gpu : generation.gpus) g->add_gpus(gpu);
    *g->mutable_tuning() =
        cost::FitCustomAllReduce(custom_sets, cost::FitCollectives(generation_sets));
    g->mutable_tuning()->set_source(absl::StrFormat(
        "fitted by `shardsim calibrate` to %d nccl-tests all_reduce, all_gather and "
        "reduce_scatter times on 2-8 GPUs, 1 KB - 64 MB, AIConfigurator systems %s "
        "(topologies/calibration_data/public/aiconfigurator/aic_nccl.csv, Apache-2.0, NVIDIA); "
        "custom all-reduce (ONESHOT, TWOSHOT) to %d vLLM custom all-reduce times, CUDA graph "
        "(aic_custom_allreduce.csv)",
        count, absl::StrJoin(systems, ", "), custom_count));
  }
  result.summary = absl::StrFormat(
      "%s profile fitted to %d op times (GEMM max compute efficiency %.3f, half at %.0f rows, "
      "memory efficiency %.3f, launch %.1f us); %d GPUs fitted, %d derived\n"
      "collectives: launch %.1f us, step latency %.2f us, bandwidth efficiency %.3f (%d link "
      "kinds); send/recv launch %.1f us, efficiency %.3f; %d named machine fits\n",
      kVidurGpu, vidur.samples(), vidur.gemm_max_compute_efficiency(), vidur.gemm_rows_half(),
      vidur.gemm_memory_efficiency(), vidur.gemm_launch_s() * 1e6, measured,
      result.profiles.profiles_size() - measured, tuning.launch_s() * 1e6,
      tuning.step_latency_s() * 1e6, tuning.bandwidth_efficiency(), tuning.link_kinds_size(),
      tuning.p2p_launch_s() * 1e6, tuning.p2p_bandwidth_efficiency(),
      result.tunings.machines_size());
  for (const cost::MeasuredGpu& m : result.measured_gemms) {
    const v1::AttentionEfficiency& a = m.profile.vllm_attention();
    absl::StrAppendFormat(&result.summary,
                          "  %-16s GEMM (AIConfigurator BF16, %d): max %.3f, half at %.0f rows, "
                          "memory %.3f, launch %.1f us; vLLM attention (%d): prefill max %.3f, half "
                          "at %.0f tokens, memory %.3f, launch %.1f us\n",
                          m.spec.name(), m.profile.samples(),
                          m.profile.gemm_max_compute_efficiency(), m.profile.gemm_rows_half(),
                          m.profile.gemm_memory_efficiency(), m.profile.gemm_launch_s() * 1e6,
                          a.samples(), a.prefill_max_compute_efficiency(), a.prefill_tokens_half(),
                          a.memory_efficiency(), a.launch_s() * 1e6);
  }
  return result;
}

absl::Status WriteCalibration(const Calibration& calibration, const std::string& out_dir) {
  SHARDSIM_RETURN_IF_ERROR(WriteGenerated(
      out_dir + "/efficiency.textproto",
      "# Efficiency profiles of the GPUs in gpus.textproto: how close their kernels\n"
      "# come to the datasheet roofline (sim/proto/hardware.proto EfficiencyProfile).\n"
      "# Built into shardsim and found by the GPU's catalog name wherever a catalog\n"
      "# lives (rebuild after re-running calibrate).\n",
      calibration.profiles));
  return WriteGenerated(
      out_dir + "/collectives.textproto",
      "# How NCCL-style collectives behave on the links: the default by link kind,\n"
      "# named fits of measured machines that a topology may choose\n"
      "# (Topology.collective_tuning), and fits per measured link generation that\n"
      "# clusters of those GPUs take. Built into shardsim (sim/proto/hardware.proto\n"
      "# CollectiveTunings).\n",
      calibration.tunings);
}

}  // namespace shardsim::fidelity
