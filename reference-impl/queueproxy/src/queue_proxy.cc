#include "kh/queueproxy/queue_proxy.h"
#include "kh/queueproxy/stats_scraper.h"

#include <algorithm>
#include <atomic>
#include <optional>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "boost/asio/executor_work_guard.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/steady_timer.hpp"
#include "kh/grpcproxy/proxy_call.h"
#include "kh/common/strings.h"
#include "kh/http/server.h"
#include "kh/http/stream_relay.h"
#include "kh/http/upstream_pool.h"
#include "kh/queueproxy/breaker.h"
#include "spdlog/spdlog.h"

namespace kh::queueproxy {
namespace {

namespace net = boost::asio;
namespace bhttp = boost::beast::http;
using Clock = std::chrono::steady_clock;

http::Response textResponse(unsigned status, std::string_view body) {
  http::Response response;
  response.result(status);
  response.set(bhttp::field::content_type, "text/plain; charset=utf-8");
  response.body() = std::string(body);
  return response;
}

int64_t toNanos(common::MonotonicTime t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

// One proxied request while it waits for a breaker slot and the user container. Touched only on
// the worker that received it (breaker grants are posted there).
struct ProxiedRequest {
  http::Request request;
  http::Responder responder;
  // A large or chunked body is relayed as a stream instead (request/responder unused); owned
  // here except while the relay runs.
  http::StreamedRequestPtr streamed;
  bool proxied = false;  // sent by the activator
  int worker = 0;
  Clock::time_point deadline;
  uint64_t ticket = 0;
  std::optional<net::steady_timer> queue_timer;
  bool granted = false;
  bool answered = false;
};
using ProxiedRequestPtr = std::shared_ptr<ProxiedRequest>;

}  // namespace

struct QueueProxy::Impl {
  // Routes the traffic port's requests into Impl.
  class TrafficHandler final : public http::Handler {
   public:
    explicit TrafficHandler(Impl& impl) : impl_(impl) {}
    void handle(http::Request&, http::Response&) override {}
    bool isAsync() const override { return true; }
    void handleAsync(http::Request&& request, http::Responder responder) override {
      impl_.onTraffic(std::move(request), std::move(responder));
    }
    // Large and chunked bodies pass through in bounded pieces, as the ingress relays them.
    bool streamsBody(const http::RequestHeader&) override { return true; }
    void handleStreamed(http::StreamedRequestPtr request) override { impl_.onStreamedTraffic(std::move(request)); }

   private:
    Impl& impl_;
  };

  class AdminHandler final : public http::Handler {
   public:
    explicit AdminHandler(Impl& impl) : impl_(impl) {}
    void handle(http::Request&, http::Response&) override {}
    bool isAsync() const override { return true; }
    void handleAsync(http::Request&& request, http::Responder responder) override {
      impl_.onAdmin(request, std::move(responder));
    }

   private:
    Impl& impl_;
  };

  Impl(const QueueProxyOptions& opts, const common::TimeSource& time_source)
      : options(opts),
        time(time_source),
        started(time_source.monotonicTime()),
        stats(started, opts.reporting_period),
        last_arrival_ns(toNanos(started)),
        traffic_handler(*this),
        admin_handler(*this) {
    if (options.container_concurrency > 0) {
      breaker.emplace(10 * options.container_concurrency, options.container_concurrency);
    }
  }

  // ---- traffic ----

  void onTraffic(http::Request&& request, http::Responder responder) {
    int worker = responder.workerIndex();
    if (worker < 0 || worker >= static_cast<int>(pools.size())) {
      return responder.send(textResponse(500, "request arrived on an unknown worker"));
    }
    // Probes bypass the breaker and the stats.
    if (auto probe = request["K-Network-Probe"]; !probe.empty()) {
      return onNetworkProbe(std::string_view(probe.data(), probe.size()), worker,
                            std::move(responder));
    }
    if (request[bhttp::field::user_agent].starts_with("kube-probe/")) {
      return responder.send(readiness());
    }
    auto pending = std::make_shared<ProxiedRequest>();
    pending->proxied = request["K-Proxy-Request"] == "activator";
    pending->request = std::move(request);
    pending->responder = std::move(responder);
    pending->worker = worker;
    admit(pending);
  }

  void onStreamedTraffic(http::StreamedRequestPtr request) {
    auto pending = std::make_shared<ProxiedRequest>();
    pending->proxied = request->header()["K-Proxy-Request"] == "activator";
    pending->worker = request->workerIndex();
    pending->streamed = std::move(request);
    admit(pending);
  }

  // Stats, then the breaker: forward now, queue, or refuse.
  void admit(const ProxiedRequestPtr& pending) {
    int worker = pending->worker;
    common::MonotonicTime now = time.monotonicTime();
    last_arrival_ns.store(toNanos(now), std::memory_order_relaxed);
    pending->deadline = Clock::now() + options.revision_timeout;
    stats.requestIn(now, pending->proxied);
    if (!breaker) return forward(pending);

    net::any_io_executor executor = http_server->workerExecutor(worker);
    auto admission = breaker->enter(
        [this, pending, executor] {
          // Runs on whichever worker released the slot: continue on the request's own worker.
          net::post(executor, [this, pending] { onGranted(pending); });
        },
        &pending->ticket);
    switch (admission) {
      case Breaker::Admission::kAcquired:
        return forward(pending);
      case Breaker::Admission::kRejected:
        return answer(pending, textResponse(503, "pending request queue full"));
      case Breaker::Admission::kQueued:
        pending->queue_timer.emplace(executor);
        pending->queue_timer->expires_at(pending->deadline);
        pending->queue_timer->async_wait([this, pending](boost::system::error_code ec) {
          if (ec || pending->granted) return;
          // Still queued at the deadline. If cancel() loses the race the grant is on its way and
          // onGranted() sees the deadline instead.
          if (breaker->cancel(pending->ticket)) {
            answer(pending, textResponse(504, "request timeout"));
          }
        });
        return;
    }
  }

  void onGranted(const ProxiedRequestPtr& pending) {
    pending->granted = true;
    if (pending->queue_timer) pending->queue_timer->cancel();
    if (Clock::now() >= pending->deadline) {
      breaker->release();
      return answer(pending, textResponse(504, "request timeout"));
    }
    forward(pending);
  }

  void forward(const ProxiedRequestPtr& pending) {
    if (pending->streamed) return relay(pending);
    http::Request& request = pending->request;
    // What Knative's header-pruning reverse proxy drops: per-hop headers and the revision
    // routing headers the activator set.
    http::removeHopByHopHeaders(request.base());
    request.erase("Knative-Serving-Revision");
    request.erase("Knative-Serving-Namespace");
    pools[static_cast<size_t>(pending->worker)]->send(
        std::move(request), pending->deadline,
        [this, pending](http::UpstreamResult&& result, bool /*bytes_were_sent*/) {
          if (breaker) breaker->release();
          if (result.ok()) {
            http::Response response = std::move(*result);
            http::removeHopByHopHeaders(response.base());
            return answer(pending, std::move(response));
          }
          if (result.status().code() == absl::StatusCode::kDeadlineExceeded) {
            return answer(pending, textResponse(504, "request timeout"));
          }
          answer(pending, textResponse(502, common::strCat("error reaching the user container: ",
                                                           result.status().message())));
        });
  }

  void relay(const ProxiedRequestPtr& pending) {
    auto& header = pending->streamed->header();
    header.erase("Knative-Serving-Revision");
    header.erase("Knative-Serving-Namespace");
    http::StreamRelayOptions relay_options;
    relay_options.host = options.user_host;
    relay_options.port = options.user_port;
    relay_options.deadline = pending->deadline;
    http::relayStreamed(std::move(pending->streamed), relay_options, {},
                        [this, pending](http::StreamRelayResult&& result) {
                          if (breaker) breaker->release();
                          if (result.request) {
                            // Nothing reached the client yet: it gets the error in our words.
                            pending->streamed = std::move(result.request);
                            if (result.http_status == 504) return answer(pending, textResponse(504, "request timeout"));
                            return answer(pending, textResponse(502, common::strCat("error reaching the user container: ",
                                                                                    result.status.message())));
                          }
                          answered(pending);  // the user container's response was relayed
                        });
  }

  // Counts the request out once, however it ended.
  bool answered(const ProxiedRequestPtr& pending) {
    if (pending->answered) return false;
    pending->answered = true;
    stats.requestOut(time.monotonicTime(), pending->proxied);
    return true;
  }

  void answer(const ProxiedRequestPtr& pending, http::Response&& response) {
    if (!answered(pending)) return;
    if (pending->streamed) {
      pending->streamed->reply(std::move(response));
      pending->streamed.reset();  // sends it
      return;
    }
    pending->responder.send(std::move(response));
  }

  // ---- gRPC traffic ----

  struct GrpcWait;

  // One gRPC call (a stream holds its slot until it ends): the same breaker, timeout and stats as
  // an HTTP request.
  class GrpcCall final : public grpcproxy::ProxyCall {
   public:
    GrpcCall(Impl& impl, grpc::GenericCallbackServerContext* ctx) : ProxyCall(ctx), impl_(impl) {}
    void onRequest() override { impl_.onGrpcCall(this); }
    void onUpstreamDone(const grpc::Status&) override {
      if (holds_slot) impl_.breaker->release();
      holds_slot = false;
    }
    void onComplete(const grpc::Status&) override {
      // A call that ended before its first message was never counted in.
      if (counted) impl_.stats.requestOut(impl_.time.monotonicTime(), proxied);
    }
    // A call waiting for a breaker slot whose client gave up leaves the queue at once.
    void onCancel() override {
      if (wait) impl_.cancelQueuedGrpc(this, wait);
    }
    using ProxyCall::clientMetadata;
    using ProxyCall::finish;
    using ProxyCall::forward;

    bool proxied = false;
    bool counted = false;
    bool holds_slot = false;
    Clock::time_point deadline;
    std::shared_ptr<GrpcWait> wait;  // set (before any cancel can matter) while it may queue

   private:
    Impl& impl_;
  };

  class GrpcTraffic final : public grpc::CallbackGenericService {
   public:
    explicit GrpcTraffic(Impl& impl) : impl_(impl) {}
    grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* ctx) override {
      return new GrpcCall(impl_, ctx);
    }

   private:
    Impl& impl_;
  };

  // A call waiting for a breaker slot; touched only on the gRPC timer thread.
  struct GrpcWait {
    uint64_t ticket = 0;
    bool granted = false;
    std::optional<net::steady_timer> timer;
  };

  void onGrpcCall(GrpcCall* call) {
    common::MonotonicTime now = time.monotonicTime();
    last_arrival_ns.store(toNanos(now), std::memory_order_relaxed);
    call->proxied = call->clientMetadata("k-proxy-request") == "activator";
    call->deadline = Clock::now() + options.revision_timeout;
    stats.requestIn(now, call->proxied);
    call->counted = true;
    if (!breaker) return forwardGrpc(call);
    auto wait = std::make_shared<GrpcWait>();
    call->wait = wait;
    auto executor = grpc_io.get_executor();
    auto admission = breaker->enter(
        [this, call, wait, executor] { net::post(executor, [this, call, wait] { onGrpcGranted(call, wait); }); },
        &wait->ticket);
    switch (admission) {
      case Breaker::Admission::kAcquired:
        call->holds_slot = true;
        return forwardGrpc(call);
      case Breaker::Admission::kRejected:
        return call->finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "pending request queue full"));
      case Breaker::Admission::kQueued:
        // The timer lives on the gRPC timer thread, like the grant, so the two never race.
        net::post(executor, [this, call, wait] {
          if (wait->granted) return;
          wait->timer.emplace(grpc_io);
          wait->timer->expires_at(call->deadline);
          wait->timer->async_wait([this, call, wait](boost::system::error_code ec) {
            if (ec || wait->granted) return;
            if (breaker->cancel(wait->ticket)) {
              call->finish(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "request timeout"));
            }
          });
        });
        return;
    }
  }

  void onGrpcGranted(GrpcCall* call, const std::shared_ptr<GrpcWait>& wait) {
    if (wait->granted) return;  // cancelled meanwhile: the call is gone
    wait->granted = true;
    if (wait->timer) wait->timer->cancel();
    call->holds_slot = true;
    if (Clock::now() >= call->deadline) {
      call->holds_slot = false;
      breaker->release();
      return call->finish(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "request timeout"));
    }
    forwardGrpc(call);
  }

  // On the gRPC timer thread, like grants and timeouts: the call is touched only while it is
  // certainly still queued (the breaker gave its ticket back).
  void cancelQueuedGrpc(GrpcCall* call, std::shared_ptr<GrpcWait> wait) {
    net::post(grpc_io, [this, call, wait] {
      if (wait->granted) return;
      if (!breaker->cancel(wait->ticket)) return;  // granted (its grant is on the way) or timed out
      wait->granted = true;  // settled: the timer and any late grant leave it alone
      if (wait->timer) wait->timer->cancel();
      call->finish(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled while queued"));
    });
  }

  void forwardGrpc(GrpcCall* call) {
    auto remaining = call->deadline - Clock::now();
    call->forward(grpc_channels.get(options.user_host, options.user_grpc_port),
                  std::chrono::system_clock::now() +
                      std::chrono::duration_cast<std::chrono::system_clock::duration>(remaining),
                  {}, {"k-proxy-request", "knative-serving-revision", "knative-serving-namespace"});
  }

  absl::Status startGrpc() {
    grpc_traffic = std::make_unique<GrpcTraffic>(*this);
    grpc::ServerBuilder builder;
    // As the model server: a port already taken must fail, not be shared.
    builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
    builder.AddListeningPort(common::strCat(options.host, ":", options.grpc_port), grpc::InsecureServerCredentials(),
                             &grpc_port);
    builder.SetMaxReceiveMessageSize(-1);  // the user container enforces its own limit
    builder.SetMaxSendMessageSize(-1);
    builder.RegisterCallbackGenericService(grpc_traffic.get());
    grpc_server = builder.BuildAndStart();
    if (!grpc_server || grpc_port == 0) {
      return absl::UnavailableError(common::strCat("cannot listen for gRPC on ", options.host, ":", options.grpc_port));
    }
    grpc_io_thread = std::thread([this] { grpc_io.run(); });
    return absl::OkStatus();
  }

  // Calls in flight finish (their upstream deadline bounds them) or are cancelled at `deadline`.
  void stopGrpc(std::chrono::system_clock::time_point deadline) {
    if (grpc_server) {
      grpc_server->Shutdown(deadline);
      grpc_server->Wait();
    }
    grpc_work.reset();
    if (grpc_io_thread.joinable()) grpc_io_thread.join();
  }

  // ---- probes ----

  // The activator's probe (K-Network-Probe: queue): 200 "queue" only while the user container
  // answers its readiness path, checked now on this worker's pool.
  void onNetworkProbe(std::string_view value, int worker, http::Responder responder) {
    if (value != "queue") {
      return responder.send(
          textResponse(400, common::strCat("unexpected probe header value: ", value)));
    }
    if (draining.load()) return responder.send(textResponse(503, "shutting down"));
    if (!user_ready.load()) return responder.send(textResponse(503, "user container not ready"));
    pools[static_cast<size_t>(worker)]->send(
        readinessRequest(), options.readiness_probe_timeout,
        [this, responder = std::move(responder)](http::UpstreamResult&& result, bool) mutable {
          if (result.ok() && result->result_int() == 200) {
            return responder.send(textResponse(200, "queue"));
          }
          if (user_ready.exchange(false)) {
            spdlog::warn("user container not ready: {}",
                         result.ok() ? common::strCat("status ", result->result_int())
                                     : std::string(common::toStd(result.status().message())));
            startProber();
          }
          responder.send(textResponse(503, "user container not ready"));
        });
  }

  // Kubelet-style readiness: the cached state, no round trip.
  http::Response readiness() const {
    if (draining.load()) return textResponse(503, "shutting down");
    if (!user_ready.load()) return textResponse(503, "not ready");
    return textResponse(200, "ready");
  }

  http::Request readinessRequest() const {
    http::Request request(bhttp::verb::get, options.user_readiness_path, 11);
    request.set(bhttp::field::user_agent, "Knative-Queue-Proxy-Probe");
    return request;
  }

  // Aggressive readiness probing on worker 0 until the first success (then on demand).
  void startProber() {
    net::post(http_server->workerExecutor(0), [this] {
      if (prober_running || prober_stopped) return;
      prober_running = true;
      probeUserOnce();
    });
  }

  void probeUserOnce() {
    if (prober_stopped) {
      prober_running = false;
      return;
    }
    pools[0]->send(readinessRequest(), options.readiness_probe_timeout,
                   [this](http::UpstreamResult&& result, bool) {
                     if (result.ok() && result->result_int() == 200) {
                       prober_running = false;
                       if (!user_ready.exchange(true)) spdlog::info("user container ready");
                       return;
                     }
                     if (prober_stopped) {
                       prober_running = false;
                       return;
                     }
                     probe_timer->expires_after(options.readiness_retry_interval);
                     probe_timer->async_wait([this](boost::system::error_code ec) {
                       if (ec) {
                         prober_running = false;
                         return;
                       }
                       probeUserOnce();
                     });
                   });
  }

  void stopProber() {
    net::post(http_server->workerExecutor(0), [this] {
      prober_stopped = true;
      probe_timer->cancel();
    });
  }

  // ---- admin ----

  void onAdmin(const http::Request& request, http::Responder responder) {
    std::string_view target(request.target().data(), request.target().size());
    if (request.method() != bhttp::verb::get) {
      return responder.send(textResponse(405, "method not allowed"));
    }
    if (target == "/stats") {
      http::Response response = textResponse(200, statsJson());
      response.set(bhttp::field::content_type, "application/json");
      return responder.send(std::move(response));
    }
    if (target == "/ready") return responder.send(readiness());
    if (target == "/wait-for-drain") {
      {
        absl::MutexLock lock(&drain_mu);
        if (!quiet_period_over) {
          drain_waiters.push_back(std::move(responder));
          return;
        }
      }
      return responder.send(textResponse(200, "drained"));  // written with no lock held
    }
    responder.send(textResponse(404, "not found"));
  }

  std::string statsJson() {
    common::MonotonicTime now = time.monotonicTime();
    return podStatJson({options.pod_name, stats.lastReport(now), std::chrono::duration<double>(now - started).count()});
  }

  // ---- lifecycle ----

  void shutdown() {
    if (draining.exchange(true)) return;
    spdlog::info("draining: probes fail; waiting for {} ms without requests",
                 options.drain_quiet_period.count());
    // Knative's Drainer: every request arriving meanwhile restarts the quiet period.
    common::MonotonicTime begun = time.monotonicTime();
    for (;;) {
      common::MonotonicTime last{std::chrono::nanoseconds(last_arrival_ns.load())};
      common::MonotonicTime quiet_until = std::max(begun, last) + options.drain_quiet_period;
      common::MonotonicTime now = time.monotonicTime();
      if (now >= quiet_until) break;
      std::this_thread::sleep_for(quiet_until - now);
    }
    std::vector<http::Responder> waiters;
    {
      absl::MutexLock lock(&drain_mu);
      quiet_period_over = true;
      waiters.swap(drain_waiters);
    }
    for (auto& w : waiters) w.send(textResponse(200, "drained"));
    spdlog::info("quiet period over: finishing {} in-flight requests", stats.concurrency());
    stopProber();
    // Requests in flight end by the revision timeout at the latest; the margin covers writing.
    std::thread grpc_drain(
        [this] { stopGrpc(std::chrono::system_clock::now() + options.revision_timeout + std::chrono::seconds(1)); });
    http_server->drain(options.revision_timeout + std::chrono::seconds(1));
    grpc_drain.join();
    pools.clear();  // the workers have stopped: nothing runs on the pools' executors
    probe_timer.reset();
    admin_server->drain(std::chrono::seconds(1));
    stopped = true;
  }

  void stopNow() {
    draining = true;
    stopGrpc(std::chrono::system_clock::now());
    if (http_server) http_server->drain(std::chrono::milliseconds(0));
    pools.clear();
    probe_timer.reset();
    if (admin_server) admin_server->drain(std::chrono::milliseconds(0));
    stopped = true;
  }

  const QueueProxyOptions options;
  const common::TimeSource& time;
  const common::MonotonicTime started;
  RequestStats stats;
  std::optional<Breaker> breaker;
  std::atomic<bool> user_ready{false};
  std::atomic<bool> draining{false};
  std::atomic<int64_t> last_arrival_ns;
  bool stopped = false;
  // Declared before what runs on their workers, so that those go first.
  TrafficHandler traffic_handler;
  AdminHandler admin_handler;
  std::unique_ptr<http::HttpServer> http_server;
  std::unique_ptr<http::HttpServer> admin_server;
  // One pool per traffic worker, index = Responder::workerIndex(); used only on that worker.
  std::vector<std::unique_ptr<http::UpstreamPool>> pools;
  // Readiness prober state, touched only on worker 0.
  std::optional<net::steady_timer> probe_timer;
  bool prober_running = false;
  bool prober_stopped = false;
  // gRPC (only with a user gRPC port): the server, its channel to the user container, and one
  // thread for breaker grants and queue timeouts, which outlives the server.
  grpcproxy::ChannelCache grpc_channels;
  std::unique_ptr<GrpcTraffic> grpc_traffic;
  std::unique_ptr<grpc::Server> grpc_server;
  int grpc_port = 0;
  net::io_context grpc_io{1};
  std::optional<net::executor_work_guard<net::io_context::executor_type>> grpc_work{grpc_io.get_executor()};
  std::thread grpc_io_thread;
  absl::Mutex drain_mu;
  bool quiet_period_over ABSL_GUARDED_BY(drain_mu) = false;
  std::vector<http::Responder> drain_waiters ABSL_GUARDED_BY(drain_mu);
};

absl::StatusOr<std::unique_ptr<QueueProxy>> QueueProxy::create(const QueueProxyOptions& options,
                                                               const common::TimeSource& time) {
  if (options.container_concurrency < 0) {
    return absl::InvalidArgumentError("container_concurrency must be >= 0");
  }
  if (options.reporting_period <= std::chrono::nanoseconds(0)) {
    return absl::InvalidArgumentError("reporting_period must be positive");
  }
  auto impl = std::make_unique<Impl>(options, time);

  http::ServerOptions traffic;
  traffic.address = options.host;
  traffic.port = options.http_port;
  traffic.workers = std::max(1, options.workers);
  traffic.max_body_bytes = options.max_body_bytes;
  traffic.server_name = "queue-proxy";
  auto http_server = http::HttpServer::create(traffic, impl->traffic_handler);
  if (!http_server.ok()) return http_server.status();
  impl->http_server = std::move(*http_server);

  http::ServerOptions admin;
  admin.address = options.host;
  admin.port = options.admin_port;
  admin.workers = 1;
  admin.server_name = "queue-proxy";
  auto admin_server = http::HttpServer::create(admin, impl->admin_handler);
  if (!admin_server.ok()) return admin_server.status();
  impl->admin_server = std::move(*admin_server);

  http::UpstreamPoolOptions upstream;
  upstream.host = options.user_host;
  upstream.port = options.user_port;
  upstream.max_response_body_bytes = options.max_body_bytes;
  for (int i = 0; i < impl->http_server->workerCount(); ++i) {
    auto pool = http::UpstreamPool::create(impl->http_server->workerExecutor(i), upstream);
    if (!pool.ok()) return pool.status();
    impl->pools.push_back(std::move(*pool));
  }
  impl->probe_timer.emplace(impl->http_server->workerExecutor(0));
  if (options.user_grpc_port != 0) {
    if (auto st = impl->startGrpc(); !st.ok()) return st;
  }
  return std::unique_ptr<QueueProxy>(new QueueProxy(std::move(impl)));
}

QueueProxy::QueueProxy(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

QueueProxy::~QueueProxy() {
  if (!impl_->stopped) impl_->stopNow();
}

void QueueProxy::start() {
  impl_->http_server->start();
  impl_->admin_server->start();
  impl_->startProber();
}

uint16_t QueueProxy::httpPort() const { return impl_->http_server->port(); }
uint16_t QueueProxy::adminPort() const { return impl_->admin_server->port(); }
uint16_t QueueProxy::grpcPort() const { return static_cast<uint16_t>(impl_->grpc_port); }
bool QueueProxy::userReady() const { return impl_->user_ready.load(); }
StatsReport QueueProxy::lastStats() const {
  return impl_->stats.lastReport(impl_->time.monotonicTime());
}
void QueueProxy::shutdown() { impl_->shutdown(); }

}  // namespace kh::queueproxy
