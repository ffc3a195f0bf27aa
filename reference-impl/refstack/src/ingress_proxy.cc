// The HTTP ingress: picks a revision by Host and traffic split and a ready pod of it without
// taking a lock (the reconciler publishes immutable snapshots), then forwards asynchronously on
// the server worker's own keep-alive pool to that pod (no locks, no extra threads). Adds the forwarding
// headers an ingress and Knative set (X-Forwarded-*, X-Request-Id, Knative-Serving-*), keeps
// the original Host, and names the revision that served in the Kh-Revision response header.
// Requests with large or chunked bodies are not buffered: they are relayed piece by piece over a
// dedicated connection to the pod (kh::http::relayStreamed), the response likewise.

#include <algorithm>
#include <chrono>
#include <random>

#include "kh/common/strings.h"
#include "boost/asio/post.hpp"
#include "kh/http/stream_relay.h"
#include "kh/http/upstream_pool.h"
#include "stack_impl.h"

namespace kh::refstack {

namespace net = boost::asio;

const Endpoint* chooseEndpoint(const std::vector<Endpoint>& endpoints, int cc) {
  if (endpoints.empty()) return nullptr;
  thread_local std::mt19937_64 rng{std::random_device{}()};
  thread_local size_t round_robin = 0;
  auto load = [](const Endpoint& e) { return e.in_flight->load(std::memory_order_relaxed); };
  if (cc <= 0) {
    if (endpoints.size() == 1) return &endpoints[0];
    size_t a = rng() % endpoints.size();
    size_t b = rng() % (endpoints.size() - 1);
    if (b >= a) ++b;
    return load(endpoints[a]) <= load(endpoints[b]) ? &endpoints[a] : &endpoints[b];
  }
  if (cc <= 3) {
    for (const auto& e : endpoints) {
      if (load(e) < cc) return &e;
    }
    return &*std::min_element(endpoints.begin(), endpoints.end(),
                              [&](const Endpoint& x, const Endpoint& y) { return load(x) < load(y); });
  }
  for (size_t i = 0; i < endpoints.size(); ++i) {
    const Endpoint& e = endpoints[round_robin++ % endpoints.size()];
    if (load(e) < cc) return &e;
  }
  return &endpoints[round_robin++ % endpoints.size()];
}

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
  auto sc = snapshot.scaling.find(w->revision);
  if (sc != snapshot.scaling.end() && sc->second->activator_in_path) {
    d.endpoint = chooseEndpoint(eps->second, sc->second->settings.container_concurrency);
  } else {
    thread_local size_t round_robin = 0;
    d.endpoint = &eps->second[round_robin++ % eps->second.size()];
  }
  return d;
}

namespace {

// Forwarding headers as an ingress (Envoy) and Knative's activator path set them.
void setForwardingHeaders(boost::beast::http::fields& req, const std::string& host,
                          const RoutingSnapshot& snapshot, const Destination& d) {
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
  if (auto sc = snapshot.scaling.find(d.revision); sc != snapshot.scaling.end() && sc->second->activator_in_path) {
    req.set("K-Proxy-Request", "activator");  // queue-proxy counts it as proxied
  }
}

}  // namespace

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

  // One answered request in the ingress metrics: by isvc, revision and code, and its latency.
  void countAnswered(const Destination& d, int status, std::chrono::steady_clock::time_point start) {
    const auto& route = *d.route;
    stack.metrics.requestCounter(route.isvc, route.namespace_name, d.revision, status, "http").Increment();
    stack.metrics.latencyHistogram(route.isvc, route.namespace_name, "http")
        .Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }

  // The answer to a request no pod can take (unknown host, nothing ready), counted.
  http::Response routingError(const Destination& d) {
    http::Response res;
    jsonResponse(res, d.error_status, {{"error", d.error}});
    if (d.route) {
      stack.metrics.requestCounter(d.route->isvc, d.route->namespace_name, d.revision, d.error_status, "http")
          .Increment();
    }
    return res;
  }

  // Sends on the worker's pool for the chosen pod. A request that never left (the pod went away
  // between the routing snapshot and the connect) is tried once more on another ready pod.
  void forward(int worker, http::Request&& req, std::shared_ptr<const RoutingSnapshot> snapshot,
               Destination d, http::Responder responder, std::chrono::steady_clock::time_point start,
               int attempt, std::shared_ptr<RevisionScaling> cold = nullptr, ActivatorVisit visit = {}) {
    http::UpstreamPool* pool = poolFor(worker, d.endpoint->port);
    if (pool == nullptr) {
      http::Response res;
      jsonResponse(res, 502, {{"error", "cannot make a connection pool"}});
      return responder.send(std::move(res));
    }
    // Kept for a retry only when one could happen; the pool consumes the request it sends.
    std::optional<http::Request> copy;
    if (attempt == 0) copy = req;
    d.endpoint->in_flight->fetch_add(1, std::memory_order_relaxed);
    pool->send(std::move(req), start + stack.config.revision_timeout,
               [this, worker, copy = std::move(copy), snapshot = std::move(snapshot), d,
                responder = std::move(responder), start, attempt, cold = std::move(cold),
                visit = std::move(visit)](http::UpstreamResult&& result, bool sent) mutable {
                 d.endpoint->in_flight->fetch_sub(1, std::memory_order_relaxed);
                 if (cold) stack.recordColdStart(*cold);
                 if (!result.ok() && !sent && copy && attempt == 0) {
                   Destination again = pickDestination(*snapshot, sv((*copy)[boost::beast::http::field::host]),
                                                       sv(copy->target()));
                   if (again.error_status == 0 && again.endpoint->port != d.endpoint->port) {
                     return forward(worker, std::move(*copy), std::move(snapshot), std::move(again),
                                    std::move(responder), start, attempt + 1, nullptr, std::move(visit));
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
                 countAnswered(d, out.result_int(), start);
                 responder.send(std::move(out));
                 visit.end();
               });
  }

  // A streamed request: its own connection to the pod, the body relayed as it arrives. A pod
  // that cannot be reached before any byte left is replaced once by another ready pod.
  void relay(http::StreamedRequestPtr req, std::shared_ptr<const RoutingSnapshot> snapshot, Destination d,
             std::chrono::steady_clock::time_point start, int attempt, std::shared_ptr<RevisionScaling> cold,
             ActivatorVisit visit = {}) {
    http::StreamRelayOptions options;
    options.port = d.endpoint->port;
    options.deadline = start + stack.config.revision_timeout;
    // Shared with every snapshot naming the pod, so it outlives a snapshot swap.
    std::shared_ptr<std::atomic<int>> in_flight = d.endpoint->in_flight;
    in_flight->fetch_add(1, std::memory_order_relaxed);
    auto edit = [this, revision = d.revision, cold](http::ResponseHeader& header) {
      header.set("Kh-Revision", revision);
      if (cold) stack.recordColdStart(*cold);
    };
    http::relayStreamed(
        std::move(req), options, std::move(edit),
        [this, snapshot = std::move(snapshot), d, start, attempt, in_flight, cold,
         visit = std::move(visit)](http::StreamRelayResult&& result) mutable {
          in_flight->fetch_sub(1, std::memory_order_relaxed);
          if (result.request && !result.sent && attempt == 0 &&
              result.status.code() == absl::StatusCode::kUnavailable) {
            auto& header = result.request->header();
            Destination again = pickDestination(*snapshot, sv(header[boost::beast::http::field::host]),
                                                sv(header.target()));
            if (again.error_status == 0 && again.endpoint->port != d.endpoint->port) {
              header.set("Knative-Serving-Revision", again.revision);
              return relay(std::move(result.request), std::move(snapshot), std::move(again), start,
                           attempt + 1, std::move(cold), std::move(visit));
            }
          }
          if (cold) stack.recordColdStart(*cold);
          if (result.request) {
            http::Response out;
            jsonResponse(out, result.http_status,
                         {{"error", common::strCat("revision ", d.revision, ": ",
                                                   common::toStd(result.status.message()))}});
            out.set("Kh-Revision", d.revision);
            result.request->reply(std::move(out));
            result.request.reset();
          }
          countAnswered(d, result.http_status, start);
          visit.end();
        });
  }

  // The activator: requests for a revision with no ready pod wait here (bounded) while it
  // scales from zero, and go out on their own worker when the routes show a pod. A streamed
  // request waits with its body unread in the client's socket.
  struct Held {
    int worker;
    http::Request request;
    http::Responder responder;
    http::StreamedRequestPtr streamed;  // set instead of request/responder
    std::chrono::steady_clock::time_point start;
    common::MonotonicTime arrival;
    std::shared_ptr<RevisionScaling> scaling;
    bool cold_tracked;
    ActivatorVisit visit;  // counted in the activator's stats until answered
  };

  void release(const std::shared_ptr<const RoutingSnapshot>& snapshot, Held&& h) {
    h.scaling->activator_held.fetch_sub(1, std::memory_order_relaxed);
    const std::string& revision = h.scaling->revision;
    // A held streamed request does no I/O and is owned here alone: its header may be used.
    boost::beast::http::fields& fields = h.streamed ? static_cast<boost::beast::http::fields&>(h.streamed->header())
                                                    : static_cast<boost::beast::http::fields&>(h.request);
    std::string_view target = h.streamed ? sv(h.streamed->header().target()) : sv(h.request.target());
    Destination d = pickDestination(*snapshot, sv(fields[boost::beast::http::field::host]), target);
    auto eps = snapshot->endpoints.find(revision);
    if (d.route == nullptr || eps == snapshot->endpoints.end() || eps->second.empty()) {
      http::Response res;
      jsonResponse(res, 503, {{"error", common::strCat("revision ", revision, " went away while the request waited")}});
      if (h.cold_tracked) stack.abandonColdStart(*h.scaling);
      if (h.streamed) return h.streamed->reply(std::move(res));
      return h.responder.send(std::move(res));
    }
    d.revision = revision;
    d.error_status = 0;
    d.endpoint = chooseEndpoint(eps->second, h.scaling->settings.container_concurrency);
    fields.set("K-Proxy-Request", "activator");
    if (h.cold_tracked) stack.coldStartForwarded(*h.scaling);
    if (h.streamed) {
      auto executor = h.streamed->executor();
      net::post(executor, [this, h = std::make_shared<Held>(std::move(h)), snapshot, d]() mutable {
        relay(std::move(h->streamed), snapshot, d, h->start, 1, h->cold_tracked ? h->scaling : nullptr,
              std::move(h->visit));
      });
      return;
    }
    net::post(server->workerExecutor(h.worker),
              [this, h = std::make_shared<Held>(std::move(h)), snapshot, d]() mutable {
                forward(h->worker, std::move(h->request), snapshot, d, std::move(h->responder), h->start, 1,
                        h->cold_tracked ? h->scaling : nullptr, std::move(h->visit));
              });
  }

  StackImpl& stack;
  http::HttpServer* server = nullptr;
  std::vector<Worker> workers;
  std::mutex held_mu;
  std::unordered_map<std::string, std::deque<Held>> held;  // revision -> waiting requests
};

// While the activator is in the revision's path, a forwarded request counts in its stats.
ActivatorVisit IngressProxy::activatorVisitFor(const RoutingSnapshot& snapshot, const Destination& d) {
  auto sc = snapshot.scaling.find(d.revision);
  if (sc == snapshot.scaling.end() || !sc->second->activator_in_path) return {};
  return ActivatorVisit(sc->second, impl_->stack.time);
}

IngressProxy::IngressProxy(StackImpl& stack) : impl_(std::make_unique<Impl>(stack)) {}
IngressProxy::~IngressProxy() { stop(); }

void IngressProxy::attach(http::HttpServer& server) {
  impl_->server = &server;
  impl_->workers.resize(static_cast<size_t>(server.workerCount()));
}

// After the server's workers stopped: the pools may go.
void IngressProxy::stop() { impl_->workers.clear(); }

void IngressProxy::park(http::Request&& req, http::Responder responder, http::StreamedRequestPtr streamed,
                        std::shared_ptr<RevisionScaling> scaling, std::chrono::steady_clock::time_point start) {
  auto now = impl_->stack.time.monotonicTime();
  bool cold_tracked = false;
  {
    std::lock_guard lock(impl_->held_mu);
    auto& queue = impl_->held[scaling->revision];
    if (queue.size() >= impl_->stack.config.activator_queue_limit) {
      http::Response res;
      jsonResponse(res, 503, {{"error", common::strCat("activator queue for revision ", scaling->revision, " is full (",
                                                       impl_->stack.config.activator_queue_limit, " requests wait for pods)")}});
      if (streamed) return streamed->reply(std::move(res));
      return responder.send(std::move(res));
    }
    cold_tracked = impl_->stack.beginColdStart(*scaling, now);
    scaling->activator_held.fetch_add(1, std::memory_order_relaxed);
    int worker = streamed ? streamed->workerIndex() : responder.workerIndex();
    ActivatorVisit visit(scaling, impl_->stack.time);
    queue.push_back({worker, std::move(req), std::move(responder), std::move(streamed), start, now, scaling,
                     cold_tracked, std::move(visit)});
  }
  impl_->stack.poke(scaling->revision);
  // A pod may have become ready between the routing decision and the parking.
  onRoutes(impl_->stack.routing.load());
}

void IngressProxy::onRoutes(const std::shared_ptr<const RoutingSnapshot>& snapshot) {
  std::vector<Impl::Held> out;
  {
    std::lock_guard lock(impl_->held_mu);
    for (auto it = impl_->held.begin(); it != impl_->held.end();) {
      auto eps = snapshot->endpoints.find(it->first);
      if (eps != snapshot->endpoints.end() && !eps->second.empty()) {
        for (auto& h : it->second) out.push_back(std::move(h));
        it = impl_->held.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& h : out) impl_->release(snapshot, std::move(h));
}

void IngressProxy::expireHeld(common::MonotonicTime now) {
  std::vector<Impl::Held> expired;
  {
    std::lock_guard lock(impl_->held_mu);
    for (auto& [rev, queue] : impl_->held) {
      while (!queue.empty() && now - queue.front().arrival >= impl_->stack.config.revision_timeout) {
        expired.push_back(std::move(queue.front()));
        queue.pop_front();
      }
    }
  }
  for (auto& h : expired) {
    h.scaling->activator_held.fetch_sub(1, std::memory_order_relaxed);
    if (h.cold_tracked) impl_->stack.abandonColdStart(*h.scaling);
    http::Response res;
    jsonResponse(res, 504, {{"error", "activator request timeout"}});
    if (h.streamed) {
      h.streamed->reply(std::move(res));
    } else {
      h.responder.send(std::move(res));
    }
  }
}

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
  if (d.error_status == 503 && !d.revision.empty()) {
    auto sc = snapshot->scaling.find(d.revision);
    if (sc != snapshot->scaling.end()) return park(std::move(req), std::move(responder), nullptr, sc->second, start);
  }
  if (d.error_status != 0) return responder.send(impl_->routingError(d));
  setForwardingHeaders(req, host, *snapshot, d);
  ActivatorVisit visit = activatorVisitFor(*snapshot, d);
  int worker = responder.workerIndex();
  impl_->forward(worker, std::move(req), std::move(snapshot), std::move(d), std::move(responder), start, 0, nullptr,
                 std::move(visit));
}

void IngressProxy::handleStreamed(http::StreamedRequestPtr request) {
  auto start = std::chrono::steady_clock::now();
  auto& header = request->header();
  std::string host(header[boost::beast::http::field::host]);
  auto snapshot = impl_->stack.routing.load();
  Destination d = pickDestination(*snapshot, host, sv(header.target()));
  if (d.error_status == 503 && !d.revision.empty()) {
    auto sc = snapshot->scaling.find(d.revision);
    if (sc != snapshot->scaling.end()) return park({}, http::Responder(), std::move(request), sc->second, start);
  }
  if (d.error_status != 0) return request->reply(impl_->routingError(d));
  setForwardingHeaders(header, host, *snapshot, d);
  ActivatorVisit visit = activatorVisitFor(*snapshot, d);
  impl_->relay(std::move(request), std::move(snapshot), std::move(d), start, 0, nullptr, std::move(visit));
}

}  // namespace kh::refstack
