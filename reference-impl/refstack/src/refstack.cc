#include "kh/refstack/refstack.h"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "kh/common/strings.h"
#include "kh/controller/resources.h"
#include "kh/controller/rollout.h"
#include "kh/controller/status.h"
#include "kh/controller/storage.h"
#include "kh/http/client.h"
#include "kh/http/server.h"
#include "kh/ingress/routing.h"
#include "kh/pods/pod_manager.h"

namespace kh::refstack {
namespace {

using nlohmann::json;
namespace ctl = kh::controller;

std::string key(const std::string& ns, const std::string& name) { return ns + "/" + name; }

std::string replaceAll(std::string s, const std::string& from, const std::string& to) {
  for (size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size()) {
    s.replace(pos, from.size(), to);
  }
  return s;
}

std::string readFile(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void jsonResponse(http::Response& res, int status, const json& body) {
  res.result(static_cast<boost::beast::http::status>(status));
  res.set(boost::beast::http::field::content_type, "application/json");
  res.body() = body.dump();
}

}  // namespace

struct Refstack::Impl : http::Handler {
  struct Entry {
    ctl::InferenceService isvc;
    ctl::ComponentState predictor;
    std::optional<ctl::ComponentState> transformer;
    std::map<std::string, std::vector<std::string>> pods_of_revision;
    json status = json::object();
    bool deleted = false;
  };

  Config config;
  const common::TimeSource& time;
  mutable std::mutex mu;
  std::map<std::string, Entry> services;
  std::vector<ctl::ServingRuntime> cluster_runtimes;
  std::vector<ctl::ServingRuntime> namespaced_runtimes;
  int64_t runtime_order = 0;
  std::map<std::string, std::string> revision_of_pod;   // pod -> revision
  std::map<std::string, std::string> service_of_revision;  // revision -> service key
  std::map<std::string, uint16_t> ready_pods;            // pod -> port, ready ones only
  std::deque<json> event_log;
  mutable std::condition_variable_any event_cv;
  int64_t next_seq = 1;

  std::unique_ptr<pods::PodManager> pods;
  std::atomic<std::shared_ptr<const ingress::RouteTable>> routes{std::make_shared<const ingress::RouteTable>()};

  // Reconcile queue.
  std::mutex queue_mu;
  std::condition_variable queue_cv;
  std::deque<std::string> queue;
  bool stopping = false;
  std::thread reconciler;

  // Proxy pool (the ingress answers later from these threads).
  struct ProxyJob {
    http::Request request;
    uint16_t port;
    std::string revision;
    http::Responder responder;
  };
  std::mutex proxy_mu;
  std::condition_variable proxy_cv;
  std::deque<ProxyJob> proxy_queue;
  std::vector<std::thread> proxy_threads;

  struct IngressHandler : http::Handler {
    Impl* impl;
    explicit IngressHandler(Impl* i) : impl(i) {}
    void handle(http::Request&, http::Response&) override {}
    bool isAsync() const override { return true; }
    void handleAsync(http::Request&& req, http::Responder responder) override {
      impl->route(std::move(req), std::move(responder));
    }
  } ingress_handler{this};

  std::unique_ptr<http::HttpServer> admin_server;
  std::unique_ptr<http::HttpServer> ingress_server;
  std::mutex shutdown_mu;
  std::condition_variable shutdown_cv;
  bool shutdown_requested = false;

  Impl(const Config& c, const common::TimeSource& t) : config(c), time(t) {}

  void event(json e) {
    std::lock_guard lock(mu);
    eventLocked(std::move(e));
  }
  void eventLocked(json e) {
    auto now = std::chrono::duration<double>(time.systemTime().time_since_epoch()).count();
    e["seq"] = next_seq++;
    e["time"] = now;
    event_log.push_back(std::move(e));
    if (event_log.size() > 10000) event_log.pop_front();
    event_cv.notify_all();
  }

  void enqueue(const std::string& k) {
    {
      std::lock_guard lock(queue_mu);
      queue.push_back(k);
    }
    queue_cv.notify_one();
  }

  // ---------------------------------------------------------------- pods

  void onPodEvent(const pods::PodEvent& e) {
    std::string service;
    {
      std::lock_guard lock(mu);
      auto rev = revision_of_pod.find(e.pod);
      if (rev == revision_of_pod.end()) return;
      eventLocked({{"type", "pod"}, {"pod", e.pod}, {"revision", rev->second},
                   {"phase", pods::podPhaseName(e.phase)}, {"restarts", e.restarts},
                   {"message", e.message}});
      if (e.phase == pods::PodPhase::kReady) {
        // The port comes from the manager's status (reading it here would call back into it).
        ready_pods[e.pod] = 0;
      } else {
        ready_pods.erase(e.pod);
      }
      auto svc = service_of_revision.find(rev->second);
      if (svc != service_of_revision.end()) service = svc->second;
    }
    if (!service.empty()) enqueue(service);
  }

  absl::StatusOr<std::vector<std::string>> commandFor(const std::string& image) {
    std::string name = image.substr(0, image.rfind(':') == std::string::npos ||
                                               image.rfind(':') < image.rfind('/')
                                           ? image.size()
                                           : image.rfind(':'));
    auto it = config.images.find(name);
    if (it == config.images.end()) {
      return absl::NotFoundError(common::strCat("image ", image,
                                                " is not in refstack's image map (config images)"));
    }
    return it->second;
  }

  // Starts the pods of a new revision. Called without `mu`.
  void startPods(const std::string& service, const std::string& revision, std::vector<std::string> argv,
                 std::map<std::string, std::string> env, const std::string& readiness, int replicas) {
    for (int i = 1; i <= replicas; ++i) {
      pods::PodSpec spec;
      spec.name = common::strCat(revision, "-pod-", i);
      spec.argv = argv;
      spec.env = env;
      spec.readiness_path = readiness;
      spec.grace_period = std::chrono::seconds(10);
      spec.log_file = (config.state_dir / "logs" / (spec.name + ".log")).string();
      {
        std::lock_guard lock(mu);
        revision_of_pod[spec.name] = revision;
        service_of_revision[revision] = service;
        services[service].pods_of_revision[revision].push_back(spec.name);
      }
      auto st = pods->start(spec);
      if (!st.ok()) {
        event({{"type", "pod"}, {"pod", spec.name}, {"revision", revision}, {"phase", "Failed"},
               {"message", std::string(common::toStd(st.status().message()))}});
      }
    }
  }

  void stopPods(const std::vector<std::string>& names) {
    for (const auto& n : names) {
      (void)pods->stop(n);
      std::lock_guard lock(mu);
      ready_pods.erase(n);
      revision_of_pod.erase(n);
    }
  }

  // ---------------------------------------------------------------- reconcile

  void reconcile(const std::string& k) {
    std::unique_lock lock(mu);
    auto it = services.find(k);
    if (it == services.end()) return;
    Entry& e = it->second;
    if (e.deleted) {
      std::vector<std::string> all;
      for (auto& [rev, names] : e.pods_of_revision) all.insert(all.end(), names.begin(), names.end());
      services.erase(it);
      lock.unlock();
      stopPods(all);
      publishRoutes();
      return;
    }
    const ctl::InferenceService& isvc = e.isvc;
    const std::string name = isvc.metadata.name;
    std::optional<ctl::RuntimeSelection> selection;
    std::vector<std::pair<std::string, std::vector<std::string>>> to_start;  // revision, argv
    std::string predictor_readiness = "/v2/health/ready";
    std::map<std::string, std::string> predictor_env;
    int replicas = static_cast<int>(std::max<int64_t>(1, isvc.predictor.extension.min_replicas.value_or(1)));
    // What makes a revision: the component spec less the traffic-only fields (changing the
    // canary percentage moves traffic, it does not make a new revision).
    json component_spec = isvc.document["spec"]["predictor"];
    component_spec.erase("canaryTrafficPercent");
    json predictor_spec;
    std::vector<std::string> predictor_argv;
    std::string failure;
    if (!isvc.predictor.containers.empty()) {
      const auto& c = isvc.predictor.containers.front();
      auto command = commandFor(c.image);
      if (!command.ok()) failure = std::string(common::toStd(command.status().message()));
      else {
        predictor_argv = *command;
        for (const auto& a : c.args) predictor_argv.push_back(replaceAll(a, "{{.Name}}", name));
        for (const auto& [k2, v] : c.env) predictor_env[k2] = v;
      }
      predictor_readiness = "/";
      predictor_spec = component_spec;
    } else {
      selection = ctl::selectRuntime(isvc, namespaced_runtimes, cluster_runtimes);
      if (selection->failure == ctl::RuntimeFailure::kNone) {
        ctl::StorageConfig storage;
        storage.base_dir = config.base_dir;
        storage.pvc_root = config.state_dir / "pvc";
        storage.cache_dir = config.state_dir / "cache";
        std::string model_dir;
        if (isvc.predictor.storage_uri) {
          auto resolved = ctl::resolveStorageUri(*isvc.predictor.storage_uri, storage);
          if (!resolved.ok()) failure = std::string(common::toStd(resolved.status().message()));
          else model_dir = resolved->string();
        }
        const auto& c = selection->runtime->containers.front();
        auto command = commandFor(c.image);
        if (!command.ok()) failure = std::string(common::toStd(command.status().message()));
        if (failure.empty()) {
          predictor_argv = *command;
          for (auto a : c.args) {
            a = replaceAll(a, "{{.Name}}", name);
            a = replaceAll(a, "/mnt/models", model_dir);
            a = replaceAll(a, "--http_port=8080", "--http_port={{.Port}}");
            predictor_argv.push_back(a);
          }
        }
        predictor_spec = {{"runtime", selection->runtime->metadata.name},
                          {"storage", model_dir},
                          {"model", component_spec}};
      }
    }
    if (failure.empty() && (!selection || selection->failure == ctl::RuntimeFailure::kNone)) {
      if (ctl::recordSpec(e.predictor, name, "predictor", predictor_spec)) {
        std::string rev = e.predictor.rollout.latest_created_revision;
        to_start.emplace_back(rev, predictor_argv);
        eventLocked({{"type", "revision"}, {"isvc", k}, {"revision", rev}, {"message", "created"}});
      }
    }
    // Transformer (custom containers).
    std::vector<std::string> transformer_argv;
    std::string transformer_rev;
    if (isvc.transformer && !isvc.transformer->containers.empty()) {
      if (!e.transformer) e.transformer.emplace();
      const auto& c = isvc.transformer->containers.front();
      auto command = commandFor(c.image);
      if (command.ok()) {
        transformer_argv = *command;
        std::string predictor_host = common::strCat(name, "-predictor-", isvc.metadata.namespace_name, ".", config.domain);
        for (const auto& a : c.args) {
          transformer_argv.push_back(replaceAll(replaceAll(a, "{{.Name}}", name), "{{.PredictorHost}}", predictor_host));
        }
        if (ctl::recordSpec(*e.transformer, name, "transformer", isvc.document["spec"]["transformer"])) {
          transformer_rev = e.transformer->rollout.latest_created_revision;
          eventLocked({{"type", "revision"}, {"isvc", k}, {"revision", transformer_rev}, {"message", "created"}});
        }
      } else if (failure.empty()) {
        failure = std::string(common::toStd(command.status().message()));
      }
    }
    // Readiness of revisions from their pods.
    auto refreshReady = [&](ctl::ComponentState& cs) {
      for (auto& r : cs.revisions) {
        bool ready = false;
        for (const auto& p : e.pods_of_revision[r.name]) ready = ready || ready_pods.count(p);
        if (ready != r.ready) ctl::setRevisionReady(cs, r.name, ready);
      }
    };
    refreshReady(e.predictor);
    if (e.transformer) refreshReady(*e.transformer);
    bool tags = isvc.metadata.annotations.count("serving.kserve.io/enable-tag-routing") &&
                isvc.metadata.annotations.at("serving.kserve.io/enable-tag-routing") == "true";
    e.predictor.traffic = ctl::computeTraffic(isvc.predictor.extension.canary_traffic_percent, e.predictor.rollout, tags);
    ctl::propagateRollout(e.predictor.rollout, e.predictor.traffic);
    e.predictor.traffic = ctl::computeTraffic(isvc.predictor.extension.canary_traffic_percent, e.predictor.rollout, tags);
    if (e.transformer) {
      e.transformer->traffic = ctl::computeTraffic(std::nullopt, e.transformer->rollout, false);
      ctl::propagateRollout(e.transformer->rollout, e.transformer->traffic);
    }
    // Pods of revisions that carry no traffic and are not the newest are stopped.
    std::vector<std::string> to_stop;
    auto collect = [&](ctl::ComponentState& cs) {
      std::set<std::string> keep = {cs.rollout.latest_created_revision};
      for (const auto& t : cs.traffic) if (t.percent > 0) keep.insert(t.revision);
      if (!cs.rollout.latest_rolledout_revision.empty()) keep.insert(cs.rollout.latest_rolledout_revision);
      for (const auto& r : cs.revisions) {
        if (keep.count(r.name)) continue;
        auto& names = e.pods_of_revision[r.name];
        to_stop.insert(to_stop.end(), names.begin(), names.end());
        names.clear();
      }
    };
    collect(e.predictor);
    if (e.transformer) collect(*e.transformer);
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
    }
    std::optional<json> status_event;
    if (status != e.status) {
      e.status = status;
      bool ready = false;
      for (const auto& c : status["conditions"]) if (c["type"] == "Ready") ready = c["status"] == "True";
      json traffic = json::array();
      for (const auto& t : e.predictor.traffic) traffic.push_back({{"revision", t.revision}, {"percent", t.percent}});
      status_event = json{{"type", "status"}, {"isvc", k}, {"ready", ready}, {"traffic", traffic}};
    }
    std::string service_key = k;
    lock.unlock();
    for (auto& [rev, argv] : to_start) {
      startPods(service_key, rev, argv, predictor_env, predictor_readiness, replicas);
    }
    if (!transformer_rev.empty()) startPods(service_key, transformer_rev, transformer_argv, {}, "/", 1);
    // Route away first, then announce, then stop what no longer takes traffic: no request is
    // sent to a pod that is going away.
    publishRoutes();
    if (status_event) event(*status_event);
    stopPods(to_stop);
  }

  void publishRoutes() {
    auto table = std::make_shared<ingress::RouteTable>(config.domain);
    std::lock_guard lock(mu);
    for (const auto& [k, e] : services) {
      ingress::ServiceRoutes routes{e.isvc.metadata.name, e.isvc.metadata.namespace_name, {}};
      auto component = [&](const std::string& name, const ctl::ComponentState& cs) {
        ingress::ComponentTraffic t{name, {}, {}};
        for (const auto& target : cs.traffic) {
          t.split.push_back({target.revision, target.percent});
          if (target.tag) t.tags[*target.tag] = target.revision;
        }
        routes.components.push_back(t);
      };
      component("predictor", e.predictor);
      if (e.transformer) component("transformer", *e.transformer);
      table->add(routes);
    }
    routes.store(table);
  }

  void reconcileLoop() {
    while (true) {
      std::string k;
      {
        std::unique_lock lock(queue_mu);
        queue_cv.wait(lock, [&] { return stopping || !queue.empty(); });
        if (stopping) return;
        k = queue.front();
        queue.pop_front();
      }
      reconcile(k);
    }
  }

  // ---------------------------------------------------------------- ingress

  void route(http::Request&& req, http::Responder responder) {
    std::string host(req[boost::beast::http::field::host]);
    auto table = routes.load();
    const ingress::Route* r = table->lookup(host);
    http::Response res;
    if (r == nullptr) {
      jsonResponse(res, 404, {{"error", common::strCat("no InferenceService serves host '", host, "'")}});
      return responder.send(std::move(res));
    }
    thread_local std::mt19937_64 rng{std::random_device{}()};
    const auto* w = ingress::RouteTable::pick(*r, std::uniform_real_distribution<double>(0, 100)(rng));
    uint16_t port = 0;
    std::string revision = w ? w->revision : "";
    if (w) {
      // Pod names under our lock, ports from the pod manager outside it: the manager calls us
      // back with its own lock held, so the two locks are never taken in the other order.
      std::vector<std::string> candidates;
      {
        std::lock_guard lock(mu);
        auto svc = services.find(key(r->namespace_name, r->isvc));
        if (svc != services.end()) {
          auto pods_it = svc->second.pods_of_revision.find(revision);
          if (pods_it != svc->second.pods_of_revision.end()) {
            for (const auto& p : pods_it->second) {
              if (ready_pods.count(p)) candidates.push_back(p);
            }
          }
        }
      }
      if (!candidates.empty()) {
        thread_local size_t round_robin = 0;
        auto st = pods->status(candidates[round_robin++ % candidates.size()]);
        if (st.ok()) port = st->port;
      }
    }
    if (port == 0) {
      jsonResponse(res, 503, {{"error", common::strCat("no ready revision for host '", host, "'")}});
      return responder.send(std::move(res));
    }
    {
      std::lock_guard lock(proxy_mu);
      if (proxy_queue.size() >= 10000) {
        jsonResponse(res, 503, {{"error", "ingress queue full"}});
        return responder.send(std::move(res));
      }
      proxy_queue.push_back({std::move(req), port, revision, std::move(responder)});
    }
    proxy_cv.notify_one();
  }

  void proxyLoop() {
    std::map<uint16_t, std::unique_ptr<http::Client>> clients;  // keep-alive per pod
    while (true) {
      ProxyJob job;
      {
        std::unique_lock lock(proxy_mu);
        proxy_cv.wait(lock, [&] { return stopping || !proxy_queue.empty(); });
        if (stopping && proxy_queue.empty()) return;
        job = std::move(proxy_queue.front());
        proxy_queue.pop_front();
      }
      auto& client = clients[job.port];
      if (!client) client = std::make_unique<http::Client>("127.0.0.1", job.port, std::chrono::seconds(300));
      std::string original_host(job.request[boost::beast::http::field::host]);
      job.request.set("X-Forwarded-Host", original_host);
      job.request.set(boost::beast::http::field::host, common::strCat("127.0.0.1:", job.port));
      auto res = client->send(std::move(job.request));
      http::Response out;
      if (!res.ok()) {
        jsonResponse(out, 502, {{"error", common::strCat("revision ", job.revision, ": ", common::toStd(res.status().message()))}});
      } else {
        out = std::move(*res);
      }
      out.set("Kh-Revision", job.revision);
      job.responder.send(std::move(out));
    }
  }

  // ---------------------------------------------------------------- admin API (http::Handler)

  void handle(http::Request& req, http::Response& res) override {
    std::string target(req.target());
    std::string method(req.method_string());
    if (target == "/apply" && method == "POST") {
      auto r = applyText(req.body(), "request body");
      if (!r.ok()) return jsonResponse(res, 400, {{"error", std::string(common::toStd(r.status().message()))}});
      return jsonResponse(res, 200, *r);
    }
    if (target.rfind("/events", 0) == 0) {
      int64_t since = 0;
      if (auto q = target.find("since="); q != std::string::npos) since = std::atoll(target.c_str() + q + 6);
      std::string out;
      for (const auto& e : eventsAfter(since)) out += e.dump() + "\n";
      res.result(200);
      res.set(boost::beast::http::field::content_type, "application/x-ndjson");
      res.body() = out;
      return;
    }
    if (target == "/shutdown" && method == "POST") {
      jsonResponse(res, 200, {{"shutdown", true}});
      std::lock_guard lock(shutdown_mu);
      shutdown_requested = true;
      shutdown_cv.notify_all();
      return;
    }
    const std::string prefix = "/apis/serving.kserve.io/v1beta1/";
    if (target == prefix + "inferenceservices" && method == "GET") return jsonResponse(res, 200, listJson());
    if (target.rfind(prefix + "namespaces/", 0) == 0) {
      std::string rest = target.substr(prefix.size() + 11);
      auto slash = rest.find('/');
      std::string ns = rest.substr(0, slash);
      rest = slash == std::string::npos ? "" : rest.substr(slash + 1);
      if (rest.rfind("inferenceservices", 0) == 0) {
        std::string name = rest.size() > 18 ? rest.substr(18) : "";
        if (name.empty() && method == "GET") {
          json items = json::array();
          json all = listJson();  // keep the list alive while iterating over it
          for (const auto& i : all["items"]) {
            if (i["metadata"].value("namespace", "") == ns) items.push_back(i);
          }
          return jsonResponse(res, 200, {{"kind", "InferenceServiceList"}, {"items", items}});
        }
        if (method == "GET") {
          auto one = getJson(ns, name);
          if (!one.ok()) return jsonResponse(res, 404, {{"error", std::string(common::toStd(one.status().message()))}});
          return jsonResponse(res, 200, *one);
        }
        if (method == "DELETE") {
          auto st = removeService(ns, name);
          if (!st.ok()) return jsonResponse(res, 404, {{"error", std::string(common::toStd(st.message()))}});
          return jsonResponse(res, 200, {{"deleted", name}});
        }
        if (method == "PUT" || method == "POST") {
          auto r = applyText(req.body(), "request body");
          if (!r.ok()) return jsonResponse(res, 400, {{"error", std::string(common::toStd(r.status().message()))}});
          return jsonResponse(res, 200, *r);
        }
      }
    }
    jsonResponse(res, 404, {{"error", common::strCat("Not Found: ", method, " ", target)}});
  }

  absl::StatusOr<json> applyText(const std::string& text, const std::string& source) {
    auto resources = ctl::parseManifests(text, source);
    if (!resources.ok()) return resources.status();
    // Validate everything first: an invalid manifest changes nothing.
    for (const auto& r : *resources) {
      if (r.inference_service) {
        if (auto st = ctl::validateInferenceService(*r.inference_service); !st.ok()) return st;
      }
      if (r.serving_runtime) {
        if (auto st = ctl::validateServingRuntime(*r.serving_runtime); !st.ok()) return st;
      }
    }
    json applied = json::array();
    std::vector<std::string> to_reconcile;
    {
      std::lock_guard lock(mu);
      for (auto& r : *resources) {
        if (r.serving_runtime) {
          auto rt = *r.serving_runtime;
          rt.created_order = ++runtime_order;
          auto& list = rt.cluster_scoped ? cluster_runtimes : namespaced_runtimes;
          std::erase_if(list, [&](const ctl::ServingRuntime& x) {
            return x.metadata.name == rt.metadata.name && x.metadata.namespace_name == rt.metadata.namespace_name;
          });
          list.push_back(rt);
          applied.push_back({{"kind", r.kind}, {"name", rt.metadata.name}});
          for (const auto& [k, e] : services) to_reconcile.push_back(k);
        }
        if (r.inference_service) {
          const auto& isvc = *r.inference_service;
          std::string k = key(isvc.metadata.namespace_name, isvc.metadata.name);
          auto& entry = services[k];
          entry.isvc = isvc;
          entry.deleted = false;
          applied.push_back({{"kind", r.kind}, {"name", isvc.metadata.name}, {"namespace", isvc.metadata.namespace_name}});
          eventLocked({{"type", "applied"}, {"isvc", k}});
          to_reconcile.push_back(k);
        }
      }
    }
    for (const auto& k : to_reconcile) enqueue(k);
    return json{{"applied", applied}};
  }

  absl::Status removeService(const std::string& ns, const std::string& name) {
    std::string k = key(ns, name);
    {
      std::lock_guard lock(mu);
      auto it = services.find(k);
      if (it == services.end()) return absl::NotFoundError(common::strCat("inferenceservice ", k, " not found"));
      it->second.deleted = true;
      eventLocked({{"type", "deleted"}, {"isvc", k}});
    }
    enqueue(k);
    return absl::OkStatus();
  }

  json objectJson(const Entry& e) const {
    json doc = e.isvc.document;
    doc["metadata"]["namespace"] = e.isvc.metadata.namespace_name;
    doc["status"] = e.status;
    return doc;
  }

  absl::StatusOr<json> getJson(const std::string& ns, const std::string& name) const {
    std::lock_guard lock(mu);
    auto it = services.find(key(ns, name));
    if (it == services.end() || it->second.deleted) {
      return absl::NotFoundError(common::strCat("inferenceservices.serving.kserve.io \"", name, "\" not found"));
    }
    return objectJson(it->second);
  }

  json listJson() const {
    std::lock_guard lock(mu);
    json items = json::array();
    for (const auto& [k, e] : services) if (!e.deleted) items.push_back(objectJson(e));
    return {{"kind", "InferenceServiceList"}, {"items", items}};
  }

  std::vector<json> eventsAfter(int64_t since) const {
    std::lock_guard lock(mu);
    std::vector<json> out;
    for (const auto& e : event_log) if (e["seq"].get<int64_t>() > since) out.push_back(e);
    return out;
  }
};

Refstack::Refstack(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

absl::StatusOr<std::unique_ptr<Refstack>> Refstack::start(const Config& config,
                                                          const common::TimeSource& time) {
  auto impl = std::make_unique<Impl>(config, time);
  std::error_code ec;
  std::filesystem::create_directories(config.state_dir / "logs", ec);
  if (ec) {
    return absl::UnavailableError(common::strCat("cannot create ", config.state_dir.string(), ": ", ec.message()));
  }
  if (!config.runtimes_dir.empty()) {
    for (const auto& f : std::filesystem::directory_iterator(config.runtimes_dir, ec)) {
      if (f.path().extension() != ".yaml") continue;
      auto parsed = ctl::parseManifests(readFile(f.path()), f.path().string());
      if (!parsed.ok()) return parsed.status();
      for (auto& r : *parsed) {
        if (r.serving_runtime) impl->cluster_runtimes.push_back(*r.serving_runtime);
      }
    }
  }
  Impl* raw = impl.get();
  impl->pods = std::make_unique<pods::PodManager>(time, [raw](const pods::PodEvent& e) { raw->onPodEvent(e); });
  http::ServerOptions admin;
  admin.address = config.address;
  admin.port = config.admin_port;
  admin.server_name = "refstack-admin";
  auto admin_server = http::HttpServer::create(admin, *impl);
  if (!admin_server.ok()) return admin_server.status();
  impl->admin_server = std::move(*admin_server);
  http::ServerOptions ingress_opts;
  ingress_opts.address = config.address;
  ingress_opts.port = config.ingress_port;
  ingress_opts.workers = 2;
  ingress_opts.server_name = "refstack-ingress";
  auto ingress_server = http::HttpServer::create(ingress_opts, impl->ingress_handler);
  if (!ingress_server.ok()) return ingress_server.status();
  impl->ingress_server = std::move(*ingress_server);
  impl->reconciler = std::thread([raw] { raw->reconcileLoop(); });
  for (int i = 0; i < std::max(1, config.proxy_threads); ++i) {
    impl->proxy_threads.emplace_back([raw] { raw->proxyLoop(); });
  }
  impl->admin_server->start();
  impl->ingress_server->start();
  return std::unique_ptr<Refstack>(new Refstack(std::move(impl)));
}

Refstack::~Refstack() {
  impl_->ingress_server->drain(std::chrono::seconds(5));
  impl_->admin_server->drain(std::chrono::seconds(2));
  {
    std::lock_guard lock(impl_->queue_mu);
    impl_->stopping = true;
  }
  impl_->queue_cv.notify_all();
  {
    std::lock_guard lock(impl_->proxy_mu);
  }
  impl_->proxy_cv.notify_all();
  impl_->reconciler.join();
  for (auto& t : impl_->proxy_threads) t.join();
  impl_->pods.reset();  // stops every pod
}

uint16_t Refstack::adminPort() const { return impl_->admin_server->port(); }
uint16_t Refstack::ingressPort() const { return impl_->ingress_server->port(); }

absl::StatusOr<nlohmann::json> Refstack::apply(const std::string& yaml, const std::string& source) {
  return impl_->applyText(yaml, source);
}
absl::Status Refstack::remove(const std::string&, const std::string& ns, const std::string& name) {
  return impl_->removeService(ns, name);
}
absl::StatusOr<nlohmann::json> Refstack::get(const std::string& ns, const std::string& name) const {
  return impl_->getJson(ns, name);
}
nlohmann::json Refstack::list() const { return impl_->listJson(); }
std::vector<nlohmann::json> Refstack::events(int64_t since) const { return impl_->eventsAfter(since); }

std::optional<nlohmann::json> Refstack::waitForEvent(
    int64_t since, const std::function<bool(const nlohmann::json&)>& match,
    std::chrono::milliseconds timeout) const {
  std::unique_lock lock(impl_->mu);
  std::optional<nlohmann::json> found;
  impl_->event_cv.wait_for(lock, timeout, [&] {
    for (const auto& e : impl_->event_log) {
      if (e["seq"].get<int64_t>() > since && match(e)) {
        found = e;
        return true;
      }
    }
    return false;
  });
  return found;
}

void Refstack::waitForShutdown() {
  std::unique_lock lock(impl_->shutdown_mu);
  impl_->shutdown_cv.wait(lock, [&] { return impl_->shutdown_requested; });
}

void Refstack::requestShutdown() {
  std::lock_guard lock(impl_->shutdown_mu);
  impl_->shutdown_requested = true;
  impl_->shutdown_cv.notify_all();
}

}  // namespace kh::refstack
