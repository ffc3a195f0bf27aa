#include "kh/common/yaml_json.h"

#include "kh/common/strings.h"
#include "yaml-cpp/yaml.h"

namespace kh::common {
namespace {

nlohmann::json scalarToJson(const YAML::Node& node) {
  const std::string& text = node.Scalar();
  if (node.Tag() == "!") return text;  // quoted
  if (text == "true" || text == "True" || text == "TRUE") return true;
  if (text == "false" || text == "False" || text == "FALSE") return false;
  if (text == "null" || text == "Null" || text == "~" || text.empty()) return nullptr;
  if (auto i = parseInt<int64_t>(text)) return *i;
  if (auto u = parseInt<uint64_t>(text)) return *u;
  if (text.find_first_not_of("0123456789+-.eE") == std::string::npos) {
    char* end = nullptr;
    double d = std::strtod(text.c_str(), &end);
    if (end && *end == '\0') return d;
  }
  return text;
}

}  // namespace

nlohmann::json yamlToJson(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: {
      nlohmann::json out = nlohmann::json::object();
      for (const auto& kv : node) out[kv.first.as<std::string>()] = yamlToJson(kv.second);
      return out;
    }
    case YAML::NodeType::Sequence: {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& item : node) out.push_back(yamlToJson(item));
      return out;
    }
    case YAML::NodeType::Scalar:
      return scalarToJson(node);
    default:
      return nullptr;
  }
}

absl::StatusOr<std::vector<nlohmann::json>> parseYamlDocuments(const std::string& text,
                                                               const std::string& source) {
  std::vector<nlohmann::json> out;
  try {
    for (const auto& doc : YAML::LoadAll(text)) {
      if (doc.IsNull()) continue;
      out.push_back(yamlToJson(doc));
    }
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        strCat(source, ":", e.mark.line + 1, ":", e.mark.column + 1, ": ", e.msg));
  }
  return out;
}

}  // namespace kh::common
