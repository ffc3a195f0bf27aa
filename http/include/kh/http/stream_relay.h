#pragma once
// Relays a streamed request (kh::http::StreamedRequest) to one upstream over a dedicated TCP
// connection and the upstream's response back, both in bounded pieces: Beast's relay pattern
// (parser<buffer_body> + serializer<buffer_body>, error::need_buffer), made asynchronous. Memory
// per exchange is two fixed buffers plus the parsers' read buffers, whatever the body sizes.
// Content-Length and chunked framing are kept on both legs. The two directions run at once, so
// an upstream that answers before it read the whole body (413) is relayed as it answers.

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "boost/beast/http/message.hpp"
#include "kh/http/server.h"

namespace kh::http {

using ResponseHeader = boost::beast::http::response_header<>;

struct StreamRelayOptions {
  /** A numeric IP address ("localhost" is taken as 127.0.0.1). */
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  /** Bounds the whole exchange with the upstream: connect, request, response. */
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  std::chrono::milliseconds connect_timeout{1'000};
  /** The size of each of the two relay buffers (one per direction). */
  size_t buffer_bytes = 64u << 10;
};

/** The outcome of relayStreamed(), given to its callback once every operation has ended. */
struct StreamRelayResult {
  /**
   * OK when the upstream's whole response was relayed. Otherwise: Unavailable (cannot connect,
   * the upstream closed), DeadlineExceeded (the deadline passed), Internal (a malformed
   * response), InvalidArgument (a malformed request body), Cancelled (the client went away or
   * stalled past the server's timeout), InvalidArgument for a bad upstream address.
   */
  absl::Status status;
  /**
   * The status code the client got or should get: the upstream's when its response header was
   * relayed, else the one matching `status` (502, 504, 400, 408, or 499 for a client gone).
   */
  int http_status = 0;
  /** Whether any byte of the request reached the upstream (false: safe to retry elsewhere). */
  bool sent = false;
  /**
   * The exchange, given back when no response byte was written to the client: the callback
   * decides what the client gets (a retry elsewhere, or reply() with an error). Null once a
   * response started; destroying it ends the exchange (see StreamedRequest).
   */
  StreamedRequestPtr request;
};

using StreamRelayCallback = absl::AnyInvocable<void(StreamRelayResult&&)>;

/**
 * Forwards `request`'s header as it stands (edit it first: forwarding headers, etc.; Expect and
 * the hop-by-hop headers are not forwarded) and its body, then relays the response. The
 * response header loses its hop-by-hop headers, gets Server and Connection: close (the client
 * connection closes after a streamed exchange) and then goes through `edit_response` (may be
 * empty) before it is written.
 *
 * Must be called on request->executor(); `edit_response` and `done` run there. `done` is called
 * exactly once, after every operation of the relay ended, unless the worker's io_context is
 * destroyed first (server shutdown): then neither runs.
 */
void relayStreamed(StreamedRequestPtr request, StreamRelayOptions options,
                   std::function<void(ResponseHeader&)> edit_response, StreamRelayCallback done);

}  // namespace kh::http
