#pragma once
// YAML documents as JSON values: plain scalars get YAML 1.2 core types (bool, null, int, float),
// quoted scalars stay strings. Manifests, scenarios and conformance cases are all read this way.

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace YAML {
class Node;
}

namespace kh::common {

/**
 * Converts one parsed YAML node. Throws std::length_error beyond 100 levels of nesting or
 * 1,000,000 values (aliases can expand a small text exponentially, or loop).
 */
nlohmann::json yamlToJson(const YAML::Node& node);

/**
 * Parses every document of a YAML (or JSON) text.
 * @return InvalidArgument "source:line:column: message" on a syntax error, on input where
 *   yaml-cpp's parser stops advancing (it would report the same document forever), and beyond
 *   yamlToJson()'s limits.
 */
absl::StatusOr<std::vector<nlohmann::json>> parseYamlDocuments(const std::string& text,
                                                               const std::string& source);

/** Writes a JSON value as block-style YAML (strings quoted where YAML would retype them). */
std::string jsonToYaml(const nlohmann::json& value);

}  // namespace kh::common
