#include "kh/http/server.h"

#include <array>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <iterator>
#include <limits>
#include <list>
#include <sstream>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_set>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/dispatch.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/write.hpp"
#include "boost/asio/steady_timer.hpp"
#include "boost/asio/executor_work_guard.hpp"
#include "boost/beast/core/flat_buffer.hpp"
#include "boost/beast/core/string.hpp"
#include "boost/beast/http/error.hpp"
#include "boost/beast/http/parser.hpp"
#include "boost/beast/http/read.hpp"
#include "boost/beast/http/write.hpp"
#include "kh/common/strings.h"
#include "internal.h"

namespace kh::http {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;

// What every response of this listener carries: Server, and the configured fields.
void stampResponse(bhttp::fields& head, const ServerOptions& options) {
  head.set(bhttp::field::server, options.server_name);
  for (const auto& [name, value] : options.response_fields) head.set(name, value);
}

class Session;

// One per thread: its io_context, acceptor and the sessions it owns.
struct Worker {
  explicit Worker(int i) : index(i) {}
  const int index;
  // Declared before the io_context: destroying the context destroys handlers that own
  // sessions, whose destructors still remove themselves from this set.
  std::unordered_set<Session*> sessions;
  net::io_context ioc{1};
  std::optional<tcp::acceptor> acceptor;
  bool draining = false;
  // Set before the io_context stops for good: from then on nothing may be posted to it (a post
  // made while the context destroys its handlers would deadlock on its lock).
  std::atomic<bool> stopped{false};
};

struct Shared {
  const ServerOptions options;
  Handler& handler;
  std::atomic<int64_t> active_requests{0};
  // Sessions open on every worker (the connection limit counts them).
  std::atomic<size_t> open_connections{0};
};

class Session;
class SessionStreamedRequest;

// The writer half of a streamed response; shares the session's lifetime.
class SessionStream : public StreamWriter, public std::enable_shared_from_this<SessionStream> {
 public:
  SessionStream(std::weak_ptr<Session> session, size_t max_pending)
      : session_(std::move(session)), max_pending_(max_pending) {}
  bool write(std::string chunk) override;
  void finish() override;
  void abort() override;
  // Queues the end of the body: the last chunk, or (cut) a close without it.
  void queueEnd(bool cut);
  bool closed() const override { return closed_.load(std::memory_order_acquire); }

  // Weak: a writer kept by its owner must not keep a session (and its worker) alive.
  std::weak_ptr<Session> session_;
  const size_t max_pending_;
  std::atomic<size_t> pending_bytes_{0};
  std::atomic<bool> closed_{false};

  // Chunks reach the worker through this queue, in the order write() was called: a post from
  // the worker's own thread waits in a thread-private queue that a later post from another
  // thread would overtake, so one post per chunk could reorder them.
  std::mutex queue_mu_;
  std::deque<std::string> queued_ ABSL_GUARDED_BY(queue_mu_);
  bool finish_queued_ ABSL_GUARDED_BY(queue_mu_) = false;
  bool abort_queued_ ABSL_GUARDED_BY(queue_mu_) = false;  // with finish_queued_: no last chunk
  bool drain_posted_ ABSL_GUARDED_BY(queue_mu_) = false;
};

class Session : public std::enable_shared_from_this<Session>, public ResponseSink {
 public:
  Session(tcp::socket socket, Worker& worker, Shared& shared)
      : socket_(std::move(socket)), timer_(worker.ioc), worker_(worker), shared_(shared) {
    worker_.sessions.insert(this);
    shared_.open_connections.fetch_add(1, std::memory_order_relaxed);
  }
  ~Session() {
    worker_.sessions.erase(this);
    shared_.open_connections.fetch_sub(1, std::memory_order_relaxed);
  }

  void start() {
    beast::error_code ec;
    socket_.set_option(tcp::no_delay(true), ec);
    socket_.non_blocking(true, ec);
    waitForRequest();
  }

  int workerIndex() const override { return worker_.index; }

  // After the workers stopped (server destruction): no handler will run again.
  void shutdownNow() { close(); }

  // Called on the worker's thread when the server drains.
  void onDrain() {
    // A stream being set up counts too: deliverStream's post may run after this one.
    if (idle_ || stream_ || stream_requested_.load(std::memory_order_acquire)) close();
  }

  std::shared_ptr<StreamWriter> deliverStream(Response&& head, size_t max_pending) override {
    auto stream = std::make_shared<SessionStream>(shared_from_this(), max_pending);
    stream_requested_.store(true, std::memory_order_release);
    // dispatch, not post: called from the handler on the worker (the usual case) the head is
    // queued before this returns, so no chunk written afterwards can overtake it (posts from
    // inside a running io_context wait in a thread-private queue behind other threads' posts).
    net::dispatch(worker_.ioc, [self = shared_from_this(), stream, head = std::move(head)]() mutable {
      if (self->closed_) {
        stream->closed_ = true;
        return;
      }
      self->stream_ = stream;
      self->self_hold_ = self;  // no read or write may be pending while the stream idles
      head.version(self->version_);
      head.keep_alive(false);
      stampResponse(head, self->shared_.options);
      head.chunked(true);
      head.body().clear();
      std::ostringstream header;
      header << head.base();
      self->enqueueStreamBytes(header.str());
    });
    return stream;
  }

  // Stream plumbing, on the worker thread.
  void enqueueStreamBytes(std::string bytes) {
    if (closed_) return;
    stream_out_.push_back(std::move(bytes));
    if (!stream_writing_) writeStream();
  }

  void writeStream() {
    if (stream_out_.empty()) {
      stream_writing_ = false;
      if (stream_finished_) close();
      return;
    }
    stream_writing_ = true;
    net::async_write(socket_, net::buffer(stream_out_.front()),
                     [self = shared_from_this()](beast::error_code ec, size_t n) {
                       if (ec) return self->close();
                       if (self->stream_) {
                         size_t body = self->stream_out_.front().size();
                         self->stream_->pending_bytes_.fetch_sub(
                             std::min(body, self->stream_->pending_bytes_.load()));
                       }
                       self->stream_out_.pop_front();
                       self->writeStream();
                     });
  }

  // Hands the chunks queued on `stream` (in write() order) to the socket, on the worker.
  void drainStream(SessionStream& stream) {
    std::deque<std::string> chunks;
    bool last = false, aborted = false;
    {
      std::lock_guard lock(stream.queue_mu_);
      chunks.swap(stream.queued_);
      last = stream.finish_queued_;
      aborted = stream.abort_queued_;
      stream.drain_posted_ = false;
    }
    for (auto& chunk : chunks) onStreamChunk(std::move(chunk), false);
    if (aborted) {
      // What is queued goes out, then the connection closes with the body unfinished.
      stream_finished_ = true;
      if (!stream_writing_) writeStream();
    } else if (last) {
      onStreamChunk({}, true);
    }
  }

  void onStreamChunk(std::string chunk, bool last) {
    if (closed_) return;
    if (!chunk.empty()) {
      char size[32];
      int len = std::snprintf(size, sizeof size, "%zx\r\n", chunk.size());
      chunk.insert(0, size, static_cast<size_t>(len));
      chunk += "\r\n";
      enqueueStreamBytes(std::move(chunk));
    }
    if (last) {
      stream_finished_ = true;
      enqueueStreamBytes("0\r\n\r\n");
    }
  }

 private:
  // Waits for the first byte of the next request under the idle timeout, so that a slow
  // request (408) can be told apart from a quiet keep-alive connection (closed silently).
  void waitForRequest() {
    if (worker_.draining) return close();
    if (buffer_.size() > 0) return readHeader();
    // A keep-alive client usually has its next request on the wire already: one non-blocking
    // read saves a trip through the reactor.
    beast::error_code ec;
    size_t n = socket_.read_some(buffer_.prepare(16384), ec);
    if (!ec && n > 0) {
      buffer_.commit(n);
      return readHeader();
    }
    if (ec && ec != net::error::would_block && ec != net::error::try_again) return close();
    idle_ = true;
    armTimer(shared_.options.idle_timeout);
    socket_.async_wait(tcp::socket::wait_read,
                       [self = shared_from_this()](beast::error_code ec) {
                         self->idle_ = false;
                         if (ec || self->timed_out_) return self->close();
                         self->readHeader();
                       });
  }

  void readHeader() {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(shared_.options.max_header_bytes));
    // The limit is set once the header is in: a streamed request has none. (Not boost::none:
    // Beast 1.74 compares a Content-Length with an empty limit as if it were 0.)
    parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
    armTimer(shared_.options.header_timeout);
    bhttp::async_read_header(socket_, buffer_, *parser_,
                             [self = shared_from_this()](beast::error_code ec, size_t) {
                               self->onHeader(ec);
                             });
  }

  void onHeader(beast::error_code ec) {
    if (ec) return onReadError(ec);
    auto& header = parser_->get();
    // A request whose Transfer-Encoding does not end in chunked has a body of unknown length:
    // RFC 9112 6.3 says 400 and close. Beast reads it as bodiless, and the body bytes would then
    // be parsed as the next request on the connection (a smuggled one). Beast itself refuses
    // Content-Length beside Transfer-Encoding and differing Content-Lengths.
    if (!parser_->chunked() && header.count(bhttp::field::transfer_encoding) != 0) {
      return sendError(bhttp::status::bad_request,
                       "the request's Transfer-Encoding does not end in chunked: its length is unknown");
    }
    // Before the streamed branch: a request whose body is streamed has the same header limits.
    if (auto fields = static_cast<size_t>(std::distance(header.begin(), header.end()));
        fields > shared_.options.max_header_count) {
      return sendError(bhttp::status::request_header_fields_too_large,
                       common::strCat("request has ", fields, " header fields; the limit is ",
                                      shared_.options.max_header_count));
    }
    if (!parser_->is_done() &&
        (parser_->chunked() ||
         parser_->content_length().value_or(0) > shared_.options.stream_body_threshold) &&
        shared_.handler.streamsBody(header.base())) {
      return startStreamed();
    }
    parser_->body_limit(shared_.options.max_body_bytes);  // no body byte parsed yet
    if (auto length = parser_->content_length();
        length && *length > shared_.options.max_body_bytes) {
      return sendError(bhttp::status::payload_too_large,
                       common::strCat("request body of ", *length, " bytes exceeds the limit of ",
                                      shared_.options.max_body_bytes, " bytes"));
    }
    (void)header;
    if (parser_->is_done()) return dispatch();
    armTimer(shared_.options.body_timeout);
    bhttp::async_read(socket_, buffer_, *parser_,
                      [self = shared_from_this()](beast::error_code ec, size_t) {
                        if (ec) return self->onReadError(ec);
                        self->dispatch();
                      });
  }

  void onReadError(beast::error_code ec) {
    if (timed_out_) {
      // Bytes of a request arrived but it did not complete in time.
      return sendError(bhttp::status::request_timeout, "timed out reading the request");
    }
    if (ec == bhttp::error::end_of_stream || ec == net::error::eof ||
        ec == net::error::connection_reset || ec == net::error::operation_aborted) {
      return close();
    }
    if (ec == bhttp::error::body_limit) {
      return sendError(bhttp::status::payload_too_large,
                       common::strCat("request body exceeds the limit of ",
                                      shared_.options.max_body_bytes, " bytes"));
    }
    if (ec == bhttp::error::header_limit) {
      return sendError(bhttp::status::request_header_fields_too_large,
                       common::strCat("request headers exceed the limit of ",
                                      shared_.options.max_header_bytes, " bytes"));
    }
    sendError(bhttp::status::bad_request,
              common::strCat("malformed HTTP request: ", ec.message()));
  }

  void dispatch() {
    disarmTimer();
    Request request = parser_->release();
    response_ = {};
    response_.version(request.version());
    response_.keep_alive(request.keep_alive() && !worker_.draining);
    stampResponse(response_, shared_.options);
    shared_.active_requests.fetch_add(1, std::memory_order_relaxed);
    counted_ = true;
    if (shared_.handler.isAsync()) {
      // Reading pauses until the response is delivered (one request in flight per connection).
      keep_alive_ = response_.keep_alive();
      version_ = request.version();
      shared_.handler.handleAsync(std::move(request), Responder(shared_from_this()));
      return;
    }
    shared_.handler.handle(request, response_);
    if (worker_.draining) response_.keep_alive(false);
    write();
  }

  // The body stays unread: the handler reads it through the StreamedRequest, without the body
  // limit (that is the point) but under the inactivity timeout.
  void startStreamed() {
    streamed_ = true;
    stream_parser_.emplace(std::move(*parser_));
    parser_.reset();
    stream_parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
    version_ = stream_parser_->get().version();
    keep_alive_ = false;
    shared_.active_requests.fetch_add(1, std::memory_order_relaxed);
    counted_ = true;
    armTimer(shared_.options.body_timeout);
    auto& header = stream_parser_->get();
    auto expect = header.find(bhttp::field::expect);
    if (expect != header.end() && beast::iequals(expect->value(), "100-continue")) {
      // The client waits for this before sending a large body; a relay would otherwise have to
      // pass the upstream's interim answer through. Answered here, so the header goes on without it.
      header.erase(bhttp::field::expect);
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      net::async_write(socket_, net::buffer(kContinue.data(), kContinue.size()),
                       [self = shared_from_this()](beast::error_code ec, size_t) {
                         if (ec) return self->close();
                         self->handOverStream();
                       });
      return;
    }
    handOverStream();
  }

  void handOverStream();

  // The handler has released the exchange (on this worker).
  void onStreamedDone(bool response_started, std::optional<Response> reply) {
    if (closed_) return;
    bool body_read = stream_parser_ && stream_parser_->is_done();
    if (!response_started) {
      if (!reply) {
        return sendError(bhttp::status::internal_server_error,
                         "the request was dropped without an answer");
      }
      disarmTimer();
      response_ = std::move(*reply);
      response_.version(version_);
      response_.keep_alive(false);
      stampResponse(response_, shared_.options);
      linger_ = !body_read;
      return write();
    }
    if (counted_) {
      shared_.active_requests.fetch_sub(1, std::memory_order_relaxed);
      counted_ = false;
    }
    if (body_read) return close();
    lingeringClose();
  }

  // ResponseSink: may run on any thread; the write happens on this session's worker. Called on
  // the worker (a proxy answering from its upstream's completion) it writes now: a post would
  // cost a trip through the event loop per request.
  void deliver(Response&& response) override {
    if (worker_.ioc.get_executor().running_in_this_thread()) return writeDelivered(std::move(response));
    net::post(worker_.ioc, [self = shared_from_this(), res = std::move(response)]() mutable {
      self->writeDelivered(std::move(res));
    });
  }

  void writeDelivered(Response&& response) {
    if (closed_) return;
    response_ = std::move(response);
    response_.version(version_);
    response_.keep_alive(keep_alive_ && !worker_.draining);
    stampResponse(response_, shared_.options);
    write();
  }

  // Errors found before a request could be handed over: answer in the protocol's JSON error
  // shape and close, since the rest of the stream cannot be trusted.
  void sendError(bhttp::status status, std::string message) {
    disarmTimer();
    response_ = {};
    response_.version(11);
    response_.result(status);
    stampResponse(response_, shared_.options);
    response_.set(bhttp::field::content_type, "application/json");
    response_.body() = internal::jsonErrorBody(message);
    response_.keep_alive(false);
    // The client may still be sending the body we refused: read and drop it for a moment after
    // answering, or closing with unread data would reset the connection and lose the answer.
    linger_ = true;
    write();
  }

  void write() {
    response_.prepare_payload();
    // Speculatively, now: a response usually fits the socket's send buffer whole (the socket is
    // non-blocking), and an asynchronous write that completes at once still costs a trip through
    // the event loop for its completion. What does not fit goes asynchronously.
    serializer_.emplace(response_);
    beast::error_code ec;
    while (!ec && !serializer_->is_done()) bhttp::write_some(socket_, *serializer_, ec);
    if (serializer_->is_done()) return onWrite({});
    if (ec != net::error::would_block && ec != net::error::try_again) return onWrite(ec);
    armTimer(shared_.options.body_timeout);
    bhttp::async_write(socket_, *serializer_,
                       [self = shared_from_this()](beast::error_code ec, size_t) {
                         self->onWrite(ec);
                       });
  }

  void onWrite(beast::error_code ec) {
    if (counted_) {
      shared_.active_requests.fetch_sub(1, std::memory_order_relaxed);
      counted_ = false;
    }
    disarmTimer();
    if (!ec && linger_) return lingeringClose();
    if (ec || !response_.keep_alive()) return close();
    waitForRequest();
  }

  void lingeringClose() {
    beast::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
    armTimer(std::chrono::milliseconds(2000));
    drainInput();
  }

  void drainInput() {
    if (discarded_ > (64u << 20)) return close();
    socket_.async_read_some(net::buffer(scratch_), [self = shared_from_this()](
                                                       beast::error_code ec, size_t n) {
      if (ec || self->timed_out_) return self->close();
      self->discarded_ += n;
      self->drainInput();
    });
  }

  // One timer wait at a time. Moving the deadline later is a store, not a cancel-and-rearm, so
  // the request path does not post a cancelled handler for every phase; the wait re-arms itself
  // when it fires early. Moving it earlier (idle -> header timeout) restarts the wait.
  void armTimer(std::chrono::milliseconds timeout) {
    timed_out_ = false;
    deadline_ = std::chrono::steady_clock::now() + timeout;
    if (timer_pending_ && timer_.expiry() <= deadline_) return;
    startTimerWait();
  }

  void startTimerWait() {
    timer_pending_ = true;
    uint64_t generation = ++timer_generation_;
    timer_.expires_at(deadline_);  // cancels an earlier wait, whose handler is then ignored
    timer_.async_wait([self = shared_from_this(), generation](beast::error_code ec) {
      self->onTimer(ec, generation);
    });
  }

  void disarmTimer() { deadline_ = std::chrono::steady_clock::time_point::max(); }

  void onTimer(beast::error_code ec, uint64_t generation) {
    if (generation != timer_generation_) return;
    timer_pending_ = false;
    if (ec || closed_) return;
    if (deadline_ == std::chrono::steady_clock::time_point::max()) return;
    if (std::chrono::steady_clock::now() < deadline_) return startTimerWait();
    timed_out_ = true;
    beast::error_code ignored;
    if (streamed_ && !linger_) {
      // The handler owns the I/O: a first expiry cancels it (the handler sees the error and
      // should end the exchange), a second one in a row cuts the connection regardless.
      if (++stream_expiries_ > 1) return close();
      deadline_ = std::chrono::steady_clock::now() + shared_.options.body_timeout;
      startTimerWait();
    }
    socket_.cancel(ignored);
  }

  void close() {
    closed_ = true;
    auto hold = std::move(self_hold_);  // released when this returns
    bool had_stream = stream_ != nullptr;
    if (stream_) {
      stream_->closed_ = true;
      stream_.reset();
    }
    if ((had_stream || streamed_) && counted_) {
      shared_.active_requests.fetch_sub(1, std::memory_order_relaxed);
      counted_ = false;
    }
    timer_.cancel();
    beast::error_code ec;
    socket_.shutdown(tcp::socket::shutdown_send, ec);
    socket_.close(ec);
  }

  tcp::socket socket_;
  net::steady_timer timer_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::optional<StreamParser> stream_parser_;  // a streamed request's, from its header on
  bool streamed_ = false;
  int stream_expiries_ = 0;  // inactivity timeouts in a row while streamed
  Response response_;
  std::optional<bhttp::response_serializer<bhttp::string_body>> serializer_;
  Worker& worker_;
  Shared& shared_;
  bool idle_ = false;
  bool timed_out_ = false;
  bool counted_ = false;
  bool linger_ = false;
  bool closed_ = false;
  bool keep_alive_ = true;
  unsigned version_ = 11;
  bool timer_pending_ = false;
  uint64_t timer_generation_ = 0;
  std::chrono::steady_clock::time_point deadline_ = std::chrono::steady_clock::time_point::max();
  size_t discarded_ = 0;
  std::array<char, 16384> scratch_;
  std::shared_ptr<SessionStream> stream_;
  std::shared_ptr<Session> self_hold_;  // set while a stream is open
  std::atomic<bool> stream_requested_{false};
  std::deque<std::string> stream_out_;
  bool stream_writing_ = false;
  bool stream_finished_ = false;

  friend class SessionStream;
  friend class SessionStreamedRequest;
};

class SessionStreamedRequest final : public StreamedRequest {
 public:
  explicit SessionStreamedRequest(std::shared_ptr<Session> session) : s_(std::move(session)) {}
  ~SessionStreamedRequest() override {
    Worker& worker = s_->worker_;
    if (worker.stopped.load(std::memory_order_acquire)) return;  // the session is closed already
    net::post(worker.ioc, [s = std::move(s_), started = started_, reply = std::move(reply_)]() mutable {
      s->onStreamedDone(started, std::move(reply));
    });
  }

  // StreamedRequest
  RequestHeader& header() override { return s_->stream_parser_->get().base(); }
  tcp::socket& socket() override { return s_->socket_; }
  beast::flat_buffer& buffer() override { return s_->buffer_; }
  StreamParser& parser() override { return *s_->stream_parser_; }
  net::any_io_executor executor() const override { return s_->worker_.ioc.get_executor(); }
  int workerIndex() const override { return s_->worker_.index; }
  const std::string& serverName() const override { return s_->shared_.options.server_name; }
  void progress() override {
    s_->stream_expiries_ = 0;
    s_->armTimer(s_->shared_.options.body_timeout);
  }
  bool timedOut() const override { return s_->timed_out_; }
  void startResponse() override { started_ = true; }
  bool responseStarted() const override { return started_; }
  void reply(Response&& response) override {
    if (!started_) reply_ = std::move(response);
  }

 private:
  std::shared_ptr<Session> s_;
  bool started_ = false;
  std::optional<Response> reply_;
};

void Session::handOverStream() {
  if (closed_) return;
  shared_.handler.handleStreamed(std::make_unique<SessionStreamedRequest>(shared_from_this()));
}

bool SessionStream::write(std::string chunk) {
  if (closed()) return false;
  size_t pending = pending_bytes_.fetch_add(chunk.size()) + chunk.size();
  if (pending > max_pending_) {
    // A reader that does not keep up is cut off rather than buffered without bound.
    closed_ = true;
    if (auto s = session_.lock()) net::post(s->worker_.ioc, [s] { s->close(); });
    return false;
  }
  auto s = session_.lock();
  if (!s) return false;
  bool post = false;
  {
    std::lock_guard lock(queue_mu_);
    if (finish_queued_) return false;
    queued_.push_back(std::move(chunk));
    post = !drain_posted_;
    drain_posted_ = true;
  }
  if (post) {
    net::post(s->worker_.ioc, [s, self = shared_from_this()] { s->drainStream(*self); });
  }
  return true;
}

void SessionStream::finish() { queueEnd(/*cut=*/false); }
void SessionStream::abort() { queueEnd(/*cut=*/true); }

void SessionStream::queueEnd(bool cut) {
  if (closed()) return;
  auto s = session_.lock();
  if (!s) return;
  bool post = false;
  {
    std::lock_guard lock(queue_mu_);
    if (finish_queued_) return;
    finish_queued_ = true;
    abort_queued_ = cut;
    post = !drain_posted_;
    drain_posted_ = true;
  }
  if (post) {
    net::post(s->worker_.ioc, [s, self = shared_from_this()] { s->drainStream(*self); });
  }
}

// A connection over the listener's limit: a 503 the client can read, then a lingering close
// (closing with its request unread would reset the connection and lose the answer). It is not a
// Session, so it is not counted; it lasts at most a second.
class Refusal : public std::enable_shared_from_this<Refusal> {
 public:
  Refusal(tcp::socket socket, size_t limit) : socket_(std::move(socket)), timer_(socket_.get_executor()) {
    std::string body = internal::jsonErrorBody(
        common::strCat("the server has ", limit, " connections open, its limit; try again later"));
    answer_ = common::strCat("HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n",
                             "Content-Length: ", body.size(), "\r\nConnection: close\r\n\r\n", body);
  }

  void start() {
    net::async_write(socket_, net::buffer(answer_), [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->close();
      beast::error_code ignored;
      self->socket_.shutdown(tcp::socket::shutdown_send, ignored);
      self->timer_.expires_after(std::chrono::seconds(1));
      self->timer_.async_wait([self](beast::error_code ec) {
        if (!ec) self->close();
      });
      self->drain();
    });
  }

 private:
  void drain() {
    socket_.async_read_some(net::buffer(scratch_), [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->close();
      self->drain();
    });
  }
  void close() {
    beast::error_code ignored;
    timer_.cancel();
    socket_.close(ignored);
  }

  tcp::socket socket_;
  net::steady_timer timer_;
  std::string answer_;
  std::array<char, 4096> scratch_{};
};

void doAccept(Worker& worker, Shared& shared) {
  worker.acceptor->async_accept([&worker, &shared](beast::error_code ec, tcp::socket socket) {
    if (ec) {
      if (ec == net::error::operation_aborted || !worker.acceptor->is_open()) return;
      // Transient errors (e.g. EMFILE) must not stop the accept loop.
    } else if (size_t limit = shared.options.max_connections;
               limit != 0 && shared.open_connections.load(std::memory_order_relaxed) >= limit) {
      std::make_shared<Refusal>(std::move(socket), limit)->start();
    } else {
      std::make_shared<Session>(std::move(socket), worker, shared)->start();
    }
    doAccept(worker, shared);
  });
}

}  // namespace

Responder::~Responder() {
  if (sink_) {
    Response response;
    response.result(bhttp::status::internal_server_error);
    response.set(bhttp::field::content_type, "application/json");
    response.body() = R"({"error":"the request was dropped without an answer"})";
    sink_->deliver(std::move(response));
  }
}

std::shared_ptr<StreamWriter> Responder::stream(Response&& head, size_t max_pending_bytes) {
  auto sink = std::move(sink_);
  sink_.reset();
  return sink->deliverStream(std::move(head), max_pending_bytes);
}

void Responder::send(Response&& response) {
  if (!sink_) return;
  auto sink = std::move(sink_);
  sink_.reset();
  sink->deliver(std::move(response));
}

struct HttpServer::Impl {
  explicit Impl(const ServerOptions& options, Handler& handler) : shared{options, handler} {}
  Shared shared;
  net::io_context shared_probe_ioc{1};  // only for the taken-port check at create()
  std::vector<std::unique_ptr<Worker>> workers;
  std::vector<std::thread> threads;
  std::vector<net::executor_work_guard<net::io_context::executor_type>> guards;
  uint16_t port = 0;
  std::mutex mu;
  std::condition_variable exited_cv;
  int running ABSL_GUARDED_BY(mu) = 0;
  bool drained ABSL_GUARDED_BY(mu) = false;
  bool draining_started ABSL_GUARDED_BY(mu) = false;
};

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::create(const ServerOptions& options,
                                                               Handler& handler) {
  auto impl = std::make_unique<Impl>(options, handler);
  beast::error_code ec;
  auto address = net::ip::make_address(options.address, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        common::strCat("bad listen address '", options.address, "': ", ec.message()));
  }
  uint16_t port = options.port;
  int workers = std::max(1, options.workers);
  if (port != 0) {
    // SO_REUSEPORT (below) would let this server share a port another process already listens
    // on, splitting connections between them: a plain bind first refuses a taken port.
    tcp::acceptor probe(impl->shared_probe_ioc);
    probe.open(tcp::endpoint(address, port).protocol(), ec);
    if (!ec) probe.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) probe.bind(tcp::endpoint(address, port), ec);
    if (ec) {
      return absl::UnavailableError(common::strCat("cannot listen on ", options.address, ":", port, ": ",
                                                   ec.message()));
    }
  }
  for (int i = 0; i < workers; ++i) {
    auto worker = std::make_unique<Worker>(i);
    worker->acceptor.emplace(worker->ioc);
    tcp::endpoint endpoint(address, port);
    auto& acc = *worker->acceptor;
    acc.open(endpoint.protocol(), ec);
    if (!ec) acc.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) {
      // Every worker binds the same port; the kernel spreads connections across them.
      int one = 1;
      ::setsockopt(acc.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
      acc.bind(endpoint, ec);
    }
    if (!ec) acc.listen(net::socket_base::max_listen_connections, ec);
    if (ec) {
      return absl::UnavailableError(common::strCat("cannot listen on ", options.address, ":",
                                                   port, ": ", ec.message()));
    }
    port = acc.local_endpoint().port();
    impl->workers.push_back(std::move(worker));
  }
  impl->port = port;
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

HttpServer::~HttpServer() {
  if (!impl_->threads.empty() && !impl_->drained) drain(std::chrono::milliseconds(0));
  for (auto& w : impl_->workers) w->stopped.store(true, std::memory_order_release);
  for (auto& t : impl_->threads) {
    if (t.joinable()) t.join();
  }
  // The workers have stopped: close what is left (open streams hold their own sessions) before
  // the workers and their io_contexts go.
  for (auto& w : impl_->workers) {
    std::vector<Session*> open(w->sessions.begin(), w->sessions.end());
    for (Session* session : open) {
      if (w->sessions.count(session)) session->shutdownNow();
    }
  }
}

uint16_t HttpServer::port() const { return impl_->port; }

int64_t HttpServer::activeRequests() const {
  return impl_->shared.active_requests.load(std::memory_order_relaxed);
}

int HttpServer::workerCount() const { return static_cast<int>(impl_->workers.size()); }

boost::asio::any_io_executor HttpServer::workerExecutor(int index) const {
  return impl_->workers.at(static_cast<size_t>(index))->ioc.get_executor();
}

void HttpServer::start() {
  std::lock_guard lock(impl_->mu);
  for (auto& w : impl_->workers) {
    impl_->guards.push_back(net::make_work_guard(w->ioc));
    doAccept(*w, impl_->shared);
    ++impl_->running;
    impl_->threads.emplace_back([this, worker = w.get()] {
      worker->ioc.run();
      std::lock_guard lock(impl_->mu);
      --impl_->running;
      impl_->exited_cv.notify_all();
    });
  }
}

void HttpServer::beginDrain() {
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->draining_started) return;
    impl_->draining_started = true;
  }
  int pending = static_cast<int>(impl_->workers.size());
  std::mutex mu;
  std::condition_variable cv;
  for (auto& w : impl_->workers) {
    net::post(w->ioc, [worker = w.get(), &mu, &cv, &pending] {
      worker->draining = true;
      beast::error_code ec;
      worker->acceptor->close(ec);
      // Copy: closing a session may destroy it, which edits the set.
      std::vector<Session*> sessions(worker->sessions.begin(), worker->sessions.end());
      for (Session* s : sessions) {
        if (worker->sessions.count(s)) s->onDrain();
      }
      std::lock_guard lock(mu);
      if (--pending == 0) cv.notify_all();
    });
  }
  std::unique_lock lock(mu);
  // Workers that are not running (start() never called) cannot acknowledge.
  if (impl_->threads.empty()) return;
  cv.wait(lock, [&] { return pending == 0; });
}

void HttpServer::drain(std::chrono::milliseconds grace) {
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->drained) return;
    impl_->drained = true;
  }
  beginDrain();
  impl_->guards.clear();
  std::unique_lock lock(impl_->mu);
  impl_->exited_cv.wait_for(lock, grace, [&] { return impl_->running == 0; });
  lock.unlock();
  for (auto& w : impl_->workers) {
    w->stopped.store(true, std::memory_order_release);
    w->ioc.stop();
  }
  for (auto& t : impl_->threads) {
    if (t.joinable()) t.join();
  }
  impl_->threads.clear();
}

}  // namespace kh::http
