#pragma once
// Server-side printing: metav1.Table for `kubectl get` (requested with an Accept of
// application/json;as=Table;v=v1;g=meta.k8s.io), built from a kind's printer columns as
// kube-apiserver's table convertors do. kubectl prints cells verbatim, so ages are rendered here.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kh/common/time_source.h"
#include "kh/kubeapi/jsonpath.h"
#include "kh/kubeapi/kinds.h"
#include "nlohmann/json.hpp"

namespace kh::kubeapi {

/**
 * Kubernetes' duration.HumanDuration: "45s" under 2 minutes, "7m5s"/"7m" under 10 minutes, "25m"
 * under 3 hours, "5h10m"/"5h" under 8 hours, "20h" under 2 days, "3d4h"/"3d" under 8 days, "30d"
 * under 2 years, "3y15d"/"3y" under 8 years, "9y" beyond; "0s" up to 2 s in the future,
 * "<invalid>" further ahead.
 */
std::string humanDuration(std::chrono::nanoseconds d);

/** HumanDuration of `now - t` for an RFC3339 time `t`; "<unknown>" when empty or unparsable. */
std::string ageOf(std::string_view rfc3339, common::SystemTime now);

/** What each row carries as `object` (the includeObject query parameter). */
enum class IncludeObject { kNone, kMetadata, kObject };

/** The parts of a Table request that change its shape. */
struct TableOptions {
  /** "meta.k8s.io/v1" or "meta.k8s.io/v1beta1", as negotiated from the Accept header. */
  std::string api_version = "meta.k8s.io/v1";
  IncludeObject include_object = IncludeObject::kMetadata;
  /** Omit columnDefinitions (every watch event after the first). */
  bool no_headers = false;
};

/**
 * Renders Tables for one kind. Its JSONPaths are parsed once, at construction; a column whose
 * path does not parse gives null cells. Immutable after construction, so thread-safe.
 */
class TablePrinter {
 public:
  explicit TablePrinter(const KindSpec& spec);

  /** The columnDefinitions array. */
  nlohmann::json columnDefinitions() const;

  /** One row ({"cells":[...], "object":...}) for `object` at time `now`. */
  nlohmann::json row(const nlohmann::json& object, common::SystemTime now,
                     IncludeObject include) const;

  /** A whole Table of `objects`, with metadata.resourceVersion `resource_version`. */
  nlohmann::json table(const std::vector<std::shared_ptr<const nlohmann::json>>& objects,
                       uint64_t resource_version, common::SystemTime now,
                       const TableOptions& options) const;

  /** A one-row Table, as a watch event's object or the answer to a GET of one object. */
  nlohmann::json table(const nlohmann::json& object, uint64_t resource_version,
                       common::SystemTime now, const TableOptions& options) const;

 private:
  nlohmann::json cell(size_t column, const nlohmann::json& object, common::SystemTime now) const;

  std::vector<PrinterColumn> columns_;
  std::vector<std::unique_ptr<JsonPath>> paths_;  // null where `cell` is used or parse failed
};

}  // namespace kh::kubeapi
