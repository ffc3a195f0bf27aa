#include "kh/controller/storage.h"

#include <openssl/ssl.h>

#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/ssl.hpp"
#include "boost/beast/core/flat_buffer.hpp"
#include "boost/beast/core/tcp_stream.hpp"
#include "boost/beast/http/parser.hpp"
#include "boost/beast/http/read.hpp"
#include "boost/beast/http/write.hpp"
#include "boost/beast/ssl/ssl_stream.hpp"

#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

#include "kh/common/net.h"
#include "kh/common/strings.h"
#include "kh/http/client.h"

namespace kh::controller {
namespace {

namespace fs = std::filesystem;

// Whether `path` (canonical) lies inside `root` (canonical).
bool within(const fs::path& path, const fs::path& root) {
  auto p = path.lexically_normal(), r = root.lexically_normal();
  auto pi = p.begin();
  for (auto ri = r.begin(); ri != r.end(); ++ri, ++pi) {
    if (ri->empty()) continue;  // trailing separator
    if (pi == p.end() || *pi != *ri) return false;
  }
  return true;
}

absl::StatusOr<fs::path> existing(const fs::path& path, const std::string& uri) {
  std::error_code ec;
  auto canonical = fs::weakly_canonical(path, ec);
  if (ec || !fs::exists(canonical, ec)) {
    return absl::NotFoundError(common::strCat("storageUri ", uri, ": ", path.string(), " does not exist"));
  }
  return canonical;
}

// GET over TLS with the peer verified (system CAs, plus config.ca_file) and its name checked.
absl::StatusOr<http::Response> httpsGet(const std::string& host, uint16_t port, const std::string& path,
                                        const StorageConfig& config) {
  namespace net = boost::asio;
  namespace ssl = boost::asio::ssl;
  namespace beast = boost::beast;
  net::io_context ioc;
  ssl::context ctx(ssl::context::tls_client);
  beast::error_code ec;
  ctx.set_default_verify_paths(ec);
  if (!config.ca_file.empty()) {
    ctx.load_verify_file(config.ca_file.string(), ec);
    if (ec) return absl::InvalidArgumentError(common::strCat("cannot read CA file ", config.ca_file.string(), ": ", ec.message()));
  }
  ctx.set_verify_mode(ssl::verify_peer);
  beast::ssl_stream<beast::tcp_stream> stream(ioc, ctx);
  stream.set_verify_callback(ssl::host_name_verification(host));
  if (!SSL_set_tlsext_host_name(stream.native_handle(), host.c_str())) {
    return absl::InternalError("cannot set the TLS server name");
  }
  net::ip::tcp::resolver resolver(ioc);
  auto endpoints = resolver.resolve(host, std::to_string(port), ec);
  if (ec) return absl::UnavailableError(common::strCat("cannot resolve ", host, ": ", ec.message()));
  beast::get_lowest_layer(stream).expires_after(config.download_timeout);
  beast::get_lowest_layer(stream).connect(endpoints, ec);
  if (!ec) stream.handshake(ssl::stream_base::client, ec);
  if (ec) return absl::UnavailableError(common::strCat("TLS connection to ", host, ":", port, " failed: ", ec.message()));
  http::Request req{beast::http::verb::get, path, 11};
  req.set(beast::http::field::host, host);
  req.set(beast::http::field::user_agent, "kserve-harness-refstack");
  beast::http::write(stream, req, ec);
  beast::flat_buffer buffer;
  beast::http::response_parser<beast::http::string_body> parser;
  parser.body_limit(std::uint64_t{8} << 30);
  if (!ec) beast::http::read(stream, buffer, parser, ec);
  if (ec) return absl::UnavailableError(common::strCat("https GET ", path, " failed: ", ec.message()));
  beast::error_code ignored;
  stream.shutdown(ignored);
  return parser.release();
}

absl::StatusOr<fs::path> download(const std::string& uri, const StorageConfig& config) {
  bool tls = uri.rfind("https://", 0) == 0;
  std::string rest = uri.substr(tls ? 8 : 7);  // after the scheme
  std::string authority = rest.substr(0, rest.find('/'));
  if (authority.find(':') == std::string::npos || authority.back() == ']') authority += tls ? ":443" : ":80";
  auto target = common::parseHostPort(authority);
  if (!target.ok()) return target.status();
  auto slash = rest.find('/');
  std::string path = slash == std::string::npos ? "/" : rest.substr(slash);
  std::string file_name = fs::path(path.substr(0, path.find('?'))).filename().string();
  if (file_name.empty()) {
    return absl::InvalidArgumentError(common::strCat("storageUri ", uri, " names no file to download"));
  }
  fs::path dir = config.cache_dir / common::strCat(std::hash<std::string>{}(uri));
  fs::path file = dir / file_name;
  std::error_code ec;
  if (fs::exists(file, ec)) return dir;  // downloaded before
  absl::StatusOr<http::Response> res = absl::UnknownError("");
  if (tls) {
    res = httpsGet(target->host, target->port, path, config);
  } else {
    http::Client client(target->host, target->port, config.download_timeout);
    res = client.request("GET", path);
  }
  if (!res.ok()) {
    return absl::UnavailableError(common::strCat("storageUri ", uri, ": download failed: ",
                                                 common::toStd(res.status().message())));
  }
  if (res->result_int() != 200) {
    return absl::UnavailableError(
        common::strCat("storageUri ", uri, ": download answered HTTP ", res->result_int()));
  }
  fs::create_directories(dir, ec);
  // Written under a temporary name and renamed, so a half download is never taken for a model.
  fs::path tmp = dir / (file_name + ".part");
  {
    std::ofstream out(tmp, std::ios::binary);
    out.write(res->body().data(), static_cast<std::streamsize>(res->body().size()));
    if (!out) return absl::InternalError(common::strCat("cannot write ", tmp.string()));
  }
  fs::rename(tmp, file, ec);
  if (ec) return absl::InternalError(common::strCat("cannot write ", file.string(), ": ", ec.message()));
  return dir;
}

}  // namespace

absl::StatusOr<fs::path> resolveStorageUri(const std::string& uri, const StorageConfig& config) {
  if (uri.rfind("pvc://", 0) == 0) {
    if (config.pvc_root.empty()) {
      return absl::FailedPreconditionError(
          common::strCat("storageUri ", uri, ": no PVC directory is configured (pvc_root)"));
    }
    std::string rest = uri.substr(6);
    auto slash = rest.find('/');
    std::string claim = rest.substr(0, slash);
    if (claim.empty() || claim == "." || claim == "..") {
      return absl::InvalidArgumentError(common::strCat("storageUri ", uri, ": bad PVC name"));
    }
    std::error_code ec;  // a claim name past NAME_MAX fails here: an error, not an exception
    fs::path claim_root = fs::weakly_canonical(config.pvc_root / claim, ec);
    if (ec) return absl::InvalidArgumentError(common::strCat("storageUri ", uri, ": ", ec.message()));
    fs::path path = claim_root / (slash == std::string::npos ? "" : rest.substr(slash + 1));
    auto resolved = existing(path, uri);
    if (!resolved.ok()) return resolved.status();
    if (!within(*resolved, claim_root)) {
      return absl::PermissionDeniedError(common::strCat("storageUri ", uri, " escapes its PVC"));
    }
    return *resolved;
  }
  if (uri.rfind("http://", 0) == 0 || uri.rfind("https://", 0) == 0) {
    if (config.cache_dir.empty()) {
      return absl::FailedPreconditionError(common::strCat("storageUri ", uri, ": no download cache is configured"));
    }
    return download(uri, config);
  }
  std::string path_text;
  if (uri.rfind("file://", 0) == 0) {
    path_text = uri.substr(7);
  } else if (uri.find("://") == std::string::npos) {
    path_text = uri;
  } else {
    return absl::UnimplementedError(common::strCat(
        "storageUri ", uri, ": the reference stack fetches only file://, local paths, pvc://, "
        "http:// and https:// (", uri.substr(0, uri.find("://") + 3), " needs a real cluster)"));
  }
  fs::path path = fs::path(path_text).is_absolute() ? fs::path(path_text) : config.base_dir / path_text;
  auto resolved = existing(path, uri);
  if (!resolved.ok()) return resolved.status();
  if (!config.allowed_local_roots.empty()) {
    bool ok = false;
    for (const auto& root : config.allowed_local_roots) {
      std::error_code ec;
      ok = ok || within(*resolved, fs::weakly_canonical(root, ec));
    }
    if (!ok) {
      return absl::PermissionDeniedError(
          common::strCat("storageUri ", uri, " is outside the allowed model directories"));
    }
  }
  return *resolved;
}

bool isDownload(const std::string& uri) {
  return uri.rfind("http://", 0) == 0 || uri.rfind("https://", 0) == 0;
}

// What the resolver and its download threads share; the threads may outlive the resolver.
struct StorageResolver::Shared {
  StorageConfig config;
  std::function<void(const std::string&)> on_done;
  std::chrono::milliseconds retry_after;
  const common::TimeSource* time = nullptr;  // read only while alive: it may not outlive the resolver
  std::mutex mu;
  bool alive = true;  // guarded by mu
  struct Entry {
    StorageResolution resolution;
    common::MonotonicTime failed_at;
    bool failure_reported = false;  // a failure is given out once before it is tried again
  };
  std::map<std::string, Entry> entries;  // guarded by mu
};

StorageResolver::StorageResolver(StorageConfig config, std::function<void(const std::string&)> on_done,
                                 const common::TimeSource& time, std::chrono::milliseconds retry_after)
    : shared_(std::make_shared<Shared>()) {
  shared_->config = std::move(config);
  shared_->on_done = std::move(on_done);
  shared_->retry_after = retry_after;
  shared_->time = &time;
}

StorageResolver::~StorageResolver() {
  std::lock_guard lock(shared_->mu);
  shared_->alive = false;
}

StorageResolution StorageResolver::resolve(const std::string& uri) {
  if (!isDownload(uri)) {
    auto r = resolveStorageUri(uri, shared_->config);
    if (!r.ok()) return {StorageResolution::State::kFailed, {}, r.status()};
    return {StorageResolution::State::kReady, *r, absl::OkStatus()};
  }
  {
    std::lock_guard lock(shared_->mu);
    auto it = shared_->entries.find(uri);
    if (it != shared_->entries.end()) {
      auto& e = it->second;
      bool failed = e.resolution.state == StorageResolution::State::kFailed;
      bool retry = failed && e.failure_reported &&
                   shared_->time->monotonicTime() - e.failed_at >= shared_->retry_after;
      if (!retry) {
        if (failed) e.failure_reported = true;
        return e.resolution;
      }
    }
    shared_->entries[uri] = {};  // pending
  }
  // Blocking I/O on a thread of its own; it holds the shared state, not the resolver.
  std::thread([shared = shared_, uri] {
    auto r = resolveStorageUri(uri, shared->config);
    std::lock_guard lock(shared->mu);
    // Under the lock: the resolver (its clock, and whoever on_done calls) cannot go away meanwhile.
    if (!shared->alive) return;
    auto& e = shared->entries[uri];
    if (r.ok()) {
      e.resolution = {StorageResolution::State::kReady, *r, absl::OkStatus()};
    } else {
      e.resolution = {StorageResolution::State::kFailed, {}, r.status()};
      e.failed_at = shared->time->monotonicTime();
    }
    if (shared->on_done) shared->on_done(uri);
  }).detach();
  return {};
}

}  // namespace kh::controller
