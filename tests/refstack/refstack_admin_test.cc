// refstack's admin API and the rest of the control plane over real HTTP and gRPC: the watch
// stream, the bearer token, ServingRuntime paths, metrics, a restart that restores state, a state
// file that cannot be written, the transformer -> predictor chain, and the gRPC ingress.

#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <set>
#include <fstream>
#include <sstream>
#include <thread>

#include "boost/asio/connect.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/beast/core/flat_buffer.hpp"
#include "boost/beast/http/empty_body.hpp"
#include "boost/beast/http/parser.hpp"
#include "boost/beast/http/read.hpp"
#include "boost/beast/http/write.hpp"
#include "gtest/gtest.h"
#include "kh/http/client.h"
#include "kh/protocols/grpc_predict_v2.grpc.pb.h"
#include "kh/refstack/refstack.h"
#include "support/iris_grpc.h"
#include "support/modelserver_process.h"
#include "support/refstack_test_support.h"

namespace kh::refstack {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
namespace bhttp = boost::beast::http;

using testing::manifest;

class RefstackAdminTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_ = testing::refstackTestConfig("refstack-admin", /*serverless=*/false);
  }

  void startStack() {
    auto s = Refstack::start(config_, time_);
    ASSERT_TRUE(s.ok()) << s.status();
    stack_ = std::move(*s);
  }

  // Waits for a status event with Ready true about `isvc` after `since`.
  bool waitReady(int64_t since, const std::string& isvc) {
    return stack_->waitForEvent(since, testing::eventWhere<events::StatusChanged>(
        [&](const auto& s) { return s.ready && s.isvc == "default/" + isvc; }), 60s).has_value();
  }

  http::Response admin(bhttp::verb method, const std::string& target, const std::string& body = {},
                       const std::string& token = {}) {
    http::Client c("127.0.0.1", stack_->adminPort());
    http::Request req{method, target, 11};
    if (!token.empty()) req.set(bhttp::field::authorization, "Bearer " + token);
    req.body() = body;
    auto res = c.send(std::move(req));
    EXPECT_TRUE(res.ok()) << res.status();
    return res.ok() ? *res : http::Response{};
  }

  absl::StatusOr<http::Response> predict(const std::string& host) {
    http::Client c("127.0.0.1", stack_->ingressPort());
    http::Request req{bhttp::verb::post, "/v1/models/xgboost-iris:predict", 11};
    req.set(bhttp::field::host, host);
    req.set(bhttp::field::content_type, "application/json");
    req.body() = R"({"instances":[[6.8,2.8,4.8,1.4]]})";
    return c.send(std::move(req));
  }

  common::RealTimeSource time_;
  Config config_;
  std::unique_ptr<Refstack> stack_;
};

TEST_F(RefstackAdminTest, WatchStreamsEventsAsChunkedJsonLines) {
  startStack();
  namespace net = boost::asio;
  net::io_context ioc;
  net::ip::tcp::socket socket(ioc);
  socket.connect({net::ip::make_address("127.0.0.1"), stack_->adminPort()});
  bhttp::request<bhttp::empty_body> req{bhttp::verb::get, "/events?watch=true&since=0", 11};
  req.set(bhttp::field::host, "127.0.0.1");
  bhttp::write(socket, req);
  boost::beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(boost::none);
  std::vector<json> lines;
  std::string pending;
  bool saw_ready = false;
  auto on_chunk = [&](uint64_t, boost::beast::string_view data, boost::beast::error_code&) {
    pending.append(data.data(), data.size());
    for (size_t nl; (nl = pending.find('\n')) != std::string::npos;) {
      lines.push_back(json::parse(pending.substr(0, nl)));
      pending.erase(0, nl + 1);
      saw_ready = saw_ready || (lines.back()["type"] == "status" && lines.back()["ready"] == true);
    }
    return data.size();
  };
  parser.on_chunk_body(on_chunk);
  bhttp::read_header(socket, buffer, parser);
  ASSERT_EQ(parser.get().result_int(), 200u);
  EXPECT_EQ(std::string(parser.get()[bhttp::field::transfer_encoding]), "chunked");
  // Apply after the stream is open: the events arrive on it as they happen.
  ASSERT_TRUE(stack_->apply(manifest("xgboost-iris.yaml"), "m").ok());
  boost::beast::error_code ec;
  while (!saw_ready && !ec) bhttp::read_some(socket, buffer, parser, ec);
  ASSERT_FALSE(ec) << ec.message();
  std::set<std::string> types;
  int64_t last_seq = 0;
  for (const auto& l : lines) {
    types.insert(l["type"].get<std::string>());
    EXPECT_GT(l["seq"].get<int64_t>(), last_seq);  // in order, none repeated
    last_seq = l["seq"];
    EXPECT_TRUE(l.contains("time"));
  }
  EXPECT_TRUE(types.count("applied") && types.count("revision") && types.count("pod") && types.count("status"))
      << json(lines).dump(1);
}

TEST_F(RefstackAdminTest, BearerTokenGuardsTheAdminApi) {
  config_.admin_token = "s3cret";
  startStack();
  auto denied = admin(bhttp::verb::get, "/apis/serving.kserve.io/v1beta1/inferenceservices");
  EXPECT_EQ(denied.result_int(), 401u);
  EXPECT_EQ(json::parse(denied.body()).value("reason", ""), "Unauthorized") << denied.body();
  EXPECT_EQ(admin(bhttp::verb::post, "/apply", manifest("xgboost-iris.yaml"), "wrong").result_int(), 401u);
  EXPECT_TRUE(stack_->list()["items"].empty());  // nothing applied without the token
  EXPECT_EQ(admin(bhttp::verb::get, "/apis/serving.kserve.io/v1beta1/inferenceservices", "", "s3cret").result_int(), 200u);
}

TEST_F(RefstackAdminTest, ServingRuntimePathsCreateGetListAndDelete) {
  startStack();
  const std::string csr = "/apis/serving.kserve.io/v1alpha1/clusterservingruntimes";
  auto builtin = json::parse(admin(bhttp::verb::get, csr).body());
  std::set<std::string> names;
  for (const auto& i : builtin["items"]) names.insert(i["metadata"]["name"]);
  EXPECT_TRUE(names.count("kh-xgboost") && names.count("kh-dense")) << builtin.dump();
  EXPECT_EQ(admin(bhttp::verb::get, csr + "/kh-xgboost").result_int(), 200u);
  // A built-in runtime is put back when deleted, as objects an operator manages are.
  int64_t seq = stack_->events(0).empty() ? 0 : stack_->events(0).back().seq;
  EXPECT_EQ(admin(bhttp::verb::delete_, csr + "/kh-xgboost").result_int(), 200u);
  ASSERT_TRUE(stack_->waitForEvent(seq, testing::eventWhere<events::ResourceApplied>(
      [](const auto& a) { return a.name == "kh-xgboost"; }), 10s).has_value());
  EXPECT_EQ(admin(bhttp::verb::get, csr + "/kh-xgboost").result_int(), 200u);

  const std::string runtime = R"({"apiVersion": "serving.kserve.io/v1alpha1", "kind": "ServingRuntime",
    "metadata": {"name": "my-xgboost", "namespace": "team-a"},
    "spec": {"supportedModelFormats": [{"name": "xgboost", "version": "1", "autoSelect": true}],
             "protocolVersions": ["v1", "v2"],
             "containers": [{"name": "kserve-container", "image": "kserve-harness/modelserver:latest",
                             "args": ["--model_name={{.Name}}", "--model_dir=/mnt/models", "--http_port=8080",
                                      "--grpc_port=8081"]}]}})";
  // The Kubernetes API takes objects in namespaces that exist (kubectl create ns team-a).
  EXPECT_EQ(admin(bhttp::verb::post, "/api/v1/namespaces", R"({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"team-a"}})")
                .result_int(), 201u);
  const std::string sr = "/apis/serving.kserve.io/v1alpha1/namespaces/team-a/servingruntimes";
  auto created = admin(bhttp::verb::post, sr, runtime);
  EXPECT_EQ(created.result_int(), 201u) << created.body();
  auto listed = json::parse(admin(bhttp::verb::get, sr).body());
  ASSERT_EQ(listed["items"].size(), 1u);
  EXPECT_EQ(listed["items"][0]["metadata"]["namespace"], "team-a");
  EXPECT_EQ(admin(bhttp::verb::get, "/apis/serving.kserve.io/v1alpha1/namespaces/other/servingruntimes/my-xgboost")
                .result_int(), 404u);
  EXPECT_EQ(admin(bhttp::verb::delete_, sr + "/my-xgboost").result_int(), 200u);
  EXPECT_EQ(admin(bhttp::verb::get, sr + "/my-xgboost").result_int(), 404u);
  auto invalid = admin(bhttp::verb::post, sr, R"({"apiVersion": "serving.kserve.io/v1alpha1", "kind": "ServingRuntime",
    "metadata": {"name": "x"}, "spec": {"containers": []}})");
  EXPECT_EQ(invalid.result_int(), 400u) << invalid.body();
  EXPECT_NE(invalid.body().find("spec.containers must not be empty"), std::string::npos) << invalid.body();
}

TEST_F(RefstackAdminTest, RestartRestoresResourcesRevisionsAndPods) {
  startStack();
  ASSERT_TRUE(stack_->apply(manifest("xgboost-iris.yaml"), "m").ok());
  ASSERT_TRUE(waitReady(0, "xgboost-iris"));
  ASSERT_TRUE(stack_->apply(manifest("canary.yaml"), "canary").ok());
  // The canary's split is in place once the new revision is ready and takes its 20%.
  auto canaryLive = testing::eventWhere<events::StatusChanged>([](const auto& s) {
    return s.ready && s.traffic.size() == 2 && s.traffic[0].revision == "xgboost-iris-predictor-00002";
  });
  ASSERT_TRUE(stack_->waitForEvent(0, canaryLive, 60s).has_value());
  auto before = (*stack_->get("default", "xgboost-iris"))["status"]["components"]["predictor"];
  stack_.reset();  // stops the pods too
  ASSERT_TRUE(std::filesystem::exists(config_.state_dir / "state.json"));

  startStack();
  ASSERT_TRUE(stack_->waitForEvent(0, canaryLive, 60s).has_value()) << testing::dumpEvents(stack_->events(0));
  auto after = (*stack_->get("default", "xgboost-iris"))["status"]["components"]["predictor"];
  EXPECT_EQ(after["latestCreatedRevision"], "xgboost-iris-predictor-00002");
  EXPECT_EQ(after["latestRolledoutRevision"], before["latestRolledoutRevision"]);
  EXPECT_EQ(after["traffic"], before["traffic"]);
  // The canary split still serves from both revisions, which run again.
  std::set<std::string> served;
  for (int i = 0; i < 200 && served.size() < 2; ++i) {
    auto r = predict("xgboost-iris-default.example.com");
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->result_int(), 200u) << r->body();
    served.insert(std::string((*r)["Kh-Revision"]));
  }
  EXPECT_EQ(served.size(), 2u);
}

TEST_F(RefstackAdminTest, AnUnwritableStateFileLeavesTheOldStateAndTheStackServing) {
  startStack();
  ASSERT_TRUE(stack_->apply(manifest("xgboost-iris.yaml"), "m").ok());
  ASSERT_TRUE(waitReady(0, "xgboost-iris"));
  stack_.reset();  // writes state.json
  const auto state_file = config_.state_dir / "state.json";
  auto read = [](const std::filesystem::path& p) {
    std::ifstream in(p);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  };
  ASSERT_NE(read(state_file).find("xgboost-iris"), std::string::npos);

  startStack();
  ASSERT_TRUE(waitReady(0, "xgboost-iris"));
  // Every write of the state now fails as a full or read-only disk would fail it, even for root,
  // who ignores permissions: the file written before the rename is a directory. A write under
  // way (the restart's own) holds the name as a file until its rename, so take it once free.
  const auto tmp = config_.state_dir / "state.json.tmp";
  auto free_by = std::chrono::steady_clock::now() + 10s;
  std::error_code ec;
  while (!std::filesystem::is_directory(tmp, ec) && std::chrono::steady_clock::now() < free_by) {
    std::filesystem::create_directory(tmp, ec);
  }
  ASSERT_TRUE(std::filesystem::is_directory(tmp, ec)) << tmp << ": " << ec.message();
  int64_t seq = stack_->events(0).back().seq;
  std::string second = manifest("xgboost-iris.yaml");
  second.replace(second.find("name: xgboost-iris"), 18, "name: second-iris");
  ASSERT_TRUE(stack_->apply(second, "second").ok());
  auto failed = stack_->waitForEvent(seq, testing::eventWhere<events::StackError>([&](const auto& e) {
    return e.message.find("cannot write " + (config_.state_dir / "state.json.tmp").string()) != std::string::npos;
  }), 30s);
  ASSERT_TRUE(failed.has_value()) << testing::dumpEvents(stack_->events(seq));
  // The old state is intact (whole, without the new service), and the stack goes on
  // reconciling and serving.
  const std::string during = read(state_file);
  EXPECT_FALSE(json::parse(during, nullptr, false).is_discarded()) << during;
  EXPECT_NE(during.find("xgboost-iris"), std::string::npos);
  EXPECT_EQ(during.find("second-iris"), std::string::npos);
  ASSERT_TRUE(waitReady(seq, "second-iris")) << testing::dumpEvents(stack_->events(seq));
  auto served = predict("xgboost-iris-default.example.com");
  ASSERT_TRUE(served.ok()) << served.status();
  EXPECT_EQ(served->result_int(), 200u) << served->body();

  // Once the disk takes writes again, the state catches up: both come back after a restart.
  std::filesystem::remove(config_.state_dir / "state.json.tmp");
  stack_.reset();
  EXPECT_NE(read(state_file).find("second-iris"), std::string::npos);
  startStack();
  ASSERT_TRUE(waitReady(0, "second-iris")) << testing::dumpEvents(stack_->events(0));
  EXPECT_TRUE(stack_->get("default", "xgboost-iris").ok());
}

// Input that once threw out of nlohmann and ended refstack: fields of the wrong type in a state
// file edited by hand or in a manifest sent to /apply ("name: 123" is a YAML integer), and a
// Host header that is not UTF-8.
TEST_F(RefstackAdminTest, BadInputIsAnErrorNotACrash) {
  std::filesystem::create_directories(config_.state_dir);
  for (const char* state : {R"({"version":"2"})", R"({"version":2,"store":{}})",
                            R"({"version":1,"servingRuntimes":[{"kind":5}]})"}) {
    std::ofstream(config_.state_dir / "state.json") << state;
    auto s = Refstack::start(config_, time_);
    ASSERT_FALSE(s.ok()) << state;
    EXPECT_EQ(s.status().code(), absl::StatusCode::kDataLoss) << s.status();
    EXPECT_NE(s.status().message().find("move it away to start empty"), absl::string_view::npos) << s.status();
  }
  std::filesystem::remove(config_.state_dir / "state.json");
  startStack();
  const std::string isvc = "apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\n";
  for (const auto& [text, expect] : std::vector<std::pair<std::string, std::string>>{
           {isvc + "metadata: {name: 123}\n", "metadata.name must be a string"},
           {isvc + "metadata: {name: a, namespace: [x]}\n", "metadata.namespace must be a string"},
           {isvc + "metadata: a\n", "metadata must be a mapping"},
           {"apiVersion: 1\nkind: InferenceService\nmetadata: {name: a}\n", "apiVersion must be a string"},
           {"kind: 5\n", "kind must be a string"}}) {
    auto r = admin(bhttp::verb::post, "/apply", text);
    EXPECT_EQ(r.result_int(), 400u) << text;
    EXPECT_NE(r.body().find(expect), std::string::npos) << r.body();
  }
  EXPECT_EQ(admin(bhttp::verb::post, "/apply", manifest("xgboost-iris.yaml")).result_int(), 200u);  // still serving
  // A Host that is not UTF-8 is named in the ingress's 404 as U+FFFD; its dump() once threw.
  auto unknown = predict("\xff.example.com");
  ASSERT_TRUE(unknown.ok()) << unknown.status();
  EXPECT_EQ(unknown->result_int(), 404u);
  EXPECT_NE(unknown->body().find("\xEF\xBF\xBD.example.com"), std::string::npos) << unknown->body();
  EXPECT_TRUE(waitReady(0, "xgboost-iris"));
  auto served = predict("xgboost-iris-default.example.com");
  ASSERT_TRUE(served.ok()) << served.status();
  EXPECT_EQ(served->result_int(), 200u) << served->body();
}

TEST_F(RefstackAdminTest, TransformerForwardsToThePredictor) {
  startStack();
  ASSERT_TRUE(stack_->apply(manifest("transformer.yaml"), "t").ok());
  ASSERT_TRUE(waitReady(0, "iris-with-transformer")) << testing::dumpEvents(stack_->events(0));
  auto obj = *stack_->get("default", "iris-with-transformer");
  EXPECT_EQ(obj["status"]["components"]["transformer"]["latestReadyRevision"], "iris-with-transformer-transformer-00001");
  http::Client c("127.0.0.1", stack_->ingressPort());
  http::Request req{bhttp::verb::post, "/v1/models/iris-with-transformer:predict", 11};
  req.set(bhttp::field::host, "iris-with-transformer-default.example.com");
  req.body() = R"({"instances":[[6.8,2.8,4.8,1.4]]})";
  auto res = c.send(std::move(req));
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(res->result_int(), 200u) << res->body();
  EXPECT_EQ(res->body(), R"({"predictions":[1]})");
  EXPECT_EQ(std::string((*res)["Kh-Transformer"]), "passthrough");
  EXPECT_EQ(std::string((*res)["Kh-Revision"]), "iris-with-transformer-transformer-00001");
}

TEST_F(RefstackAdminTest, ExplainGoesToTheExplainerAndPredictGoesToThePredictor) {
  startStack();
  ASSERT_TRUE(stack_->apply(R"(apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: explained}
spec:
  predictor:
    model:
      modelFormat: {name: xgboost}
      storageUri: file://reference-impl/models/xgboost-iris
  explainer:
    containers:
      - name: kserve-container
        image: kserve-harness/passthrough-transformer:latest
        args: ["--predictor_host={{.PredictorHost}}"]
)", "explainer").ok());
  // Both components reachable through the ingress.
  ASSERT_TRUE(stack_->waitForEvent(0, testing::eventWhere<events::RoutesChanged>([](const auto& r) {
    return r.ready_pods.count("explained-explainer-00001") && r.ready_pods.at("explained-explainer-00001") == 1 &&
           r.ready_pods.count("explained-predictor-00001") && r.ready_pods.at("explained-predictor-00001") == 1;
  }), 60s).has_value()) << testing::dumpEvents(stack_->events(0));
  auto send = [&](const std::string& verb) {
    http::Client c("127.0.0.1", stack_->ingressPort());
    http::Request req{bhttp::verb::post, "/v1/models/explained:" + verb, 11};
    req.set(bhttp::field::host, "explained-default.example.com");
    req.body() = R"({"instances":[[6.8,2.8,4.8,1.4]]})";
    return c.send(std::move(req));
  };
  auto explain = send("explain");
  ASSERT_TRUE(explain.ok());
  EXPECT_EQ(std::string((*explain)["Kh-Revision"]), "explained-explainer-00001") << explain->body();
  EXPECT_EQ(std::string((*explain)["Kh-Transformer"]), "passthrough");
  auto predict = send("predict");
  ASSERT_TRUE(predict.ok());
  EXPECT_EQ(std::string((*predict)["Kh-Revision"]), "explained-predictor-00001");
  EXPECT_EQ(predict->body(), R"({"predictions":[1]})");
}

TEST_F(RefstackAdminTest, AStalledModelDownloadShowsInStatusAndStallsNothingElse) {
  // A server that takes connections and never answers: the download waits out its timeout.
  int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(listener, 8), 0);
  ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  std::string uri = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/models/model.json";
  startStack();
  std::string stalled = manifest("xgboost-iris.yaml");
  stalled.replace(stalled.find("name: xgboost-iris"), 18, "name: stalled-iris");
  auto at = stalled.find("storageUri: ");
  stalled.replace(at, stalled.find('\n', at) - at, "storageUri: " + uri);
  ASSERT_TRUE(stack_->apply(stalled, "stalled").ok());
  // Another service is reconciled, started and served meanwhile.
  ASSERT_TRUE(stack_->apply(manifest("xgboost-iris.yaml"), "m").ok());
  ASSERT_TRUE(waitReady(0, "xgboost-iris")) << testing::dumpEvents(stack_->events(0));
  ASSERT_TRUE(predict("xgboost-iris-default.example.com").ok());
  // The stalled one says what it waits for, as KServe's status does while the storage
  // initializer runs.
  auto status = (*stack_->get("default", "stalled-iris"))["status"];
  EXPECT_EQ(status["modelStatus"]["transitionStatus"], "InProgress") << status.dump(1);
  EXPECT_EQ(status["modelStatus"]["states"]["targetModelState"], "Pending") << status.dump(1);
  EXPECT_NE(status["modelStatus"]["lastFailureInfo"]["message"].get<std::string>().find("downloading storageUri " + uri),
            std::string::npos)
      << status.dump(1);
  stack_.reset();
  ::close(listener);
}

TEST_F(RefstackAdminTest, GrpcIngressRoutesByHostMetadataWhenTheAuthorityIsAnAddress) {
  // KServe's e2e clients (and grpcio's default) call the ingress by IP, so :authority is
  // "127.0.0.1:PORT", and name the service in a `host` metadata entry.
  startStack();
  ASSERT_TRUE(stack_->apply(manifest("xgboost-iris.yaml"), "m").ok());
  ASSERT_TRUE(waitReady(0, "xgboost-iris"));
  auto stub = ::inference::GRPCInferenceService::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string(stack_->grpcIngressPort()), grpc::InsecureChannelCredentials()));
  ::inference::ModelInferRequest request = testing::irisGrpcRequest("xgboost-iris");
  ::inference::ModelInferResponse response;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 10s);
  ctx.AddMetadata("host", "xgboost-iris-default.example.com");
  auto status = stub->ModelInfer(&ctx, request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(response.outputs_size(), 1);
  auto revision = ctx.GetServerInitialMetadata().find("kh-revision");
  ASSERT_NE(revision, ctx.GetServerInitialMetadata().end());
  EXPECT_EQ(std::string(revision->second.data(), revision->second.size()), "xgboost-iris-predictor-00001");
  // Neither names a service: refused with both in the message's place.
  grpc::ClientContext none;
  none.set_deadline(std::chrono::system_clock::now() + 10s);
  none.AddMetadata("host", "nobody-default.example.com");
  auto refused = stub->ModelInfer(&none, request, &response);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_NE(refused.error_message().find("nobody-default.example.com"), std::string::npos) << refused.error_message();
}

TEST_F(RefstackAdminTest, GrpcIngressRoutesByAuthorityAndMetricsCountRequests) {
  startStack();
  ASSERT_TRUE(stack_->apply(manifest("xgboost-iris.yaml"), "m").ok());
  ASSERT_TRUE(waitReady(0, "xgboost-iris"));
  grpc::ChannelArguments args;
  args.SetString(GRPC_ARG_DEFAULT_AUTHORITY, "xgboost-iris-default.example.com");
  auto channel = grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(stack_->grpcIngressPort()),
                                           grpc::InsecureChannelCredentials(), args);
  auto stub = ::inference::GRPCInferenceService::NewStub(channel);
  ::inference::ModelInferRequest request = testing::irisGrpcRequest("xgboost-iris");
  ::inference::ModelInferResponse response;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 10s);
  auto status = stub->ModelInfer(&ctx, request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(response.outputs_size(), 1);
  auto revision = ctx.GetServerInitialMetadata().find("kh-revision");
  ASSERT_NE(revision, ctx.GetServerInitialMetadata().end());
  EXPECT_EQ(std::string(revision->second.data(), revision->second.size()), "xgboost-iris-predictor-00001");

  // Concurrent calls: every one answered (the reactor's lifetime under load).
  std::atomic<int> ok_calls{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 4; ++t) {
    callers.emplace_back([&] {
      for (int i = 0; i < 100; ++i) {
        grpc::ClientContext c;
        c.set_deadline(std::chrono::system_clock::now() + 10s);
        ::inference::ModelInferResponse r;
        if (stub->ModelInfer(&c, request, &r).ok() && r.outputs_size() == 1) ++ok_calls;
      }
    });
  }
  for (auto& t : callers) t.join();
  EXPECT_EQ(ok_calls.load(), 400);

  // An unknown :authority is refused clearly.
  grpc::ChannelArguments other;
  other.SetString(GRPC_ARG_DEFAULT_AUTHORITY, "nobody-default.example.com");
  auto stub2 = ::inference::GRPCInferenceService::NewStub(grpc::CreateCustomChannel(
      "127.0.0.1:" + std::to_string(stack_->grpcIngressPort()), grpc::InsecureChannelCredentials(), other));
  grpc::ClientContext ctx2;
  ctx2.set_deadline(std::chrono::system_clock::now() + 10s);
  auto refused = stub2->ModelInfer(&ctx2, request, &response);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_NE(refused.error_message().find("nobody-default.example.com"), std::string::npos);

  ASSERT_TRUE(predict("xgboost-iris-default.example.com").ok());
  auto metrics = admin(bhttp::verb::get, "/metrics").body();
  EXPECT_NE(metrics.find(R"(kh_ingress_requests_total{code="200",isvc="xgboost-iris",namespace="default",protocol="http",revision="xgboost-iris-predictor-00001"} 1)"),
            std::string::npos) << metrics;
  EXPECT_NE(metrics.find(R"(protocol="grpc",revision="xgboost-iris-predictor-00001"} 401)"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("kh_refstack_reconciles_total"), std::string::npos);
  // The ingress serves the same metrics for a Host that names no service.
  http::Client ingress("127.0.0.1", stack_->ingressPort());
  auto scraped = ingress.request("GET", "/metrics");
  ASSERT_TRUE(scraped.ok());
  EXPECT_NE(scraped->body().find("kh_ingress_request_seconds"), std::string::npos);
}

}  // namespace
}  // namespace kh::refstack
