// The admin API: Kubernetes-style paths for InferenceServices (serving.kserve.io/v1beta1) and
// (Cluster)ServingRuntimes (v1alpha1), the event log and its watch stream, /metrics, /healthz,
// /shutdown. An optional bearer token guards every path.

#include "kh/common/strings.h"
#include "stack_impl.h"

namespace kh::refstack {
namespace {

constexpr std::string_view kIsvcPrefix = "/apis/serving.kserve.io/v1beta1/";
constexpr std::string_view kRuntimePrefix = "/apis/serving.kserve.io/v1alpha1/";

// The value of query parameter `name`, or "" (no percent-decoding needed for our parameters).
std::string queryParam(std::string_view target, std::string_view name) {
  auto q = target.find('?');
  if (q == std::string_view::npos) return {};
  std::string_view query = target.substr(q + 1);
  while (!query.empty()) {
    auto amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    auto eq = pair.find('=');
    if (pair.substr(0, eq) == name) return eq == std::string_view::npos ? "true" : std::string(pair.substr(eq + 1));
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return {};
}

std::vector<std::string> splitPath(std::string_view path) {
  std::vector<std::string> parts;
  while (!path.empty()) {
    auto slash = path.find('/');
    if (slash != 0) parts.emplace_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return parts;
}

std::string message(const absl::Status& st) { return std::string(common::toStd(st.message())); }

int httpStatusOf(const absl::Status& st) {
  switch (st.code()) {
    case absl::StatusCode::kNotFound: return 404;
    case absl::StatusCode::kAlreadyExists: return 409;
    case absl::StatusCode::kInvalidArgument: return 400;
    case absl::StatusCode::kFailedPrecondition: return 400;
    default: return 500;
  }
}

}  // namespace

void StackImpl::handleAsync(http::Request&& req, http::Responder responder) {
  if (!config.admin_token.empty()) {
    std::string_view auth = sv(req[boost::beast::http::field::authorization]);
    if (auth != "Bearer " + config.admin_token) {
      http::Response res;
      jsonResponse(res, 401, {{"error", "missing or wrong bearer token (Authorization: Bearer <token>)"}});
      res.set(boost::beast::http::field::www_authenticate, "Bearer");
      return responder.send(std::move(res));
    }
  }
  std::string_view target = sv(req.target());
  std::string_view path = target.substr(0, target.find('?'));
  if (path == "/events" && req.method() == boost::beast::http::verb::get &&
      (queryParam(target, "watch") == "true" || queryParam(target, "watch") == "1")) {
    // Every event after `since`, then each new one as it happens, one JSON object per line.
    int64_t since = common::parseInt<int64_t>(queryParam(target, "since")).value_or(0);
    http::Response head;
    head.result(200);
    head.set(boost::beast::http::field::content_type, "application/x-ndjson");
    head.set(boost::beast::http::field::cache_control, "no-cache");
    std::shared_ptr<http::StreamWriter> writer = responder.stream(std::move(head));
    std::lock_guard lock(watchers_mu);
    for (auto it = watchers.begin(); it != watchers.end();) {
      if (it->second->closed()) {
        events.unsubscribe(it->first);
        it = watchers.erase(it);
      } else {
        ++it;
      }
    }
    if (watchers.size() >= 256) {
      writer->write(json({{"type", "error"}, {"message", "too many watchers"}}).dump() + "\n");
      writer->finish();
      return;
    }
    // The writer only queues (it never blocks), so it may run with the log locked.
    int64_t id = events.subscribe([writer](const events::Event& e) { writer->write(events::toJson(e).dump() + "\n"); },
                                  since);
    watchers[id] = std::move(writer);
    return;
  }
  http::Response res;
  res.version(req.version());
  handle(req, res);
  responder.send(std::move(res));
}

void StackImpl::handle(http::Request& req, http::Response& res) {
  std::string target(req.target());
  std::string path = target.substr(0, target.find('?'));
  auto method = req.method();
  using boost::beast::http::verb;
  if (path == "/healthz") return jsonResponse(res, 200, {{"status", "ok"}});
  if (path == "/activator/stats" && method == verb::get) return jsonResponse(res, 200, activatorStatsJson());
  if (path == "/metrics" && method == verb::get) {
    res.result(200);
    res.set(boost::beast::http::field::content_type, "text/plain; version=0.0.4");
    res.body() = metrics.text();
    return;
  }
  if (path == "/apply" && method == verb::post) {
    auto r = applyText(req.body(), "request body");
    if (!r.ok()) return jsonResponse(res, 400, {{"error", message(r.status())}});
    return jsonResponse(res, 200, *r);
  }
  if (path == "/events" && method == verb::get) {
    int64_t since = common::parseInt<int64_t>(queryParam(target, "since")).value_or(0);
    std::string out;
    for (const auto& e : events.after(since)) out += events::toJson(e).dump() + "\n";
    res.result(200);
    res.set(boost::beast::http::field::content_type, "application/x-ndjson");
    res.body() = std::move(out);
    return;
  }
  if (path == "/shutdown" && method == verb::post) {
    jsonResponse(res, 200, {{"shutdown", true}});
    std::lock_guard lock(shutdown_mu);
    shutdown_requested = true;
    shutdown_cv.notify_all();
    return;
  }
  // Kubernetes-style resource paths.
  bool isvc_api = path.rfind(kIsvcPrefix, 0) == 0;
  bool runtime_api = path.rfind(kRuntimePrefix, 0) == 0;
  if (isvc_api || runtime_api) {
    auto parts = splitPath(std::string_view(path).substr(isvc_api ? kIsvcPrefix.size() : kRuntimePrefix.size()));
    std::string ns;
    if (parts.size() >= 2 && parts[0] == "namespaces") {
      ns = parts[1];
      parts.erase(parts.begin(), parts.begin() + 2);
    }
    if (parts.empty() || parts.size() > 2) {
      return jsonResponse(res, 404, {{"error", common::strCat("Not Found: ", path)}});
    }
    const std::string& resource = parts[0];
    std::string name = parts.size() == 2 ? parts[1] : "";
    bool write = method == verb::post || method == verb::put;
    if (write) {
      auto r = applyText(req.body(), "request body");
      if (!r.ok()) return jsonResponse(res, 400, {{"error", message(r.status())}});
      return jsonResponse(res, method == verb::post ? 201 : 200, *r);
    }
    if (isvc_api && resource == "inferenceservices") {
      if (method == verb::get && name.empty()) {
        json all = listJson();
        if (ns.empty()) return jsonResponse(res, 200, all);
        json items = json::array();
        for (const auto& i : all["items"]) {
          if (i["metadata"].value("namespace", "") == ns) items.push_back(i);
        }
        return jsonResponse(res, 200, {{"apiVersion", "serving.kserve.io/v1beta1"},
                                       {"kind", "InferenceServiceList"}, {"items", items}});
      }
      if (ns.empty()) ns = "default";
      if (method == verb::get) {
        auto one = getJson(ns, name);
        if (!one.ok()) return jsonResponse(res, 404, {{"error", message(one.status())}});
        return jsonResponse(res, 200, *one);
      }
      if (method == verb::delete_) {
        auto st = removeService(ns, name);
        if (!st.ok()) return jsonResponse(res, httpStatusOf(st), {{"error", message(st)}});
        return jsonResponse(res, 200, {{"kind", "Status"}, {"status", "Success"},
                                       {"details", {{"name", name}, {"kind", "inferenceservices"}}}});
      }
    }
    bool cluster = resource == "clusterservingruntimes";
    if (runtime_api && (cluster || resource == "servingruntimes")) {
      if (cluster != ns.empty()) {
        return jsonResponse(res, 404, {{"error", cluster ? "clusterservingruntimes are not namespaced"
                                                         : "servingruntimes are namespaced: /namespaces/NS/servingruntimes"}});
      }
      json all = runtimesJson(cluster, ns);
      if (method == verb::get && name.empty()) return jsonResponse(res, 200, all);
      if (method == verb::get) {
        for (const auto& i : all["items"]) {
          if (i["metadata"].value("name", "") == name) return jsonResponse(res, 200, i);
        }
        return jsonResponse(res, 404, {{"error", common::strCat(resource, ".serving.kserve.io \"", name, "\" not found")}});
      }
      if (method == verb::delete_) {
        auto st = removeRuntime(cluster, ns, name);
        if (!st.ok()) return jsonResponse(res, httpStatusOf(st), {{"error", message(st)}});
        return jsonResponse(res, 200, {{"kind", "Status"}, {"status", "Success"},
                                       {"details", {{"name", name}, {"kind", resource}}}});
      }
    }
    return jsonResponse(res, 405, {{"error", common::strCat("method ", sv(req.method_string()), " not allowed on ", path)}});
  }
  jsonResponse(res, 404, {{"error", common::strCat("Not Found: ", sv(req.method_string()), " ", path)}});
}

absl::StatusOr<json> StackImpl::applyText(const std::string& text, const std::string& source) {
  auto resources = ctl::parseManifests(text, source);
  if (!resources.ok()) return resources.status();
  if (resources->empty()) return absl::InvalidArgumentError(common::strCat(source, ": no resources in the manifest"));
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
        applied_runtime_documents[common::strCat(r.kind, "/", rt.metadata.namespace_name, "/", rt.metadata.name)] =
            rt.document;
        applied.push_back({{"kind", r.kind}, {"name", rt.metadata.name}});
        events.emit(events::ResourceApplied{r.kind, rt.cluster_scoped ? "" : rt.metadata.namespace_name, rt.metadata.name});
        for (const auto& [k, e] : services) to_reconcile.push_back(k);
      }
      if (r.inference_service) {
        const auto& isvc = *r.inference_service;
        std::string k = resourceKey(isvc.metadata.namespace_name, isvc.metadata.name);
        auto& entry = services[k];
        entry.isvc = isvc;
        entry.deleted = false;
        applied.push_back({{"kind", r.kind}, {"name", isvc.metadata.name}, {"namespace", isvc.metadata.namespace_name}});
        events.emit(events::ResourceApplied{r.kind, isvc.metadata.namespace_name, isvc.metadata.name});
        to_reconcile.push_back(k);
      }
    }
    persistLocked();
  }
  for (const auto& k : to_reconcile) enqueue(k);
  return json{{"applied", applied}};
}

absl::Status StackImpl::removeService(const std::string& ns, const std::string& name) {
  std::string k = resourceKey(ns, name);
  {
    std::lock_guard lock(mu);
    auto it = services.find(k);
    if (it == services.end() || it->second.deleted) {
      return absl::NotFoundError(common::strCat("inferenceservices.serving.kserve.io \"", name, "\" not found"));
    }
    it->second.deleted = true;
    events.emit(events::ResourceDeleted{"InferenceService", ns, name});
    persistLocked();
  }
  enqueue(k);
  return absl::OkStatus();
}

absl::Status StackImpl::removeRuntime(bool cluster, const std::string& ns, const std::string& name) {
  std::vector<std::string> to_reconcile;
  {
    std::lock_guard lock(mu);
    std::string kind = cluster ? "ClusterServingRuntime" : "ServingRuntime";
    auto doc = applied_runtime_documents.find(common::strCat(kind, "/", ns, "/", name));
    bool builtin = cluster && std::any_of(builtin_runtimes.begin(), builtin_runtimes.end(),
                                          [&](const auto& r) { return r.metadata.name == name; });
    if (doc == applied_runtime_documents.end()) {
      if (builtin) {
        return absl::FailedPreconditionError(common::strCat(
            "clusterservingruntime ", name, " is built in (", config.runtimes_dir.string(),
            "); apply one with the same name to override it"));
      }
      return absl::NotFoundError(common::strCat(cluster ? "clusterservingruntimes" : "servingruntimes",
                                                ".serving.kserve.io \"", name, "\" not found"));
    }
    applied_runtime_documents.erase(doc);
    auto& list = cluster ? cluster_runtimes : namespaced_runtimes;
    std::erase_if(list, [&](const ctl::ServingRuntime& x) {
      return x.metadata.name == name && x.metadata.namespace_name == ns;
    });
    if (builtin) {  // deleting an override brings the built-in back
      for (const auto& r : builtin_runtimes) {
        if (r.metadata.name == name) list.push_back(r);
      }
    }
    events.emit(events::ResourceDeleted{kind, cluster ? "" : ns, name});
    persistLocked();
    for (const auto& [k, e] : services) to_reconcile.push_back(k);
  }
  for (const auto& k : to_reconcile) enqueue(k);
  return absl::OkStatus();
}

json StackImpl::objectJson(const Entry& e) const {
  json doc = e.isvc.document;
  doc["metadata"]["namespace"] = e.isvc.metadata.namespace_name;
  doc["status"] = e.status;
  // What `get -o wide` shows beside KServe's status: pods per revision, ready or not.
  json pods_json = json::object();
  for (const auto& [rev, names] : e.pods_of_revision) {
    if (names.empty()) continue;
    int ready = 0;
    for (const auto& p : names) ready += ready_pods.count(p) ? 1 : 0;
    pods_json[rev] = {{"pods", names.size()}, {"ready", ready}};
  }
  std::string key = resourceKey(e.isvc.metadata.namespace_name, e.isvc.metadata.name);
  for (const auto& [rev, settings] : autoscaled) {
    if (settings.isvc != key) continue;
    auto view = kpa->view(rev);
    if (!view) continue;
    auto& r = pods_json[rev];
    if (!r.contains("pods")) r = {{"pods", 0}, {"ready", 0}};
    r["desired"] = view->replicas;
    r["panic"] = view->panicking;
    r["activatorInPath"] = view->activator_in_path;
  }
  doc["status"]["refstack"] = {{"revisions", pods_json}};
  return doc;
}

absl::StatusOr<json> StackImpl::getJson(const std::string& ns, const std::string& name) const {
  std::lock_guard lock(mu);
  auto it = services.find(resourceKey(ns, name));
  if (it == services.end() || it->second.deleted) {
    return absl::NotFoundError(common::strCat("inferenceservices.serving.kserve.io \"", name, "\" not found"));
  }
  return objectJson(it->second);
}

json StackImpl::listJson() const {
  std::lock_guard lock(mu);
  json items = json::array();
  for (const auto& [k, e] : services) {
    if (!e.deleted) items.push_back(objectJson(e));
  }
  return {{"apiVersion", "serving.kserve.io/v1beta1"}, {"kind", "InferenceServiceList"}, {"items", items}};
}

json StackImpl::runtimesJson(bool cluster, const std::string& ns) const {
  std::lock_guard lock(mu);
  json items = json::array();
  for (const auto& r : cluster ? cluster_runtimes : namespaced_runtimes) {
    if (!cluster && r.metadata.namespace_name != ns) continue;
    json doc = r.document;
    if (!cluster) doc["metadata"]["namespace"] = r.metadata.namespace_name;
    items.push_back(doc);
  }
  return {{"apiVersion", "serving.kserve.io/v1alpha1"},
          {"kind", cluster ? "ClusterServingRuntimeList" : "ServingRuntimeList"},
          {"items", items}};
}

json StackImpl::activatorStatsJson() const {
  json out = json::array();
  for (const auto& s : activator->stats()) {
    out.push_back({{"isvc", s.isvc},
                   {"revision", s.revision},
                   {"average_concurrent_requests", s.last_period.average_concurrency},
                   {"request_count", s.last_period.request_count},
                   {"concurrency", s.concurrency},
                   {"held", s.held},
                   {"activator_in_path", s.in_path}});
  }
  return {{"reporting_period_seconds", 1}, {"revisions", out}};
}

}  // namespace kh::refstack
