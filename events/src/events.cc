#include "kh/events/events.h"

#include "kh/common/strings.h"

namespace kh::events {
namespace {

using nlohmann::json;

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

std::string key(const std::string& ns, const std::string& name) {
  return ns.empty() ? name : common::strCat(ns, "/", name);
}

json resourceJson(const std::string& kind, const std::string& ns, const std::string& name) {
  json j = {{"kind", kind}, {"name", name}};
  if (!ns.empty()) j["namespace"] = ns;
  // An InferenceService's events carry the "namespace/name" key every other event uses.
  if (kind == "InferenceService") j["isvc"] = key(ns, name);
  return j;
}

json optionalMs(const std::optional<double>& v) { return v ? json(*v) : json(nullptr); }

// Field readers that say which field is wrong.
struct Reader {
  const json& j;
  std::string type;
  absl::Status error;

  bool fail(const char* field, const char* want) {
    if (error.ok()) {
      error = absl::InvalidArgumentError(
          common::strCat("event of type '", type, "': field '", field, "' must be ", want));
    }
    return false;
  }
  std::string str(const char* field) {
    if (!j.contains(field) || j[field].is_null()) return {};
    if (!j[field].is_string()) return fail(field, "a string"), std::string();
    return j[field].get<std::string>();
  }
  int64_t integer(const char* field) {
    if (!j.contains(field) || j[field].is_null()) return 0;
    if (!j[field].is_number()) return fail(field, "a number"), 0;
    return j[field].get<int64_t>();
  }
  double number(const char* field) {
    if (!j.contains(field) || j[field].is_null()) return 0;
    if (!j[field].is_number()) return fail(field, "a number"), 0;
    return j[field].get<double>();
  }
  bool boolean(const char* field) {
    if (!j.contains(field) || j[field].is_null()) return false;
    if (!j[field].is_boolean()) return fail(field, "true or false"), false;
    return j[field].get<bool>();
  }
  std::optional<double> optionalNumber(const json& obj, const char* field) {
    if (!obj.contains(field) || obj[field].is_null()) return std::nullopt;
    if (!obj[field].is_number()) return fail(field, "a number or null"), std::nullopt;
    return obj[field].get<double>();
  }
};

// Splits "ns/name" as the resource events of older logs carried it.
void splitKey(const std::string& k, std::string& ns, std::string& name) {
  auto slash = k.find('/');
  if (slash == std::string::npos) {
    name = k;
  } else {
    ns = k.substr(0, slash);
    name = k.substr(slash + 1);
  }
}

}  // namespace

std::string_view typeName(const Payload& payload) {
  return std::visit(
      Overloaded{[](const ResourceApplied&) { return std::string_view("applied"); },
                 [](const ResourceDeleted&) { return std::string_view("deleted"); },
                 [](const ResourceRestored&) { return std::string_view("restored"); },
                 [](const OrphansEnded&) { return std::string_view("orphans"); },
                 [](const RevisionCreated&) { return std::string_view("revision"); },
                 [](const PodPhaseChanged&) { return std::string_view("pod"); },
                 [](const StatusChanged&) { return std::string_view("status"); },
                 [](const RoutesChanged&) { return std::string_view("routes"); },
                 [](const ScaleDecided&) { return std::string_view("scale"); },
                 [](const ColdStart&) { return std::string_view("coldstart"); },
                 [](const StackError&) { return std::string_view("error"); }},
      payload);
}

std::string isvcOf(const Payload& payload) {
  return std::visit(
      Overloaded{[](const ResourceApplied& e) {
                   return e.kind == "InferenceService" ? key(e.namespace_name, e.name) : std::string();
                 },
                 [](const ResourceDeleted& e) {
                   return e.kind == "InferenceService" ? key(e.namespace_name, e.name) : std::string();
                 },
                 [](const ResourceRestored& e) { return e.isvc; },
                 [](const RevisionCreated& e) { return e.isvc; },
                 [](const StatusChanged& e) { return e.isvc; },
                 [](const ScaleDecided& e) { return e.isvc; },
                 [](const ColdStart& e) { return e.isvc; },
                 [](const auto&) { return std::string(); }},
      payload);
}

json toJson(const Event& event) {
  json j = std::visit(
      Overloaded{
          [](const ResourceApplied& e) { return resourceJson(e.kind, e.namespace_name, e.name); },
          [](const ResourceDeleted& e) { return resourceJson(e.kind, e.namespace_name, e.name); },
          [](const ResourceRestored& e) { return json{{"isvc", e.isvc}}; },
          [](const OrphansEnded& e) {
            return json{{"count", e.count},
                        {"message", common::strCat("ended ", e.count, " orphaned pods")}};
          },
          [](const RevisionCreated& e) {
            return json{{"isvc", e.isvc}, {"revision", e.revision}, {"component", e.component},
                        {"message", "created"}};
          },
          [](const PodPhaseChanged& e) {
            return json{{"pod", e.pod}, {"revision", e.revision}, {"phase", e.phase},
                        {"restarts", e.restarts}, {"message", e.message}};
          },
          [](const StatusChanged& e) {
            json traffic = json::array();
            for (const auto& t : e.traffic) {
              traffic.push_back({{"revision", t.revision}, {"percent", t.percent}});
            }
            return json{{"isvc", e.isvc}, {"ready", e.ready}, {"traffic", traffic}};
          },
          [](const RoutesChanged& e) { return json{{"readyPods", e.ready_pods}}; },
          [](const ScaleDecided& e) {
            json j = {{"isvc", e.isvc},
                      {"revision", e.revision},
                      {"desired", e.desired},
                      {"actual", e.actual},
                      {"ready", e.ready},
                      {"panic", e.panic},
                      {"activatorInPath", e.activator_in_path},
                      {"excessBurstCapacity", e.excess_burst_capacity},
                      {"stable", e.stable},
                      {"reason", e.reason}};
            if (e.active) j["active"] = *e.active;
            return j;
          },
          [](const ColdStart& e) {
            const ColdStartBreakdown& b = e.breakdown;
            return json{{"isvc", e.isvc},
                        {"revision", e.revision},
                        {"pod", e.pod},
                        {"total_ms", e.total_ms},
                        {"breakdown",
                         {{"buffered_ms", optionalMs(b.buffered_ms)},
                          {"scale_decided_ms", optionalMs(b.scale_decided_ms)},
                          {"pod_created_ms", optionalMs(b.pod_created_ms)},
                          {"pod_scheduled_ms", optionalMs(b.pod_scheduled_ms)},
                          {"pod_spawned_ms", optionalMs(b.pod_spawned_ms)},
                          {"process_started_ms", optionalMs(b.process_started_ms)},
                          {"model_loaded_ms", optionalMs(b.model_loaded_ms)},
                          {"ready_ms", optionalMs(b.ready_ms)},
                          {"forwarded_ms", optionalMs(b.forwarded_ms)},
                          {"first_byte_ms", optionalMs(b.first_byte_ms)}}}};
          },
          [](const StackError& e) { return json{{"message", e.message}}; }},
      event.payload);
  j["seq"] = event.seq;
  j["time"] = event.time;
  j["type"] = typeName(event.payload);
  return j;
}

absl::StatusOr<Event> fromJson(const json& j) {
  if (!j.is_object()) return absl::InvalidArgumentError("an event must be a JSON object");
  if (!j.contains("type") || !j["type"].is_string()) {
    return absl::InvalidArgumentError("an event needs a string field 'type'");
  }
  Reader r{j, j["type"].get<std::string>(), absl::OkStatus()};
  Event e;
  e.seq = r.integer("seq");
  e.time = r.number("time");
  const std::string& type = r.type;
  auto resource = [&](auto& out) {
    out.kind = r.str("kind");
    out.namespace_name = r.str("namespace");
    out.name = r.str("name");
    if (out.name.empty()) splitKey(r.str("isvc"), out.namespace_name, out.name);
  };
  if (type == "applied") {
    ResourceApplied p;
    resource(p);
    e.payload = p;
  } else if (type == "deleted") {
    ResourceDeleted p;
    resource(p);
    e.payload = p;
  } else if (type == "restored") {
    e.payload = ResourceRestored{r.str("isvc")};
  } else if (type == "orphans") {
    e.payload = OrphansEnded{static_cast<int>(r.integer("count"))};
  } else if (type == "revision") {
    e.payload = RevisionCreated{r.str("isvc"), r.str("revision"), r.str("component")};
  } else if (type == "pod") {
    e.payload = PodPhaseChanged{r.str("pod"), r.str("revision"), r.str("phase"),
                                static_cast<int>(r.integer("restarts")), r.str("message")};
  } else if (type == "status") {
    StatusChanged p{r.str("isvc"), r.boolean("ready"), {}};
    if (j.contains("traffic")) {
      if (!j["traffic"].is_array()) {
        r.fail("traffic", "a list");
      } else {
        for (const auto& t : j["traffic"]) {
          if (!t.is_object()) {
            r.fail("traffic", "a list of {revision, percent}");
            break;
          }
          p.traffic.push_back({t.value("revision", ""), t.value("percent", int64_t{0})});
        }
      }
    }
    e.payload = std::move(p);
  } else if (type == "routes") {
    RoutesChanged p;
    if (j.contains("readyPods")) {
      if (!j["readyPods"].is_object()) {
        r.fail("readyPods", "an object of revision -> pods");
      } else {
        for (const auto& [rev, n] : j["readyPods"].items()) {
          if (!n.is_number()) {
            r.fail("readyPods", "an object of revision -> pods");
            break;
          }
          p.ready_pods[rev] = n.get<int>();
        }
      }
    }
    e.payload = std::move(p);
  } else if (type == "scale") {
    ScaleDecided p;
    p.isvc = r.str("isvc");
    p.revision = r.str("revision");
    p.desired = static_cast<int>(r.integer("desired"));
    p.actual = static_cast<int>(r.integer("actual"));
    p.ready = static_cast<int>(r.integer("ready"));
    p.panic = r.boolean("panic");
    p.activator_in_path = r.boolean("activatorInPath");
    p.excess_burst_capacity = static_cast<int>(r.integer("excessBurstCapacity"));
    p.stable = r.number("stable");
    if (j.contains("active") && !j["active"].is_null()) p.active = r.boolean("active");
    p.reason = r.str("reason");
    e.payload = std::move(p);
  } else if (type == "coldstart") {
    ColdStart p;
    p.isvc = r.str("isvc");
    p.revision = r.str("revision");
    p.pod = r.str("pod");
    p.total_ms = r.number("total_ms");
    static const json kEmpty = json::object();
    const json& b = j.contains("breakdown") && j["breakdown"].is_object() ? j["breakdown"] : kEmpty;
    p.breakdown.buffered_ms = r.optionalNumber(b, "buffered_ms");
    p.breakdown.scale_decided_ms = r.optionalNumber(b, "scale_decided_ms");
    p.breakdown.pod_created_ms = r.optionalNumber(b, "pod_created_ms");
    p.breakdown.pod_scheduled_ms = r.optionalNumber(b, "pod_scheduled_ms");
    p.breakdown.pod_spawned_ms = r.optionalNumber(b, "pod_spawned_ms");
    p.breakdown.process_started_ms = r.optionalNumber(b, "process_started_ms");
    p.breakdown.model_loaded_ms = r.optionalNumber(b, "model_loaded_ms");
    p.breakdown.ready_ms = r.optionalNumber(b, "ready_ms");
    p.breakdown.forwarded_ms = r.optionalNumber(b, "forwarded_ms");
    p.breakdown.first_byte_ms = r.optionalNumber(b, "first_byte_ms");
    e.payload = std::move(p);
  } else if (type == "error") {
    e.payload = StackError{r.str("message")};
  } else {
    return absl::InvalidArgumentError(common::strCat(
        "unknown event type '", type,
        "' (known: applied, deleted, restored, orphans, revision, pod, status, routes, scale, "
        "coldstart, error)"));
  }
  if (!r.error.ok()) return r.error;
  return e;
}

}  // namespace kh::events
