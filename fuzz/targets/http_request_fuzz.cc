// The HTTP request path of kh::http: bytes in, the server answers. One server runs for the whole
// fuzzing session on a loopback port (an echo handler, short timeouts); each input is written on
// a fresh connection, the write side closed, and everything the server sends read until it
// closes. Properties: whatever the server sends is an HTTP/1.1 response, it never keeps a
// connection open past its timeouts once the client has nothing more to send, and it keeps
// serving (a well-formed request on a new connection is answered 200).
//
// The serving probe runs after the first input and then after every 16th, not after each: it
// was half the cost of an execution (a second connection), and a server that stopped accepting
// or whose worker is stuck already fails the next input's own exchange (its connect lands in the
// backlog and nothing is ever read, so the 3 s receive timeout trips). What only the probe sees
// is a server that still answers but no longer answers well-formed requests with 200.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>

#include "fuzz_util.h"
#include "kh/http/server.h"

namespace {

class EchoHandler final : public kh::http::Handler {
 public:
  void handle(kh::http::Request& request, kh::http::Response& response) override {
    response.result(boost::beast::http::status::ok);
    response.set(boost::beast::http::field::content_type, "text/plain");
    response.body() = std::to_string(request.body().size());
  }
};

uint16_t serverPort() {
  static EchoHandler handler;
  static std::unique_ptr<kh::http::HttpServer> server = [] {
    kh::http::ServerOptions o;
    o.max_body_bytes = 64 * 1024;
    o.max_header_bytes = 4 * 1024;
    o.header_timeout = std::chrono::milliseconds(500);
    o.body_timeout = std::chrono::milliseconds(500);
    o.idle_timeout = std::chrono::milliseconds(500);
    auto s = kh::http::HttpServer::create(o, handler);
    KH_FUZZ_CHECK(s.ok(), "the server could not listen on 127.0.0.1");
    (*s)->start();
    return std::move(*s);
  }();
  return server->port();
}

// Sends `bytes` on a new connection, closes the write side, returns all that came back.
//
// libFuzzer's -timeout sets an interval timer, and its SIGALRM makes a blocking call on a socket
// with a timeout fail with EINTR (signal(7): such calls are never restarted). That is not the
// server's doing, so every call here resumes after EINTR; the hang check is a deadline over the
// whole exchange. (Its first 10-million run stopped at 54,714 executions on exactly this.)
std::string exchange(const std::string& bytes) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::seconds(3);  // far beyond the server's 500 ms
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  KH_FUZZ_CHECK(fd >= 0, "socket");
  timeval tv{1, 0};  // one wait; the deadline above bounds them all
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(serverPort());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    // An interrupted connect goes on in the background; wait for it to finish.
    KH_FUZZ_CHECK(errno == EINTR, "connect");
    pollfd p{fd, POLLOUT, 0};
    while (poll(&p, 1, 3000) < 0 && errno == EINTR) {
    }
    int error = -1;
    socklen_t len = sizeof error;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len);
    KH_FUZZ_CHECK(error == 0, "connect");
  }
  size_t sent = 0;
  while (sent < bytes.size() && Clock::now() < deadline) {
    ssize_t n = send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) break;  // the server may close early (an error answered); that is fine
    sent += static_cast<size_t>(n);
  }
  shutdown(fd, SHUT_WR);
  std::string got;
  char buf[4096];
  while (true) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n > 0) {
      got.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EINTR || errno == EAGAIN) && Clock::now() < deadline) continue;
    KH_FUZZ_CHECK(n == 0 || errno == ECONNRESET, "the server kept the connection open past its timeouts");
    break;
  }
  close(fd);
  return got;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string got = exchange(std::string(reinterpret_cast<const char*>(data), size));
  KH_FUZZ_CHECK(got.empty() || got.rfind("HTTP/1.1 ", 0) == 0 || got.rfind("HTTP/1.0 ", 0) == 0,
                "the server sent something that is not an HTTP response");
  static uint64_t executions = 0;
  if (executions++ % 16 != 0) return 0;
  // Still serving.
  std::string ok = exchange("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  KH_FUZZ_CHECK(ok.rfind("HTTP/1.1 200", 0) == 0, "the server stopped answering well-formed requests");
  return 0;
}
