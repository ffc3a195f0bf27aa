// InferenceGraphs on the reference stack, end to end with real processes: the graph's router runs
// as its own serverless revision (graph-router behind a queue-proxy), its steps go back through
// the ingress to InferenceServices, and the answers are KServe's for its ten e2e graph scenarios
// (shared/specs/kserve.md section 5.2). Also: a step whose service is at zero pods cold-starts
// it, the per-step breakdown comes back in Kh-Graph-Steps, a malformed graph or condition is
// refused at apply time with nothing changed, a graph waits for the services it calls, and a
// deleted graph's pods stop.

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "gtest/gtest.h"
#include "kh/http/client.h"
#include "kh/refstack/refstack.h"
#include "support/modelserver_process.h"
#include "support/refstack_test_support.h"

namespace kh::refstack {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
namespace bhttp = boost::beast::http;

std::string conformanceManifest(const std::string& name) {
  std::ifstream in(testing::sourceDir() + "/protocols/conformance/graphs/" + name);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

constexpr const char* kSuccess = R"({"predictions":[{"message":"SUCCESS"}]})";
constexpr const char* kError = R"({"detail":"Intentional 404 code"})";

class RefstackGraph : public ::testing::Test {
 protected:
  void SetUp() override {
    Config config = testing::refstackTestConfig("refstack-graph", /*serverless=*/true);
    auto s = Refstack::start(config, time_);
    ASSERT_TRUE(s.ok()) << s.status();
    stack_ = std::move(*s);
  }

  int64_t lastSeq() {
    auto all = stack_->events(0);
    return all.empty() ? 0 : all.back().seq;
  }

  // The controller's key of a graph in events: "graph:ns/name".
  static std::string graphKey(const std::string& name) { return "graph:default/" + name; }

  bool waitGraphReady(const std::string& name, int64_t since = 0, std::chrono::seconds timeout = 60s) {
    return stack_->waitForEvent(since, testing::eventWhere<events::StatusChanged>([&](const auto& s) {
             return s.isvc == graphKey(name) && s.ready;
           }), timeout).has_value();
  }

  http::Response call(const std::string& graph, const std::string& body, std::chrono::milliseconds timeout = 30s) {
    http::Client c("127.0.0.1", stack_->ingressPort(), timeout);
    http::Request req{bhttp::verb::post, "/", 11};
    req.set(bhttp::field::host, graph + "-default.example.com");
    req.set(bhttp::field::content_type, "application/json");
    req.body() = body;
    auto res = c.send(std::move(req));
    EXPECT_TRUE(res.ok()) << res.status();
    return res.ok() ? *res : http::Response{};
  }

  // The steps of Kh-Graph-Steps, as "node/step:status".
  static std::vector<std::string> steps(const http::Response& res) {
    json parsed = json::parse(std::string(res["Kh-Graph-Steps"]), nullptr, false);
    std::vector<std::string> out;
    if (!parsed.is_array()) return {"(no Kh-Graph-Steps header)"};
    for (const auto& s : parsed) {
      out.push_back(s.value("node", "") + "/" + s.value("step", "") + ":" + std::to_string(s.value("status", 0)));
    }
    return out;
  }

  common::RealTimeSource time_;
  std::unique_ptr<Refstack> stack_;
};

TEST_F(RefstackGraph, KServeE2eScenariosGiveKServesAnswers) {
  ASSERT_TRUE(stack_->apply(conformanceManifest("services.yaml"), "services.yaml").ok());
  for (const char* file : {"sequence.yaml", "switch.yaml", "splitter.yaml", "ensemble.yaml"}) {
    auto applied = stack_->apply(conformanceManifest(file), file);
    ASSERT_TRUE(applied.ok()) << file << ": " << applied.status();
  }
  for (const char* g : {"seq-soft", "seq-soft-recover", "seq-hard", "switch", "seq-switch-soft", "seq-switch-hard",
                        "ensemble", "ensemble-hard", "seq-splitter-soft", "seq-splitter-hard", "seq-condition",
                        "splitter", "ensemble-nested"}) {
    ASSERT_TRUE(waitGraphReady(g)) << g << "\n" << testing::dumpEvents(stack_->events(0));
  }
  auto object = stack_->getObject("InferenceGraph", "default", "seq-soft");
  ASSERT_TRUE(object.ok());
  EXPECT_EQ((*object)["status"]["url"], "http://seq-soft-default.example.com");
  EXPECT_EQ((*object)["status"]["deploymentMode"], "Serverless");

  struct Expected {
    const char* graph;
    const char* input;
    unsigned status;
    std::string body;
  };
  const std::string picker_error = R"({"decision_picker":"ERROR"})";
  const std::vector<Expected> cases = {
      {"seq-soft", "{}", 404, kError},                              // scenario1
      {"seq-soft-recover", "{}", 200, kSuccess},                    // scenario2
      {"seq-hard", "{}", 404, kError},                              // scenario3
      {"switch", R"({"decision_picker":"ERROR"})", 404, kError},     // scenario4
      {"switch", R"({"decision_picker":"SUCCESS"})", 200, kSuccess},
      {"switch", R"({"decision_picker":"NO_MATCH"})", 404,
       R"({"error":"Failed to process request","cause":"None of the routes matched with the switch condition"})"},
      {"seq-switch-soft", R"({"decision_picker":"ERROR"})", 200, kSuccess},   // scenario5
      {"seq-switch-hard", R"({"decision_picker":"ERROR"})", 404, kError},     // scenario6
      {"ensemble", "{}", 200,                                                 // scenario7
       R"({"rootStep1":{"predictions":[{"message":"SUCCESS"}]},"rootStep2":{"detail":"Intentional 404 code"}})"},
      {"ensemble-hard", "{}", 404, kError},                                   // scenario8
      {"seq-splitter-soft", "{}", 200, kSuccess},                             // scenario9
      {"seq-splitter-hard", "{}", 404, kError},                               // scenario10
      {"seq-condition", "{}", 200, kSuccess},
      {"ensemble-nested", "{}", 200,
       R"({"0":{"predictions":[{"message":"SUCCESS"}]},"1":{"predictions":[{"message":"SUCCESS"}]},)"
       R"("2":{"predictions":[{"message":"SUCCESS"}]}})"},
  };
  for (const auto& c : cases) {
    auto res = call(c.graph, c.input);
    EXPECT_EQ(res.result_int(), c.status) << c.graph << " " << c.input << ": " << res.body();
    EXPECT_EQ(res.body(), c.body) << c.graph << " " << c.input;
    EXPECT_EQ(std::string(res[bhttp::field::content_type]), "application/json") << c.graph;
    // The revision that answered is the graph's router ({graph}-00001).
    EXPECT_EQ(std::string(res["Kh-Revision"]), std::string(c.graph) + "-00001");
  }

  // The breakdown names the steps that ran, with their statuses.
  EXPECT_EQ(steps(call("seq-hard", "{}")), (std::vector<std::string>{"root/error:404"}));
  EXPECT_EQ(steps(call("seq-condition", "{}")),
            (std::vector<std::string>{"root/first:200", "root/second:200"}));
  auto nested = steps(call("seq-switch-soft", picker_error));
  EXPECT_EQ(std::set<std::string>(nested.begin(), nested.end()),
            (std::set<std::string>{"node1/error:404", "root/success:200"}));

  // The Splitter's draws follow its 20/80 weights (a loose bound: 400 draws, 20% each).
  int errors = 0;
  for (int i = 0; i < 400; ++i) {
    auto res = call("splitter", "{}");
    ASSERT_TRUE(res.result_int() == 200 || res.result_int() == 404) << res.body();
    errors += res.result_int() == 404;
  }
  EXPECT_GT(errors, 40);
  EXPECT_LT(errors, 120);

  // KServe's router accepts any path and method on its one handler.
  http::Client c("127.0.0.1", stack_->ingressPort(), 30s);
  http::Request put{bhttp::verb::put, "/v1/models/anything:predict", 11};
  put.set(bhttp::field::host, "seq-soft-recover-default.example.com");
  put.body() = "{}";
  auto any = c.send(std::move(put));
  ASSERT_TRUE(any.ok());
  EXPECT_EQ(any->result_int(), 200u);
  EXPECT_EQ(any->body(), kSuccess);
}

TEST_F(RefstackGraph, ModelChainAsKServesTestInferenceGraph) {
  // test_inference_graph: three models in a Hard Sequence, each given the request ($request).
  ASSERT_TRUE(stack_->apply(testing::manifest("xgboost-iris.yaml"), "xgboost-iris.yaml").ok());
  ASSERT_TRUE(stack_->apply(testing::manifest("dense-iris.yaml"), "dense-iris.yaml").ok());
  ASSERT_TRUE(stack_->apply(testing::manifest("graph-model-chainer.yaml"), "graph-model-chainer.yaml").ok());
  ASSERT_TRUE(waitGraphReady("model-chainer")) << testing::dumpEvents(stack_->events(0));
  // A serviceUrl step does not hold the graph back: wait for its service too.
  ASSERT_TRUE(stack_->waitForEvent(0, testing::eventWhere<events::StatusChanged>([](const auto& s) {
    return s.isvc == "default/dense-iris" && s.ready;
  }), 60s).has_value()) << testing::dumpEvents(stack_->events(0));
  auto res = call("model-chainer", R"({"instances":[[6.8,2.8,4.8,1.4],[6.0,3.4,4.5,1.6]]})");
  EXPECT_EQ(res.result_int(), 200u) << res.body();
  EXPECT_EQ(res.body(), R"({"predictions":[1,1]})");
  EXPECT_EQ(steps(res), (std::vector<std::string>{"root/xgboost:200", "root/dense:200", "root/xgboost-again:200"}));
}

TEST_F(RefstackGraph, GraphAndStepAtZeroPodsColdStartThroughTheActivator) {
  // A service that scales to zero (minReplicas 0), called by a graph that does too: one request
  // wakes the graph's router (held by the activator at the graph's host), whose step is held in
  // turn at the service's.
  const std::string zero = R"(apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: sleepy
  annotations:
    autoscaling.knative.dev/window: "6s"
spec:
  predictor:
    minReplicas: 0
    containers:
      - name: kserve-container
        image: kserve/success-200-isvc:latest
---
apiVersion: serving.kserve.io/v1alpha1
kind: InferenceGraph
metadata:
  name: wake
  annotations:
    autoscaling.knative.dev/window: "6s"
spec:
  minReplicas: 0
  nodes:
    root:
      routerType: Sequence
      steps:
        - {name: sleepy, serviceName: sleepy}
)";
  ASSERT_TRUE(stack_->apply(zero, "zero").ok());
  ASSERT_TRUE(waitGraphReady("wake")) << testing::dumpEvents(stack_->events(0));
  // Wait for both to go (no request has been sent, so the KPA takes them to zero).
  for (const char* revision : {"sleepy-predictor-00001", "wake-00001"}) {
    auto stopped = stack_->waitForEvent(0, testing::eventWhere<events::PodPhaseChanged>([&](const auto& p) {
      return p.revision == revision && p.phase == "Stopped";
    }), 60s);
    ASSERT_TRUE(stopped.has_value()) << revision << "\n" << testing::dumpEvents(stack_->events(0));
  }
  // A revision at zero stays Ready (Knative): the graph still answers at its host.
  auto graph = stack_->getObject("InferenceGraph", "default", "wake");
  ASSERT_TRUE(graph.ok());
  EXPECT_EQ((*graph)["status"]["url"], "http://wake-default.example.com");
  int64_t seq = lastSeq();
  auto res = call("wake", "{}");
  EXPECT_EQ(res.result_int(), 200u) << res.body();
  EXPECT_EQ(res.body(), kSuccess);
  for (const char* revision : {"wake-00001", "sleepy-predictor-00001"}) {
    auto cold = stack_->waitForEvent(seq, testing::eventWhere<events::ColdStart>([&](const auto& c) {
      return c.revision == revision;
    }), 10s);
    EXPECT_TRUE(cold.has_value()) << revision << "\n" << testing::dumpEvents(stack_->events(seq));
  }
}

TEST_F(RefstackGraph, RefusesMalformedGraphsAtApplyAndWaitsForItsServices) {
  const std::string good = R"(apiVersion: serving.kserve.io/v1alpha1
kind: InferenceGraph
metadata:
  name: split
spec:
  nodes:
    root:
      routerType: Splitter
      steps:
        - {serviceName: later, weight: 50}
        - {serviceName: later, weight: 50}
)";
  ASSERT_TRUE(stack_->apply(good, "good").ok());
  // Its service does not exist yet: the graph is not Ready, and says why (the status is written
  // before its event).
  ASSERT_TRUE(stack_->waitForEvent(0, testing::eventWhere<events::StatusChanged>([](const auto& s) {
    return s.isvc == graphKey("split") && !s.ready;
  }), 30s).has_value()) << testing::dumpEvents(stack_->events(0));
  auto waiting = stack_->getObject("InferenceGraph", "default", "split");
  ASSERT_TRUE(waiting.ok());
  std::string ready_message;
  for (const auto& c : (*waiting)["status"]["conditions"]) {
    if (c["type"] == "Ready") ready_message = c.value("message", "");
  }
  EXPECT_EQ(ready_message, "Failed to find graph service later") << (*waiting).dump();

  std::string bad_weights = good;
  bad_weights.replace(bad_weights.rfind("weight: 50"), 10, "weight: 40");
  auto refused = stack_->apply(bad_weights, "bad");
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(std::string(refused.status().message()).find("the sum of traffic weights for all routing targets should be 100"),
            std::string::npos) << refused.status();
  const std::string bad_condition = R"(apiVersion: serving.kserve.io/v1alpha1
kind: InferenceGraph
metadata:
  name: split
spec:
  nodes:
    root:
      routerType: Switch
      steps:
        - {serviceName: later, condition: "instances.#(x=="}
)";
  refused = stack_->apply(bad_condition, "bad");
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(std::string(refused.status().message()).find("offset"), std::string::npos) << refused.status();
  const std::string no_root = R"(apiVersion: serving.kserve.io/v1alpha1
kind: InferenceGraph
metadata:
  name: rootless
spec:
  nodes:
    first:
      routerType: Sequence
      steps:
        - {serviceName: later}
)";
  refused = stack_->apply(no_root, "bad");
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(std::string(refused.status().message()).find("root node not found"), std::string::npos) << refused.status();
  EXPECT_FALSE(stack_->getObject("InferenceGraph", "default", "rootless").ok());
  // Nothing changed: the stored graph is still the good one.
  auto still = stack_->getObject("InferenceGraph", "default", "split");
  ASSERT_TRUE(still.ok());
  EXPECT_EQ((*still)["spec"]["nodes"]["root"]["routerType"], "Splitter");
  EXPECT_EQ((*still)["spec"]["nodes"]["root"]["steps"][1]["weight"], 50);

  // The service comes: the graph becomes Ready and routes to it.
  const std::string later = R"(apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: later
spec:
  predictor:
    containers:
      - name: kserve-container
        image: kserve/success-200-isvc:latest
)";
  int64_t seq = lastSeq();
  ASSERT_TRUE(stack_->apply(later, "later").ok());
  ASSERT_TRUE(waitGraphReady("split", seq)) << testing::dumpEvents(stack_->events(seq));
  auto res = call("split", "{}");
  EXPECT_EQ(res.result_int(), 200u);
  EXPECT_EQ(res.body(), kSuccess);

  // Deleting the graph stops its router's pods.
  seq = lastSeq();
  ASSERT_TRUE(stack_->remove("InferenceGraph", "default", "split").ok());
  auto stopped = stack_->waitForEvent(seq, testing::eventWhere<events::PodPhaseChanged>([](const auto& p) {
    return p.revision == "split-00001" && p.phase == "Stopped";
  }), 30s);
  EXPECT_TRUE(stopped.has_value()) << testing::dumpEvents(stack_->events(seq));
  EXPECT_EQ(call("split", "{}").result_int(), 404u);
}

}  // namespace
}  // namespace kh::refstack
