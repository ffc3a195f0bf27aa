#include "kh/controller/api_objects.h"

#include "kh/common/strings.h"
#include "kh/graph/spec.h"
#include "kh/kubeapi/errors.h"

namespace kh::controller {
namespace {

using nlohmann::json;
using common::formatRfc3339;

std::string text(const absl::Status& st) { return std::string(common::toStd(st.message())); }

// What KServe's validating webhook says, as the apiserver relays a webhook's denial: 400
// BadRequest, "admission webhook "<webhook>" denied the request: <message>".
absl::Status webhookDenial(const absl::Status& st, std::string_view kind, std::string_view name) {
  std::string message = text(st);
  // Some of KServe's messages name the object in a whole sentence already; keep the reason.
  std::string prefix = common::strCat("The ", kind, " \"", name, "\" is invalid: ");
  if (message.rfind(prefix, 0) == 0) message = message.substr(prefix.size());
  std::string webhook = kind == "InferenceService" ? "inferenceservice.kserve-webhook-server.validator"
                        : kind == "InferenceGraph"  ? "inferencegraph.kserve-webhook-server.validator"
                                                    : "servingruntime.kserve-webhook-server.validator";
  return kubeapi::apiError(absl::StatusCode::kFailedPrecondition, 400, "BadRequest",
                           common::strCat("admission webhook \"", webhook, "\" denied the request: ", message));
}

std::string metaName(const json& o) {
  const json& md = o.value("metadata", json::object());
  return md.is_object() ? md.value("name", "") : "";
}

absl::Status admitResource(const json& object, std::string_view kind) {
  auto parsed = resourceFromObject(object);
  std::string name = metaName(object);
  // A malformed field is the CRD's schema's to refuse: 422 Invalid, as the apiserver does.
  if (!parsed.ok()) return kubeapi::invalidError({{"FieldValueInvalid", text(parsed.status()), "spec"}});
  if (parsed->inference_service) {
    if (auto st = validateInferenceService(*parsed->inference_service); !st.ok()) return webhookDenial(st, kind, name);
  }
  if (parsed->serving_runtime) {
    if (auto st = validateServingRuntime(*parsed->serving_runtime); !st.ok()) return webhookDenial(st, kind, name);
  }
  return absl::OkStatus();
}

json conditionJson(const std::string& type, bool status, common::SystemTime since,
                   const std::string& reason = "", const std::string& message = "") {
  json c = {{"type", type}, {"status", status ? "True" : "False"}, {"lastTransitionTime", formatRfc3339(since)}};
  if (!reason.empty()) c["reason"] = reason;
  if (!message.empty()) c["message"] = message;
  return c;
}

// The labels KServe's and Knative's controllers put on a revision's objects: a graph's router
// revision belongs to the graph's Knative Service ({graph}), a component's to {isvc}-{component}.
json ownerLabels(const std::string& owner, const std::string& component) {
  if (component == kGraphComponent) {
    return {{kGraphLabel, owner}, {"serving.kserve.io/kind", "InferenceGraph"}, {kConfigurationLabel, owner},
            {kServiceLabel, owner}};
  }
  std::string configuration = common::strCat(owner, "-", component);
  return {{kIsvcLabel, owner}, {kComponentLabel, component}, {kConfigurationLabel, configuration},
          {kServiceLabel, configuration}};
}

}  // namespace

void installAdmission(std::vector<kubeapi::KindSpec>& kinds) {
  for (const char* kind : {"InferenceService", "ServingRuntime", "ClusterServingRuntime"}) {
    if (auto* k = kubeapi::findKind(kinds, kind)) {
      std::string name = kind;
      k->admission = [name](const json& object, const json*) { return admitResource(object, name); };
    }
  }
  if (auto* k = kubeapi::findKind(kinds, "InferenceGraph")) {
    k->admission = [](const json& object, const json*) -> absl::Status {
      std::string name = metaName(object);
      const json spec = object.value("spec", json::object());
      // Types and enums are the CRD schema's (422); the rest is KServe's webhook (400).
      auto parsed = graph::parseGraphSpec(spec);
      if (!parsed.ok()) return kubeapi::invalidError({{"FieldValueInvalid", text(parsed.status()), "spec"}});
      if (auto st = graph::validateGraph(name, *parsed); !st.ok()) return webhookDenial(st, "InferenceGraph", name);
      if (auto st = graph::compileConditions(name, *parsed); !st.ok()) return webhookDenial(st, "InferenceGraph", name);
      return absl::OkStatus();
    };
  }
}

OwnerKey parseOwnerKey(std::string_view key) {
  OwnerKey k;
  if (key.rfind(kGraphKeyPrefix, 0) == 0) {
    k.graph = true;
    key.remove_prefix(kGraphKeyPrefix.size());
  }
  auto slash = key.find('/');
  if (slash == std::string_view::npos) {
    k.namespace_name = "default";
    k.name = std::string(key);
  } else {
    k.namespace_name = std::string(key.substr(0, slash));
    k.name = std::string(key.substr(slash + 1));
  }
  return k;
}

std::string graphKey(std::string_view ns, std::string_view name) {
  return common::strCat(kGraphKeyPrefix, ns, "/", name);
}

absl::StatusOr<Resource> resourceFromObject(const json& object) {
  std::string where = common::strCat(object.value("kind", "object"), " ", metaName(object));
  return parseResource(object, where);
}

// ------------------------------------------------------------------ Revision

json revisionObject(const RevisionRecord& r) {
  json env = json::array();
  for (const auto& [k, v] : r.launch.env) env.push_back({{"name", k}, {"value", v}});
  json command = r.launch.argv;
  json labels = ownerLabels(r.isvc, r.launch.component);
  // Knative numbers a configuration's revisions; ours end in that number ({isvc}-{c}-0000N).
  std::string generation = r.name.substr(r.name.find_last_not_of("0123456789") + 1);
  generation.erase(0, std::min(generation.find_first_not_of('0'), generation.size() - 1));
  labels["serving.knative.dev/configurationGeneration"] = generation;
  return {{"apiVersion", "serving.knative.dev/v1"},
          {"kind", "Revision"},
          {"metadata",
           {{"name", r.name},
            {"namespace", r.namespace_name},
            {"labels", labels}}},
          {"spec",
           {{"containerConcurrency", r.container_concurrency},
            {"timeoutSeconds", r.timeout_seconds},
            {"containers", json::array({{{"name", "kserve-container"}, {"command", command}, {"env", env}}})}}},
          {"status",
           {{"conditions", json::array({{{"type", "Ready"}, {"status", r.ready ? "True" : "False"}}})},
            // What refstack needs to run the revision again after a restart.
            {"refstack",
             {{"component", r.launch.component},
              {"readinessPath", r.launch.readiness_path},
              {"spec", r.spec},
              {"podSerial", r.pod_serial}}}}}};
}

absl::StatusOr<RevisionRecord> revisionRecordFromObject(const json& o) {
  RevisionRecord r;
  const json& md = o.value("metadata", json::object());
  r.name = md.value("name", "");
  r.namespace_name = md.value("namespace", "");
  const json& labels = md.value("labels", json::object());
  r.isvc = labels.value(kIsvcLabel, labels.value(kGraphLabel, ""));
  if (r.name.empty() || r.isvc.empty()) {
    return absl::InvalidArgumentError(common::strCat("Revision ", r.name, ": no name or no ", kIsvcLabel, " label"));
  }
  const json& spec = o.value("spec", json::object());
  r.container_concurrency = spec.value("containerConcurrency", 0);
  r.timeout_seconds = spec.value("timeoutSeconds", int64_t{300});
  const json& containers = spec.value("containers", json::array());
  if (!containers.is_array() || containers.empty()) {
    return absl::InvalidArgumentError(common::strCat("Revision ", r.name, ": spec.containers is empty"));
  }
  for (const auto& a : containers[0].value("command", json::array())) {
    if (a.is_string()) r.launch.argv.push_back(a.get<std::string>());
  }
  for (const auto& e : containers[0].value("env", json::array())) {
    if (e.is_object()) r.launch.env[e.value("name", "")] = e.value("value", "");
  }
  const json& status = o.value("status", json::object());
  const json& ours = status.value("refstack", json::object());
  r.launch.component = ours.value("component", labels.value(kComponentLabel, "predictor"));
  r.launch.readiness_path = ours.value("readinessPath", "/v2/health/ready");
  r.spec = ours.value("spec", json());
  r.pod_serial = ours.value("podSerial", 0);
  for (const auto& c : status.value("conditions", json::array())) {
    if (c.value("type", "") == "Ready") r.ready = c.value("status", "") == "True";
  }
  return r;
}

// ------------------------------------------------------------------ Pod

json podObject(const PodRecord& p) {
  bool ready = p.phase == "Ready";
  bool stopping = p.phase == "Stopping";
  bool backoff = p.phase == "BackOff";
  json labels = ownerLabels(p.isvc, p.component);
  labels[kRevisionLabel] = p.revision;
  labels["app"] = p.revision;
  json metadata = {{"name", p.name}, {"namespace", p.namespace_name}, {"labels", labels}};
  if (!p.revision_uid.empty()) {
    metadata["ownerReferences"] = json::array({{{"apiVersion", "serving.knative.dev/v1"},
                                                {"kind", "Revision"},
                                                {"name", p.revision},
                                                {"uid", p.revision_uid},
                                                {"controller", true}}});
  }
  if (stopping) metadata["deletionTimestamp"] = formatRfc3339(p.phase_since);
  auto containerStatus = [&](const char* name, const char* image) {
    json s = {{"name", name},
              {"image", image},
              {"imageID", common::strCat("refstack://", image)},
              {"ready", ready},
              {"started", !backoff},
              {"restartCount", p.restarts}};
    if (backoff) {
      s["state"] = {{"waiting", {{"reason", "CrashLoopBackOff"}, {"message", p.message}}}};
      if (!p.last_exit.empty()) s["lastState"] = {{"terminated", {{"reason", "Error"}, {"message", p.last_exit}}}};
    } else {
      s["state"] = {{"running", {{"startedAt", formatRfc3339(p.created)}}}};
    }
    return s;
  };
  json containers = json::array({{{"name", "kserve-container"}, {"image", "kserve-harness/modelserver"}}});
  json statuses = json::array({containerStatus("kserve-container", "kserve-harness/modelserver")});
  if (p.has_queue_proxy) {
    containers.push_back({{"name", "queue-proxy"}, {"image", "kserve-harness/queue-proxy"}});
    statuses.push_back(containerStatus("queue-proxy", "kserve-harness/queue-proxy"));
  }
  json conditions = json::array({conditionJson("Initialized", true, p.created),
                                 conditionJson("Ready", ready, p.phase_since, ready ? "" : "ContainersNotReady"),
                                 conditionJson("ContainersReady", ready, p.phase_since, ready ? "" : "ContainersNotReady"),
                                 conditionJson("PodScheduled", true, p.created)});
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata", metadata},
          {"spec", {{"containers", containers}, {"nodeName", "refstack"}}},
          {"status",
           {{"phase", "Running"},
            {"conditions", conditions},
            {"containerStatuses", statuses},
            {"hostIP", "127.0.0.1"},
            {"podIP", "127.0.0.1"},
            {"startTime", formatRfc3339(p.created)}}}};
}

// ------------------------------------------------------------------ PodAutoscaler

json podAutoscalerObject(const PodAutoscalerView& v, common::SystemTime now_system,
                         common::MonotonicTime now_monotonic) {
  OwnerKey owner = parseOwnerKey(v.isvc);
  const std::string& ns = owner.namespace_name;
  auto since = now_system - std::chrono::duration_cast<common::SystemTime::duration>(now_monotonic - v.active_since);
  json active = {{"type", "Active"}, {"status", v.active}, {"lastTransitionTime", formatRfc3339(since)}};
  if (!v.active_reason.empty()) active["reason"] = v.active_reason;
  if (!v.active_message.empty()) active["message"] = v.active_message;
  json ready = {{"type", "Ready"}, {"status", v.active == "False" ? "False" : v.active}, {"lastTransitionTime", formatRfc3339(since)}};
  if (!v.active_reason.empty()) ready["reason"] = v.active_reason;
  // Knative's PA also says whether its scale target ever reached initial-scale ready pods: the
  // Revision is ready from then on (at zero pods too).
  json initialized = {{"type", "ScaleTargetInitialized"}, {"status", v.scale_target_initialized ? "True" : "Unknown"}};
  json status = {{"conditions", json::array({active, ready, initialized})},
                 {"actualScale", v.actual_scale},
                 {"serviceName", v.revision}};
  if (v.desired_scale >= 0) status["desiredScale"] = v.desired_scale;
  // What Knative shows elsewhere (the decider, the ServerlessService), for `refstack get -o wide`.
  status["refstack"] = {{"replicas", v.replicas},
                        {"panic", v.panicking},
                        {"activatorInPath", v.activator_in_path},
                        {"excessBurstCapacity", v.excess_burst_capacity}};
  return {{"apiVersion", "autoscaling.internal.knative.dev/v1alpha1"},
          {"kind", "PodAutoscaler"},
          {"metadata",
           {{"name", v.revision},
            {"namespace", ns},
            {"labels", {{owner.graph ? kGraphLabel : kIsvcLabel, owner.name}, {kRevisionLabel, v.revision}}},
            {"annotations", {{"autoscaling.knative.dev/class", "kpa.autoscaling.knative.dev"}}}}},
          {"spec",
           {{"protocolType", "http1"},
            {"reachability", "Reachable"},
            {"scaleTargetRef", {{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"name", v.revision + "-deployment"}}}}},
          {"status", status}};
}

// ------------------------------------------------------------------ Event

json eventObject(const EventRecord& e) {
  std::string t = formatRfc3339(e.time);
  json involved = {{"kind", e.involved_kind},
                   {"namespace", e.namespace_name},
                   {"name", e.involved_name},
                   {"apiVersion", e.involved_api_version}};
  if (!e.involved_uid.empty()) involved["uid"] = e.involved_uid;
  return {{"apiVersion", "v1"},
          {"kind", "Event"},
          {"metadata", {{"name", e.name}, {"namespace", e.namespace_name}}},
          {"involvedObject", involved},
          {"reason", e.reason},
          {"message", e.message},
          {"type", e.type},
          {"source", {{"component", e.component}}},
          {"reportingComponent", e.component},
          {"count", 1},
          {"firstTimestamp", t},
          {"lastTimestamp", t}};
}

}  // namespace kh::controller
