// The HTTP request path of kh::http: bytes in, the server answers. One server runs for the whole
// fuzzing session on a loopback port (an echo handler, short timeouts); each input is written on
// a fresh connection, the write side closed, and everything the server sends read until it
// closes. Properties: whatever the server sends is an HTTP/1.1 response, it never keeps a
// connection open past its timeouts once the client has nothing more to send, and it keeps
// serving (a well-formed request on a new connection is answered 200 after every input).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

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
std::string exchange(const std::string& bytes) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  KH_FUZZ_CHECK(fd >= 0, "socket");
  timeval tv{3, 0};  // far beyond the server's 500 ms timeouts: hitting it is a hang
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(serverPort());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  KH_FUZZ_CHECK(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0, "connect");
  size_t sent = 0;
  while (sent < bytes.size()) {
    ssize_t n = send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
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
  // Still serving.
  std::string ok = exchange("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  KH_FUZZ_CHECK(ok.rfind("HTTP/1.1 200", 0) == 0, "the server stopped answering well-formed requests");
  return 0;
}
