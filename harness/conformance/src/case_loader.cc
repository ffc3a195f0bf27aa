// Suite files: YAML turned into JSON (typed scalars), validated, and datatype matrices expanded.

#include <filesystem>
#include <fstream>
#include <sstream>

#include "kh/common/files.h"
#include "kh/common/strings.h"
#include "kh/common/yaml_json.h"
#include "kh/conformance/conformance.h"
#include "kh/protocols/tensor.h"
#include "yaml-cpp/yaml.h"

namespace kh::conformance {
namespace {

using nlohmann::json;

std::string where(const std::string& name, const YAML::Mark& mark) {
  return common::strCat(name, ":", mark.line + 1, ":", mark.column + 1);
}

const char* kRequiredFields[] = {"id", "section", "tag", "level"};

void replaceAll(json& node, const std::string& from, const std::string& to) {
  if (node.is_string()) {
    std::string s = node.get<std::string>();
    size_t pos = 0;
    while ((pos = s.find(from, pos)) != std::string::npos) {
      s.replace(pos, from.size(), to);
      pos += to.size();
    }
    node = s;
  } else if (node.is_structured()) {
    for (auto& child : node) replaceAll(child, from, to);
  }
}

}  // namespace

absl::StatusOr<std::vector<Case>> parseSuite(const std::string& yaml_text, const std::string& name) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(common::strCat(where(name, e.mark), ": ", e.msg));
  }
  if (!root.IsMap()) return absl::InvalidArgumentError(common::strCat(name, ": not a YAML mapping"));
  std::string protocol = root["protocol"] ? root["protocol"].as<std::string>("") : "";
  if (protocol != "v1" && protocol != "v2" && protocol != "grpc" && protocol != "graph") {
    return absl::InvalidArgumentError(
        common::strCat(name, ": top-level 'protocol' must be v1, v2, grpc or graph"));
  }
  std::string suite = std::filesystem::path(name).stem().string();
  const YAML::Node cases = root["cases"];
  if (!cases || !cases.IsSequence()) {
    return absl::InvalidArgumentError(common::strCat(name, ": needs a 'cases' list"));
  }
  std::vector<Case> out;
  for (const auto& node : cases) {
    if (!node.IsMap()) {
      return absl::InvalidArgumentError(
          common::strCat(where(name, node.Mark()), ": a case must be a mapping"));
    }
    for (const char* field : kRequiredFields) {
      if (!node[field] || !node[field].IsScalar()) {
        return absl::InvalidArgumentError(common::strCat(where(name, node.Mark()),
                                                         ": case needs a scalar '", field, "'"));
      }
    }
    Case c;
    c.id = node["id"].as<std::string>();
    c.title = node["title"] ? node["title"].as<std::string>("") : c.id;
    c.section = node["section"].as<std::string>();
    c.tag = node["tag"].as<std::string>();
    c.level = node["level"].as<std::string>();
    c.protocol = protocol;
    c.suite = suite;
    if (protocol == "graph") {
      if (!node["graph"] || !node["graph"].IsScalar()) {
        return absl::InvalidArgumentError(common::strCat(where(name, node.Mark()), ": graph case '", c.id,
                                                         "' needs a scalar 'graph' (the InferenceGraph it runs against)"));
      }
      c.graph = node["graph"].as<std::string>();
      if (!node["request"]) {
        return absl::InvalidArgumentError(
            common::strCat(where(name, node.Mark()), ": graph case '", c.id, "' needs 'request'"));
      }
    }
    if (c.tag != "SPEC" && c.tag != "REF") {
      return absl::InvalidArgumentError(common::strCat(where(name, node["tag"].Mark()),
                                                       ": tag must be SPEC or REF"));
    }
    if (c.level != "MUST" && c.level != "SHOULD") {
      return absl::InvalidArgumentError(common::strCat(where(name, node["level"].Mark()),
                                                       ": level must be MUST or SHOULD"));
    }
    if (!node["expect"] || !node["expect"].IsMap()) {
      return absl::InvalidArgumentError(
          common::strCat(where(name, node.Mark()), ": case '", c.id, "' needs an 'expect' map"));
    }
    bool has_request = node["request"] || node["grpc"] || node["raw_http"];
    if (!has_request) {
      return absl::InvalidArgumentError(common::strCat(
          where(name, node.Mark()), ": case '", c.id, "' needs 'request', 'grpc' or 'raw_http'"));
    }
    c.spec = common::yamlToJson(node);
    // A datatype matrix expands into one case per V2 datatype, with ${dt} bound.
    if (c.spec.value("foreach_datatype", false)) {
      for (auto type : protocols::kAllDataTypes) {
        std::string dt(protocols::dataTypeName(type));
        Case e = c;
        e.id = common::strCat(c.id, "-", dt);
        e.title = common::strCat(c.title, " (", dt, ")");
        replaceAll(e.spec, "${dt}", dt);
        e.spec["matrix_datatype"] = dt;
        out.push_back(std::move(e));
      }
    } else {
      out.push_back(std::move(c));
    }
  }
  // Ids must be unique: they name JUnit test cases.
  for (size_t i = 0; i < out.size(); ++i) {
    for (size_t j = i + 1; j < out.size(); ++j) {
      if (out[i].id == out[j].id) {
        return absl::InvalidArgumentError(
            common::strCat(name, ": duplicate case id '", out[i].id, "'"));
      }
    }
  }
  return out;
}

absl::StatusOr<std::vector<Case>> loadCases(const std::string& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    return absl::NotFoundError(common::strCat("case directory not found: ", dir));
  }
  auto files = common::filesIn(dir, {".yaml"});
  if (!files.ok()) return files.status();
  std::vector<Case> all;
  for (const auto& file : *files) {
    std::ifstream in(file);
    std::stringstream text;
    text << in.rdbuf();
    auto cases = parseSuite(text.str(), file.string());
    if (!cases.ok()) return cases.status();
    for (auto& c : *cases) all.push_back(std::move(c));
  }
  if (all.empty()) return absl::NotFoundError(common::strCat("no *.yaml cases in ", dir));
  return all;
}

std::string defaultCaseDir() {
  if (const char* env = std::getenv("KH_CONFORMANCE_DIR")) return env;
  return KH_DEFAULT_CONFORMANCE_DIR;
}

}  // namespace kh::conformance
