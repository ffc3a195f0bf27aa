// Limits against abuse, over raw sockets: slow headers and bodies are cut at their timeouts while
// others are served, the listener's connection limit refuses clearly, header count and size
// limits, oversized and malformed chunked bodies, and request smuggling attempts (conflicting
// framing, a bare LF) get 400 and a closed connection.

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "kh/http/server.h"

namespace kh::http {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Answers with the body's size; a chunked request to /stream is taken as a stream and answered
// without reading its body (what a proxy's relay would start).
class Echo final : public Handler {
 public:
  void handle(Request& req, Response& res) override {
    res.result(200);
    res.body() = "got " + std::to_string(req.body().size());
  }
  bool streamsBody(const RequestHeader& header) override { return header.target() == "/stream"; }
  void handleStreamed(StreamedRequestPtr request) override {
    Response res;
    res.result(200);
    res.body() = "streamed";
    request->reply(std::move(res));
  }
};

class Server {
 public:
  explicit Server(ServerOptions options) {
    auto created = HttpServer::create(options, handler_);
    EXPECT_TRUE(created.ok()) << created.status();
    server_ = std::move(*created);
    server_->start();
  }
  uint16_t port() const { return server_->port(); }

 private:
  Echo handler_;
  std::unique_ptr<HttpServer> server_;
};

// A client socket: connect, send, and read until the server closes (or a deadline).
class Conn {
 public:
  explicit Conn(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~Conn() { close(); }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  bool connected() const { return connected_; }
  bool send(std::string_view bytes) {
    return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size());
  }
  // Reads until `stop` says the bytes so far are enough, the server closes, or the deadline.
  template <typename Stop>
  std::string readUntil(Stop stop, std::chrono::milliseconds timeout = 5s) {
    std::string got;
    auto deadline = Clock::now() + timeout;
    while (!stop(got)) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left <= 0ms) break;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
      char buf[4096];
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) {
        closed_by_peer_ = true;
        break;
      }
      got.append(buf, static_cast<size_t>(n));
    }
    return got;
  }
  std::string readToClose(std::chrono::milliseconds timeout = 5s) {
    return readUntil([](const std::string&) { return false; }, timeout);
  }
  // One whole response with a Content-Length body, the connection left open.
  std::string readResponse() {
    return readUntil([](const std::string& s) {
      auto end = s.find("\r\n\r\n");
      if (end == std::string::npos) return false;
      auto cl = s.find("Content-Length: ");
      if (cl == std::string::npos || cl > end) return true;
      return s.size() >= end + 4 + std::stoul(s.substr(cl + 16));
    });
  }
  bool closedByPeer() const { return closed_by_peer_; }

 private:
  int fd_ = -1;
  bool connected_ = false;
  bool closed_by_peer_ = false;
};

std::string statusLine(const std::string& response) { return response.substr(0, response.find("\r\n")); }

// The bytes get one answer, with `status`, and the server closes the connection after it.
void expectRefusedAndClosed(uint16_t port, const std::string& bytes, const std::string& status) {
  Conn c(port);
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.send(bytes));
  std::string got = c.readToClose();
  EXPECT_EQ(statusLine(got), "HTTP/1.1 " + status) << bytes << "\n--- got:\n" << got;
  EXPECT_TRUE(c.closedByPeer()) << bytes;
  EXPECT_NE(got.find("\"error\""), std::string::npos) << got;  // the protocol's JSON error
}

TEST(Limits, HeaderFieldsOverTheCountGet431) {
  ServerOptions options;
  options.max_header_count = 10;
  Server server(options);
  auto request = [](int extra) {
    std::string r = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n";
    for (int i = 0; i < extra; ++i) r += "X-Field-" + std::to_string(i) + ": v\r\n";
    return r + "\r\n";
  };
  Conn at_limit(server.port());
  ASSERT_TRUE(at_limit.send(request(8)));  // 10 fields
  EXPECT_EQ(statusLine(at_limit.readToClose()), "HTTP/1.1 200 OK");
  expectRefusedAndClosed(server.port(), request(9), "431 Request Header Fields Too Large");
  // A request whose body would be streamed has the same limit.
  std::string streamed = "POST /stream HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n";
  for (int i = 0; i < 9; ++i) streamed += "X-Field-" + std::to_string(i) + ": v\r\n";
  expectRefusedAndClosed(server.port(), streamed + "\r\n3\r\nabc\r\n0\r\n\r\n",
                         "431 Request Header Fields Too Large");
}

TEST(Limits, HeadersOverTheSizeGet431) {
  ServerOptions options;
  options.max_header_bytes = 1024;
  Server server(options);
  expectRefusedAndClosed(server.port(),
                         "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(2000, 'a') + "\r\n\r\n",
                         "431 Request Header Fields Too Large");
}

TEST(Limits, SmugglingAttemptsGet400AndTheConnectionCloses) {
  Server server(ServerOptions{});
  // Content-Length and Transfer-Encoding together (RFC 9112 6.3: a server ought to treat it as
  // an error and close).
  expectRefusedAndClosed(server.port(),
                         "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
                         "0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
                         "400 Bad Request");
  // Two Content-Length values that differ.
  expectRefusedAndClosed(server.port(),
                         "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 7\r\n\r\nabcdefg",
                         "400 Bad Request");
  // A transfer coding other than chunked last: the body's length cannot be known.
  expectRefusedAndClosed(server.port(), "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nabc",
                         "400 Bad Request");
  // A bare LF ending the lines.
  expectRefusedAndClosed(server.port(), "GET / HTTP/1.1\nHost: x\n\n", "400 Bad Request");
  // The same server still answers a well-formed request.
  Conn ok(server.port());
  ASSERT_TRUE(ok.send("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  EXPECT_EQ(statusLine(ok.readToClose()), "HTTP/1.1 200 OK");
}

TEST(Limits, ChunkedBodiesOverTheLimitGet413AndMalformedOnes400) {
  ServerOptions options;
  options.max_body_bytes = 1024;
  Server server(options);
  std::string chunk(800, 'a');
  expectRefusedAndClosed(server.port(),
                         "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n320\r\n" + chunk +
                             "\r\n320\r\n" + chunk + "\r\n0\r\n\r\n",
                         "413 Payload Too Large");
  expectRefusedAndClosed(server.port(),
                         "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
                         "400 Bad Request");
  // Within the limit, a chunked body arrives whole.
  Conn ok(server.port());
  ASSERT_TRUE(ok.send("POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"));
  std::string got = ok.readToClose();
  EXPECT_EQ(statusLine(got), "HTTP/1.1 200 OK");
  EXPECT_NE(got.find("got 5"), std::string::npos) << got;
}

// Slowloris: a client trickling its headers (or its body) a byte at a time is cut when the
// header (body) timeout passes, counted from the first byte, not from the last; other clients
// are served meanwhile.
TEST(Limits, SlowHeadersAndBodiesAreCutAtTheirTimeoutsWhileOthersAreServed) {
  ServerOptions options;
  options.header_timeout = 300ms;
  options.body_timeout = 300ms;
  Server server(options);
  for (bool body : {false, true}) {
    Conn slow(server.port());
    ASSERT_TRUE(slow.connected());
    std::atomic<bool> stop{false};
    std::string head = body ? "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" : "GET / HTTP/1.1\r\n";
    ASSERT_TRUE(slow.send(head));
    auto started = Clock::now();
    // The attack itself: a byte every 20 ms, each well within any per-read timeout.
    std::thread trickle([&] {
      for (int i = 0; i < 250 && !stop; ++i) {
        if (!slow.send(body ? "a" : "X")) break;
        std::this_thread::sleep_for(20ms);
      }
    });
    Conn other(server.port());
    ASSERT_TRUE(other.send("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    EXPECT_EQ(statusLine(other.readToClose()), "HTTP/1.1 200 OK");
    std::string got = slow.readToClose(4s);
    auto took = Clock::now() - started;
    stop = true;
    trickle.join();
    EXPECT_EQ(statusLine(got), "HTTP/1.1 408 Request Timeout") << (body ? "body" : "headers") << ": " << got;
    EXPECT_TRUE(slow.closedByPeer());
    EXPECT_LT(took, 3s) << "cut long after its timeout: " << (body ? "body" : "headers");
  }
}

TEST(Limits, ConnectionsOverTheLimitGet503AndTheRestAreServed) {
  ServerOptions options;
  options.max_connections = 2;
  Server server(options);
  const std::string keep_alive = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  Conn a(server.port()), b(server.port());
  ASSERT_TRUE(a.send(keep_alive));
  ASSERT_TRUE(b.send(keep_alive));
  EXPECT_EQ(statusLine(a.readResponse()), "HTTP/1.1 200 OK");
  EXPECT_EQ(statusLine(b.readResponse()), "HTTP/1.1 200 OK");
  // Both are open and served: a third is over the limit.
  Conn over(server.port());
  ASSERT_TRUE(over.send(keep_alive));
  std::string refused = over.readToClose();
  EXPECT_EQ(statusLine(refused), "HTTP/1.1 503 Service Unavailable") << refused;
  EXPECT_NE(refused.find("limit"), std::string::npos) << refused;
  EXPECT_TRUE(over.closedByPeer());
  // The open ones are unaffected.
  ASSERT_TRUE(a.send(keep_alive));
  EXPECT_EQ(statusLine(a.readResponse()), "HTTP/1.1 200 OK");
  // Once one closes, a new connection is served (the server sees the close asynchronously).
  b.close();
  std::string served;
  for (auto deadline = Clock::now() + 5s; Clock::now() < deadline;) {
    Conn next(server.port());
    ASSERT_TRUE(next.send("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    served = statusLine(next.readToClose());
    if (served == "HTTP/1.1 200 OK") break;
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(served, "HTTP/1.1 200 OK");
}

}  // namespace
}  // namespace kh::http
