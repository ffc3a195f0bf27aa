#pragma once
// Internal to kh::http: pieces the server, the upstream pool and the stream relay share.

#include <string>
#include <string_view>

#include "boost/asio/error.hpp"
#include "boost/beast/core/error.hpp"
#include "boost/beast/http/error.hpp"

namespace kh::http::internal {

/** `{"error":"<message>"}`, the protocol's error shape; control characters become spaces. */
inline std::string jsonErrorBody(std::string_view message) {
  std::string body = "{\"error\":\"";
  for (char c : message) {
    if (c == '"' || c == '\\') body.push_back('\\');
    body.push_back(static_cast<unsigned char>(c) < 0x20 ? ' ' : c);
  }
  body += "\"}";
  return body;
}

/** Whether `ec` means the peer closed or reset the connection. */
inline bool isConnectionClosed(const boost::beast::error_code& ec) {
  namespace net = boost::asio;
  namespace bhttp = boost::beast::http;
  return ec == bhttp::error::end_of_stream || ec == bhttp::error::partial_message ||
         ec == net::error::eof || ec == net::error::connection_reset ||
         ec == net::error::broken_pipe || ec == net::error::connection_aborted;
}

}  // namespace kh::http::internal
