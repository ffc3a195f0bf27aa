#include "kh/common/net.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"

namespace kh::common {

absl::StatusOr<HostPort> parseHostPort(std::string_view text) {
  std::string_view rest = text;
  uint32_t default_port = 0;
  if (absl::StartsWith(rest, "http://")) {
    rest.remove_prefix(7);
    default_port = 80;
  } else if (absl::StartsWith(rest, "https://")) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", text, "': https targets are not supported; use http://"));
  }
  if (auto slash = rest.find('/'); slash != std::string_view::npos) rest = rest.substr(0, slash);
  HostPort out;
  std::string_view port_text;
  if (!rest.empty() && rest.front() == '[') {
    auto close = rest.find(']');
    if (close == std::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat("'", text, "': unterminated IPv6 address"));
    }
    out.host = std::string(rest.substr(1, close - 1));
    rest.remove_prefix(close + 1);
    if (!rest.empty() && rest.front() == ':') port_text = rest.substr(1);
  } else {
    auto colon = rest.rfind(':');
    out.host = std::string(rest.substr(0, colon));
    if (colon != std::string_view::npos) port_text = rest.substr(colon + 1);
  }
  uint32_t port = default_port;
  if (!port_text.empty() && (!absl::SimpleAtoi(port_text, &port) || port == 0 || port > 65535)) {
    return absl::InvalidArgumentError(absl::StrCat("'", text, "': bad port '", port_text, "'"));
  }
  if (out.host.empty() || port == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", text, "': expected host:port or http://host[:port]"));
  }
  out.port = static_cast<uint16_t>(port);
  return out;
}

}  // namespace kh::common
