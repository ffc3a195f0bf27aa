#include "kh/controller/isvc_reconciler.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "absl/time/time.h"
#include "kh/common/json.h"
#include "kh/common/strings.h"
#include "kh/controller/graph_deployment.h"
#include "kh/controller/scaling.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace kh::controller {
namespace {

using nlohmann::json;

constexpr const char* kIsvcKind = "InferenceService";
constexpr const char* kGraphKind = "InferenceGraph";
// Keys of the reconcile queue that are not InferenceServices.
constexpr std::string_view kEveryService = "*";
constexpr std::string_view kBuiltinPrefix = "builtin:";

std::string message(const absl::Status& st) { return std::string(common::toStd(st.message())); }

std::string replaceAll(std::string s, const std::string& from, const std::string& to) {
  for (size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size()) {
    s.replace(pos, from.size(), to);
  }
  return s;
}

// Template variables of container args and env values ({{.Port}} and {{.GrpcPort}} are left for
// the pod manager, which knows the ports).
std::string expand(std::string s, const std::map<std::string, std::string>& vars) {
  for (const auto& [k, v] : vars) s = replaceAll(std::move(s), "{{." + k + "}}", v);
  return s;
}

// Ports the runtime YAML names as KServe runtimes do (8080 HTTP, 8081 gRPC) become the pod's.
std::string mapContainerPorts(std::string arg) {
  if (arg.rfind("--http_port=", 0) == 0) return "--http_port={{.Port}}";
  if (arg.rfind("--grpc_port=", 0) == 0) return "--grpc_port={{.GrpcPort}}";
  return arg;
}

int replicasOf(const ComponentSpec& spec) {
  return static_cast<int>(std::max<int64_t>(1, spec.extension.min_replicas.value_or(1)));
}

std::pair<std::string, std::string> splitKey(const std::string& key) {
  auto slash = key.find('/');
  return {key.substr(0, slash), key.substr(slash + 1)};
}

std::string keyOf(const json& object) {
  const json& md = object.value("metadata", json::object());
  return common::strCat(md.value("namespace", ""), "/", md.value("name", ""));
}

// The start-up times a pod's model server wrote (KH_STARTUP_FILE) before it reported ready:
// monotonic nanoseconds, comparable with the stack's clock on the same machine.
struct StartupTimes {
  std::optional<common::MonotonicTime> process_started, model_loaded;
};

StartupTimes readStartupTimes(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  json doc = json::parse(text.str(), nullptr, false);
  auto at = [&](const char* key) -> std::optional<common::MonotonicTime> {
    if (!doc.is_object() || !doc.contains(key) || !doc[key].is_number_integer()) return std::nullopt;
    return common::MonotonicTime(std::chrono::nanoseconds(doc[key].get<int64_t>()));
  };
  return {at("process_started_monotonic_ns"), at("model_loaded_monotonic_ns")};
}

// The creation order of a runtime (newer is larger), from its creationTimestamp.
// What tells a client's change of an InferenceService from a status write: its generation,
// labels and annotations.
std::string seenOf(const json& object) {
  const json& md = object.value("metadata", json::object());
  return common::strCat(md.value("generation", int64_t{0}), " ", common::jsonText(md.value("labels", json::object())), " ",
                        common::jsonText(md.value("annotations", json::object())));
}

int64_t creationOrder(const json& object) {
  std::string ts = object.value("metadata", json::object()).value("creationTimestamp", "");
  absl::Time t;
  std::string err;
  if (!absl::ParseTime(absl::RFC3339_full, ts, &t, &err)) return 0;
  return absl::ToUnixSeconds(t);
}

}  // namespace

/** What the reconciler keeps of one InferenceService. */
struct InferenceServiceReconciler::Entry {
  std::string key;  // "ns/name", or "graph:ns/name" for an InferenceGraph
  bool graph = false;  // an InferenceGraph: `isvc` runs its router, as `predictor`
  InferenceService isvc;
  ComponentState predictor;
  std::optional<ComponentState> transformer;
  std::optional<ComponentState> explainer;
  std::map<std::string, RevisionRecord> revisions;               // revision -> record
  std::map<std::string, std::vector<std::string>> pods_of_revision;
  json status = json::object();

  ComponentState* component(const std::string& name) {
    if (name == "transformer") return transformer ? &*transformer : nullptr;
    if (name == "explainer") return explainer ? &*explainer : nullptr;
    return &predictor;
  }
};

InferenceServiceReconciler::InferenceServiceReconciler(Deps deps, ReconcilerOptions options)
    : deps_(std::move(deps)), options_(std::move(options)) {
  if (deps_.metrics != nullptr) {
    const prometheus::Histogram::BucketBoundaries buckets = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                             0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                                             1,      2.5,     5,      10};
    reconciles_ = &prometheus::BuildCounter()
                       .Name("kh_refstack_reconciles_total")
                       .Help("Reconcile passes over an InferenceService")
                       .Register(*deps_.metrics)
                       .Add({});
    reconcile_seconds_ = &prometheus::BuildHistogram()
                              .Name("kh_refstack_reconcile_seconds")
                              .Help("Time of one reconcile pass")
                              .Register(*deps_.metrics)
                              .Add({}, buckets);
    pod_restarts_ = &prometheus::BuildCounter()
                         .Name("kh_refstack_pod_restarts_total")
                         .Help("Pod restarts after a crash, by revision")
                         .Register(*deps_.metrics);
  }
}

InferenceServiceReconciler::~InferenceServiceReconciler() { stop(); }

// ------------------------------------------------------------------ lifecycle

absl::Status InferenceServiceReconciler::start() {
  kubeapi::ObjectStore& store = *deps_.store;
  for (const auto& rt : options_.builtin_runtimes) ensureBuiltinRuntime(rt.metadata.name);
  // Revisions made before a restart come back from their objects; the rollout from the status.
  auto revisions = store.list("Revision", "");
  if (!revisions.ok()) return revisions.status();
  {
    std::lock_guard lock(mu_);
    for (const auto& object : revisions->items) {
      auto record = revisionRecordFromObject(*object);
      if (!record.ok()) return record.status();
      const bool graph = record->launch.component == kGraphComponent;
      std::string key = graph ? graphKey(record->namespace_name, record->isvc)
                              : common::strCat(record->namespace_name, "/", record->isvc);
      auto isvc = store.get(graph ? kGraphKind : kIsvcKind, record->namespace_name, record->isvc);
      if (!isvc.ok()) {
        (void)store.remove("Revision", record->namespace_name, record->name);  // its service is gone
        continue;
      }
      auto& e = services_[key];
      if (!e) {
        e = std::make_unique<Entry>();
        e->key = key;
        e->graph = graph;
        deps_.events->emit(events::ResourceRestored{key});
      }
      const std::string& component = record->launch.component;
      if (component == "transformer" && !e->transformer) e->transformer.emplace();
      if (component == "explainer" && !e->explainer) e->explainer.emplace();
      ComponentState* cs = e->component(component);
      if (cs == nullptr) continue;
      cs->revisions.push_back(Revision{record->name, record->spec, false, ""});
      service_of_revision_[record->name] = key;
      e->revisions[record->name] = std::move(*record);
    }
    for (auto& [key, e] : services_) {
      if (e->graph) {
        // A graph's router follows its latest revision (its Knative Service's default traffic).
        auto& revs = e->predictor.revisions;
        std::sort(revs.begin(), revs.end(), [](const Revision& a, const Revision& b) { return a.name < b.name; });
        if (!revs.empty()) e->predictor.rollout.latest_created_revision = revs.back().name;
        continue;
      }
      auto [ns, name] = splitKey(key);
      auto isvc = store.get(kIsvcKind, ns, name);
      if (!isvc.ok()) continue;
      const json components = (**isvc).value("status", json::object()).value("components", json::object());
      for (const char* c : {"predictor", "transformer", "explainer"}) {
        ComponentState* cs = e->component(c);
        if (cs == nullptr) continue;
        std::sort(cs->revisions.begin(), cs->revisions.end(),
                  [](const Revision& a, const Revision& b) { return a.name < b.name; });
        const json s = components.value(c, json::object());
        cs->rollout.latest_created_revision =
            s.value("latestCreatedRevision", cs->revisions.empty() ? "" : cs->revisions.back().name);
        cs->rollout.latest_ready_revision = s.value("latestReadyRevision", "");
        cs->rollout.latest_rolledout_revision = s.value("latestRolledoutRevision", "");
        cs->rollout.previous_rolledout_revision = s.value("previousRolledoutRevision", "");
      }
    }
  }
  // What the subscription below has seen already (the store's objects at start).
  if (auto all = store.list(kIsvcKind, ""); all.ok()) {
    std::lock_guard lock(seen_mu_);
    for (const auto& o : all->items) seen_[keyOf(*o)] = seenOf(*o);
  }
  if (auto all = store.list(kGraphKind, ""); all.ok()) {
    std::lock_guard lock(seen_mu_);
    for (const auto& o : all->items) {
      std::string key = common::strCat(kGraphKeyPrefix, keyOf(*o));
      seen_[key] = seenOf(*o);
      graph_services_[key] = graphServiceNames(*o);
    }
  }
  // What clients change: an InferenceService (its own key), a runtime (every service), a
  // built-in runtime deleted (put back). The callbacks run under the store's lock: enqueue only.
  auto isvcs = store.subscribe(kIsvcKind, [this](const kubeapi::WatchEvent& e) {
    std::string key = keyOf(*e.object);
    auto [ns, name] = splitKey(key);
    // Graphs resolve their services' URLs and wait for them to be Ready: every change of a
    // service they call, its status included, is theirs to look at.
    {
      std::lock_guard lock(seen_mu_);
      for (const auto& [g, services] : graph_services_) {
        if (services.count(name) && parseOwnerKey(g).namespace_name == ns) enqueue(g);
      }
    }
    if (e.type == kubeapi::EventType::kDeleted) {
      {
        std::lock_guard lock(seen_mu_);
        seen_.erase(key);
      }
      deps_.events->emit(events::ResourceDeleted{kIsvcKind, ns, name});
      return enqueue(key);
    }
    // Our own status writes change nothing to reconcile; a new spec (generation), labels or
    // annotations do.
    std::string seen = seenOf(*e.object);
    {
      std::lock_guard lock(seen_mu_);
      auto& last = seen_[key];
      if (last == seen) return;
      last = std::move(seen);
    }
    deps_.events->emit(events::ResourceApplied{kIsvcKind, ns, name});
    enqueue(key);
  });
  if (!isvcs.ok()) return isvcs.status();
  subscriptions_.push_back(std::move(*isvcs));
  auto graphs = store.subscribe(kGraphKind, [this](const kubeapi::WatchEvent& e) {
    std::string key = common::strCat(kGraphKeyPrefix, keyOf(*e.object));
    auto [ns, name] = splitKey(keyOf(*e.object));
    if (e.type == kubeapi::EventType::kDeleted) {
      {
        std::lock_guard lock(seen_mu_);
        seen_.erase(key);
        graph_services_.erase(key);
      }
      deps_.events->emit(events::ResourceDeleted{kGraphKind, ns, name});
      return enqueue(key);
    }
    std::string seen = seenOf(*e.object);
    {
      std::lock_guard lock(seen_mu_);
      graph_services_[key] = graphServiceNames(*e.object);
      auto& last = seen_[key];
      if (last == seen) return;
      last = std::move(seen);
    }
    deps_.events->emit(events::ResourceApplied{kGraphKind, ns, name});
    enqueue(key);
  });
  if (!graphs.ok()) return graphs.status();
  subscriptions_.push_back(std::move(*graphs));
  for (const char* kind : {"ServingRuntime", "ClusterServingRuntime"}) {
    auto sub = store.subscribe(kind, [this, kind = std::string(kind)](const kubeapi::WatchEvent& e) {
      const json& md = e.object->value("metadata", json::object());
      std::string name = md.value("name", "");
      std::string ns = kind == "ClusterServingRuntime" ? "" : md.value("namespace", "");
      if (e.type == kubeapi::EventType::kDeleted) {
        deps_.events->emit(events::ResourceDeleted{kind, ns, name});
        if (kind == "ClusterServingRuntime") enqueue(common::strCat(kBuiltinPrefix, name));
      } else {
        deps_.events->emit(events::ResourceApplied{kind, ns, name});
      }
      enqueue(std::string(kEveryService));
    });
    if (!sub.ok()) return sub.status();
    subscriptions_.push_back(std::move(*sub));
  }
  // Knative's config-autoscaler, as a cluster keeps it: a change reconciles every service.
  auto config = store.subscribe("ConfigMap", [this](const kubeapi::WatchEvent& e) {
    const std::string key = keyOf(*e.object);
    if (key == common::strCat(kAutoscalerConfigNamespace, "/", kAutoscalerConfigName) ||
        key == common::strCat(kKServeConfigNamespace, "/", kKServeConfigName)) {
      enqueue(std::string(kEveryService));
    }
  });
  if (config.ok()) subscriptions_.push_back(std::move(*config));
  thread_ = std::thread([this] { loop(); });
  enqueue(std::string(kEveryService));
  return absl::OkStatus();
}

void InferenceServiceReconciler::stop() {
  subscriptions_.clear();
  std::vector<std::thread> stoppers;
  {
    std::lock_guard lock(queue_mu_);
    stopping_ = true;
  }
  queue_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  {
    std::lock_guard lock(queue_mu_);
    stoppers.swap(stoppers_);
  }
  for (auto& t : stoppers) t.join();
}

void InferenceServiceReconciler::enqueue(const std::string& key) {
  {
    std::lock_guard lock(queue_mu_);
    queue_.push_back(key);
  }
  queue_cv_.notify_one();
}

void InferenceServiceReconciler::storageChanged() { enqueue(std::string(kEveryService)); }

void InferenceServiceReconciler::loop() {
  while (true) {
    std::string k;
    {
      std::unique_lock lock(queue_mu_);
      queue_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      k = queue_.front();
      queue_.pop_front();
      // Collapse duplicates: one pass sees the latest state anyway.
      std::erase(queue_, k);
    }
    if (k == kEveryService) {
      std::set<std::string> keys;
      if (auto all = deps_.store->list(kIsvcKind, ""); all.ok()) {
        for (const auto& o : all->items) keys.insert(keyOf(*o));
      }
      if (auto all = deps_.store->list(kGraphKind, ""); all.ok()) {
        for (const auto& o : all->items) keys.insert(common::strCat(kGraphKeyPrefix, keyOf(*o)));
      }
      {
        std::lock_guard lock(mu_);
        for (const auto& [key, e] : services_) keys.insert(key);
      }
      for (const auto& key : keys) enqueue(key);
      continue;
    }
    if (k.rfind(kBuiltinPrefix, 0) == 0) {
      ensureBuiltinRuntime(k.substr(kBuiltinPrefix.size()));
      continue;
    }
    auto start = std::chrono::steady_clock::now();
    reconcile(k);
    if (reconciles_ != nullptr) {
      reconciles_->Increment();
      reconcile_seconds_->Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
  }
}

void InferenceServiceReconciler::ensureBuiltinRuntime(const std::string& name) {
  for (const auto& rt : options_.builtin_runtimes) {
    if (rt.metadata.name != name) continue;
    if (deps_.store->get("ClusterServingRuntime", "", name).ok()) return;
    json object = rt.document;
    object["metadata"]["annotations"][kBuiltInAnnotation] = "true";
    object["metadata"].erase("namespace");
    (void)deps_.store->upsert("ClusterServingRuntime", std::move(object));
  }
}

absl::StatusOr<std::vector<std::string>> InferenceServiceReconciler::commandFor(const std::string& image) const {
  auto colon = image.rfind(':');
  auto slash = image.rfind('/');
  std::string name =
      colon == std::string::npos || (slash != std::string::npos && colon < slash) ? image : image.substr(0, colon);
  auto it = options_.images.find(name);
  if (it == options_.images.end()) {
    return absl::NotFoundError(
        common::strCat("image ", image, " is not in refstack's image map (the `images` section of its config)"));
  }
  return it->second;
}

std::string InferenceServiceReconciler::startupFileOf(const std::string& pod) const {
  return (options_.state_dir / "pods" / (pod + ".startup.json")).string();
}

// ------------------------------------------------------------------ pods

void InferenceServiceReconciler::onPodEvent(const pods::PodEvent& e) {
  // Read here, once per readiness, not on the request path that records the cold start.
  StartupTimes startup;
  if (e.phase == pods::PodPhase::kReady) startup = readStartupTimes(startupFileOf(e.pod));
  std::string revision, service;
  {
    std::lock_guard lock(mu_);
    auto rev = revision_of_pod_.find(e.pod);
    if (rev == revision_of_pod_.end()) return;
    revision = rev->second;
    deps_.events->emit(events::PodPhaseChanged{e.pod, revision, pods::podPhaseName(e.phase), e.restarts, e.message});
    if (e.phase == pods::PodPhase::kReady) {
      activator::Endpoint ep;
      ep.pod = e.pod;
      ep.port = e.port;
      ep.grpc_port = e.grpc_port;
      ep.admin_port = e.admin_port;
      ready_pods_[e.pod] = std::move(ep);
    } else {
      ready_pods_.erase(e.pod);
    }
    if (e.restarts > 0 && e.phase == pods::PodPhase::kBackOff && pod_restarts_ != nullptr) {
      pod_restarts_->Add({{"revision", revision}}).Increment();
    }
    if (auto info = pod_info_.find(e.pod); info != pod_info_.end()) {
      PodRecord& p = info->second.record;
      if (p.phase != pods::podPhaseName(e.phase)) p.phase_since = e.time;
      p.phase = pods::podPhaseName(e.phase);
      p.restarts = e.restarts;
      p.message = e.message;
      if (e.phase == pods::PodPhase::kBackOff) p.last_exit = e.message;
      if (e.phase == pods::PodPhase::kStopped) {
        (void)deps_.store->remove("Pod", p.namespace_name, p.name);
        pod_info_.erase(info);
      } else {
        (void)deps_.store->upsert("Pod", podObject(p));
      }
    }
    service = serviceOfRevisionLocked(revision);
  }
  if (e.phase == pods::PodPhase::kReady) {
    deps_.activator->markColdStart(revision, activator::ColdStartStep::kReady, deps_.time->monotonicTime(),
                                   {e.pod, startup.process_started, startup.model_loaded});
  }
  if (!service.empty()) enqueue(service);
}

std::string InferenceServiceReconciler::serviceOfRevisionLocked(const std::string& revision) const {
  auto svc = service_of_revision_.find(revision);
  return svc != service_of_revision_.end() ? svc->second : std::string();
}

void InferenceServiceReconciler::setReplicas(const std::string& revision, int32_t) {
  // The reconciler reads the KPA's replicas when it runs the service's pods.
  std::string service;
  {
    std::lock_guard lock(mu_);
    service = serviceOfRevisionLocked(revision);
  }
  if (!service.empty()) enqueue(service);
}

void InferenceServiceReconciler::onPodAutoscaler(const PodAutoscalerView& view) {
  std::string service;
  {
    std::lock_guard lock(mu_);
    if (!autoscaled_.count(view.revision)) return;  // a late view of a revision gone meanwhile
    (void)deps_.store->upsert("PodAutoscaler",
                              podAutoscalerObject(view, deps_.time->systemTime(), deps_.time->monotonicTime()));
    // A revision at zero pods is ready once its scale target is initialized (initial-scale 0);
    // no pod event will say so, so its service is reconciled now. Pods' events cover the rest.
    if (view.scale_target_initialized && view.actual_scale == 0) service = serviceOfRevisionLocked(view.revision);
  }
  if (!service.empty()) enqueue(service);
}

void InferenceServiceReconciler::startPod(const std::string& key, const std::string& revision) {
  pods::PodSpec spec;
  int cc = 0;
  int64_t timeout_ms = options_.revision_timeout.count();
  {
    std::lock_guard lock(mu_);
    auto svc = services_.find(key);
    if (svc == services_.end()) return;
    Entry& e = *svc->second;
    auto rec = e.revisions.find(revision);
    if (rec == e.revisions.end()) return;
    RevisionRecord& r = rec->second;
    spec.name = common::strCat(revision, "-pod-", ++r.pod_serial);
    spec.argv = r.launch.argv;
    spec.env = r.launch.env;
    // Where pods reach other services (a transformer its predictor); the port changes between
    // runs, so it is not part of the revision.
    spec.env["KH_INGRESS_ADDRESS"] =
        common::strCat(options_.address, ":", deps_.ingress_port ? deps_.ingress_port() : 0);
    spec.env["KH_RANDOM_SEED"] = std::to_string(options_.random_seed + pod_serial_++);
    spec.readiness_path = r.launch.readiness_path;
    // The model server writes when its process started and its model loaded (cold-start
    // breakdown); other containers ignore it.
    spec.env["KH_STARTUP_FILE"] = startupFileOf(spec.name);
    cc = r.container_concurrency;
    timeout_ms = r.timeout_seconds * 1000;
    revision_of_pod_[spec.name] = revision;
    service_of_revision_[revision] = key;
    e.pods_of_revision[revision].push_back(spec.name);
    PodRecord pod;
    pod.name = spec.name;
    pod.namespace_name = e.isvc.metadata.namespace_name;
    pod.isvc = e.isvc.metadata.name;
    pod.component = r.launch.component;
    pod.revision = revision;
    if (auto object = deps_.store->get("Revision", pod.namespace_name, revision); object.ok()) {
      pod.revision_uid = (**object)["metadata"].value("uid", "");
    }
    pod.phase = "Starting";
    pod.has_queue_proxy = !options_.queue_proxy.empty();
    pod.created = pod.phase_since = deps_.time->systemTime();
    (void)deps_.store->upsert("Pod", podObject(pod));
    pod_info_[spec.name] = {std::move(pod)};
    writeRevision(e, revision);  // its pod serial
  }
  if (!options_.queue_proxy.empty()) {
    deps_.activator->markColdStart(revision, activator::ColdStartStep::kPodSpawned, deps_.time->monotonicTime());
    spec.proxy_argv = options_.queue_proxy;
    for (const std::string& a :
         {std::string("--http_port={{.Port}}"), std::string("--admin_port={{.AdminPort}}"),
          std::string("--user_port={{.UserPort}}"),
          // gRPC through the queue-proxy too (0: the pod serves no gRPC).
          std::string("--grpc_port={{.GrpcPort}}"), std::string("--user_grpc_port={{.UserGrpcPort}}"),
          common::strCat("--container_concurrency=", cc), common::strCat("--revision_timeout_ms=", timeout_ms),
          common::strCat("--drain_quiet_period_ms=", options_.drain_quiet_period.count()),
          common::strCat("--user_readiness_path=", spec.readiness_path), common::strCat("--pod_name=", spec.name),
          // Cold start: find the model ready within a millisecond, not 50.
          std::string("--readiness_retry_ms=1")}) {
      spec.proxy_argv.push_back(a);
    }
  }
  spec.grace_period = options_.pod_grace_period;
  // A starting pod is probed every millisecond: readiness noticed late is cold-start time.
  spec.probe_period = std::chrono::milliseconds(1);
  spec.log_file = (options_.state_dir / "logs" / (spec.name + ".log")).string();
  spec.pid_file = (options_.state_dir / "pods" / (spec.name + ".pid")).string();
  std::error_code stale;
  std::filesystem::remove(startupFileOf(spec.name), stale);
  auto st = pods_->start(spec);
  if (!st.ok()) {
    std::lock_guard lock(mu_);
    auto svc = services_.find(key);
    if (svc != services_.end()) std::erase(svc->second->pods_of_revision[revision], spec.name);
    revision_of_pod_.erase(spec.name);
    if (auto info = pod_info_.find(spec.name); info != pod_info_.end()) {
      (void)deps_.store->remove("Pod", info->second.record.namespace_name, spec.name);
      pod_info_.erase(info);
    }
    deps_.events->emit(events::PodPhaseChanged{spec.name, revision, "Failed", 0, message(st.status())});
  }
}

void InferenceServiceReconciler::stopPods(const std::vector<std::string>& names) {
  for (const auto& n : names) {
    (void)pods_->stop(n);
    std::error_code ignored;
    std::filesystem::remove(startupFileOf(n), ignored);
    std::lock_guard lock(mu_);
    ready_pods_.erase(n);
    revision_of_pod_.erase(n);
    if (auto info = pod_info_.find(n); info != pod_info_.end()) {
      (void)deps_.store->remove("Pod", info->second.record.namespace_name, n);
      pod_info_.erase(info);
    }
  }
}

// Stopping drains (the queue-proxy's quiet period): off the reconciler thread, so scaling and
// routing go on meanwhile. The pods are already out of the routes.
void InferenceServiceReconciler::stopPodsLater(std::vector<std::string> names) {
  if (names.empty()) return;
  {
    // Terminating from now on, as a pod whose deletion the kubelet has begun.
    std::lock_guard lock(mu_);
    for (const auto& n : names) {
      auto info = pod_info_.find(n);
      if (info == pod_info_.end() || info->second.record.phase == "Stopping") continue;
      info->second.record.phase = "Stopping";
      info->second.record.phase_since = deps_.time->systemTime();
      (void)deps_.store->upsert("Pod", podObject(info->second.record));
    }
  }
  {
    std::lock_guard lock(queue_mu_);
    if (!stopping_) {
      stoppers_.emplace_back([this, names = std::move(names)] { stopPods(names); });
      return;
    }
  }
  // Shutting down: stop them here, without queue_mu_, since stopping emits pod events whose
  // handler enqueues (and so takes queue_mu_) on this thread.
  stopPods(names);
}

void InferenceServiceReconciler::writeRevision(const Entry& e, const std::string& revision) {
  auto it = e.revisions.find(revision);
  if (it == e.revisions.end()) return;
  (void)deps_.store->upsert("Revision", revisionObject(it->second));
}

// ------------------------------------------------------------------ reconcile

void InferenceServiceReconciler::deleted(const std::string& k) {
  std::vector<std::string> pods_to_stop;
  {
    std::lock_guard lock(mu_);
    auto it = services_.find(k);
    if (it == services_.end()) return;
    Entry& e = *it->second;
    for (auto& [rev, names] : e.pods_of_revision) pods_to_stop.insert(pods_to_stop.end(), names.begin(), names.end());
    for (const auto& [rev, record] : e.revisions) {
      if (autoscaled_.erase(rev) > 0) {
        deps_.kpa->untrack(rev);
        (void)deps_.store->remove("PodAutoscaler", record.namespace_name, rev);
      }
      (void)deps_.store->remove("Revision", record.namespace_name, rev);
      service_of_revision_.erase(rev);
    }
    services_.erase(it);
  }
  publishRoutes();
  stopPodsLater(std::move(pods_to_stop));
}

absl::StatusOr<Resource> InferenceServiceReconciler::graphResource(const json& object, std::string& waiting) const {
  GraphRouterConfig defaults;
  defaults.drain_seconds = static_cast<int>((options_.drain_quiet_period.count() + 999) / 1000);
  std::optional<json> kserve_config;
  if (auto cm = deps_.store->get("ConfigMap", kKServeConfigNamespace, kKServeConfigName); cm.ok()) kserve_config = **cm;
  GraphRouterConfig config = routerConfigFrom(kserve_config ? &*kserve_config : nullptr, defaults);
  auto lookup = [this](const std::string& kind, const std::string& ns,
                       const std::string& name) -> std::shared_ptr<const json> {
    auto o = deps_.store->get(kind, ns, name);
    return o.ok() ? *o : nullptr;
  };
  auto deployment = graphDeployment(object, lookup, config);
  if (!deployment.ok()) return deployment.status();
  waiting = std::move(deployment->waiting);
  Resource r;
  r.kind = kGraphKind;
  r.inference_service = std::move(deployment->service);
  return r;
}

void InferenceServiceReconciler::reconcile(const std::string& k) {
  const OwnerKey owner = parseOwnerKey(k);
  const std::string& object_ns = owner.namespace_name;
  const std::string& object_name = owner.name;
  const char* kind = owner.kind();
  auto object = deps_.store->get(kind, object_ns, object_name);
  if (!object.ok()) return deleted(k);
  const int64_t generation = (**object)["metadata"].value("generation", int64_t{1});
  absl::StatusOr<Resource> parsed;
  // A graph waits (makes no revision) while a service it calls is missing or not Ready.
  std::string waiting;
  if (owner.graph) {
    parsed = graphResource(**object, waiting);
  } else {
    parsed = resourceFromObject(**object);
  }
  std::unique_lock lock(mu_);
  auto& slot = services_[k];
  if (!slot) {
    slot = std::make_unique<Entry>();
    slot->key = k;
    slot->graph = owner.graph;
  }
  Entry& e = *slot;
  if (!parsed.ok() || !parsed->inference_service) {
    // Admission refuses these; an internal write could still store one.
    lock.unlock();
    (void)deps_.store->updateStatus(kind, object_ns, object_name, [&](json& o) {
      if (owner.graph) {
        o["status"]["conditions"] = json::array({{{"type", "Ready"},
                                                  {"status", "False"},
                                                  {"reason", "InvalidSpec"},
                                                  {"message", message(parsed.status())}}});
        return absl::OkStatus();
      }
      o["status"]["modelStatus"] = {{"transitionStatus", "InvalidSpec"},
                                    {"lastFailureInfo", {{"reason", "InvalidSpec"}, {"message", message(parsed.status())}}}};
      return absl::OkStatus();
    });
    return;
  }
  e.isvc = std::move(*parsed->inference_service);
  const InferenceService& isvc = e.isvc;
  const std::string name = isvc.metadata.name;
  const std::string ns = isvc.metadata.namespace_name;
  const std::string predictor_host = common::strCat(name, "-predictor-", ns, ".", options_.domain);
  std::map<std::string, std::string> vars = {{"Name", name}, {"Namespace", ns}, {"PredictorHost", predictor_host}};
  std::string failure;
  std::string downloading;  // a storageUri being downloaded: the revision waits for it
  std::vector<std::string> revisions_to_write;

  // The runtimes it may select: the namespace's and the cluster's.
  std::vector<ServingRuntime> namespaced, cluster;
  auto collect = [&](const char* kind, const std::string& in, std::vector<ServingRuntime>& out) {
    auto list = deps_.store->list(kind, in);
    if (!list.ok()) return;
    for (const auto& o : list->items) {
      auto r = resourceFromObject(*o);
      if (!r.ok() || !r->serving_runtime) continue;
      r->serving_runtime->created_order = creationOrder(*o);
      out.push_back(std::move(*r->serving_runtime));
    }
  };
  collect("ServingRuntime", ns, namespaced);
  collect("ClusterServingRuntime", "", cluster);
  // The stack's config-autoscaler, overlaid by the ConfigMap a cluster keeps it in.
  std::map<std::string, std::string> autoscaler_config = options_.autoscaler;
  if (auto cm = deps_.store->get("ConfigMap", kAutoscalerConfigNamespace, kAutoscalerConfigName); cm.ok()) {
    const json data = (**cm).value("data", json::object());  // items() must not outlive it
    for (const auto& [key, value] : data.items()) {
      autoscaler_config[key] = value.is_string() ? value.get<std::string>() : common::jsonText(value);
    }
  }

  // A custom-container component's launch, or a failure message.
  auto containerLaunch = [&](const std::string& component, const ComponentSpec& spec) -> std::optional<RevisionLaunch> {
    const auto& c = spec.containers.front();
    RevisionLaunch launch;
    launch.component = component;
    if (!c.command.empty()) {
      for (const auto& a : c.command) launch.argv.push_back(expand(a, vars));
    } else {
      auto command = commandFor(c.image);
      if (!command.ok()) {
        if (failure.empty()) failure = message(command.status());
        return std::nullopt;
      }
      launch.argv = *command;
    }
    for (const auto& a : c.args) launch.argv.push_back(expand(a, vars));
    for (const auto& [key, value] : c.env) launch.env[key] = expand(value, vars);
    // KServe's router probe (constants.GetRouterReadinessProbe); a custom container's root.
    launch.readiness_path = component == kGraphComponent ? "/readyz" : "/";
    return launch;
  };
  // What makes a revision: the component spec less the traffic-only fields (changing the
  // canary percentage moves traffic, it does not make a new revision).
  auto revisionSpec = [&](const char* component) {
    json spec = isvc.document.value("spec", json::object()).value(component, json::object());
    spec.erase("canaryTrafficPercent");
    return spec;
  };
  auto record = [&](ComponentState& state, const std::string& component, const ComponentSpec& cspec, const json& spec,
                    const RevisionLaunch& launch) {
    if (recordSpec(state, name, component, spec)) {
      const std::string& rev = state.rollout.latest_created_revision;
      RevisionRecord r;
      r.name = rev;
      r.namespace_name = ns;
      r.isvc = name;
      r.spec = spec;
      r.launch = launch;
      r.container_concurrency = static_cast<int>(cspec.extension.container_concurrency.value_or(0));
      r.timeout_seconds = cspec.extension.timeout_seconds.value_or(options_.revision_timeout.count() / 1000);
      e.revisions[rev] = std::move(r);
      service_of_revision_[rev] = k;
      revisions_to_write.push_back(rev);
      deps_.events->emit(events::RevisionCreated{k, rev, component});
    }
  };

  // Predictor: a custom container, or a model on a selected runtime.
  std::optional<RuntimeSelection> selection;
  if (owner.graph) {
    if (waiting.empty()) {
      if (auto launch = containerLaunch(kGraphComponent, isvc.predictor)) {
        record(e.predictor, kGraphComponent, isvc.predictor, revisionSpec("predictor"), *launch);
      }
    }
  } else if (!isvc.predictor.containers.empty()) {
    if (auto launch = containerLaunch("predictor", isvc.predictor)) {
      record(e.predictor, "predictor", isvc.predictor, revisionSpec("predictor"), *launch);
    }
  } else {
    selection = selectRuntime(isvc, namespaced, cluster);
    if (selection->failure == RuntimeFailure::kNone) {
      std::string model_dir;
      if (isvc.predictor.storage_uri) {
        // Never blocks: a download runs on its own thread and re-enqueues the services when done.
        auto resolved = deps_.storage->resolve(*isvc.predictor.storage_uri);
        switch (resolved.state) {
          case StorageResolution::State::kReady: model_dir = resolved.path.string(); break;
          case StorageResolution::State::kFailed: failure = message(resolved.error); break;
          case StorageResolution::State::kPending: downloading = *isvc.predictor.storage_uri; break;
        }
      }
      const auto& c = selection->runtime->containers.front();
      auto command = commandFor(c.image);
      if (!command.ok() && failure.empty()) failure = message(command.status());
      if (failure.empty() && downloading.empty()) {
        RevisionLaunch launch;
        launch.component = "predictor";
        launch.argv = *command;
        for (const auto& a : c.args) {
          launch.argv.push_back(mapContainerPorts(replaceAll(expand(a, vars), "/mnt/models", model_dir)));
        }
        for (const auto& [key, value] : c.env) launch.env[key] = expand(value, vars);
        // spec.predictor.model is a container too: its args follow the runtime's and its env
        // overrides the runtime's, as KServe merges them.
        const json model =
            isvc.document.value("spec", json::object()).value("predictor", json::object()).value("model", json::object());
        for (const auto& a : model.value("args", json::array())) {
          if (a.is_string()) launch.argv.push_back(expand(a.get<std::string>(), vars));
        }
        for (const auto& env : model.value("env", json::array())) {
          if (env.is_object() && env.contains("name") && env["name"].is_string()) {
            // Admission checked the types; a stored object from before that check may not have.
            auto value = env.find("value");
            launch.env[env["name"].get<std::string>()] =
                value != env.end() && value->is_string() ? expand(value->get<std::string>(), vars) : std::string();
          }
        }
        json spec = {{"runtime", selection->runtime->metadata.name},
                     {"storage", model_dir},
                     {"model", revisionSpec("predictor")}};
        record(e.predictor, "predictor", isvc.predictor, spec, launch);
      }
    }
  }
  // Transformer and explainer: custom containers.
  auto sideComponent = [&](const char* component, const std::optional<ComponentSpec>& spec,
                           std::optional<ComponentState>& state) {
    if (!spec || spec->containers.empty()) return;
    if (!state) state.emplace();
    if (auto launch = containerLaunch(component, *spec)) record(*state, component, *spec, revisionSpec(component), *launch);
  };
  sideComponent("transformer", isvc.transformer, e.transformer);
  sideComponent("explainer", isvc.explainer, e.explainer);

  // Readiness of revisions from their pods.
  auto refreshReady = [&](ComponentState& cs) {
    for (auto& r : cs.revisions) {
      bool ready = false;
      for (const auto& p : e.pods_of_revision[r.name]) ready = ready || ready_pods_.count(p);
      // A revision the autoscaler took to zero (or is waking up) stays ready, as in Knative:
      // the activator holds its requests. Knative's Revision is ready once its PodAutoscaler's
      // ScaleTargetInitialized holds (revision reconcile_resources.go), which initial-scale 0
      // gives with no pod at all (kpa.go activeThreshold: max(min-scale, initial-scale) = 0).
      if (!ready && autoscaled_.count(r.name)) {
        auto view = deps_.kpa->view(r.name);
        ready = view && view->scale_target_initialized && (view->replicas == 0 || view->activator_in_path);
      }
      if (ready != r.ready) {
        setRevisionReady(cs, r.name, ready);
        if (auto rec = e.revisions.find(r.name); rec != e.revisions.end()) {
          rec->second.ready = ready;
          revisions_to_write.push_back(r.name);
        }
      }
    }
  };
  refreshReady(e.predictor);
  if (e.transformer) refreshReady(*e.transformer);
  if (e.explainer) refreshReady(*e.explainer);
  bool tags = isvc.metadata.annotations.count("serving.kserve.io/enable-tag-routing") &&
              isvc.metadata.annotations.at("serving.kserve.io/enable-tag-routing") == "true";
  auto traffic = [&](ComponentState& cs, std::optional<int64_t> canary, bool tag_routing) {
    cs.traffic = computeTraffic(canary, cs.rollout, tag_routing);
    propagateRollout(cs.rollout, cs.traffic);
    cs.traffic = computeTraffic(canary, cs.rollout, tag_routing);
  };
  traffic(e.predictor, isvc.predictor.extension.canary_traffic_percent, tags);
  if (e.transformer) traffic(*e.transformer, std::nullopt, false);
  if (e.explainer) traffic(*e.explainer, std::nullopt, false);

  // Pods: every revision that carries traffic, the newest, and the rolled-out one keep
  // `replicas` pods; the others keep none.
  std::vector<std::string> to_start;  // revisions, once per missing pod
  std::vector<std::string> to_stop;
  auto scale = [&](ComponentState& cs, int replicas, bool autoscale) {
    std::set<std::string> keep = {cs.rollout.latest_created_revision};
    for (const auto& t : cs.traffic) {
      if (t.percent > 0) keep.insert(t.revision);
    }
    if (!cs.rollout.latest_rolledout_revision.empty()) keep.insert(cs.rollout.latest_rolledout_revision);
    for (const auto& r : cs.revisions) {
      auto& names = e.pods_of_revision[r.name];
      bool kept = keep.count(r.name) && e.revisions.count(r.name);
      int want = kept ? replicas : 0;
      if (kept && autoscale) {
        // The KPA owns the count (between min and max scale, 0 allowed).
        auto settings = resolveScalingSettings(autoscaler_config, isvc.predictor.extension, isvc.metadata.annotations);
        if (settings.ok()) {
          int ready_now = 0;
          for (const auto& p : names) ready_now += ready_pods_.count(p) ? 1 : 0;
          want = deps_.kpa->track(k, r.name, *settings, ready_now);
          activator::RevisionSettings a;
          a.isvc = k;
          a.container_concurrency = static_cast<int>(isvc.predictor.extension.container_concurrency.value_or(0));
          a.timeout = isvc.predictor.extension.timeout_seconds
                          ? std::chrono::milliseconds(*isvc.predictor.extension.timeout_seconds * 1000)
                          : options_.revision_timeout;
          a.queue_limit = options_.activator_queue_limit;
          autoscaled_[r.name] = a;
        } else if (failure.empty()) {
          failure = message(settings.status());
        }
      } else if (autoscaled_.erase(r.name) > 0) {
        deps_.kpa->untrack(r.name);
        (void)deps_.store->remove("PodAutoscaler", ns, r.name);
      }
      for (int have = static_cast<int>(names.size()); have < want; ++have) to_start.push_back(r.name);
      while (static_cast<int>(names.size()) > want) {  // newest first
        to_stop.push_back(names.back());
        names.pop_back();
      }
    }
  };
  // The predictor is autoscaled when its pods report stats (a queue-proxy in front of each).
  scale(e.predictor, replicasOf(isvc.predictor), !options_.queue_proxy.empty());
  if (e.transformer) scale(*e.transformer, replicasOf(*isvc.transformer), false);
  if (e.explainer) scale(*e.explainer, replicasOf(*isvc.explainer), false);

  StatusInputs in;
  in.domain = options_.domain;
  in.predictor = &e.predictor;
  in.transformer = e.transformer ? &*e.transformer : nullptr;
  in.runtime = selection;
  in.now = deps_.time->systemTime();
  json status = owner.graph ? buildGraphStatus(name, ns, options_.domain, e.predictor,
                                              failure.empty() ? waiting : failure, in.now)
                            : buildStatus(isvc, in);
  if (owner.graph) {
    // The graph's own status has no modelStatus.
  } else if (!failure.empty()) {
    status["modelStatus"]["transitionStatus"] = "InvalidSpec";
    status["modelStatus"]["lastFailureInfo"] = {{"reason", "InvalidPredictorSpec"}, {"message", failure}};
  } else if (!downloading.empty()) {
    // As KServe shows a predictor whose storage initializer is still running.
    status["modelStatus"]["transitionStatus"] = "InProgress";
    status["modelStatus"]["states"] = {{"activeModelState", ""}, {"targetModelState", "Pending"}};
    status["modelStatus"]["lastFailureInfo"] = {{"reason", "ModelLoadPending"},
                                                {"message", common::strCat("downloading storageUri ", downloading)}};
  }
  // The status describes this generation (KServe's observedGeneration, which kubectl wait and
  // KServe's own clients read).
  status["observedGeneration"] = generation;
  std::optional<events::StatusChanged> status_event;
  if (status != e.status) {
    e.status = status;
    bool ready = false;
    for (const auto& c : status["conditions"]) {
      if (c["type"] == "Ready") ready = c["status"] == "True";
    }
    events::StatusChanged changed{k, ready, {}};
    for (const auto& t : e.predictor.traffic) changed.traffic.push_back({t.revision, t.percent});
    status_event = std::move(changed);
  }
  std::sort(revisions_to_write.begin(), revisions_to_write.end());
  revisions_to_write.erase(std::unique(revisions_to_write.begin(), revisions_to_write.end()), revisions_to_write.end());
  for (const auto& rev : revisions_to_write) writeRevision(e, rev);
  lock.unlock();
  (void)deps_.store->updateStatus(kind, ns, name, [&](json& o) {
    o["status"] = status;
    return absl::OkStatus();
  });
  for (const auto& rev : to_start) startPod(k, rev);
  // Route away first, then announce, then stop what no longer takes traffic: no request is
  // sent to a pod that is going away.
  publishRoutes();
  if (status_event) deps_.events->emit(std::move(*status_event));
  stopPodsLater(std::move(to_stop));
}

void InferenceServiceReconciler::publishRoutes() {
  // One publication at a time, so snapshots and the activator's endpoints go out in order.
  std::lock_guard publishing(publish_mu_);
  auto snapshot = std::make_shared<ingress::RoutingSnapshot>(options_.domain);
  std::map<std::string, activator::RevisionSettings> activator_revisions;
  std::map<std::string, int> reachable;
  {
    std::lock_guard lock(mu_);
    for (const auto& [k, ep] : services_) {
      const Entry& e = *ep;
      if (e.isvc.metadata.name.empty()) continue;  // restored, not reconciled yet
      ingress::ServiceRoutes routes{e.isvc.metadata.name, e.isvc.metadata.namespace_name, {}};
      auto component = [&](const std::string& name, const ComponentState& cs) {
        ingress::ComponentTraffic t{name, {}, {}};
        for (const auto& target : cs.traffic) {
          t.split.push_back({target.revision, target.percent});
          if (target.tag) t.tags[*target.tag] = target.revision;
        }
        routes.components.push_back(t);
        for (const auto& r : cs.revisions) {
          auto pods_it = e.pods_of_revision.find(r.name);
          bool autoscaled_revision = autoscaled_.count(r.name) > 0;
          if (pods_it == e.pods_of_revision.end() && !autoscaled_revision) continue;
          auto endpoints = std::make_shared<activator::EndpointList>();
          if (pods_it != e.pods_of_revision.end()) {
            for (const auto& p : pods_it->second) {
              auto ready = ready_pods_.find(p);
              if (ready != ready_pods_.end()) endpoints->push_back(ready->second);
            }
          }
          snapshot->revisions[r.name].endpoints = std::move(endpoints);
        }
        // What the ingress can reach: ready pods of each revision that takes traffic.
        for (const auto& target : cs.traffic) {
          if (target.percent <= 0 || target.revision.empty()) continue;
          auto it = snapshot->revisions.find(target.revision);
          reachable[target.revision] = it == snapshot->revisions.end() ? 0 : static_cast<int>(it->second.endpoints->size());
        }
      };
      component(e.graph ? kGraphComponent : "predictor", e.predictor);
      if (e.transformer) component("transformer", *e.transformer);
      if (e.explainer) component("explainer", *e.explainer);
      snapshot->table.add(routes);
    }
    activator_revisions = autoscaled_;
  }
  // The activator's side of each autoscaled revision, and what it no longer serves.
  for (const auto& [rev, settings] : activator_revisions) {
    snapshot->revisions[rev].activator = deps_.activator->addRevision(rev, settings);
  }
  for (const auto& rev : published_activator_revisions_) {
    if (!activator_revisions.count(rev)) deps_.activator->removeRevision(rev);
  }
  published_activator_revisions_.clear();
  for (const auto& [rev, settings] : activator_revisions) published_activator_revisions_.insert(rev);
  deps_.routing->publish(snapshot);
  // Held requests go out to pods that are ready now; the KPA sees the ready pods.
  for (const auto& [rev, target] : snapshot->revisions) {
    if (!target.activator) continue;
    deps_.activator->setEndpoints(rev, target.endpoints);
    std::vector<uint16_t> ports;
    for (const auto& ep : *target.endpoints) {
      if (ep.admin_port != 0) ports.push_back(ep.admin_port);
    }
    deps_.kpa->setPods(rev, std::move(ports));
  }
  bool changed = false;
  {
    std::lock_guard lock(mu_);
    changed = reachable != last_reachable_;
    if (changed) last_reachable_ = reachable;
  }
  if (changed) deps_.events->emit(events::RoutesChanged{reachable});
}

}  // namespace kh::controller
