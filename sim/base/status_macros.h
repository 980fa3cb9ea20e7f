// Early-return helpers for absl::Status, which Abseil 20220623 does not ship.
//
//   SHARDSIM_RETURN_IF_ERROR(LoadFile(path, &text));
//   SHARDSIM_ASSIGN_OR_RETURN(ModelSpec spec, LoadModel(path));
#ifndef SHARDSIM_SIM_BASE_STATUS_MACROS_H_
#define SHARDSIM_SIM_BASE_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define SHARDSIM_RETURN_IF_ERROR(expr)         \
  do {                                         \
    const absl::Status shardsim_status_ = (expr); \
    if (!shardsim_status_.ok()) return shardsim_status_; \
  } while (0)

#define SHARDSIM_CONCAT_INNER_(a, b) a##b
#define SHARDSIM_CONCAT_(a, b) SHARDSIM_CONCAT_INNER_(a, b)

#define SHARDSIM_ASSIGN_OR_RETURN(lhs, rexpr) \
  SHARDSIM_ASSIGN_OR_RETURN_IMPL_(SHARDSIM_CONCAT_(shardsim_or_, __LINE__), lhs, rexpr)

#define SHARDSIM_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                   \
  if (!statusor.ok()) return std::move(statusor).status();   \
  lhs = std::move(statusor).value()

#endif  // SHARDSIM_SIM_BASE_STATUS_MACROS_H_
