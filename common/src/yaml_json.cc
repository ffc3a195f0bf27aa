#include "kh/common/yaml_json.h"

#include <sstream>
#include <stdexcept>

#include "kh/common/json.h"
#include "kh/common/strings.h"
#include "yaml-cpp/eventhandler.h"
#include "yaml-cpp/yaml.h"

namespace kh::common {
namespace {

// Limits on what one manifest may expand to: aliases can make a few bytes of YAML into an
// exponential tree ("billion laughs"), or a cycle.
constexpr int kMaxDepth = 100;
constexpr int64_t kMaxValues = 1'000'000;

// Records where each document starts. yaml-cpp 0.7's parser can stop advancing on some malformed
// input and then report the same document forever (YAML::LoadAll never returns); a document
// that starts where the previous one did is that case.
class DocumentStarts final : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark& mark) override {
    stuck_ = count_ > 0 && mark.pos <= last_.pos;
    last_ = mark;
    ++count_;
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}

  bool stuck() const { return stuck_; }
  const YAML::Mark& last() const { return last_; }

 private:
  YAML::Mark last_;
  int64_t count_ = 0;
  bool stuck_ = false;
};

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

namespace {
nlohmann::json convert(const YAML::Node& node, int depth, int64_t& budget) {
  if (depth > kMaxDepth || --budget < 0) {
    throw std::length_error(strCat("YAML nests deeper than ", kMaxDepth, " levels or expands to more than ",
                                   kMaxValues, " values (through aliases)"));
  }
  switch (node.Type()) {
    case YAML::NodeType::Map: {
      nlohmann::json out = nlohmann::json::object();
      for (const auto& kv : node) out[kv.first.as<std::string>()] = convert(kv.second, depth + 1, budget);
      return out;
    }
    case YAML::NodeType::Sequence: {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& item : node) out.push_back(convert(item, depth + 1, budget));
      return out;
    }
    case YAML::NodeType::Scalar:
      return scalarToJson(node);
    default:
      return nullptr;
  }
}
}  // namespace

nlohmann::json yamlToJson(const YAML::Node& node) {
  int64_t budget = kMaxValues;
  return convert(node, 0, budget);
}

absl::StatusOr<std::vector<nlohmann::json>> parseYamlDocuments(const std::string& text,
                                                               const std::string& source) {
  std::vector<nlohmann::json> out;
  try {
    {
      std::stringstream input(text);
      YAML::Parser parser(input);
      DocumentStarts starts;
      while (parser.HandleNextDocument(starts)) {
        if (starts.stuck()) {
          return absl::InvalidArgumentError(strCat(source, ":", starts.last().line + 1, ":",
                                                   starts.last().column + 1,
                                                   ": malformed YAML (the parser cannot get past this point)"));
        }
      }
    }
    int64_t budget = kMaxValues;
    for (const auto& doc : YAML::LoadAll(text)) {
      if (doc.IsNull()) continue;
      out.push_back(convert(doc, 0, budget));
    }
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        strCat(source, ":", e.mark.line + 1, ":", e.mark.column + 1, ": ", e.msg));
  } catch (const std::length_error& e) {
    return absl::InvalidArgumentError(strCat(source, ": ", e.what()));
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
    default: out << common::jsonText(value); break;  // floats: JSON's shortest round-trip form
  }
}

}  // namespace

std::string jsonToYaml(const nlohmann::json& value) {
  YAML::Emitter out;
  emit(out, value);
  return std::string(out.c_str()) + "\n";
}

}  // namespace kh::common
