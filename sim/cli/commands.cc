#include "sim/cli/commands.h"

#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "sim/base/units.h"
#include "sim/cli/cli_util.h"
#include "sim/fidelity/calibrate.h"
#include "sim/fidelity/fidelity.h"
#include "sim/scenario/scenario.h"

namespace shardsim::cli {

int CalibrateMain(int argc, char** argv) {
  fidelity::CalibrateOptions options;
  std::string out = "topologies";
  for (int i = 2; i < argc; ++i) {
    if (!TakeFlag(argc, argv, &i, "--calibration", &options.calibration_dir) &&
        !TakeFlag(argc, argv, &i, "--out", &out)) {
      std::cerr << "usage: shardsim calibrate [--calibration=DIR] [--out=DIR]\n";
      return kExitUsage;
    }
  }
  std::error_code error;
  if (!std::filesystem::is_directory(options.calibration_dir + "/vidur", error)) {
    return Fail(absl::NotFoundError(absl::StrCat(
        options.calibration_dir,
        ": not a calibration folder (no vidur/ inside; see --calibration)")));
  }
  options.topologies_dir = out;
  absl::StatusOr<fidelity::Calibration> calibration = fidelity::Calibrate(options);
  if (!calibration.ok()) return Fail(calibration.status());
  absl::Status written = fidelity::WriteCalibration(*calibration, out);
  if (!written.ok()) return Fail(written);
  std::cout << out << "/efficiency.textproto, " << out << "/collectives.textproto:\n"
            << calibration->summary;
  return 0;
}

int FidelityMain(int argc, char** argv) {
  fidelity::Options options;
  std::string format = "text";
  for (int i = 2; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--no-end-to-end") {
      options.end_to_end = false;
    } else if (!TakeFlag(argc, argv, &i, "--calibration", &options.calibration_dir) &&
               !TakeFlag(argc, argv, &i, "--format", &format)) {
      std::cerr << "usage: shardsim fidelity [--calibration=DIR] [--no-end-to-end] "
                   "[--format=text|json]\n";
      return kExitUsage;
    }
  }
  if (format != "text" && format != "json") {
    std::cerr << "shardsim fidelity: --format must be text or json, not '" << format << "'\n";
    return kExitUsage;
  }
  options.shardsim_binary = "/proc/self/exe";
  // A child cannot exec /proc/self/exe of the parent through popen's shell
  // (it would be the shell); resolve it now.
  char path[4096];
  const ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
  if (n > 0) options.shardsim_binary = std::string(path, static_cast<size_t>(n));
  absl::StatusOr<fidelity::Report> report = fidelity::Run(options);
  if (!report.ok()) return Fail(report.status());
  std::cout << (format == "json" ? fidelity::FormatJson(*report) : fidelity::Format(*report));
  return 0;
}

}  // namespace shardsim::cli
