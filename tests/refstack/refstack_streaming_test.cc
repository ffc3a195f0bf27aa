// refstack's HTTP ingress streams large and chunked bodies to the pod instead of buffering them:
// a body over the modelserver's limit reaches the modelserver (which answers 413 itself), a
// chunked V2 infer request is served, the ingress's memory does not follow the body size, and a
// streamed request to a revision at zero pods waits for the activator, body unread.

#include <array>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/write.hpp"
#include "boost/beast/core/flat_buffer.hpp"
#include "boost/beast/http/read.hpp"
#include "boost/beast/http/string_body.hpp"
#include "gtest/gtest.h"
#include "kh/refstack/refstack.h"
#include "support/modelserver_process.h"
#include "support/process_memory.h"
#include "support/refstack_test_support.h"

namespace kh::refstack {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;
using nlohmann::json;

constexpr uint64_t kMiB = 1u << 20;

using testing::manifest;

struct Answer {
  unsigned status = 0;
  std::string revision;  // Kh-Revision
  std::string body;
  std::string error;
};

// Sends `head` (request line and headers, no blank line) and then either `body` as given in
// chunks of `chunk` bytes (chunked) or `filler` bytes of 'x' (Content-Length), from a writer
// thread, while this thread reads the response: an early answer is read even if the upload is
// cut short, and no side holds a large body in memory.
Answer send(uint16_t port, const std::string& head, const std::string& body, size_t chunk,
            uint64_t filler = 0) {
  net::io_context ioc;
  tcp::socket socket(ioc);
  Answer out;
  beast::error_code ec;
  socket.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port), ec);
  if (ec) {
    out.error = ec.message();
    return out;
  }
  std::thread writer([&] {
    beast::error_code wec;
    if (filler > 0) {
      std::string h = head + "Content-Length: " + std::to_string(filler) + "\r\n\r\n";
      net::write(socket, net::buffer(h), wec);
      std::string piece(64 * 1024, 'x');
      for (uint64_t at = 0; at < filler && !wec; at += piece.size()) {
        net::write(socket, net::buffer(piece.data(), std::min<uint64_t>(piece.size(), filler - at)), wec);
      }
      return;
    }
    std::string h = head + "Transfer-Encoding: chunked\r\n\r\n";
    net::write(socket, net::buffer(h), wec);
    for (size_t at = 0; at < body.size() && !wec; at += chunk) {
      size_t len = std::min(chunk, body.size() - at);
      char size[32];
      int n = std::snprintf(size, sizeof size, "%zx\r\n", len);
      std::array<net::const_buffer, 3> framed{net::buffer(size, static_cast<size_t>(n)),
                                              net::buffer(body.data() + at, len), net::buffer("\r\n", 2)};
      net::write(socket, framed, wec);
    }
    if (!wec) net::write(socket, net::buffer("0\r\n\r\n", 5), wec);
  });
  beast::flat_buffer buffer;
  bhttp::response<bhttp::string_body> res;
  bhttp::read(socket, buffer, res, ec);
  if (ec) {
    out.error = ec.message();
  } else {
    out.status = res.result_int();
    out.revision = std::string(res["Kh-Revision"]);
    out.body = res.body();
  }
  beast::error_code ignored;
  socket.shutdown(tcp::socket::shutdown_both, ignored);
  writer.join();
  return out;
}

using testing::peakRss;
using testing::resetPeakRss;

class RefstackStreaming : public ::testing::Test {
 protected:
  void SetUp() override {
    config_ = testing::refstackTestConfig("refstack-streaming", /*serverless=*/false);
    auto s = Refstack::start(config_, time_);
    ASSERT_TRUE(s.ok()) << s.status();
    stack_ = std::move(*s);
    ASSERT_TRUE(stack_->apply(manifest("xgboost-iris.yaml"), "xgboost-iris.yaml").ok());
    auto ready = stack_->waitForEvent(
        0, testing::eventWhere<events::StatusChanged>([](const auto& s) { return s.ready; }), 30s);
    ASSERT_TRUE(ready.has_value()) << testing::dumpEvents(stack_->events(0));
  }

  common::RealTimeSource time_;
  Config config_;
  std::unique_ptr<Refstack> stack_;
};

const char* kHost = "xgboost-iris-default.example.com";

TEST_F(RefstackStreaming, ABodyOverThePodsLimitIsRelayedAndThePodAnswers413) {
  // 40 MiB: above the modelserver's 32 MiB limit and the ingress's own max_body_bytes (the same
  // default). An ingress that refused it would answer 413 itself, without Kh-Revision.
  std::string head = std::string("POST /v1/models/xgboost-iris:predict HTTP/1.1\r\nHost: ") + kHost +
                     "\r\nContent-Type: application/json\r\n";
  auto r = send(stack_->ingressPort(), head, "", 0, 40 * kMiB);
  ASSERT_EQ(r.error, "");
  EXPECT_EQ(r.status, 413u) << r.body;
  EXPECT_NE(r.body.find("exceeds the limit of 33554432 bytes"), std::string::npos) << r.body;
  EXPECT_EQ(r.revision, "xgboost-iris-predictor-00001");
}

TEST_F(RefstackStreaming, IngressMemoryDoesNotFollowTheBodySize) {
  // 30 MiB the modelserver reads whole (then refuses as JSON): it all passes the ingress, which
  // runs in this process, so the peak RSS of this process bounds what the ingress held.
  std::string head = std::string("POST /v1/models/xgboost-iris:predict HTTP/1.1\r\nHost: ") + kHost +
                     "\r\nContent-Type: application/json\r\n";
  send(stack_->ingressPort(), head, "", 0, 2 * kMiB);  // warm-up: allocator arenas, threads
  resetPeakRss();
  int64_t before = peakRss();
  auto t0 = std::chrono::steady_clock::now();
  auto r = send(stack_->ingressPort(), head, "", 0, 30 * kMiB);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  int64_t growth = peakRss() - before;
  ASSERT_EQ(r.error, "");
  EXPECT_EQ(r.status, 400u) << r.body;
  EXPECT_EQ(r.revision, "xgboost-iris-predictor-00001");
  std::printf("30 MiB through the ingress to the modelserver: %.0f MiB/s; peak RSS growth %.1f MiB\n",
              30 / seconds, static_cast<double>(growth) / kMiB);
  EXPECT_LT(growth, static_cast<int64_t>(16 * kMiB));
}

TEST_F(RefstackStreaming, AChunkedV2InferRequestIsServed) {
  std::string head = std::string("POST /v2/models/xgboost-iris/infer HTTP/1.1\r\nHost: ") + kHost +
                     "\r\nContent-Type: application/json\r\n";
  std::string body =
      R"({"inputs":[{"name":"input-0","shape":[2,4],"datatype":"FP32","data":[[6.8,2.8,4.8,1.4],[6.0,3.4,4.5,1.6]]}]})";
  auto r = send(stack_->ingressPort(), head, body, 7);  // many small chunks
  ASSERT_EQ(r.error, "");
  EXPECT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.revision, "xgboost-iris-predictor-00001");
  EXPECT_NE(r.body.find("\"outputs\""), std::string::npos) << r.body;
  // An unknown host is answered by the ingress itself, body unread, and nothing hangs.
  auto unknown = send(stack_->ingressPort(),
                      "POST /v2/models/x/infer HTTP/1.1\r\nHost: nobody-default.example.com\r\n", body, 64);
  EXPECT_EQ(unknown.status, 404u) << unknown.error;
}

// With a queue-proxy and scale to zero: a streamed request that finds no pod is held by the
// activator (its body still in the socket) and goes out once a pod is ready.
TEST(RefstackStreamingServerless, AStreamedRequestAtZeroPodsWaitsForTheActivator) {
  Config config = testing::refstackTestConfig("refstack-streaming", /*serverless=*/true);
  common::RealTimeSource time;
  auto started = Refstack::start(config, time);
  ASSERT_TRUE(started.ok()) << started.status();
  auto& stack = *started;
  const std::string revision = "iris-zero-predictor-00001";
  ASSERT_TRUE(stack->apply("apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata:\n"
                           "  name: iris-zero\n  annotations:\n    autoscaling.knative.dev/window: \"6s\"\n"
                           "spec:\n  predictor:\n    minReplicas: 0\n    model:\n"
                           "      modelFormat: {name: xgboost}\n"
                           "      storageUri: file://reference-impl/models/xgboost-iris\n",
                           "zero")
                  .ok());
  // Scaled to zero: the pod stops once the window has seen no traffic.
  auto stopped = stack->waitForEvent(0, testing::eventWhere<events::PodPhaseChanged>(
      [&](const auto& p) { return p.phase == "Stopped" && p.revision == revision; }), 60s);
  ASSERT_TRUE(stopped.has_value()) << testing::dumpEvents(stack->events(0));
  int64_t seq = stopped->seq;
  std::string head = "POST /v2/models/iris-zero/infer HTTP/1.1\r\nHost: iris-zero-default.example.com\r\n"
                     "Content-Type: application/json\r\n";
  std::string body =
      R"({"inputs":[{"name":"input-0","shape":[1,4],"datatype":"FP32","data":[6.8,2.8,4.8,1.4]}]})";
  auto r = send(stack->ingressPort(), head, body, 16);
  ASSERT_EQ(r.error, "");
  EXPECT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.revision, revision);
  auto cold = stack->waitForEvent(seq, testing::eventOf<events::ColdStart>(), 10s);
  EXPECT_TRUE(cold.has_value()) << testing::dumpEvents(stack->events(seq));
}

}  // namespace
}  // namespace kh::refstack
