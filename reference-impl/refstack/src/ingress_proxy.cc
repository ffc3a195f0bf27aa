// The HTTP ingress: picks a revision by Host and traffic split and a ready pod of it without
// taking a lock (the reconciler publishes immutable snapshots), then forwards on a bounded pool
// of proxy threads with one keep-alive connection per pod per thread. Adds the forwarding
// headers an ingress and Knative set (X-Forwarded-*, X-Request-Id, Knative-Serving-*), keeps
// the original Host, and names the revision that served in the Kh-Revision response header.

#include <chrono>
#include <random>

#include "kh/common/strings.h"
#include "kh/http/client.h"
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
  // :explain goes to the explainer when the service has one (KServe routes it by path).
  if (path.find(":explain") != std::string_view::npos && route->component != "explainer") {
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
  struct Job {
    http::Request request;
    std::shared_ptr<const RoutingSnapshot> snapshot;  // keeps `destination` valid
    Destination destination;
    http::Responder responder;
    std::chrono::steady_clock::time_point start;
  };

  explicit Impl(StackImpl& s) : stack(s) {
    for (int i = 0; i < std::max(1, stack.config.proxy_threads); ++i) {
      threads.emplace_back([this] { loop(); });
    }
  }

  void loop() {
    std::map<uint16_t, std::unique_ptr<http::Client>> clients;  // keep-alive per pod
    while (true) {
      Job job;
      {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return stopping || !jobs.empty(); });
        if (stopping && jobs.empty()) return;
        job = std::move(jobs.front());
        jobs.pop_front();
      }
      const Endpoint& ep = *job.destination.endpoint;
      auto& client = clients[ep.port];
      if (!client) client = std::make_unique<http::Client>("127.0.0.1", ep.port, stack.config.revision_timeout);
      auto res = client->send(std::move(job.request));
      http::Response out;
      if (!res.ok()) {
        jsonResponse(out, res.status().code() == absl::StatusCode::kDeadlineExceeded ? 504 : 502,
                     {{"error", common::strCat("revision ", job.destination.revision, ": ",
                                               common::toStd(res.status().message()))}});
      } else {
        out = std::move(*res);
      }
      out.set("Kh-Revision", job.destination.revision);
      const auto& route = *job.destination.route;
      stack.metrics.requestCounter(route.isvc, route.namespace_name, job.destination.revision,
                                   out.result_int(), "http")
          .Increment();
      stack.metrics.latencyHistogram(route.isvc, route.namespace_name, "http")
          .Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - job.start).count());
      job.responder.send(std::move(out));
    }
  }

  StackImpl& stack;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Job> jobs;
  bool stopping = false;
  std::vector<std::thread> threads;
};

IngressProxy::IngressProxy(StackImpl& stack) : impl_(std::make_unique<Impl>(stack)) {}
IngressProxy::~IngressProxy() { stop(); }

void IngressProxy::stop() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  for (auto& t : impl_->threads) {
    if (t.joinable()) t.join();
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
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->jobs.size() >= impl_->stack.config.ingress_queue_limit) {
      jsonResponse(res, 503, {{"error", "ingress queue full"}});
      return responder.send(std::move(res));
    }
    impl_->jobs.push_back({std::move(req), std::move(snapshot), std::move(d), std::move(responder), start});
  }
  impl_->cv.notify_one();
}

}  // namespace kh::refstack
