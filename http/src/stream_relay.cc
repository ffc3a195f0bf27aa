#include "kh/http/stream_relay.h"

#include <algorithm>
#include <limits>
#include <memory>
#include <optional>
#include <vector>

#include "boost/asio/ip/tcp.hpp"
#include "boost/beast/core/error.hpp"
#include "boost/beast/core/flat_buffer.hpp"
#include "boost/beast/core/tcp_stream.hpp"
#include "boost/beast/http/buffer_body.hpp"
#include "boost/beast/http/error.hpp"
#include "boost/beast/http/parser.hpp"
#include "boost/beast/http/read.hpp"
#include "boost/beast/http/serializer.hpp"
#include "boost/beast/http/write.hpp"
#include "kh/common/strings.h"
#include "kh/http/upstream_pool.h"
#include "internal.h"

namespace kh::http {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

using internal::isConnectionClosed;

// One relayed exchange. Every handler holds it (shared_from_this), so it lives exactly as long
// as one of its operations is pending; all of them run on the client connection's worker.
class Relay : public std::enable_shared_from_this<Relay> {
 public:
  Relay(StreamedRequestPtr request, StreamRelayOptions options,
        std::function<void(ResponseHeader&)> edit_response, StreamRelayCallback done)
      : req_(std::move(request)),
        options_(std::move(options)),
        edit_response_(std::move(edit_response)),
        done_(std::move(done)),
        upstream_(req_->executor()),
        to_upstream_(options_.buffer_bytes),
        to_client_(options_.buffer_bytes),
        request_sr_(req_->parser().get()) {}

  void start() {
    std::string host = options_.host == "localhost" ? std::string("127.0.0.1") : options_.host;
    beast::error_code ec;
    auto address = net::ip::make_address(host, ec);
    if (ec) {
      return fail(absl::InvalidArgumentError(common::strCat("upstream host '", options_.host,
                                                            "' is not a numeric IP address")),
                  502);
    }
    // Beast reads at most the free capacity of the buffer (512 bytes at least): room for a
    // whole piece, or the body would come in header-sized reads.
    req_->buffer().reserve(options_.buffer_bytes);
    upstream_buffer_.reserve(options_.buffer_bytes);
    auto& header = req_->header();
    head_ = header.method() == bhttp::verb::head;
    // The framing is re-made by the serializer from these fields: keep chunked, drop the rest
    // of what belonged to the client's hop (Expect was answered by the server).
    bool chunked = req_->parser().chunked();
    removeHopByHopHeaders(header);
    header.erase(bhttp::field::expect);
    header.version(11);
    if (chunked) req_->parser().get().chunked(true);
    upstream_.expires_at(std::min(options_.deadline, Clock::now() + options_.connect_timeout));
    upstream_.async_connect(tcp::endpoint(address, options_.port),
                            [self = shared_from_this()](beast::error_code ec) {
                              self->onConnect(ec);
                            });
    connecting_ = true;
  }

 private:
  void onConnect(beast::error_code ec) {
    connecting_ = false;
    if (finished_) return maybeDone();
    if (ec) {
      if (Clock::now() >= options_.deadline) {
        return fail(absl::DeadlineExceededError(common::strCat(
                        "deadline passed connecting to ", options_.host, ":", options_.port)),
                    504);
      }
      return fail(absl::UnavailableError(common::strCat(
                      "cannot connect to ", options_.host, ":", options_.port, ": ",
                      ec == beast::error::timeout ? std::string("connect timed out")
                                                  : ec.message())),
                  502);
    }
    beast::error_code ignored;
    upstream_.socket().set_option(tcp::no_delay(true), ignored);
    if (options_.deadline == Clock::time_point::max()) {
      upstream_.expires_never();
    } else {
      upstream_.expires_at(options_.deadline);
    }
    upstream_writing_ = true;
    sent_ = true;  // from here a retry elsewhere could deliver the request twice
    bhttp::async_write_header(upstream_, request_sr_,
                              [self = shared_from_this()](beast::error_code ec, size_t) {
                                self->upstream_writing_ = false;
                                if (self->finished_) return self->maybeDone();
                                if (ec) return self->failUpstream(ec);
                                // Both directions from now on: the upstream may answer early.
                                self->readResponseHeader();
                                self->pumpRequest();
                              });
  }

  // Client -> upstream: one piece at a time through to_upstream_.
  void pumpRequest() {
    auto& p = req_->parser();
    auto& body = p.get().body();
    if (p.is_done()) {
      body.data = nullptr;
      body.size = 0;
      body.more = false;
      return writeRequestBody();
    }
    body.data = to_upstream_.data();
    body.size = to_upstream_.size();
    client_reading_ = true;
    bhttp::async_read_some(req_->socket(), req_->buffer(), p,
                           [self = shared_from_this()](beast::error_code ec, size_t) {
                             self->onClientRead(ec);
                           });
  }

  void onClientRead(beast::error_code ec) {
    client_reading_ = false;
    if (ec == bhttp::error::need_buffer) ec = {};  // the piece is full
    if (finished_) return maybeDone();
    if (ec) {
      if (req_->timedOut()) {
        return fail(absl::CancelledError("the client stalled sending the request body"), 408);
      }
      if (isConnectionClosed(ec) || ec == net::error::operation_aborted) {
        return fail(absl::CancelledError("the client went away"), 499);
      }
      return fail(absl::InvalidArgumentError(
                      common::strCat("malformed request body: ", ec.message())),
                  400);
    }
    req_->progress();
    auto& p = req_->parser();
    auto& body = p.get().body();
    size_t n = to_upstream_.size() - body.size;
    // Nothing parsed yet (a chunk header alone): a zero-size piece would be serialized as the
    // last chunk, so read on instead.
    if (n == 0 && !p.is_done()) return pumpRequest();
    body.size = n;
    body.data = n == 0 ? nullptr : to_upstream_.data();
    body.more = !p.is_done();
    writeRequestBody();
  }

  void writeRequestBody() {
    upstream_writing_ = true;
    bhttp::async_write(upstream_, request_sr_,
                       [self = shared_from_this()](beast::error_code ec, size_t) {
                         self->onUpstreamWrite(ec);
                       });
  }

  void onUpstreamWrite(beast::error_code ec) {
    upstream_writing_ = false;
    if (ec == bhttp::error::need_buffer) ec = {};  // the piece is out
    if (finished_) return maybeDone();
    if (ec) {
      if (ec == beast::error::timeout) return failUpstream(ec);
      // The upstream stopped reading (it answered early and closed, or died): what its
      // response side shows decides the outcome.
      return;
    }
    if (request_sr_.is_done()) return;
    pumpRequest();
  }

  // Upstream -> client.
  void readResponseHeader() {
    response_parser_.emplace();
    response_parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
    response_parser_->header_limit(64u << 10);
    if (head_) response_parser_->skip(true);
    upstream_reading_ = true;
    bhttp::async_read_header(upstream_, upstream_buffer_, *response_parser_,
                             [self = shared_from_this()](beast::error_code ec, size_t) {
                               self->onResponseHeader(ec);
                             });
  }

  void onResponseHeader(beast::error_code ec) {
    upstream_reading_ = false;
    if (finished_) return maybeDone();
    if (ec) return failUpstream(ec);
    auto& message = response_parser_->get();
    unsigned code = message.result_int();
    if (code >= 100 && code < 200 && code != 101) return readResponseHeader();  // interim
    auto& header = message.base();
    bool chunked = response_parser_->chunked();
    removeHopByHopHeaders(header);
    // Chunked is per hop; a 1.0 client gets the raw body, delimited by the close.
    if (chunked && req_->header().version() >= 11) message.chunked(true);
    message.keep_alive(false);
    header.set(bhttp::field::server, req_->serverName());
    if (edit_response_) edit_response_(header);
    http_status_ = static_cast<int>(code);
    req_->startResponse();
    response_sr_.emplace(message);
    client_writing_ = true;
    bhttp::async_write_header(req_->socket(), *response_sr_,
                              [self = shared_from_this()](beast::error_code ec, size_t) {
                                self->onClientWrite(ec);
                              });
  }

  void pumpResponse() {
    auto& p = *response_parser_;
    auto& body = p.get().body();
    if (p.is_done()) {
      body.data = nullptr;
      body.size = 0;
      body.more = false;
      return writeResponseBody();
    }
    body.data = to_client_.data();
    body.size = to_client_.size();
    upstream_reading_ = true;
    bhttp::async_read_some(upstream_, upstream_buffer_, p,
                           [self = shared_from_this()](beast::error_code ec, size_t) {
                             self->onUpstreamRead(ec);
                           });
  }

  void onUpstreamRead(beast::error_code ec) {
    upstream_reading_ = false;
    if (ec == bhttp::error::need_buffer) ec = {};
    if (finished_) return maybeDone();
    if (ec) return failUpstream(ec);
    auto& p = *response_parser_;
    auto& body = p.get().body();
    size_t n = to_client_.size() - body.size;
    if (n == 0 && !p.is_done()) return pumpResponse();  // as in onClientRead
    body.size = n;
    body.data = n == 0 ? nullptr : to_client_.data();
    body.more = !p.is_done();
    writeResponseBody();
  }

  void writeResponseBody() {
    client_writing_ = true;
    bhttp::async_write(req_->socket(), *response_sr_,
                       [self = shared_from_this()](beast::error_code ec, size_t) {
                         self->onClientWrite(ec);
                       });
  }

  void onClientWrite(beast::error_code ec) {
    client_writing_ = false;
    if (ec == bhttp::error::need_buffer) ec = {};
    if (finished_) return maybeDone();
    if (ec) return fail(absl::CancelledError("the client went away during the response"), 499);
    req_->progress();
    if (response_sr_->is_done()) return fail(absl::OkStatus(), http_status_);
    pumpResponse();
  }

  void failUpstream(beast::error_code ec) {
    std::string where = common::strCat(options_.host, ":", options_.port);
    if (ec == beast::error::timeout) {
      return fail(absl::DeadlineExceededError(
                      common::strCat("no complete response from ", where, " before the deadline")),
                  504);
    }
    if (isConnectionClosed(ec)) {
      return fail(absl::UnavailableError(common::strCat("upstream ", where,
                                                        " closed the connection: ", ec.message())),
                  502);
    }
    fail(absl::InternalError(common::strCat("relaying with ", where, " failed: ", ec.message())),
         502);
  }

  // Records the outcome (the first one wins) and stops every pending operation; the callback
  // runs once they all have ended, so it may hand the connection to someone else.
  void fail(absl::Status status, int http_status) {
    if (finished_) return;
    finished_ = true;
    status_ = std::move(status);
    // Once a response started, the client got the upstream's status (if not all its body).
    if (!req_->responseStarted()) http_status_ = http_status;
    beast::error_code ignored;
    upstream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    upstream_.close();
    if (client_reading_ || client_writing_) req_->socket().cancel(ignored);
    maybeDone();
  }

  void maybeDone() {
    if (!finished_ || done_called_ || client_reading_ || client_writing_ || upstream_reading_ ||
        upstream_writing_ || connecting_) {
      return;
    }
    done_called_ = true;
    StreamRelayResult result;
    result.status = status_;
    result.http_status = http_status_;
    result.sent = sent_;
    if (req_->responseStarted()) {
      req_.reset();  // ends the exchange: the connection closes
    } else {
      // A default answer the callback may replace with its own reply().
      Response response;
      response.result(static_cast<unsigned>(http_status_));
      response.set(bhttp::field::content_type, "application/json");
      response.body() = internal::jsonErrorBody(common::toStd(status_.message()));
      req_->reply(std::move(response));
      result.request = std::move(req_);
    }
    auto done = std::move(done_);
    if (done) done(std::move(result));
  }

  StreamedRequestPtr req_;
  const StreamRelayOptions options_;
  std::function<void(ResponseHeader&)> edit_response_;
  StreamRelayCallback done_;
  beast::tcp_stream upstream_;
  beast::flat_buffer upstream_buffer_;
  std::vector<char> to_upstream_;
  std::vector<char> to_client_;
  bhttp::request_serializer<bhttp::buffer_body> request_sr_;
  std::optional<bhttp::response_parser<bhttp::buffer_body>> response_parser_;
  std::optional<bhttp::response_serializer<bhttp::buffer_body>> response_sr_;
  bool head_ = false;
  bool sent_ = false;
  bool finished_ = false;
  bool done_called_ = false;
  bool client_reading_ = false;
  bool client_writing_ = false;
  bool upstream_reading_ = false;
  bool upstream_writing_ = false;
  bool connecting_ = false;
  absl::Status status_;
  int http_status_ = 0;
};

}  // namespace

void relayStreamed(StreamedRequestPtr request, StreamRelayOptions options,
                   std::function<void(ResponseHeader&)> edit_response, StreamRelayCallback done) {
  auto relay = std::make_shared<Relay>(std::move(request), std::move(options),
                                       std::move(edit_response), std::move(done));
  relay->start();
}

}  // namespace kh::http
