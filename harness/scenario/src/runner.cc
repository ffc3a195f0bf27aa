// The scenario runner: steps in order (loads optionally in the background), an observer thread
// sampling pods and events, and the assertions over what was observed.

#include "kh/scenario/runner.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "kh/autoscaler/config.h"
#include "kh/common/json.h"
#include "kh/common/strings.h"
#include "kh/common/yaml_json.h"
#include "kh/conformance/conformance.h"
#include "kh/http/client.h"
#include "kh/loadgen/plan.h"
#include "kh/loadgen/results.h"
#include "kh/loadgen/statistics.h"
#include "kh/scenario/stats.h"
#include "kh/simulate/simulate.h"

namespace kh::scenario {

const char* verdictName(Verdict v) {
  switch (v) {
    case Verdict::kPass: return "passed";
    case Verdict::kFail: return "failed";
    case Verdict::kSkip: return "skipped";
  }
  return "?";
}

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

std::string fmtNum(double v, int digits = 3) {
  if (!std::isfinite(v)) return "n/a";
  std::ostringstream s;
  s.precision(digits);
  s << std::fixed << v;
  std::string out = s.str();
  if (out.find('.') != std::string::npos) {
    while (!out.empty() && out.back() == '0') out.pop_back();
    if (!out.empty() && out.back() == '.') out.pop_back();
  }
  return out;
}

std::string msg(const absl::Status& s) { return std::string(common::toStd(s.message())); }

// An object's string-valued annotations (metadata.annotations).
std::map<std::string, std::string> annotationsOf(const json& obj) {
  std::map<std::string, std::string> out;
  // Bound to a local: items() of a temporary would outlive it.
  const json annotations = obj.value("metadata", json::object()).value("annotations", json::object());
  for (const auto& [k, v] : annotations.items()) {
    if (v.is_string()) out[k] = v.get<std::string>();
  }
  return out;
}

// One request of a per-request load (from loadgen's RequestRecord).
struct Record {
  double t = 0;  // intended send time, seconds from the scenario's start
  double latency_ms = 0;
  int status = 0;
  std::string revision;
  std::string graph_steps;  // a graph load: the router's Kh-Graph-Steps (a JSON array)
  std::string error;  // "" (succeeded), "status 503", "timeout", "connect", "check"
};

struct LoadOutcome {
  std::string name;
  std::string isvc;
  std::string graph;  // a load on an InferenceGraph instead
  std::string host;
  std::string engine;  // "loadgen", or "per-request" (loadgen recording every request)
  double start_t = 0, end_t = 0;
  json isvc_at_start;  // the InferenceService when the load began (canary %, revisions)
  std::optional<loadgen::RunResult> run;  // set when the load ran
  json run_json;
  std::vector<Record> records;  // per-request loads, in intended-time order
  std::string error;  // the load could not run
  int64_t succeeded = 0, failed = 0;
  std::map<std::string, int64_t> failures;  // "status 503", "timeout", ...
  std::thread thread;
  bool done = false;
};

class Runner {
 public:
  Runner(const Scenario& s, Target& t, const RunOptions& o, const common::TimeSource& time)
      : s_(s), target_(t), options_(o), time_(time) {}

  ScenarioResult run();

 private:
  double now() const {
    return std::chrono::duration<double>(time_.systemTime().time_since_epoch()).count() - start_unix_;
  }
  void log(const std::string& line) {
    if (options_.log) options_.log(common::strCat("[", s_.name, "] ", line));
  }
  std::string isvcOf(const Step& step) const { return step.isvc.empty() ? s_.isvc : step.isvc; }

  void observe();
  void observeOnce();
  absl::Status applyText(const std::string& text, const std::string& source);
  absl::Status runStep(const Step& step, json& step_log);
  absl::Status waitStep(const Step& step);
  double zeroWaitBound(const std::string& isvc);
  /** Tells the target of requests sent to an InferenceGraph: they reach each of its services. */
  void graphRequestsSent(const std::string& graph, const std::vector<SentRequest>& requests);
  /** One look at a `wait: {for: ready, graph}` step's InferenceGraph; says what it saw. */
  bool graphReady(const Step& step, std::string& last_state);
  absl::Status loadStep(const Step& step);
  void runLoad(LoadOutcome& out, const Step& step, Endpoint ep, std::string model);
  absl::StatusOr<loadgen::LoadSpec> loadSpec(const Step& step, const Endpoint& ep,
                                             const std::string& model, const std::string& label) const;
  absl::Status conformStep(const Step& step);
  void joinLoads(const std::vector<std::string>& names);
  AssertionResult evaluate(const Step& step);
  json loadJson(const LoadOutcome& l) const;

  // Assertions.
  AssertionResult canarySplit(const Step& step, const LoadOutcome& l);
  AssertionResult tagRouting(const Step& step, const LoadOutcome& l);
  // What the named loads sent and how it ended; "lost" are timeouts and connections cut
  // without an answer (the rest of the failures were answered with an error status).
  struct LoadTally {
    std::string list;  // the names, comma-separated
    int64_t total = 0, failed = 0, lost = 0;
    std::string spread;  // "status 502: 3, timeout: 1"
    std::string first_error;
  };
  LoadTally tally(const std::vector<std::string>& names) const;
  AssertionResult noErrors(const Step& step);
  AssertionResult accounted(const Step& step);
  AssertionResult recovery(const Step& step);
  absl::Status faultStep(const Step& step);
  AssertionResult latencySlo(const Step& step, const LoadOutcome& l);
  AssertionResult coldStart(const Step& step);
  AssertionResult scaleToZero(const Step& step);
  AssertionResult scaledUp(const Step& step);
  AssertionResult compare(const Step& step);
  AssertionResult graphOutput(const Step& step);
  AssertionResult graphSplit(const Step& step, const LoadOutcome& l);
  AssertionResult graphBreakdown(const Step& step, const LoadOutcome& l);
  AssertionResult simulationAgrees(const Step& step);

  std::string resolveRevision(const std::string& which, const json& isvc) const;
  bool eventIsFor(const events::Event& e, const std::string& isvc) const {
    std::string v = events::isvcOf(e.payload);
    return v == isvc || v == s_.ns + "/" + isvc;
  }

  const Scenario& s_;
  Target& target_;
  const RunOptions& options_;
  const common::TimeSource& time_;
  double start_unix_ = 0;

  std::mutex target_mu_;  // targets are called from the steps and the observer
  std::mutex mu_;         // guards what follows
  std::set<std::string> isvcs_;
  std::map<std::string, double> changed_at_;  // isvc -> when it was last applied or patched
  std::map<std::string, std::vector<double>> zero_seen_;  // isvc -> when a wait saw zero pods
  json samples_ = json::array();
  // Events seen so far, with their time from the scenario's start.
  struct ObservedEvent {
    double t = 0;
    events::Event event;
  };
  std::vector<ObservedEvent> events_;
  std::atomic<bool> stop_observer_{false};

  std::map<std::string, std::unique_ptr<LoadOutcome>> loads_;
  // Fault steps by name, with when they struck (seconds on the scenario's clock).
  std::map<std::string, double> fault_times_;
  std::vector<std::string> fault_order_;
  std::vector<std::string> load_order_;
  json conformance_ = json::array();
  std::vector<AssertionResult> assertions_;
};

void Runner::observeOnce() {
  std::vector<events::Event> events;
  std::map<std::string, std::map<std::string, PodCount>> pods;
  std::set<std::string> names;
  {
    std::lock_guard lock(mu_);
    names = isvcs_;
  }
  {
    std::lock_guard lock(target_mu_);
    events = target_.pollEvents();
  }
  for (const auto& n : names) {
    // The target once per call: on a kube target each call is a kubectl run, and a step that
    // needs the target (a fault, a wait) goes between them, not after all of them.
    std::lock_guard lock(target_mu_);
    auto p = target_.pods(s_.ns, n);
    if (p.ok()) pods[n] = std::move(*p);
  }
  double t = now();
  std::lock_guard lock(mu_);
  for (auto& e : events) {
    double at = e.time > 0 ? e.time - start_unix_ : t;
    events_.push_back({at, std::move(e)});
  }
  for (const auto& [n, revs] : pods) {
    json r = json::object();
    int ready = 0, total = 0;
    for (const auto& [rev, c] : revs) {
      r[rev] = {{"ready", c.ready}, {"total", c.total}};
      ready += c.ready;
      total += c.total;
    }
    samples_.push_back({{"t", t}, {"isvc", n}, {"ready", ready}, {"total", total}, {"revisions", r}});
  }
}

void Runner::observe() {
  auto period = target_.kind() == "kube" ? std::chrono::milliseconds(1000) : std::chrono::milliseconds(100);
  while (!stop_observer_) {
    observeOnce();
    std::this_thread::sleep_for(period);
  }
  observeOnce();
}

absl::Status Runner::applyText(const std::string& text, const std::string& source) {
  auto docs = common::parseYamlDocuments(text, source);
  if (!docs.ok()) return docs.status();
  const double before = now();
  {
    std::lock_guard lock(target_mu_);
    auto st = target_.apply(text, source);
    if (!st.ok()) return st;
  }
  std::lock_guard lock(mu_);
  for (const auto& d : *docs) {
    if (d.value("kind", "") == "InferenceService") {
      std::string name = d.value("metadata", json::object()).value("name", "");
      isvcs_.insert(name);
      changed_at_[name] = before;
    }
  }
  return absl::OkStatus();
}

std::string Runner::resolveRevision(const std::string& which, const json& isvc) const {
  const json p = isvc.value("status", json::object()).value("components", json::object()).value("predictor", json::object());
  if (which == "latest") return p.value("latestCreatedRevision", "");
  if (which == "prev") {
    std::string prev = p.value("previousRolledoutRevision", "");
    return prev.empty() ? p.value("latestRolledoutRevision", "") : prev;
  }
  return which;
}

bool Runner::graphReady(const Step& step, std::string& last_state) {
  absl::StatusOr<json> obj;
  {
    std::lock_guard lock(target_mu_);
    obj = target_.getGraph(s_.ns, step.graph);
  }
  if (!obj.ok()) {
    last_state = msg(obj.status());
    return false;
  }
  // The status must describe the graph as it is now (observedGeneration, when written).
  const json status = obj->value("status", json::object());
  bool current = !status.contains("observedGeneration") || !(*obj)["metadata"].contains("generation") ||
                 status["observedGeneration"] == (*obj)["metadata"]["generation"];
  if (isReady(*obj) && current && !urlHost(status.value("url", "")).empty()) return true;
  last_state = "Ready=False";
  for (const auto& c : status.value("conditions", json::array())) {
    if (c.value("type", "") == "Ready") last_state = common::strCat("Ready=", c.value("status", "?"), " ", c.value("message", ""));
  }
  return false;
}

void Runner::graphRequestsSent(const std::string& graph, const std::vector<SentRequest>& requests) {
  std::lock_guard lock(target_mu_);
  auto obj = target_.getGraph(s_.ns, graph);
  if (!obj.ok()) return;
  std::set<std::string> services;
  const json nodes = obj->value("spec", json::object()).value("nodes", json::object());
  for (const auto& [name, node] : nodes.items()) {
    for (const auto& step : node.value("steps", json::array())) {
      if (step.is_object() && step.contains("serviceName")) services.insert(step.value("serviceName", ""));
    }
  }
  for (const auto& service : services) {
    if (!service.empty()) target_.requestsSent(s_.ns, service, requests);
  }
}

// How long a scale to zero can take under the settings in effect (a cluster's may be Knative's
// defaults, far longer than the short windows a scenario asks refstack for): stable window,
// retention, scale-down delay and grace period, plus two ticks and the pod's drain.
double Runner::zeroWaitBound(const std::string& isvc) {
  absl::StatusOr<EffectiveAutoscaler> effective;
  absl::StatusOr<json> obj;
  {
    std::lock_guard lock(target_mu_);
    effective = target_.effectiveAutoscaler();
    obj = target_.get(s_.ns, isvc);
  }
  if (!effective.ok()) return 0;
  auto e = expectedScaleToZero(effective->config, obj.ok() ? annotationsOf(*obj) : std::map<std::string, std::string>{},
                               effective->tick_s);
  if (!e.ok()) return 0;
  return e->expected_s + e->grace_s + 2 * effective->tick_s + 4.0;
}

absl::Status Runner::waitStep(const Step& step) {
  const std::string isvc = isvcOf(step);
  double timeout_s = step.timeout_s;
  if (step.wait_for == WaitFor::kZero && step.graph.empty()) {
    if (double bound = zeroWaitBound(isvc); bound > timeout_s) {
      log(common::strCat("wait for zero: ", fmtNum(bound, 1), "s instead of ", fmtNum(timeout_s, 1),
                         "s, as the autoscaler settings in effect allow"));
      timeout_s = bound;
    }
  }
  const double deadline = now() + timeout_s;
  size_t event_cursor = 0;
  std::string last_state = "nothing observed";
  while (true) {
    if (!step.graph.empty()) {
      if (graphReady(step, last_state)) return absl::OkStatus();
    } else if (step.wait_for == WaitFor::kEvent) {
      std::lock_guard lock(mu_);
      for (; event_cursor < events_.size(); ++event_cursor) {
        // The scenario names fields of the event as GET /events shows them.
        const json e = events::toJson(events_[event_cursor].event);
        bool match = true;
        for (const auto& [k, v] : step.event_match.items()) {
          if (k == "isvc") {
            match = match && eventIsFor(events_[event_cursor].event, v.get<std::string>());
          } else {
            match = match && e.contains(k) && e[k] == v;
          }
        }
        if (match) return absl::OkStatus();
      }
      last_state = common::strCat(events_.size(), " events so far, none matching ", common::jsonText(step.event_match));
    } else if (step.wait_for == WaitFor::kReady) {
      absl::StatusOr<json> obj;
      {
        std::lock_guard lock(target_mu_);
        obj = target_.get(s_.ns, isvc);
      }
      if (obj.ok()) {
        // A new object may have no status yet.
        const json status = obj->contains("status") && (*obj)["status"].is_object() ? (*obj)["status"] : json::object();
        const json p = status.value("components", json::object()).value("predictor", json::object());
        std::string created = p.value("latestCreatedRevision", "");
        std::string ready_rev = p.value("latestReadyRevision", "");
        bool latest_ready = created.empty() || created == ready_rev;
        // With a canary percentage, the traffic table must already list the new revision.
        const json spec_pred = (*obj).value("spec", json::object()).value("predictor", json::object());
        bool routed = true;
        if (spec_pred.contains("canaryTrafficPercent") && spec_pred["canaryTrafficPercent"].is_number() &&
            spec_pred["canaryTrafficPercent"].get<double>() > 0) {
          routed = false;
          for (const auto& t : p.value("traffic", json::array())) {
            if (t.value("revisionName", "") == created && t.value("percent", 0.0) > 0) routed = true;
          }
        }
        // The status must describe the latest change: a status event after it (the stack's event
        // log), or observedGeneration caught up with the generation (a cluster).
        bool current = true;
        if (target_.kind() == "embedded") {
          std::lock_guard lock(mu_);
          auto c = changed_at_.find(isvc);
          if (c != changed_at_.end()) {
            current = false;
            for (auto e = events_.rbegin(); e != events_.rend() && !current; ++e) {
              if (e->t < c->second) break;
              current = e->event.as<events::StatusChanged>() != nullptr && eventIsFor(e->event, isvc);
            }
          }
        } else if ((*obj)["metadata"].contains("generation") && status.contains("observedGeneration")) {
          current = status["observedGeneration"] == (*obj)["metadata"]["generation"];
        }
        if (isReady(*obj) && latest_ready && routed && current) return absl::OkStatus();
        last_state = common::strCat("Ready=", isReady(*obj), ", latestCreatedRevision ", created,
                                    ", latestReadyRevision ", ready_rev.empty() ? "(none)" : ready_rev,
                                    routed ? "" : ", the canary is not in the traffic table yet",
                                    current ? "" : ", no status since the last change");
      } else {
        last_state = msg(obj.status());
      }
    } else {
      absl::StatusOr<std::map<std::string, PodCount>> pods;
      absl::StatusOr<json> obj = json::object();
      {
        std::lock_guard lock(target_mu_);
        pods = target_.pods(s_.ns, isvc);
        if (step.revision == "latest" || step.revision == "prev") obj = target_.get(s_.ns, isvc);
      }
      if (pods.ok() && obj.ok()) {
        std::string rev = resolveRevision(step.revision, *obj);
        int ready = 0, total = 0;
        for (const auto& [r, c] : *pods) {
          if (!rev.empty() && r != rev) continue;
          ready += c.ready;
          total += c.total;
        }
        if (step.wait_for == WaitFor::kZero && total == 0) {
          std::lock_guard lock(mu_);
          zero_seen_[isvc].push_back(now());
          return absl::OkStatus();
        }
        if (step.wait_for == WaitFor::kReplicas && ready == step.replicas) return absl::OkStatus();
        last_state = common::strCat(ready, " ready of ", total, " pods", rev.empty() ? "" : " of " + rev);
      } else {
        last_state = msg(pods.ok() ? obj.status() : pods.status());
      }
    }
    if (now() > deadline) {
      const char* what = step.wait_for == WaitFor::kReady      ? "Ready"
                         : step.wait_for == WaitFor::kZero     ? "zero pods"
                         : step.wait_for == WaitFor::kReplicas ? "the replica count"
                                                               : "the event";
      std::string want = step.wait_for == WaitFor::kReplicas ? common::strCat(" (", step.replicas, " ready)") : "";
      return absl::DeadlineExceededError(common::strCat("waited ", fmtNum(timeout_s), "s for ", what, want, " of ",
                                                        step.graph.empty() ? isvc : "InferenceGraph " + step.graph,
                                                        "; last seen: ", last_state));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

absl::Status Runner::loadStep(const Step& step) {
  auto outcome = std::make_unique<LoadOutcome>();
  LoadOutcome& l = *outcome;
  l.name = step.name;
  l.isvc = step.graph.empty() ? isvcOf(step) : "";
  l.graph = step.graph;
  l.host = step.host;
  l.engine = step.per_request ? "per-request" : "loadgen";
  absl::StatusOr<Endpoint> ep;
  {
    std::lock_guard lock(target_mu_);
    if (!l.graph.empty()) {
      ep = target_.graphEndpoint(s_.ns, l.graph);
    } else {
      ep = target_.endpoint(s_.ns, l.isvc, step.host);
      if (target_.lacks("control-plane").empty()) {
        auto obj = target_.get(s_.ns, l.isvc);
        if (obj.ok()) l.isvc_at_start = *obj;
      }
    }
  }
  if (!ep.ok()) return ep.status();
  // A graph's router ignores the path: the model name only shapes the V1/V2 URL.
  std::string model = l.graph.empty() ? l.isvc : l.graph;
  if (l.graph.empty() && !target_.lacks("control-plane").empty()) {
    model = !options_.model.empty() ? options_.model : (!s_.model.empty() ? s_.model : l.isvc);
  }
  {
    std::lock_guard lock(mu_);
    load_order_.push_back(l.name);
    loads_[l.name] = std::move(outcome);
  }
  if (step.concurrent) {
    l.thread = std::thread([this, &l, &step, e = *ep, model] { runLoad(l, step, e, model); });
    log(common::strCat("load ", l.name, " started in the background"));
    return absl::OkStatus();
  }
  runLoad(l, step, *ep, model);
  if (!l.error.empty()) return absl::UnavailableError(common::strCat("load ", l.name, ": ", l.error));
  return absl::OkStatus();
}

absl::StatusOr<loadgen::LoadSpec> Runner::loadSpec(const Step& step, const Endpoint& ep,
                                                   const std::string& model,
                                                   const std::string& label) const {
  // The step's options are `harness load`'s, over the defaults of a scenario load
  // (scenarios/README.md): no warm-up, 16 connections, and up to an hour when only a request
  // budget bounds the load.
  loadgen::LoadFlags base;
  base.target = common::strCat("http://", ep.host, ":", ep.http_port);
  if (ep.grpc_port != 0) base.grpc = common::strCat(ep.host, ":", ep.grpc_port);
  base.model = model;
  base.warmup = "0";
  base.duration = "3600";
  base.connections = 16;
  base.label = label;
  auto flags = loadgen::loadFlagsFromJson(step.load_options, std::move(base), s_.dir);
  if (!flags.ok()) return flags.status();
  if (!ep.authority.empty()) flags->headers.push_back("Host: " + ep.authority);
  auto spec = loadgen::loadSpecFromFlags(*flags, "load.");
  if (!spec.ok()) return spec.status();
  if (spec->protocol == loadgen::WireProtocol::kGrpc && ep.grpc_port == 0) {
    return absl::FailedPreconditionError("the target has no gRPC endpoint");
  }
  if (step.per_request) {
    // Every request's revision: the ingress's response header (gRPC: initial metadata); on a
    // graph, the router's per-step breakdown.
    spec->per_request = true;
    spec->record_header = step.graph.empty() ? "Kh-Revision" : "Kh-Graph-Steps";
  }
  return spec;
}

// A per-request record's failure as the assertions count it ("" when it succeeded).
std::string failureOf(const loadgen::RequestRecord& r) {
  switch (r.error) {
    case loadgen::ErrorKind::kNone: return "";
    case loadgen::ErrorKind::kTimeout: return "timeout";
    case loadgen::ErrorKind::kHttpStatus: return common::strCat("status ", r.status);
    case loadgen::ErrorKind::kCheck: return "check";
    case loadgen::ErrorKind::kConnect:
    case loadgen::ErrorKind::kProtocol:
    case loadgen::ErrorKind::kCount: break;
  }
  return "connect";
}

void Runner::runLoad(LoadOutcome& l, const Step& step, Endpoint ep, std::string model) {
  l.start_t = now();
  auto finish = [&] {
    l.end_t = now();
    std::lock_guard lock(mu_);
    l.done = true;
  };
  auto spec = loadSpec(step, ep, model, l.name);
  absl::StatusOr<loadgen::LoadPlan> plan = spec.ok() ? loadgen::planLoad(*spec) : spec.status();
  if (!plan.ok()) {
    l.error = msg(plan.status());
    return finish();
  }
  const loadgen::RunConfig config = plan->config;
  auto result = loadgen::runPlan(std::move(*plan), time_);
  if (!result.ok()) {
    l.error = msg(result.status());
    return finish();
  }
  l.run_json = loadgen::runToJson(*result, config);
  if (step.per_request) {
    // Every request in intended-time order, on the scenario's clock; what succeeded and what
    // failed is counted from them.
    const double run_start =
        std::chrono::duration<double>(result->started.time_since_epoch()).count() - start_unix_;
    {
      // On the unix clock, for a target that finds cold starts in them (kube).
      std::vector<SentRequest> sent;
      sent.reserve(result->records.size());
      for (const auto& r : result->records) {
        const double at = start_unix_ + run_start + r.intended_s;
        const int64_t first_byte_ns = r.first_byte_ns >= 0 ? r.first_byte_ns : r.latency_ns;
        sent.push_back({at, at + static_cast<double>(first_byte_ns) / 1e9, r.status != 0});
      }
      if (!l.graph.empty()) {
        graphRequestsSent(l.graph, sent);
      } else {
        std::lock_guard lock(target_mu_);
        target_.requestsSent(s_.ns, l.isvc, sent);
      }
    }
    l.records.reserve(result->records.size());
    for (auto& r : result->records) {
      Record record{run_start + r.intended_s, static_cast<double>(r.latency_ns) / 1e6, r.status, "", "",
                    failureOf(r)};
      (l.graph.empty() ? record.revision : record.graph_steps) = std::move(r.header);
      if (record.error.empty()) {
        ++l.succeeded;
      } else {
        ++l.failed;
        ++l.failures[record.error];
      }
      l.records.push_back(std::move(record));
    }
    result->records = {};
  } else {
    l.succeeded = result->succeeded;
    l.failed = result->completed - result->succeeded;
    for (const auto& [kind, n] : result->errors) {
      if (n > 0) l.failures[kind] += n;
    }
    for (const auto& [code, n] : result->status_codes) {
      if (code != 200 && code != 0 && n > 0 && result->transport != "grpc") {
        l.failures[common::strCat("HTTP ", code)] = n;
      }
    }
  }
  l.run = std::move(*result);
  log(common::strCat("load ", l.name, ": ", l.run->completed, " requests, ", fmtNum(l.run->throughput, 0),
                     " req/s, p99 ", fmtNum(l.run_json["latency"].value("p99_ms", 0.0)), " ms, ", l.failed, " failed"));
  finish();
}

void Runner::joinLoads(const std::vector<std::string>& names) {
  for (auto& [name, l] : loads_) {
    if (!names.empty() && std::find(names.begin(), names.end(), name) == names.end()) continue;
    if (l->thread.joinable()) l->thread.join();
  }
}

absl::Status Runner::conformStep(const Step& step) {
  std::string dir = options_.conformance_dir.empty() ? conformance::defaultCaseDir() : options_.conformance_dir;
  auto cases = conformance::loadCases(dir);
  if (!cases.ok()) return cases.status();
  // One run of the cases per endpoint: the ISVC's, or each graph's (through its own host).
  std::vector<conformance::RunOptions> runs;
  std::string subject;
  if (!step.graph.empty()) {
    std::set<std::string> graphs;
    for (const auto& c : *cases) {
      if (c.protocol != "graph" || (step.graph != "all" && c.graph != step.graph)) continue;
      if (!step.filter.empty() && c.id.find(step.filter) == std::string::npos) continue;
      graphs.insert(c.graph);
    }
    if (graphs.empty()) {
      return absl::InvalidArgumentError(common::strCat("conform.graph: no graph cases for \"", step.graph, "\" in ", dir));
    }
    for (const auto& g : graphs) {
      absl::StatusOr<Endpoint> ep;
      {
        std::lock_guard lock(target_mu_);
        ep = target_.graphEndpoint(s_.ns, g);
      }
      if (!ep.ok()) return absl::Status(ep.status().code(), common::strCat("conform.graph ", g, ": ", msg(ep.status())));
      conformance::RunOptions ro;
      ro.http_host = ep->host;
      ro.http_port = ep->http_port;
      ro.graphs = {g};
      ro.graph_host = ep->authority;  // empty: the router itself
      ro.protocols = "graph";
      ro.filter = step.filter;
      runs.push_back(ro);
    }
    subject = common::strCat("graph ", step.graph);
  } else {
    const std::string isvc = isvcOf(step);
    absl::StatusOr<Endpoint> ep;
    {
      std::lock_guard lock(target_mu_);
      ep = target_.endpoint(s_.ns, isvc, "");
    }
    if (!ep.ok()) return ep.status();
    conformance::RunOptions ro;
    ro.http_host = ep->host;
    ro.http_port = ep->http_port;
    if (ep->grpc_port != 0) ro.grpc_target = common::strCat(ep->host, ":", ep->grpc_port);
    ro.model = !step.model.empty() ? step.model
               : !target_.lacks("control-plane").empty() && !options_.model.empty() ? options_.model
               : !target_.lacks("control-plane").empty() && !s_.model.empty()      ? s_.model
                                                                                    : isvc;
    ro.protocols = step.protocols;
    ro.filter = step.filter;
    ro.authority = ep->authority;
    subject = ro.model;
    // gRPC that the target cannot carry to this service is skipped with the reason, not failed.
    std::vector<std::string> protocols = absl::StrSplit(step.protocols, ',', absl::SkipEmpty());
    if (std::find(protocols.begin(), protocols.end(), "grpc") != protocols.end()) {
      std::string why;
      {
        std::lock_guard lock(target_mu_);
        why = target_.lacksGrpc(s_.ns, isvc);
      }
      if (!why.empty()) {
        AssertionResult skipped;
        skipped.name = common::strCat("conformance grpc (", subject, ")");
        skipped.verdict = Verdict::kSkip;
        skipped.why = why;
        assertions_.push_back(skipped);
        protocols.erase(std::remove(protocols.begin(), protocols.end(), "grpc"), protocols.end());
        if (protocols.empty()) return absl::OkStatus();
        ro.protocols = absl::StrJoin(protocols, ",");
      }
    }
    runs.push_back(ro);
  }
  AssertionResult a;
  a.name = common::strCat("conformance ", step.protocols, " (", subject, ")");
  a.expected = "every MUST case passes";
  conformance::Summary summary;
  for (const auto& ro : runs) {
    auto one = conformance::runCases(*cases, ro, {});
    if (!one.ok()) {
      a.verdict = Verdict::kFail;
      a.measured = msg(one.status());
      a.why = "the target did not answer";
      assertions_.push_back(a);
      return absl::OkStatus();
    }
    summary.passed += one->passed;
    summary.failed += one->failed;
    summary.skipped += one->skipped;
    summary.must_failed += one->must_failed;
    for (auto& r : one->results) summary.results.push_back(std::move(r));
  }
  const conformance::RunOptions& ro = runs.front();
  json results = conformance::resultsJson(summary, ro);
  std::string failed_ids;
  int shown = 0;
  for (const auto& r : summary.results) {
    if (r.outcome == conformance::Outcome::kFail && r.test && r.test->level == "MUST" && shown++ < 5) {
      failed_ids += common::strCat(failed_ids.empty() ? "" : "; ", r.test->id, ": ", r.detail.substr(0, 160));
    }
  }
  a.verdict = summary.must_failed == 0 ? Verdict::kPass : Verdict::kFail;
  a.measured = common::strCat(summary.passed, " passed, ", summary.failed, " failed (", summary.must_failed,
                              " MUST), ", summary.skipped, " skipped");
  a.why = a.verdict == Verdict::kPass ? "no MUST case failed" : common::strCat("MUST cases failed: ", failed_ids);
  a.data = {{"kind", "conformance"}, {"passed", summary.passed}, {"failed", summary.failed},
            {"skipped", summary.skipped}, {"must_failed", summary.must_failed}};
  assertions_.push_back(a);
  conformance_.push_back({{"protocols", step.protocols}, {"model", subject}, {"results", results}});
  if (!options_.out_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(options_.out_dir, ec);
    std::string stem = step.graph.empty() ? step.protocols : common::strCat("graph-", step.graph);
    std::replace(stem.begin(), stem.end(), ',', '-');
    std::ofstream(options_.out_dir / common::strCat("conformance-", stem, ".junit.xml")) << conformance::junitXml(summary, ro);
  }
  log(common::strCat("conform ", step.graph.empty() ? step.protocols : subject, ": ", a.measured));
  return absl::OkStatus();
}

absl::Status Runner::runStep(const Step& step, json& step_log) {
  const std::string cp = target_.lacks("control-plane");
  bool needs_cp = step.kind == StepKind::kApply || step.kind == StepKind::kDelete ||
                  step.kind == StepKind::kPatch || step.kind == StepKind::kWait;
  if (needs_cp && !cp.empty()) {
    step_log["status"] = "skipped";
    step_log["detail"] = cp;
    return absl::OkStatus();
  }
  switch (step.kind) {
    case StepKind::kApply: {
      std::string text = step.inline_yaml;
      std::string source = "inline";
      if (!step.file.empty()) {
        std::ifstream in(step.file);
        std::stringstream ss;
        ss << in.rdbuf();
        text = ss.str();
        source = step.file.filename().string();
      }
      step_log["detail"] = source;
      return applyText(text, source);
    }
    case StepKind::kDelete: {
      std::lock_guard lock(target_mu_);
      step_log["detail"] = isvcOf(step);
      return target_.remove(s_.ns, isvcOf(step));
    }
    case StepKind::kPatch: {
      step_log["detail"] = common::jsonText(step.merge_patch);
      const double before = now();
      absl::Status st;
      {
        std::lock_guard lock(target_mu_);
        st = target_.patch(s_.ns, isvcOf(step), step.merge_patch);
      }
      if (!st.ok()) return absl::Status(st.code(), common::strCat("patch of ", isvcOf(step), ": ", msg(st)));
      std::lock_guard lock(mu_);
      changed_at_[isvcOf(step)] = before;
      return absl::OkStatus();
    }
    case StepKind::kWait:
      return waitStep(step);
    case StepKind::kLoad:
      return loadStep(step);
    case StepKind::kIdle:
      std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<int64_t>(step.idle_s * 1000)));
      return absl::OkStatus();
    case StepKind::kConform:
      return conformStep(step);
    case StepKind::kJoin:
      joinLoads(step.join);
      return absl::OkStatus();
    case StepKind::kFault:
      return faultStep(step);
    case StepKind::kAssert: {
      // Events the stack emitted since the observer's last poll (a cold start answered a moment
      // ago) count too.
      observeOnce();
      AssertionResult a = evaluate(step);
      log(common::strCat("assert ", a.name, ": ", verdictName(a.verdict), " (", a.measured, ")"));
      step_log["detail"] = verdictName(a.verdict);
      assertions_.push_back(std::move(a));
      return absl::OkStatus();
    }
  }
  return absl::OkStatus();
}

ScenarioResult Runner::run() {
  ScenarioResult result;
  result.name = s_.name;
  result.description = s_.description;
  result.file = s_.file.string();
  const auto started = Clock::now();
  start_unix_ = std::chrono::duration<double>(time_.systemTime().time_since_epoch()).count();
  result.observations["start_unix"] = start_unix_;
  auto finishResult = [&] {
    result.duration_s = std::chrono::duration<double>(Clock::now() - started).count();
    result.target = target_.describe();
    result.assertions = assertions_;
    json loads = json::array();
    for (const auto& n : load_order_) loads.push_back(loadJson(*loads_.at(n)));
    result.observations["loads"] = loads;
    result.observations["samples"] = samples_;
    json observed = json::array();
    for (const auto& e : events_) {
      json j = events::toJson(e.event);
      j["t"] = e.t;
      observed.push_back(std::move(j));
    }
    result.observations["events"] = std::move(observed);
    result.observations["conformance"] = conformance_;
    if (result.verdict != Verdict::kSkip || !result.skip_reason.empty()) {
      // Already decided (skipped or an error).
    }
    if (result.skip_reason.empty()) {
      bool failed = !result.error.empty();
      bool any_pass = false;
      for (const auto& a : result.assertions) {
        failed = failed || a.verdict == Verdict::kFail;
        any_pass = any_pass || a.verdict == Verdict::kPass;
      }
      result.verdict = failed ? Verdict::kFail : any_pass ? Verdict::kPass : Verdict::kSkip;
      if (result.verdict == Verdict::kSkip) result.skip_reason = "every assertion was skipped";
    }
    return result;
  };

  // Requirements the target cannot meet skip the whole scenario, with the target's reason.
  TargetSettings settings;
  settings.autoscaler = s_.autoscaler;
  settings.autoscaler_tick_s = s_.autoscaler_tick_s;
  settings.stack = s_.stack;
  // Relative storageUri paths resolve against the directory above the scenario's (the
  // repository root for scenarios/), as reference-impl/manifests do against the root.
  {
    std::error_code ec;  // the directory was read from, so this cannot fail but for a race
    std::filesystem::path above = std::filesystem::absolute(s_.dir.empty() ? "." : s_.dir, ec) / "..";
    std::filesystem::path canonical = std::filesystem::weakly_canonical(above, ec);
    settings.base_dir = ec ? above : canonical;
  }
  auto st = target_.begin(settings);
  if (!st.ok()) {
    result.error = common::strCat("the target did not start: ", msg(st));
    return finishResult();
  }
  std::vector<std::string> needs = s_.requires_;
  if (!s_.stack.empty()) needs.push_back("stack-settings");
  for (const auto& r : needs) {
    std::string why = target_.lacks(r);
    if (!why.empty()) {
      result.verdict = Verdict::kSkip;
      result.skip_reason = common::strCat("needs ", r, ": ", why);
      log(common::strCat("skipped: ", result.skip_reason));
      target_.end();
      return finishResult();
    }
  }
  if (s_.isvc.empty()) {
    // Default InferenceService: the first one the manifests name.
  }
  std::thread observer([this] { observe(); });
  json steps = json::array();
  auto fail = [&](const std::string& what) {
    result.error = what;
    log(common::strCat("error: ", what));
  };
  // Manifests first.
  for (const auto& m : s_.manifests) {
    json step_log = {{"kind", "apply"}, {"detail", m.filename().string()}, {"start_t", now()}};
    if (!target_.lacks("control-plane").empty()) {
      step_log["status"] = "skipped";
      step_log["detail"] = common::strCat(m.filename().string(), ": ", target_.lacks("control-plane"));
    } else {
      std::ifstream in(m);
      std::stringstream ss;
      ss << in.rdbuf();
      auto applied = applyText(ss.str(), m.filename().string());
      step_log["status"] = applied.ok() ? "ok" : "failed";
      if (!applied.ok()) {
        fail(common::strCat("apply ", m.filename().string(), ": ", msg(applied)));
        step_log["detail"] = result.error;
      }
    }
    step_log["end_t"] = now();
    steps.push_back(step_log);
    if (!result.error.empty()) break;
  }
  for (size_t i = 0; i < s_.steps.size() && result.error.empty(); ++i) {
    const Step& step = s_.steps[i];
    json step_log = {{"index", i + 1}, {"kind", stepKindName(step.kind)}, {"line", step.where.line},
                     {"name", step.name}, {"start_t", now()}, {"status", "ok"}};
    if (step.kind == StepKind::kLoad) step_log["detail"] = common::jsonText(step.load_options);
    if (step.kind == StepKind::kWait) step_log["detail"] = isvcOf(step);
    if (step.kind == StepKind::kIdle) step_log["detail"] = common::strCat(fmtNum(step.idle_s), "s");
    auto status = runStep(step, step_log);
    step_log["end_t"] = now();
    if (!status.ok()) {
      step_log["status"] = "failed";
      step_log["detail"] = msg(status);
      fail(common::strCat("step ", i + 1, " (", stepKindName(step.kind), ", line ", step.where.line, "): ", msg(status)));
    }
    steps.push_back(step_log);
  }
  joinLoads({});
  stop_observer_ = true;
  observer.join();
  result.observations["steps"] = steps;
  // A background load that failed to run is an error too.
  for (const auto& n : load_order_) {
    const auto& l = *loads_.at(n);
    if (!l.error.empty() && result.error.empty()) fail(common::strCat("load ", n, ": ", l.error));
  }
  target_.end();
  return finishResult();
}

json Runner::loadJson(const LoadOutcome& l) const {
  json out = {{"name", l.name}, {"isvc", l.isvc}, {"graph", l.graph}, {"host", l.host}, {"engine", l.engine},
              {"start_t", l.start_t}, {"end_t", l.end_t}, {"succeeded", l.succeeded},
              {"failed", l.failed}, {"failures", l.failures}, {"error", l.error}};
  json rate = json::array();
  json curve = json::array();
  if (l.run) {
    out["run"] = l.run_json;
    double offset = l.start_t + l.run_json["config"].value("warmup_s", 0.0);
    for (const auto& w : l.run_json["windows"]) rate.push_back({offset + w.value("start_s", 0.0), w.value("throughput", 0.0)});
    curve = l.run_json["percentile_curve"];
    out["latency"] = l.run_json["latency"];
  }
  if (!l.records.empty()) {
    std::map<std::string, int64_t> revisions;
    for (const auto& r : l.records) {
      if (!r.revision.empty()) ++revisions[r.revision];
    }
    out["revisions"] = revisions;
  }
  out["rate_series"] = rate;
  out["percentile_curve"] = curve;
  return out;
}

// ------------------------------------------------------------------ assertions

AssertionResult Runner::evaluate(const Step& step) {
  const json& p = step.params;
  auto loadNamed = [&](const std::string& name) -> LoadOutcome* {
    auto it = loads_.find(name);
    if (it == loads_.end()) return nullptr;
    if (it->second->thread.joinable()) it->second->thread.join();  // its figures must be final
    return it->second.get();
  };
  auto skip = [&](const std::string& name, const std::string& why) {
    AssertionResult a;
    a.name = name;
    a.verdict = Verdict::kSkip;
    a.why = why;
    return a;
  };
  const std::string& kind = step.assertion;
  if (kind == "canary_split" || kind == "tag_routing" || kind == "latency_slo" || kind == "graph_split" ||
      kind == "graph_breakdown") {
    LoadOutcome* l = loadNamed(p["load"]);
    std::string name = common::strCat(kind, " (load ", p["load"].get<std::string>(), ")");
    if (l == nullptr) return skip(name, "no such load");
    if (!l->error.empty()) {
      AssertionResult a = skip(name, "");
      a.verdict = Verdict::kFail;
      a.measured = "the load did not run";
      a.why = l->error;
      return a;
    }
    if (kind == "graph_split" || kind == "graph_breakdown") {
      if (l->graph.empty()) {
        AssertionResult a = skip(name, "give the load graph: NAME");
        a.verdict = Verdict::kFail;
        a.measured = "the load was not on a graph";
        return a;
      }
      // KServe's own router sends no breakdown: nothing to measure (not a failure of the graph).
      bool any = std::any_of(l->records.begin(), l->records.end(), [](const Record& r) { return !r.graph_steps.empty(); });
      if (!any && !l->records.empty()) {
        return skip(name, "no response carried Kh-Graph-Steps (the per-step breakdown refstack's graph-router adds; "
                          "KServe's router has none)");
      }
      return kind == "graph_split" ? graphSplit(step, *l) : graphBreakdown(step, *l);
    }
    if (kind == "canary_split") return canarySplit(step, *l);
    if (kind == "tag_routing") return tagRouting(step, *l);
    return latencySlo(step, *l);
  }
  if (kind == "no_errors") {
    for (const auto& n : p.value("loads", std::vector<std::string>{})) loadNamed(n);
    if (!p.contains("loads")) joinLoads({});
    return noErrors(step);
  }
  if (kind == "accounted") {
    for (const auto& n : p.value("loads", std::vector<std::string>{})) loadNamed(n);
    if (!p.contains("loads")) joinLoads({});
    return accounted(step);
  }
  if (kind == "recovery") {
    LoadOutcome* l = loadNamed(p["load"]);
    (void)l;
    return recovery(step);
  }
  if (kind == "compare") return compare(step);
  if (kind == "graph_output") return graphOutput(step);
  // The rest read observations of the control plane.
  std::string name = common::strCat(kind, " (", isvcOf(step), ")");
  if (std::string why = target_.lacks("events"); !why.empty()) return skip(name, why);
  if (kind == "cold_start") {
    if (std::string why = target_.lacks("coldstart-events"); !why.empty()) return skip(name, why);
    return coldStart(step);
  }
  if (kind == "scale_to_zero") return scaleToZero(step);
  if (kind == "simulation_agrees") {
    if (std::string why = target_.lacks("simulation"); !why.empty()) return skip(name, why);
    return simulationAgrees(step);
  }
  return scaledUp(step);
}

AssertionResult Runner::canarySplit(const Step& step, const LoadOutcome& l) {
  const json& p = step.params;
  AssertionResult a;
  a.name = common::strCat("canary_split (load ", l.name, ")");
  std::string which = p.value("revision", "latest");
  std::string rev = resolveRevision(which, l.isvc_at_start);
  double percent = p.contains("percent") ? p["percent"].get<double>()
                                         : l.isvc_at_start.value("spec", json::object())
                                               .value("predictor", json::object())
                                               .value("canaryTrafficPercent", -1.0);
  double confidence = p.value("confidence", 0.999);
  if (percent < 0) {
    a.verdict = Verdict::kFail;
    a.why = "no percent given and the InferenceService had no canaryTrafficPercent when the load began";
    return a;
  }
  if (which == "prev" && !p.contains("percent")) percent = 100 - percent;
  int64_t n = 0, k = 0;
  for (const auto& r : l.records) {
    if (!r.error.empty()) continue;
    ++n;
    k += r.revision == rev ? 1 : 0;
  }
  a.expected = common::strCat(fmtNum(percent), "% of requests to ", rev, " (", which == "latest" ? "canaryTrafficPercent" : which,
                              "), exact two-sided binomial test at ", fmtNum(confidence * 100, 2), "% confidence");
  if (n == 0) {
    a.verdict = Verdict::kFail;
    a.measured = "no successful request";
    a.why = "nothing to test (was the load per_request?)";
    return a;
  }
  double pval = binomialTwoSidedPValue(k, n, percent / 100);
  Interval ci = clopperPearson(k, n, confidence);
  double share = 100.0 * static_cast<double>(k) / static_cast<double>(n);
  a.measured = common::strCat(k, " of ", n, " = ", fmtNum(share, 2), "% (", fmtNum(confidence * 100, 2), "% Clopper-Pearson interval [",
                              fmtNum(ci.low * 100, 2), "%, ", fmtNum(ci.high * 100, 2), "%]), p = ", fmtNum(pval, 4));
  bool pass = pval >= 1 - confidence;
  a.verdict = pass ? Verdict::kPass : Verdict::kFail;
  a.why = pass ? common::strCat("p = ", fmtNum(pval, 4), " >= ", fmtNum(1 - confidence, 6),
                                ": consistent with ", fmtNum(percent), "%")
               : common::strCat("p = ", pval, " < ", fmtNum(1 - confidence, 6), ": a split of ", fmtNum(share, 2),
                                "% over ", n, " requests is not ", fmtNum(percent), "% at this confidence");
  a.data = {{"kind", "canary"}, {"revision", l.records.empty() ? "" : rev}, {"k", k}, {"n", n},
            {"expected_percent", percent}, {"ci_low", ci.low * 100}, {"ci_high", ci.high * 100},
            {"p_value", pval}, {"confidence", confidence}};
  return a;
}

// ------------------------------------------------------------------ graph assertions

namespace {

// One call of a graph's breakdown (Kh-Graph-Steps).
struct GraphStep {
  std::string node, step, target;
  int status = 0;
  double start_ms = 0, ms = 0;
};

std::vector<GraphStep> parseGraphSteps(const std::string& header) {
  std::vector<GraphStep> out;
  json parsed = json::parse(header, nullptr, false);
  if (!parsed.is_array()) return out;
  for (const auto& s : parsed) {
    if (!s.is_object()) continue;
    out.push_back({s.value("node", ""), s.value("step", ""), s.value("target", ""), s.value("status", 0),
                   s.value("start_ms", 0.0), s.value("ms", 0.0)});
  }
  return out;
}

}  // namespace

AssertionResult Runner::graphOutput(const Step& step) {
  const json& p = step.params;
  const std::string graph = p["graph"].get<std::string>();
  AssertionResult a;
  std::string input = p["input"].is_string() ? p["input"].get<std::string>() : common::jsonText(p["input"]);
  a.name = common::strCat("graph_output (", graph, ", input ", input.substr(0, 60), ")");
  int want_status = p.value("status", 200);
  a.expected = common::strCat("status ", want_status, p.contains("output") ? common::strCat(", body ", common::jsonText(p["output"])) : "");
  absl::StatusOr<Endpoint> ep;
  {
    std::lock_guard lock(target_mu_);
    ep = target_.graphEndpoint(s_.ns, graph);
  }
  if (!ep.ok()) {
    a.verdict = Verdict::kFail;
    a.measured = msg(ep.status());
    a.why = "the graph has no endpoint";
    return a;
  }
  http::Client client(ep->host, ep->http_port, std::chrono::seconds(60));
  http::Request req{boost::beast::http::verb::post, "/", 11};
  req.set(boost::beast::http::field::host,
          ep->authority.empty() ? common::strCat(ep->host, ":", ep->http_port) : ep->authority);
  req.set(boost::beast::http::field::content_type, "application/json");
  req.body() = input;
  req.prepare_payload();
  const double sent = start_unix_ + now();
  auto res = client.send(std::move(req));
  // A step at zero pods is cold-started by this very request (the kube target finds it so).
  graphRequestsSent(graph, {{sent, start_unix_ + now(), res.ok()}});
  if (!res.ok()) {
    a.verdict = Verdict::kFail;
    a.measured = msg(res.status());
    a.why = "no answer";
    return a;
  }
  int status = static_cast<int>(res->result_int());
  json body = json::parse(res->body(), nullptr, false);
  a.measured = common::strCat("status ", status, ", body ", res->body().substr(0, 300));
  bool status_ok = status == want_status;
  bool body_ok = !p.contains("output") || (!body.is_discarded() && body == p["output"]);
  a.verdict = status_ok && body_ok ? Verdict::kPass : Verdict::kFail;
  a.why = a.verdict == Verdict::kPass ? "the graph answered as expected"
          : !status_ok               ? common::strCat("status ", status, ", not ", want_status)
                                     : "the body differs (compared as JSON)";
  std::vector<GraphStep> steps = parseGraphSteps(std::string((*res)["Kh-Graph-Steps"]));
  json trace = json::array();
  for (const auto& st : steps) trace.push_back({{"node", st.node}, {"step", st.step}, {"status", st.status}, {"ms", st.ms}});
  a.data = {{"kind", "graph_output"}, {"graph", graph}, {"status", status}, {"steps", trace}};
  return a;
}

AssertionResult Runner::graphSplit(const Step& step, const LoadOutcome& l) {
  const json& p = step.params;
  const std::string node = p.value("node", "root");
  const double confidence = p.value("confidence", 0.999);
  AssertionResult a;
  a.name = common::strCat("graph_split (load ", l.name, ", ", l.graph, " node ", node, ")");
  absl::StatusOr<json> graph;
  {
    std::lock_guard lock(target_mu_);
    graph = target_.getGraph(s_.ns, l.graph);
  }
  if (!graph.ok()) {
    a.verdict = Verdict::kFail;
    a.measured = msg(graph.status());
    a.why = "cannot read the graph's weights";
    return a;
  }
  const json router = graph->value("spec", json::object()).value("nodes", json::object()).value(node, json::object());
  if (router.value("routerType", "") != "Splitter") {
    a.verdict = Verdict::kFail;
    a.why = common::strCat("node ", node, " of ", l.graph, " is not a Splitter");
    return a;
  }
  // Step names as the router reports them: the name, else the index.
  std::vector<std::pair<std::string, double>> weights;
  int index = 0;
  for (const auto& st : router.value("steps", json::array())) {
    std::string name = st.value("name", "");
    weights.emplace_back(name.empty() ? std::to_string(index) : name, st.value("weight", 0.0));
    ++index;
  }
  std::map<std::string, int64_t> chosen;
  int64_t n = 0;
  for (const auto& r : l.records) {
    for (const auto& st : parseGraphSteps(r.graph_steps)) {
      if (st.node != node) continue;
      ++chosen[st.step];
      ++n;
      break;  // the first call at the node is the draw's
    }
  }
  a.expected = common::strCat("each step of ", node, " drawn as often as its weight, exact two-sided binomial test at ",
                              fmtNum(confidence * 100, 2), "% confidence (Bonferroni over ", weights.size(), " steps)");
  if (n == 0) {
    a.verdict = Verdict::kFail;
    a.measured = "no request reached the node";
    a.why = "nothing to test";
    return a;
  }
  bool pass = true;
  std::string measured, why;
  json per_step = json::array();
  const double alpha = (1 - confidence) / static_cast<double>(std::max<size_t>(1, weights.size()));
  for (const auto& [name, weight] : weights) {
    int64_t k = chosen.count(name) ? chosen[name] : 0;
    double pval = binomialTwoSidedPValue(k, n, weight / 100);
    Interval ci = clopperPearson(k, n, confidence);
    measured += common::strCat(measured.empty() ? "" : "; ", name, " ", k, "/", n, " = ",
                               fmtNum(100.0 * static_cast<double>(k) / static_cast<double>(n), 2), "% (weight ",
                               fmtNum(weight), ", p = ", fmtNum(pval, 4), ")");
    if (pval < alpha) {
      pass = false;
      why += common::strCat(why.empty() ? "" : "; ", name, ": p = ", pval, " < ", fmtNum(alpha, 6));
    }
    per_step.push_back({{"step", name}, {"k", k}, {"n", n}, {"expected_percent", weight}, {"ci_low", ci.low * 100},
                        {"ci_high", ci.high * 100}, {"p_value", pval}});
  }
  a.measured = measured;
  a.verdict = pass ? Verdict::kPass : Verdict::kFail;
  a.why = pass ? "every step's share is consistent with its weight" : why;
  a.data = {{"kind", "graph_split"}, {"graph", l.graph}, {"node", node}, {"confidence", confidence}, {"steps", per_step}};
  return a;
}

AssertionResult Runner::graphBreakdown(const Step&, const LoadOutcome& l) {
  AssertionResult a;
  a.name = common::strCat("graph_breakdown (load ", l.name, ", ", l.graph, ")");
  a.expected = "every answered request carries the router's per-step breakdown (Kh-Graph-Steps)";
  struct Agg {
    std::string target;
    std::vector<double> ms, start_ms;
    std::map<int, int64_t> statuses;
  };
  std::map<std::pair<std::string, std::string>, Agg> by_step;
  std::vector<std::pair<std::string, std::string>> order;  // first seen
  std::vector<double> totals;
  int64_t answered = 0, with_steps = 0;
  for (const auto& r : l.records) {
    if (r.status == 0) continue;  // no HTTP answer at all
    ++answered;
    auto steps = parseGraphSteps(r.graph_steps);
    if (!steps.empty()) ++with_steps;
    totals.push_back(r.latency_ms);
    for (const auto& st : steps) {
      auto key = std::make_pair(st.node, st.step);
      auto [it, inserted] = by_step.try_emplace(key);
      if (inserted) order.push_back(key);
      it->second.target = st.target;
      it->second.ms.push_back(st.ms);
      it->second.start_ms.push_back(st.start_ms);
      ++it->second.statuses[st.status];
    }
  }
  json rows = json::array();
  std::string measured;
  for (const auto& key : order) {
    const Agg& g = by_step[key];
    json statuses = json::object();
    for (const auto& [st, n] : g.statuses) statuses[std::to_string(st)] = n;
    double p50 = percentile(g.ms, 50), p99 = percentile(g.ms, 99), start = percentile(g.start_ms, 50);
    rows.push_back({{"node", key.first}, {"step", key.second}, {"target", g.target}, {"calls", g.ms.size()},
                    {"p50_ms", p50}, {"p99_ms", p99}, {"start_p50_ms", start}, {"statuses", statuses}});
    measured += common::strCat(measured.empty() ? "" : "; ", key.first, "/", key.second, " p50 ", fmtNum(p50, 2),
                               " ms p99 ", fmtNum(p99, 2), " ms (", g.ms.size(), " calls)");
  }
  a.measured = common::strCat(with_steps, " of ", answered, " answers with a breakdown: ", measured);
  a.verdict = answered > 0 && with_steps == answered ? Verdict::kPass : Verdict::kFail;
  a.why = a.verdict == Verdict::kPass ? "the breakdown is in the report"
          : answered == 0              ? "no request was answered"
                                       : common::strCat(answered - with_steps, " answers had no Kh-Graph-Steps");
  a.data = {{"kind", "graph_breakdown"}, {"graph", l.graph}, {"steps", rows},
            {"graph_p50_ms", percentile(totals, 50)}, {"graph_p99_ms", percentile(totals, 99)}};
  return a;
}

// ------------------------------------------------------------------ the simulator against the stack

AssertionResult Runner::simulationAgrees(const Step& step) {
  const json& p = step.params;
  const std::string isvc = isvcOf(step);
  AssertionResult a;
  a.name = common::strCat("simulation_agrees (", isvc, ")");
  const double tolerance = p.value("tolerance", 0.10);
  a.expected = common::strCat("harness simulate, replaying these requests through the same KPA code, gives the same cold "
                              "starts and scale-to-zero events, and pod-seconds within ",
                              fmtNum(tolerance * 100), "%");
  auto fail = [&](std::string why) {
    a.verdict = Verdict::kFail;
    a.why = std::move(why);
    return a;
  };
  // The live revision: the service's first predictor revision; its creation is time zero.
  std::string revision;
  double origin = 0;
  int64_t live_cold = 0, live_zero = 0;
  double live_pod_s = 0;
  std::vector<double> ready_ms;  // pod start-up as the cold starts measured it
  const double end = now();
  {
    std::lock_guard lock(mu_);
    int last_replicas = -1;
    std::map<std::string, double> started;  // pod -> first seen
    for (const auto& oe : events_) {
      if (const auto* rc = oe.event.as<events::RevisionCreated>()) {
        if (revision.empty() && rc->component == "predictor" && eventIsFor(oe.event, isvc)) {
          revision = rc->revision;
          origin = oe.t;
        }
        continue;
      }
      if (revision.empty()) continue;
      if (const auto* c = oe.event.as<events::ColdStart>(); c && c->revision == revision) {
        ++live_cold;
        if (c->breakdown.ready_ms) ready_ms.push_back(*c->breakdown.ready_ms);
      } else if (const auto* d = oe.event.as<events::ScaleDecided>(); d && d->revision == revision) {
        if (d->desired == 0 && last_replicas != 0) ++live_zero;
        last_replicas = d->desired;
      } else if (const auto* pp = oe.event.as<events::PodPhaseChanged>(); pp && pp->revision == revision) {
        started.try_emplace(pp->pod, oe.t);
        if (pp->phase == "Stopped" && started.count(pp->pod)) {
          live_pod_s += oe.t - started[pp->pod];
          started.erase(pp->pod);
        }
      }
    }
    for (const auto& [pod, t] : started) live_pod_s += end - t;
  }
  if (revision.empty()) return fail(common::strCat("no revision of ", isvc, " was created while the scenario watched"));
  // The requests: every per-request load on the service (or the one named), at their intended
  // send times.
  std::vector<double> arrivals, latencies;
  for (const auto& n : load_order_) {
    const auto& l = *loads_.at(n);
    if (p.contains("load") ? n != p["load"].get<std::string>() : l.isvc != isvc) continue;
    for (const auto& r : l.records) {
      arrivals.push_back(r.t - origin);
      latencies.push_back(r.latency_ms);
    }
  }
  if (arrivals.empty()) return fail("no per_request load on the service to replay (give the load per_request: true)");
  std::sort(arrivals.begin(), arrivals.end());
  // The model: what the stack measured, unless given.
  simulate::ServiceModel model;
  model.service_time_s = p.contains("service_time") ? p["service_time"].get<double>() : percentile(latencies, 50) / 1000;
  model.pod_startup_s = p.contains("pod_startup") ? p["pod_startup"].get<double>()
                        : ready_ms.empty()        ? 0.5
                                                  : percentile(ready_ms, 50) / 1000;
  model.pod_drain_s = p.value("pod_drain", 1.0);  // refstack's drainQuietPeriod
  json obj;
  {
    std::lock_guard lock(target_mu_);
    auto got = target_.get(s_.ns, isvc);
    if (!got.ok()) return fail(msg(got.status()));
    obj = *got;
  }
  // The revision's annotations as the controller makes them: the service's, with KServe's
  // fields (minReplicas: unset is 1) on top.
  autoscaler::Annotations annotations = annotationsOf(obj);
  const json predictor = obj.value("spec", json::object()).value("predictor", json::object());
  autoscaler::KServeScalingFields fields;
  if (predictor.contains("minReplicas") && predictor["minReplicas"].is_number()) fields.min_replicas = predictor["minReplicas"].get<int32_t>();
  if (predictor.contains("maxReplicas") && predictor["maxReplicas"].is_number()) fields.max_replicas = predictor["maxReplicas"].get<int32_t>();
  if (predictor.contains("scaleTarget") && predictor["scaleTarget"].is_number()) fields.scale_target = predictor["scaleTarget"].get<int32_t>();
  if (predictor.contains("scaleMetric") && predictor["scaleMetric"].is_string()) fields.scale_metric = predictor["scaleMetric"].get<std::string>();
  model.annotations = autoscaler::applyKServeScaling(fields, annotations);
  model.container_concurrency = predictor.value("containerConcurrency", 0);
  simulate::SimulationSettings settings;
  settings.autoscaler = s_.autoscaler;
  settings.tick_interval_s = s_.autoscaler_tick_s > 0 ? s_.autoscaler_tick_s : 2.0;
  settings.duration_s = end - origin;
  auto sim = simulate::simulate({{isvc, arrivals}}, model, settings);
  if (!sim.ok()) return fail(common::strCat("the simulation did not run: ", msg(sim.status())));
  const simulate::ServiceResult& r = sim->services.at(0);
  a.measured = common::strCat("live: ", live_cold, " cold starts, ", live_zero, " to zero, ", fmtNum(live_pod_s, 1),
                              " pod-s; simulated: ", r.cold_starts, " cold starts, ", r.scale_to_zero_events, " to zero, ",
                              fmtNum(r.pod_seconds, 1), " pod-s (", arrivals.size(), " requests over ",
                              fmtNum(settings.duration_s, 1), " s; pod start-up ", fmtNum(model.pod_startup_s * 1000, 0),
                              " ms, service ", fmtNum(model.service_time_s * 1000, 1), " ms)");
  const double pod_gap = live_pod_s > 0 ? std::fabs(r.pod_seconds - live_pod_s) / live_pod_s : 0;
  std::string why;
  if (r.cold_starts != live_cold) why += common::strCat("cold starts differ (", r.cold_starts, " vs ", live_cold, "); ");
  if (r.scale_to_zero_events != live_zero) {
    why += common::strCat("scale-to-zero events differ (", r.scale_to_zero_events, " vs ", live_zero, "); ");
  }
  if (pod_gap > tolerance) why += common::strCat("pod-seconds differ by ", fmtNum(pod_gap * 100, 1), "%; ");
  a.verdict = why.empty() ? Verdict::kPass : Verdict::kFail;
  a.why = why.empty() ? common::strCat("agreement (pod-seconds within ", fmtNum(pod_gap * 100, 1), "%)")
                      : why.substr(0, why.size() - 2);
  a.data = {{"kind", "simulation"},
            {"live", {{"cold_starts", live_cold}, {"scale_to_zero", live_zero}, {"pod_seconds", live_pod_s}}},
            {"simulated", simulate::toJson(r)}};
  return a;
}

AssertionResult Runner::tagRouting(const Step& step, const LoadOutcome& l) {
  AssertionResult a;
  std::string which = step.params.value("revision", "latest");
  std::string rev = resolveRevision(which, l.isvc_at_start);
  a.name = common::strCat("tag_routing (load ", l.name, l.host.empty() ? "" : ", host " + l.host, ")");
  a.expected = common::strCat("100% of responses from ", rev, which != rev ? " (" + which + ")" : "");
  std::map<std::string, int64_t> by_rev;
  int64_t n = 0;
  for (const auto& r : l.records) {
    if (!r.error.empty()) continue;
    ++n;
    ++by_rev[r.revision.empty() ? "(no Kh-Revision)" : r.revision];
  }
  int64_t hit = by_rev.count(rev) ? by_rev[rev] : 0;
  std::string spread;
  for (const auto& [r, c] : by_rev) spread += common::strCat(spread.empty() ? "" : ", ", r, ": ", c);
  a.measured = common::strCat(hit, " of ", n, " successful responses (", spread.empty() ? "none" : spread, ")",
                              l.failed ? common::strCat(", ", l.failed, " failed") : std::string());
  bool pass = n > 0 && hit == n && l.failed == 0;
  a.verdict = pass ? Verdict::kPass : Verdict::kFail;
  a.why = pass ? "every response came from that revision"
          : n == 0 ? "no successful response"
          : l.failed ? "requests failed"
                     : "responses came from other revisions";
  return a;
}

absl::Status Runner::faultStep(const Step& step) {
  std::string isvc = isvcOf(step);
  absl::StatusOr<int> signalled;
  double t = now();
  {
    std::lock_guard lock(target_mu_);
    signalled = target_.signalPods(s_.ns, isvc, step.signal);
  }
  if (!signalled.ok()) return signalled.status();
  std::string name = step.name.empty() ? common::strCat("fault", fault_order_.size() + 1) : step.name;
  fault_times_[name] = t;
  fault_order_.push_back(name);
  log(common::strCat("fault ", name, ": ", step.signal_name, " to ", *signalled, " pod process(es) of ", isvc,
                     " at t=", fmtNum(t), "s"));
  return absl::OkStatus();
}

// Every request the loads sent was answered: 200, or an explicit error the server chose (an
// HTTP status, a gRPC status). A timeout or a connection that ended without an answer is a
// request the stack lost.
AssertionResult Runner::accounted(const Step& step) {
  AssertionResult a;
  LoadTally t = tally(step.params.value("loads", load_order_));
  a.name = common::strCat("accounted (", t.list, ")");
  a.expected = "every request answered: 200 or an explicit error status; none timed out or cut";
  const int64_t explicit_errors = t.failed - t.lost;
  a.measured = common::strCat(t.total, " sent: ", t.total - t.failed, " answered 200, ", explicit_errors,
                              " answered with an error, ", t.lost, " lost", t.spread.empty() ? "" : " (" + t.spread + ")");
  // A fault that must provoke refusals (an overflowing queue) says how many at least.
  const int64_t min_errors = step.params.value("min_errors", int64_t{0});
  if (min_errors > 0) a.expected += common::strCat(", at least ", min_errors, " of them an explicit error");
  // And one whose queue must still serve what it admitted says how many 200s at least.
  const int64_t min_ok = step.params.value("min_ok", int64_t{0});
  const int64_t ok = t.total - t.failed;
  if (min_ok > 0) a.expected += common::strCat(", at least ", min_ok, " answered 200");
  bool pass = t.total > 0 && t.lost == 0 && explicit_errors >= min_errors && ok >= min_ok;
  a.verdict = pass ? Verdict::kPass : Verdict::kFail;
  a.why = pass                         ? "nothing was lost"
          : t.total == 0               ? "no request was sent"
          : t.lost > 0                 ? "requests timed out or were cut without an answer"
          : explicit_errors < min_errors ? common::strCat("only ", explicit_errors, " explicit errors: the fault did not provoke the refusals it tests")
                                       : common::strCat("only ", ok, " answered 200: what the stack admitted was not served");
  a.data = {{"kind", "accounted"}, {"sent", t.total}, {"ok", ok}, {"explicit_errors", explicit_errors},
            {"lost", t.lost}};
  return a;
}

// How long after a fault requests kept failing: from the fault to the end of the last failed
// request sent after it (0 when none failed). Needs a per_request load.
AssertionResult Runner::recovery(const Step& step) {
  AssertionResult a;
  const json& p = step.params;
  std::string load = p.value("load", "");
  std::string fault = p.value("fault", fault_order_.empty() ? std::string() : fault_order_.front());
  a.name = common::strCat("recovery (load ", load, " after ", fault.empty() ? "no fault" : fault, ")");
  auto it = loads_.find(load);
  auto ft = fault_times_.find(fault);
  if (it == loads_.end() || ft == fault_times_.end()) {
    a.verdict = Verdict::kFail;
    a.why = it == loads_.end() ? "no such load" : "no fault step ran before this assertion";
    return a;
  }
  if (it->second->thread.joinable()) it->second->thread.join();
  const LoadOutcome& l = *it->second;
  if (l.records.empty()) {
    a.verdict = Verdict::kFail;
    a.why = "nothing to measure (give the load per_request: true)";
    return a;
  }
  const double t0 = ft->second;
  double last_failure_end = t0;
  int64_t failed_after = 0, ok_after = 0;
  for (const auto& r : l.records) {
    double end = r.t + r.latency_ms / 1000;
    if (end < t0) continue;
    if (r.error.empty()) {
      ++ok_after;
    } else {
      ++failed_after;
      last_failure_end = std::max(last_failure_end, end);
    }
  }
  double recovery_s = last_failure_end - t0;
  a.measured = common::strCat("recovered in ", fmtNum(recovery_s), " s (", failed_after, " failed and ", ok_after,
                              " succeeded after the fault)");
  a.data = {{"kind", "recovery"}, {"fault", fault}, {"recovery_s", recovery_s}, {"failed_after", failed_after},
            {"ok_after", ok_after}};
  if (ok_after == 0) {
    a.verdict = Verdict::kFail;
    a.why = "no request succeeded after the fault";
    return a;
  }
  if (p.contains("max")) {
    double max_s = p["max"];
    a.expected = common::strCat("<= ", fmtNum(max_s), " s");
    a.verdict = recovery_s <= max_s ? Verdict::kPass : Verdict::kFail;
    a.why = a.verdict == Verdict::kPass ? "recovered in time" : "still failing past the bound";
  } else {
    a.expected = "served again after the fault (no bound set)";
    a.verdict = Verdict::kPass;
    a.why = "recorded for the report";
  }
  return a;
}

Runner::LoadTally Runner::tally(const std::vector<std::string>& names) const {
  LoadTally t;
  std::map<std::string, int64_t> kinds;
  for (const auto& n : names) {
    t.list += (t.list.empty() ? "" : ", ") + n;
    auto it = loads_.find(n);
    if (it == loads_.end()) continue;
    const auto& l = *it->second;
    t.total += l.succeeded + l.failed;
    t.failed += l.failed;
    for (const auto& [k, c] : l.failures) {
      kinds[k] += c;
      if (k == "connect" || k == "timeout" || k == "protocol") t.lost += c;
    }
    if (l.run && t.first_error.empty()) t.first_error = l.run->first_error;
  }
  for (const auto& [k, c] : kinds) {
    if (c > 0) t.spread += common::strCat(t.spread.empty() ? "" : ", ", k, ": ", c);
  }
  return t;
}

AssertionResult Runner::noErrors(const Step& step) {
  AssertionResult a;
  LoadTally t = tally(step.params.value("loads", load_order_));
  a.name = common::strCat("no_errors (", t.list, ")");
  a.expected = "0 failed requests";
  a.measured = common::strCat(t.failed, " of ", t.total, " failed", t.spread.empty() ? "" : " (" + t.spread + ")");
  bool pass = t.failed == 0 && t.total > 0;
  a.verdict = pass ? Verdict::kPass : Verdict::kFail;
  a.why = pass ? "every request succeeded"
          : t.total == 0 ? "no request was sent"
                         : common::strCat("requests failed", t.first_error.empty() ? "" : "; e.g. " + t.first_error);
  return a;
}

AssertionResult Runner::latencySlo(const Step& step, const LoadOutcome& l) {
  const json& p = step.params;
  AssertionResult a;
  double pct = p.value("percentile", 99.0);
  double max_ms = p["max"].get<double>() * 1000;
  double confidence = p.value("confidence", 0.99);
  a.name = common::strCat("latency_slo (load ", l.name, ")");
  // A load that ran has its result (evaluate() fails those that did not).
  const int64_t queries = l.run->completed;
  const int64_t over = queries - l.run->corrected.countAtOrBelow(static_cast<int64_t>(max_ms * 1e6));
  auto v = loadgen::earlyStopping(queries, over, pct / 100, confidence, max_ms);
  a.expected = common::strCat("p", fmtNum(pct), " <= ", fmtNum(max_ms), " ms at ", fmtNum(confidence * 100), "% confidence (LoadGen early stopping)");
  a.measured = common::strCat(queries, " queries, ", over, " over ", fmtNum(max_ms), " ms (", v.min_queries, " needed for that many); p",
                              fmtNum(pct), " ", fmtNum(static_cast<double>(l.run->corrected.valueAtPercentile(pct)) / 1e6), " ms");
  a.verdict = v.passed ? Verdict::kPass : Verdict::kFail;
  a.why = v.passed ? v.describe()
                   : common::strCat(v.describe(), ": ", queries < v.min_queries ? "too few queries for the overruns seen" : "");
  return a;
}

AssertionResult Runner::coldStart(const Step& step) {
  const json& p = step.params;
  AssertionResult a;
  std::string isvc = isvcOf(step);
  double pct = p.value("percentile", 95.0);
  double max_ms = p["max"].get<double>() * 1000;
  int min_samples = p.value("min_samples", 1);
  a.name = common::strCat("cold_start p", fmtNum(pct), " (", isvc, ")");
  std::vector<double> totals;
  json breakdowns = json::array();
  // On a cluster a cold start is known once the watch shows its pod Ready, which can arrive
  // after the request's answer: wait a little for the samples still missing.
  const double until = now() + (target_.kind() == "kube" ? 10.0 : 1.0);
  while (true) {
    size_t seen = 0;
    {
      std::lock_guard lock(mu_);
      for (const auto& e : events_) {
        const auto* cold = e.event.as<events::ColdStart>();
        if (cold != nullptr && eventIsFor(e.event, isvc)) ++seen;
      }
    }
    if (static_cast<int>(seen) >= min_samples || now() > until) break;
    observeOnce();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the target's watches fill meanwhile
  }
  {
    std::lock_guard lock(mu_);
    for (const auto& e : events_) {
      const auto* cold = e.event.as<events::ColdStart>();
      if (cold == nullptr || !eventIsFor(e.event, isvc)) continue;
      totals.push_back(cold->total_ms);
      breakdowns.push_back({{"t", e.t}, {"total_ms", cold->total_ms}, {"revision", cold->revision},
                            {"breakdown", events::toJson(e.event)["breakdown"]}});
    }
  }
  a.expected = common::strCat("p", fmtNum(pct), " of cold starts <= ", fmtNum(max_ms), " ms over at least ", min_samples, " cold start(s)");
  a.data = {{"kind", "coldstart"}, {"samples", breakdowns}};
  if (static_cast<int>(totals.size()) < min_samples) {
    a.verdict = Verdict::kFail;
    a.measured = common::strCat(totals.size(), " cold start(s) observed");
    a.why = "too few cold starts (was the revision at zero when the requests came?)";
    return a;
  }
  double value = percentile(totals, pct);
  a.measured = common::strCat("p", fmtNum(pct), " ", fmtNum(value, 1), " ms over ", totals.size(), " cold start(s) (p50 ",
                              fmtNum(percentile(totals, 50), 1), " ms, max ", fmtNum(percentile(totals, 100), 1), " ms)");
  a.verdict = value <= max_ms ? Verdict::kPass : Verdict::kFail;
  a.why = a.verdict == Verdict::kPass ? "within the bound" : common::strCat("p", fmtNum(pct), " exceeds ", fmtNum(max_ms), " ms");
  return a;
}

AssertionResult Runner::scaleToZero(const Step& step) {
  const json& p = step.params;
  AssertionResult a;
  std::string isvc = isvcOf(step);
  a.name = common::strCat("scale_to_zero (", isvc, ")");
  // The last request: the end of the named load, else of the last load on this service.
  const LoadOutcome* last = nullptr;
  for (const auto& n : load_order_) {
    const auto& l = *loads_.at(n);
    if (p.contains("load") ? n == p["load"].get<std::string>() : l.isvc == isvc) last = &l;
  }
  if (last == nullptr) {
    a.verdict = Verdict::kFail;
    a.why = "no load on this InferenceService came before (nothing to time from)";
    return a;
  }
  double last_request = last->end_t;
  if (!last->records.empty()) {
    last_request = 0;
    for (const auto& r : last->records) last_request = std::max(last_request, r.t + r.latency_ms / 1000);
  }
  json obj;
  {
    std::lock_guard lock(target_mu_);
    auto got = target_.get(s_.ns, isvc);
    if (got.ok()) obj = *got;
  }
  const std::map<std::string, std::string> annotations = annotationsOf(obj);
  // The bound comes from the settings in effect where it ran (a cluster's own), not from what
  // the scenario asked for.
  absl::StatusOr<EffectiveAutoscaler> effective;
  {
    std::lock_guard lock(target_mu_);
    effective = target_.effectiveAutoscaler();
  }
  if (!effective.ok()) {
    a.verdict = Verdict::kFail;
    a.why = common::strCat("cannot read the autoscaler settings in effect: ", msg(effective.status()));
    return a;
  }
  double tick = effective->tick_s;
  auto e = expectedScaleToZero(effective->config, annotations, tick);
  if (!e.ok()) {
    a.verdict = Verdict::kFail;
    a.why = msg(e.status());
    return a;
  }
  // Knative's buckets are whole seconds: the last request's bucket leaves the window up to 1 s
  // early; decisions come on ticks and the pod takes its drain to go.
  double low = e->expected_s - 1.0;
  double tolerance = p.value("tolerance", 2 * tick + 4.0);
  double high = e->expected_s + tolerance;
  double zero_at = -1;
  {
    std::lock_guard lock(mu_);
    for (const auto& sample : samples_) {
      if (sample.value("isvc", "") != isvc || sample.value("t", 0.0) < last_request) continue;
      if (sample.value("total", 1) == 0) {
        zero_at = sample["t"];
        break;
      }
    }
    // A wait step polls more often than the observer samples.
    for (double t : zero_seen_[isvc]) {
      if (t >= last_request && (zero_at < 0 || t < zero_at)) zero_at = t;
    }
  }
  a.expected = common::strCat("0 pods within [", fmtNum(low, 1), "s, ", fmtNum(high, 1), "s] of the last request (settings: ",
                              effective->source, "): ", e->explanation,
                              "; -1s for Knative's 1s buckets, +", fmtNum(tolerance, 1), "s tolerance (ticks of ", fmtNum(tick, 1), "s, drain)");
  a.data = {{"kind", "scale_to_zero"}, {"last_request_t", last_request}, {"zero_t", zero_at},
            {"expected_s", e->expected_s}, {"low_s", low}, {"high_s", high}};
  if (zero_at < 0) {
    a.verdict = Verdict::kFail;
    a.measured = "the pods never reached 0 while observed";
    a.why = "no scale to zero (add a wait for: zero step, or check enable-scale-to-zero and minReplicas)";
    return a;
  }
  double measured = zero_at - last_request;
  a.data["measured_s"] = measured;
  a.measured = common::strCat(fmtNum(measured, 2), "s from the last request (t=", fmtNum(last_request, 2), "s) to 0 pods (t=", fmtNum(zero_at, 2), "s)");
  bool pass = measured >= low && measured <= high;
  a.verdict = pass ? Verdict::kPass : Verdict::kFail;
  a.why = pass ? "within the window" : measured < low ? "scaled to zero before the stable window could have drained"
                                                      : "scaled to zero later than the autoscaler settings allow";
  return a;
}

AssertionResult Runner::scaledUp(const Step& step) {
  const json& p = step.params;
  AssertionResult a;
  std::string isvc = isvcOf(step);
  int min_pods = p.value("min_pods", 2);
  bool want_panic = p.value("panic", false);
  a.name = common::strCat("scaled_up (", isvc, ")");
  int max_ready = 0;
  double max_at = 0;
  bool panic = false;
  double panic_at = -1;
  int max_desired = 0;
  {
    std::lock_guard lock(mu_);
    for (const auto& s : samples_) {
      if (s.value("isvc", "") == isvc && s.value("ready", 0) > max_ready) {
        max_ready = s["ready"];
        max_at = s["t"];
      }
    }
    for (const auto& e : events_) {
      const auto* scale = e.event.as<events::ScaleDecided>();
      if (scale == nullptr || !eventIsFor(e.event, isvc)) continue;
      max_desired = std::max(max_desired, scale->desired);
      if (scale->panic && !panic) {
        panic = true;
        panic_at = e.t;
      }
    }
  }
  a.expected = common::strCat(">= ", min_pods, " ready pods", want_panic ? ", and the autoscaler in panic mode" : "");
  a.measured = common::strCat("at most ", max_ready, " ready pods (t=", fmtNum(max_at, 1), "s), highest desired ", max_desired,
                              panic ? common::strCat(", panic from t=", fmtNum(panic_at, 1), "s") : ", no panic");
  bool pass = max_ready >= min_pods && (!want_panic || panic);
  a.verdict = pass ? Verdict::kPass : Verdict::kFail;
  a.why = pass ? "scaled up as asked"
          : max_ready < min_pods ? "too few pods became ready"
                                 : "no scale decision was taken in panic mode";
  return a;
}

AssertionResult Runner::compare(const Step& step) {
  const json& p = step.params;
  AssertionResult a;
  std::vector<std::string> names = p.value("loads", std::vector<std::string>{});
  std::string metric = p.value("metric", "p50");
  a.name = common::strCat("compare ", metric, " (", names.size() > 0 ? names[0] : "", " vs ", names.size() > 1 ? names[1] : "", ")");
  if (names.size() != 2) {
    a.verdict = Verdict::kFail;
    a.why = "compare takes two loads";
    return a;
  }
  double v[2];
  json rows = json::array();
  for (int i = 0; i < 2; ++i) {
    auto it = loads_.find(names[i]);
    if (it != loads_.end() && it->second->thread.joinable()) it->second->thread.join();
    if (it == loads_.end() || !it->second->run) {
      a.verdict = Verdict::kFail;
      a.why = common::strCat("load ", names[i], " has no loadgen result");
      return a;
    }
    const json& r = it->second->run_json;
    v[i] = metric == "throughput" ? r["summary"].value("throughput", 0.0)
           : metric == "mean"     ? r["latency"].value("mean_ms", 0.0)
                                  : r["latency"].value(metric + "_ms", 0.0);
    rows.push_back({{"load", names[i]}, {"throughput", r["summary"].value("throughput", 0.0)},
                    {"p50_ms", r["latency"].value("p50_ms", 0.0)}, {"p99_ms", r["latency"].value("p99_ms", 0.0)},
                    {"errors", r["summary"].value("errors", 0)}});
  }
  double ratio = v[0] > 0 ? v[1] / v[0] : std::nan("");
  std::string unit = metric == "throughput" ? " req/s" : " ms";
  a.measured = common::strCat(names[0], " ", fmtNum(v[0]), unit, ", ", names[1], " ", fmtNum(v[1]), unit, " (ratio ", fmtNum(ratio), ")");
  a.data = {{"kind", "compare"}, {"rows", rows}, {"metric", metric}, {"ratio", ratio}};
  if (p.contains("max_ratio")) {
    double max_ratio = p["max_ratio"];
    a.expected = common::strCat(names[1], "/", names[0], " ", metric, " <= ", fmtNum(max_ratio));
    a.verdict = ratio <= max_ratio ? Verdict::kPass : Verdict::kFail;
    a.why = a.verdict == Verdict::kPass ? "within the ratio" : "the second is beyond the allowed ratio";
  } else {
    a.expected = "both loads measured (no bound set)";
    a.verdict = Verdict::kPass;
    a.why = "recorded for the report";
  }
  return a;
}

}  // namespace

ScenarioResult runScenario(const Scenario& scenario, Target& target, const RunOptions& options,
                           const common::TimeSource& time) {
  Runner runner(scenario, target, options, time);
  return runner.run();
}

json resultToJson(const ScenarioResult& r) {
  json assertions = json::array();
  for (const auto& a : r.assertions) {
    assertions.push_back({{"name", a.name}, {"verdict", verdictName(a.verdict)}, {"expected", a.expected},
                          {"measured", a.measured}, {"why", a.why}, {"data", a.data}});
  }
  return {{"name", r.name}, {"description", r.description}, {"file", r.file}, {"target", r.target},
          {"verdict", verdictName(r.verdict)}, {"skip_reason", r.skip_reason}, {"error", r.error},
          {"duration_s", r.duration_s}, {"assertions", assertions}, {"observations", r.observations}};
}

}  // namespace kh::scenario
