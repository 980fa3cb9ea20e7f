#include "sim/cli/commands.h"

#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "google/protobuf/text_format.h"
#include "sim/base/units.h"
#include "sim/cli/cli_util.h"
#include "sim/cost/calibration.h"
#include "sim/cost/roofline.h"
#include "sim/fidelity/fidelity.h"
#include "sim/scenario/scenario.h"

namespace shardsim::cli {
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

}  // namespace

int CalibrateMain(int argc, char** argv) {
  std::string calibration = "../shared/calibration";
  std::string out = "topologies";
  for (int i = 2; i < argc; ++i) {
    if (!TakeFlag(argc, argv, &i, "--calibration", &calibration) &&
        !TakeFlag(argc, argv, &i, "--out", &out)) {
      std::cerr << "usage: shardsim calibrate [--calibration=DIR] [--out=DIR]\n";
      return kExitUsage;
    }
  }
  std::error_code error;
  if (!std::filesystem::is_directory(calibration + "/vidur", error)) {
    return Fail(absl::NotFoundError(absl::StrCat(
        calibration, ": not a calibration folder (no vidur/ inside; see --calibration)")));
  }
  absl::StatusOr<v1::GpuCatalog> catalog =
      hardware::LoadGpuCatalog(out + "/gpus.textproto");
  if (!catalog.ok()) return Fail(catalog.status());
  absl::StatusOr<std::vector<cost::OpSample>> samples =
      cost::LoadOpSamples(calibration + "/vidur/data/profiling/compute/a100");
  if (!samples.ok()) return Fail(samples.status());
  // Vidur's "a100" profiles ran on A100 80GB SXM parts (DGX A100).
  const std::string measured_gpu = "A100-SXM4-80GB";
  absl::StatusOr<v1::GpuSpec> a100 = hardware::FindGpu(*catalog, measured_gpu, out);
  if (!a100.ok()) return Fail(a100.status());
  v1::EfficiencyProfile fitted = cost::FitProfile(*samples, *a100);
  fitted.set_source(absl::StrFormat(
      "fitted by `shardsim calibrate` to %d op times of 8 models at tp 1-8 "
      "(shared/calibration/vidur/data/profiling/compute/a100, MIT)",
      fitted.samples()));
  v1::EfficiencyProfiles profiles;
  for (const v1::GpuSpec& gpu : catalog->gpus()) {
    *profiles.add_profiles() = gpu.name() == measured_gpu
                                   ? fitted
                                   : cost::DeriveProfile(fitted, *a100, gpu);
  }
  const std::string efficiency_path = out + "/efficiency.textproto";
  absl::Status written = WriteGenerated(
      efficiency_path,
      "# Efficiency profiles of the GPUs in gpus.textproto: how close their kernels\n"
      "# come to the datasheet roofline (sim/proto/hardware.proto EfficiencyProfile).\n",
      profiles);
  if (!written.ok()) return Fail(written);

  // Collectives: fitted on both measured machines, 1 KB to 64 MB.
  std::vector<cost::CollectiveSet> sets;
  std::vector<hardware::Cluster> clusters;
  clusters.reserve(2);
  size_t fitted_samples = 0;
  for (const auto& [topology, platform] :
       {std::pair<std::string, std::string>{"dgx_a100.textproto", "a100_dgx"},
        {"pcie_a100_4x_nvlink_pairs.textproto", "a100_pairwise_nvlink"}}) {
    absl::StatusOr<hardware::Cluster> cluster =
        scenario::LoadAndCheckTopology(out + "/" + topology, /*with_calibration=*/false);
    if (!cluster.ok()) return Fail(cluster.status());
    clusters.push_back(*std::move(cluster));
    absl::StatusOr<std::vector<cost::CollectiveSample>> measured = cost::LoadCollectiveSamples(
        calibration + "/vidur/data/profiling/network", platform, 64 * kMiB);
    if (!measured.ok()) return Fail(measured.status());
    cost::CollectiveSet set{&clusters.back(), {}};
    for (const cost::CollectiveSample& s : *measured) {
      if (s.bytes >= kKiB) set.samples.push_back(s);
    }
    fitted_samples += set.samples.size();
    sets.push_back(set);
  }
  v1::CollectiveTunings tunings;
  v1::CollectiveTuning& tuning = *tunings.mutable_default_tuning();
  tuning = cost::FitCollectives(sets);
  tuning.set_source(absl::StrFormat(
      "fitted by `shardsim calibrate` to %d NCCL all_reduce and send_recv times, 1 KB - 64 MB, "
      "on a DGX A100 (2-8 GPUs) and 4x A100 PCIe with NVLink pairs "
      "(shared/calibration/vidur/data/profiling/network, MIT): the default for clusters "
      "that were not measured",
      fitted_samples));
  for (const cost::CollectiveSet& set : sets) {
    v1::MachineTuning* machine = tunings.add_machines();
    machine->set_topology(set.cluster->name);
    *machine->mutable_tuning() = cost::FitCollectives({set});
    machine->mutable_tuning()->set_source(absl::StrFormat(
        "fitted by `shardsim calibrate` to %d NCCL all_reduce and send_recv times measured "
        "on this machine, 1 KB - 64 MB (shared/calibration/vidur/data/profiling/network, MIT)",
        set.samples.size()));
  }
  const std::string collectives_path = out + "/collectives.textproto";
  written = WriteGenerated(
      collectives_path,
      "# How NCCL-style collectives behave on the links of every topology here\n"
      "# that does not set its own (sim/proto/hardware.proto CollectiveTunings).\n",
      tunings);
  if (!written.ok()) return Fail(written);
  std::cout << absl::StrFormat(
      "%s: %s profile fitted to %d op times (GEMM max compute efficiency %.3f, "
      "half at %.0f rows, memory efficiency %.3f, launch %.1f us); %d GPUs derived\n"
      "%s: launch %.1f us, step latency %.2f us, bandwidth efficiency %.3f (%d link "
      "kinds); send/recv launch %.1f us, efficiency %.3f\n",
      efficiency_path, measured_gpu, fitted.samples(), fitted.gemm_max_compute_efficiency(),
      fitted.gemm_rows_half(), fitted.gemm_memory_efficiency(), fitted.gemm_launch_s() * 1e6,
      profiles.profiles_size() - 1, collectives_path, tuning.launch_s() * 1e6,
      tuning.step_latency_s() * 1e6, tuning.bandwidth_efficiency(), tuning.link_kinds_size(),
      tuning.p2p_launch_s() * 1e6, tuning.p2p_bandwidth_efficiency());
  return 0;
}

int FidelityMain(int argc, char** argv) {
  fidelity::Options options;
  for (int i = 2; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--no-end-to-end") {
      options.end_to_end = false;
    } else if (!TakeFlag(argc, argv, &i, "--calibration", &options.calibration_dir)) {
      std::cerr << "usage: shardsim fidelity [--calibration=DIR] [--no-end-to-end]\n";
      return kExitUsage;
    }
  }
  options.shardsim_binary = "/proc/self/exe";
  // A child cannot exec /proc/self/exe of the parent through popen's shell
  // (it would be the shell); resolve it now.
  char path[4096];
  const ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
  if (n > 0) options.shardsim_binary = std::string(path, static_cast<size_t>(n));
  absl::StatusOr<fidelity::Report> report = fidelity::Run(options);
  if (!report.ok()) return Fail(report.status());
  std::cout << fidelity::Format(*report);
  return 0;
}

}  // namespace shardsim::cli
