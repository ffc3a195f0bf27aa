#pragma once
// Label and field selectors, as the labelSelector and fieldSelector query parameters carry them.

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "kh/kubeapi/kinds.h"
#include "nlohmann/json.hpp"

namespace kh::kubeapi {

/**
 * A label selector: comma-separated requirements, all of which must hold:
 * `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k` (exists), `!k` (does not exist).
 * As in Kubernetes, `!=` and `notin` also match objects without the label. Empty matches all.
 */
class LabelSelector {
 public:
  /** @return BadRequest (400) "unable to parse requirement: ..." when `text` does not parse. */
  static absl::StatusOr<LabelSelector> parse(std::string_view text);

  /** Whether `labels` (metadata.labels: an object, or null when absent) satisfies it. */
  bool matches(const nlohmann::json& labels) const;
  bool empty() const { return requirements_.empty(); }

 private:
  struct Requirement {
    enum class Op { kEquals, kNotEquals, kIn, kNotIn, kExists, kNotExists };
    std::string key;
    Op op = Op::kExists;
    std::vector<std::string> values;
  };
  std::vector<Requirement> requirements_;
};

/**
 * A field selector: comma-separated `field=value`, `field==value` or `field!=value` (with `\,`,
 * `\=` and `\\` escapes). The fields a kind supports are metadata.name, metadata.namespace and
 * those in KindSpec::field_selectors; they are read from the object by their dotted path (a
 * missing field reads as "", a non-string as its JSON text).
 */
class FieldSelector {
 public:
  /** @return BadRequest (400) for a syntax error or a field `spec` does not support. */
  static absl::StatusOr<FieldSelector> parse(std::string_view text, const KindSpec& spec);

  bool matches(const nlohmann::json& object) const;
  bool empty() const { return requirements_.empty(); }

 private:
  struct Requirement {
    std::vector<std::string> path;
    bool equals = true;
    std::string value;
  };
  std::vector<Requirement> requirements_;
};

/** Both selectors of a list or watch. */
struct Selector {
  LabelSelector labels;
  FieldSelector fields;

  /** Whether `object` satisfies both. */
  bool matches(const nlohmann::json& object) const;
  bool empty() const { return labels.empty() && fields.empty(); }

  /** Parses both query parameters (either may be empty). */
  static absl::StatusOr<Selector> parse(std::string_view label_selector,
                                        std::string_view field_selector, const KindSpec& spec);
};

}  // namespace kh::kubeapi
