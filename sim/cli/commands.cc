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

int CalibrateMain(const Args& args) {
  fidelity::CalibrateOptions options;
  options.calibration_dir = args.calibration_dir;
  const std::string out = args.out.empty() ? "topologies" : args.out;
  std::error_code error;
  if (!std::filesystem::is_directory(options.calibration_dir + "/vidur", error)) {
    return Fail("calibrate", absl::NotFoundError(absl::StrCat(
        options.calibration_dir,
        ": not a calibration folder (no vidur/ inside; see --calibration)")));
  }
  options.topologies_dir = out;
  absl::StatusOr<fidelity::Calibration> calibration = fidelity::Calibrate(options);
  if (!calibration.ok()) return Fail("calibrate", calibration.status());
  absl::Status written = fidelity::WriteCalibration(*calibration, out);
  if (!written.ok()) return Fail("calibrate", written);
  std::cout << out << "/efficiency.textproto, " << out << "/collectives.textproto:\n"
            << calibration->summary;
  return 0;
}

int FidelityMain(const Args& args) {
  fidelity::Options options;
  options.calibration_dir = args.calibration_dir;
  options.end_to_end = !args.no_end_to_end;
  const std::string format = args.format.empty() ? "text" : args.format;
  options.shardsim_binary = "/proc/self/exe";
  // A child cannot exec /proc/self/exe of the parent through popen's shell
  // (it would be the shell); resolve it now.
  char path[4096];
  const ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
  if (n > 0) options.shardsim_binary = std::string(path, static_cast<size_t>(n));
  absl::StatusOr<fidelity::Report> report = fidelity::Run(options);
  if (!report.ok()) return Fail("fidelity", report.status());
  std::cout << (format == "json" ? fidelity::FormatJson(*report) : fidelity::Format(*report));
  return 0;
}

}  // namespace shardsim::cli
