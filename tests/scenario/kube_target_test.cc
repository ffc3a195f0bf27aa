// The kube target. Against refstack with the real kubectl and refstack's kubeconfig: apply, get,
// Ready, pods per revision, PodAutoscaler changes as scale events, the scenario's
// config-autoscaler written into knative-serving, the ingress with the service's Host, delete.
// Over a fake kubectl, only what refstack does not print: JSON captured from KServe on a cluster
// (a terminating pod, a Knative PodAutoscaler without refstack's fields).

#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "gtest/gtest.h"
#include "kh/refstack/refstack.h"
#include "kh/scenario/target.h"
#include "support/refstack_process.h"
#include "support/refstack_test_support.h"

namespace kh::scenario {
namespace {

class KubeTargetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Per test: ctest runs the tests of this suite in parallel processes.
    log_ = std::string(::testing::TempDir()) + "/fake-kubectl-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".log";
    std::filesystem::remove(log_);
    setenv("FAKE_KUBECTL_LOG", log_.c_str(), 1);
    setenv("FAKE_KUBECTL_FIXTURES", KH_TEST_DIR "/fixtures", 1);
    KubeOptions o;
    o.kubectl = KH_TEST_DIR "/fake_kubectl.sh";
    o.context = "kind-kserve";
    o.ingress = "127.0.0.1:8080";
    target_ = makeKubeTarget(o, time_);
  }
  std::string logText() {
    std::ifstream in(log_);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  common::RealTimeSource time_;
  std::string log_;
  std::unique_ptr<Target> target_;
};

TEST_F(KubeTargetTest, ReadsTheJsonOfAClusterRefstackDoesNotPrint) {
  ASSERT_TRUE(target_->begin({}).ok());
  EXPECT_EQ(target_->kind(), "kube");
  EXPECT_EQ(target_->lacks("control-plane"), "");
  EXPECT_EQ(target_->lacks("coldstart-events"), "");  // from the watches
  EXPECT_NE(target_->lacks("simulation"), "");
  ASSERT_TRUE(target_->apply("apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\n", "x.yaml").ok());
  std::ifstream applied(log_ + ".applied");
  std::stringstream body;
  body << applied.rdbuf();
  EXPECT_EQ(body.str(), "apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\n");

  auto isvc = target_->get("kserve-test", "sklearn-iris");
  ASSERT_TRUE(isvc.ok()) << isvc.status();
  EXPECT_TRUE(isReady(*isvc));
  auto missing = target_->get("kserve-test", "missing");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound) << missing.status();

  auto pods = target_->pods("kserve-test", "sklearn-iris");
  ASSERT_TRUE(pods.ok()) << pods.status();
  ASSERT_EQ(pods->size(), 2u);
  EXPECT_EQ(pods->at("sklearn-iris-predictor-00001").total, 1);  // the terminating one has left
  EXPECT_EQ(pods->at("sklearn-iris-predictor-00001").ready, 1);
  EXPECT_EQ(pods->at("sklearn-iris-predictor-00002").total, 1);
  EXPECT_EQ(pods->at("sklearn-iris-predictor-00002").ready, 0);

  // The PodAutoscaler watch's events, as they arrive.
  std::vector<events::Event> events;
  for (int i = 0; i < 500 && events.size() < 2; ++i) {
    auto more = target_->pollEvents();
    events.insert(events.end(), more.begin(), more.end());
    if (events.size() < 2) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(events.size(), 2u);
  const auto* first = events[0].as<events::ScaleDecided>();
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(first->isvc, "kserve-test/sklearn-iris");
  EXPECT_EQ(first->revision, "sklearn-iris-predictor-00001");
  EXPECT_EQ(first->desired, 1);
  EXPECT_EQ(first->actual, 2);
  ASSERT_NE(events[1].as<events::ScaleDecided>(), nullptr);
  EXPECT_EQ(events[1].as<events::ScaleDecided>()->active, false);
  EXPECT_TRUE(target_->pollEvents().empty());  // unchanged: no new event

  // Bounds come from the cluster's config-autoscaler (without its _example) and Knative's tick.
  auto effective = target_->effectiveAutoscaler();
  ASSERT_TRUE(effective.ok()) << effective.status();
  EXPECT_EQ(effective->config, (std::map<std::string, std::string>{{"scale-to-zero-grace-period", "6s"}, {"stable-window", "6s"}}));
  EXPECT_EQ(effective->tick_s, 2.0);
  // Its runtime's port is not named h2c: HTTP/1 only, so gRPC is skipped with the reason.
  EXPECT_NE(target_->lacksGrpc("kserve-test", "sklearn-iris").find("h2c"), std::string::npos);

  auto ep = target_->endpoint("kserve-test", "sklearn-iris", "");
  ASSERT_TRUE(ep.ok()) << ep.status();
  EXPECT_EQ(ep->host, "127.0.0.1");
  EXPECT_EQ(ep->http_port, 8080);
  EXPECT_EQ(ep->authority, "sklearn-iris-kserve-test.example.com");
  EXPECT_EQ(target_->endpoint("kserve-test", "sklearn-iris", "prev")->authority,
            "prev-sklearn-iris-predictor-kserve-test.example.com");
  EXPECT_TRUE(target_->remove("kserve-test", "sklearn-iris").ok());

  std::string log = logText();
  EXPECT_NE(log.find("--context kind-kserve apply -f -"), std::string::npos) << log;
  EXPECT_NE(log.find("--context kind-kserve get pods -n kserve-test -l serving.kserve.io/inferenceservice=sklearn-iris -o json"),
            std::string::npos) << log;
  EXPECT_NE(log.find("delete inferenceservice sklearn-iris -n kserve-test --ignore-not-found"), std::string::npos) << log;
}

TEST_F(KubeTargetTest, ReportsAMissingKubectl) {
  KubeOptions o;
  o.kubectl = "/nonexistent/kubectl";
  auto t = makeKubeTarget(o, time_);
  auto st = t->begin({});
  EXPECT_FALSE(st.ok());
}

TEST(KubeTargetOnRefstack, DrivesTheStackThroughTheRealKubectl) {
  using namespace std::chrono_literals;
  if (!testing::onPath("kubectl")) GTEST_SKIP() << "no kubectl on PATH (./scripts/test installs Debian's kubernetes-client)";
  common::RealTimeSource time;
  refstack::Config config = testing::refstackTestConfig("kube-target", /*serverless=*/true);
  auto stack = refstack::Refstack::start(config, time);
  ASSERT_TRUE(stack.ok()) << stack.status();
  // kubectl's discovery cache goes to HOME: one of the test's own.
  std::string home = (config.state_dir / "home").string();
  std::filesystem::create_directories(home);
  setenv("HOME", home.c_str(), 1);
  KubeOptions o;
  o.kubeconfig = (*stack)->kubeconfigPath().string();
  o.ingress = "127.0.0.1:" + std::to_string((*stack)->ingressPort());
  o.grpc_port = (*stack)->grpcIngressPort();
  o.apply_autoscaler_config = true;
  // refstack reads the repository's files itself: the store is where they already are.
  o.model_store = "file://reference-impl/models";
  auto target = makeKubeTarget(o, time);
  TargetSettings settings;
  settings.autoscaler = {{"stable-window", "6s"}};
  ASSERT_TRUE(target->begin(settings).ok());
  auto cm = (*stack)->listObjects("ConfigMap", "knative-serving", "");
  ASSERT_EQ(cm["items"].size(), 1u) << cm.dump();
  EXPECT_EQ(cm["items"][0]["data"]["stable-window"], "6s");

  auto applied = target->apply(testing::manifest("xgboost-iris.yaml"), "xgboost-iris.yaml");
  ASSERT_TRUE(applied.ok()) << applied;
  ASSERT_TRUE((*stack)->waitForEvent(0, testing::eventWhere<events::StatusChanged>([](const auto& s) { return s.ready; }), 60s));
  auto isvc = target->get("default", "xgboost-iris");
  ASSERT_TRUE(isvc.ok()) << isvc.status();
  EXPECT_TRUE(isReady(*isvc));
  EXPECT_EQ((*isvc)["status"]["observedGeneration"], (*isvc)["metadata"]["generation"]);
  EXPECT_EQ(target->get("default", "missing").status().code(), absl::StatusCode::kNotFound);
  auto pods = target->pods("default", "xgboost-iris");
  ASSERT_TRUE(pods.ok()) << pods.status();
  ASSERT_EQ(pods->count("xgboost-iris-predictor-00001"), 1u);
  EXPECT_EQ(pods->at("xgboost-iris-predictor-00001").ready, 1);
  // The PodAutoscaler the KPA wrote is a scale event for the scenario.
  auto events = target->pollEvents();
  ASSERT_FALSE(events.empty());
  const auto* scale = events.back().as<events::ScaleDecided>();
  ASSERT_NE(scale, nullptr);
  EXPECT_EQ(scale->isvc, "default/xgboost-iris");
  EXPECT_EQ(scale->revision, "xgboost-iris-predictor-00001");
  EXPECT_EQ(scale->desired, 1);
  auto ep = target->endpoint("default", "xgboost-iris", "");
  ASSERT_TRUE(ep.ok()) << ep.status();
  EXPECT_EQ(ep->http_port, (*stack)->ingressPort());
  EXPECT_EQ(ep->grpc_port, (*stack)->grpcIngressPort());
  EXPECT_EQ(ep->authority, "xgboost-iris-default.example.com");
  ASSERT_TRUE(target->remove("default", "xgboost-iris").ok());
  EXPECT_EQ(target->get("default", "xgboost-iris").status().code(), absl::StatusCode::kNotFound);
  target->end();
}

TEST(EndpointTarget, HasNoControlPlane) {
  auto t = makeEndpointTarget("http://127.0.0.1:9000", "127.0.0.1:9001");
  ASSERT_TRUE(t.ok());
  EXPECT_NE((*t)->lacks("control-plane"), "");
  auto ep = (*t)->endpoint("default", "x", "");
  ASSERT_TRUE(ep.ok());
  EXPECT_EQ(ep->http_port, 9000);
  EXPECT_EQ(ep->grpc_port, 9001);
  EXPECT_EQ(ep->authority, "");
  EXPECT_EQ((*t)->apply("", "").code(), absl::StatusCode::kUnimplemented);
}

}  // namespace
}  // namespace kh::scenario
