#include "kh/controller/resources.h"

#include <regex>

#include "kh/common/json.h"
#include "kh/common/strings.h"
#include "kh/common/yaml_json.h"

namespace kh::controller {
namespace {

using nlohmann::json;

// Fields of the legacy framework shorthand (predictor.xgboost: {...}), folded into `model`.
constexpr const char* kFrameworks[] = {"sklearn", "xgboost", "tensorflow", "pytorch", "triton",
                                       "onnx", "huggingface", "pmml", "lightgbm", "paddle"};
// Frameworks KServe defaults to the V2 protocol (inference_service_defaults.go).
constexpr const char* kV2ByDefault[] = {"triton", "onnx", "huggingface"};

absl::Status fieldError(const std::string& where, const std::string& what) {
  return absl::InvalidArgumentError(common::strCat(where, ": ", what));
}

absl::StatusOr<std::optional<int64_t>> optionalInt(const json& node, const char* key,
                                                   const std::string& where) {
  auto it = node.find(key);
  if (it == node.end() || it->is_null()) return std::optional<int64_t>();
  if (!it->is_number_integer()) return fieldError(where, common::strCat(key, " must be an integer"));
  return std::optional<int64_t>(it->get<int64_t>());
}

absl::StatusOr<std::optional<std::string>> optionalString(const json& node, const char* key,
                                                          const std::string& where) {
  auto it = node.find(key);
  if (it == node.end() || it->is_null()) return std::optional<std::string>();
  if (it->is_number()) return std::optional<std::string>(common::jsonText(*it));  // version: 1
  if (!it->is_string()) return fieldError(where, common::strCat(key, " must be a string"));
  return std::optional<std::string>(it->get<std::string>());
}

absl::StatusOr<ObjectMeta> parseMeta(const json& doc, const std::string& where) {
  ObjectMeta m;
  const json& md = doc.value("metadata", json::object());
  if (!md.is_object()) return fieldError(where, "metadata must be a mapping");
  m.name = md.value("name", "");
  if (m.name.empty()) return fieldError(where, "metadata.name is required");
  if (md.contains("namespace")) m.namespace_name = md["namespace"].get<std::string>();
  for (const char* key : {"labels", "annotations"}) {
    if (!md.contains(key)) continue;
    if (!md[key].is_object()) return fieldError(where, common::strCat("metadata.", key, " must be a mapping"));
    auto& out = std::string(key) == "labels" ? m.labels : m.annotations;
    for (const auto& [k, v] : md[key].items()) out[k] = v.is_string() ? v.get<std::string>() : common::jsonText(v);
  }
  return m;
}

absl::StatusOr<std::vector<Container>> parseContainers(const json& list, const std::string& where) {
  std::vector<Container> out;
  if (!list.is_array()) return fieldError(where, "containers must be a list");
  for (const auto& c : list) {
    Container k;
    k.name = c.value("name", "");
    k.image = c.value("image", "");
    for (const char* key : {"command", "args"}) {
      if (!c.contains(key)) continue;
      if (!c[key].is_array()) return fieldError(where, common::strCat("container ", key, " must be a list"));
      auto& dst = std::string(key) == "command" ? k.command : k.args;
      for (const auto& a : c[key]) dst.push_back(a.is_string() ? a.get<std::string>() : common::jsonText(a));
    }
    if (c.contains("env")) {
      for (const auto& e : c["env"]) {
        std::string value = e.contains("value") ? (e["value"].is_string() ? e["value"].get<std::string>() : common::jsonText(e["value"])) : "";
        k.env.emplace_back(e.value("name", ""), value);
      }
    }
    out.push_back(std::move(k));
  }
  return out;
}

absl::StatusOr<ComponentSpec> parseComponent(const json& node, const std::string& where) {
  if (!node.is_object()) return fieldError(where, "must be a mapping");
  ComponentSpec c;
  auto& e = c.extension;
  auto min = optionalInt(node, "minReplicas", where);
  if (!min.ok()) return min.status();
  e.min_replicas = *min;
  auto max = optionalInt(node, "maxReplicas", where);
  if (!max.ok()) return max.status();
  e.max_replicas = max->value_or(0);
  for (auto [key, dst] : {std::pair{"scaleTarget", &e.scale_target},
                          std::pair{"containerConcurrency", &e.container_concurrency},
                          std::pair{"timeout", &e.timeout_seconds},
                          std::pair{"canaryTrafficPercent", &e.canary_traffic_percent}}) {
    auto v = optionalInt(node, key, where);
    if (!v.ok()) return v.status();
    *dst = *v;
  }
  auto metric = optionalString(node, "scaleMetric", where);
  if (!metric.ok()) return metric.status();
  e.scale_metric = *metric;
  // The model: `model:` or a legacy framework key, which KServe rewrites into `model`.
  auto readModel = [&](const json& m, std::optional<std::string> framework) -> absl::Status {
    if (!m.is_object()) return fieldError(where, "model must be a mapping");
    if (framework) {
      c.model_format = ModelFormat{*framework, std::nullopt};
      for (const char* v2 : kV2ByDefault) {
        if (*framework == v2) c.protocol_version = "v2";
      }
    } else if (m.contains("modelFormat")) {
      const json& f = m["modelFormat"];
      if (!f.is_object() || !f.contains("name") || !f["name"].is_string()) {
        return fieldError(where, "model.modelFormat.name is required");
      }
      ModelFormat format{f["name"].get<std::string>(), std::nullopt};
      auto version = optionalString(f, "version", where);
      if (!version.ok()) return version.status();
      format.version = *version;
      c.model_format = format;
    }
    for (auto [key, dst] : {std::pair{"runtime", &c.runtime},
                            std::pair{"runtimeVersion", &c.runtime_version},
                            std::pair{"storageUri", &c.storage_uri}}) {
      auto v = optionalString(m, key, where);
      if (!v.ok()) return v.status();
      if (*v) *dst = *v;
    }
    auto protocol = optionalString(m, "protocolVersion", where);
    if (!protocol.ok()) return protocol.status();
    if (*protocol) c.protocol_version = *protocol;
    // The model is a container (KServe's ModelSpec embeds one): args are strings, env entries
    // are EnvVars, as the API server's decoding of a Container insists.
    if (m.contains("args")) {
      const json& args = m["args"];
      if (!args.is_array()) return fieldError(where, "model.args must be a list");
      for (size_t i = 0; i < args.size(); ++i) {
        if (!args[i].is_string()) return fieldError(where, common::strCat("model.args[", i, "] must be a string"));
      }
    }
    if (m.contains("env")) {
      const json& env = m["env"];
      if (!env.is_array()) return fieldError(where, "model.env must be a list");
      for (size_t i = 0; i < env.size(); ++i) {
        const json& e = env[i];
        if (!e.is_object() || !e.contains("name") || !e["name"].is_string()) {
          return fieldError(where, common::strCat("model.env[", i, "].name is required"));
        }
        if (e.contains("value") && !e["value"].is_string() && !e["value"].is_null()) {
          return fieldError(where, common::strCat("model.env[", i, "].value must be a string"));
        }
      }
    }
    return absl::OkStatus();
  };
  if (node.contains("model")) {
    c.implementations.push_back("model");
    if (auto st = readModel(node["model"], std::nullopt); !st.ok()) return st;
  }
  for (const char* fw : kFrameworks) {
    if (node.contains(fw)) {
      c.implementations.push_back(fw);
      if (auto st = readModel(node[fw], std::string(fw)); !st.ok()) return st;
    }
  }
  if (node.contains("containers")) {
    c.implementations.push_back("containers");
    auto containers = parseContainers(node["containers"], where);
    if (!containers.ok()) return containers.status();
    c.containers = std::move(*containers);
  }
  return c;
}

absl::StatusOr<InferenceService> parseInferenceService(const json& doc, const std::string& where) {
  InferenceService isvc;
  auto meta = parseMeta(doc, where);
  if (!meta.ok()) return meta.status();
  isvc.metadata = std::move(*meta);
  isvc.document = doc;
  const json& spec = doc.value("spec", json());
  if (!spec.is_object()) return fieldError(where, "spec is required");
  if (!spec.contains("predictor")) return fieldError(where, "spec.predictor is required");
  auto predictor = parseComponent(spec["predictor"], where + " spec.predictor");
  if (!predictor.ok()) return predictor.status();
  isvc.predictor = std::move(*predictor);
  for (const char* key : {"transformer", "explainer"}) {
    if (!spec.contains(key)) continue;
    auto c = parseComponent(spec[key], common::strCat(where, " spec.", key));
    if (!c.ok()) return c.status();
    (std::string(key) == "transformer" ? isvc.transformer : isvc.explainer) = std::move(*c);
  }
  return isvc;
}

absl::StatusOr<ServingRuntime> parseServingRuntime(const json& doc, bool cluster,
                                                   const std::string& where) {
  ServingRuntime rt;
  rt.cluster_scoped = cluster;
  auto meta = parseMeta(doc, where);
  if (!meta.ok()) return meta.status();
  rt.metadata = std::move(*meta);
  rt.document = doc;
  const json& spec = doc.value("spec", json());
  if (!spec.is_object()) return fieldError(where, "spec is required");
  if (spec.contains("supportedModelFormats")) {
    for (const auto& f : spec["supportedModelFormats"]) {
      SupportedModelFormat s;
      s.name = f.value("name", "");
      auto version = optionalString(f, "version", where);
      if (!version.ok()) return version.status();
      s.version = *version;
      s.auto_select = f.value("autoSelect", false);
      auto priority = optionalInt(f, "priority", where);
      if (!priority.ok()) return priority.status();
      s.priority = *priority;
      rt.supported_model_formats.push_back(std::move(s));
    }
  }
  if (spec.contains("protocolVersions")) {
    if (!spec["protocolVersions"].is_array()) return fieldError(where, "spec.protocolVersions must be a list");
    for (const auto& p : spec["protocolVersions"]) {
      if (!p.is_string()) {
        return fieldError(where, common::strCat("spec.protocolVersions holds ", common::jsonText(p), "; each must be a string"));
      }
      rt.protocol_versions.push_back(p.get<std::string>());
    }
  }
  rt.disabled = spec.value("disabled", false);
  rt.multi_model = spec.value("multiModel", false);
  rt.has_worker_spec = spec.contains("workerSpec");
  if (!spec.contains("containers")) return fieldError(where, "spec.containers is required");
  auto containers = parseContainers(spec["containers"], where);
  if (!containers.ok()) return containers.status();
  rt.containers = std::move(*containers);
  return rt;
}

}  // namespace

static absl::StatusOr<Resource> parseResourceUnchecked(const json& doc, const std::string& where);

bool isValidName(const std::string& name) {
  static const std::regex kName("[a-z]([-a-z0-9]*[a-z0-9])?");
  return name.size() <= 63 && std::regex_match(name, kName);
}

absl::StatusOr<Resource> parseResource(const json& doc, const std::string& where) {
  // Fields are checked as they are read; this is the net for a type the checks miss (json's
  // value() throws on a mistyped field), so a bad manifest is an error, never a crash.
  try {
    return parseResourceUnchecked(doc, where);
  } catch (const json::exception& e) {
    return fieldError(where, common::strCat("a field has the wrong type: ", e.what()));
  }
}

static absl::StatusOr<Resource> parseResourceUnchecked(const json& doc, const std::string& where) {
  if (!doc.is_object()) return fieldError(where, "not a mapping");
  std::string kind = doc.value("kind", "");
  std::string api = doc.value("apiVersion", "");
  Resource r;
  r.kind = kind;
  if (kind == "InferenceService") {
    if (api != "serving.kserve.io/v1beta1") {
      return fieldError(where, common::strCat("apiVersion must be serving.kserve.io/v1beta1 for InferenceService, got '", api, "'"));
    }
    auto isvc = parseInferenceService(doc, where);
    if (!isvc.ok()) return isvc.status();
    r.inference_service = std::move(*isvc);
  } else if (kind == "ServingRuntime" || kind == "ClusterServingRuntime") {
    if (api != "serving.kserve.io/v1alpha1") {
      return fieldError(where, common::strCat("apiVersion must be serving.kserve.io/v1alpha1 for ", kind, ", got '", api, "'"));
    }
    auto rt = parseServingRuntime(doc, kind == "ClusterServingRuntime", where);
    if (!rt.ok()) return rt.status();
    r.serving_runtime = std::move(*rt);
  } else {
    return fieldError(where, common::strCat("unsupported kind '", kind,
                                            "' (InferenceService, ServingRuntime, ClusterServingRuntime)"));
  }
  return r;
}

absl::StatusOr<std::vector<Resource>> parseManifests(const std::string& text,
                                                     const std::string& source) {
  auto docs = common::parseYamlDocuments(text, source);
  if (!docs.ok()) return docs.status();
  std::vector<Resource> out;
  int index = 0;
  for (const auto& doc : *docs) {
    ++index;
    auto r = parseResource(doc, common::strCat(source, " document ", index));
    if (!r.ok()) return r.status();
    out.push_back(std::move(*r));
  }
  return out;
}

namespace {

absl::Status validateComponent(const ComponentSpec& c, const std::string& component) {
  const auto& e = c.extension;
  // KServe's messages (pkg/apis/serving/v1beta1/component.go).
  if (e.container_concurrency && *e.container_concurrency < 0) {
    return absl::InvalidArgumentError("Parallelism cannot be less than 0.");
  }
  int64_t min = e.min_replicas.value_or(1);
  if (min < 0) return absl::InvalidArgumentError("MinReplicas cannot be less than 0.");
  if (e.max_replicas < 0) return absl::InvalidArgumentError("MaxReplicas cannot be less than 0.");
  if (min > e.max_replicas && e.max_replicas != 0) {
    return absl::InvalidArgumentError("MinReplicas cannot be greater than MaxReplicas.");
  }
  if (e.scale_metric && *e.scale_metric != "cpu" && *e.scale_metric != "memory" &&
      *e.scale_metric != "concurrency" && *e.scale_metric != "rps") {
    return absl::InvalidArgumentError(common::strCat(
        "spec.", component, ".scaleMetric: Unsupported value: \"", *e.scale_metric,
        "\": supported values: \"cpu\", \"memory\", \"concurrency\", \"rps\""));
  }
  if (e.canary_traffic_percent && (*e.canary_traffic_percent < 0 || *e.canary_traffic_percent > 100)) {
    return absl::InvalidArgumentError(common::strCat(
        "spec.", component, ".canaryTrafficPercent must be between 0 and 100, got ",
        *e.canary_traffic_percent));
  }
  if (c.implementations.size() != 1) {
    return absl::InvalidArgumentError(common::strCat(
        "Exactly one of [model, sklearn, xgboost, tensorflow, pytorch, triton, onnx, huggingface, "
        "pmml, lightgbm, paddle, containers] must be specified in ", component,
        c.implementations.empty() ? "" : common::strCat(" (found ", c.implementations.size(), ")")));
  }
  if (c.protocol_version && *c.protocol_version != "v1" && *c.protocol_version != "v2" &&
      *c.protocol_version != "grpc-v1" && *c.protocol_version != "grpc-v2") {
    return absl::InvalidArgumentError(common::strCat("Invalid protocol ", *c.protocol_version,
                                                     ". Must be one of [v1, v2, grpc-v1, grpc-v2]"));
  }
  if (c.storage_uri) {
    static const char* kPrefixes[] = {"gs://", "s3://", "pvc://", "file://", "https://", "http://",
                                      "hdfs://", "webhdfs://", "oci://", "hf://"};
    const std::string& uri = *c.storage_uri;
    bool has_scheme = uri.find("://") != std::string::npos;
    bool ok = !has_scheme;  // no scheme: a local path
    for (const char* p : kPrefixes) ok = ok || uri.rfind(p, 0) == 0;
    if (!ok) {
      return absl::InvalidArgumentError(common::strCat(
          "storageUri, must be one of: [gs://, s3://, pvc://, file://, https://, http://, "
          "hdfs://, webhdfs://, oci://, hf://] or match https://{}.blob.core.windows.net/{}/{} or "
          "be an absolute or relative local path. StorageUri [", uri, "] is not supported."));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status validateInferenceService(const InferenceService& isvc) {
  if (!isValidName(isvc.metadata.name)) {
    return absl::InvalidArgumentError(common::strCat(
        "The InferenceService \"", isvc.metadata.name,
        "\" is invalid: a InferenceService name must consist of lower case alphanumeric "
        "characters or '-', and must start with alphabetical character. (e.g. \"my-name\" or "
        "\"abc-123\", regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"));
  }
  if (auto st = validateComponent(isvc.predictor, "predictor"); !st.ok()) return st;
  if (isvc.transformer) {
    if (auto st = validateComponent(*isvc.transformer, "transformer"); !st.ok()) return st;
  }
  if (isvc.explainer) {
    if (auto st = validateComponent(*isvc.explainer, "explainer"); !st.ok()) return st;
  }
  return absl::OkStatus();
}

absl::Status validateServingRuntime(const ServingRuntime& rt) {
  if (!isValidName(rt.metadata.name)) {
    return absl::InvalidArgumentError(common::strCat("invalid runtime name \"", rt.metadata.name,
                                                     "\": must match [a-z]([-a-z0-9]*[a-z0-9])?"));
  }
  if (rt.containers.empty()) return absl::InvalidArgumentError("spec.containers must not be empty");
  for (const auto& f : rt.supported_model_formats) {
    if (f.name.empty()) return absl::InvalidArgumentError("supportedModelFormats[].name is required");
    if (f.priority) {
      if (*f.priority < 1) {
        return absl::InvalidArgumentError(common::strCat("priority of model format ", f.name, " must be greater than 0"));
      }
      if (!f.auto_select) {
        return absl::InvalidArgumentError(common::strCat("priority of model format ", f.name, " is only valid with autoSelect: true"));
      }
    }
  }
  // The same name and version must not appear twice with one priority.
  for (size_t i = 0; i < rt.supported_model_formats.size(); ++i) {
    for (size_t j = i + 1; j < rt.supported_model_formats.size(); ++j) {
      const auto& a = rt.supported_model_formats[i];
      const auto& b = rt.supported_model_formats[j];
      if (a.name == b.name && a.version == b.version && a.priority == b.priority) {
        return absl::InvalidArgumentError(common::strCat("model format ", a.name, " is listed twice with the same priority"));
      }
    }
  }
  for (const auto& p : rt.protocol_versions) {
    if (p != "v1" && p != "v2" && p != "grpc-v1" && p != "grpc-v2") {
      return absl::InvalidArgumentError(common::strCat("Invalid protocol ", p, ". Must be one of [v1, v2, grpc-v1, grpc-v2]"));
    }
  }
  return absl::OkStatus();
}

}  // namespace kh::controller
