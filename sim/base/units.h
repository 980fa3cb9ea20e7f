// Sizes of numeric formats, and how bytes, counts and times are printed.
//
// Bytes are int64_t everywhere. Printed sizes use binary units (GiB = 2^30
// bytes), as nvidia-smi, PyTorch and vLLM do.
#ifndef SHARDSIM_SIM_BASE_UNITS_H_
#define SHARDSIM_SIM_BASE_UNITS_H_

#include <cstdint>
#include <string>

#include "sim/proto/model.pb.h"

namespace shardsim {

inline constexpr int64_t kKiB = int64_t{1} << 10;
inline constexpr int64_t kMiB = int64_t{1} << 20;
inline constexpr int64_t kGiB = int64_t{1} << 30;

// Bits per element of `dtype`; 0 for DTYPE_UNSPECIFIED.
int DTypeBits(v1::DType dtype);

// True for the integer formats that carry group-wise scales (INT8, INT4).
bool IsGroupQuantized(v1::DType dtype);

// "BF16", "INT4", ...
std::string DTypeName(v1::DType dtype);

// Bytes taken by `elements` values of `dtype`, rounded up to a whole byte.
int64_t BytesOf(int64_t elements, v1::DType dtype);

// "14.96 GiB", "512.00 MiB", "960 B": two decimals in the largest unit that
// keeps the number at least 1.
std::string FormatBytes(int64_t bytes);

// "16,060,522,496".
std::string FormatCount(int64_t count);

// "12.3 ms", "1.50 s", "850 us".
std::string FormatSeconds(double seconds);

}  // namespace shardsim

#endif  // SHARDSIM_SIM_BASE_UNITS_H_
