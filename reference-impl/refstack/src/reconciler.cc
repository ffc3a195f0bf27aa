// The reconciler: turns each InferenceService into revisions (one per spec change of a
// component), keeps the pods of every revision that carries or may carry traffic, stops the
// rest, and publishes routes and status. One thread, fed by a queue of service keys.

#include <chrono>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "kh/common/strings.h"
#include "kh/controller/scaling.h"
#include "kh/controller/storage.h"
#include "stack_impl.h"

namespace kh::refstack {
namespace {

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

int replicasOf(const ctl::ComponentSpec& spec) {
  return static_cast<int>(std::max<int64_t>(1, spec.extension.min_replicas.value_or(1)));
}

}  // namespace

void StackImpl::enqueue(const std::string& k) {
  {
    std::lock_guard lock(queue_mu);
    queue.push_back(k);
  }
  queue_cv.notify_one();
}

void StackImpl::reconcileLoop() {
  while (true) {
    std::string k;
    {
      std::unique_lock lock(queue_mu);
      queue_cv.wait(lock, [&] { return stopping || !queue.empty(); });
      if (stopping) return;
      k = queue.front();
      queue.pop_front();
      // Collapse duplicates: one pass sees the latest state anyway.
      std::erase(queue, k);
    }
    if (k == kEveryService) {
      std::lock_guard lock(mu);
      for (const auto& [key, e] : services) enqueue(key);
      continue;
    }
    auto start = std::chrono::steady_clock::now();
    reconcile(k);
    metrics.reconciles.Increment();
    metrics.reconcile_seconds.Observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
}

namespace {
// The start-up times a pod's model server wrote (KH_STARTUP_FILE) before it reported ready:
// monotonic nanoseconds, comparable with refstack's clock on the same machine.
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
}  // namespace

void StackImpl::onPodEvent(const pods::PodEvent& e) {
  std::string service;
  // Read here, once per readiness, not on the request path that records the cold start.
  StartupTimes startup;
  if (e.phase == pods::PodPhase::kReady) startup = readStartupTimes(startupFileOf(e.pod));
  std::string revision;
  {
    std::lock_guard lock(mu);
    auto rev = revision_of_pod.find(e.pod);
    if (rev == revision_of_pod.end()) return;
    revision = rev->second;
    events.emit(events::PodPhaseChanged{e.pod, revision, pods::podPhaseName(e.phase), e.restarts, e.message});
    if (e.phase == pods::PodPhase::kReady) {
      activator::Endpoint ep;
      ep.pod = e.pod;
      ep.port = e.port;
      ep.grpc_port = e.grpc_port;
      ep.admin_port = e.admin_port;
      ready_pods[e.pod] = std::move(ep);
    } else {
      ready_pods.erase(e.pod);
    }
    if (e.restarts > 0 && e.phase == pods::PodPhase::kBackOff) {
      metrics.pod_restarts.Add({{"revision", revision}}).Increment();
    }
    auto svc = service_of_revision.find(revision);
    if (svc != service_of_revision.end()) service = svc->second;
  }
  if (e.phase == pods::PodPhase::kReady && activator) {
    activator->markColdStart(revision, activator::ColdStartStep::kReady, time.monotonicTime(),
                             {e.pod, startup.process_started, startup.model_loaded});
  }
  if (!service.empty()) enqueue(service);
}

void StackImpl::setReplicas(const std::string& revision, int32_t) {
  // The reconciler reads the KPA's replicas when it runs the service's pods.
  std::string service;
  {
    std::lock_guard lock(mu);
    auto svc = service_of_revision.find(revision);
    if (svc != service_of_revision.end()) service = svc->second;
  }
  if (!service.empty()) enqueue(service);
}

void StackImpl::housekeepingLoop() {
  std::unique_lock lock(queue_mu);
  while (!stopping) {
    housekeeping_cv.wait_for(lock, std::chrono::milliseconds(100), [&] { return stopping; });
    if (stopping) return;
    lock.unlock();
    activator->expire(time.monotonicTime());
    lock.lock();
  }
}

absl::StatusOr<std::vector<std::string>> StackImpl::commandFor(const std::string& image) const {
  auto colon = image.rfind(':');
  auto slash = image.rfind('/');
  std::string name =
      colon == std::string::npos || (slash != std::string::npos && colon < slash) ? image
                                                                                  : image.substr(0, colon);
  auto it = config.images.find(name);
  if (it == config.images.end()) {
    return absl::NotFoundError(common::strCat(
        "image ", image, " is not in refstack's image map (the `images` section of its config)"));
  }
  return it->second;
}

std::string StackImpl::startupFileOf(const std::string& pod) const {
  return (config.state_dir / "pods" / (pod + ".startup.json")).string();
}

void StackImpl::startPod(const std::string& service, const std::string& revision) {
  pods::PodSpec spec;
  {
    std::lock_guard lock(mu);
    auto svc = services.find(service);
    if (svc == services.end()) return;
    Entry& e = svc->second;
    auto launch = e.launches.find(revision);
    if (launch == e.launches.end()) return;
    spec.name = common::strCat(revision, "-pod-", ++e.pod_serial[revision]);
    spec.argv = launch->second.argv;
    spec.env = launch->second.env;
    // Where pods reach other services (a transformer its predictor); the port changes between
    // runs, so it is not part of the revision.
    spec.env["KH_INGRESS_ADDRESS"] =
        common::strCat(config.address, ":", ingress_server ? ingress_server->port() : 0);
    spec.readiness_path = launch->second.readiness_path;
    // The model server writes when its process started and its model loaded (cold-start
    // breakdown); other containers ignore it.
    spec.env["KH_STARTUP_FILE"] = startupFileOf(spec.name);
    revision_of_pod[spec.name] = revision;
    service_of_revision[revision] = service;
    e.pods_of_revision[revision].push_back(spec.name);
  }
  if (!config.queue_proxy.empty()) {
    int cc = 0;
    int64_t timeout_ms = config.revision_timeout.count();
    {
      std::lock_guard lock(mu);
      auto svc = services.find(service);
      if (svc != services.end()) {
        const auto& launch = svc->second.launches[revision];
        const ctl::InferenceService& isvc = svc->second.isvc;
        const ctl::ComponentSpec* component = launch.component == "transformer" && isvc.transformer ? &*isvc.transformer
                                              : launch.component == "explainer" && isvc.explainer ? &*isvc.explainer
                                                                                                  : &isvc.predictor;
        cc = static_cast<int>(component->extension.container_concurrency.value_or(0));
        if (component->extension.timeout_seconds) timeout_ms = *component->extension.timeout_seconds * 1000;
      }
    }
    activator->markColdStart(revision, activator::ColdStartStep::kPodSpawned, time.monotonicTime());
    spec.proxy_argv = config.queue_proxy;
    for (const std::string& a : {std::string("--http_port={{.Port}}"), std::string("--admin_port={{.AdminPort}}"),
                                 std::string("--user_port={{.UserPort}}"),
                                 // gRPC through the queue-proxy too (0: the pod serves no gRPC).
                                 std::string("--grpc_port={{.GrpcPort}}"),
                                 std::string("--user_grpc_port={{.UserGrpcPort}}"),
                                 common::strCat("--container_concurrency=", cc),
                                 common::strCat("--revision_timeout_ms=", timeout_ms),
                                 common::strCat("--drain_quiet_period_ms=", config.drain_quiet_period.count()),
                                 common::strCat("--user_readiness_path=", spec.readiness_path),
                                 common::strCat("--pod_name=", spec.name),
                                 // Cold start: find the model ready within a millisecond, not 50.
                                 std::string("--readiness_retry_ms=1")}) {
      spec.proxy_argv.push_back(a);
    }
  }
  spec.grace_period = config.pod_grace_period;
  // A starting pod is probed every millisecond: readiness noticed late is cold-start time.
  spec.probe_period = std::chrono::milliseconds(1);
  spec.log_file = (config.state_dir / "logs" / (spec.name + ".log")).string();
  spec.pid_file = (config.state_dir / "pods" / (spec.name + ".pid")).string();
  std::error_code stale;
  std::filesystem::remove(startupFileOf(spec.name), stale);
  auto st = pods->start(spec);
  if (!st.ok()) {
    std::lock_guard lock(mu);
    auto svc = services.find(service);
    if (svc != services.end()) std::erase(svc->second.pods_of_revision[revision], spec.name);
    revision_of_pod.erase(spec.name);
    events.emit(events::PodPhaseChanged{spec.name, revision, "Failed", 0,
                                        std::string(common::toStd(st.status().message()))});
  }
}

void StackImpl::stopPods(const std::vector<std::string>& names) {
  for (const auto& n : names) {
    (void)pods->stop(n);
    std::error_code ignored;
    std::filesystem::remove(startupFileOf(n), ignored);
    std::lock_guard lock(mu);
    ready_pods.erase(n);
    revision_of_pod.erase(n);
  }
}

// Stopping drains (the queue-proxy's quiet period): off the reconciler thread, so scaling and
// routing go on meanwhile. The pods are already out of the routes.
void StackImpl::stopPodsLater(std::vector<std::string> names) {
  if (names.empty()) return;
  std::lock_guard lock(queue_mu);
  if (stopping) return stopPods(names);
  stoppers.emplace_back([this, names = std::move(names)] { stopPods(names); });
}

void StackImpl::reconcile(const std::string& k) {
  std::unique_lock lock(mu);
  auto it = services.find(k);
  if (it == services.end()) return;
  Entry& e = it->second;
  if (e.deleted) {
    std::vector<std::string> all;
    for (auto& [rev, names] : e.pods_of_revision) all.insert(all.end(), names.begin(), names.end());
    std::vector<std::string> gone;
    for (const auto& [rev, settings] : autoscaled) {
      if (service_of_revision.count(rev) && service_of_revision[rev] == k) gone.push_back(rev);
    }
    for (const auto& rev : gone) {
      autoscaled.erase(rev);
      kpa->untrack(rev);
    }
    services.erase(it);
    persistLocked();
    lock.unlock();
    publishRoutes();
    stopPodsLater(std::move(all));
    return;
  }
  const ctl::InferenceService& isvc = e.isvc;
  const std::string name = isvc.metadata.name;
  const std::string ns = isvc.metadata.namespace_name;
  const std::string predictor_host = common::strCat(name, "-predictor-", ns, ".", config.domain);
  std::map<std::string, std::string> vars = {
      {"Name", name},
      {"Namespace", ns},
      {"PredictorHost", predictor_host}};
  std::string failure;
  std::string downloading;  // a storageUri being downloaded: the revision waits for it

  // A custom-container component's launch, or a failure message.
  auto containerLaunch = [&](const std::string& component,
                             const ctl::ComponentSpec& spec) -> std::optional<RevisionLaunch> {
    const auto& c = spec.containers.front();
    RevisionLaunch launch;
    launch.component = component;
    if (!c.command.empty()) {
      for (const auto& a : c.command) launch.argv.push_back(expand(a, vars));
    } else {
      auto command = commandFor(c.image);
      if (!command.ok()) {
        if (failure.empty()) failure = std::string(common::toStd(command.status().message()));
        return std::nullopt;
      }
      launch.argv = *command;
    }
    for (const auto& a : c.args) launch.argv.push_back(expand(a, vars));
    for (const auto& [key, value] : c.env) launch.env[key] = expand(value, vars);
    launch.readiness_path = "/";
    return launch;
  };
  // What makes a revision: the component spec less the traffic-only fields (changing the
  // canary percentage moves traffic, it does not make a new revision).
  auto revisionSpec = [&](const char* component) {
    json spec = isvc.document.value("spec", json::object()).value(component, json::object());
    spec.erase("canaryTrafficPercent");
    return spec;
  };
  auto record = [&](ctl::ComponentState& state, const std::string& component, const json& spec,
                    const RevisionLaunch& launch) {
    if (ctl::recordSpec(state, name, component, spec)) {
      const std::string& rev = state.rollout.latest_created_revision;
      e.launches[rev] = launch;
      events.emit(events::RevisionCreated{k, rev, component});
    }
  };

  // Predictor: a custom container, or a model on a selected runtime.
  std::optional<ctl::RuntimeSelection> selection;
  if (!isvc.predictor.containers.empty()) {
    if (auto launch = containerLaunch("predictor", isvc.predictor)) {
      record(e.predictor, "predictor", revisionSpec("predictor"), *launch);
    }
  } else {
    selection = ctl::selectRuntime(isvc, namespaced_runtimes, cluster_runtimes);
    if (selection->failure == ctl::RuntimeFailure::kNone) {
      std::string model_dir;
      if (isvc.predictor.storage_uri) {
        // Never blocks: a download runs on its own thread and re-enqueues the service when done.
        auto resolved = storage->resolve(*isvc.predictor.storage_uri);
        switch (resolved.state) {
          case ctl::StorageResolution::State::kReady: model_dir = resolved.path.string(); break;
          case ctl::StorageResolution::State::kFailed: failure = std::string(common::toStd(resolved.error.message())); break;
          case ctl::StorageResolution::State::kPending: downloading = *isvc.predictor.storage_uri; break;
        }
      }
      const auto& c = selection->runtime->containers.front();
      auto command = commandFor(c.image);
      if (!command.ok() && failure.empty()) failure = std::string(common::toStd(command.status().message()));
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
        const json model = isvc.document.value("spec", json::object())
                               .value("predictor", json::object())
                               .value("model", json::object());
        for (const auto& a : model.value("args", json::array())) {
          if (a.is_string()) launch.argv.push_back(expand(a.get<std::string>(), vars));
        }
        for (const auto& env : model.value("env", json::array())) {
          if (env.is_object() && env.contains("name") && env["name"].is_string()) {
            launch.env[env["name"].get<std::string>()] =
                expand(env.value("value", std::string()), vars);
          }
        }
        json spec = {{"runtime", selection->runtime->metadata.name},
                     {"storage", model_dir},
                     {"model", revisionSpec("predictor")}};
        record(e.predictor, "predictor", spec, launch);
      }
    }
  }
  // Transformer and explainer: custom containers.
  auto sideComponent = [&](const char* component, const std::optional<ctl::ComponentSpec>& spec,
                           std::optional<ctl::ComponentState>& state) {
    if (!spec || spec->containers.empty()) return;
    if (!state) state.emplace();
    if (auto launch = containerLaunch(component, *spec)) {
      record(*state, component, revisionSpec(component), *launch);
    }
  };
  sideComponent("transformer", isvc.transformer, e.transformer);
  sideComponent("explainer", isvc.explainer, e.explainer);

  // Readiness of revisions from their pods.
  auto refreshReady = [&](ctl::ComponentState& cs) {
    for (auto& r : cs.revisions) {
      bool ready = false;
      for (const auto& p : e.pods_of_revision[r.name]) ready = ready || ready_pods.count(p);
      // A revision the autoscaler took to zero (or is waking up) stays ready, as in Knative:
      // the activator holds its requests.
      if (!ready && r.ready && autoscaled.count(r.name)) {
        auto view = kpa->view(r.name);
        ready = view && (view->replicas == 0 || view->activator_in_path);
      }
      if (ready != r.ready) ctl::setRevisionReady(cs, r.name, ready);
    }
  };
  refreshReady(e.predictor);
  if (e.transformer) refreshReady(*e.transformer);
  if (e.explainer) refreshReady(*e.explainer);
  bool tags = isvc.metadata.annotations.count("serving.kserve.io/enable-tag-routing") &&
              isvc.metadata.annotations.at("serving.kserve.io/enable-tag-routing") == "true";
  auto traffic = [&](ctl::ComponentState& cs, std::optional<int64_t> canary, bool tag_routing) {
    cs.traffic = ctl::computeTraffic(canary, cs.rollout, tag_routing);
    ctl::propagateRollout(cs.rollout, cs.traffic);
    cs.traffic = ctl::computeTraffic(canary, cs.rollout, tag_routing);
  };
  traffic(e.predictor, isvc.predictor.extension.canary_traffic_percent, tags);
  if (e.transformer) traffic(*e.transformer, std::nullopt, false);
  if (e.explainer) traffic(*e.explainer, std::nullopt, false);

  // Pods: every revision that carries traffic, the newest, and the rolled-out one keep
  // `replicas` pods; the others keep none.
  std::vector<std::string> to_start;  // revisions, once per missing pod
  std::vector<std::string> to_stop;
  auto scale = [&](ctl::ComponentState& cs, int replicas, bool autoscale) {
    std::set<std::string> keep = {cs.rollout.latest_created_revision};
    for (const auto& t : cs.traffic) {
      if (t.percent > 0) keep.insert(t.revision);
    }
    if (!cs.rollout.latest_rolledout_revision.empty()) keep.insert(cs.rollout.latest_rolledout_revision);
    for (const auto& r : cs.revisions) {
      auto& names = e.pods_of_revision[r.name];
      bool kept = keep.count(r.name) && e.launches.count(r.name);
      int want = kept ? replicas : 0;
      if (kept && autoscale) {
        // The KPA owns the count (between min and max scale, 0 allowed).
        auto settings = ctl::resolveScalingSettings(config.autoscaler, isvc.predictor.extension,
                                                    isvc.metadata.annotations);
        if (settings.ok()) {
          int ready_now = 0;
          for (const auto& p : names) ready_now += ready_pods.count(p) ? 1 : 0;
          want = kpa->track(k, r.name, *settings, ready_now);
          activator::RevisionSettings a;
          a.isvc = k;
          a.container_concurrency = static_cast<int>(isvc.predictor.extension.container_concurrency.value_or(0));
          a.timeout = isvc.predictor.extension.timeout_seconds
                          ? std::chrono::milliseconds(*isvc.predictor.extension.timeout_seconds * 1000)
                          : config.revision_timeout;
          a.queue_limit = config.activator_queue_limit;
          autoscaled[r.name] = a;
        } else if (failure.empty()) {
          failure = std::string(common::toStd(settings.status().message()));
        }
      } else if (autoscaled.erase(r.name) > 0) {
        kpa->untrack(r.name);
      }
      for (int have = static_cast<int>(names.size()); have < want; ++have) to_start.push_back(r.name);
      while (static_cast<int>(names.size()) > want) {  // newest first
        to_stop.push_back(names.back());
        names.pop_back();
      }
    }
  };
  // The predictor is autoscaled when its pods report stats (a queue-proxy in front of each).
  scale(e.predictor, replicasOf(isvc.predictor), !config.queue_proxy.empty());
  if (e.transformer) scale(*e.transformer, replicasOf(*isvc.transformer), false);
  if (e.explainer) scale(*e.explainer, replicasOf(*isvc.explainer), false);

  ctl::StatusInputs in;
  in.domain = config.domain;
  in.predictor = &e.predictor;
  in.transformer = e.transformer ? &*e.transformer : nullptr;
  in.runtime = selection;
  in.now = time.systemTime();
  json status = ctl::buildStatus(isvc, in);
  if (!failure.empty()) {
    status["modelStatus"]["transitionStatus"] = "InvalidSpec";
    status["modelStatus"]["lastFailureInfo"] = {{"reason", "InvalidPredictorSpec"}, {"message", failure}};
  } else if (!downloading.empty()) {
    // As KServe shows a predictor whose storage initializer is still running.
    status["modelStatus"]["transitionStatus"] = "InProgress";
    status["modelStatus"]["states"] = {{"activeModelState", ""}, {"targetModelState", "Pending"}};
    status["modelStatus"]["lastFailureInfo"] = {
        {"reason", "ModelLoadPending"}, {"message", common::strCat("downloading storageUri ", downloading)}};
  }
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
  persistLocked();
  lock.unlock();
  for (const auto& rev : to_start) startPod(k, rev);
  // Route away first, then announce, then stop what no longer takes traffic: no request is
  // sent to a pod that is going away.
  publishRoutes();
  if (status_event) events.emit(std::move(*status_event));
  stopPodsLater(std::move(to_stop));
}

void StackImpl::publishRoutes() {
  // One publication at a time, so snapshots and the activator's endpoints go out in order.
  std::lock_guard publishing(publish_mu);
  auto snapshot = std::make_shared<ingress::RoutingSnapshot>(config.domain);
  std::map<std::string, activator::RevisionSettings> activator_revisions;
  std::map<std::string, int> reachable;
  {
    std::lock_guard lock(mu);
    for (const auto& [k, e] : services) {
      if (e.deleted) continue;
      ingress::ServiceRoutes routes{e.isvc.metadata.name, e.isvc.metadata.namespace_name, {}};
      auto component = [&](const std::string& name, const ctl::ComponentState& cs) {
        ingress::ComponentTraffic t{name, {}, {}};
        for (const auto& target : cs.traffic) {
          t.split.push_back({target.revision, target.percent});
          if (target.tag) t.tags[*target.tag] = target.revision;
        }
        routes.components.push_back(t);
        for (const auto& r : cs.revisions) {
          auto pods_it = e.pods_of_revision.find(r.name);
          bool autoscaled_revision = autoscaled.count(r.name) > 0;
          if (pods_it == e.pods_of_revision.end() && !autoscaled_revision) continue;
          auto endpoints = std::make_shared<activator::EndpointList>();
          if (pods_it != e.pods_of_revision.end()) {
            for (const auto& p : pods_it->second) {
              auto ready = ready_pods.find(p);
              if (ready != ready_pods.end()) endpoints->push_back(ready->second);
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
      component("predictor", e.predictor);
      if (e.transformer) component("transformer", *e.transformer);
      if (e.explainer) component("explainer", *e.explainer);
      snapshot->table.add(routes);
    }
    activator_revisions = autoscaled;
  }
  // The activator's side of each autoscaled revision, and what it no longer serves.
  for (const auto& [rev, settings] : activator_revisions) {
    snapshot->revisions[rev].activator = activator->addRevision(rev, settings);
  }
  for (const auto& rev : published_activator_revisions) {
    if (!activator_revisions.count(rev)) activator->removeRevision(rev);
  }
  published_activator_revisions.clear();
  for (const auto& [rev, settings] : activator_revisions) published_activator_revisions.insert(rev);
  routing.publish(snapshot);
  // Held requests go out to pods that are ready now; the KPA sees the ready pods.
  for (const auto& [rev, target] : snapshot->revisions) {
    if (!target.activator) continue;
    activator->setEndpoints(rev, target.endpoints);
    std::vector<uint16_t> ports;
    for (const auto& ep : *target.endpoints) {
      if (ep.admin_port != 0) ports.push_back(ep.admin_port);
    }
    kpa->setPods(rev, std::move(ports));
  }
  bool changed = false;
  {
    std::lock_guard lock(mu);
    changed = reachable != last_reachable;
    if (changed) last_reachable = reachable;
  }
  if (changed) events.emit(events::RoutesChanged{reachable});
}

}  // namespace kh::refstack
