// The HTTP ingress: picks a revision by Host and traffic split and a ready pod of it without
// taking a lock (the reconciler publishes immutable snapshots), then forwards asynchronously on
// the server worker's own keep-alive pool to that pod (no locks, no extra threads). Adds the forwarding
// headers an ingress and Knative set (X-Forwarded-*, X-Request-Id, Knative-Serving-*), keeps
// the original Host, and names the revision that served in the Kh-Revision response header.

#include <chrono>
#include <random>

#include "kh/common/strings.h"
#include "kh/http/upstream_pool.h"
#include "stack_impl.h"

namespace kh::refstack {

Destination pickDestination(const RoutingSnapshot& snapshot, std::string_view host,
                            std::string_view path) {
  Destination d;
  const ingress::Route* route = snapshot.table.lookup(host);
  if (route == nullptr) {
    d.error_status = 404;
    d.error = common::strCat("no InferenceService serves host '", host, "'");
    return d;
  }
  // :explain on the service's own host goes to the explainer when it has one (KServe routes it
  // by path); a component host (the explainer's call to the predictor) is taken as named.
  std::string service_host = common::strCat(route->isvc, "-", route->namespace_name, ".");
  std::string local_host = common::strCat(route->isvc, ".", route->namespace_name, ".svc.");
  bool top_level = host.substr(0, service_host.size()) == service_host ||
                   host.substr(0, local_host.size()) == local_host;
  if (top_level && path.find(":explain") != std::string_view::npos && route->component != "explainer") {
    std::string explainer_host =
        common::strCat(route->isvc, "-explainer-", route->namespace_name, ".");
    for (const auto& h : snapshot.table.hosts()) {
      if (h.rfind(explainer_host, 0) == 0) {
        if (const ingress::Route* r = snapshot.table.lookup(h)) route = r;
        break;
      }
    }
  }
  d.route = route;
  thread_local std::mt19937_64 rng{std::random_device{}()};
  const auto* w = ingress::RouteTable::pick(*route, std::uniform_real_distribution<double>(0, 100)(rng));
  if (w == nullptr) {
    d.error_status = 503;
    d.error = common::strCat("no ready revision for host '", host, "'");
    return d;
  }
  d.revision = w->revision;
  auto eps = snapshot.endpoints.find(w->revision);
  if (eps == snapshot.endpoints.end() || eps->second.empty()) {
    d.error_status = 503;
    d.error = common::strCat("revision ", w->revision, " has no ready pod");
    return d;
  }
  thread_local size_t round_robin = 0;
  d.endpoint = &eps->second[round_robin++ % eps->second.size()];
  return d;
}

struct IngressProxy::Impl {
  explicit Impl(StackImpl& s) : stack(s) {}

  // Per server worker: one keep-alive pool per pod port, used only on that worker's thread.
  struct Worker {
    std::unordered_map<uint16_t, std::unique_ptr<http::UpstreamPool>> pools;
  };

  http::UpstreamPool* poolFor(int worker, uint16_t port) {
    auto& pool = workers[static_cast<size_t>(worker)].pools[port];
    if (!pool) {
      http::UpstreamPoolOptions options;
      options.port = port;
      auto created = http::UpstreamPool::create(server->workerExecutor(worker), options);
      if (!created.ok()) return nullptr;
      pool = std::move(*created);
    }
    return pool.get();
  }

  // Sends on the worker's pool for the chosen pod. A request that never left (the pod went away
  // between the routing snapshot and the connect) is tried once more on another ready pod.
  void forward(int worker, http::Request&& req, std::shared_ptr<const RoutingSnapshot> snapshot,
               Destination d, http::Responder responder, std::chrono::steady_clock::time_point start,
               int attempt) {
    http::UpstreamPool* pool = poolFor(worker, d.endpoint->port);
    if (pool == nullptr) {
      http::Response res;
      jsonResponse(res, 502, {{"error", "cannot make a connection pool"}});
      return responder.send(std::move(res));
    }
    // Kept for a retry only when one could happen; the pool consumes the request it sends.
    std::optional<http::Request> copy;
    if (attempt == 0) copy = req;
    pool->send(std::move(req), start + stack.config.revision_timeout,
               [this, worker, copy = std::move(copy), snapshot = std::move(snapshot), d,
                responder = std::move(responder), start, attempt](http::UpstreamResult&& result,
                                                                  bool sent) mutable {
                 if (!result.ok() && !sent && copy && attempt == 0) {
                   Destination again = pickDestination(*snapshot, sv((*copy)[boost::beast::http::field::host]),
                                                       sv(copy->target()));
                   if (again.error_status == 0 && again.endpoint->port != d.endpoint->port) {
                     return forward(worker, std::move(*copy), std::move(snapshot), std::move(again),
                                    std::move(responder), start, attempt + 1);
                   }
                 }
                 http::Response out;
                 if (!result.ok()) {
                   jsonResponse(out, result.status().code() == absl::StatusCode::kDeadlineExceeded ? 504 : 502,
                                {{"error", common::strCat("revision ", d.revision, ": ",
                                                          common::toStd(result.status().message()))}});
                 } else {
                   out = std::move(*result);
                   http::removeHopByHopHeaders(out.base());
                 }
                 out.set("Kh-Revision", d.revision);
                 const auto& route = *d.route;
                 stack.metrics.requestCounter(route.isvc, route.namespace_name, d.revision, out.result_int(), "http")
                     .Increment();
                 stack.metrics.latencyHistogram(route.isvc, route.namespace_name, "http")
                     .Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
                 responder.send(std::move(out));
               });
  }

  StackImpl& stack;
  http::HttpServer* server = nullptr;
  std::vector<Worker> workers;
};

IngressProxy::IngressProxy(StackImpl& stack) : impl_(std::make_unique<Impl>(stack)) {}
IngressProxy::~IngressProxy() { stop(); }

void IngressProxy::attach(http::HttpServer& server) {
  impl_->server = &server;
  impl_->workers.resize(static_cast<size_t>(server.workerCount()));
}

// After the server's workers stopped: the pools may go.
void IngressProxy::stop() { impl_->workers.clear(); }

void IngressProxy::handleAsync(http::Request&& req, http::Responder responder) {
  auto start = std::chrono::steady_clock::now();
  std::string host(req[boost::beast::http::field::host]);
  auto snapshot = impl_->stack.routing.load();
  Destination d = pickDestination(*snapshot, host, sv(req.target()));
  http::Response res;
  if (d.error_status == 404 && req.target() == "/metrics") {
    // The ingress's own metrics, for a Host that names no service (a scrape of 127.0.0.1:8080).
    res.result(200);
    res.set(boost::beast::http::field::content_type, "text/plain; version=0.0.4");
    res.body() = impl_->stack.metrics.text();
    return responder.send(std::move(res));
  }
  if (d.error_status != 0) {
    jsonResponse(res, d.error_status, {{"error", d.error}});
    if (d.route) {
      impl_->stack.metrics.requestCounter(d.route->isvc, d.route->namespace_name, d.revision,
                                          d.error_status, "http")
          .Increment();
    }
    return responder.send(std::move(res));
  }
  // Forwarding headers as an ingress (Envoy) and Knative's activator path set them.
  req.set("X-Forwarded-Host", host);
  req.set("X-Forwarded-Proto", "http");
  std::string_view xff = sv(req["X-Forwarded-For"]);
  req.set("X-Forwarded-For", xff.empty() ? std::string("127.0.0.1") : common::strCat(xff, ", 127.0.0.1"));
  if (req["X-Request-Id"].empty()) {
    thread_local std::mt19937_64 ids{std::random_device{}()};
    char id[40];
    std::snprintf(id, sizeof id, "%016lx%016lx", static_cast<unsigned long>(ids()),
                  static_cast<unsigned long>(ids()));
    req.set("X-Request-Id", id);
  }
  req.set("Knative-Serving-Revision", d.revision);
  req.set("Knative-Serving-Namespace", d.route->namespace_name);
  int worker = responder.workerIndex();
  impl_->forward(worker, std::move(req), std::move(snapshot), std::move(d), std::move(responder), start, 0);
}

}  // namespace kh::refstack
