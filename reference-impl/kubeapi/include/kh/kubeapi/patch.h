#pragma once
// The patch formats the API takes: JSON merge patch (RFC 7386) and JSON patch (RFC 6902).
// Server-side apply and strategic merge are decided by ObjectStore::patch on top of these.

#include <string_view>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace kh::kubeapi {

/** The Content-Type of a PATCH request. */
enum class PatchType {
  kMerge,           // application/merge-patch+json
  kJson,            // application/json-patch+json
  kStrategicMerge,  // application/strategic-merge-patch+json
  kApply,           // application/apply-patch+yaml (server-side apply)
};

/**
 * The patch type of a Content-Type (parameters such as "; charset=utf-8" ignored).
 * @return 415 UnsupportedMediaType for anything else.
 */
absl::StatusOr<PatchType> patchTypeOf(std::string_view content_type);

/**
 * RFC 7386: object members of `patch` are merged recursively into `target`, null removes a
 * member, anything else (arrays included) replaces. A non-object patch replaces the target.
 */
nlohmann::json applyMergePatch(const nlohmann::json& target, const nlohmann::json& patch);

/**
 * RFC 6902: applies the operations of `patch` (an array of {op, path, value|from}) in order:
 * add, remove, replace, move, copy and test, with JSON Pointer paths (~0 is '~', ~1 is '/', "-"
 * is past the end of an array). All or nothing: `target` is not modified.
 * @return BadRequest (400) for a malformed patch, 422 Invalid when an operation cannot apply
 *         (a missing path, or a failed test: "testing value /spec/x failed").
 */
absl::StatusOr<nlohmann::json> applyJsonPatch(const nlohmann::json& target,
                                              const nlohmann::json& patch);

}  // namespace kh::kubeapi
