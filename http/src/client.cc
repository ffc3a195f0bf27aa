#include "kh/http/client.h"

#include <optional>

#include "boost/asio/connect.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/write.hpp"
#include "boost/beast/core/flat_buffer.hpp"
#include "boost/beast/core/tcp_stream.hpp"
#include "boost/beast/http/read.hpp"
#include "boost/beast/http/write.hpp"
#include "kh/common/strings.h"

namespace kh::http {
namespace {
namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;
}  // namespace

struct Client::Impl {
  net::io_context ioc{1};
  std::optional<beast::tcp_stream> stream;
  beast::flat_buffer buffer;
  bool connected = false;

  // Runs the io_context until the posted operation finishes; the stream's expiry bounds it.
  void run() {
    ioc.restart();
    ioc.run();
  }

  absl::Status connect(const std::string& host, uint16_t port, std::chrono::milliseconds timeout) {
    stream.emplace(ioc);
    buffer.clear();
    beast::error_code ec;
    auto address = net::ip::make_address(host, ec);
    tcp::endpoint endpoint;
    if (ec) {
      tcp::resolver resolver(ioc);
      auto results = resolver.resolve(host, std::to_string(port), ec);
      if (ec || results.empty()) {
        return absl::UnavailableError(common::strCat("cannot resolve ", host, ": ", ec.message()));
      }
      endpoint = *results.begin();
    } else {
      endpoint = tcp::endpoint(address, port);
    }
    stream->expires_after(timeout);
    beast::error_code result;
    stream->async_connect(endpoint, [&](beast::error_code e) { result = e; });
    run();
    if (result) {
      connected = false;
      return absl::UnavailableError(common::strCat("cannot connect to ", host, ":", port, ": ",
                                                   result.message()));
    }
    stream->socket().set_option(tcp::no_delay(true), ec);
    connected = true;
    return absl::OkStatus();
  }
};

Client::Client(std::string host, uint16_t port, std::chrono::milliseconds timeout)
    : host_(std::move(host)), port_(port), timeout_(timeout), impl_(std::make_unique<Impl>()) {}

Client::~Client() = default;

void Client::disconnect() {
  if (impl_->stream) {
    beast::error_code ec;
    impl_->stream->socket().shutdown(tcp::socket::shutdown_both, ec);
    impl_->stream->close();
  }
  impl_->connected = false;
}

absl::StatusOr<Response> Client::send(Request request) {
  if (request.find(bhttp::field::host) == request.end()) {
    request.set(bhttp::field::host, common::strCat(host_, ":", port_));
  }
  request.prepare_payload();
  for (int attempt = 0; attempt < 2; ++attempt) {
    bool reused = impl_->connected;
    if (!impl_->connected) {
      if (auto st = impl_->connect(host_, port_, timeout_); !st.ok()) return st;
    }
    impl_->stream->expires_after(timeout_);
    beast::error_code write_ec, read_ec;
    bool got_bytes = false;
    Response response;
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(1ull << 32);
    bhttp::async_write(*impl_->stream, request, [&](beast::error_code ec, size_t) {
      write_ec = ec;
      // Even when the write failed the server may have answered early (e.g. 413 before the
      // whole body was sent): read what it said.
      bhttp::async_read(*impl_->stream, impl_->buffer, parser, [&](beast::error_code ec, size_t n) {
        read_ec = ec;
        got_bytes = n > 0 || parser.got_some();
      });
    });
    impl_->run();
    beast::error_code ec = read_ec ? (write_ec ? write_ec : read_ec) : beast::error_code{};
    if (!ec) {
      response = parser.release();
      if (!response.keep_alive()) disconnect();
      return response;
    }
    disconnect();
    if (ec == beast::error::timeout) {
      return absl::DeadlineExceededError(common::strCat("no response from ", host_, ":", port_,
                                                        " within ", timeout_.count(), " ms"));
    }
    // A kept-alive connection the server had closed: retry once on a fresh one.
    if (reused && !got_bytes) continue;
    return absl::UnavailableError(
        common::strCat("request to ", host_, ":", port_, " failed: ", ec.message()));
  }
  return absl::UnavailableError("connection closed twice");
}

absl::StatusOr<Response> Client::request(std::string_view method, std::string_view target,
                                         std::string body, std::string_view content_type) {
  Request req;
  req.method_string(beast::string_view(method.data(), method.size()));
  req.target(beast::string_view(target.data(), target.size()));
  req.version(11);
  req.keep_alive(true);
  if (!body.empty() || method == "POST" || method == "PUT") {
    req.set(bhttp::field::content_type, beast::string_view(content_type.data(), content_type.size()));
    req.body() = std::move(body);
  }
  return send(std::move(req));
}

absl::StatusOr<Response> Client::sendRaw(std::string_view bytes, bool half_close) {
  disconnect();
  if (auto st = impl_->connect(host_, port_, timeout_); !st.ok()) return st;
  impl_->stream->expires_after(timeout_);
  beast::error_code result;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(1ull << 32);
  net::async_write(*impl_->stream, net::buffer(bytes.data(), bytes.size()),
                   [&](beast::error_code ec, size_t) {
                     if (ec) {
                       result = ec;
                       return;
                     }
                     if (half_close) {
                       beast::error_code ignored;
                       impl_->stream->socket().shutdown(tcp::socket::shutdown_send, ignored);
                     }
                     bhttp::async_read(*impl_->stream, impl_->buffer, parser,
                                       [&](beast::error_code ec, size_t) { result = ec; });
                   });
  impl_->run();
  disconnect();
  if (result == beast::error::timeout) {
    return absl::DeadlineExceededError(
        common::strCat("no response within ", timeout_.count(), " ms"));
  }
  if (result) {
    return absl::UnavailableError(common::strCat("raw request failed: ", result.message()));
  }
  return parser.release();
}

}  // namespace kh::http
