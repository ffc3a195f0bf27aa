// storageUri resolution: local paths, PVCs, downloads from a loopback server, escapes refused.

#include "kh/controller/storage.h"

#include <fstream>

#include "gtest/gtest.h"
#include "kh/http/server.h"

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

TEST_F(StorageTest, OtherSchemesAreRefusedClearly) {
  auto s3 = resolveStorageUri("s3://bucket/model", config_);
  EXPECT_EQ(s3.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_NE(std::string(s3.status().message()).find("s3://"), std::string::npos);
  EXPECT_EQ(resolveStorageUri("https://host/m.json", config_).status().code(), absl::StatusCode::kUnimplemented);
}

}  // namespace
}  // namespace kh::controller
