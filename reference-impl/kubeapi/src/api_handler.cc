#include "kh/kubeapi/api_handler.h"

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "absl/base/thread_annotations.h"
#include "kh/common/json.h"
#include "kh/common/strings.h"
#include "kh/common/yaml_json.h"
#include "kh/kubeapi/discovery.h"
#include "kh/kubeapi/errors.h"
#include "kh/kubeapi/table.h"
#include "protobuf.h"

namespace kh::kubeapi {
namespace {

namespace bhttp = boost::beast::http;
using common::strCat;
using common::toStd;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

std::string_view sv(boost::beast::string_view s) { return {s.data(), s.size()}; }

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percentDecode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hexValue(s[i + 1]) >= 0 && hexValue(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hexValue(s[i + 1]) * 16 + hexValue(s[i + 2])));
      i += 2;
    } else if (plus_is_space && s[i] == '+') {
      out.push_back(' ');
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::map<std::string, std::string> parseQuery(std::string_view query) {
  std::map<std::string, std::string> out;
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    size_t eq = pair.find('=');
    std::string key = percentDecode(pair.substr(0, eq), true);
    std::string value =
        eq == std::string_view::npos ? "" : percentDecode(pair.substr(eq + 1), true);
    if (!key.empty()) out.emplace(std::move(key), std::move(value));
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return out;
}

std::vector<std::string> splitPath(std::string_view path) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start < path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    if (slash > start) parts.push_back(percentDecode(path.substr(start, slash - start), false));
    start = slash + 1;
  }
  return parts;
}

// Go's strconv.ParseBool true values.
bool isTrue(std::string_view v) {
  return v == "1" || v == "t" || v == "T" || v == "true" || v == "TRUE" || v == "True";
}

bool constantTimeEquals(std::string_view a, std::string_view b) {
  size_t n = std::max(a.size(), b.size());
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < n; ++i) {
    unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

http::Response jsonResponse(int code, std::string body,
                            std::string_view content_type = "application/json") {
  http::Response res;
  res.result(static_cast<bhttp::status>(code));
  res.set(bhttp::field::content_type,
          boost::beast::string_view(content_type.data(), content_type.size()));
  res.body() = std::move(body);
  return res;
}

http::Response errorResponse(const absl::Status& status) {
  return jsonResponse(apiStatusOf(status).code, common::jsonText(statusBody(status)));
}

std::string param(const std::map<std::string, std::string>& query, const std::string& key) {
  auto it = query.find(key);
  return it == query.end() ? std::string() : it->second;
}

// Where a resource request points.
struct Target {
  size_t kind = 0;
  std::string ns;    // "" for cluster-scoped kinds and all-namespace collections
  std::string name;  // "" for the collection
  bool status = false;
};

// What a watch's sink needs; shared by the store's watcher and the session (never owns the
// handle, so the store's lock is never taken from a destructor run inside a sink).
struct SinkState {
  std::shared_ptr<http::StreamWriter> writer;
  const TablePrinter* printer = nullptr;  // set for Table-encoded watches
  TableOptions table;
  bool first = true;
  const common::TimeSource* time = nullptr;
  std::atomic<bool> failed{false};

  std::string render(const WatchEvent& e) {
    std::string type(eventTypeName(e.type));
    if (printer != nullptr && e.type != EventType::kBookmark) {
      TableOptions opts = table;
      opts.no_headers = !first;
      first = false;
      json t = printer->table(*e.object, e.resource_version, time->systemTime(), opts);
      return strCat("{\"type\":\"", type, "\",\"object\":", common::jsonText(t), "}\n");
    }
    return strCat("{\"type\":\"", type, "\",\"object\":", *e.object_json, "}\n");
  }

  bool write(std::string line) {
    if (failed.load(std::memory_order_relaxed)) return false;
    if (!writer->write(std::move(line))) {
      failed.store(true, std::memory_order_relaxed);
      return false;
    }
    return true;
  }
};

struct WatchSession {
  uint64_t id = 0;
  std::shared_ptr<SinkState> sink;
  WatchHandle handle;
  Clock::time_point deadline;
  Clock::time_point next_bookmark;
  bool bookmarks = false;
};

}  // namespace

struct ApiHandler::Impl {
  Impl(ObjectStore& s, ApiHandlerOptions o) : store(s), options(std::move(o)) {
    const auto& kinds = store.kinds();
    for (size_t i = 0; i < kinds.size(); ++i) {
      printers.push_back(std::make_unique<TablePrinter>(kinds[i]));
      by_path[strCat(kinds[i].group, "/", kinds[i].version, "/", kinds[i].plural)] = i;
    }
    version_body = common::jsonText(versionInfo(options.git_version));
    timer = std::thread([this] { timerLoop(); });
  }

  ~Impl() {
    {
      std::lock_guard lock(mu);
      stopping = true;
    }
    cv.notify_all();
    timer.join();
    closeAll();
  }

  ObjectStore& store;
  const ApiHandlerOptions options;
  std::vector<std::unique_ptr<TablePrinter>> printers;
  std::unordered_map<std::string, size_t> by_path;  // "<group>/<version>/<plural>" -> kind
  std::string version_body;

  mutable std::mutex mu;  // never held while calling the store
  std::condition_variable cv;
  std::map<uint64_t, std::shared_ptr<WatchSession>> sessions ABSL_GUARDED_BY(mu);
  uint64_t next_session ABSL_GUARDED_BY(mu) = 1;
  bool stopping ABSL_GUARDED_BY(mu) = false;
  std::thread timer;

  const KindSpec& spec(size_t i) const { return store.kinds()[i]; }

  // --- Watch sessions. ---

  void addSession(std::shared_ptr<WatchSession> session) {
    {
      std::lock_guard lock(mu);
      session->id = next_session++;
      sessions.emplace(session->id, std::move(session));
    }
    cv.notify_all();
  }

  static void end(WatchSession& s, bool final_bookmark) {
    if (final_bookmark && s.bookmarks) s.handle.bookmark();
    s.handle.cancel();
    s.sink->writer->finish();
  }

  void closeAll() {
    std::map<uint64_t, std::shared_ptr<WatchSession>> all;
    {
      std::lock_guard lock(mu);
      all.swap(sessions);
    }
    for (auto& [id, s] : all) end(*s, false);
  }

  void timerLoop() {
    std::unique_lock lock(mu);
    while (!stopping) {
      auto now = Clock::now();
      auto wake = now + std::chrono::seconds(1);  // sweeps dropped watches at least this often
      std::vector<std::shared_ptr<WatchSession>> expired, dropped, bookmark;
      for (auto it = sessions.begin(); it != sessions.end();) {
        WatchSession& s = *it->second;
        if (s.sink->failed.load() || s.sink->writer->closed()) {
          dropped.push_back(it->second);
          it = sessions.erase(it);
          continue;
        }
        if (now >= s.deadline) {
          expired.push_back(it->second);
          it = sessions.erase(it);
          continue;
        }
        if (s.bookmarks && now >= s.next_bookmark) {
          bookmark.push_back(it->second);
          s.next_bookmark = now + options.bookmark_interval;
        }
        wake = std::min(wake, s.deadline);
        if (s.bookmarks) wake = std::min(wake, s.next_bookmark);
        ++it;
      }
      if (!expired.empty() || !dropped.empty() || !bookmark.empty()) {
        lock.unlock();  // the store's lock may be taken below
        for (auto& s : expired) end(*s, true);
        for (auto& s : dropped) end(*s, false);
        for (auto& s : bookmark) s->handle.bookmark();
        expired.clear();
        dropped.clear();
        bookmark.clear();
        lock.lock();
        continue;
      }
      if (sessions.empty()) {
        cv.wait(lock);  // addSession() and the destructor notify
      } else {
        cv.wait_until(lock, wake);
      }
    }
  }

  // --- Routing. ---

  absl::StatusOr<Target> resolve(const std::vector<std::string>& seg) const {
    std::string group, version;
    size_t rest = 0;
    if (seg.size() >= 3 && seg[0] == "api") {
      version = seg[1];
      rest = 2;
    } else if (seg.size() >= 4 && seg[0] == "apis") {
      group = seg[1];
      version = seg[2];
      rest = 3;
    } else {
      return unknownPathError();
    }
    auto lookup = [&](const std::string& plural) -> const size_t* {
      auto it = by_path.find(strCat(group, "/", version, "/", plural));
      return it == by_path.end() ? nullptr : &it->second;
    };
    Target t;
    size_t n = seg.size() - rest;
    const size_t* kind = nullptr;
    size_t at = rest;
    if (n >= 3 && seg[rest] == "namespaces" && (kind = lookup(seg[rest + 2])) != nullptr &&
        spec(*kind).namespaced) {
      t.ns = seg[rest + 1];
      at = rest + 3;
    } else {
      kind = lookup(seg[rest]);
      if (kind == nullptr) return unknownPathError();
      at = rest + 1;
      if (spec(*kind).namespaced && at < seg.size()) return unknownPathError();
    }
    t.kind = *kind;
    if (at < seg.size()) t.name = seg[at++];
    if (at < seg.size()) {
      if (seg[at] != "status" || !spec(t.kind).status_subresource) return unknownPathError();
      t.status = true;
      ++at;
    }
    if (at < seg.size()) return unknownPathError();
    return t;
  }

  // The answer to everything but watches; nullopt when `request` is a watch.
  std::optional<http::Response> respond(const http::Request& req, std::string_view path,
                                        const std::map<std::string, std::string>& query) {
    auto method = req.method();
    std::string accept(sv(req[bhttp::field::accept]));
    std::vector<std::string> seg = splitPath(path);
    const auto& kinds = store.kinds();
    bool is_get = method == bhttp::verb::get;

    if (path == "/version" || path == "/version/") {
      if (!is_get) return errorResponse(methodNotAllowedError());
      return jsonResponse(200, version_body);
    }
    if (!seg.empty() && seg[0] == "openapi") {
      if (!is_get) return errorResponse(methodNotAllowedError());
      if (seg.size() == 2 && seg[1] == "v3") return jsonResponse(200, common::jsonText(openApiRoot(kinds)));
      if (seg.size() >= 3 && seg[1] == "v3") {
        std::string gv = seg[2];
        for (size_t i = 3; i < seg.size(); ++i) gv += "/" + seg[i];
        if (auto doc = openApiGroupVersion(kinds, gv)) return jsonResponse(200, common::jsonText(*doc));
      }
      return errorResponse(unknownPathError());
    }
    // Discovery.
    if (seg.size() == 1 && (seg[0] == "api" || seg[0] == "apis")) {
      if (!is_get) return errorResponse(methodNotAllowedError());
      bool core = seg[0] == "api";
      if (auto v = negotiateAggregatedDiscovery(accept)) {
        return jsonResponse(200, common::jsonText(aggregatedDiscovery(kinds, core, *v)),
                            aggregatedDiscoveryContentType(*v));
      }
      if (core) return jsonResponse(200, common::jsonText(legacyApiVersions(sv(req[bhttp::field::host]))));
      return jsonResponse(200, common::jsonText(legacyApiGroupList(kinds)));
    }
    if (seg.size() == 2 && seg[0] == "apis") {
      if (!is_get) return errorResponse(methodNotAllowedError());
      if (auto g = legacyApiGroup(kinds, seg[1])) return jsonResponse(200, common::jsonText(*g));
      return errorResponse(unknownPathError());
    }
    if ((seg.size() == 2 && seg[0] == "api") || (seg.size() == 3 && seg[0] == "apis")) {
      if (!is_get) return errorResponse(methodNotAllowedError());
      std::string group = seg[0] == "api" ? "" : seg[1];
      if (auto list = apiResourceList(kinds, group, seg.back())) {
        return jsonResponse(200, common::jsonText(*list));
      }
      return errorResponse(unknownPathError());
    }
    auto target = resolve(seg);
    if (!target.ok()) return errorResponse(target.status());
    return resource(req, *target, query, accept);
  }

  std::optional<http::Response> resource(const http::Request& req, const Target& t,
                                         const std::map<std::string, std::string>& query,
                                         const std::string& accept) {
    const KindSpec& k = spec(t.kind);
    const std::string resource = k.resource();
    bool dry_run = param(query, "dryRun") == "All";
    WriteOptions write_options{dry_run};
    if (req.method() != bhttp::verb::get && !k.client_writable) {
      return errorResponse(methodNotAllowedError());
    }
    switch (req.method()) {
      case bhttp::verb::get: {
        if (isTrue(param(query, "watch"))) return std::nullopt;
        if (t.name.empty()) return list(t, query, accept);
        auto object = store.get(resource, t.ns, t.name);
        if (!object.ok()) return errorResponse(object.status());
        if (auto table_version = negotiateTable(accept)) {
          TableOptions opts = tableOptions(*table_version, query);
          uint64_t rv = common::parseInt<uint64_t>(
                            (**object)["metadata"].value("resourceVersion", std::string("0")))
                            .value_or(0);
          return jsonResponse(
              200,
              common::jsonText(printers[t.kind]->table(**object, rv, store.timeSource().systemTime(), opts)));
        }
        return jsonResponse(200, common::jsonText(*(*object)));
      }
      case bhttp::verb::post: {
        if (!t.name.empty() || t.status) return errorResponse(methodNotAllowedError());
        if (k.namespaced && t.ns.empty()) return errorResponse(methodNotAllowedError());
        auto body = parseBody(req);
        if (!body.ok()) return errorResponse(body.status());
        auto created = store.create(resource, t.ns, std::move(*body), write_options);
        if (!created.ok()) return errorResponse(created.status());
        return jsonResponse(201, common::jsonText(*(*created)));
      }
      case bhttp::verb::put: {
        if (t.name.empty()) return errorResponse(methodNotAllowedError());
        auto body = parseBody(req);
        if (!body.ok()) return errorResponse(body.status());
        auto updated =
            t.status ? store.replaceStatus(resource, t.ns, t.name, std::move(*body), write_options)
                     : store.update(resource, t.ns, t.name, std::move(*body), write_options);
        if (!updated.ok()) return errorResponse(updated.status());
        return jsonResponse(200, common::jsonText(*(*updated)));
      }
      case bhttp::verb::patch: {
        if (t.name.empty()) return errorResponse(methodNotAllowedError());
        if (!k.client_writable) return errorResponse(methodNotAllowedError());
        auto type = patchTypeOf(sv(req[bhttp::field::content_type]));
        if (!type.ok()) return errorResponse(type.status());
        auto patched =
            store.patch(resource, t.ns, t.name, *type, req.body(), t.status, write_options);
        if (!patched.ok()) return errorResponse(patched.status());
        return jsonResponse(patched->created ? 201 : 200, common::jsonText(*patched->object));
      }
      case bhttp::verb::delete_: {
        if (t.status) return errorResponse(methodNotAllowedError());
        DeleteOptions opts;
        opts.dry_run = dry_run;
        if (!req.body().empty()) {
          auto parsed = common::parseJson(req.body());
          if (!parsed.ok() || !parsed->is_object()) {
            return errorResponse(
                badRequestError("the body of a delete must be DeleteOptions JSON"));
          }
          const json& body = *parsed;
          const json& pre = body.value("preconditions", json::object());
          if (pre.is_object()) {
            for (auto [field, out] : {std::pair{"uid", &opts.precondition_uid},
                                      std::pair{"resourceVersion", &opts.precondition_resource_version}}) {
              auto it = pre.find(field);
              if (it == pre.end() || it->is_null()) continue;
              if (!it->is_string()) {
                return errorResponse(badRequestError(strCat("preconditions.", field, " must be a string")));
              }
              *out = it->get<std::string>();
            }
          }
          const json& dr = body.value("dryRun", json::array());
          if (dr.is_array()) {
            for (const auto& v : dr) {
              if (v == "All") opts.dry_run = true;
            }
          }
        }
        if (t.name.empty()) {
          auto selector =
              Selector::parse(param(query, "labelSelector"), param(query, "fieldSelector"), k);
          if (!selector.ok()) return errorResponse(selector.status());
          auto deleted = store.deleteCollection(resource, t.ns, *selector, opts);
          if (!deleted.ok()) return errorResponse(deleted.status());
          json items = json::array();
          for (const auto& o : *deleted) items.push_back(*o);
          return jsonResponse(
              200,
              common::jsonText(json{{"kind", strCat(k.kind, "List")},
                                    {"apiVersion", k.apiVersion()},
                                    {"metadata", {{"resourceVersion", std::to_string(store.resourceVersion())}}},
                                    {"items", std::move(items)}}));
        }
        auto deleted = store.deleteObject(resource, t.ns, t.name, opts);
        if (!deleted.ok()) return errorResponse(deleted.status());
        if (deleted->finalizing) return jsonResponse(200, common::jsonText(*deleted->object));
        const json& meta = (*deleted->object)["metadata"];
        return jsonResponse(200, common::jsonText(successStatus({{"name", t.name},
                                                                 {"group", k.group},
                                                                 {"kind", k.plural},
                                                                 {"uid", meta.value("uid", std::string())}})));
      }
      default: return errorResponse(methodNotAllowedError());
    }
  }

  static TableOptions tableOptions(const std::string& version,
                                   const std::map<std::string, std::string>& query) {
    TableOptions opts;
    opts.api_version = strCat("meta.k8s.io/", version);
    std::string include = param(query, "includeObject");
    if (include == "None") opts.include_object = IncludeObject::kNone;
    if (include == "Object") opts.include_object = IncludeObject::kObject;
    return opts;
  }

  http::Response list(const Target& t, const std::map<std::string, std::string>& query,
                      const std::string& accept) {
    const KindSpec& k = spec(t.kind);
    auto selector =
        Selector::parse(param(query, "labelSelector"), param(query, "fieldSelector"), k);
    if (!selector.ok()) return errorResponse(selector.status());
    auto result = store.list(k.resource(), t.ns, *selector);
    if (!result.ok()) return errorResponse(result.status());
    if (auto table_version = negotiateTable(accept)) {
      return jsonResponse(
          200, common::jsonText(printers[t.kind]->table(result->items, result->resource_version,
                                                        store.timeSource().systemTime(),
                                                        tableOptions(*table_version, query))));
    }
    // Items are already serialized: the list is assembled as text.
    std::string body = strCat("{\"apiVersion\":\"", k.apiVersion(), "\",\"items\":[");
    size_t size = body.size() + 128;
    for (const auto& text : result->serialized) size += text->size() + 1;
    body.reserve(size);
    for (size_t i = 0; i < result->serialized.size(); ++i) {
      if (i > 0) body.push_back(',');
      body += *result->serialized[i];
    }
    body += strCat("],\"kind\":\"", k.kind, "List\",\"metadata\":{\"resourceVersion\":\"",
                   result->resource_version, "\"}}");
    return jsonResponse(200, std::move(body));
  }

  static absl::StatusOr<json> parseBody(const http::Request& req) {
    std::string_view type = sv(req[bhttp::field::content_type]);
    type = type.substr(0, type.find(';'));
    if (type == "application/vnd.kubernetes.protobuf") {
      return internal::decodeProtobufObject(req.body());
    }
    if (type != "application/json" && type != "application/yaml" && type != "application/x-yaml" &&
        !type.empty()) {
      return apiError(absl::StatusCode::kInvalidArgument, 415, "UnsupportedMediaType",
                      strCat("the body of the request was in an unknown format - accepted media "
                             "types include: application/json, application/yaml"));
    }
    if (type == "application/yaml" || type == "application/x-yaml") {
      auto docs = common::parseYamlDocuments(req.body(), "request body");
      if (!docs.ok()) return badRequestError(toStd(docs.status().message()));
      if (docs->size() != 1) return badRequestError("the request body must be one document");
      return std::move(docs->front());
    }
    auto body = common::parseJson(req.body());
    if (!body.ok()) return badRequestError(strCat("the request body is not valid JSON: ", body.status().message()));
    if (!body->is_object()) return badRequestError("the request body must be a JSON object");
    return body;
  }

  // --- Watches. ---

  void startWatch(const http::Request& req, std::string_view path,
                  const std::map<std::string, std::string>& query, http::Responder responder) {
    auto target = resolve(splitPath(path));
    if (!target.ok()) return responder.send(errorResponse(target.status()));
    const KindSpec& k = spec(target->kind);
    std::string field_selector = param(query, "fieldSelector");
    if (!target->name.empty()) {
      // GET .../<name>?watch=true watches that one object.
      field_selector = field_selector.empty()
                           ? strCat("metadata.name=", target->name)
                           : strCat(field_selector, ",metadata.name=", target->name);
    }
    auto selector = Selector::parse(param(query, "labelSelector"), field_selector, k);
    if (!selector.ok()) return responder.send(errorResponse(selector.status()));
    std::string rv = param(query, "resourceVersion");
    if (!rv.empty() && !common::parseInt<uint64_t>(rv)) {
      return responder.send(
          errorResponse(badRequestError(strCat("invalid resource version \"", rv, "\""))));
    }
    auto timeout = options.max_watch_timeout;
    if (std::string ts = param(query, "timeoutSeconds"); !ts.empty()) {
      auto seconds = common::parseInt<int64_t>(ts);
      if (!seconds || *seconds < 0) {
        return responder.send(errorResponse(badRequestError("invalid timeoutSeconds")));
      }
      if (*seconds > 0) {
        timeout = std::min<std::chrono::milliseconds>(timeout, std::chrono::seconds(*seconds));
      }
    }

    auto sink = std::make_shared<SinkState>();
    sink->time = &store.timeSource();
    if (auto table_version = negotiateTable(sv(req[bhttp::field::accept]))) {
      sink->printer = printers[target->kind].get();
      sink->table = tableOptions(*table_version, query);
    }
    http::Response head;
    head.result(bhttp::status::ok);
    head.set(bhttp::field::content_type, "application/json");
    head.set(bhttp::field::cache_control, "no-cache, private");
    sink->writer = responder.stream(std::move(head), options.watch_max_pending_bytes);

    auto handle = store.watch(k.resource(), target->ns, std::move(*selector), rv,
                              [sink](const WatchEvent& e) { return sink->write(sink->render(e)); });
    if (!handle.ok()) {
      json event = {{"type", "ERROR"}, {"object", statusBody(handle.status())}};
      sink->writer->write(common::jsonText(event) + "\n");
      sink->writer->finish();
      return;
    }
    auto session = std::make_shared<WatchSession>();
    session->sink = sink;
    session->handle = std::move(*handle);
    auto now = Clock::now();
    session->deadline = now + timeout;
    session->bookmarks = isTrue(param(query, "allowWatchBookmarks"));
    session->next_bookmark = now + options.bookmark_interval;
    addSession(std::move(session));
  }

  bool authorized(const http::RequestHeader& req) const {
    if (options.bearer_token.empty()) return true;
    std::string_view auth = sv(req[bhttp::field::authorization]);
    constexpr std::string_view kBearer = "Bearer ";
    if (auth.size() < kBearer.size() || auth.substr(0, kBearer.size()) != kBearer) return false;
    return constantTimeEquals(auth.substr(kBearer.size()), options.bearer_token);
  }
};

ApiHandler::ApiHandler(ObjectStore& store, ApiHandlerOptions options)
    : impl_(std::make_unique<Impl>(store, std::move(options))) {}

ApiHandler::~ApiHandler() = default;

bool ApiHandler::ownsPath(std::string_view path) {
  auto under = [&](std::string_view prefix) {
    return path == prefix ||
           (path.size() > prefix.size() && path.substr(0, prefix.size()) == prefix &&
            path[prefix.size()] == '/');
  };
  return under("/version") || under("/api") || under("/apis") || under("/openapi");
}

void ApiHandler::handle(http::Request& request, http::Response& response) {
  std::string_view target = sv(request.target());
  std::string_view path = target.substr(0, target.find('?'));
  if (!impl_->authorized(request)) {
    response = errorResponse(
        apiError(absl::StatusCode::kUnauthenticated, 401, "Unauthorized", "Unauthorized"));
    return;
  }
  if (!ownsPath(path)) {
    if (impl_->options.fallback != nullptr)
      return impl_->options.fallback->handle(request, response);
    response = errorResponse(unknownPathError());
    return;
  }
  auto query =
      parseQuery(target.find('?') == std::string_view::npos ? std::string_view()
                                                            : target.substr(target.find('?') + 1));
  auto answer = impl_->respond(request, path, query);
  unsigned version = request.version();
  bool keep_alive = request.keep_alive();
  response = answer ? std::move(*answer)
                    : errorResponse(badRequestError("watch needs an asynchronous HTTP server"));
  response.version(version);
  response.keep_alive(keep_alive);
}

void ApiHandler::handleAsync(http::Request&& request, http::Responder responder) {
  std::string_view target = sv(request.target());
  std::string_view path = target.substr(0, target.find('?'));
  if (!impl_->authorized(request)) {
    http::Response res = errorResponse(
        apiError(absl::StatusCode::kUnauthenticated, 401, "Unauthorized", "Unauthorized"));
    res.set(bhttp::field::www_authenticate, "Bearer");
    return responder.send(std::move(res));
  }
  if (!ownsPath(path)) {
    http::Handler* fallback = impl_->options.fallback;
    if (fallback == nullptr) return responder.send(errorResponse(unknownPathError()));
    if (fallback->isAsync()) return fallback->handleAsync(std::move(request), std::move(responder));
    http::Response res;
    res.version(request.version());
    res.keep_alive(request.keep_alive());
    fallback->handle(request, res);
    return responder.send(std::move(res));
  }
  auto query =
      parseQuery(target.find('?') == std::string_view::npos ? std::string_view()
                                                            : target.substr(target.find('?') + 1));
  auto answer = impl_->respond(request, path, query);
  if (answer) return responder.send(std::move(*answer));
  impl_->startWatch(request, path, query, std::move(responder));
}

bool ApiHandler::streamsBody(const http::RequestHeader& header) {
  std::string_view target = sv(header.target());
  if (ownsPath(target.substr(0, target.find('?')))) return false;
  if (!impl_->authorized(header)) return false;  // read whole, then answered 401
  return impl_->options.fallback != nullptr && impl_->options.fallback->streamsBody(header);
}

void ApiHandler::handleStreamed(http::StreamedRequestPtr request) {
  if (impl_->options.fallback != nullptr)
    impl_->options.fallback->handleStreamed(std::move(request));
}

void ApiHandler::closeWatches() { impl_->closeAll(); }

size_t ApiHandler::openWatches() const {
  std::lock_guard lock(impl_->mu);
  return impl_->sessions.size();
}

}  // namespace kh::kubeapi
