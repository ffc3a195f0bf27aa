#pragma once
// A blocking HTTP/1.1 client with a deadline on every call and keep-alive reuse, for the harness
// (conformance runs, probes) and tests. Not for load generation: that has its own async engine.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "kh/http/server.h"

namespace kh::http {

class Client {
 public:
  Client(std::string host, uint16_t port,
         std::chrono::milliseconds timeout = std::chrono::milliseconds(10'000));
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  /**
   * Sends `request` (Host, Content-Length filled in when missing) and reads the response. Reuses
   * the connection; one that the server closed meanwhile is reopened once, transparently.
   * @return Unavailable when the server cannot be reached, DeadlineExceeded on timeout.
   */
  absl::StatusOr<Response> send(Request request);

  /** Convenience: method + target + optional body and content type. */
  absl::StatusOr<Response> request(std::string_view method, std::string_view target,
                                   std::string body = {},
                                   std::string_view content_type = "application/json");

  /**
   * Writes `bytes` verbatim on a fresh connection and reads one response (for malformed-request
   * tests). With `half_close`, shuts down the sending side after writing.
   */
  absl::StatusOr<Response> sendRaw(std::string_view bytes, bool half_close = false);

  /** Drops the kept-alive connection. */
  void disconnect();

  const std::string& host() const { return host_; }
  uint16_t port() const { return port_; }

 private:
  struct Impl;
  std::string host_;
  uint16_t port_;
  std::chrono::milliseconds timeout_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kh::http
