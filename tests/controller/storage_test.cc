// storageUri resolution: local paths, PVCs, downloads from a loopback server, escapes refused.

#include "kh/controller/storage.h"

#include <fstream>

#include "gtest/gtest.h"
#include "kh/http/server.h"

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/ssl.hpp"
#include "boost/beast/core/flat_buffer.hpp"
#include "boost/beast/http/read.hpp"
#include "boost/beast/http/write.hpp"
#include "boost/beast/ssl/ssl_stream.hpp"

namespace kh::controller {
namespace {

namespace fs = std::filesystem;

class Files final : public http::Handler {
 public:
  void handle(http::Request& req, http::Response& res) override {
    ++requests;
    if (req.target() == "/models/model.json") {
      res.result(200);
      res.body() = "{\"model\": true}";
    } else {
      res.result(404);
    }
  }
  std::atomic<int> requests{0};
};

class StorageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // One directory per test: CTest runs the tests of this fixture in parallel processes.
    root_ = fs::path(::testing::TempDir()) /
            (std::string("storage-") + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_ / "models/iris");
    fs::create_directories(root_ / "pvcs/claim/iris");
    fs::create_directories(root_ / "outside");
    config_.base_dir = root_;
    config_.allowed_local_roots = {root_ / "models"};
    config_.pvc_root = root_ / "pvcs";
    config_.cache_dir = root_ / "cache";
  }
  fs::path root_;
  StorageConfig config_;
  common::RealTimeSource time_;
};

TEST_F(StorageTest, LocalPathsAndTheirRoots) {
  auto a = resolveStorageUri("models/iris", config_);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(*a, fs::weakly_canonical(root_ / "models/iris"));
  EXPECT_TRUE(resolveStorageUri("file://" + (root_ / "models/iris").string(), config_).ok());
  EXPECT_EQ(resolveStorageUri("models/missing", config_).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(resolveStorageUri("outside", config_).status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(resolveStorageUri("models/../outside", config_).status().code(), absl::StatusCode::kPermissionDenied);
  // A symlink out of the root does not get through either.
  fs::create_directory_symlink(root_ / "outside", root_ / "models/sneaky");
  EXPECT_EQ(resolveStorageUri("models/sneaky", config_).status().code(), absl::StatusCode::kPermissionDenied);
}

TEST_F(StorageTest, PvcPathsStayInTheirClaim) {
  auto p = resolveStorageUri("pvc://claim/iris", config_);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(*p, fs::weakly_canonical(root_ / "pvcs/claim/iris"));
  EXPECT_EQ(resolveStorageUri("pvc://claim/../../outside", config_).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(resolveStorageUri("pvc://../x", config_).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(resolveStorageUri("pvc://claim/none", config_).status().code(), absl::StatusCode::kNotFound);
  // A claim name past NAME_MAX: an error from the lookup, not an exception out of the controller.
  auto long_claim = resolveStorageUri("pvc://" + std::string(300, 'c') + "/iris", config_);
  EXPECT_EQ(long_claim.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(long_claim.status().message().find("File name too long"), std::string::npos) << long_claim.status();
  // The same past the claim, in the model path: not found, as any path that cannot be there.
  EXPECT_EQ(resolveStorageUri("pvc://claim/" + std::string(300, 'p'), config_).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(StorageTest, HttpDownloadsOnceIntoTheCache) {
  Files files;
  auto server = http::HttpServer::create({}, files);
  ASSERT_TRUE(server.ok());
  (*server)->start();
  std::string base = "http://127.0.0.1:" + std::to_string((*server)->port());
  auto dir = resolveStorageUri(base + "/models/model.json", config_);
  ASSERT_TRUE(dir.ok()) << dir.status();
  std::ifstream in(*dir / "model.json");
  std::string text((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(text, "{\"model\": true}");
  EXPECT_TRUE(resolveStorageUri(base + "/models/model.json", config_).ok());
  EXPECT_EQ(files.requests.load(), 1);  // cached
  auto missing = resolveStorageUri(base + "/models/none.json", config_);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(std::string(missing.status().message()).find("HTTP 404"), std::string::npos);
  (*server)->drain(std::chrono::milliseconds(500));
}

TEST_F(StorageTest, TheResolverDownloadsOffTheCallersThreadAndSaysWhenDone) {
  Files files;
  auto server = http::HttpServer::create({}, files);
  ASSERT_TRUE(server.ok());
  (*server)->start();
  std::string uri = "http://127.0.0.1:" + std::to_string((*server)->port()) + "/models/model.json";
  std::string missing = "http://127.0.0.1:" + std::to_string((*server)->port()) + "/models/none.json";
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> done;
  StorageResolver resolver(config_, [&](const std::string& u) {
    std::lock_guard lock(mu);
    done.push_back(u);
    cv.notify_all();
  }, time_, std::chrono::milliseconds(0));
  // Local URIs at once; a download is pending until it is done.
  EXPECT_EQ(resolver.resolve("models/iris").state, StorageResolution::State::kReady);
  EXPECT_EQ(resolver.resolve(uri).state, StorageResolution::State::kPending);
  EXPECT_EQ(resolver.resolve(missing).state, StorageResolution::State::kPending);
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return done.size() == 2; }));
  }
  auto ready = resolver.resolve(uri);
  ASSERT_EQ(ready.state, StorageResolution::State::kReady);
  EXPECT_TRUE(fs::exists(ready.path / "model.json"));
  auto failed = resolver.resolve(missing);
  // A failure is reported, then (retry_after 0) tried again on the next ask.
  EXPECT_EQ(failed.state, StorageResolution::State::kFailed);
  EXPECT_NE(std::string(failed.error.message()).find("HTTP 404"), std::string::npos) << failed.error;
  EXPECT_EQ(resolver.resolve(missing).state, StorageResolution::State::kPending);
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return done.size() == 3; }));
  }
  EXPECT_EQ(files.requests.load(), 3);  // the model once, the missing one twice
  (*server)->drain(std::chrono::milliseconds(500));
}

// The retry window is the injected clock's: a failure stays failed until 10 s have passed on it.
TEST_F(StorageTest, AFailedDownloadIsTriedAgainOnlyAfterTheRetryWindow) {
  Files files;
  auto server = http::HttpServer::create({}, files);
  ASSERT_TRUE(server.ok());
  (*server)->start();
  std::string missing = "http://127.0.0.1:" + std::to_string((*server)->port()) + "/models/none.json";
  std::mutex mu;
  std::condition_variable cv;
  int done = 0;
  common::SimulatedTimeSource time;
  StorageResolver resolver(config_, [&](const std::string&) {
    std::lock_guard lock(mu);
    ++done;
    cv.notify_all();
  }, time, std::chrono::seconds(10));
  auto downloaded = [&](int n) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, std::chrono::seconds(10), [&] { return done == n; });
  };
  EXPECT_EQ(resolver.resolve(missing).state, StorageResolution::State::kPending);
  ASSERT_TRUE(downloaded(1));
  EXPECT_EQ(resolver.resolve(missing).state, StorageResolution::State::kFailed);  // reported
  time.advance(std::chrono::milliseconds(9'999));
  EXPECT_EQ(resolver.resolve(missing).state, StorageResolution::State::kFailed);  // within the window
  EXPECT_EQ(files.requests.load(), 1);
  time.advance(std::chrono::milliseconds(1));
  EXPECT_EQ(resolver.resolve(missing).state, StorageResolution::State::kPending);  // tried again
  ASSERT_TRUE(downloaded(2));
  EXPECT_EQ(files.requests.load(), 2);
  (*server)->drain(std::chrono::milliseconds(500));
}

TEST_F(StorageTest, OtherSchemesAreRefusedClearly) {
  auto s3 = resolveStorageUri("s3://bucket/model", config_);
  EXPECT_EQ(s3.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_NE(std::string(s3.status().message()).find("s3://"), std::string::npos);
}

// A one-request-at-a-time TLS server on loopback with a certificate made for 127.0.0.1.
class TlsFileServer {
 public:
  explicit TlsFileServer(const fs::path& dir) : ctx_(boost::asio::ssl::context::tls_server) {
    cert_ = dir / "cert.pem";
    key_ = dir / "key.pem";
    std::string cmd = "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 "
                      "-addext subjectAltName=IP:127.0.0.1 -keyout " + key_.string() + " -out " +
                      cert_.string() + " >/dev/null 2>&1";
    ok_ = std::system(cmd.c_str()) == 0;
    if (!ok_) return;
    ctx_.use_certificate_chain_file(cert_.string());
    ctx_.use_private_key_file(key_.string(), boost::asio::ssl::context::pem);
    acceptor_.open(boost::asio::ip::tcp::v4());
    acceptor_.bind({boost::asio::ip::make_address("127.0.0.1"), 0});
    acceptor_.listen();
    thread_ = std::thread([this] { serve(); });
  }
  ~TlsFileServer() {
    stopping_ = true;
    if (thread_.joinable()) {
      boost::system::error_code ec;
      boost::asio::ip::tcp::socket poke(ioc_);
      poke.connect(acceptor_.local_endpoint(), ec);  // wakes accept()
      thread_.join();
    }
  }
  bool ok() const { return ok_; }
  uint16_t port() const { return acceptor_.local_endpoint().port(); }
  const fs::path& cert() const { return cert_; }
  std::atomic<int> served{0};

 private:
  void serve() {
    while (!stopping_) {
      boost::system::error_code ec;
      boost::asio::ip::tcp::socket socket(ioc_);
      acceptor_.accept(socket, ec);
      if (ec || stopping_) return;
      boost::beast::ssl_stream<boost::asio::ip::tcp::socket> stream(std::move(socket), ctx_);
      stream.handshake(boost::asio::ssl::stream_base::server, ec);
      if (ec) continue;  // e.g. a client that refused our certificate
      boost::beast::flat_buffer buffer;
      http::Request req;
      boost::beast::http::read(stream, buffer, req, ec);
      if (ec) continue;
      http::Response res{boost::beast::http::status::ok, 11};
      res.body() = "model bytes over tls";
      res.prepare_payload();
      boost::beast::http::write(stream, res, ec);
      ++served;
      stream.shutdown(ec);
    }
  }
  boost::asio::io_context ioc_;
  boost::asio::ssl::context ctx_;
  boost::asio::ip::tcp::acceptor acceptor_{ioc_};
  fs::path cert_, key_;
  bool ok_ = false;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

TEST_F(StorageTest, HttpsDownloadsVerifyTheServer) {
  TlsFileServer server(root_);
  ASSERT_TRUE(server.ok()) << "openssl could not make a test certificate";
  std::string uri = "https://127.0.0.1:" + std::to_string(server.port()) + "/models/model.bst";
  // Not trusted: the download is refused with the reason, nothing is cached.
  auto untrusted = resolveStorageUri(uri, config_);
  ASSERT_FALSE(untrusted.ok());
  EXPECT_NE(std::string(untrusted.status().message()).find("certificate verify failed"), std::string::npos)
      << untrusted.status();
  // Trusted through the configured CA file.
  config_.ca_file = server.cert();
  auto dir = resolveStorageUri(uri, config_);
  ASSERT_TRUE(dir.ok()) << dir.status();
  std::ifstream in(*dir / "model.bst");
  std::string text((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(text, "model bytes over tls");
  EXPECT_EQ(server.served.load(), 1);
}

}  // namespace
}  // namespace kh::controller
