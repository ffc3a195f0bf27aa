#pragma once
// An asynchronous HTTP/1.1 client to ONE upstream (host:port), bound to one executor: the
// connection pool of a proxy worker (queue-proxy, ingress, activator). Modelled on Envoy's
// per-worker connection pools: one pool per upstream per worker thread, so the hot path takes
// no locks. Idle keep-alive connections are kept (up to a bound) and reused most recent first.
//
// Threading: every member function must be called on the pool's executor (for an HttpServer
// worker: from handleAsync() on worker Responder::workerIndex(), bound to
// HttpServer::workerExecutor()). Callbacks run on that executor too.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>

#include "absl/status/statusor.h"
#include "boost/asio/any_io_executor.hpp"
#include "kh/http/server.h"

namespace kh::http {

struct UpstreamPoolOptions {
  /** A numeric IP address ("localhost" is taken as 127.0.0.1): no DNS on the request path. */
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  /** Idle keep-alive connections kept for reuse; more are closed when they come back. */
  size_t max_idle_connections = 64;
  /** Bound on establishing a TCP connection (the request deadline bounds it too). */
  std::chrono::milliseconds connect_timeout{1'000};
  /** Responses with a larger body fail with ResourceExhausted. */
  size_t max_response_body_bytes = 64u << 20;
};

/**
 * The outcome of one send(). `bytes_were_sent` is false only when the request certainly never
 * left: no byte of it was written to any connection, so the caller may retry it elsewhere even if
 * it is not idempotent.
 */
using UpstreamResult = absl::StatusOr<Response>;

/**
 * A move-only completion callback (std::function needs copyable targets, and callers usually
 * capture a move-only Responder). Invoked exactly once, as f(result, bytes_were_sent), or as
 * f(result, bytes_were_sent, unsent) where the callable takes a third `Request*`: then `unsent`
 * is the request itself when no byte of it left (for a retry elsewhere without a copy made up
 * front; it may be moved from), else null.
 */
class UpstreamCallback {
 public:
  UpstreamCallback() = default;
  template <typename F>
    requires(!std::is_same_v<std::decay_t<F>, UpstreamCallback>)
  UpstreamCallback(F&& f)  // NOLINT: implicit, so lambdas convert at the call site
      : impl_(std::make_unique<Model<std::decay_t<F>>>(std::forward<F>(f))) {}
  UpstreamCallback(UpstreamCallback&&) = default;
  UpstreamCallback& operator=(UpstreamCallback&&) = default;

  void operator()(UpstreamResult&& result, bool bytes_were_sent, Request* unsent = nullptr) {
    impl_->call(std::move(result), bytes_were_sent, unsent);
  }
  explicit operator bool() const { return impl_ != nullptr; }

 private:
  struct Concept {
    virtual ~Concept() = default;
    virtual void call(UpstreamResult&& result, bool bytes_were_sent, Request* unsent) = 0;
  };
  template <typename F>
  struct Model final : Concept {
    explicit Model(F&& f) : fn(std::move(f)) {}
    explicit Model(const F& f) : fn(f) {}
    void call(UpstreamResult&& result, bool bytes_were_sent, Request* unsent) override {
      if constexpr (std::is_invocable_v<F&, UpstreamResult&&, bool, Request*>) {
        fn(std::move(result), bytes_were_sent, unsent);
      } else {
        fn(std::move(result), bytes_were_sent);
      }
    }
    F fn;
  };
  std::unique_ptr<Concept> impl_;
};

/** Counters for tests and debugging; read on the pool's executor. */
struct UpstreamPoolCounters {
  uint64_t connections_opened = 0;
  /** Requests sent on a connection that had served an earlier request (keep-alive hits). */
  uint64_t reuses = 0;
  /** Requests transparently re-sent on a fresh connection after a stale pooled one failed. */
  uint64_t stale_retries = 0;
};

class UpstreamPool {
 public:
  /**
   * Makes a pool for `options.host`:`options.port` whose I/O runs on `executor`. Connects
   * lazily, on the first send().
   * @return InvalidArgument when the host is not a numeric IP address.
   */
  static absl::StatusOr<std::unique_ptr<UpstreamPool>> create(boost::asio::any_io_executor executor,
                                                               UpstreamPoolOptions options);
  /**
   * Closes the idle connections. Requests in flight still complete (their state is kept alive
   * by the pending operations). Call on the executor's thread, or once it no longer runs.
   */
  ~UpstreamPool();
  UpstreamPool(const UpstreamPool&) = delete;
  UpstreamPool& operator=(const UpstreamPool&) = delete;

  /**
   * Sends `request` and reads the whole response, then calls `done` on the pool's executor.
   * The request goes as given, with three framing fixes: HTTP/1.1, Host filled in when missing,
   * Content-Length set when the request has no framing. A pooled connection found closed before
   * use is discarded; one that fails while the first byte is written (or, for GET/HEAD/OPTIONS,
   * before any response byte arrives) is retried once on a fresh connection.
   *
   * @param deadline bounds the whole exchange (connect + write + response).
   * @param done gets the response (any status code) or: Unavailable when the upstream cannot be
   *     reached or closed the connection, DeadlineExceeded when `deadline` passed,
   *     ResourceExhausted for an oversized response, Internal for a malformed one; and whether
   *     any request byte was written.
   */
  void send(Request&& request, std::chrono::steady_clock::time_point deadline,
            UpstreamCallback done);

  /** send() with a deadline `timeout` from now. */
  void send(Request&& request, std::chrono::milliseconds timeout, UpstreamCallback done) {
    send(std::move(request), std::chrono::steady_clock::now() + timeout, std::move(done));
  }

  /** Idle connections held right now. */
  size_t idleConnections() const;
  /** Requests sent and not yet completed. */
  size_t inFlight() const;
  UpstreamPoolCounters counters() const;

  struct Impl;

 private:
  explicit UpstreamPool(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  // Shared with the operations in flight, which may outlive the pool object.
  std::shared_ptr<Impl> impl_;
};

/**
 * Removes the hop-by-hop headers of RFC 9110 §7.6.1 (Connection and the headers it names,
 * Keep-Alive, Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade), as a proxy must
 * before forwarding a message; the body is re-framed by the next hop.
 */
void removeHopByHopHeaders(boost::beast::http::fields& fields);

}  // namespace kh::http
