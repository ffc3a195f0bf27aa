// The REST frontend in-process over a real HttpServer on loopback: routing, methods, errors.

#include "kh/modelserver/rest_handler.h"

#include "gtest/gtest.h"
#include "kh/http/client.h"
#include "support/modelserver_process.h"

namespace kh::modelserver {
namespace {

class RestHandlerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    inference_.registerModel("iris", "auto", testing::modelDir("xgboost-iris"));
    ASSERT_TRUE(inference_.loadModel("iris").ok());
    auto server = http::HttpServer::create({}, handler_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    server_->start();
    client_ = std::make_unique<http::Client>("127.0.0.1", server_->port());
  }
  void TearDown() override {
    if (server_) server_->drain(std::chrono::milliseconds(1000));
  }

  common::RealTimeSource time_;
  InferenceServer inference_{"test", "0"};
  ServerMetrics metrics_;
  RestHandler handler_{inference_, inference_, metrics_, time_};
  std::unique_ptr<http::HttpServer> server_;
  std::unique_ptr<http::Client> client_;
};

TEST_F(RestHandlerTest, WrongMethodIs405WithAllow) {
  auto r = client_->request("GET", "/v2/models/iris/infer");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->result_int(), 405u);
  EXPECT_EQ(std::string((*r)[boost::beast::http::field::allow]), "POST");
  r = client_->request("POST", "/v2/health/ready", "{}");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->result_int(), 405u);
}

TEST_F(RestHandlerTest, UnknownPathsAre404InTheErrorShape) {
  for (const char* path : {"/v3", "/v2/models/iris/bogus", "/v1/models/iris/extra", "/v2x",
                           "/v2/repository/models/iris/explode"}) {
    auto r = client_->request("GET", path);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->result_int(), 404u) << path;
    EXPECT_NE(r->body().find("\"error\""), std::string::npos) << path;
  }
}

TEST_F(RestHandlerTest, QueryStringsAreIgnoredForRouting) {
  auto r = client_->request("GET", "/v2/health/live?probe=1");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->result_int(), 200u);
}

TEST_F(RestHandlerTest, RepositoryUnloadAndLoad) {
  auto r = client_->request("POST", "/v2/repository/models/iris/unload");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->body(), R"({"name":"iris","unload":true})");
  r = client_->request("GET", "/v2/models/iris/ready");
  EXPECT_EQ(r->result_int(), 503u);
  r = client_->request("POST", "/v2/repository/models/iris/load");
  EXPECT_EQ(r->body(), R"({"name":"iris","load":true})");
  r = client_->request("GET", "/v2/models/iris/ready");
  EXPECT_EQ(r->result_int(), 200u);
  r = client_->request("POST", "/v2/repository/models/nope/load");
  EXPECT_EQ(r->result_int(), 404u);
}

TEST_F(RestHandlerTest, BinaryOutputSetsHeaderAndContentType) {
  auto r = client_->request(
      "POST", "/v2/models/iris/infer",
      R"({"inputs":[{"name":"input-0","shape":[1,4],"datatype":"FP32","data":[6.8,2.8,4.8,1.4]}],)"
      R"("parameters":{"binary_data_output":true}})");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->result_int(), 200u);
  auto header = (*r)["Inference-Header-Content-Length"];
  ASSERT_FALSE(header.empty());
  size_t json_len = std::stoul(std::string(header));
  // One INT64 class index follows the JSON header.
  EXPECT_EQ(r->body().size(), json_len + 8);
  EXPECT_EQ(std::string((*r)[boost::beast::http::field::content_type]), "application/octet-stream");
}

}  // namespace
}  // namespace kh::modelserver
