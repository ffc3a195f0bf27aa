#include "kh/graph/http_step_client.h"

#include <charconv>

#include "fmt/format.h"
#include "kh/common/strings.h"

namespace kh::graph {
namespace {

struct ParsedUrl {
  std::string scheme;
  std::string authority;  // host[:port], as the Host header
  HostPort address;
  std::string target;  // path and query
};

bool isIpAddress(std::string_view host) {
  if (host == "localhost") return true;
  int dots = 0;
  for (char c : host) {
    if (c == '.') ++dots;
    else if (c < '0' || c > '9') return false;
  }
  return dots == 3;
}

absl::StatusOr<ParsedUrl> parseUrl(std::string_view url) {
  ParsedUrl out;
  auto scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) {
    return absl::InvalidArgumentError(fmt::format("unsupported protocol scheme \"\""));
  }
  out.scheme = std::string(url.substr(0, scheme_end));
  if (out.scheme != "http") {
    return absl::InvalidArgumentError(
        out.scheme == "https" ? std::string("https step URLs are not supported by refstack's router (no TLS)")
                              : fmt::format("unsupported protocol scheme \"{}\"", out.scheme));
  }
  std::string_view rest = url.substr(scheme_end + 3);
  size_t path = rest.find_first_of("/?");
  out.authority = std::string(rest.substr(0, path));
  out.target = path == std::string_view::npos ? "/" : std::string(rest.substr(path));
  if (out.target.front() == '?') out.target.insert(0, "/");
  if (out.authority.empty()) return absl::InvalidArgumentError("http: no Host in request URL");
  std::string_view host = out.authority;
  uint16_t port = 80;
  if (auto colon = host.rfind(':'); colon != std::string_view::npos) {
    std::string_view p = host.substr(colon + 1);
    auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), port);
    if (ec != std::errc() || ptr != p.data() + p.size()) {
      return absl::InvalidArgumentError(fmt::format("invalid port \"{}\" after host", p));
    }
    host = host.substr(0, colon);
  }
  out.address = {std::string(host), port};
  return out;
}

}  // namespace

HttpStepClient::HttpStepClient(boost::asio::any_io_executor executor, std::optional<HostPort> ingress)
    : executor_(std::move(executor)), ingress_(std::move(ingress)) {}

HttpStepClient::~HttpStepClient() = default;

absl::StatusOr<http::UpstreamPool*> HttpStepClient::poolFor(const HostPort& upstream) {
  std::string key = fmt::format("{}:{}", upstream.host, upstream.port);
  auto it = pools_.find(key);
  if (it != pools_.end()) return it->second.get();
  http::UpstreamPoolOptions options;
  options.host = upstream.host;
  options.port = upstream.port;
  auto pool = http::UpstreamPool::create(executor_, options);
  if (!pool.ok()) return pool.status();
  return (pools_[key] = std::move(*pool)).get();
}

void HttpStepClient::call(StepRequest request, Callback done) {
  auto url = parseUrl(request.url);
  if (!url.ok()) return std::move(done)(url.status());
  HostPort upstream = url->address;
  if (!isIpAddress(upstream.host)) {
    if (!ingress_) {
      return std::move(done)(absl::UnavailableError(
          fmt::format("dial tcp: lookup {}: no ingress to reach it (KH_INGRESS_ADDRESS is not set)", upstream.host)));
    }
    upstream = *ingress_;
  }
  auto pool = poolFor(upstream);
  if (!pool.ok()) return std::move(done)(pool.status());
  http::Request req{boost::beast::http::verb::post, url->target, 11};
  req.set(boost::beast::http::field::host, url->authority);
  for (const auto& [name, value] : request.headers) req.insert(name, value);
  req.body() = std::move(request.body);
  req.prepare_payload();
  // No serviceClient timeout: the call waits as long as the step takes (Go's default client);
  // the revision's timeout in front of the step still ends it.
  auto timeout = request.timeout.value_or(std::chrono::hours(24));
  (*pool)->send(std::move(req), timeout,
                [done = std::move(done), timeout, explicit_timeout = request.timeout.has_value()](
                    http::UpstreamResult&& r, bool) mutable {
                  if (!r.ok()) {
                    if (r.status().code() == absl::StatusCode::kDeadlineExceeded && explicit_timeout) {
                      return std::move(done)(absl::DeadlineExceededError(fmt::format(
                          "context deadline exceeded (Client.Timeout exceeded while awaiting headers; serviceClient {} s)",
                          std::chrono::duration_cast<std::chrono::seconds>(timeout).count())));
                    }
                    return std::move(done)(r.status());
                  }
                  std::move(done)(StepResponse{static_cast<int>(r->result_int()), std::move(r->body())});
                });
}

}  // namespace kh::graph
