#pragma once
// JSON text in and out for values that came from outside the process. nlohmann's defaults throw
// on both sides in ways a server must not: dump() throws on a string that is not UTF-8 (a Host
// header, a percent-decoded path, a YAML or protobuf body can carry such bytes), and although
// parse() is iterative, dump(), copies and comparisons recurse, so a body of a million '['
// overflows the stack.

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace kh::common {

/** The deepest nesting parseJson() accepts. No inference request or Kubernetes object comes near. */
inline constexpr int kMaxJsonDepth = 1000;

/** True when no array or object in `text` nests deeper than `limit` (exact for valid JSON). */
bool jsonNestingWithin(std::string_view text, int limit = kMaxJsonDepth);

/**
 * Parses one JSON text without throwing.
 * @return InvalidArgument with nlohmann's message (a syntax error, invalid UTF-8, or a number
 *   beyond a double, "1e400"), or "nested deeper than 1000 levels".
 */
absl::StatusOr<nlohmann::json> parseJson(std::string_view text);

/**
 * dump() that never throws: bytes that are not UTF-8 become U+FFFD, as Go's encoding/json
 * (so Kubernetes and Knative) writes them. Every JSON text we write goes through here.
 */
std::string jsonText(const nlohmann::json& value, int indent = -1);

}  // namespace kh::common
