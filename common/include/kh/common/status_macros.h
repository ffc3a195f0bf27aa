#pragma once
// Error propagation helpers. Errors cross component boundaries as absl::Status values; these
// macros keep call sites short (the installed Abseil 20220623 has no status_macros.h).

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define KH_STATUS_CONCAT_INNER_(a, b) a##b
#define KH_STATUS_CONCAT_(a, b) KH_STATUS_CONCAT_INNER_(a, b)

// KH_RETURN_IF_ERROR(expr): returns the status from the enclosing function when it is not OK.
#define KH_RETURN_IF_ERROR(expr)                      \
  do {                                                \
    ::absl::Status kh_status_ = (expr);               \
    if (!kh_status_.ok()) return kh_status_;          \
  } while (false)

// KH_ASSIGN_OR_RETURN(lhs, expr): evaluates a StatusOr; on error returns its status, otherwise
// moves the value into `lhs` (which may be a declaration such as `auto x`).
#define KH_ASSIGN_OR_RETURN(lhs, expr) \
  KH_ASSIGN_OR_RETURN_IMPL_(KH_STATUS_CONCAT_(kh_statusor_, __LINE__), lhs, expr)
#define KH_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.ok()) return tmp.status();             \
  lhs = std::move(tmp).value()
