// The load engine against real servers on loopback: coordinated omission, open and closed loop,
// HTTP and gRPC, errors counted, golden checks, per-request recording.

#include "kh/loadgen/engine.h"

#include <algorithm>
#include <atomic>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>

#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "kh/common/time_source.h"
#include "kh/protocols/grpc_predict_v2.grpc.pb.h"
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

// Answers like an ingress splitting traffic: each response names the revision that served it
// in Kh-Revision (two revisions in turn); every tenth request is refused with 503.
class RevisionHandler final : public http::Handler {
 public:
  void handle(http::Request&, http::Response& res) override {
    int64_t n = next_.fetch_add(1);
    std::string revision = n % 2 == 0 ? "rev-a" : "rev-b";
    res.result(n % 10 == 9 ? 503 : 200);
    res.set("Kh-Revision", revision);
    res.body() = "{}";
    std::lock_guard lock(mu_);
    ++served_[{revision, res.result_int()}];
  }
  std::map<std::pair<std::string, int>, int64_t> served() {
    std::lock_guard lock(mu_);
    return served_;
  }

 private:
  std::atomic<int64_t> next_{0};
  std::mutex mu_;
  std::map<std::pair<std::string, int>, int64_t> served_;
};

// What the records of a run say, in the handler's terms.
std::map<std::pair<std::string, int>, int64_t> recorded(const RunResult& result) {
  std::map<std::pair<std::string, int>, int64_t> out;
  for (const auto& r : result.records) ++out[{r.header, r.status}];
  return out;
}

bool inIntendedOrder(const RunResult& result) {
  return std::is_sorted(result.records.begin(), result.records.end(),
                        [](const RequestRecord& a, const RequestRecord& b) { return a.intended_s < b.intended_s; });
}

TEST(Engine, RecordsEveryRequestWithItsHeaderInIntendedOrder) {
  RevisionHandler handler;
  http::ServerOptions server_options;
  server_options.workers = 2;
  auto server = http::HttpServer::create(server_options, handler);
  ASSERT_TRUE(server.ok());
  (*server)->start();
  common::RealTimeSource time;
  HttpRequestSpec spec;
  spec.path = "/";
  spec.body = "{}";

  // Closed loop over two threads: every request is recorded once, with the header's value
  // (matched without regard to case) and its status.
  LoadOptions closed;
  closed.concurrency = 3;
  closed.threads = 2;
  closed.max_requests = 300;
  closed.duration = 30s;
  closed.recording = {true, "kh-revision", 300};
  auto before = time.systemTime();
  auto result = runHttpLoad("127.0.0.1", (*server)->port(), spec, std::move(closed), time);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->completed, 300);
  ASSERT_EQ(result->records.size(), 300u);
  EXPECT_EQ(recorded(*result), handler.served());
  EXPECT_EQ(result->errors.at("status"), 30);
  EXPECT_TRUE(inIntendedOrder(*result));
  EXPECT_GE(result->started, before);
  for (const auto& r : result->records) {
    EXPECT_EQ(r.error, r.status == 503 ? ErrorKind::kHttpStatus : ErrorKind::kNone);
    EXPECT_GT(r.latency_ns, 0);
    EXPECT_LE(r.service_ns, r.latency_ns);
  }

  // Open loop: the records' intended times are the schedule's (200/s: one every 5 ms).
  LoadOptions open;
  open.schedule = makeConstantSchedule(200, 1s);
  open.duration = 1s;
  open.connections = 4;
  open.threads = 2;
  open.recording = {true, "Kh-Revision", 200};
  result = runHttpLoad("127.0.0.1", (*server)->port(), spec, std::move(open), time);
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_EQ(result->records.size(), 200u);
  for (size_t i = 0; i < result->records.size(); ++i) {
    EXPECT_NEAR(result->records[i].intended_s, 0.005 * static_cast<double>(i), 1e-6) << i;
  }
  int64_t a = 0;
  for (const auto& r : result->records) a += r.header == "rev-a" ? 1 : 0;
  EXPECT_EQ(a, 100);

  // Without recording nothing is kept.
  LoadOptions off;
  off.concurrency = 1;
  off.max_requests = 10;
  result = runHttpLoad("127.0.0.1", (*server)->port(), spec, std::move(off), time);
  ASSERT_TRUE(result.ok());
  EXPECT_TRUE(result->records.empty());
  (*server)->drain(1s);
}

// A V2 gRPC service that names the revision in its initial metadata, as the ingress does.
class RevisionService final : public inference::GRPCInferenceService::Service {
 public:
  grpc::Status ModelInfer(grpc::ServerContext* context, const inference::ModelInferRequest*,
                          inference::ModelInferResponse*) override {
    int64_t n = next_.fetch_add(1);
    context->AddInitialMetadata("kh-revision", n % 4 == 0 ? "rev-a" : "rev-b");
    return grpc::Status::OK;
  }

 private:
  std::atomic<int64_t> next_{0};
};

TEST(Engine, RecordsTheGrpcInitialMetadataKey) {
  RevisionService service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  auto server = builder.BuildAndStart();
  ASSERT_TRUE(server && port > 0);
  GrpcRequestSpec spec;
  spec.serialized_request = inference::ModelInferRequest().SerializeAsString();
  spec.target = "127.0.0.1:" + std::to_string(port);
  LoadOptions options;
  options.schedule = makeConstantSchedule(400, 500ms);
  options.duration = 500ms;
  options.connections = 4;
  options.recording = {true, "Kh-Revision", 200};  // keys are matched in lower case
  common::RealTimeSource time;
  auto result = runGrpcLoad(spec, std::move(options), time);
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_EQ(result->records.size(), 200u);
  EXPECT_TRUE(inIntendedOrder(*result));
  std::map<std::string, int64_t> by_revision;
  for (const auto& r : result->records) {
    EXPECT_EQ(r.error, ErrorKind::kNone);
    EXPECT_EQ(r.status, 0);  // grpc::OK
    ++by_revision[r.header];
  }
  EXPECT_EQ(by_revision["rev-a"], 50);
  EXPECT_EQ(by_revision["rev-b"], 150);
  server->Shutdown();
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
  auto started = std::chrono::steady_clock::now();
  auto result = runHttpLoad("127.0.0.1", 1, spec, std::move(options), time);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable);
  // It gives up once no connection has been made within the request timeout (0.5 s), not at the
  // end of its 5 s: a behaviour, with a wide margin, not a speed.
  EXPECT_LT(std::chrono::steady_clock::now() - started, 4s);
}

}  // namespace
}  // namespace kh::loadgen
