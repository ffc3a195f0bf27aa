// The load engine against real servers on loopback: coordinated omission, open and closed loop,
// HTTP and gRPC, errors counted, golden checks.

#include "kh/loadgen/engine.h"

#include <atomic>
#include <fstream>
#include <thread>

#include "gtest/gtest.h"
#include "kh/common/time_source.h"
#include "kh/http/server.h"
#include "kh/loadgen/payload.h"
#include "kh/loadgen/results.h"
#include "support/modelserver_process.h"

namespace kh::loadgen {
namespace {

using namespace std::chrono_literals;

// Answers at once, except that once a second the whole server stalls for 200 ms (a GC pause,
// say): the handler blocks its only worker, so every request behind it waits.
class StallingHandler final : public http::Handler {
 public:
  void handle(http::Request&, http::Response& res) override {
    auto now = std::chrono::steady_clock::now();
    if (now - last_stall_ >= 1s) {
      last_stall_ = now;
      std::this_thread::sleep_for(200ms);  // the stall under test, not synchronisation
    }
    res.result(200);
    res.body() = "{}";
  }

 private:
  std::chrono::steady_clock::time_point last_stall_ = std::chrono::steady_clock::now();
};

TEST(Engine, CoordinatedOmissionIsCorrected) {
  StallingHandler handler;
  auto server = http::HttpServer::create({}, handler);
  ASSERT_TRUE(server.ok());
  (*server)->start();
  LoadOptions options;
  options.schedule = makeConstantSchedule(200, 3s);
  options.duration = 3s;
  options.connections = 4;
  options.window = 1s;
  common::RealTimeSource time;
  HttpRequestSpec spec;
  spec.method = "GET";
  spec.path = "/";
  auto result = runHttpLoad("127.0.0.1", (*server)->port(), spec, std::move(options), time);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->completed, 600);
  EXPECT_EQ(result->succeeded, 600);
  // Requests scheduled during each 200 ms stall are late: from their intended send times the
  // p99 is over 100 ms, while most requests are served quickly.
  EXPECT_GT(result->corrected.valueAtPercentile(99), 100'000'000);
  EXPECT_LT(result->service.valueAtPercentile(50), 20'000'000);
  EXPECT_GT(result->delayed, 0);
  (*server)->drain(1s);
}

class ModelServerLoad : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto s = testing::startModelServer("iris", testing::modelDir("xgboost-iris"));
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = new testing::ModelServerProcess(std::move(*s));
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  static testing::ModelServerProcess* server_;
  common::RealTimeSource time_;
};
testing::ModelServerProcess* ModelServerLoad::server_ = nullptr;

TEST_F(ModelServerLoad, ClosedLoopOverHttpWithGoldenCheck) {
  auto meta = fetchMetadata("127.0.0.1", server_->http_port, "", "iris");
  ASSERT_TRUE(meta.ok()) << meta.status();
  protocols::InferenceRequest req;
  std::vector<float> x = {6.8f, 2.8f, 4.8f, 1.4f, 6.0f, 3.4f, 4.5f, 1.6f};
  req.inputs.push_back(protocols::Tensor::fromValues<float>("input-0", protocols::DataType::kFp32, {2, 4}, x));
  auto payload = encodePayload(req, WireProtocol::kV2, "iris", "test");
  std::string golden = ::testing::TempDir() + "/golden.json";
  std::ofstream(golden) << R"({"model_name":"iris","outputs":[{"name":"output-0","datatype":"INT64","shape":[2],"data":[1,1]}]})";
  auto check = makeGoldenCheck(golden, WireProtocol::kV2, 0, 0);
  ASSERT_TRUE(check.ok());
  LoadOptions options;
  options.concurrency = 4;
  options.threads = 2;
  options.max_requests = 2000;
  options.duration = 30s;
  options.check = *check;
  auto result = runHttpLoad("127.0.0.1", server_->http_port, payload.http, std::move(options), time_);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->completed, 2000);
  EXPECT_EQ(result->succeeded, 2000) << result->first_error;
  EXPECT_EQ(result->status_codes.at(200), 2000);
}

TEST_F(ModelServerLoad, GoldenMismatchAndHttpErrorsAreCountedByKind) {
  protocols::InferenceRequest req;
  std::vector<float> x = {6.8f, 2.8f, 4.8f, 1.4f};
  req.inputs.push_back(protocols::Tensor::fromValues<float>("input-0", protocols::DataType::kFp32, {1, 4}, x));
  auto payload = encodePayload(req, WireProtocol::kV2, "iris", "test");
  std::string golden = ::testing::TempDir() + "/golden-wrong.json";
  std::ofstream(golden) << R"({"predictions": [2]})";
  LoadOptions options;
  options.concurrency = 2;
  options.max_requests = 100;
  options.check = *makeGoldenCheck(golden, WireProtocol::kV2, 0, 0);
  auto result = runHttpLoad("127.0.0.1", server_->http_port, payload.http, std::move(options), time_);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->errors.at("check"), 100);
  // Unknown model: HTTP 404 counted as status errors.
  auto wrong = encodePayload(req, WireProtocol::kV2, "nope", "test");
  LoadOptions o2;
  o2.concurrency = 2;
  o2.max_requests = 50;
  result = runHttpLoad("127.0.0.1", server_->http_port, wrong.http, std::move(o2), time_);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->errors.at("status"), 50);
  EXPECT_EQ(result->status_codes.at(404), 50);
}

TEST_F(ModelServerLoad, OpenLoopPoissonOverGrpcAndBinaryHttp) {
  auto meta = fetchMetadata("", 0, server_->grpcTarget(), "iris");
  ASSERT_TRUE(meta.ok()) << meta.status();
  auto req = generateRequest(*meta, 4, 7);
  auto grpc_payload = encodePayload(req, WireProtocol::kGrpc, "iris", "generated");
  LoadOptions options;
  options.schedule = makePoissonSchedule(500, 2s, 3);
  options.duration = 2s;
  options.connections = 8;
  GrpcRequestSpec spec = grpc_payload.grpc;
  spec.target = server_->grpcTarget();
  auto result = runGrpcLoad(spec, std::move(options), time_);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_GT(result->completed, 850);
  EXPECT_LT(result->completed, 1150);
  EXPECT_EQ(result->succeeded, result->completed) << result->first_error;

  auto binary = encodePayload(req, WireProtocol::kV2Binary, "iris", "generated");
  LoadOptions o2;
  o2.schedule = makeConstantSchedule(400, 1s);
  o2.duration = 1s;
  auto http_result = runHttpLoad("127.0.0.1", server_->http_port, binary.http, std::move(o2), time_);
  ASSERT_TRUE(http_result.ok());
  EXPECT_EQ(http_result->completed, 400);
  EXPECT_EQ(http_result->succeeded, 400) << http_result->first_error;
  // Results as documents.
  RunConfig config;
  config.mode = "constant";
  config.protocol = "v2-binary";
  auto doc = runToJson(*http_result, config);
  EXPECT_EQ(doc["summary"]["completed"], 400);
  EXPECT_FALSE(doc["percentile_curve"].empty());
  EXPECT_NE(perfAnalyzerCsv({doc}).find("Request Rate,Inferences/Second"), std::string::npos);
  EXPECT_NE(hdrIntervalLog(*http_result, 0).find("HISTFAA"), std::string::npos);
}

TEST(Engine, UnreachableTargetIsUnavailableAndStops) {
  LoadOptions options;
  options.concurrency = 2;
  options.duration = 5s;
  options.request_timeout = 500ms;
  common::RealTimeSource time;
  HttpRequestSpec spec;
  spec.path = "/";
  auto result = runHttpLoad("127.0.0.1", 1, spec, std::move(options), time);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace kh::loadgen
