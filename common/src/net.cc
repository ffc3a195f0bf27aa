#include "kh/common/net.h"

#include "kh/common/strings.h"

namespace kh::common {

absl::StatusOr<HostPort> parseHostPort(std::string_view text) {
  std::string_view rest = text;
  uint32_t default_port = 0;
  if (rest.starts_with("http://")) {
    rest.remove_prefix(7);
    default_port = 80;
  } else if (rest.starts_with("https://")) {
    return absl::InvalidArgumentError(
        strCat("'", text, "': https targets are not supported; use http://"));
  }
  if (auto slash = rest.find('/'); slash != std::string_view::npos) rest = rest.substr(0, slash);
  HostPort out;
  std::string_view port_text;
  if (!rest.empty() && rest.front() == '[') {
    auto close = rest.find(']');
    if (close == std::string_view::npos) {
      return absl::InvalidArgumentError(strCat("'", text, "': unterminated IPv6 address"));
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
  if (!port_text.empty() && (!parseInt<uint32_t>(port_text) || (port = *parseInt<uint32_t>(port_text)) == 0 || port > 65535)) {
    return absl::InvalidArgumentError(strCat("'", text, "': bad port '", port_text, "'"));
  }
  if (out.host.empty() || port == 0) {
    return absl::InvalidArgumentError(
        strCat("'", text, "': expected host:port or http://host[:port]"));
  }
  out.port = static_cast<uint16_t>(port);
  return out;
}

}  // namespace kh::common
