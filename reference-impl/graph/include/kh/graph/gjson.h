#pragma once
// The GJSON path syntax KServe's router evaluates conditions with (tidwall/gjson, SYNTAX.md), as a
// documented subset of our own. A path is compiled once, when a graph is applied, so a condition
// outside the subset is refused then, with the position of the problem, never at request time.
//
// The subset:
//  - keys separated by dots: `name.last`; `\` escapes a special character in a key: `fav\.movie`;
//  - array indexes `children.1`, the length `children.#`, and `friends.#.first` (the key taken
//    from every element, as an array);
//  - queries on arrays: `friends.#(last=="Murphy")` (the first matching element) and
//    `friends.#(age>45)#` (every one), with ==, !=, <, <=, >, >=, % (wildcard match, `*` and `?`)
//    and !%; the left side is a path in the element (empty: the element itself, `#(=="fb")`), the
//    right side a JSON string, a number, true, false or null, or a bare word taken as a string
//    (`#(decision_picker==ERROR)`, as KServe's examples write it); without an operator the query
//    keeps elements where the path exists (`#(nets.#(=="fb"))`);
//  - `@this` (the current value) and multipath arrays `[p1,p2]` of paths on the current value,
//    so `[@this].#(...)` queries a whole document as a one-element array.
// Not in the subset: key wildcards (`child*`, `c?ildren`), other modifiers (`@reverse`, ...),
// multipath objects `{...}`, pipes `|`, literals `!true`.

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace kh::graph {

class GjsonPath {
 public:
  /**
   * Compiles `path`. @return InvalidArgument "gjson path 'p': <problem> at offset N" for a path
   * outside the subset.
   */
  static absl::StatusOr<GjsonPath> compile(std::string_view path);

  /** The value the path selects in `doc`, or nullopt when it selects nothing. */
  std::optional<nlohmann::json> get(const nlohmann::json& doc) const;
  /** GJSON's Result.Exists(): whether the path selects anything. */
  bool exists(const nlohmann::json& doc) const { return get(doc).has_value(); }

  const std::string& text() const { return text_; }

  struct Node;  // the compiled path (public so that the implementation's helpers can hold it)

 private:
  std::string text_;
  std::shared_ptr<const Node> root_;
};

/** GJSON's wildcard match of `%`: `*` any run of characters, `?` one character. */
bool wildcardMatch(std::string_view text, std::string_view pattern);

}  // namespace kh::graph
