// The scenario parser: yaml-cpp nodes (for their marks) checked key by key.

#include <cstdlib>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>

#include "kh/autoscaler/config.h"
#include "kh/common/files.h"
#include "kh/common/strings.h"
#include "kh/common/yaml_json.h"
#include "kh/loadgen/plan.h"
#include "kh/scenario/scenario.h"
#include "kh/scenario/stats.h"
#include <csignal>

#include "yaml-cpp/yaml.h"

namespace kh::scenario {

const char* stepKindName(StepKind kind) {
  switch (kind) {
    case StepKind::kApply: return "apply";
    case StepKind::kDelete: return "delete";
    case StepKind::kPatch: return "patch";
    case StepKind::kWait: return "wait";
    case StepKind::kLoad: return "load";
    case StepKind::kIdle: return "idle";
    case StepKind::kConform: return "conform";
    case StepKind::kAssert: return "assert";
    case StepKind::kJoin: return "join";
    case StepKind::kFault: return "fault";
  }
  return "?";
}

namespace {

using nlohmann::json;

// Why a manifest a scenario names cannot be used, or nothing when it exists. The scenario gives
// the name, so a failing check (a component past NAME_MAX, a directory not searchable) is its
// error too, never an exception out of the parser.
std::optional<std::string> missingFile(const std::filesystem::path& path) {
  std::error_code ec;
  if (std::filesystem::exists(path, ec)) return std::nullopt;
  if (ec) return common::strCat("manifest ", path.string(), ": ", ec.message());
  return common::strCat("manifest ", path.string(), " does not exist");
}

// Errors carry the position of the node they are about.
class Parser {
 public:
  explicit Parser(std::string source) : source_(std::move(source)) {}

  absl::Status error(const YAML::Node& node, const std::string& message) const {
    YAML::Mark m = node.Mark();
    if (m.is_null()) return absl::InvalidArgumentError(common::strCat(source_, ": ", message));
    return absl::InvalidArgumentError(
        common::strCat(source_, ":", m.line + 1, ":", m.column + 1, ": ", message));
  }

  // Checks that `node` is a map whose keys are all in `allowed`.
  absl::Status checkKeys(const YAML::Node& node, const std::string& what,
                         const std::set<std::string>& allowed) const {
    if (!node.IsMap()) return error(node, common::strCat(what, " must be a map"));
    for (const auto& kv : node) {
      std::string key = kv.first.Scalar();
      if (!allowed.count(key)) {
        std::string list;
        for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
        return error(kv.first, common::strCat("unknown key \"", key, "\" in ", what, " (allowed: ", list, ")"));
      }
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::string> str(const YAML::Node& node, const std::string& what) const {
    if (!node.IsScalar()) return error(node, common::strCat(what, " must be a string"));
    return node.Scalar();
  }

  absl::StatusOr<double> number(const YAML::Node& node, const std::string& what, double lo,
                                double hi) const {
    if (!node.IsScalar()) return error(node, common::strCat(what, " must be a number"));
    const std::string& s = node.Scalar();
    char* end = nullptr;
    double v = std::strtod(s.c_str(), &end);
    if (s.empty() || *end != '\0') return error(node, common::strCat(what, " must be a number, not \"", s, "\""));
    if (!(v >= lo && v <= hi)) {  // NaN ("nan", ".nan") is refused too
      return error(node, common::strCat(what, " must be within [", lo, ", ", hi, "], not ", s));
    }
    return v;
  }

  absl::StatusOr<int> integer(const YAML::Node& node, const std::string& what, int lo, int hi) const {
    if (!node.IsScalar()) return error(node, common::strCat(what, " must be an integer"));
    auto v = common::parseInt<int>(node.Scalar());
    if (!v) return error(node, common::strCat(what, " must be an integer, not \"", node.Scalar(), "\""));
    if (*v < lo || *v > hi) {
      return error(node, common::strCat(what, " must be within [", lo, ", ", hi, "], not ", *v));
    }
    return *v;
  }

  absl::StatusOr<bool> boolean(const YAML::Node& node, const std::string& what) const {
    if (node.IsScalar()) {
      if (node.Scalar() == "true") return true;
      if (node.Scalar() == "false") return false;
    }
    return error(node, common::strCat(what, " must be true or false"));
  }

  absl::StatusOr<double> seconds(const YAML::Node& node, const std::string& what) const {
    if (!node.IsScalar()) return error(node, common::strCat(what, " must be a duration (e.g. 30s)"));
    auto v = parseSeconds(node.Scalar());
    if (!v.ok()) return error(node, common::strCat(what, ": ", common::toStd(v.status().message())));
    return *v;
  }

  absl::StatusOr<std::vector<std::string>> strings(const YAML::Node& node, const std::string& what) const {
    std::vector<std::string> out;
    if (node.IsScalar()) {
      out.push_back(node.Scalar());
      return out;
    }
    if (!node.IsSequence()) return error(node, common::strCat(what, " must be a list of strings"));
    for (const auto& item : node) {
      if (!item.IsScalar()) return error(item, common::strCat(what, " must be a list of strings"));
      out.push_back(item.Scalar());
    }
    return out;
  }

  absl::Status parseLoad(const YAML::Node& node, Step& step) const;
  absl::Status parseWait(const YAML::Node& node, Step& step) const;
  absl::Status parseAssert(const YAML::Node& node, Step& step) const;
  absl::Status parseStep(const YAML::Node& node, Scenario& scenario, Step& step) const;
  absl::StatusOr<Scenario> parse(const YAML::Node& root, const std::filesystem::path& dir) const;

 private:
  std::string source_;
};

#define KH_TRY(lhs, expr)                 \
  do {                                    \
    auto kh_v_ = (expr);                  \
    if (!kh_v_.ok()) return kh_v_.status(); \
    lhs = std::move(*kh_v_);              \
  } while (false)

#define KH_CHECK(expr)                   \
  do {                                   \
    absl::Status kh_s_ = (expr);         \
    if (!kh_s_.ok()) return kh_s_;       \
  } while (false)

absl::Status Parser::parseLoad(const YAML::Node& node, Step& step) const {
  // `harness load` options by their long names, plus the scenario's own keys.
  static const std::set<std::string> kDurations = {"duration", "warmup", "window", "timeout"};
  static const std::set<std::string> kNumbers = {"rate", "concurrency", "requests", "threads",
                                                 "connections", "batch", "seed", "slo_confidence"};
  static const std::set<std::string> kStrings = {"protocol", "arrival", "profile", "slo", "input",
                                                 "label", "trace"};
  std::set<std::string> allowed = {"name", "isvc", "graph", "host", "concurrent", "per_request", "headers"};
  allowed.insert(kDurations.begin(), kDurations.end());
  allowed.insert(kNumbers.begin(), kNumbers.end());
  allowed.insert(kStrings.begin(), kStrings.end());
  KH_CHECK(checkKeys(node, "load", allowed));
  for (const auto& kv : node) {
    std::string key = kv.first.Scalar();
    const YAML::Node& v = kv.second;
    std::string what = "load." + key;
    if (key == "name") {
      KH_TRY(step.name, str(v, what));
    } else if (key == "isvc") {
      KH_TRY(step.isvc, str(v, what));
    } else if (key == "graph") {
      KH_TRY(step.graph, str(v, what));
    } else if (key == "host") {
      KH_TRY(step.host, str(v, what));
    } else if (key == "concurrent") {
      KH_TRY(step.concurrent, boolean(v, what));
    } else if (key == "per_request") {
      KH_TRY(step.per_request, boolean(v, what));
    } else if (key == "headers") {
      std::vector<std::string> headers;
      KH_TRY(headers, strings(v, what));
      step.load_options[key] = headers;
    } else if (kDurations.count(key)) {
      double s = 0;
      KH_TRY(s, seconds(v, what));
      step.load_options[key] = s;
    } else if (kNumbers.count(key)) {
      double hi = key == "slo_confidence" ? 1 : 1e9;
      double lo = key == "slo_confidence" ? 0.5 : 0;
      double x = 0;
      KH_TRY(x, number(v, what, lo, hi));
      step.load_options[key] = x;
    } else {
      std::string s;
      KH_TRY(s, str(v, what));
      step.load_options[key] = s;
    }
  }
  // The values as `harness load` and the runner read them (protocol, arrival, profile, slo,
  // headers, ...): the planner's conversion, so that a bad one fails here, at its key.
  auto flags = loadgen::loadFlagsFromJson(step.load_options, {}, {}, "load.");
  absl::Status converted =
      flags.ok() ? loadgen::loadSpecFromFlags(*flags, "load.").status() : flags.status();
  if (!converted.ok()) {
    std::string message(common::toStd(converted.message()));
    for (const auto& kv : node) {
      std::string option = "load." + kv.first.Scalar();
      if (message.starts_with(option + " ") || message.starts_with(option + ":")) {
        return error(kv.second, message);
      }
    }
    return error(node, message);
  }
  const json& o = step.load_options;
  if (o.contains("rate") && o.contains("concurrency")) {
    return error(node, "load: give rate (open loop) or concurrency (closed loop), not both");
  }
  if (!o.contains("duration") && !o.contains("requests") && !o.contains("profile") && !o.contains("trace")) {
    return error(node, "load needs a duration, requests, profile or trace");
  }
  if (!step.graph.empty() && (!step.isvc.empty() || !step.host.empty())) {
    return error(node, "load: a graph load goes to the graph's host: give graph, or isvc/host, not both");
  }
  // A graph load records every request's Kh-Graph-Steps (graph_split, graph_breakdown).
  if (!step.graph.empty()) step.per_request = true;
  return absl::OkStatus();
}

absl::Status Parser::parseWait(const YAML::Node& node, Step& step) const {
  KH_CHECK(checkKeys(node, "wait", {"for", "isvc", "graph", "replicas", "revision", "event", "timeout", "name"}));
  if (!node["for"]) return error(node, "wait needs \"for\": ready, replicas, zero or event");
  std::string what;
  KH_TRY(what, str(node["for"], "wait.for"));
  if (what == "ready") {
    step.wait_for = WaitFor::kReady;
  } else if (what == "replicas") {
    step.wait_for = WaitFor::kReplicas;
    if (!node["replicas"]) return error(node, "wait for replicas needs \"replicas: N\"");
  } else if (what == "zero") {
    step.wait_for = WaitFor::kZero;
  } else if (what == "event") {
    step.wait_for = WaitFor::kEvent;
    if (!node["event"]) return error(node, "wait for event needs \"event: {type: ..., ...}\"");
  } else {
    return error(node["for"], common::strCat("wait.for must be ready, replicas, zero or event, not \"", what, "\""));
  }
  if (node["isvc"]) KH_TRY(step.isvc, str(node["isvc"], "wait.isvc"));
  if (node["graph"]) {
    KH_TRY(step.graph, str(node["graph"], "wait.graph"));
    if (step.wait_for != WaitFor::kReady) return error(node["graph"], "wait.graph: an InferenceGraph is waited for with for: ready");
    if (node["isvc"]) return error(node["graph"], "wait: give isvc or graph, not both");
  }
  if (node["name"]) KH_TRY(step.name, str(node["name"], "wait.name"));
  if (node["replicas"]) KH_TRY(step.replicas, integer(node["replicas"], "wait.replicas", 0, 10000));
  if (node["revision"]) KH_TRY(step.revision, str(node["revision"], "wait.revision"));
  if (node["event"]) {
    if (!node["event"].IsMap()) return error(node["event"], "wait.event must be a map of fields to match");
    step.event_match = common::yamlToJson(node["event"]);
  }
  if (node["timeout"]) KH_TRY(step.timeout_s, seconds(node["timeout"], "wait.timeout"));
  return absl::OkStatus();
}

absl::Status Parser::parseAssert(const YAML::Node& node, Step& step) const {
  // Every assertion kind with its keys: key -> "duration", "number", "int", "bool", "string", "list".
  static const std::map<std::string, std::map<std::string, std::string>> kKinds = {
      {"cold_start", {{"isvc", "string"}, {"percentile", "number"}, {"max", "duration"}, {"min_samples", "int"}}},
      {"scale_to_zero", {{"isvc", "string"}, {"tolerance", "duration"}, {"load", "string"}}},
      {"canary_split", {{"load", "string"}, {"percent", "number"}, {"revision", "string"}, {"confidence", "number"}}},
      {"tag_routing", {{"load", "string"}, {"revision", "string"}}},
      {"no_errors", {{"loads", "list"}}},
      {"accounted", {{"loads", "list"}, {"min_errors", "int"}, {"min_ok", "int"}}},
      {"recovery", {{"load", "string"}, {"fault", "string"}, {"max", "duration"}}},
      {"latency_slo", {{"load", "string"}, {"percentile", "number"}, {"max", "duration"}, {"confidence", "number"}}},
      {"scaled_up", {{"isvc", "string"}, {"min_pods", "int"}, {"panic", "bool"}}},
      {"compare", {{"loads", "list"}, {"metric", "string"}, {"max_ratio", "number"}}},
      {"graph_output", {{"graph", "string"}, {"input", "json"}, {"status", "int"}, {"output", "json"}}},
      {"graph_split", {{"load", "string"}, {"node", "string"}, {"confidence", "number"}}},
      {"graph_breakdown", {{"load", "string"}}},
      {"simulation_agrees", {{"isvc", "string"}, {"load", "string"}, {"service_time", "duration"},
                             {"pod_startup", "duration"}, {"pod_drain", "duration"}, {"tolerance", "number"}}},
  };
  if (!node.IsMap() || node.size() != 1) {
    return error(node, "assert takes one assertion: {KIND: {...}} with KIND one of cold_start, scale_to_zero, "
                       "canary_split, tag_routing, no_errors, accounted, recovery, latency_slo, scaled_up, compare, "
                       "graph_output, graph_split, graph_breakdown, simulation_agrees");
  }
  auto kv = *node.begin();
  std::string kind = kv.first.Scalar();
  auto k = kKinds.find(kind);
  if (k == kKinds.end()) {
    return error(kv.first, common::strCat("unknown assertion \"", kind, "\" (cold_start, scale_to_zero, canary_split, "
                                          "tag_routing, no_errors, accounted, recovery, latency_slo, scaled_up, compare, "
                                          "graph_output, graph_split, graph_breakdown, simulation_agrees)"));
  }
  step.assertion = kind;
  const YAML::Node& body = kv.second;
  if (body.IsNull() && kind.rfind("graph_", 0) == 0) {
    return error(node, common::strCat("assert.", kind, " needs its keys (", kind == "graph_output" ? "graph, input" : "load", ")"));
  }
  if (body.IsNull()) return absl::OkStatus();
  std::set<std::string> allowed;
  for (const auto& [key, type] : k->second) allowed.insert(key);
  KH_CHECK(checkKeys(body, "assert." + kind, allowed));
  for (const auto& p : body) {
    std::string key = p.first.Scalar();
    std::string what = common::strCat("assert.", kind, ".", key);
    const std::string& type = k->second.at(key);
    if (type == "duration") {
      double s = 0;
      KH_TRY(s, seconds(p.second, what));
      step.params[key] = s;
    } else if (type == "number") {
      double lo = 0, hi = 1e9;
      if (key == "confidence") { lo = 0.5; hi = 0.999999; }
      if (key == "percentile" || key == "percent") hi = 100;
      double x = 0;
      KH_TRY(x, number(p.second, what, lo, hi));
      step.params[key] = x;
    } else if (type == "int") {
      int x = 0;
      KH_TRY(x, integer(p.second, what, 0, 100000));
      step.params[key] = x;
    } else if (type == "bool") {
      bool b = false;
      KH_TRY(b, boolean(p.second, what));
      step.params[key] = b;
    } else if (type == "json") {
      step.params[key] = common::yamlToJson(p.second);
    } else if (type == "list") {
      std::vector<std::string> l;
      KH_TRY(l, strings(p.second, what));
      step.params[key] = l;
    } else {
      std::string s;
      KH_TRY(s, str(p.second, what));
      step.params[key] = s;
    }
  }
  if (kind == "compare" && step.params.contains("metric")) {
    std::string m = step.params["metric"];
    if (m != "p50" && m != "p90" && m != "p99" && m != "throughput" && m != "mean") {
      return error(body["metric"], "assert.compare.metric must be p50, p90, p99, mean or throughput");
    }
  }
  if (kind == "graph_output" && (!step.params.contains("graph") || !step.params.contains("input"))) {
    return error(body, "assert.graph_output needs graph (an InferenceGraph) and input (the request body)");
  }
  if ((kind == "graph_split" || kind == "graph_breakdown") && !step.params.contains("load")) {
    return error(body, common::strCat("assert.", kind, " needs load (a load with graph: set)"));
  }
  if ((kind == "cold_start" || kind == "latency_slo") && !step.params.contains("max")) {
    return error(body, common::strCat("assert.", kind, " needs max (a duration)"));
  }
  return absl::OkStatus();
}

absl::Status Parser::parseStep(const YAML::Node& node, Scenario& scenario, Step& step) const {
  if (!node.IsMap() || node.size() != 1) {
    return error(node, "a step is a map with one key: apply, delete, patch, wait, load, idle, conform, assert or join");
  }
  auto kv = *node.begin();
  std::string kind = kv.first.Scalar();
  const YAML::Node& body = kv.second;
  YAML::Mark m = kv.first.Mark();
  step.where = {m.line + 1, m.column + 1};
  if (kind == "apply") {
    step.kind = StepKind::kApply;
    if (body.IsScalar()) {
      step.file = scenario.dir / body.Scalar();
    } else {
      KH_CHECK(checkKeys(body, "apply", {"file", "yaml"}));
      if (body["file"]) {
        std::string f;
        KH_TRY(f, str(body["file"], "apply.file"));
        step.file = scenario.dir / f;
      } else if (body["yaml"]) {
        KH_TRY(step.inline_yaml, str(body["yaml"], "apply.yaml"));
      } else {
        return error(body, "apply needs a file or yaml");
      }
    }
    if (!step.file.empty()) {
      if (auto missing = missingFile(step.file)) return error(body, *missing);
    }
  } else if (kind == "delete") {
    step.kind = StepKind::kDelete;
    if (body.IsScalar()) {
      step.isvc = body.Scalar();
    } else {
      KH_CHECK(checkKeys(body, "delete", {"isvc"}));
      if (body["isvc"]) KH_TRY(step.isvc, str(body["isvc"], "delete.isvc"));
    }
  } else if (kind == "patch") {
    step.kind = StepKind::kPatch;
    KH_CHECK(checkKeys(body, "patch", {"isvc", "merge"}));
    if (body["isvc"]) KH_TRY(step.isvc, str(body["isvc"], "patch.isvc"));
    if (!body["merge"] || !body["merge"].IsMap()) {
      return error(body, "patch needs merge: a JSON merge patch of the InferenceService (a map)");
    }
    step.merge_patch = common::yamlToJson(body["merge"]);
  } else if (kind == "wait") {
    step.kind = StepKind::kWait;
    step.timeout_s = scenario.default_timeout_s;
    KH_CHECK(parseWait(body, step));
  } else if (kind == "load") {
    step.kind = StepKind::kLoad;
    KH_CHECK(parseLoad(body, step));
  } else if (kind == "idle") {
    step.kind = StepKind::kIdle;
    KH_TRY(step.idle_s, seconds(body, "idle"));
  } else if (kind == "conform") {
    step.kind = StepKind::kConform;
    if (!body.IsNull()) {
      KH_CHECK(checkKeys(body, "conform", {"isvc", "graph", "protocols", "model", "filter", "name"}));
      if (body["isvc"]) KH_TRY(step.isvc, str(body["isvc"], "conform.isvc"));
      if (body["graph"]) {
        // The graph cases (protocols/conformance/graph.yaml) of one of the conformance graphs,
        // or `all` of them, each through its own host.
        KH_TRY(step.graph, str(body["graph"], "conform.graph"));
        if (body["isvc"] || body["protocols"] || body["model"]) {
          return error(body["graph"], "conform.graph runs graph cases: no isvc, protocols or model with it");
        }
        step.protocols = "graph";
      }
      if (body["model"]) KH_TRY(step.model, str(body["model"], "conform.model"));
      if (body["filter"]) KH_TRY(step.filter, str(body["filter"], "conform.filter"));
      if (body["name"]) KH_TRY(step.name, str(body["name"], "conform.name"));
      if (body["protocols"]) {
        std::vector<std::string> p;
        KH_TRY(p, strings(body["protocols"], "conform.protocols"));
        step.protocols.clear();
        for (const auto& x : p) {
          if (x != "v1" && x != "v2" && x != "grpc") {
            return error(body["protocols"], common::strCat("conform.protocols: \"", x, "\" is not v1, v2 or grpc"));
          }
          step.protocols += (step.protocols.empty() ? "" : ",") + x;
        }
      }
    }
  } else if (kind == "assert") {
    step.kind = StepKind::kAssert;
    KH_CHECK(parseAssert(body, step));
  } else if (kind == "join") {
    step.kind = StepKind::kJoin;
    if (!body.IsNull()) KH_TRY(step.join, strings(body, "join"));
    if (step.join.size() == 1 && step.join[0] == "all") step.join.clear();
  } else if (kind == "fault") {
    step.kind = StepKind::kFault;
    KH_CHECK(checkKeys(body, "fault", {"isvc", "signal", "name"}));
    if (body["isvc"]) KH_TRY(step.isvc, str(body["isvc"], "fault.isvc"));
    if (body["name"]) KH_TRY(step.name, str(body["name"], "fault.name"));
    if (!body["signal"]) return error(body, "fault needs signal: SIGKILL, SIGSTOP, SIGCONT or SIGTERM");
    KH_TRY(step.signal_name, str(body["signal"], "fault.signal"));
    static const std::map<std::string, int> kSignals = {
        {"SIGKILL", SIGKILL}, {"SIGSTOP", SIGSTOP}, {"SIGCONT", SIGCONT}, {"SIGTERM", SIGTERM}};
    auto sig = kSignals.find(step.signal_name);
    if (sig == kSignals.end()) {
      return error(body["signal"], common::strCat("fault.signal: \"", step.signal_name,
                                                  "\" is not SIGKILL, SIGSTOP, SIGCONT or SIGTERM"));
    }
    step.signal = sig->second;
  } else {
    return error(kv.first, common::strCat("unknown step \"", kind,
                                          "\" (apply, delete, patch, wait, load, idle, conform, assert, join, fault)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Scenario> Parser::parse(const YAML::Node& root, const std::filesystem::path& dir) const {
  Scenario s;
  s.dir = dir;
  KH_CHECK(checkKeys(root, "the scenario",
                     {"name", "description", "target", "requires", "manifests", "autoscaler", "stack", "steps", "timeout"}));
  if (!root["name"]) return error(root, "a scenario needs a name");
  KH_TRY(s.name, str(root["name"], "name"));
  if (root["description"]) KH_TRY(s.description, str(root["description"], "description"));
  if (root["timeout"]) KH_TRY(s.default_timeout_s, seconds(root["timeout"], "timeout"));
  if (const YAML::Node& t = root["target"]) {
    KH_CHECK(checkKeys(t, "target", {"namespace", "isvc", "model", "autoscaler_tick"}));
    if (t["namespace"]) KH_TRY(s.ns, str(t["namespace"], "target.namespace"));
    if (t["isvc"]) KH_TRY(s.isvc, str(t["isvc"], "target.isvc"));
    if (t["model"]) KH_TRY(s.model, str(t["model"], "target.model"));
    if (t["autoscaler_tick"]) {
      KH_TRY(s.autoscaler_tick_s, seconds(t["autoscaler_tick"], "target.autoscaler_tick"));
      if (s.autoscaler_tick_s < 0.1) return error(t["autoscaler_tick"], "target.autoscaler_tick must be at least 100ms");
    }
  }
  if (root["requires"]) {
    KH_TRY(s.requires_, strings(root["requires"], "requires"));
    for (const auto& r : s.requires_) {
      if (r != "control-plane" && r != "serverless" && r != "cuda" && r != "pod-signals") {
        return error(root["requires"], common::strCat("requires: \"", r,
                                                      "\" is not control-plane, serverless, cuda or pod-signals"));
      }
    }
  }
  if (const YAML::Node& m = root["manifests"]) {
    std::vector<std::string> files;
    KH_TRY(files, strings(m, "manifests"));
    for (size_t i = 0; i < files.size(); ++i) {
      auto path = dir / files[i];
      if (auto missing = missingFile(path)) return error(m.IsSequence() ? m[i] : m, *missing);
      s.manifests.push_back(path);
    }
  }
  if (const YAML::Node& a = root["autoscaler"]) {
    // config-autoscaler keys as Knative spells them; values are strings as in a ConfigMap.
    static const std::set<std::string> kKeys(autoscaler::autoscalerConfigKeys().begin(),
                                             autoscaler::autoscalerConfigKeys().end());
    KH_CHECK(checkKeys(a, "autoscaler", kKeys));
    for (const auto& kv : a) {
      if (!kv.second.IsScalar()) return error(kv.second, "autoscaler values are strings (as in the ConfigMap)");
      std::string key = kv.first.Scalar();
      static const std::set<std::string> kDurationKeys = {"stable-window", "scale-to-zero-grace-period",
                                                          "scale-to-zero-pod-retention-period", "scale-down-delay"};
      if (kDurationKeys.count(key)) {
        double ignored = 0;
        KH_TRY(ignored, seconds(kv.second, "autoscaler." + key));
        (void)ignored;
      }
      s.autoscaler[key] = kv.second.Scalar();
    }
  }
  if (const YAML::Node& st = root["stack"]) {
    KH_CHECK(checkKeys(st, "stack", {"activator_queue_limit"}));
    if (st["activator_queue_limit"]) {
      int limit = 0;
      KH_TRY(limit, integer(st["activator_queue_limit"], "stack.activator_queue_limit", 1, 1000000));
      s.stack.activator_queue_limit = limit;
    }
  }
  if (!root["steps"] || !root["steps"].IsSequence()) return error(root, "a scenario needs steps (a list)");
  std::set<std::string> load_names;
  bool has_concurrent = false;
  for (const auto& node : root["steps"]) {
    Step step;
    KH_CHECK(parseStep(node, s, step));
    if (step.isvc.empty() && step.kind != StepKind::kApply && step.kind != StepKind::kIdle &&
        step.kind != StepKind::kJoin) {
      step.isvc = step.kind == StepKind::kAssert && step.params.contains("isvc")
                      ? step.params["isvc"].get<std::string>()
                      : s.isvc;
    }
    if (step.kind == StepKind::kLoad) {
      if (step.name.empty()) step.name = common::strCat("load", load_names.size() + 1);
      if (!load_names.insert(step.name).second) {
        return error(node, common::strCat("a load named \"", step.name, "\" comes earlier"));
      }
      has_concurrent = has_concurrent || step.concurrent;
    }
    // Loads named by assertions and joins must come earlier.
    auto check_load = [&](const std::string& name) -> absl::Status {
      if (!load_names.count(name)) {
        return error(node, common::strCat("no earlier load named \"", name, "\""));
      }
      return absl::OkStatus();
    };
    if (step.kind == StepKind::kAssert) {
      if (step.params.contains("load")) KH_CHECK(check_load(step.params["load"]));
      if (step.params.contains("loads")) {
        for (const auto& n : step.params["loads"]) KH_CHECK(check_load(n));
      }
      if ((step.assertion == "canary_split" || step.assertion == "tag_routing" ||
           step.assertion == "latency_slo" || step.assertion == "recovery") && !step.params.contains("load")) {
        return error(node, common::strCat("assert.", step.assertion, " needs load: NAME"));
      }
    }
    if (step.kind == StepKind::kJoin) {
      for (const auto& n : step.join) KH_CHECK(check_load(n));
    }
    s.steps.push_back(std::move(step));
  }
  (void)has_concurrent;
  return s;
}

}  // namespace

absl::StatusOr<Scenario> parseScenario(const std::string& text, const std::string& source,
                                       const std::filesystem::path& dir) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        common::strCat(source, ":", e.mark.line + 1, ":", e.mark.column + 1, ": ", e.msg));
  }
  Parser parser(source);
  try {
    return parser.parse(root, dir);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        common::strCat(source, ":", e.mark.line + 1, ":", e.mark.column + 1, ": ", e.msg));
  }
}

absl::StatusOr<Scenario> loadScenarioFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(common::strCat("cannot read ", path.string()));
  std::stringstream text;
  text << in.rdbuf();
  auto s = parseScenario(text.str(), path.string(), path.parent_path());
  if (s.ok()) s->file = path;
  return s;
}

absl::StatusOr<std::vector<Scenario>> loadSuite(const std::filesystem::path& dir) {
  auto files = common::filesIn(dir, {".yaml"});
  if (!files.ok()) return files.status();
  std::vector<Scenario> out;
  for (const auto& f : *files) {
    auto s = loadScenarioFile(f);
    if (!s.ok()) return s.status();
    out.push_back(std::move(*s));
  }
  if (out.empty()) return absl::NotFoundError(common::strCat("no scenario (*.yaml) in ", dir.string()));
  return out;
}

std::filesystem::path defaultSuiteDir() {
  if (const char* env = std::getenv("KH_SCENARIO_DIR")) return env;
  return KH_DEFAULT_SCENARIO_DIR;
}

}  // namespace kh::scenario
