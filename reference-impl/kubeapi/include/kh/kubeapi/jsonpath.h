#pragma once
// The subset of Kubernetes JSONPath that printer columns use, and nothing more:
//   .a.b            fields (also ['a.b'] with quotes, where "\." is a literal dot)
//   [0], [-1]       array index (negative counts from the end)
//   [*], .*         every element of an array or value of an object
//   [?(@.k=='v')]   filter the elements of an array: @.path == or != a literal ('str', "str",
//                   number, true, false, null), or @.path alone (the field exists)
// An optional surrounding {...} is accepted, as in kubectl's `-o jsonpath={.a.b}`.

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace kh::kubeapi {

class JsonPath {
 public:
  /** @return InvalidArgument naming the position for an expression outside the subset. */
  static absl::StatusOr<JsonPath> parse(std::string_view expression);

  /**
   * Every value the path selects in `root`, in document order. The pointers point into `root`
   * and are valid while it is unchanged. A missing field selects nothing (no error).
   */
  std::vector<const nlohmann::json*> evaluate(const nlohmann::json& root) const;

  /** The first value selected, or null when nothing is. */
  const nlohmann::json* first(const nlohmann::json& root) const;

 private:
  struct Step {
    enum class Type { kField, kIndex, kWildcard, kFilter };
    Type type = Type::kField;
    std::string field;                     // kField
    int64_t index = 0;                     // kIndex
    std::vector<std::string> filter_path;  // kFilter: the fields after '@'
    enum class Op { kExists, kEq, kNe } op = Op::kExists;
    nlohmann::json literal;  // kFilter with kEq / kNe
  };
  std::vector<Step> steps_;
};

}  // namespace kh::kubeapi
