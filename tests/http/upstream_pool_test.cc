// UpstreamPool against a real local HttpServer and against scripted raw-socket upstreams (for the
// failures a well-behaved server does not produce on demand), plus HttpServer's per-worker
// executor hook that a proxying handler uses to find its worker's pool.

#include "kh/http/upstream_pool.h"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <thread>

#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/read.hpp"
#include "boost/asio/read_until.hpp"
#include "boost/asio/streambuf.hpp"
#include "boost/asio/write.hpp"
#include "gtest/gtest.h"
#include "kh/http/client.h"
#include "kh/http/server.h"

namespace kh::http {
namespace {

using namespace std::chrono_literals;
namespace net = boost::asio;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;

// Answers "<method> <target> <body>" and echoes X-Test; /park holds the answer until released.
class EchoHandler final : public Handler {
 public:
  void handle(Request&, Response&) override {}
  bool isAsync() const override { return true; }
  void handleAsync(Request&& request, Responder responder) override {
    if (request.target() == "/park") {
      std::lock_guard lock(mu_);
      parked_.push_back(std::move(responder));
      cv_.notify_all();
      return;
    }
    Response response;
    response.result(200);
    response.set("X-Test", request["X-Test"]);
    response.body() = std::string(request.method_string()) + " " + std::string(request.target()) +
                      " " + request.body();
    responder.send(std::move(response));
  }
  bool waitParked(size_t n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, 10s, [&] { return parked_.size() >= n; });
  }
  void releaseAll() {
    std::lock_guard lock(mu_);
    for (auto& r : parked_) {
      Response response;
      response.result(200);
      response.body() = "released";
      r.send(std::move(response));
    }
    parked_.clear();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Responder> parked_;
};

struct Outcome {
  UpstreamResult result = absl::UnknownError("not called");
  bool bytes_were_sent = false;
  int calls = 0;
};

Request makeRequest(bhttp::verb method, std::string target, std::string body = {}) {
  Request request(method, target, 11);
  request.body() = std::move(body);
  return request;
}

// Sends one request on `pool` and runs `ioc` until it completes: run() returns once nothing is
// pending, which also proves idle pooled connections hold no outstanding work.
Outcome sendAndRun(net::io_context& ioc, UpstreamPool& pool, Request request,
                   std::chrono::milliseconds timeout = 5s) {
  Outcome out;
  pool.send(std::move(request), timeout, [&out](UpstreamResult&& r, bool sent) {
    out.result = std::move(r);
    out.bytes_were_sent = sent;
    ++out.calls;
  });
  ioc.restart();
  ioc.run();
  return out;
}

class UpstreamPoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = HttpServer::create({}, handler_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    server_->start();
    UpstreamPoolOptions options;
    options.port = server_->port();
    auto pool = UpstreamPool::create(ioc_.get_executor(), options);
    ASSERT_TRUE(pool.ok()) << pool.status();
    pool_ = std::move(*pool);
  }
  void TearDown() override {
    pool_.reset();
    if (server_) server_->drain(1s);
  }

  EchoHandler handler_;
  std::unique_ptr<HttpServer> server_;
  net::io_context ioc_;
  std::unique_ptr<UpstreamPool> pool_;
};

TEST_F(UpstreamPoolTest, SendsHeadersAndBodyAndReturnsTheResponse) {
  Request request = makeRequest(bhttp::verb::post, "/v2/models/m/infer", "{\"x\":1}");
  request.set("X-Test", "passed-through");
  Outcome out = sendAndRun(ioc_, *pool_, std::move(request));
  ASSERT_EQ(out.calls, 1);
  ASSERT_TRUE(out.result.ok()) << out.result.status();
  EXPECT_EQ(out.result->result_int(), 200u);
  EXPECT_EQ(out.result->body(), "POST /v2/models/m/infer {\"x\":1}");
  EXPECT_EQ((*out.result)["X-Test"], "passed-through");
  EXPECT_TRUE(out.bytes_were_sent);
}

TEST_F(UpstreamPoolTest, ReusesOneKeepAliveConnectionForSequentialRequests) {
  for (int i = 0; i < 5; ++i) {
    Outcome out = sendAndRun(ioc_, *pool_, makeRequest(bhttp::verb::get, "/r"));
    ASSERT_TRUE(out.result.ok()) << out.result.status();
  }
  EXPECT_EQ(pool_->counters().connections_opened, 1u);
  EXPECT_EQ(pool_->counters().reuses, 4u);
  EXPECT_EQ(pool_->idleConnections(), 1u);
  EXPECT_EQ(pool_->inFlight(), 0u);
}

TEST_F(UpstreamPoolTest, ConcurrentRequestsOpenConnectionsAndKeepAtMostTheIdleBound) {
  UpstreamPoolOptions options;
  options.port = server_->port();
  options.max_idle_connections = 2;
  auto pool = UpstreamPool::create(ioc_.get_executor(), options);
  ASSERT_TRUE(pool.ok());
  int ok = 0;
  for (int i = 0; i < 5; ++i) {
    (*pool)->send(makeRequest(bhttp::verb::get, "/c"), 5s,
                  [&ok](UpstreamResult&& r, bool) { ok += r.ok() ? 1 : 0; });
  }
  EXPECT_EQ((*pool)->inFlight(), 5u);
  ioc_.run();
  EXPECT_EQ(ok, 5);
  EXPECT_EQ((*pool)->counters().connections_opened, 5u);
  EXPECT_EQ((*pool)->idleConnections(), 2u);
}

TEST_F(UpstreamPoolTest, DeadlineExceededWhenTheUpstreamDoesNotAnswer) {
  Outcome out = sendAndRun(ioc_, *pool_, makeRequest(bhttp::verb::get, "/park"), 100ms);
  ASSERT_FALSE(out.result.ok());
  EXPECT_EQ(out.result.status().code(), absl::StatusCode::kDeadlineExceeded) << out.result.status();
  EXPECT_TRUE(out.bytes_were_sent);
  EXPECT_EQ(pool_->idleConnections(), 0u);  // a timed-out connection is never reused
  ASSERT_TRUE(handler_.waitParked(1));
  handler_.releaseAll();
}

TEST(UpstreamPool, RefusedConnectionIsUnavailableAndNothingWasSent) {
  // A port that was just free: bind, note it, close.
  net::io_context ioc;
  uint16_t port;
  {
    tcp::acceptor probe(ioc, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
    port = probe.local_endpoint().port();
  }
  UpstreamPoolOptions options;
  options.port = port;
  auto pool = UpstreamPool::create(ioc.get_executor(), options);
  ASSERT_TRUE(pool.ok());
  Outcome out = sendAndRun(ioc, **pool, makeRequest(bhttp::verb::post, "/x", "body"));
  ASSERT_FALSE(out.result.ok());
  EXPECT_EQ(out.result.status().code(), absl::StatusCode::kUnavailable) << out.result.status();
  EXPECT_FALSE(out.bytes_were_sent);
}

TEST(UpstreamPool, RejectsAHostNameItWouldHaveToResolve) {
  net::io_context ioc;
  UpstreamPoolOptions options;
  options.host = "example.invalid";
  auto pool = UpstreamPool::create(ioc.get_executor(), options);
  EXPECT_EQ(pool.status().code(), absl::StatusCode::kInvalidArgument);
}

// A raw upstream that follows a script per accepted connection, on its own thread.
class ScriptedUpstream {
 public:
  using Script = std::function<void(tcp::socket&)>;
  explicit ScriptedUpstream(std::vector<Script> scripts)
      : acceptor_(ioc_, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0)),
        scripts_(std::move(scripts)) {
    thread_ = std::thread([this] {
      for (auto& script : scripts_) {
        boost::system::error_code ec;
        tcp::socket socket(ioc_);
        acceptor_.accept(socket, ec);
        if (ec) return;
        script(socket);
        ++finished_;
        cv_.notify_all();
      }
    });
  }
  ~ScriptedUpstream() {
    boost::system::error_code ec;
    acceptor_.close(ec);
    if (thread_.joinable()) thread_.join();
  }
  uint16_t port() const { return acceptor_.local_endpoint().port(); }
  // Waits until `n` scripts have run to their end.
  bool waitFinished(int n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, 10s, [&] { return finished_.load() >= n; });
  }

  // Script steps.
  static std::string readRequest(tcp::socket& socket, net::streambuf& buffer) {
    boost::system::error_code ec;
    size_t n = net::read_until(socket, buffer, "\r\n\r\n", ec);
    if (ec) return {};
    std::string head(net::buffers_begin(buffer.data()), net::buffers_begin(buffer.data()) + n);
    buffer.consume(n);
    // The tests send bodies only with Content-Length.
    auto pos = head.find("Content-Length: ");
    if (pos != std::string::npos) {
      size_t length = std::stoul(head.substr(pos + 16));
      if (buffer.size() < length) net::read(socket, buffer, net::transfer_exactly(length - buffer.size()), ec);
      buffer.consume(length);
    }
    return head;
  }
  static void answer(tcp::socket& socket, const std::string& body) {
    std::string response = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) +
                           "\r\n\r\n" + body;
    boost::system::error_code ec;
    net::write(socket, net::buffer(response), ec);
  }

 private:
  net::io_context ioc_;
  tcp::acceptor acceptor_;
  std::vector<Script> scripts_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<int> finished_{0};
};

TEST(UpstreamPool, PooledConnectionClosedByTheServerIsDiscardedBeforeUse) {
  ScriptedUpstream upstream({
      [](tcp::socket& s) {
        net::streambuf b;
        ScriptedUpstream::readRequest(s, b);
        ScriptedUpstream::answer(s, "first");
        s.close();  // a keep-alive response, then the server closes (idle timeout)
      },
      [](tcp::socket& s) {
        net::streambuf b;
        ScriptedUpstream::readRequest(s, b);
        ScriptedUpstream::answer(s, "second");
      },
  });
  net::io_context ioc;
  UpstreamPoolOptions options;
  options.port = upstream.port();
  auto pool = UpstreamPool::create(ioc.get_executor(), options);
  ASSERT_TRUE(pool.ok());
  Outcome first = sendAndRun(ioc, **pool, makeRequest(bhttp::verb::post, "/a", "x"));
  ASSERT_TRUE(first.result.ok()) << first.result.status();
  EXPECT_EQ((*pool)->idleConnections(), 1u);
  ASSERT_TRUE(upstream.waitFinished(1));  // the first connection is closed now
  Outcome second = sendAndRun(ioc, **pool, makeRequest(bhttp::verb::post, "/b", "y"));
  ASSERT_TRUE(second.result.ok()) << second.result.status();
  EXPECT_EQ(second.result->body(), "second");
  EXPECT_EQ((*pool)->counters().connections_opened, 2u);
  EXPECT_EQ((*pool)->counters().stale_retries, 0u);
}

// The race a peek cannot see: the server reads the request on a reused connection and closes it
// without answering. A GET is sent again once; a POST is not (it may have been processed).
ScriptedUpstream::Script answerThenDropTheNextRequest() {
  return [](tcp::socket& s) {
    net::streambuf b;
    ScriptedUpstream::readRequest(s, b);
    ScriptedUpstream::answer(s, "first");
    ScriptedUpstream::readRequest(s, b);
    s.close();
  };
}

TEST(UpstreamPool, IdempotentRequestOnAConnectionClosedUnderItIsRetriedOnce) {
  ScriptedUpstream upstream({answerThenDropTheNextRequest(), [](tcp::socket& s) {
                               net::streambuf b;
                               ScriptedUpstream::readRequest(s, b);
                               ScriptedUpstream::answer(s, "retried");
                             }});
  net::io_context ioc;
  UpstreamPoolOptions options;
  options.port = upstream.port();
  auto pool = UpstreamPool::create(ioc.get_executor(), options);
  ASSERT_TRUE(pool.ok());
  ASSERT_TRUE(sendAndRun(ioc, **pool, makeRequest(bhttp::verb::get, "/a")).result.ok());
  Outcome second = sendAndRun(ioc, **pool, makeRequest(bhttp::verb::get, "/b"));
  ASSERT_TRUE(second.result.ok()) << second.result.status();
  EXPECT_EQ(second.result->body(), "retried");
  EXPECT_EQ((*pool)->counters().stale_retries, 1u);
}

TEST(UpstreamPool, NonIdempotentRequestOnAConnectionClosedUnderItFailsAsSent) {
  ScriptedUpstream upstream({answerThenDropTheNextRequest()});
  net::io_context ioc;
  UpstreamPoolOptions options;
  options.port = upstream.port();
  auto pool = UpstreamPool::create(ioc.get_executor(), options);
  ASSERT_TRUE(pool.ok());
  ASSERT_TRUE(sendAndRun(ioc, **pool, makeRequest(bhttp::verb::post, "/a", "1")).result.ok());
  Outcome second = sendAndRun(ioc, **pool, makeRequest(bhttp::verb::post, "/b", "2"));
  ASSERT_FALSE(second.result.ok());
  EXPECT_EQ(second.result.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(second.bytes_were_sent);
  EXPECT_EQ((*pool)->counters().stale_retries, 0u);
}

TEST(UpstreamPool, MalformedResponseIsInternal) {
  ScriptedUpstream upstream({[](tcp::socket& s) {
    net::streambuf b;
    ScriptedUpstream::readRequest(s, b);
    boost::system::error_code ec;
    net::write(s, net::buffer(std::string("NOT HTTP AT ALL\r\n\r\n")), ec);
  }});
  net::io_context ioc;
  UpstreamPoolOptions options;
  options.port = upstream.port();
  auto pool = UpstreamPool::create(ioc.get_executor(), options);
  ASSERT_TRUE(pool.ok());
  Outcome out = sendAndRun(ioc, **pool, makeRequest(bhttp::verb::get, "/a"));
  ASSERT_FALSE(out.result.ok());
  EXPECT_EQ(out.result.status().code(), absl::StatusCode::kInternal) << out.result.status();
}

TEST(HopByHop, RemovesPerHopHeadersAndThoseConnectionNames) {
  Request request = makeRequest(bhttp::verb::get, "/");
  request.set(bhttp::field::connection, "keep-alive, X-Private");
  request.set("X-Private", "secret");
  request.set(bhttp::field::keep_alive, "timeout=5");
  request.set(bhttp::field::transfer_encoding, "chunked");
  request.set(bhttp::field::upgrade, "h2c");
  request.set("X-Kept", "yes");
  removeHopByHopHeaders(request.base());
  EXPECT_EQ(request.find("X-Private"), request.end());
  EXPECT_EQ(request.find(bhttp::field::connection), request.end());
  EXPECT_EQ(request.find(bhttp::field::keep_alive), request.end());
  EXPECT_EQ(request.find(bhttp::field::transfer_encoding), request.end());
  EXPECT_EQ(request.find(bhttp::field::upgrade), request.end());
  EXPECT_EQ(request["X-Kept"], "yes");
}

// A proxying handler with one pool per server worker, found through Responder::workerIndex()
// and bound to HttpServer::workerExecutor(): the pattern the queue-proxy uses.
class PerWorkerProxy final : public Handler {
 public:
  void handle(Request&, Response&) override {}
  bool isAsync() const override { return true; }
  void handleAsync(Request&& request, Responder responder) override {
    int worker = responder.workerIndex();
    if (worker < 0 || static_cast<size_t>(worker) >= pools.size()) {
      wrong_worker = true;
      return;  // the dropped responder answers 500
    }
    // The pool must be used on its own executor's thread: record which thread that is.
    if (worker_threads[static_cast<size_t>(worker)] != std::thread::id() &&
        worker_threads[static_cast<size_t>(worker)] != std::this_thread::get_id()) {
      wrong_worker = true;
    }
    pools[static_cast<size_t>(worker)]->send(
        std::move(request), 5s,
        [responder = std::move(responder)](UpstreamResult&& r, bool) mutable {
          Response response;
          if (r.ok()) {
            response = std::move(*r);
          } else {
            response.result(502);
          }
          responder.send(std::move(response));
        });
  }
  std::vector<std::unique_ptr<UpstreamPool>> pools;
  std::vector<std::thread::id> worker_threads;
  std::atomic<bool> wrong_worker{false};
};

TEST(PerWorkerPools, HandlerRunsOnTheWorkerWhoseExecutorItsPoolUses) {
  EchoHandler backend_handler;
  auto backend = HttpServer::create({}, backend_handler);
  ASSERT_TRUE(backend.ok());
  (*backend)->start();

  PerWorkerProxy proxy;
  ServerOptions options;
  options.workers = 3;
  auto server = HttpServer::create(options, proxy);
  ASSERT_TRUE(server.ok());
  ASSERT_EQ((*server)->workerCount(), 3);
  proxy.worker_threads.resize(3);
  for (int i = 0; i < 3; ++i) {
    UpstreamPoolOptions pool_options;
    pool_options.port = (*backend)->port();
    auto pool = UpstreamPool::create((*server)->workerExecutor(i), pool_options);
    ASSERT_TRUE(pool.ok());
    proxy.pools.push_back(std::move(*pool));
  }
  (*server)->start();
  // Learn each worker's thread by posting to its executor.
  for (int i = 0; i < 3; ++i) {
    std::promise<std::thread::id> id;
    net::post((*server)->workerExecutor(i), [&id] { id.set_value(std::this_thread::get_id()); });
    proxy.worker_threads[static_cast<size_t>(i)] = id.get_future().get();
  }
  EXPECT_NE(proxy.worker_threads[0], proxy.worker_threads[1]);

  // Several connections so that the kernel spreads them over the workers.
  for (int c = 0; c < 6; ++c) {
    Client client("127.0.0.1", (*server)->port());
    for (int i = 0; i < 3; ++i) {
      auto r = client.request("POST", "/p", "b");
      ASSERT_TRUE(r.ok()) << r.status();
      EXPECT_EQ(r->result_int(), 200u);
      EXPECT_EQ(r->body(), "POST /p b");
    }
  }
  EXPECT_FALSE(proxy.wrong_worker);
  (*server)->drain(1s);
  proxy.pools.clear();  // after the workers stopped: nothing runs on their executors any more
  (*backend)->drain(1s);
}

}  // namespace
}  // namespace kh::http
