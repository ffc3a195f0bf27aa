// Streamed request bodies: the server hands large and chunked bodies to the handler unread
// (beyond max_body_bytes), a dropped exchange still answers, stalls time out; relayStreamed
// forwards both ways in bounded pieces, keeping the framing, with bounded memory.

#include "kh/http/stream_relay.h"

#include <array>
#include <chrono>
#include <cstdio>
#include <sstream>
#include <fstream>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "boost/asio/connect.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/write.hpp"
#include "boost/beast/core/flat_buffer.hpp"
#include "boost/beast/http/buffer_body.hpp"
#include "boost/beast/http/error.hpp"
#include "boost/beast/http/parser.hpp"
#include "boost/beast/http/read.hpp"
#include "boost/beast/http/write.hpp"
#include "gtest/gtest.h"
#include "kh/http/client.h"
#include "kh/http/server.h"
#include "support/process_memory.h"

namespace kh::http {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;

constexpr uint64_t kMiB = 1u << 20;

// The body bytes: position-dependent, so a lost, repeated or reordered piece changes the digest.
char patternByte(uint64_t i) { return static_cast<char>((i * 131 + (i >> 13)) & 0xff); }

struct Digest {
  uint64_t bytes = 0;
  uint64_t fnv = 1469598103934665603ull;
  void add(const char* data, size_t n) {
    for (size_t i = 0; i < n; ++i) {
      fnv = (fnv ^ static_cast<unsigned char>(data[i])) * 1099511628211ull;
    }
    bytes += n;
  }
};

Digest patternDigest(uint64_t n) {
  Digest d;
  std::vector<char> piece(64 * 1024);
  for (uint64_t at = 0; at < n;) {
    size_t len = static_cast<size_t>(std::min<uint64_t>(piece.size(), n - at));
    for (size_t i = 0; i < len; ++i) piece[i] = patternByte(at + i);
    d.add(piece.data(), len);
    at += len;
  }
  return d;
}

std::string digestJson(const Digest& d) {
  return "{\"bytes\":" + std::to_string(d.bytes) + ",\"fnv\":" + std::to_string(d.fnv) + "}";
}

// Test handler. Streamed: /digest reads the body in 64 KiB pieces and replies with its digest;
// /echo sends the body back as it arrives (a chunked response); /drop drops the exchange.
// Whole requests (small bodies) answer their length.
class StreamingHandler final : public Handler {
 public:
  void handle(Request& request, Response& response) override {
    response.result(200);
    response.body() = "whole " + std::to_string(request.body().size());
  }
  bool streamsBody(const RequestHeader& header) override { return header.target() != "/whole"; }
  void handleStreamed(StreamedRequestPtr request) override {
    if (request->header().target() == "/drop") return;
    auto op = std::make_shared<Op>(std::move(request));
    op->req->buffer().reserve(64 * 1024);  // reads are bounded by its free capacity
    op->echo = op->req->header().target() == "/echo";
    if (op->echo) {
      op->req->startResponse();
      static constexpr std::string_view kHead =
          "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
      net::async_write(op->req->socket(), net::buffer(kHead.data(), kHead.size()),
                       [op](beast::error_code ec, size_t) {
                         if (!ec) op->read();
                       });
      return;
    }
    op->read();
  }

 private:
  struct Op : std::enable_shared_from_this<Op> {
    explicit Op(StreamedRequestPtr r) : req(std::move(r)), piece(64 * 1024) {}
    StreamedRequestPtr req;
    std::vector<char> piece;
    std::string frame;
    Digest digest;
    bool echo = false;

    void read() {
      auto& p = req->parser();
      if (p.is_done()) return finish();
      p.get().body().data = piece.data();
      p.get().body().size = piece.size();
      bhttp::async_read_some(req->socket(), req->buffer(), p,
                             [self = shared_from_this()](beast::error_code ec, size_t) {
                               if (ec == bhttp::error::need_buffer) ec = {};
                               if (ec) return self->fail();
                               self->req->progress();
                               size_t n = self->piece.size() - self->req->parser().get().body().size;
                               self->digest.add(self->piece.data(), n);
                               if (!self->echo || n == 0) return self->read();
                               char size[32];
                               int len = std::snprintf(size, sizeof size, "%zx\r\n", n);
                               self->frame.assign(size, static_cast<size_t>(len));
                               std::array<net::const_buffer, 3> out{
                                   net::buffer(self->frame), net::buffer(self->piece.data(), n),
                                   net::buffer("\r\n", 2)};
                               net::async_write(self->req->socket(), out,
                                                [self](beast::error_code ec, size_t) {
                                                  if (!ec) self->read();
                                                });
                             });
    }
    void fail() {
      if (req->responseStarted()) return;
      Response res;
      res.result(req->timedOut() ? 408 : 400);
      res.body() = R"({"error":"reading the body failed"})";
      req->reply(std::move(res));
    }
    void finish() {
      if (echo) {
        net::async_write(req->socket(), net::buffer("0\r\n\r\n", 5),
                         [self = shared_from_this()](beast::error_code, size_t) {});
        return;
      }
      Response res;
      res.result(200);
      res.set(bhttp::field::content_type, "application/json");
      res.body() = digestJson(digest);
      req->reply(std::move(res));
    }
  };
};

// Relays every streamed request to `port` (the relay under test).
class RelayHandler final : public Handler {
 public:
  explicit RelayHandler(uint16_t port) : port_(port) {}
  void handle(Request&, Response& response) override { response.result(200); }
  bool streamsBody(const RequestHeader&) override { return true; }
  void handleStreamed(StreamedRequestPtr request) override {
    StreamRelayOptions options;
    options.port = port_;
    options.deadline = std::chrono::steady_clock::now() + 60s;
    relayStreamed(std::move(request), options,
                  [](ResponseHeader& h) { h.set("Kh-Relayed", "yes"); },
                  [](StreamRelayResult&&) {});
  }

 private:
  uint16_t port_;
};

struct StreamedResponse {
  unsigned status = 0;
  std::string head;      // the response header as received
  std::string start;     // the first bytes of the body
  Digest digest;
  bool chunked = false;
  std::optional<uint64_t> content_length;
  std::string error;
};

// Sends a request of `body_bytes` pattern bytes, framed by Content-Length or chunked (pieces of
// odd sizes), from a writer thread while this thread reads the response piece by piece: neither
// side holds the whole body, and an early answer is read even when the upload is cut short.
StreamedResponse sendStreamed(uint16_t port, const std::string& target, uint64_t body_bytes,
                              bool chunked, bool stall_after_header = false,
                              const std::string& extra_headers = "") {
  net::io_context ioc;
  tcp::socket socket(ioc);
  StreamedResponse out;
  beast::error_code ec;
  socket.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port), ec);
  if (ec) {
    out.error = "connect: " + ec.message();
    return out;
  }
  std::string head = "POST " + target + " HTTP/1.1\r\nHost: test.example.com\r\n" + extra_headers;
  head += chunked ? "Transfer-Encoding: chunked\r\n"
                  : "Content-Length: " + std::to_string(body_bytes) + "\r\n";
  head += "\r\n";
  std::thread writer([&] {
    beast::error_code wec;
    net::write(socket, net::buffer(head), wec);
    if (wec || stall_after_header) return;
    std::vector<char> piece(100'003);
    for (uint64_t at = 0; at < body_bytes && !wec;) {
      size_t len = static_cast<size_t>(std::min<uint64_t>(piece.size(), body_bytes - at));
      for (size_t i = 0; i < len; ++i) piece[i] = patternByte(at + i);
      if (chunked) {
        char size[32];
        int n = std::snprintf(size, sizeof size, "%zx\r\n", len);
        std::array<net::const_buffer, 3> framed{net::buffer(size, static_cast<size_t>(n)),
                                                net::buffer(piece.data(), len),
                                                net::buffer("\r\n", 2)};
        net::write(socket, framed, wec);
      } else {
        net::write(socket, net::buffer(piece.data(), len), wec);
      }
      at += len;
    }
    if (chunked && !wec) net::write(socket, net::buffer("0\r\n\r\n", 5), wec);
  });
  beast::flat_buffer buffer;
  buffer.reserve(64 * 1024);
  bhttp::response_parser<bhttp::buffer_body> parser;
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  bhttp::read_header(socket, buffer, parser, ec);
  if (!ec) {
    out.status = parser.get().result_int();
    std::ostringstream h;
    h << parser.get().base();
    out.head = h.str();
    out.chunked = parser.chunked();
    if (auto length = parser.content_length()) out.content_length = *length;
    std::vector<char> piece(64 * 1024);
    while (!parser.is_done()) {
      parser.get().body().data = piece.data();
      parser.get().body().size = piece.size();
      bhttp::read(socket, buffer, parser, ec);
      if (ec == bhttp::error::need_buffer) ec = {};
      if (ec) break;
      size_t n = piece.size() - parser.get().body().size;
      if (out.start.size() < 4096) out.start.append(piece.data(), std::min<size_t>(n, 4096));
      out.digest.add(piece.data(), n);
    }
  }
  if (ec) out.error = ec.message();
  // The response is in: stop an upload the server no longer reads.
  beast::error_code ignored;
  socket.shutdown(tcp::socket::shutdown_both, ignored);
  writer.join();
  return out;
}

std::unique_ptr<HttpServer> startServer(Handler& handler, ServerOptions options = {}) {
  auto server = HttpServer::create(options, handler);
  EXPECT_TRUE(server.ok()) << server.status();
  (*server)->start();
  return std::move(*server);
}

using testing::peakRss;
using testing::resetPeakRss;

TEST(StreamedRequest, ContentLengthBodyBeyondTheLimitIsStreamedByteExact) {
  StreamingHandler handler;
  ServerOptions options;
  options.max_body_bytes = 1 * kMiB;
  auto server = startServer(handler, options);
  const uint64_t n = 100 * kMiB;
  auto r = sendStreamed(server->port(), "/digest", n, false);
  ASSERT_EQ(r.error, "") << r.status << " " << r.head << r.start;
  EXPECT_EQ(r.status, 200u) << r.start;
  EXPECT_EQ(r.start, digestJson(patternDigest(n)));
  // A body above the threshold the handler declines is still refused by the limit.
  Client c("127.0.0.1", server->port());
  auto whole = c.request("POST", "/whole", std::string(2 * kMiB, 'x'));
  ASSERT_TRUE(whole.ok()) << whole.status();
  EXPECT_EQ(whole->result_int(), 413u);
  server->drain(1s);
}

TEST(StreamedRequest, ChunkedBodyIsStreamedByteExact) {
  StreamingHandler handler;
  auto server = startServer(handler);
  const uint64_t n = 100 * kMiB + 12345;
  auto r = sendStreamed(server->port(), "/digest", n, true);
  ASSERT_EQ(r.error, "") << r.status << " " << r.head << r.start;
  EXPECT_EQ(r.status, 200u) << r.start;
  EXPECT_EQ(r.start, digestJson(patternDigest(n)));
  server->drain(1s);
}

TEST(StreamedRequest, AHandlerCanAnswerAsTheBodyArrives) {
  StreamingHandler handler;
  auto server = startServer(handler);
  const uint64_t n = 20 * kMiB + 1;
  auto r = sendStreamed(server->port(), "/echo", n, false);
  ASSERT_EQ(r.error, "") << r.status << " " << r.head << r.start;
  EXPECT_EQ(r.status, 200u) << r.head;
  Digest want = patternDigest(n);
  EXPECT_EQ(r.digest.bytes, want.bytes) << r.head;
  EXPECT_EQ(r.digest.fnv, want.fnv);
  server->drain(1s);
}

TEST(StreamedRequest, ExpectContinueIsAnsweredBeforeTheBody) {
  StreamingHandler handler;
  auto server = startServer(handler);
  // The 100 comes first; the parser of the test client skips nothing, so read it raw.
  auto r = sendStreamed(server->port(), "/digest", 2 * kMiB, false, false,
                        "Expect: 100-continue\r\n");
  ASSERT_EQ(r.error, "") << r.status << " " << r.head << r.start;
  EXPECT_EQ(r.status, 100u);
  server->drain(1s);
}

TEST(StreamedRequest, ADroppedExchangeAnswers500AndTheServerKeepsServing) {
  StreamingHandler handler;
  auto server = startServer(handler);
  auto r = sendStreamed(server->port(), "/drop", 4 * kMiB, false);
  ASSERT_EQ(r.error, "") << r.status << " " << r.head << r.start;
  EXPECT_EQ(r.status, 500u);
  EXPECT_NE(r.start.find("\"error\""), std::string::npos) << r.start;
  auto chunked = sendStreamed(server->port(), "/drop", 10, true);
  EXPECT_EQ(chunked.status, 500u);
  Client c("127.0.0.1", server->port());
  auto next = c.request("POST", "/whole", "abc");
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->body(), "whole 3");
  auto again = sendStreamed(server->port(), "/digest", 3 * kMiB, false);
  EXPECT_EQ(again.start, digestJson(patternDigest(3 * kMiB)));
  server->drain(1s);
}

TEST(StreamedRequest, AStalledBodyTimesOut) {
  StreamingHandler handler;
  ServerOptions options;
  options.body_timeout = 300ms;
  auto server = startServer(handler, options);
  auto r = sendStreamed(server->port(), "/digest", 10 * kMiB, false, /*stall_after_header=*/true);
  EXPECT_EQ(r.status, 408u) << r.error;
  server->drain(1s);
}

class RelayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    upstream_ = startServer(upstream_handler_);
    relay_handler_ = std::make_unique<RelayHandler>(upstream_->port());
    front_ = startServer(*relay_handler_);
  }
  void TearDown() override {
    front_->drain(1s);
    upstream_->drain(1s);
  }
  StreamingHandler upstream_handler_;
  std::unique_ptr<HttpServer> upstream_;
  std::unique_ptr<RelayHandler> relay_handler_;
  std::unique_ptr<HttpServer> front_;
};

TEST_F(RelayTest, ContentLengthRequestAndChunkedResponseAreRelayedByteExact) {
  const uint64_t n = 100 * kMiB;
  auto r = sendStreamed(front_->port(), "/echo", n, false);
  ASSERT_EQ(r.error, "") << r.status << " " << r.head << r.start;
  EXPECT_EQ(r.status, 200u);
  EXPECT_TRUE(r.chunked);
  EXPECT_NE(r.head.find("Kh-Relayed: yes"), std::string::npos) << r.head;
  EXPECT_NE(r.head.find("Connection: close"), std::string::npos) << r.head;
  Digest want = patternDigest(n);
  EXPECT_EQ(r.digest.bytes, want.bytes);
  EXPECT_EQ(r.digest.fnv, want.fnv);
  // The digest answer has a Content-Length, which is kept.
  auto d = sendStreamed(front_->port(), "/digest", n, false);
  EXPECT_EQ(d.start, digestJson(want));
  EXPECT_EQ(d.content_length, digestJson(want).size());
}

TEST_F(RelayTest, ChunkedRequestIsRelayedByteExact) {
  const uint64_t n = 100 * kMiB + 7;
  auto r = sendStreamed(front_->port(), "/echo", n, true);
  ASSERT_EQ(r.error, "") << r.status << " " << r.head << r.start;
  EXPECT_EQ(r.status, 200u);
  Digest want = patternDigest(n);
  EXPECT_EQ(r.digest.bytes, want.bytes) << r.head;
  EXPECT_EQ(r.digest.fnv, want.fnv);
}

TEST_F(RelayTest, AnEarlyAnswerOfTheUpstreamReachesTheClient) {
  // An upstream that refuses the body from its Content-Length (413) before reading it.
  class Whole final : public Handler {
    void handle(Request&, Response& response) override { response.result(200); }
  } refuse;
  ServerOptions options;
  options.max_body_bytes = 1 * kMiB;
  auto small = startServer(refuse, options);
  RelayHandler to_small(small->port());
  auto front = startServer(to_small);
  auto r = sendStreamed(front->port(), "/x", 20 * kMiB, false);
  EXPECT_EQ(r.status, 413u) << r.error;
  EXPECT_NE(r.start.find("exceeds the limit"), std::string::npos) << r.start;
  front->drain(1s);
  small->drain(1s);
}

TEST_F(RelayTest, AnUnreachableUpstreamAnswers502) {
  uint16_t closed_port;
  {
    net::io_context ioc;
    tcp::acceptor a(ioc, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
    closed_port = a.local_endpoint().port();
  }
  RelayHandler to_nowhere(closed_port);
  auto front = startServer(to_nowhere);
  auto r = sendStreamed(front->port(), "/x", 2 * kMiB, false);
  EXPECT_EQ(r.status, 502u) << r.error;
  EXPECT_NE(r.start.find("cannot connect"), std::string::npos) << r.start;
  front->drain(1s);
}

TEST_F(RelayTest, MemoryDoesNotGrowWithTheBody) {
  // Warm up (allocator arenas, thread stacks), then measure the peak over a 200 MiB exchange
  // through relay and echo (both servers and the client are in this process).
  sendStreamed(front_->port(), "/echo", 4 * kMiB, false);
  resetPeakRss();
  int64_t before = peakRss();
  ASSERT_GT(before, 0);
  const uint64_t n = 200 * kMiB;
  auto t0 = std::chrono::steady_clock::now();
  auto r = sendStreamed(front_->port(), "/echo", n, false);
  double relayed_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  int64_t growth = peakRss() - before;
  ASSERT_EQ(r.digest.bytes, n);
  t0 = std::chrono::steady_clock::now();
  auto direct = sendStreamed(upstream_->port(), "/echo", n, false);
  double direct_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_EQ(direct.digest.bytes, n);
  std::printf("200 MiB echo: via relay %.0f MiB/s, direct %.0f MiB/s; peak RSS growth %.1f MiB\n",
              200 / relayed_s, 200 / direct_s, static_cast<double>(growth) / kMiB);
  EXPECT_LT(growth, static_cast<int64_t>(24 * kMiB));
}

}  // namespace
}  // namespace kh::http
