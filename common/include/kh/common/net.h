#pragma once
// Small helpers for addresses on the command line.

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace kh::common {

struct HostPort {
  std::string host;
  uint16_t port = 0;
};

/**
 * Parses "host:port", "[v6]:port", or a URL "http://host[:port][/...]" (port 80 when absent).
 * @return InvalidArgument with the offending text when it does not parse.
 */
absl::StatusOr<HostPort> parseHostPort(std::string_view text);

}  // namespace kh::common
