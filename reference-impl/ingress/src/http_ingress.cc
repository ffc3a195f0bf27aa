#include "kh/ingress/http_ingress.h"

#include <cstdint>
#include <unordered_map>
#include <vector>

#include "boost/asio/post.hpp"
#include "kh/common/json.h"
#include "kh/common/strings.h"
#include "kh/http/stream_relay.h"
#include "kh/http/upstream_pool.h"
#include "nlohmann/json.hpp"

namespace kh::ingress {
namespace {

namespace net = boost::asio;
namespace bhttp = boost::beast::http;

std::string_view sv(boost::beast::string_view s) { return {s.data(), s.size()}; }
boost::beast::string_view bsv(std::string_view s) { return {s.data(), s.size()}; }

http::Response jsonError(int status, const std::string& message) {
  http::Response res;
  res.result(static_cast<bhttp::status>(status));
  res.set(bhttp::field::content_type, "application/json");
  res.body() = common::jsonText(nlohmann::json{{"error", message}});
  return res;
}

int httpStatusOf(activator::Rejection why) {
  switch (why) {
    case activator::Rejection::kTimeout: return 504;
    default: return 503;
  }
}

// What a request keeps alive while it uses views into it: the snapshot it was routed with, and
// the endpoint list a held request was released to.
struct Keep {
  RoutingSnapshotPtr snapshot;
  activator::EndpointListPtr endpoints;
};

}  // namespace

struct HttpIngress::Impl : std::enable_shared_from_this<Impl> {
  Impl(IngressDeps d, HttpIngressOptions o) : deps(std::move(d)), options(o) {}

  IngressDeps deps;
  HttpIngressOptions options;
  http::HttpServer* server = nullptr;
  std::atomic<size_t> round_robin{0};

  // Per server worker: one keep-alive pool per pod port, used only on that worker's thread.
  struct Worker {
    std::unordered_map<uint16_t, std::unique_ptr<http::UpstreamPool>> pools;
  };
  std::vector<Worker> workers;

  http::UpstreamPool* poolFor(int worker, uint16_t port) {
    auto& pool = workers[static_cast<size_t>(worker)].pools[port];
    if (!pool) {
      http::UpstreamPoolOptions o;
      o.port = port;
      auto created = http::UpstreamPool::create(server->workerExecutor(worker), o);
      if (!created.ok()) return nullptr;
      pool = std::move(*created);
    }
    return pool.get();
  }

  double secondsSince(common::MonotonicTime start) const {
    return std::chrono::duration<double>(deps.time->monotonicTime() - start).count();
  }

  // Forwarding headers as an ingress (Envoy) and Knative's activator path set them.
  void setForwardingHeaders(bhttp::fields& req, std::string_view host, const Destination& d, bool via_activator) {
    req.set("X-Forwarded-Host", bsv(host));
    req.set("X-Forwarded-Proto", "http");
    std::string_view xff = sv(req["X-Forwarded-For"]);
    req.set("X-Forwarded-For", xff.empty() ? std::string("127.0.0.1") : common::strCat(xff, ", 127.0.0.1"));
    if (req["X-Request-Id"].empty()) {
      // 32 hex digits, written directly: snprintf was a tenth of this function's cost.
      char id[32];
      for (int half = 0; half < 2; ++half) {
        uint64_t bits = deps.random->next();
        for (int i = 15; i >= 0; --i, bits >>= 4) id[half * 16 + i] = "0123456789abcdef"[bits & 0xf];
      }
      req.set("X-Request-Id", boost::beast::string_view(id, sizeof id));
    }
    req.set("Knative-Serving-Revision", bsv(d.revision));
    req.set("Knative-Serving-Namespace", d.route->namespace_name);
    if (via_activator) req.set("K-Proxy-Request", "activator");  // queue-proxy counts it as proxied
  }

  bool viaActivator(const Destination& d) const {
    return d.target != nullptr && d.target->activator && d.target->activator->inPath();
  }

  // The answer to a request no pod can take (unknown host, nothing ready), counted.
  http::Response routingError(const Destination& d) {
    if (d.route) deps.metrics->refused(*d.route, d.revision, d.error_status, "http");
    return jsonError(d.error_status, d.error);
  }

  // Sends on the worker's pool for the chosen pod. A request that never left (the pod went away
  // between the routing snapshot and the connect) is tried once more on another ready pod.
  void forward(int worker, http::Request&& req, Keep keep, Destination d, http::Responder responder,
               common::MonotonicTime start, int attempt, activator::ColdStartTracker cold,
               activator::Visit visit) {
    http::UpstreamPool* pool = poolFor(worker, d.endpoint->port);
    if (pool == nullptr) return responder.send(jsonError(502, "cannot make a connection pool"));
    std::shared_ptr<std::atomic<int>> in_flight = d.endpoint->in_flight;
    in_flight->fetch_add(1, std::memory_order_relaxed);
    // A request that never left comes back from the pool (`unsent`) for the retry.
    pool->send(std::move(req), start + options.request_timeout,
               [self = shared_from_this(), worker, keep = std::move(keep), d, in_flight,
                responder = std::move(responder), start, attempt, cold = std::move(cold),
                visit = std::move(visit)](http::UpstreamResult&& result, bool sent, http::Request* unsent) mutable {
                 in_flight->fetch_sub(1, std::memory_order_relaxed);
                 if (!result.ok() && !sent && unsent != nullptr && attempt == 0) {
                   Keep again_keep{self->deps.routing->current(), nullptr};
                   Destination again = self->pick(*again_keep.snapshot, *unsent);
                   if (again.error_status == 0 && again.endpoint->port != d.endpoint->port) {
                     unsent->set("Knative-Serving-Revision", bsv(again.revision));
                     return self->forward(worker, std::move(*unsent), std::move(again_keep), std::move(again),
                                          std::move(responder), start, attempt + 1, std::move(cold),
                                          std::move(visit));
                   }
                 }
                 cold.firstByte();
                 http::Response out;
                 if (!result.ok()) {
                   out = jsonError(result.status().code() == absl::StatusCode::kDeadlineExceeded ? 504 : 502,
                                   common::strCat("revision ", d.revision, ": ",
                                                  common::toStd(result.status().message())));
                 } else {
                   out = std::move(*result);
                   http::removeHopByHopHeaders(out.base());
                 }
                 out.set("Kh-Revision", bsv(d.revision));
                 self->deps.metrics->answered(*d.route, d.revision, out.result_int(), "http",
                                              self->secondsSince(start));
                 responder.send(std::move(out));
                 visit.end();
               });
  }

  // A streamed request: its own connection to the pod, the body relayed as it arrives. A pod
  // that cannot be reached before any byte left is replaced once by another ready pod.
  void relay(http::StreamedRequestPtr req, Keep keep, Destination d, common::MonotonicTime start, int attempt,
             activator::ColdStartTracker cold, activator::Visit visit) {
    http::StreamRelayOptions o;
    o.port = d.endpoint->port;
    o.deadline = start + options.request_timeout;
    // Shared with every snapshot naming the pod, so it outlives a snapshot swap.
    std::shared_ptr<std::atomic<int>> in_flight = d.endpoint->in_flight;
    in_flight->fetch_add(1, std::memory_order_relaxed);
    // The first response byte ends the cold start; the tracker is shared with the completion.
    auto tracker = std::make_shared<activator::ColdStartTracker>(std::move(cold));
    auto edit = [revision = std::string(d.revision), tracker](http::ResponseHeader& header) {
      header.set("Kh-Revision", revision);
      tracker->firstByte();
    };
    http::relayStreamed(
        std::move(req), o, std::move(edit),
        [self = shared_from_this(), keep = std::move(keep), d, start, attempt, in_flight, tracker,
         visit = std::move(visit)](http::StreamRelayResult&& result) mutable {
          in_flight->fetch_sub(1, std::memory_order_relaxed);
          if (result.request && !result.sent && attempt == 0 &&
              result.status.code() == absl::StatusCode::kUnavailable) {
            auto& header = result.request->header();
            Keep again_keep{self->deps.routing->current(), nullptr};
            Destination again = self->pickFor(*again_keep.snapshot, sv(header[bhttp::field::host]), sv(header.target()));
            if (again.error_status == 0 && again.endpoint->port != d.endpoint->port) {
              header.set("Knative-Serving-Revision", bsv(again.revision));
              return self->relay(std::move(result.request), std::move(again_keep), std::move(again), start,
                                 attempt + 1, std::move(*tracker), std::move(visit));
            }
          }
          tracker->firstByte();
          if (result.request) {
            http::Response out = jsonError(result.http_status,
                                           common::strCat("revision ", d.revision, ": ",
                                                          common::toStd(result.status.message())));
            out.set("Kh-Revision", bsv(d.revision));
            result.request->reply(std::move(out));
            result.request.reset();
          }
          self->deps.metrics->answered(*d.route, d.revision, result.http_status, "http", self->secondsSince(start));
          visit.end();
        });
  }

  Destination pickFor(const RoutingSnapshot& snapshot, std::string_view host, std::string_view target) {
    return pickDestination(snapshot, host, target, *deps.random, round_robin);
  }
  Destination pick(const RoutingSnapshot& snapshot, const http::Request& req) {
    return pickFor(snapshot, sv(req[bhttp::field::host]), sv(req.target()));
  }

  void hold(std::unique_ptr<activator::HeldRequest> held, const Destination& d) {
    deps.activator->hold(d.target->activator, std::move(held));
  }
};

namespace {

// A request the activator holds for a revision at zero pods: whole (request + responder) or
// streamed (its body still unread in the client's socket).
class HeldHttp final : public activator::HeldRequest {
 public:
  HeldHttp(std::shared_ptr<HttpIngress::Impl> impl, int worker, http::Request&& request, http::Responder responder,
           http::StreamedRequestPtr streamed, RoutingSnapshotPtr snapshot, Destination d, common::MonotonicTime start)
      : impl_(std::move(impl)),
        worker_(worker),
        request_(std::move(request)),
        responder_(std::move(responder)),
        streamed_(std::move(streamed)),
        snapshot_(std::move(snapshot)),
        d_(std::move(d)),
        start_(start) {}

  void release(activator::Release&& r) override {
    // A held request does no I/O and is owned here alone: its header may be edited.
    bhttp::fields& fields = streamed_ ? static_cast<bhttp::fields&>(streamed_->header())
                                      : static_cast<bhttp::fields&>(request_);
    std::string host(sv(fields[bhttp::field::host]));
    d_.endpoint = r.endpoint;
    d_.error_status = 0;
    d_.error.clear();
    impl_->setForwardingHeaders(fields, host, d_, true);
    // Handlers posted to an executor must be copyable here: the move-only parts ride in one job.
    struct Job {
      std::shared_ptr<HttpIngress::Impl> impl;
      int worker;
      http::Request request;
      http::Responder responder;
      http::StreamedRequestPtr streamed;
      Keep keep;
      Destination d;
      common::MonotonicTime start;
      activator::ColdStartTracker cold;
      activator::Visit visit;
    };
    auto job = std::make_shared<Job>(Job{impl_, worker_, std::move(request_), std::move(responder_),
                                         std::move(streamed_), Keep{std::move(snapshot_), std::move(r.endpoints)},
                                         d_, start_, std::move(r.cold_start), std::move(r.visit)});
    auto executor = job->streamed ? job->streamed->executor() : job->impl->server->workerExecutor(worker_);
    net::post(executor, [job] {
      if (job->streamed) {
        job->impl->relay(std::move(job->streamed), std::move(job->keep), std::move(job->d), job->start, 1,
                         std::move(job->cold), std::move(job->visit));
      } else {
        job->impl->forward(job->worker, std::move(job->request), std::move(job->keep), std::move(job->d),
                           std::move(job->responder), job->start, 1, std::move(job->cold), std::move(job->visit));
      }
    });
  }

  void reject(activator::Rejection why, const std::string& message) override {
    int status = httpStatusOf(why);
    if (d_.route) impl_->deps.metrics->refused(*d_.route, d_.revision, status, "http");
    http::Response res = jsonError(status, message);
    res.set("Kh-Revision", bsv(d_.revision));
    if (streamed_) {
      streamed_->reply(std::move(res));
      streamed_.reset();
    } else {
      responder_.send(std::move(res));
    }
  }

 private:
  std::shared_ptr<HttpIngress::Impl> impl_;
  int worker_;
  http::Request request_;
  http::Responder responder_;
  http::StreamedRequestPtr streamed_;
  RoutingSnapshotPtr snapshot_;
  Destination d_;
  common::MonotonicTime start_;
};

}  // namespace

HttpIngress::HttpIngress(IngressDeps deps, HttpIngressOptions options)
    : impl_(std::make_shared<Impl>(std::move(deps), options)) {}

HttpIngress::~HttpIngress() { stop(); }

void HttpIngress::attach(http::HttpServer& server) {
  impl_->server = &server;
  impl_->workers.resize(static_cast<size_t>(server.workerCount()));
}

void HttpIngress::stop() { impl_->workers.clear(); }

void HttpIngress::handleAsync(http::Request&& req, http::Responder responder) {
  auto start = impl_->deps.time->monotonicTime();
  auto snapshot = impl_->deps.routing->current();
  Destination d = impl_->pick(*snapshot, req);
  if (d.error_status == 404 && req.target() == "/metrics" && impl_->deps.metrics_text) {
    // The stack's metrics, for a Host that names no service (a scrape of 127.0.0.1:8080).
    http::Response res;
    res.result(200);
    res.set(bhttp::field::content_type, "text/plain; version=0.0.4");
    res.body() = impl_->deps.metrics_text();
    return responder.send(std::move(res));
  }
  if (d.error_status == 503 && d.target != nullptr && d.target->activator) {
    int worker = responder.workerIndex();
    return impl_->hold(std::make_unique<HeldHttp>(impl_, worker, std::move(req), std::move(responder), nullptr,
                                                  snapshot, d, start),
                       d);
  }
  if (d.error_status != 0) return responder.send(impl_->routingError(d));
  bool via_activator = impl_->viaActivator(d);
  std::string host(sv(req[bhttp::field::host]));
  impl_->setForwardingHeaders(req, host, d, via_activator);
  activator::Visit visit = via_activator ? d.target->activator->visit() : activator::Visit();
  int worker = responder.workerIndex();
  impl_->forward(worker, std::move(req), Keep{std::move(snapshot), nullptr}, std::move(d), std::move(responder), start,
                 0, {}, std::move(visit));
}

void HttpIngress::handleStreamed(http::StreamedRequestPtr request) {
  auto start = impl_->deps.time->monotonicTime();
  auto& header = request->header();
  std::string host(sv(header[bhttp::field::host]));
  auto snapshot = impl_->deps.routing->current();
  Destination d = impl_->pickFor(*snapshot, host, sv(header.target()));
  if (d.error_status == 503 && d.target != nullptr && d.target->activator) {
    return impl_->hold(std::make_unique<HeldHttp>(impl_, -1, http::Request(), http::Responder(), std::move(request),
                                                  snapshot, d, start),
                       d);
  }
  if (d.error_status != 0) return request->reply(impl_->routingError(d));
  bool via_activator = impl_->viaActivator(d);
  impl_->setForwardingHeaders(header, host, d, via_activator);
  activator::Visit visit = via_activator ? d.target->activator->visit() : activator::Visit();
  impl_->relay(std::move(request), Keep{std::move(snapshot), nullptr}, std::move(d), start, 0, {}, std::move(visit));
}

}  // namespace kh::ingress
