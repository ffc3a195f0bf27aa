#pragma once
// An HTTP/1.1 server on Boost.Beast: N worker threads, each with its own io_context and its own
// SO_REUSEPORT acceptor, so a connection lives on one thread and the hot path takes no locks.
// Limits answer clearly: 413 for bodies over the limit (decided from Content-Length before the
// body is read), 431 for oversized headers, 408 when a started request stalls, 400 for requests
// that do not parse; idle keep-alive connections are closed after the idle timeout. Pipelined
// requests are answered one at a time, in order (at most one in flight per connection).

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "boost/asio/any_io_executor.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/beast/core/flat_buffer.hpp"
#include "boost/beast/http/buffer_body.hpp"
#include "boost/beast/http/message.hpp"
#include "boost/beast/http/parser.hpp"
#include "boost/beast/http/string_body.hpp"

namespace kh::http {

using Request = boost::beast::http::request<boost::beast::http::string_body>;
using Response = boost::beast::http::response<boost::beast::http::string_body>;
using RequestHeader = boost::beast::http::request_header<>;
/** The parser of a streamed request: the header is parsed, the body is read piece by piece. */
using StreamParser = boost::beast::http::request_parser<boost::beast::http::buffer_body>;

/**
 * The body of a streamed response (chunked transfer encoding), written piece by piece from any
 * thread. Each write() is one chunk. Writes queue on the connection's worker; when the client is
 * gone, or more than `max_pending_bytes` wait unsent (a reader that does not keep up), write()
 * returns false and the stream is closed: the writer should then stop.
 */
class StreamWriter {
 public:
  virtual ~StreamWriter() = default;
  virtual bool write(std::string chunk) = 0;
  /** Ends the body (last chunk) and closes the connection. */
  virtual void finish() = 0;
  /**
   * Closes the connection once what was written is sent, without the last chunk: the client
   * sees the response cut mid-body (an upstream that fails halfway; fault tests).
   */
  virtual void abort() = 0;
  virtual bool closed() const = 0;
};

/** Receives the response of a request answered later (see AsyncHandler). */
class ResponseSink {
 public:
  virtual ~ResponseSink() = default;
  virtual void deliver(Response&& response) = 0;
  virtual std::shared_ptr<StreamWriter> deliverStream(Response&& head,
                                                      size_t max_pending_bytes) = 0;
  /** The index of the server worker that received the request; -1 when not known. */
  virtual int workerIndex() const { return -1; }
};

/**
 * The way to answer one request later, from any thread. Move-only; send() exactly once (a
 * Responder dropped without sending answers 500, so a request is never silently lost).
 */
class Responder {
 public:
  Responder() = default;
  explicit Responder(std::shared_ptr<ResponseSink> sink) : sink_(std::move(sink)) {}
  Responder(Responder&&) = default;
  Responder& operator=(Responder&&) = default;
  Responder(const Responder&) = delete;
  Responder& operator=(const Responder&) = delete;
  ~Responder();

  /** Sends `response` (version and keep-alive are set by the server). Thread-safe. */
  void send(Response&& response);
  /**
   * Answers with the status and headers of `head` and a chunked body written through the
   * returned writer (watch streams, long downloads). The connection closes when it finishes.
   */
  std::shared_ptr<StreamWriter> stream(Response&& head, size_t max_pending_bytes = 16u << 20);

  /**
   * The index (0 <= i < HttpServer::workerCount()) of the worker whose thread runs
   * handleAsync(), so that a handler can use per-worker resources bound to
   * HttpServer::workerExecutor(i) without locks or thread-locals; -1 when not known (a
   * Responder already sent or not made by HttpServer).
   */
  int workerIndex() const { return sink_ ? sink_->workerIndex() : -1; }

 private:
  std::shared_ptr<ResponseSink> sink_;
};

/**
 * A request whose body is taken as a stream (see Handler::streamsBody): the handler reads the
 * body from the client connection itself, at its own pace, and writes the response there, so
 * neither needs to fit in memory and ServerOptions::max_body_bytes does not apply.
 *
 * Threading: the I/O objects (socket(), buffer(), parser()) belong to the worker whose executor
 * is executor(); use them only there. header() may be read or edited from another thread while
 * the object is held by one owner and no I/O on it is in progress (a request waiting in a queue).
 *
 * Ownership and the end of the exchange: the handler owns this object; destroying it (from any
 * thread) ends the exchange, and no operation of the handler on socket() may be pending by then.
 * - If reply() was called, that response is sent (Connection: close).
 * - Else, if no response byte was written (startResponse() was never called), a 500 JSON
 *   {"error": ...} is sent: an accepted request never silently vanishes.
 * - Else the connection is closed (after a streamed exchange it is not kept alive); if the
 *   request body was not read to its end, unread input is drained briefly first so that the
 *   client sees the response instead of a reset.
 *
 * Timeouts: the connection is cut when no progress() is reported for ServerOptions::body_timeout;
 * the first expiry cancels pending operations on socket() (timedOut() is then true), a second one
 * in a row closes the connection.
 */
class StreamedRequest {
 public:
  virtual ~StreamedRequest() = default;
  /** The parsed request header, editable (e.g. before it is forwarded). */
  virtual RequestHeader& header() = 0;
  /** The client connection. */
  virtual boost::asio::ip::tcp::socket& socket() = 0;
  /** Bytes already read from socket() that the parser has not consumed yet. */
  virtual boost::beast::flat_buffer& buffer() = 0;
  /** The request's parser, header done: continue with async_read_some(socket(), buffer(), parser()). */
  virtual StreamParser& parser() = 0;
  /** The executor of the worker the connection lives on. */
  virtual boost::asio::any_io_executor executor() const = 0;
  /** The index of that worker (as Responder::workerIndex()). */
  virtual int workerIndex() const = 0;
  /** The value the server puts in the Server response header. */
  virtual const std::string& serverName() const = 0;
  /** Reports progress on socket() (a piece read or written): restarts the inactivity timeout. */
  virtual void progress() = 0;
  /** Whether the inactivity timeout cancelled the pending operations on socket(). */
  virtual bool timedOut() const = 0;
  /** Call before writing the first response byte to socket(); reply() is not allowed after. */
  virtual void startResponse() = 0;
  /** Whether startResponse() was called. */
  virtual bool responseStarted() const = 0;
  /**
   * Sets a whole response (an error, usually) to send when this object is destroyed, instead of
   * writing one on socket(). The server sets the version, Server and Connection: close.
   */
  virtual void reply(Response&& response) = 0;
};
using StreamedRequestPtr = std::unique_ptr<StreamedRequest>;

/**
 * Answers requests synchronously. handle() runs on a worker thread, concurrently on several
 * workers, so an implementation must be thread-safe; it must not block for long (it holds up
 * its worker). The response arrives with version and keep-alive already set from the request;
 * the handler sets status, headers and body (Content-Length is filled in afterwards).
 */
class Handler {
 public:
  virtual ~Handler() = default;
  virtual void handle(Request& request, Response& response) = 0;
  /** Handlers that answer later (proxies, buffering) override this and return true. */
  virtual bool isAsync() const { return false; }
  /**
   * Called instead of handle() when isAsync(): take the request and answer through `responder`
   * whenever ready, from any thread. The worker is free meanwhile.
   */
  virtual void handleAsync(Request&& request, Responder responder) {
    Response response;
    handle(request, response);
    responder.send(std::move(response));
  }
  /**
   * Called on the worker once the header of a request with a large body is parsed: chunked, or a
   * Content-Length above ServerOptions::stream_body_threshold. Returning true hands the request
   * to handleStreamed() with its body unread; false reads it whole (within max_body_bytes) as
   * usual. Must not block; thread-safe like handle().
   */
  virtual bool streamsBody(const RequestHeader&) { return false; }
  /**
   * Takes a request for which streamsBody() returned true, on the connection's worker. The
   * worker is free as soon as this returns; the exchange lives as long as `request` (see
   * StreamedRequest for what happens when it is destroyed). Reading of the connection pauses
   * meanwhile: no further request on it is read.
   */
  virtual void handleStreamed(StreamedRequestPtr) {}  // dropped: answered 500
};

struct ServerOptions {
  std::string address = "127.0.0.1";
  /** 0 picks a free port; port() tells which. */
  uint16_t port = 0;
  int workers = 1;
  size_t max_body_bytes = 32 * 1024 * 1024;
  size_t max_header_bytes = 16 * 1024;
  /** Header fields per request; more get 431 (Envoy's default max_headers_count). */
  size_t max_header_count = 100;
  /**
   * Connections open at once on this listener (all workers together). One more is answered
   * 503 with a JSON error and closed, so a flood of idle connections cannot take every file
   * descriptor. 0: no limit.
   */
  size_t max_connections = 4096;
  /**
   * Requests with a larger Content-Length, and every chunked one, are offered to the handler as
   * streams (Handler::streamsBody); a handler that declines gets them whole as usual.
   */
  uint64_t stream_body_threshold = 1u << 20;
  /** From the first byte of a request to the end of its headers. */
  std::chrono::milliseconds header_timeout{10'000};
  /**
   * Reading the body once the headers are in; for a streamed request, the longest time without
   * progress.
   */
  std::chrono::milliseconds body_timeout{60'000};
  /** A keep-alive connection with no request in progress. */
  std::chrono::milliseconds idle_timeout{60'000};
  /** Value of the Server header. */
  std::string server_name = "kh";
  /**
   * Fields added to every response, e.g. the model server's Kh-Revision on a cluster (Knative
   * tells each pod its revision in K_REVISION; refstack's ingress adds the field itself).
   */
  std::vector<std::pair<std::string, std::string>> response_fields;
};

class HttpServer {
 public:
  /**
   * Binds and listens (so port() is valid on return) but serves nothing until start().
   * @return Unavailable when the address cannot be bound.
   */
  static absl::StatusOr<std::unique_ptr<HttpServer>> create(const ServerOptions& options,
                                                            Handler& handler);
  ~HttpServer();

  uint16_t port() const;
  /** Starts the worker threads. */
  void start();
  /**
   * Graceful stop: stops accepting, closes idle connections, lets requests in progress finish
   * (their responses carry Connection: close), and returns once every connection is gone or
   * `grace` has passed (then the rest are cut). Safe to call once, from any non-worker thread.
   */
  void drain(std::chrono::milliseconds grace);
  /**
   * The first half of drain(): returns once every worker refuses new connections, has closed its
   * idle ones and marks further responses Connection: close. Call drain() afterwards.
   */
  void beginDrain();
  /** Requests being handled or written right now, across workers. */
  int64_t activeRequests() const;

  /** The number of worker threads, each with its own io_context; fixed at create(). */
  int workerCount() const;
  /**
   * The executor of worker `index` (0 <= index < workerCount()). Handler::handleAsync() runs on
   * the worker given by Responder::workerIndex(), so I/O objects a handler creates per worker
   * (upstream connection pools, timers) bind to this executor and need no locks. Valid from
   * create() until the server is destroyed; work posted to it runs once start() was called.
   */
  boost::asio::any_io_executor workerExecutor(int index) const;

 private:
  struct Impl;
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kh::http
