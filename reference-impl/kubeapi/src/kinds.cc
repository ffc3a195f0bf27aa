#include "kh/kubeapi/kinds.h"

#include <algorithm>
#include <cctype>

#include "absl/time/time.h"
#include "kh/common/json.h"
#include "kh/common/strings.h"
#include "kh/kubeapi/table.h"

namespace kh::kubeapi {
namespace {

using common::strCat;
using nlohmann::json;

constexpr std::string_view kNameDescription =
    "Name must be unique within a namespace. Is required when creating resources, although some "
    "resources may allow a client to request the generation of an appropriate name "
    "automatically. Name is primarily intended for creation idempotence and configuration "
    "definition. Cannot be updated. More info: "
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
constexpr std::string_view kAgeDescription =
    "CreationTimestamp is a timestamp representing the server time when this object was "
    "created. It is not guaranteed to be set in happens-before order across separate "
    "operations. Clients may not set this value. It is represented in RFC3339 form and is in "
    "UTC.";

// Reads a string at a dotted path, "" when absent or not a string.
std::string str(const json& object, std::initializer_list<std::string_view> path) {
  const json* node = &object;
  for (auto key : path) {
    if (!node->is_object()) return {};
    auto it = node->find(key);
    if (it == node->end()) return {};
    node = &*it;
  }
  return node->is_string() ? node->get<std::string>() : std::string();
}

const json& at(const json& object, std::string_view key) {
  static const json kNull;
  if (!object.is_object()) return kNull;
  auto it = object.find(key);
  return it == object.end() ? kNull : *it;
}

PrinterColumn computed(std::string name, std::string type, int32_t priority,
                       std::function<json(const json&, common::SystemTime)> cell,
                       std::string description = {}) {
  PrinterColumn c;
  c.name = std::move(name);
  c.type = std::move(type);
  c.priority = priority;
  c.description = std::move(description);
  c.cell = std::move(cell);
  return c;
}

PrinterColumn pathColumn(std::string name, std::string type, std::string path,
                         int32_t priority = 0) {
  PrinterColumn c;
  c.name = std::move(name);
  c.type = std::move(type);
  c.json_path = std::move(path);
  c.priority = priority;
  return c;
}

// The core Age cell: translateTimestampSince(creationTimestamp).
json coreAge(const json& object, common::SystemTime now) {
  return ageOf(str(object, {"metadata", "creationTimestamp"}), now);
}

PrinterColumn coreAgeColumn() {
  return computed("Age", "string", 0, coreAge, std::string(kAgeDescription));
}

// printers.go printPod, reduced to what a pod's JSON says: the reason shown in STATUS.
std::string podReason(const json& pod) {
  std::string reason = str(pod, {"status", "phase"});
  if (std::string r = str(pod, {"status", "reason"}); !r.empty()) reason = r;
  bool initializing = false;
  const json& inits = at(at(pod, "status"), "initContainerStatuses");
  if (inits.is_array()) {
    size_t total = at(at(pod, "spec"), "initContainers").is_array()
                       ? at(at(pod, "spec"), "initContainers").size()
                       : inits.size();
    for (size_t i = 0; i < inits.size(); ++i) {
      const json& st = inits[i];
      const json& term = at(at(st, "state"), "terminated");
      const json& wait = at(at(st, "state"), "waiting");
      if (term.is_object() && at(term, "exitCode").is_number() &&
          at(term, "exitCode").get<int64_t>() == 0) {
        continue;
      }
      initializing = true;
      if (term.is_object()) {
        std::string r = str(term, {"reason"});
        reason = strCat("Init:", r.empty() ? strCat("ExitCode:", common::jsonText(at(term, "exitCode"))) : r);
      } else if (wait.is_object() && !str(wait, {"reason"}).empty() &&
                 str(wait, {"reason"}) != "PodInitializing") {
        reason = strCat("Init:", str(wait, {"reason"}));
      } else {
        reason = strCat("Init:", i, "/", total);
      }
      break;
    }
  }
  if (!initializing) {
    bool has_running = false;
    const json& statuses = at(at(pod, "status"), "containerStatuses");
    if (statuses.is_array()) {
      for (size_t k = statuses.size(); k-- > 0;) {
        const json& st = statuses[k];
        const json& wait = at(at(st, "state"), "waiting");
        const json& term = at(at(st, "state"), "terminated");
        const json& running = at(at(st, "state"), "running");
        if (wait.is_object() && !str(wait, {"reason"}).empty()) {
          reason = str(wait, {"reason"});
        } else if (term.is_object() && !str(term, {"reason"}).empty()) {
          reason = str(term, {"reason"});
        } else if (term.is_object()) {
          const json& sig = at(term, "signal");
          reason = sig.is_number() && sig.get<int64_t>() != 0
                       ? strCat("Signal:", common::jsonText(sig))
                       : strCat("ExitCode:", common::jsonText(at(term, "exitCode")));
        } else if (running.is_object() && at(st, "ready").is_boolean() &&
                   at(st, "ready").get<bool>()) {
          has_running = true;
        }
      }
    }
    if (reason == "Completed" && has_running) {
      bool ready = false;
      const json& conds = at(at(pod, "status"), "conditions");
      if (conds.is_array()) {
        for (const auto& c : conds) {
          if (str(c, {"type"}) == "Ready" && str(c, {"status"}) == "True") ready = true;
        }
      }
      reason = ready ? "Running" : "NotReady";
    }
  }
  if (!str(pod, {"metadata", "deletionTimestamp"}).empty()) {
    reason = str(pod, {"status", "reason"}) == "NodeLost" ? "Unknown" : "Terminating";
  }
  return reason;
}

json podReady(const json& pod, common::SystemTime) {
  size_t total =
      at(at(pod, "spec"), "containers").is_array() ? at(at(pod, "spec"), "containers").size() : 0;
  size_t ready = 0;
  const json& statuses = at(at(pod, "status"), "containerStatuses");
  if (statuses.is_array()) {
    for (const auto& st : statuses) {
      if (at(st, "ready").is_boolean() && at(st, "ready").get<bool>()) ++ready;
    }
  }
  return strCat(ready, "/", total);
}

json podRestarts(const json& pod, common::SystemTime now) {
  int64_t restarts = 0;
  std::string last;  // the latest lastState.terminated.finishedAt (RFC3339 sorts as text)
  const json& statuses = at(at(pod, "status"), "containerStatuses");
  if (statuses.is_array()) {
    for (const auto& st : statuses) {
      if (at(st, "restartCount").is_number_integer()) {
        restarts += at(st, "restartCount").get<int64_t>();
      }
      std::string finished = str(st, {"lastState", "terminated", "finishedAt"});
      if (finished > last) last = finished;
    }
  }
  if (restarts != 0 && !last.empty()) return strCat(restarts, " (", ageOf(last, now), " ago)");
  return strCat(restarts);
}

std::string orNone(std::string s) { return s.empty() ? "<none>" : s; }

json podReadinessGates(const json& pod, common::SystemTime) {
  const json& gates = at(at(pod, "spec"), "readinessGates");
  if (!gates.is_array() || gates.empty()) return "<none>";
  size_t true_count = 0;
  const json& conds = at(at(pod, "status"), "conditions");
  for (const auto& gate : gates) {
    std::string type = str(gate, {"conditionType"});
    if (!conds.is_array()) continue;
    for (const auto& c : conds) {
      if (str(c, {"type"}) == type && str(c, {"status"}) == "True") ++true_count;
    }
  }
  return strCat(true_count, "/", gates.size());
}

std::vector<PrinterColumn> podColumns() {
  PrinterColumn name = nameColumn();
  return {
      name,
      computed("Ready", "string", 0, podReady,
               "The aggregate readiness state of this pod for accepting traffic."),
      computed(
          "Status", "string", 0,
          [](const json& pod, common::SystemTime) -> json { return podReason(pod); },
          "The aggregate status of the containers in this pod."),
      computed("Restarts", "string", 0, podRestarts,
               "The number of times the containers in this pod have been restarted and when the "
               "last container in this pod has restarted."),
      coreAgeColumn(),
      computed("IP", "string", 1,
               [](const json& pod, common::SystemTime) -> json {
                 return orNone(str(pod, {"status", "podIP"}));
               }),
      computed("Node", "string", 1,
               [](const json& pod, common::SystemTime) -> json {
                 return orNone(str(pod, {"spec", "nodeName"}));
               }),
      computed("Nominated Node", "string", 1,
               [](const json& pod, common::SystemTime) -> json {
                 return orNone(str(pod, {"status", "nominatedNodeName"}));
               }),
      computed("Readiness Gates", "string", 1, podReadinessGates),
  };
}

// printers.go printEvent: the first-seen time, falling back to eventTime.
std::string eventFirstSeen(const json& e, common::SystemTime now) {
  std::string first = str(e, {"firstTimestamp"});
  return ageOf(first.empty() ? str(e, {"eventTime"}) : first, now);
}

std::string eventLastSeen(const json& e, common::SystemTime now) {
  if (std::string series = str(e, {"series", "lastObservedTime"}); !series.empty()) {
    return ageOf(series, now);
  }
  std::string last = str(e, {"lastTimestamp"});
  return last.empty() ? eventFirstSeen(e, now) : ageOf(last, now);
}

int64_t eventCount(const json& e) {
  const json& series_count = at(at(e, "series"), "count");
  if (series_count.is_number_integer()) return series_count.get<int64_t>();
  const json& count = at(e, "count");
  int64_t n = count.is_number_integer() ? count.get<int64_t>() : 0;
  return n == 0 ? 1 : n;
}

std::vector<PrinterColumn> eventColumns() {
  auto cellOf = [](std::function<json(const json&, common::SystemTime)> f) { return f; };
  PrinterColumn name = nameColumn();
  name.priority = 1;
  return {
      computed("Last Seen", "string", 0, cellOf([](const json& e, common::SystemTime now) -> json {
                 return eventLastSeen(e, now);
               })),
      computed("Type", "string", 0,
               [](const json& e, common::SystemTime) -> json { return str(e, {"type"}); }),
      computed("Reason", "string", 0,
               [](const json& e, common::SystemTime) -> json { return str(e, {"reason"}); }),
      computed("Object", "string", 0,
               [](const json& e, common::SystemTime) -> json {
                 std::string kind = str(e, {"involvedObject", "kind"});
                 std::transform(kind.begin(), kind.end(), kind.begin(),
                                [](unsigned char c) { return std::tolower(c); });
                 std::string name = str(e, {"involvedObject", "name"});
                 return name.empty() ? kind : strCat(kind, "/", name);
               }),
      computed("Subobject", "string", 1,
               [](const json& e, common::SystemTime) -> json {
                 return str(e, {"involvedObject", "fieldPath"});
               }),
      computed("Source", "string", 1,
               [](const json& e, common::SystemTime) -> json {
                 std::string component = str(e, {"source", "component"});
                 if (component.empty()) component = str(e, {"reportingComponent"});
                 std::string host = str(e, {"source", "host"});
                 if (host.empty()) host = str(e, {"reportingInstance"});
                 return host.empty() ? component : strCat(component, ", ", host);
               }),
      computed("Message", "string", 0,
               [](const json& e, common::SystemTime) -> json {
                 std::string m = str(e, {"message"});
                 size_t b = m.find_first_not_of(" \t\n\r");
                 size_t end = m.find_last_not_of(" \t\n\r");
                 return b == std::string::npos ? std::string() : m.substr(b, end - b + 1);
               }),
      computed(
          "First Seen", "string", 1,
          [](const json& e, common::SystemTime now) -> json { return eventFirstSeen(e, now); }),
      computed("Count", "string", 1,
               [](const json& e, common::SystemTime) -> json { return eventCount(e); }),
      name,
  };
}

std::vector<PrinterColumn> namespaceColumns() {
  return {nameColumn(),
          computed(
              "Status", "string", 0,
              [](const json& ns, common::SystemTime) -> json {
                return str(ns, {"status", "phase"});
              },
              "The status of the namespace"),
          coreAgeColumn()};
}

KindSpec kserve(std::string version, std::string kind, std::string plural, std::string singular,
                std::vector<std::string> short_names, bool namespaced,
                std::vector<PrinterColumn> columns) {
  KindSpec k;
  k.group = "serving.kserve.io";
  k.version = std::move(version);
  k.kind = std::move(kind);
  k.plural = std::move(plural);
  k.singular = std::move(singular);
  k.short_names = std::move(short_names);
  k.namespaced = namespaced;
  k.columns = customResourceColumns(std::move(columns));
  return k;
}

std::vector<PrinterColumn> runtimeColumns() {
  return {pathColumn("Disabled", "boolean", ".spec.disabled"),
          pathColumn("ModelType", "string", ".spec.supportedModelFormats[*].name"),
          pathColumn("Containers", "string", ".spec.containers[*].name"), ageColumn()};
}

KindSpec readOnly(KindSpec k) {
  k.client_writable = false;
  k.persisted = false;
  return k;
}

}  // namespace

std::string KindSpec::apiVersion() const {
  return group.empty() ? version : strCat(group, "/", version);
}

std::string KindSpec::resource() const {
  return group.empty() ? plural : strCat(plural, ".", group);
}

std::string KindSpec::qualifiedKind() const {
  return group.empty() ? kind : strCat(kind, ".", group);
}

PrinterColumn nameColumn() {
  PrinterColumn c = pathColumn("Name", "string", ".metadata.name");
  c.format = "name";
  c.description = std::string(kNameDescription);
  return c;
}

PrinterColumn ageColumn() {
  PrinterColumn c = pathColumn("Age", "date", ".metadata.creationTimestamp");
  c.description = std::string(kAgeDescription);
  return c;
}

std::vector<PrinterColumn> customResourceColumns(std::vector<PrinterColumn> additional) {
  std::vector<PrinterColumn> out{nameColumn()};
  for (auto& c : additional) out.push_back(std::move(c));
  return out;
}

std::vector<KindSpec> refstackKinds() {
  std::vector<KindSpec> kinds;
  constexpr std::string_view kPredictor = ".status.components.predictor.traffic";
  kinds.push_back(kserve(
      "v1beta1", "InferenceService", "inferenceservices", "inferenceservice", {"isvc"}, true,
      {pathColumn("URL", "string", ".status.url"),
       pathColumn("Ready", "string", ".status.conditions[?(@.type=='Ready')].status"),
       pathColumn("Prev", "integer", strCat(kPredictor, "[?(@.tag=='prev')].percent")),
       pathColumn("Latest", "integer", strCat(kPredictor, "[?(@.latestRevision==true)].percent")),
       pathColumn("PrevRolledoutRevision", "string",
                  strCat(kPredictor, "[?(@.tag=='prev')].revisionName")),
       pathColumn("LatestReadyRevision", "string",
                  strCat(kPredictor, "[?(@.latestRevision==true)].revisionName")),
       ageColumn()}));
  kinds.push_back(kserve("v1alpha1", "ServingRuntime", "servingruntimes", "servingruntime", {},
                         true, runtimeColumns()));
  kinds.push_back(kserve("v1alpha1", "ClusterServingRuntime", "clusterservingruntimes",
                         "clusterservingruntime", {}, false, runtimeColumns()));
  kinds.push_back(
      kserve("v1alpha1", "InferenceGraph", "inferencegraphs", "inferencegraph", {"ig"}, true,
             {pathColumn("URL", "string", ".status.url"),
              pathColumn("Ready", "string", ".status.conditions[?(@.type=='Ready')].status"),
              ageColumn()}));

  KindSpec rev;
  rev.group = "serving.knative.dev";
  rev.version = "v1";
  rev.kind = "Revision";
  rev.plural = "revisions";
  rev.singular = "revision";
  rev.short_names = {"rev"};
  rev.columns = customResourceColumns(
      {pathColumn("Config Name", "string",
                  ".metadata.labels['serving\\.knative\\.dev/configuration']"),
       pathColumn("Generation", "string",
                  ".metadata.labels['serving\\.knative\\.dev/configurationGeneration']"),
       pathColumn("Ready", "string", ".status.conditions[?(@.type=='Ready')].status"),
       pathColumn("Reason", "string", ".status.conditions[?(@.type=='Ready')].reason"),
       pathColumn("Actual Replicas", "integer", ".status.actualReplicas"),
       pathColumn("Desired Replicas", "integer", ".status.desiredReplicas")});
  kinds.push_back(readOnly(std::move(rev)));

  KindSpec pa;
  pa.group = "autoscaling.internal.knative.dev";
  pa.version = "v1alpha1";
  pa.kind = "PodAutoscaler";
  pa.plural = "podautoscalers";
  pa.singular = "podautoscaler";
  pa.short_names = {"kpa", "pa"};
  pa.columns = customResourceColumns(
      {pathColumn("DesiredScale", "integer", ".status.desiredScale"),
       pathColumn("ActualScale", "integer", ".status.actualScale"),
       pathColumn("Ready", "string", ".status.conditions[?(@.type=='Ready')].status"),
       pathColumn("Reason", "string", ".status.conditions[?(@.type=='Ready')].reason")});
  kinds.push_back(readOnly(std::move(pa)));

  KindSpec pod;
  pod.version = "v1";
  pod.kind = "Pod";
  pod.plural = "pods";
  pod.singular = "pod";
  pod.short_names = {"po"};
  pod.columns = podColumns();
  pod.field_selectors = {"spec.nodeName",           "spec.restartPolicy", "spec.schedulerName",
                         "spec.serviceAccountName", "status.phase",       "status.podIP",
                         "status.nominatedNodeName"};
  kinds.push_back(readOnly(std::move(pod)));

  KindSpec event;
  event.version = "v1";
  event.kind = "Event";
  event.plural = "events";
  event.singular = "event";
  event.short_names = {"ev"};
  event.status_subresource = false;
  event.columns = eventColumns();
  event.field_selectors = {"involvedObject.kind",
                           "involvedObject.namespace",
                           "involvedObject.name",
                           "involvedObject.uid",
                           "involvedObject.apiVersion",
                           "involvedObject.resourceVersion",
                           "involvedObject.fieldPath",
                           "reason",
                           "reportingComponent",
                           "source",
                           "type"};
  kinds.push_back(readOnly(std::move(event)));

  KindSpec ns;
  ns.version = "v1";
  ns.kind = "Namespace";
  ns.plural = "namespaces";
  ns.singular = "namespace";
  ns.short_names = {"ns"};
  ns.namespaced = false;
  ns.columns = namespaceColumns();
  ns.field_selectors = {"status.phase"};
  ns.defaulter = [](json& object) {
    object["metadata"]["labels"]["kubernetes.io/metadata.name"] = object["metadata"]["name"];
    if (!object["status"].is_object()) object["status"] = json::object();
    if (!object["status"].contains("phase")) object["status"]["phase"] = "Active";
  };
  kinds.push_back(std::move(ns));

  // ConfigMaps: Knative's config-autoscaler in knative-serving, as on a cluster.
  KindSpec cm;
  cm.version = "v1";
  cm.kind = "ConfigMap";
  cm.plural = "configmaps";
  cm.singular = "configmap";
  cm.short_names = {"cm"};
  cm.status_subresource = false;
  PrinterColumn data;
  data.name = "Data";
  data.type = "integer";
  data.description = "Number of data entries";
  data.cell = [](const json& object, common::SystemTime) -> json {
    int64_t n = 0;
    for (const char* key : {"data", "binaryData"}) {
      if (object.contains(key) && object[key].is_object()) n += static_cast<int64_t>(object[key].size());
    }
    return n;
  };
  cm.columns = {nameColumn(), data, ageColumn()};
  kinds.push_back(std::move(cm));
  return kinds;
}

const KindSpec* findKind(const std::vector<KindSpec>& kinds, std::string_view ref) {
  for (const auto& k : kinds) {
    if (k.kind == ref || k.plural == ref || k.resource() == ref) return &k;
  }
  return nullptr;
}

KindSpec* findKind(std::vector<KindSpec>& kinds, std::string_view ref) {
  return const_cast<KindSpec*>(findKind(static_cast<const std::vector<KindSpec>&>(kinds), ref));
}

}  // namespace kh::kubeapi
