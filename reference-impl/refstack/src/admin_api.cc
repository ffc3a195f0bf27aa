// refstack's own admin routes, beside the Kubernetes API on the admin port (its fallback, behind
// the same bearer token): POST /apply (manifests, as `refstack apply` sends them), GET /events
// (the event log; ?watch=true streams it), GET /activator/stats, /metrics, /healthz,
// POST /shutdown.

#include "kh/common/json.h"
#include "kh/common/strings.h"
#include "kh/common/yaml_json.h"
#include "kh/kubeapi/errors.h"
#include "stack_impl.h"

namespace kh::refstack {
namespace {

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

std::string message(const absl::Status& st) { return std::string(common::toStd(st.message())); }

}  // namespace

void StackImpl::handleAsync(http::Request&& req, http::Responder responder) {
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
      writer->write(common::jsonText(json({{"type", "error"}, {"message", "too many watchers"}})) + "\n");
      writer->finish();
      return;
    }
    // The writer only queues (it never blocks), so it may run with the log locked.
    int64_t id = events.subscribe(
        [writer](const events::Event& e) { writer->write(common::jsonText(events::toJson(e)) + "\n"); }, since);
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
    res.body() = metricsText();
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
    for (const auto& e : events.after(since)) out += common::jsonText(events::toJson(e)) + "\n";
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
  jsonResponse(res, 404, kubeapi::statusBody(kubeapi::unknownPathError()));
}

absl::StatusOr<json> StackImpl::applyText(const std::string& text, const std::string& source) {
  auto docs = common::parseYamlDocuments(text, source);
  if (!docs.ok()) return docs.status();
  if (docs->empty()) return absl::InvalidArgumentError(common::strCat(source, ": no resources in the manifest"));
  struct Write {
    std::string kind;
    std::string ns;
    std::string name;
    json object;
  };
  std::vector<Write> writes;
  int index = 0;
  for (auto& doc : *docs) {
    ++index;
    std::string where = common::strCat(source, " document ", index);
    if (!doc.is_object()) return absl::InvalidArgumentError(common::strCat(where, ": not a mapping"));
    // nlohmann's value() throws on a field of another type ("name: 123" is a YAML integer).
    for (const char* field : {"kind", "apiVersion"}) {
      if (doc.contains(field) && !doc[field].is_string()) {
        return absl::InvalidArgumentError(common::strCat(where, ": ", field, " must be a string"));
      }
    }
    if (doc.contains("metadata") && !doc["metadata"].is_object()) {
      return absl::InvalidArgumentError(common::strCat(where, ": metadata must be a mapping"));
    }
    for (const char* field : {"name", "namespace"}) {
      if (doc.contains("metadata") && doc["metadata"].contains(field) && !doc["metadata"][field].is_string()) {
        return absl::InvalidArgumentError(common::strCat(where, ": metadata.", field, " must be a string"));
      }
    }
    std::string kind = doc.value("kind", "");
    const kubeapi::KindSpec* spec = store->findKind(kind);
    if (kind.empty() || spec == nullptr || !spec->client_writable || spec->kind != kind) {
      return absl::InvalidArgumentError(common::strCat(
          where, ": unsupported kind '", kind,
          "' (InferenceService, ServingRuntime, ClusterServingRuntime, InferenceGraph, Namespace)"));
    }
    if (doc.value("apiVersion", "") != spec->apiVersion()) {
      return absl::InvalidArgumentError(common::strCat(where, ": apiVersion must be ", spec->apiVersion(), " for ",
                                                       kind, ", got '", doc.value("apiVersion", ""), "'"));
    }
    const json md = doc.value("metadata", json::object());
    std::string name = md.is_object() ? md.value("name", "") : "";
    if (name.empty()) return absl::InvalidArgumentError(common::strCat(where, ": metadata.name is required"));
    std::string ns = spec->namespaced ? (md.is_object() ? md.value("namespace", "default") : "default") : "";
    writes.push_back({kind, ns, name, std::move(doc)});
  }
  // Everything is checked first (admission included, as a dry run): an invalid manifest changes
  // nothing. Namespaces the documents name are made, as a convenience of `refstack apply`.
  for (const auto& w : writes) {
    if (!w.ns.empty() && !store->get("Namespace", "", w.ns).ok()) {
      (void)store->upsert("Namespace", {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", w.ns}}}});
    }
  }
  for (int pass = 0; pass < 2; ++pass) {
    kubeapi::WriteOptions options;
    options.dry_run = pass == 0;
    for (const auto& w : writes) {
      // As `kubectl replace`, or create when absent; status is the controller's and stays.
      absl::Status st;
      for (int attempt = 0; attempt < 5; ++attempt) {
        auto existing = store->get(w.kind, w.ns, w.name);
        if (!existing.ok()) {
          st = store->create(w.kind, w.ns, w.object, options).status();
        } else {
          json object = w.object;
          object["metadata"]["resourceVersion"] = (**existing)["metadata"].value("resourceVersion", "");
          st = store->update(w.kind, w.ns, w.name, std::move(object), options).status();
        }
        if (st.code() != absl::StatusCode::kAborted && st.code() != absl::StatusCode::kAlreadyExists) break;
      }
      // As kubectl reports it: the source, then the API's message (which names the object).
      if (!st.ok()) return absl::Status(st.code(), common::strCat(source, ": ", message(st)));
    }
  }
  json applied = json::array();
  for (const auto& w : writes) {
    json a = {{"kind", w.kind}, {"name", w.name}};
    if (!w.ns.empty()) a["namespace"] = w.ns;
    applied.push_back(std::move(a));
  }
  return json{{"applied", applied}};
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
