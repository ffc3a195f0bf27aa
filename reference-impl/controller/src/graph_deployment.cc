#include "kh/controller/graph_deployment.h"

#include "kh/common/json.h"
#include "kh/common/strings.h"
#include "kh/controller/api_objects.h"
#include "kh/graph/spec.h"

namespace kh::controller {
namespace {

using nlohmann::json;

std::string text(const absl::Status& st) { return std::string(common::toStd(st.message())); }

bool readyCondition(const json& object) {
  for (const auto& c : object.value("status", json::object()).value("conditions", json::array())) {
    if (c.value("type", "") == "Ready") return c.value("status", "") == "True";
  }
  return false;
}

// utils.GetPredictorEndpoint: status.address.url plus the predict path of the protocol the
// service speaks (its transformer's, else its predictor's, else its runtime's first of v1/v2).
// @return the URL, or why there is none yet (as KServe's requeue message).
absl::StatusOr<std::string> predictorEndpoint(const std::string& ns, const std::string& service,
                                              const ObjectLookup& lookup) {
  auto object = lookup("InferenceService", ns, service);
  if (object == nullptr) {
    return absl::NotFoundError(common::strCat("Failed to find graph service ", service));
  }
  const json address = object->value("status", json::object()).value("address", json::object());
  if (!readyCondition(*object) || !address.value("url", json()).is_string()) {
    return absl::UnavailableError(common::strCat("service ", service, " is not ready"));
  }
  auto parsed = resourceFromObject(*object);
  if (!parsed.ok() || !parsed->inference_service) {
    return absl::UnavailableError(common::strCat("service ", service, " is not ready"));
  }
  const InferenceService& isvc = *parsed->inference_service;
  std::string protocol = "v1";
  if (isvc.transformer) {
    protocol = isvc.transformer->protocol_version.value_or("v1");
  } else if (isvc.predictor.protocol_version) {
    protocol = *isvc.predictor.protocol_version;
  } else if (isvc.predictor.runtime && isvc.predictor.containers.empty()) {
    // A named runtime and no protocol in the service: the runtime's first one a graph speaks.
    auto runtime = lookup("ServingRuntime", ns, *isvc.predictor.runtime);
    if (runtime == nullptr) runtime = lookup("ClusterServingRuntime", "", *isvc.predictor.runtime);
    if (runtime != nullptr) {
      const json versions = runtime->value("spec", json::object()).value("protocolVersions", json::array());
      if (!versions.empty()) {
        protocol.clear();
        for (const auto& v : versions) {
          if (v == "v1" || v == "v2") {
            protocol = v.get<std::string>();
            break;
          }
        }
        if (protocol.empty()) {
          return absl::FailedPreconditionError("the runtime does not support a protocol compatible with Inference Graphs");
        }
      }
    }
  }
  std::string path;
  if (protocol == "v1") path = common::strCat("/v1/models/", service, ":predict");
  if (protocol == "v2") path = common::strCat("/v2/models/", service, "/infer");
  return common::strCat(address["url"].get<std::string>(), path);
}

json condition(const std::string& type, bool ok, const std::string& reason, const std::string& message,
               const std::string& time) {
  json c = {{"type", type}, {"status", ok ? "True" : "False"}, {"lastTransitionTime", time}};
  if (!ok && !reason.empty()) c["reason"] = reason;
  if (!ok && !message.empty()) c["message"] = message;
  return c;
}

}  // namespace

GraphRouterConfig routerConfigFrom(const json* configmap, GraphRouterConfig config) {
  if (configmap == nullptr) return config;
  const json data = configmap->value("data", json::object());
  if (!data.contains("router") || !data["router"].is_string()) return config;
  json router = json::parse(data["router"].get<std::string>(), nullptr, false);
  if (!router.is_object()) return config;
  if (router.contains("image") && router["image"].is_string()) config.image = router["image"].get<std::string>();
  const json headers = router.value("headers", json::object());
  if (headers.is_object() && headers.contains("propagate") && headers["propagate"].is_array()) {
    config.propagate_headers.clear();
    for (const auto& h : headers["propagate"]) {
      if (h.is_string()) config.propagate_headers.push_back(h.get<std::string>());
    }
  }
  return config;
}

std::set<std::string> graphServiceNames(const json& object) {
  std::set<std::string> out;
  const json nodes = object.value("spec", json::object()).value("nodes", json::object());
  if (!nodes.is_object()) return out;
  for (const auto& [node, value] : nodes.items()) {
    if (!value.is_object() || !value.contains("steps") || !value["steps"].is_array()) continue;
    for (const auto& step : value["steps"]) {
      if (step.is_object() && step.contains("serviceName") && step["serviceName"].is_string()) {
        out.insert(step["serviceName"].get<std::string>());
      }
    }
  }
  return out;
}

absl::StatusOr<GraphDeployment> graphDeployment(const json& object, const ObjectLookup& lookup,
                                                const GraphRouterConfig& config) {
  const json md = object.value("metadata", json::object());
  GraphDeployment d;
  InferenceService& s = d.service;
  s.metadata.name = md.value("name", "");
  s.metadata.namespace_name = md.value("namespace", "default");
  for (const char* field : {"labels", "annotations"}) {
    const json values = md.value(field, json::object());
    auto& out = std::string(field) == "labels" ? s.metadata.labels : s.metadata.annotations;
    for (const auto& [k, v] : values.items()) {
      if (v.is_string()) out[k] = v.get<std::string>();
    }
  }
  json spec = object.value("spec", json::object());
  auto graph = graph::loadGraph(s.metadata.name, spec);
  if (!graph.ok()) return graph.status();
  // Each serviceName becomes a serviceUrl, in the spec the router is given.
  if (spec.contains("nodes") && spec["nodes"].is_object()) {
    for (auto& [node, value] : spec["nodes"].items()) {
      if (!value.is_object() || !value.contains("steps") || !value["steps"].is_array()) continue;
      for (auto& step : value["steps"]) {
        const std::string service = step.value("serviceName", "");
        if (service.empty() || !step.value("serviceUrl", "").empty()) continue;
        auto url = predictorEndpoint(s.metadata.namespace_name, service, lookup);
        if (!url.ok()) {
          if (d.waiting.empty()) d.waiting = text(url.status());
          continue;
        }
        step["serviceUrl"] = *url;
      }
    }
  }
  ComponentExtension& x = s.predictor.extension;
  x.min_replicas = graph->min_replicas;  // unset: 1, as KServe's DefaultMinReplicas
  x.max_replicas = graph->max_replicas;
  x.scale_target = graph->scale_target;
  x.scale_metric = graph->scale_metric;
  x.timeout_seconds = graph->timeout_seconds;
  Container router;
  router.name = "kserve-container";
  router.image = config.image;
  router.args = {common::strCat("--graph-json=", common::jsonText(spec)), common::strCat("--name=", s.metadata.name),
                 "--http_port={{.Port}}", common::strCat("--drain_seconds=", config.drain_seconds)};
  if (!config.propagate_headers.empty()) {
    std::string joined;
    for (const auto& h : config.propagate_headers) joined += (joined.empty() ? "" : ",") + h;
    router.env.emplace_back("PROPAGATE_HEADERS", joined);
  }
  s.predictor.containers.push_back(router);
  s.predictor.implementations = {"containers"};
  // What makes a new revision: the template KServe writes into the graph's Knative Service.
  json env = json::object();
  for (const auto& [k, v] : router.env) env[k] = v;
  s.document = {{"spec",
                 {{"predictor",
                   {{"image", router.image},
                    {"args", router.args},
                    {"env", env},
                    {"annotations", md.value("annotations", json::object())},
                    {"minReplicas", x.min_replicas ? json(*x.min_replicas) : json()},
                    {"maxReplicas", x.max_replicas},
                    {"scaleTarget", x.scale_target ? json(*x.scale_target) : json()},
                    {"scaleMetric", x.scale_metric ? json(*x.scale_metric) : json()},
                    {"timeoutSeconds", x.timeout_seconds ? json(*x.timeout_seconds) : json()}}}}}};
  return d;
}

json buildGraphStatus(const std::string& name, const std::string& ns, const std::string& domain,
                      const ComponentState& router, const std::string& waiting, common::SystemTime now) {
  std::string time = common::formatRfc3339(now);
  // As the Knative Service: the configuration is ready with its latest revision, the route when
  // every revision it sends traffic to is ready.
  bool configuration_ready = false;
  std::string configuration_message = waiting;
  for (const auto& r : router.revisions) {
    if (r.name != router.rollout.latest_created_revision) continue;
    configuration_ready = r.ready;
    if (!r.ready && !r.failure.empty()) configuration_message = r.failure;
  }
  bool routes_ready = !router.traffic.empty();
  for (const auto& t : router.traffic) {
    bool ready = false;
    for (const auto& r : router.revisions) ready = ready || (r.name == t.revision && r.ready);
    if (t.percent > 0 && !ready) routes_ready = false;
  }
  bool ready = configuration_ready && routes_ready;
  std::string reason = waiting.empty() ? "RevisionMissing" : "ServiceNotReady";
  if (!router.revisions.empty() && waiting.empty()) reason = "RevisionNotReady";
  json status = json::object();
  status["conditions"] = json::array(
      {condition("ConfigurationsReady", configuration_ready, reason, configuration_message, time),
       condition("Ready", ready, reason, configuration_message, time),
       condition("RoutesReady", routes_ready, reason, configuration_message, time),
       {{"type", "Stopped"}, {"status", "False"}, {"lastTransitionTime", time}}});
  if (ready) status["url"] = common::strCat("http://", name, "-", ns, ".", domain);
  status["deploymentMode"] = "Serverless";
  return status;
}

}  // namespace kh::controller
