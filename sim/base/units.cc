#include "sim/base/units.h"

#include <cstdlib>

#include "absl/strings/str_format.h"

namespace shardsim {

int DTypeBits(v1::DType dtype) {
  switch (dtype) {
    case v1::FP32:
      return 32;
    case v1::BF16:
    case v1::FP16:
      return 16;
    case v1::FP8:
    case v1::INT8:
      return 8;
    case v1::INT4:
      return 4;
    default:
      return 0;
  }
}

bool IsGroupQuantized(v1::DType dtype) {
  return dtype == v1::INT8 || dtype == v1::INT4;
}

std::string DTypeName(v1::DType dtype) { return v1::DType_Name(dtype); }

int64_t BytesOf(int64_t elements, v1::DType dtype) {
  return (elements * DTypeBits(dtype) + 7) / 8;
}

std::string FormatBytes(int64_t bytes) {
  const int64_t magnitude = std::llabs(bytes);
  if (magnitude >= kGiB) {
    return absl::StrFormat("%.2f GiB", static_cast<double>(bytes) / kGiB);
  }
  if (magnitude >= kMiB) {
    return absl::StrFormat("%.2f MiB", static_cast<double>(bytes) / kMiB);
  }
  if (magnitude >= kKiB) {
    return absl::StrFormat("%.2f KiB", static_cast<double>(bytes) / kKiB);
  }
  return absl::StrFormat("%d B", bytes);
}

std::string FormatCount(int64_t count) {
  std::string digits = absl::StrFormat("%d", std::llabs(count));
  std::string out;
  const int n = static_cast<int>(digits.size());
  for (int i = 0; i < n; ++i) {
    if (i > 0 && (n - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[static_cast<size_t>(i)]);
  }
  return count < 0 ? "-" + out : out;
}

std::string FormatSeconds(double seconds) {
  const double magnitude = seconds < 0 ? -seconds : seconds;
  if (magnitude == 0) return "0 s";
  if (magnitude >= 1.0) return absl::StrFormat("%.2f s", seconds);
  if (magnitude >= 1e-3) return absl::StrFormat("%.2f ms", seconds * 1e3);
  return absl::StrFormat("%.1f us", seconds * 1e6);
}

}  // namespace shardsim
