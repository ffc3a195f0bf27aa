#include "kh/graph/spec.h"

#include <set>

#include "fmt/format.h"
#include "kh/common/strings.h"

namespace kh::graph {
namespace {

using nlohmann::json;

absl::Status fieldError(const std::string& field, std::string_view problem) {
  return absl::InvalidArgumentError(common::strCat(field, ": ", problem));
}

absl::StatusOr<std::optional<int64_t>> optionalInt(const json& object, const char* key, const std::string& where) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return std::optional<int64_t>();
  if (!it->is_number_integer()) return fieldError(common::strCat(where, ".", key), "must be an integer");
  return std::optional<int64_t>(it->get<int64_t>());
}

absl::StatusOr<std::string> optionalString(const json& object, const char* key, const std::string& where) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return std::string();
  if (!it->is_string()) return fieldError(common::strCat(where, ".", key), "must be a string");
  return it->get<std::string>();
}

absl::StatusOr<Step> parseStep(const json& s, const std::string& where) {
  if (!s.is_object()) return fieldError(where, "must be an object");
  Step step;
  auto str = [&](const char* key, std::string& out) -> absl::Status {
    auto v = optionalString(s, key, where);
    if (!v.ok()) return v.status();
    out = std::move(*v);
    return absl::OkStatus();
  };
  for (auto [key, out] : {std::pair{"name", &step.name}, {"nodeName", &step.node_name},
                          {"serviceName", &step.service_name}, {"serviceUrl", &step.service_url},
                          {"data", &step.data}, {"condition", &step.condition}}) {
    if (auto st = str(key, *out); !st.ok()) return st;
  }
  std::string dependency;
  if (auto st = str("dependency", dependency); !st.ok()) return st;
  if (dependency == "Hard") {
    step.dependency = Dependency::kHard;
  } else if (dependency.empty() || dependency == "Soft") {
    step.dependency = Dependency::kSoft;
  } else {
    return fieldError(common::strCat(where, ".dependency"),
                      common::strCat("Unsupported value: \"", dependency, "\": supported values: \"Soft\", \"Hard\""));
  }
  auto weight = optionalInt(s, "weight", where);
  if (!weight.ok()) return weight.status();
  step.weight = *weight;
  if (auto it = s.find("mapPredictionsToInstances"); it != s.end() && !it->is_null()) {
    if (!it->is_boolean()) return fieldError(common::strCat(where, ".mapPredictionsToInstances"), "must be a boolean");
    step.map_predictions_to_instances = it->get<bool>();
  }
  return step;
}

// Go's regexp `^[a-z]([-a-z0-9]*[a-z0-9])?$` (no length limit: KServe checks none for graphs).
bool matchesGraphName(std::string_view name) {
  if (name.empty() || name.front() < 'a' || name.front() > 'z') return false;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return name.back() != '-';
}

}  // namespace

std::string_view routerTypeName(RouterType type) {
  switch (type) {
    case RouterType::kSequence: return "Sequence";
    case RouterType::kSplitter: return "Splitter";
    case RouterType::kEnsemble: return "Ensemble";
    case RouterType::kSwitch: return "Switch";
  }
  return "";
}

absl::StatusOr<GraphSpec> parseGraphSpec(const json& spec) {
  if (!spec.is_object()) return fieldError("spec", "must be an object");
  GraphSpec out;
  auto nodes = spec.find("nodes");
  if (nodes == spec.end() || nodes->is_null()) return fieldError("spec.nodes", "Required value");
  if (!nodes->is_object()) return fieldError("spec.nodes", "must be an object of nodes by name");
  for (const auto& [name, n] : nodes->items()) {
    std::string where = common::strCat("spec.nodes.", name);
    if (!n.is_object()) return fieldError(where, "must be an object");
    Node node;
    auto type = optionalString(n, "routerType", where);
    if (!type.ok()) return type.status();
    if (*type == "Sequence") {
      node.type = RouterType::kSequence;
    } else if (*type == "Splitter") {
      node.type = RouterType::kSplitter;
    } else if (*type == "Ensemble") {
      node.type = RouterType::kEnsemble;
    } else if (*type == "Switch") {
      node.type = RouterType::kSwitch;
    } else if (type->empty()) {
      return fieldError(where + ".routerType", "Required value");
    } else {
      return fieldError(where + ".routerType",
                        common::strCat("Unsupported value: \"", *type,
                                       "\": supported values: \"Sequence\", \"Splitter\", \"Ensemble\", \"Switch\""));
    }
    if (auto steps = n.find("steps"); steps != n.end() && !steps->is_null()) {
      if (!steps->is_array()) return fieldError(where + ".steps", "must be an array");
      for (size_t i = 0; i < steps->size(); ++i) {
        auto step = parseStep((*steps)[i], fmt::format("{}.steps[{}]", where, i));
        if (!step.ok()) return step.status();
        node.steps.push_back(std::move(*step));
      }
    }
    out.nodes[name] = std::move(node);
  }
  auto timeout = optionalInt(spec, "timeout", "spec");
  if (!timeout.ok()) return timeout.status();
  out.timeout_seconds = *timeout;
  auto min = optionalInt(spec, "minReplicas", "spec");
  if (!min.ok()) return min.status();
  out.min_replicas = *min;
  auto max = optionalInt(spec, "maxReplicas", "spec");
  if (!max.ok()) return max.status();
  out.max_replicas = max->value_or(0);
  auto target = optionalInt(spec, "scaleTarget", "spec");
  if (!target.ok()) return target.status();
  out.scale_target = *target;
  auto metric = optionalString(spec, "scaleMetric", "spec");
  if (!metric.ok()) return metric.status();
  if (!metric->empty()) {
    if (*metric != "cpu" && *metric != "memory" && *metric != "concurrency" && *metric != "rps") {
      return fieldError("spec.scaleMetric",
                        common::strCat("Unsupported value: \"", *metric,
                                       "\": supported values: \"cpu\", \"memory\", \"concurrency\", \"rps\""));
    }
    out.scale_metric = *metric;
  }
  if (auto rt = spec.find("routerTimeouts"); rt != spec.end() && !rt->is_null()) {
    if (!rt->is_object()) return fieldError("spec.routerTimeouts", "must be an object");
    for (auto [key, field] : {std::pair{"serverRead", &out.router_timeouts.server_read},
                              {"serverWrite", &out.router_timeouts.server_write},
                              {"serverIdle", &out.router_timeouts.server_idle},
                              {"serviceClient", &out.router_timeouts.service_client}}) {
      auto v = optionalInt(*rt, key, "spec.routerTimeouts");
      if (!v.ok()) return v.status();
      if (*v && **v <= 0) return fieldError(common::strCat("spec.routerTimeouts.", key), "must be positive (seconds)");
      *field = *v;
    }
  }
  for (auto [key, value] : {std::pair{"minReplicas", out.min_replicas}, {"timeout", out.timeout_seconds}}) {
    if (value && *value < 0) return fieldError(common::strCat("spec.", key), "must be greater than or equal to 0");
  }
  return out;
}

absl::Status validateGraph(std::string_view name, const GraphSpec& spec, bool resolved) {
  if (!matchesGraphName(name)) {
    return absl::InvalidArgumentError(fmt::format(
        "The InferenceGraph \"{}\" is invalid: a InferenceGraph name must consist of lower case alphanumeric "
        "characters or '-', and must start with alphabetical character. (e.g. \"my-name\" or \"abc-123\", regex used "
        "for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')",
        name));
  }
  if (!spec.nodes.count(kRootNode)) {
    return absl::InvalidArgumentError(
        "root node not found, InferenceGraph needs a node with name 'root' as the root node of the graph");
  }
  for (const auto& [node_name, node] : spec.nodes) {
    std::set<std::string> names;
    for (const auto& step : node.steps) {
      if (step.name.empty()) continue;
      if (!names.insert(step.name).second) {
        return absl::InvalidArgumentError(fmt::format(
            "Node \"{}\" of InferenceGraph \"{}\" contains more than one step with name \"{}\"", node_name, name, step.name));
      }
    }
  }
  for (const auto& [node_name, node] : spec.nodes) {
    for (size_t i = 0; i < node.steps.size(); ++i) {
      const Step& s = node.steps[i];
      int targets = !s.node_name.empty() + !s.service_name.empty() + !s.service_url.empty();
      if (resolved && !s.service_name.empty() && !s.service_url.empty()) --targets;
      if (targets == 0) {
        return absl::InvalidArgumentError(
            fmt::format("Step {} (\"{}\") in node \"{}\" of InferenceGraph \"{}\" does not specify an inference target",
                        i, s.name, node_name, name));
      }
      if (targets != 1) {
        return absl::InvalidArgumentError(fmt::format(
            "Step {} (\"{}\") in node \"{}\" of InferenceGraph \"{}\" specifies more than one of nodeName, serviceName, "
            "serviceUrl",
            i, s.name, node_name, name));
      }
    }
  }
  for (const auto& [node_name, node] : spec.nodes) {
    if (node.type != RouterType::kSplitter) continue;
    int64_t sum = 0;
    for (const auto& s : node.steps) {
      if (!s.weight) {
        return absl::InvalidArgumentError(
            fmt::format("InferenceGraph[{}] Node[{}] Route[{}] missing the 'Weight'", name, node_name, s.service_name));
      }
      sum += *s.weight;
    }
    if (sum != 100) {
      return absl::InvalidArgumentError(fmt::format(
          "InferenceGraph[{}] Node[{}] splitter node: the sum of traffic weights for all routing targets should be 100",
          name, node_name));
    }
  }
  return absl::OkStatus();
}

absl::Status compileConditions(std::string_view name, GraphSpec& spec) {
  for (auto& [node_name, node] : spec.nodes) {
    for (size_t i = 0; i < node.steps.size(); ++i) {
      Step& s = node.steps[i];
      s.compiled_condition.reset();
      if (s.condition.empty()) continue;
      auto path = GjsonPath::compile(s.condition);
      if (!path.ok()) {
        return absl::InvalidArgumentError(fmt::format("InferenceGraph[{}] Node[{}] Step[{}] condition: {}", name,
                                                      node_name, i, common::toStd(path.status().message())));
      }
      s.compiled_condition = std::move(*path);
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<GraphSpec> loadGraph(std::string_view name, const json& spec, bool resolved) {
  auto parsed = parseGraphSpec(spec);
  if (!parsed.ok()) return parsed.status();
  if (auto st = validateGraph(name, *parsed, resolved); !st.ok()) return st;
  if (auto st = compileConditions(name, *parsed); !st.ok()) return st;
  return parsed;
}

}  // namespace kh::graph
