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

namespace {

void emit(YAML::Emitter& out, const nlohmann::json& value) {
  switch (value.type()) {
    case nlohmann::json::value_t::object:
      out << YAML::BeginMap;
      for (const auto& [k, v] : value.items()) {
        out << YAML::Key << k << YAML::Value;
        emit(out, v);
      }
      out << YAML::EndMap;
      break;
    case nlohmann::json::value_t::array:
      out << YAML::BeginSeq;
      for (const auto& v : value) emit(out, v);
      out << YAML::EndSeq;
      break;
    case nlohmann::json::value_t::string: {
      const auto& s = value.get_ref<const std::string&>();
      // Quote strings a YAML reader would otherwise type (true, 1, null, ...).
      bool plain = false;
      try {
        auto typed = yamlToJson(YAML::Load(s));
        plain = !s.empty() && typed.is_string() && typed.get<std::string>() == s;
      } catch (const YAML::Exception&) {
      }
      if (plain) out << s;
      else out << YAML::DoubleQuoted << s;
      break;
    }
    case nlohmann::json::value_t::null: out << YAML::Null; break;
    case nlohmann::json::value_t::boolean: out << value.get<bool>(); break;
    case nlohmann::json::value_t::number_integer: out << value.get<int64_t>(); break;
    case nlohmann::json::value_t::number_unsigned: out << value.get<uint64_t>(); break;
    default: out << value.dump(); break;  // floats: JSON's shortest round-trip form
  }
}

}  // namespace

std::string jsonToYaml(const nlohmann::json& value) {
  YAML::Emitter out;
  emit(out, value);
  return std::string(out.c_str()) + "\n";
}

}  // namespace kh::common
