#include "kh/http/upstream_pool.h"

#include <sys/socket.h>

#include <cerrno>
#include <optional>
#include <string_view>
#include <vector>

#include "boost/asio/ip/tcp.hpp"
#include "boost/beast/core/error.hpp"
#include "boost/beast/core/flat_buffer.hpp"
#include "boost/asio/steady_timer.hpp"
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
using Clock = std::chrono::steady_clock;

// A pooled connection: a plain non-blocking socket and one deadline timer. Beast's tcp_stream
// arms and cancels a timer around every read and write, and each cancelled wait comes back
// through the event loop; here the deadline of the exchange under way is a field, and the one
// timer wait re-arms itself when it fires before it (the server's sessions do the same). A wait
// lasts at most kTimerStep, so that an idle connection holds no wait for long: a pending wait is
// work to its io_context, and owners drain by letting the io_context run out of work.
constexpr auto kTimerStep = std::chrono::milliseconds(200);

struct Connection : std::enable_shared_from_this<Connection> {
  explicit Connection(const net::any_io_executor& executor) : socket(executor), timer(executor) {}
  tcp::socket socket;
  net::steady_timer timer;
  beast::flat_buffer buffer;
  Clock::time_point deadline = Clock::time_point::max();
  bool timer_pending = false;
  uint64_t timer_generation = 0;
  // The deadline passed: the pending operations were cancelled (their error is a timeout).
  bool timed_out = false;

  void expiresAt(Clock::time_point at) {
    timed_out = false;
    deadline = at;
    if (at == Clock::time_point::max() || (timer_pending && timer.expiry() <= at)) return;
    startTimerWait();
  }
  void expiresNever() { expiresAt(Clock::time_point::max()); }

  void startTimerWait() {
    timer_pending = true;
    uint64_t generation = ++timer_generation;
    timer.expires_at(std::min(deadline, Clock::now() + kTimerStep));  // cancels an earlier wait
    timer.async_wait([self = shared_from_this(), generation](beast::error_code ec) {
      self->onTimer(ec, generation);
    });
  }

  void onTimer(beast::error_code ec, uint64_t generation) {
    if (generation != timer_generation) return;
    timer_pending = false;
    if (ec || !socket.is_open() || deadline == Clock::time_point::max()) return;
    if (Clock::now() < deadline) return startTimerWait();
    timed_out = true;
    beast::error_code ignored;
    socket.cancel(ignored);
  }

  // An operation's error, as the deadline made it.
  beast::error_code timeoutAware(beast::error_code ec) const {
    return ec && timed_out ? beast::error_code(beast::error::timeout) : ec;
  }

  void close() {
    beast::error_code ignored;
    socket.shutdown(tcp::socket::shutdown_both, ignored);
    socket.close(ignored);
    ++timer_generation;
    timer.cancel();
  }
};
using ConnectionPtr = std::shared_ptr<Connection>;

// One send(): the request, its deadline and callback, and where it stands.
struct Exchange {
  Request request;
  Clock::time_point deadline;
  UpstreamCallback done;
  ConnectionPtr connection;
  std::optional<bhttp::request_serializer<bhttp::string_body>> serializer;
  std::optional<bhttp::response_parser<bhttp::string_body>> parser;
  bool reused = false;   // the connection served an earlier request
  bool retried = false;  // the one transparent retry is spent
  bool head = false;     // a HEAD response has no body despite its Content-Length
};
using ExchangePtr = std::shared_ptr<Exchange>;

bool isIdempotent(bhttp::verb method) {
  return method == bhttp::verb::get || method == bhttp::verb::head ||
         method == bhttp::verb::options;
}

using internal::isConnectionClosed;

}  // namespace

struct UpstreamPool::Impl : std::enable_shared_from_this<UpstreamPool::Impl> {
  Impl(net::any_io_executor ex, UpstreamPoolOptions opts, tcp::endpoint ep)
      : executor(std::move(ex)), options(std::move(opts)), endpoint(ep),
        host_header(common::strCat(options.host, ":", options.port)) {}

  const net::any_io_executor executor;
  const UpstreamPoolOptions options;
  const tcp::endpoint endpoint;
  const std::string host_header;
  // Most recently used last: reusing the warmest connection keeps the others ageing out.
  std::vector<ConnectionPtr> idle;
  size_t in_flight = 0;
  bool closed = false;
  UpstreamPoolCounters counters;

  void start(const ExchangePtr& ex) {
    if (ConnectionPtr connection = takeIdle()) {
      ex->connection = std::move(connection);
      ex->reused = true;
      ++counters.reuses;
      return write(ex);
    }
    connect(ex);
  }

  // Pops an idle connection that is still open. A server that closed a keep-alive connection
  // has sent FIN (or stray bytes), which a non-blocking peek sees without a round trip.
  ConnectionPtr takeIdle() {
    while (!idle.empty()) {
      ConnectionPtr connection = std::move(idle.back());
      idle.pop_back();
      char byte;
      ssize_t n = ::recv(connection->socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return connection;
      connection->close();
    }
    return nullptr;
  }

  void connect(const ExchangePtr& ex) {
    ex->connection = std::make_shared<Connection>(executor);
    ex->reused = false;
    ++counters.connections_opened;
    ex->connection->expiresAt(std::min(ex->deadline, Clock::now() + options.connect_timeout));
    ex->connection->socket.async_connect(
        endpoint, [self = shared_from_this(), ex](beast::error_code ec) {
          ec = ex->connection->timeoutAware(ec);
          if (ec) {
            ex->connection->close();
            if (Clock::now() >= ex->deadline) {
              return self->finish(ex, absl::DeadlineExceededError(common::strCat(
                                          "deadline passed connecting to ", self->host_header)),
                                  false);
            }
            return self->finish(
                ex,
                absl::UnavailableError(common::strCat(
                    "cannot connect to ", self->host_header, ": ",
                    ec == beast::error::timeout ? std::string("connect timed out") : ec.message())),
                false);
          }
          beast::error_code ignored;
          ex->connection->socket.set_option(tcp::no_delay(true), ignored);
          ex->connection->socket.non_blocking(true, ignored);
          self->write(ex);
        });
  }

  // Speculatively, now: a request usually fits the socket's send buffer whole, and an
  // asynchronous write that completes at once still costs a trip through the event loop. What
  // does not fit goes asynchronously.
  void write(const ExchangePtr& ex) {
    Connection& c = *ex->connection;
    c.expiresAt(ex->deadline);
    ex->serializer.emplace(ex->request);
    beast::error_code ec;
    size_t written = 0;
    while (!ec && !ex->serializer->is_done()) written += bhttp::write_some(c.socket, *ex->serializer, ec);
    if (ex->serializer->is_done()) return read(ex);
    if (ec != net::error::would_block && ec != net::error::try_again) return onWriteError(ex, ec, written);
    bhttp::async_write(c.socket, *ex->serializer,
                       [self = shared_from_this(), ex, written](beast::error_code ec, size_t n) {
                         ec = ex->connection->timeoutAware(ec);
                         if (!ec) return self->read(ex);
                         self->onWriteError(ex, ec, written + n);
                       });
  }

  void onWriteError(const ExchangePtr& ex, beast::error_code ec, size_t written) {
    ex->connection->close();
    if (written == 0 && ex->reused && !ex->retried && ec != beast::error::timeout) {
      return retry(ex);  // nothing left: safe whatever the method
    }
    if (ec == beast::error::timeout) {
      return finish(ex, absl::DeadlineExceededError("deadline passed sending the request"), written > 0);
    }
    finish(ex, absl::UnavailableError(common::strCat("sending to ", host_header, " failed: ", ec.message())),
           written > 0);
  }

  void read(const ExchangePtr& ex) {
    ex->parser.emplace();
    ex->parser->body_limit(options.max_response_body_bytes);
    if (ex->head) ex->parser->skip(true);
    bhttp::async_read(
        ex->connection->socket, ex->connection->buffer, *ex->parser,
        [self = shared_from_this(), ex](beast::error_code ec, size_t read) {
          self->onRead(ex, ex->connection->timeoutAware(ec), read);
        });
  }

  void onRead(const ExchangePtr& ex, beast::error_code ec, size_t bytes_read) {
    if (ec) {
      ex->connection->close();
      if (ec == beast::error::timeout) {
        return finish(ex, absl::DeadlineExceededError("no response before the deadline"), true);
      }
      if (ec == bhttp::error::body_limit) {
        return finish(ex,
                      absl::ResourceExhaustedError(common::strCat(
                          "response body exceeds ", options.max_response_body_bytes, " bytes")),
                      true);
      }
      if (isConnectionClosed(ec)) {
        // A kept-alive connection the server closed just as we reused it: the request was not
        // processed if nothing came back, but only an idempotent one may be sent again.
        if (bytes_read == 0 && ex->reused && !ex->retried && isIdempotent(ex->request.method())) {
          return retry(ex);
        }
        return finish(ex,
                      absl::UnavailableError(common::strCat(
                          "upstream ", host_header, " closed the connection: ", ec.message())),
                      true);
      }
      return finish(ex,
                    absl::InternalError(common::strCat("malformed response from ", host_header,
                                                       ": ", ec.message())),
                    true);
    }
    Response response = ex->parser->release();
    unsigned status = response.result_int();
    if (status >= 100 && status < 200 && status != 101) return read(ex);  // interim: skip it
    release(ex->connection, response.keep_alive());
    ex->connection.reset();
    finish(ex, std::move(response), true);
  }

  void retry(const ExchangePtr& ex) {
    ex->retried = true;
    ++counters.stale_retries;
    connect(ex);
  }

  void release(const ConnectionPtr& connection, bool keep_alive) {
    if (!keep_alive || closed || idle.size() >= options.max_idle_connections ||
        connection->buffer.size() > 0) {  // unsolicited bytes: the stream cannot be trusted
      connection->close();
      return;
    }
    connection->expiresNever();
    idle.push_back(connection);
  }

  void finish(const ExchangePtr& ex, UpstreamResult result, bool bytes_were_sent) {
    --in_flight;
    ex->connection.reset();
    UpstreamCallback done = std::move(ex->done);
    done(std::move(result), bytes_were_sent, bytes_were_sent ? nullptr : &ex->request);
  }
};

absl::StatusOr<std::unique_ptr<UpstreamPool>> UpstreamPool::create(net::any_io_executor executor,
                                                                   UpstreamPoolOptions options) {
  std::string host = options.host == "localhost" ? std::string("127.0.0.1") : options.host;
  beast::error_code ec;
  auto address = net::ip::make_address(host, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        common::strCat("upstream host '", options.host, "' is not a numeric IP address"));
  }
  tcp::endpoint endpoint(address, options.port);
  auto impl = std::make_shared<Impl>(std::move(executor), std::move(options), endpoint);
  return std::unique_ptr<UpstreamPool>(new UpstreamPool(std::move(impl)));
}

UpstreamPool::~UpstreamPool() {
  impl_->closed = true;
  for (auto& connection : impl_->idle) connection->close();
  impl_->idle.clear();
}

void UpstreamPool::send(Request&& request, Clock::time_point deadline, UpstreamCallback done) {
  auto ex = std::make_shared<Exchange>();
  ex->request = std::move(request);
  ex->deadline = deadline;
  ex->done = std::move(done);
  ex->head = ex->request.method() == bhttp::verb::head;
  Request& r = ex->request;
  r.version(11);
  if (r.find(bhttp::field::host) == r.end()) r.set(bhttp::field::host, impl_->host_header);
  if (!r.has_content_length() && !r.chunked()) r.prepare_payload();
  ++impl_->in_flight;
  impl_->start(ex);
}

size_t UpstreamPool::idleConnections() const { return impl_->idle.size(); }
size_t UpstreamPool::inFlight() const { return impl_->in_flight; }
UpstreamPoolCounters UpstreamPool::counters() const { return impl_->counters; }

void removeHopByHopHeaders(bhttp::fields& fields) {
  // Connection names further per-hop headers ("Connection: close, X-Foo").
  auto connection = fields.find(bhttp::field::connection);
  if (connection != fields.end()) {
    std::string listed(connection->value());
    size_t start = 0;
    while (start <= listed.size()) {
      size_t comma = listed.find(',', start);
      if (comma == std::string::npos) comma = listed.size();
      std::string_view token(listed.data() + start, comma - start);
      while (!token.empty() && (token.front() == ' ' || token.front() == '\t')) {
        token.remove_prefix(1);
      }
      while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) {
        token.remove_suffix(1);
      }
      if (!token.empty()) fields.erase(beast::string_view(token.data(), token.size()));
      start = comma + 1;
    }
  }
  for (auto field : {bhttp::field::connection, bhttp::field::keep_alive,
                     bhttp::field::proxy_connection, bhttp::field::te, bhttp::field::trailer,
                     bhttp::field::transfer_encoding, bhttp::field::upgrade}) {
    fields.erase(field);
  }
}

}  // namespace kh::http
