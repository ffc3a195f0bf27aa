// The real `queue-proxy` executable in front of the real `modelserver` or of a FakeUpstream in
// the test process: proxying, keep-alive, the breaker, timeouts, stats, probes, SIGTERM drain
// and a dead user container. Waits are on events (log lines, held requests, responses), never
// on sleeps.

#include <algorithm>
#include <csignal>
#include <functional>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/cleanup/cleanup.h"
#include "gtest/gtest.h"
#include "kh/http/client.h"
#include "kh/protocols/grpc_predict_v2.grpc.pb.h"
#include "queueproxy/fake_upstream.h"
#include "queueproxy/queue_proxy_process.h"
#include "support/iris_grpc.h"
#include "support/modelserver_process.h"

namespace kh::queueproxy {
namespace {

using namespace std::chrono_literals;
using kh::testing::FakeUpstream;
using kh::testing::QueueProxyProcess;
using kh::testing::startQueueProxy;

constexpr char kIrisInfer[] =
    R"({"inputs":[{"name":"input-0","shape":[2,4],"datatype":"FP32",)"
    R"("data":[6.8,2.8,4.8,1.4,6.0,3.4,4.5,1.6]}]})";

http::Request get(const std::string& target) {
  return http::Request(boost::beast::http::verb::get, target, 11);
}

http::Request probe(const std::string& value = "queue") {
  http::Request request = get("/healthz");
  request.set("K-Network-Probe", value);
  request.set(boost::beast::http::field::user_agent, "Knative-Activator-Probe");
  return request;
}

// Runs `count` requests to /hold at once, each on its own connection; results in `statuses`.
struct ConcurrentClients {
  ConcurrentClients(uint16_t port, int count, std::vector<std::string> headers = {}) {
    results.resize(static_cast<size_t>(count));
    for (int i = 0; i < count; ++i) {
      threads.emplace_back([this, port, i] {
        http::Client client("127.0.0.1", port, 20s);
        auto r = client.request("POST", "/hold", "x");
        std::lock_guard lock(mu);
        auto& slot = results[static_cast<size_t>(i)];
        if (r.ok()) {
          slot = {static_cast<int>(r->result_int()), r->body()};
        } else {
          slot = {-1, std::string(common::toStd(r.status().message()))};
        }
        ++finished;
        cv.notify_all();
      });
    }
  }
  ~ConcurrentClients() { join(); }
  void join() {
    for (auto& t : threads) {
      if (t.joinable()) t.join();
    }
  }
  bool waitFinished(int n, std::chrono::milliseconds timeout = 10s) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, timeout, [&] { return finished >= n; });
  }
  int countStatus(int status, const std::string& body) {
    std::lock_guard lock(mu);
    int n = 0;
    for (auto& [s, b] : results) n += (s == status && b == body) ? 1 : 0;
    return n;
  }

  std::mutex mu;
  std::condition_variable cv;
  int finished = 0;
  std::vector<std::pair<int, std::string>> results;
  std::vector<std::thread> threads;
};

// Reads GET /stats until `accept` likes a report (a new one every reporting period).
bool waitForStats(uint16_t admin_port, const std::function<bool(const std::string&)>& accept,
                  std::string* last, std::chrono::milliseconds timeout = 10s) {
  http::Client admin("127.0.0.1", admin_port, 2s);
  auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    auto r = admin.request("GET", "/stats");
    if (r.ok()) {
      *last = r->body();
      if (accept(*last)) return true;
    }
    std::this_thread::sleep_for(20ms);  // polling pace, not synchronisation
  }
  return false;
}

TEST(QueueProxy, ProxiesV2InferToTheModelServer) {
  auto ms = kh::testing::startModelServer("iris", kh::testing::modelDir("xgboost-iris"));
  ASSERT_TRUE(ms.ok()) << ms.status();
  auto qp = startQueueProxy(ms->http_port);
  ASSERT_TRUE(qp.ok()) << qp.status();
  http::Client client("127.0.0.1", qp->http_port);
  auto r = client.request("POST", "/v2/models/iris/infer", kIrisInfer);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->result_int(), 200u) << r->body();
  EXPECT_NE(r->body().find(R"("data":[1,1])"), std::string::npos) << r->body();
  auto missing = client.request("POST", "/v2/models/nope/infer", kIrisInfer);
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(missing->result_int(), 404u);  // the model server's answer, passed through
}

TEST(QueueProxy, PassesHeadersAndBodyThroughAndPrunesRoutingAndHopHeaders) {
  FakeUpstream upstream;
  auto qp = startQueueProxy(upstream.port());
  ASSERT_TRUE(qp.ok()) << qp.status();
  http::Client client("127.0.0.1", qp->http_port);
  http::Request request(boost::beast::http::verb::put, "/echo?q=1", 11);
  request.set("X-Custom", "kept");
  request.set("K-Proxy-Request", "activator");
  request.set("Knative-Serving-Revision", "rev-1");
  request.set("Knative-Serving-Namespace", "ns");
  request.set(boost::beast::http::field::connection, "keep-alive, X-Hop");
  request.set("X-Hop", "dropped");
  request.body() = "payload";
  auto r = client.send(std::move(request));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->result_int(), 200u);
  EXPECT_EQ(r->body(), "PUT /echo?q=1 payload");
  EXPECT_EQ((*r)["X-Upstream"], "fake");
  http::Request seen = upstream.lastRequest();
  EXPECT_EQ(seen["X-Custom"], "kept");
  EXPECT_EQ(seen["K-Proxy-Request"], "activator");
  EXPECT_EQ(seen.find("Knative-Serving-Revision"), seen.end());
  EXPECT_EQ(seen.find("Knative-Serving-Namespace"), seen.end());
  EXPECT_EQ(seen.find("X-Hop"), seen.end());
}

TEST(QueueProxy, ReusesOneUpstreamConnectionAcrossRequestsAndClients) {
  FakeUpstream upstream;
  auto qp = startQueueProxy(upstream.port());
  ASSERT_TRUE(qp.ok()) << qp.status();
  for (int c = 0; c < 3; ++c) {
    http::Client client("127.0.0.1", qp->http_port);  // a new downstream connection each time
    for (int i = 0; i < 10; ++i) {
      auto r = client.request("GET", "/echo");
      ASSERT_TRUE(r.ok()) << r.status();
      ASSERT_EQ(r->result_int(), 200u);
    }
  }
  EXPECT_EQ(upstream.requestsServed("/echo"), 30);
  // Sequential requests on one worker (and its readiness probe) share one kept-alive connection.
  EXPECT_EQ(upstream.connectionsAccepted(), 1);
}

TEST(QueueProxy, BreakerAdmitsElevenSlotsPerConcurrencyAndRejectsExactlyTheExcess) {
  FakeUpstream upstream;
  auto qp = startQueueProxy(upstream.port(), {"--container_concurrency", "1", "--workers", "2"});
  ASSERT_TRUE(qp.ok()) << qp.status();
  const int kRequests = 15;  // 1 in flight + 10 queued + 4 over the limit
  ConcurrentClients clients(qp->http_port, kRequests);
  ASSERT_TRUE(upstream.waitHeld(1));
  ASSERT_TRUE(clients.waitFinished(4)) << "the excess was not rejected at once";
  EXPECT_EQ(clients.countStatus(503, "pending request queue full"), 4);
  EXPECT_EQ(upstream.held(), 1);  // the queued ones wait in the proxy, not at the container
  upstream.releaseHolds();
  ASSERT_TRUE(clients.waitFinished(kRequests)) << "queued requests hung";
  EXPECT_EQ(clients.countStatus(200, "held"), 11);
  EXPECT_EQ(clients.countStatus(503, "pending request queue full"), 4);
  EXPECT_EQ(upstream.maxHeld(), 1);  // containerConcurrency held at the container
}

TEST(QueueProxy, WithoutABreakerEveryRequestReachesTheContainer) {
  FakeUpstream upstream;
  auto qp = startQueueProxy(upstream.port(), {"--container_concurrency", "0"});
  ASSERT_TRUE(qp.ok()) << qp.status();
  ConcurrentClients clients(qp->http_port, 15);
  ASSERT_TRUE(upstream.waitHeld(15));
  upstream.releaseHolds();
  ASSERT_TRUE(clients.waitFinished(15));
  EXPECT_EQ(clients.countStatus(200, "held"), 15);
}

TEST(QueueProxy, RevisionTimeoutAnswers504ForInFlightAndQueuedRequests) {
  FakeUpstream upstream;
  auto qp = startQueueProxy(upstream.port(),
                            {"--container_concurrency", "1", "--revision_timeout_ms", "300"});
  ASSERT_TRUE(qp.ok()) << qp.status();
  ConcurrentClients clients(qp->http_port, 2);  // one at the container, one queued behind it
  ASSERT_TRUE(clients.waitFinished(2));
  // The queued one waited for the slot until its own deadline (or got the slot only just before
  // it); either way it is answered 504, not left hanging.
  EXPECT_EQ(clients.countStatus(504, "request timeout"), 2);
  upstream.releaseHolds();
  // The slot came back: a fresh request goes through.
  http::Client client("127.0.0.1", qp->http_port);
  auto r = client.request("GET", "/echo");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->result_int(), 200u);
}

TEST(QueueProxy, StatsReportTimeWeightedConcurrencyOfHeldRequests) {
  FakeUpstream upstream;
  auto qp = startQueueProxy(upstream.port(),
                            {"--reporting_period_ms", "100", "--pod_name", "pod-a"});
  ASSERT_TRUE(qp.ok()) << qp.status();
  // Two requests held open, one sent by the activator: every whole period while they are held
  // reports exactly 2 concurrent, 1 of them proxied, and no arrivals.
  std::thread direct([&] {
    http::Client c("127.0.0.1", qp->http_port, 20s);
    (void)c.request("POST", "/hold", "");
  });
  std::thread proxied([&] {
    http::Client c("127.0.0.1", qp->http_port, 20s);
    http::Request request(boost::beast::http::verb::post, "/hold", 11);
    request.set("K-Proxy-Request", "activator");
    (void)c.send(std::move(request));
  });
  // However the test leaves (a failed ASSERT returns at once), the holds end and both are joined.
  absl::Cleanup join_holders = [&] {
    upstream.releaseHolds();
    direct.join();
    proxied.join();
  };
  ASSERT_TRUE(upstream.waitHeld(2));
  std::string stats;
  EXPECT_TRUE(waitForStats(
      qp->admin_port,
      [](const std::string& s) {
        return s.find(R"("average_concurrent_requests":2,)") != std::string::npos &&
               s.find(R"("average_proxied_concurrent_requests":1,)") != std::string::npos &&
               s.find(R"("request_count":0,)") != std::string::npos;
      },
      &stats))
      << stats;
  EXPECT_NE(stats.find(R"("pod_name":"pod-a")"), std::string::npos) << stats;
  EXPECT_NE(stats.find(R"("proxied_request_count":0,)"), std::string::npos) << stats;
  EXPECT_NE(stats.find(R"("process_uptime":)"), std::string::npos) << stats;
  std::move(join_holders).Invoke();
  // Then a period with nothing in flight.
  EXPECT_TRUE(waitForStats(
      qp->admin_port,
      [](const std::string& s) {
        return s.find(R"("average_concurrent_requests":0,)") != std::string::npos;
      },
      &stats))
      << stats;
}

TEST(QueueProxy, ProbesFollowTheUserContainerAndBypassTheBreaker) {
  FakeUpstream upstream;
  upstream.setReady(false);
  auto qp = startQueueProxy(upstream.port(), {"--container_concurrency", "1"},
                            /*wait_ready=*/false);
  ASSERT_TRUE(qp.ok()) << qp.status();
  http::Client client("127.0.0.1", qp->http_port);
  http::Client admin("127.0.0.1", qp->admin_port);

  auto before = client.send(probe());
  ASSERT_TRUE(before.ok()) << before.status();
  EXPECT_EQ(before->result_int(), 503u);
  auto ready_before = admin.request("GET", "/ready");
  ASSERT_TRUE(ready_before.ok());
  EXPECT_EQ(ready_before->result_int(), 503u);

  upstream.setReady(true);
  ASSERT_TRUE(qp->waitForLog("user container ready")) << qp->log;
  auto after = client.send(probe());
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->result_int(), 200u);
  EXPECT_EQ(after->body(), "queue");
  auto ready_after = admin.request("GET", "/ready");
  ASSERT_TRUE(ready_after.ok());
  EXPECT_EQ(ready_after->result_int(), 200u);

  auto wrong = client.send(probe("activator"));
  ASSERT_TRUE(wrong.ok());
  EXPECT_EQ(wrong->result_int(), 400u);

  // The only slot is taken and the queue holds a request: probes are still answered.
  ConcurrentClients busy(qp->http_port, 2);
  ASSERT_TRUE(upstream.waitHeld(1));
  http::Request kubelet = get("/");
  kubelet.set(boost::beast::http::field::user_agent, "kube-probe/1.29");
  auto kube = client.send(std::move(kubelet));
  ASSERT_TRUE(kube.ok());
  EXPECT_EQ(kube->result_int(), 200u);
  auto during = client.send(probe());
  ASSERT_TRUE(during.ok());
  EXPECT_EQ(during->body(), "queue");
  upstream.releaseHolds();
  ASSERT_TRUE(busy.waitFinished(2));

  // Probes are checked on demand: a container that stops being ready fails the next probe.
  upstream.setReady(false);
  auto lost = client.send(probe());
  ASSERT_TRUE(lost.ok());
  EXPECT_EQ(lost->result_int(), 503u);
}

TEST(QueueProxy, SigtermFailsProbesKeepsServingThenDrainsInFlightAndExitsZero) {
  FakeUpstream upstream;
  auto qp = startQueueProxy(upstream.port(), {"--drain_quiet_period_ms", "300"});
  ASSERT_TRUE(qp.ok()) << qp.status();
  ConcurrentClients in_flight(qp->http_port, 1);
  ASSERT_TRUE(upstream.waitHeld(1));
  // The user container's preStop hook: blocks until the quiet period is over.
  auto wait_for_drain = std::async(std::launch::async, [port = qp->admin_port] {
    http::Client admin("127.0.0.1", port, 20s);
    auto r = admin.request("GET", "/wait-for-drain");
    return r.ok() ? static_cast<int>(r->result_int()) : -1;
  });

  qp->child->signalGroup(SIGTERM);
  ASSERT_TRUE(qp->waitForLog("draining")) << qp->log;
  http::Client client("127.0.0.1", qp->http_port);
  auto p = client.send(probe());
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->result_int(), 503u);
  EXPECT_EQ(p->body(), "shutting down");
  auto served = client.request("GET", "/echo");  // traffic still flows in the quiet period
  ASSERT_TRUE(served.ok()) << served.status();
  EXPECT_EQ(served->result_int(), 200u);

  ASSERT_TRUE(qp->waitForLog("quiet period over")) << qp->log;
  EXPECT_EQ(wait_for_drain.get(), 200);
  EXPECT_TRUE(qp->child->running()) << "exited with a request in flight";
  upstream.releaseHolds();
  ASSERT_TRUE(in_flight.waitFinished(1));
  EXPECT_EQ(in_flight.countStatus(200, "held"), 1);
  auto exit = qp->child->wait(10s);
  ASSERT_TRUE(exit.has_value());
  EXPECT_TRUE(exit->exited && exit->code == 0) << exit->describe();
}

TEST(QueueProxy, ZeroQuietPeriodExitsAsSoonAsInFlightRequestsFinish) {
  FakeUpstream upstream;
  auto qp = startQueueProxy(upstream.port(), {"--drain_quiet_period_ms", "0"});
  ASSERT_TRUE(qp.ok()) << qp.status();
  ConcurrentClients in_flight(qp->http_port, 1);
  ASSERT_TRUE(upstream.waitHeld(1));
  qp->child->signalGroup(SIGTERM);
  ASSERT_TRUE(qp->waitForLog("quiet period over")) << qp->log;
  EXPECT_TRUE(qp->child->running());
  upstream.releaseHolds();
  ASSERT_TRUE(in_flight.waitFinished(1));
  EXPECT_EQ(in_flight.countStatus(200, "held"), 1);
  auto exit = qp->child->wait(10s);
  ASSERT_TRUE(exit.has_value());
  EXPECT_TRUE(exit->exited && exit->code == 0) << exit->describe();
}

TEST(QueueProxy, KilledUserContainerGivesExplicitErrorsNotHangs) {
  auto ms = kh::testing::startModelServer("iris", kh::testing::modelDir("xgboost-iris"));
  ASSERT_TRUE(ms.ok()) << ms.status();
  auto qp = startQueueProxy(ms->http_port);
  ASSERT_TRUE(qp.ok()) << qp.status();
  http::Client client("127.0.0.1", qp->http_port, 5s);
  auto ok = client.request("POST", "/v2/models/iris/infer", kIrisInfer);
  ASSERT_TRUE(ok.ok());
  ASSERT_EQ(ok->result_int(), 200u);

  ms->child->signalGroup(SIGKILL);
  ASSERT_TRUE(ms->child->wait(10s).has_value());
  auto start = std::chrono::steady_clock::now();
  auto failed = client.request("POST", "/v2/models/iris/infer", kIrisInfer);
  ASSERT_TRUE(failed.ok()) << failed.status();
  EXPECT_EQ(failed->result_int(), 502u);
  EXPECT_NE(failed->body().find("error reaching the user container"), std::string::npos)
      << failed->body();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
  auto p = client.send(probe());
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->result_int(), 503u);
}

// ---- gRPC through the queue-proxy ----

::inference::ModelInferRequest irisGrpcRequest() {
  return testing::irisGrpcRequest("iris", {6.8f, 2.8f, 4.8f, 1.4f, 6.0f, 3.4f, 4.5f, 1.6f});
}

std::unique_ptr<::inference::GRPCInferenceService::Stub> grpcStub(uint16_t port) {
  return ::inference::GRPCInferenceService::NewStub(
      grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));
}

// ModelInfer calls made asynchronously, each under its own deadline; their statuses once answered.
class AsyncInferCalls {
 public:
  explicit AsyncInferCalls(::inference::GRPCInferenceService::Stub& stub) : stub_(stub), request_(irisGrpcRequest()) {}

  /** Starts one more call; @return its index. */
  size_t start(std::chrono::milliseconds deadline) {
    calls_.push_back(std::make_unique<Call>());
    Call* c = calls_.back().get();
    c->ctx.set_deadline(std::chrono::system_clock::now() + deadline);
    stub_.async()->ModelInfer(&c->ctx, &request_, &c->response, [this, c](grpc::Status status) {
      std::lock_guard lock(mu_);
      c->status = std::move(status);
      c->done = true;
      cv_.notify_all();
    });
    return calls_.size() - 1;
  }
  /** Waits until the calls [from, to) have their answers. */
  bool wait(size_t from, size_t to, std::chrono::milliseconds timeout = 30s) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] {
      return std::all_of(calls_.begin() + from, calls_.begin() + to, [](const auto& c) { return c->done; });
    });
  }
  const grpc::Status& status(size_t i) {
    std::lock_guard lock(mu_);
    return calls_[i]->status;
  }
  size_t size() const { return calls_.size(); }

 private:
  struct Call {
    grpc::ClientContext ctx;
    ::inference::ModelInferResponse response;
    grpc::Status status;
    bool done = false;
  };
  ::inference::GRPCInferenceService::Stub& stub_;
  ::inference::ModelInferRequest request_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Call>> calls_;
};

TEST(QueueProxy, ProxiesGrpcToTheModelServerAndCountsItInTheStats) {
  auto ms = kh::testing::startModelServer("iris", kh::testing::modelDir("xgboost-iris"));
  ASSERT_TRUE(ms.ok()) << ms.status();
  auto qp = startQueueProxy(ms->http_port, {"--user_grpc_port", std::to_string(ms->grpc_port)});
  ASSERT_TRUE(qp.ok()) << qp.status();
  ASSERT_NE(qp->grpc_port, 0) << qp->log;
  auto stub = grpcStub(qp->grpc_port);
  for (int i = 0; i < 5; ++i) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 10s);
    ctx.AddMetadata("k-proxy-request", "activator");  // counted as proxied
    ::inference::ModelInferResponse response;
    auto status = stub->ModelInfer(&ctx, irisGrpcRequest(), &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    ASSERT_EQ(response.outputs_size(), 1);
    ASSERT_GE(response.outputs(0).shape_size(), 1);
    EXPECT_EQ(response.outputs(0).shape(0), 2);  // one class per row of the batch
  }
  // The model server's own errors pass through with their code.
  grpc::ClientContext ctx;
  ::inference::ModelInferRequest unknown = irisGrpcRequest();
  unknown.set_model_name("nope");
  ::inference::ModelInferResponse response;
  auto missing = stub->ModelInfer(&ctx, unknown, &response);
  EXPECT_EQ(missing.error_code(), grpc::StatusCode::NOT_FOUND) << missing.error_message();

  std::string last;
  EXPECT_TRUE(waitForStats(
      qp->admin_port,
      // The calls may straddle two reporting periods: any period that saw proxied gRPC calls.
      [](const std::string& s) { return s.find("\"proxied_request_count\":0,") == std::string::npos; },
      &last))
      << last;
}

TEST(QueueProxy, GrpcCallsShareTheBreakerAndTheExcessIsRefusedAtOnce) {
  // Each prediction holds the model server for 400 ms: with CC=1, 1 call runs, 10 queue and
  // the rest are refused while the first is still in flight.
  auto ms = kh::testing::startModelServer("iris", kh::testing::modelDir("xgboost-iris"), {"--infer_delay_ms", "400"});
  ASSERT_TRUE(ms.ok()) << ms.status();
  auto qp = startQueueProxy(ms->http_port,
                            {"--user_grpc_port", std::to_string(ms->grpc_port), "--container_concurrency", "1"});
  ASSERT_TRUE(qp.ok()) << qp.status();
  auto stub = grpcStub(qp->grpc_port);
  const size_t kCalls = 14;
  AsyncInferCalls calls(*stub);
  for (size_t i = 0; i < kCalls; ++i) calls.start(30s);
  ASSERT_TRUE(calls.wait(0, kCalls)) << "gRPC calls hung";
  int ok = 0, refused = 0;
  for (size_t i = 0; i < kCalls; ++i) {
    const grpc::Status& status = calls.status(i);
    if (status.ok()) ++ok;
    if (status.error_code() == grpc::StatusCode::UNAVAILABLE && status.error_message() == "pending request queue full") {
      ++refused;
    }
  }
  EXPECT_EQ(ok, 11);
  EXPECT_EQ(refused, kCalls - 11);
}

TEST(QueueProxy, QueuedGrpcCallsWhoseClientsGiveUpLeaveTheQueueAtOnce) {
  // One call holds the only slot for 1.5 s; ten more fill the queue and give up after 200 ms.
  auto ms = kh::testing::startModelServer("iris", kh::testing::modelDir("xgboost-iris"), {"--infer_delay_ms", "1500"});
  ASSERT_TRUE(ms.ok()) << ms.status();
  auto qp = startQueueProxy(ms->http_port,
                            {"--user_grpc_port", std::to_string(ms->grpc_port), "--container_concurrency", "1"});
  ASSERT_TRUE(qp.ok()) << qp.status();
  auto stub = grpcStub(qp->grpc_port);
  AsyncInferCalls calls(*stub);
  size_t running = calls.start(20s);
  for (int i = 0; i < 10; ++i) calls.start(200ms);  // the impatient ones
  ASSERT_TRUE(calls.wait(1, 11, 20s));
  for (size_t i = 1; i < 11; ++i) EXPECT_EQ(calls.status(i).error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  // Their queue places are free again: new calls queue (and time out) instead of being refused.
  // A client sees its deadline a moment before the proxy sees the cancel, so a batch started at
  // once may still find a place taken: batches are retried (bounded) until one finds all free.
  bool all_queued = false;
  std::string last;
  for (int attempt = 0; attempt < 20 && !all_queued; ++attempt) {
    size_t first = calls.start(300ms);
    for (int i = 1; i < 5; ++i) calls.start(300ms);
    ASSERT_TRUE(calls.wait(first, first + 5, 20s));
    all_queued = true;
    for (size_t i = first; i < first + 5; ++i) {
      if (calls.status(i).error_code() != grpc::StatusCode::DEADLINE_EXCEEDED) {
        all_queued = false;
        last = calls.status(i).error_message();
      }
    }
  }
  EXPECT_TRUE(all_queued) << "the impatient calls' places were not freed: " << last;
  ASSERT_TRUE(calls.wait(running, running + 1, 20s));
  EXPECT_TRUE(calls.status(running).ok()) << calls.status(running).error_message();
}

TEST(QueueProxy, LargeAndChunkedBodiesAreRelayedAsStreams) {
  // The model server takes bodies up to 64 MiB; the queue-proxy's own whole-body limit is 32 MiB.
  auto ms = kh::testing::startModelServer("iris", kh::testing::modelDir("xgboost-iris"), {"--max_body_mb", "64"});
  ASSERT_TRUE(ms.ok()) << ms.status();
  auto qp = startQueueProxy(ms->http_port);
  ASSERT_TRUE(qp.ok()) << qp.status();
  http::Client client("127.0.0.1", qp->http_port, 30s);
  // 40 MiB that is not JSON: the model server's 400 proves it reached it (a buffering proxy
  // would have answered 413 itself).
  auto big = client.request("POST", "/v2/models/iris/infer", std::string(40u << 20, 'x'));
  ASSERT_TRUE(big.ok()) << big.status();
  EXPECT_EQ(big->result_int(), 400u) << big->body().substr(0, 200);
  EXPECT_NE(big->body().find("error"), std::string::npos) << big->body().substr(0, 200);

  // A valid inference request sent chunked.
  std::string body = kIrisInfer;
  std::string half1 = body.substr(0, body.size() / 2), half2 = body.substr(body.size() / 2);
  auto hex = [](size_t n) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%zx", n);
    return std::string(buf);
  };
  std::string raw = "POST /v2/models/iris/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    "Transfer-Encoding: chunked\r\n\r\n" +
                    hex(half1.size()) + "\r\n" + half1 + "\r\n" + hex(half2.size()) + "\r\n" + half2 + "\r\n0\r\n\r\n";
  auto chunked = http::Client("127.0.0.1", qp->http_port, 10s).sendRaw(raw);
  ASSERT_TRUE(chunked.ok()) << chunked.status();
  EXPECT_EQ(chunked->result_int(), 200u) << chunked->body();
  EXPECT_NE(chunked->body().find(R"("data":[1,1])"), std::string::npos) << chunked->body();

  // Both were counted like any request.
  std::string last;
  EXPECT_TRUE(waitForStats(
      qp->admin_port, [](const std::string& s) { return s.find("\"request_count\":0,") == std::string::npos; }, &last))
      << last;
}

TEST(QueueProxy, WithoutAUserGrpcPortThereIsNoGrpcListener) {
  FakeUpstream upstream;
  auto qp = startQueueProxy(upstream.port());
  ASSERT_TRUE(qp.ok()) << qp.status();
  EXPECT_EQ(qp->grpc_port, 0) << qp->log;
}

}  // namespace
}  // namespace kh::queueproxy
