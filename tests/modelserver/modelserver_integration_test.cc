// End-to-end tests of the modelserver executable: real processes on loopback, real HTTP and
// gRPC, the whole conformance suite, limits, readiness and graceful drain.

#include <signal.h>

#include <thread>
#include <tuple>

#include "boost/asio/connect.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/read.hpp"
#include "boost/asio/write.hpp"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "kh/conformance/conformance.h"
#include "kh/http/client.h"
#include "kh/protocols/grpc_predict_v2.grpc.pb.h"
#include "support/modelserver_process.h"

namespace kh::testing {
namespace {

using namespace std::chrono_literals;

const char* kIrisBody =
    R"({"inputs":[{"name":"input-0","shape":[2,4],"datatype":"FP32","data":[[6.8,2.8,4.8,1.4],[6.0,3.4,4.5,1.6]]}]})";

conformance::Summary runConformance(const ModelServerProcess& server, const std::string& model) {
  auto cases = conformance::loadCases(sourceDir() + "/protocols/conformance");
  EXPECT_TRUE(cases.ok()) << cases.status();
  conformance::RunOptions options;
  options.http_host = "127.0.0.1";
  options.http_port = server.http_port;
  options.grpc_target = server.grpcTarget();
  options.model = model;
  auto summary = conformance::runCases(*cases, options, {});
  EXPECT_TRUE(summary.ok()) << summary.status();
  for (const auto& r : summary->results) {
    if (r.outcome == conformance::Outcome::kFail) {
      ADD_FAILURE() << conformance::formatResult(r);
    }
  }
  return *summary;
}

TEST(ModelServerConformance, XgboostIrisPassesEveryCaseOverAllThreeProtocols) {
  auto server = startModelServer("iris", modelDir("xgboost-iris"));
  ASSERT_TRUE(server.ok()) << server.status();
  auto summary = runConformance(*server, "iris");
  EXPECT_EQ(summary.must_failed, 0);
  EXPECT_EQ(summary.skipped, 0);
  EXPECT_GT(summary.passed, 150);
  // After every bad input the process is still the same one, serving.
  EXPECT_TRUE(server->child->running());
}

TEST(ModelServerConformance, DenseRuntimePassesEveryCase) {
  auto server = startModelServer("dense", modelDir("dense-iris"));
  ASSERT_TRUE(server.ok()) << server.status();
  auto summary = runConformance(*server, "dense");
  EXPECT_EQ(summary.must_failed, 0);
  EXPECT_TRUE(server->child->running());
}

TEST(ModelServer, IrisPredictionsMatchKServeE2e) {
  auto server = startModelServer("iris", modelDir("xgboost-iris"));
  ASSERT_TRUE(server.ok()) << server.status();
  http::Client client("127.0.0.1", server->http_port);
  auto v1 = client.request("POST", "/v1/models/iris:predict",
                           R"({"instances":[[6.8,2.8,4.8,1.4],[6.0,3.4,4.5,1.6]]})");
  ASSERT_TRUE(v1.ok()) << v1.status();
  EXPECT_EQ(v1->result_int(), 200u);
  EXPECT_EQ(v1->body(), R"({"predictions":[1,1]})");
  auto v2 = client.request("POST", "/v2/models/iris/infer", kIrisBody);
  ASSERT_TRUE(v2.ok());
  auto body = nlohmann::json::parse(v2->body());
  EXPECT_EQ(body["outputs"][0]["data"], nlohmann::json({1, 1}));
}

TEST(ModelServer, AnswersWithItsKnativeRevision) {
  // Knative sets K_REVISION in each pod; every answer carries it so that a harness behind a
  // real ingress can tell revisions apart.
  auto server = startModelServer("iris", modelDir("xgboost-iris"), {}, true, {{"K_REVISION", "iris-predictor-00007"}});
  ASSERT_TRUE(server.ok()) << server.status();
  http::Client client("127.0.0.1", server->http_port);
  for (auto [method, path, body] : {std::tuple{"POST", "/v1/models/iris:predict", R"({"instances":[[6.8,2.8,4.8,1.4]]})"},
                                    std::tuple{"POST", "/v1/models/missing:predict", "{}"},
                                    std::tuple{"GET", "/v2/health/ready", ""}}) {
    auto res = client.request(method, path, body);
    ASSERT_TRUE(res.ok()) << res.status();
    EXPECT_EQ((*res)["Kh-Revision"], "iris-predictor-00007") << path;
  }
  auto channel = grpc::CreateChannel(server->grpcTarget(), grpc::InsecureChannelCredentials());
  auto stub = inference::GRPCInferenceService::NewStub(channel);
  grpc::ClientContext ctx;
  inference::ModelInferRequest req;
  req.set_model_name("iris");
  auto* in = req.add_inputs();
  in->set_name("input-0");
  in->set_datatype("FP32");
  in->add_shape(1);
  in->add_shape(4);
  for (float v : {6.8f, 2.8f, 4.8f, 1.4f}) in->mutable_contents()->add_fp32_contents(v);
  inference::ModelInferResponse resp;
  ASSERT_TRUE(stub->ModelInfer(&ctx, req, &resp).ok());
  auto md = ctx.GetServerInitialMetadata().find("kh-revision");
  ASSERT_NE(md, ctx.GetServerInitialMetadata().end());
  EXPECT_EQ(std::string(md->second.data(), md->second.size()), "iris-predictor-00007");

  // Without K_REVISION (refstack's pods: its ingress adds the field) there is none.
  auto plain = startModelServer("iris", modelDir("xgboost-iris"));
  ASSERT_TRUE(plain.ok()) << plain.status();
  auto res = http::Client("127.0.0.1", plain->http_port).request("GET", "/v2/health/ready");
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(res->find("Kh-Revision"), res->end());
}

TEST(ModelServer, NotReadyUntilTheModelHasLoaded) {
  auto server = startModelServer("iris", modelDir("xgboost-iris"), {"--load_delay_ms", "1500"},
                                 /*wait_ready=*/false);
  ASSERT_TRUE(server.ok()) << server.status();
  http::Client client("127.0.0.1", server->http_port);
  auto live = client.request("GET", "/v2/health/live");
  ASSERT_TRUE(live.ok());
  EXPECT_EQ(live->result_int(), 200u);
  auto ready = client.request("GET", "/v2/health/ready");
  ASSERT_TRUE(ready.ok());
  EXPECT_EQ(ready->result_int(), 503u);
  auto infer = client.request("POST", "/v2/models/iris/infer", kIrisBody);
  ASSERT_TRUE(infer.ok());
  EXPECT_EQ(infer->result_int(), 503u);
  EXPECT_NE(infer->body().find("is not ready"), std::string::npos) << infer->body();
  // gRPC says not ready rather than failing.
  auto channel = grpc::CreateChannel(server->grpcTarget(), grpc::InsecureChannelCredentials());
  auto stub = inference::GRPCInferenceService::NewStub(channel);
  grpc::ClientContext ctx;
  inference::ServerReadyResponse resp;
  ASSERT_TRUE(stub->ServerReady(&ctx, {}, &resp).ok());
  EXPECT_FALSE(resp.ready());

  ASSERT_TRUE(server->child->waitForLine("loaded and ready", 20s, &server->log).ok());
  ready = client.request("GET", "/v2/health/ready");
  ASSERT_TRUE(ready.ok());
  EXPECT_EQ(ready->result_int(), 200u);
}

TEST(ModelServer, BadModelDirExitsNonZeroWithAClearMessage) {
  process::SpawnOptions opts;
  std::string empty_dir = ::testing::TempDir() + "/empty-model";
  std::filesystem::create_directories(empty_dir);
  opts.argv = {binDir() + "/modelserver", "--model_name", "m", "--model_dir", empty_dir,
               "--http_port", "0", "--grpc_port", "0"};
  auto child = process::Subprocess::spawn(opts);
  ASSERT_TRUE(child.ok());
  std::string log;
  auto line = (*child)->waitForLine("failed to load", 20s, &log);
  EXPECT_TRUE(line.ok()) << log;
  auto status = (*child)->wait(20s);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(status->exited);
  EXPECT_EQ(status->code, 1);
}

TEST(ModelServer, OversizedBodyIs413AndServerKeepsServing) {
  auto server = startModelServer("iris", modelDir("xgboost-iris"), {"--max_body_mb", "1"});
  ASSERT_TRUE(server.ok()) << server.status();
  http::Client client("127.0.0.1", server->http_port);
  auto big = client.request("POST", "/v2/models/iris/infer", std::string(2 * 1024 * 1024, 'x'));
  ASSERT_TRUE(big.ok()) << big.status();
  EXPECT_EQ(big->result_int(), 413u);
  EXPECT_NE(big->body().find("exceeds the limit"), std::string::npos);
  auto ok = client.request("POST", "/v2/models/iris/infer", kIrisBody);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->result_int(), 200u);
}

TEST(ModelServer, StalledHeadersGet408) {
  auto server = startModelServer("iris", modelDir("xgboost-iris"), {"--header_timeout_ms", "300"});
  ASSERT_TRUE(server.ok()) << server.status();
  http::Client client("127.0.0.1", server->http_port, 5s);
  // Half a request line and no end of headers: the server must answer 408 on its own.
  auto res = client.sendRaw("GET /v2/health/live HTTP/1.1\r\nHost: x\r\n");
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(res->result_int(), 408u);
}

TEST(ModelServer, PipelinedRequestsAreAnsweredInOrder) {
  auto server = startModelServer("iris", modelDir("xgboost-iris"));
  ASSERT_TRUE(server.ok()) << server.status();
  namespace net = boost::asio;
  net::io_context ioc;
  net::ip::tcp::socket socket(ioc);
  socket.connect({net::ip::make_address("127.0.0.1"), server->http_port});
  std::string two =
      "GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /v2/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  net::write(socket, net::buffer(two));
  std::string all;
  boost::system::error_code ec;
  char buf[4096];
  while (true) {
    size_t n = socket.read_some(net::buffer(buf), ec);
    if (ec) break;
    all.append(buf, n);
  }
  auto first = all.find(R"({"live":true})");
  auto second = all.find(R"({"models":["iris"]})");
  EXPECT_NE(first, std::string::npos) << all;
  EXPECT_NE(second, std::string::npos) << all;
  EXPECT_LT(first, second);
}

TEST(ModelServer, MetricsCountRequestsByProtocolEndpointAndCode) {
  auto server = startModelServer("iris", modelDir("xgboost-iris"));
  ASSERT_TRUE(server.ok()) << server.status();
  http::Client client("127.0.0.1", server->http_port);
  ASSERT_TRUE(client.request("POST", "/v2/models/iris/infer", kIrisBody).ok());
  ASSERT_TRUE(client.request("POST", "/v2/models/nope/infer", kIrisBody).ok());
  auto metrics = client.request("GET", "/metrics");
  ASSERT_TRUE(metrics.ok());
  const std::string& text = metrics->body();
  EXPECT_NE(text.find(R"(kh_modelserver_requests_total{code="200",endpoint="infer",protocol="v2"} 1)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find(R"(kh_modelserver_requests_total{code="404",endpoint="infer",protocol="v2"} 1)"),
            std::string::npos);
  EXPECT_NE(text.find("kh_modelserver_request_duration_seconds_bucket"), std::string::npos);
}

TEST(ModelServer, SigtermFinishesTheRequestInFlightThenExitsZero) {
  auto server = startModelServer("iris", modelDir("xgboost-iris"));
  ASSERT_TRUE(server.ok()) << server.status();
  namespace net = boost::asio;
  net::io_context ioc;
  net::ip::tcp::socket socket(ioc);
  socket.connect({net::ip::make_address("127.0.0.1"), server->http_port});
  std::string body = kIrisBody;
  std::string head = common::strCat("POST /v2/models/iris/infer HTTP/1.1\r\nHost: x\r\n",
                                    "Content-Type: application/json\r\nContent-Length: ",
                                    body.size(), "\r\n\r\n");
  // Headers and half the body are in; the request is in flight when SIGTERM arrives.
  net::write(socket, net::buffer(head + body.substr(0, body.size() / 2)));
  // An idle keep-alive connection must be closed by the drain.
  http::Client idle("127.0.0.1", server->http_port);
  ASSERT_TRUE(idle.request("GET", "/v2/health/live").ok());

  server->child->signalGroup(SIGTERM);
  ASSERT_TRUE(server->child->waitForLine("new work refused", 10s, &server->log).ok());
  net::write(socket, net::buffer(body.substr(body.size() / 2)));
  std::string response;
  boost::system::error_code ec;
  char buf[4096];
  while (true) {
    size_t n = socket.read_some(net::buffer(buf), ec);
    if (ec) break;
    response.append(buf, n);
  }
  EXPECT_NE(response.find("HTTP/1.1 200"), std::string::npos) << response;
  EXPECT_NE(response.find("Connection: close"), std::string::npos) << response;
  auto status = server->child->wait(20s);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(status->exited) << status->describe();
  EXPECT_EQ(status->code, 0);
}

}  // namespace
}  // namespace kh::testing
