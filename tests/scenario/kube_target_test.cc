// The kube target over a fake kubectl printing KServe-shaped JSON: apply, get, Ready, pods per
// revision, PodAutoscaler changes as scale events, the ingress with the service's Host.

#include <stdlib.h>

#include <fstream>
#include <sstream>

#include "gtest/gtest.h"
#include "kh/scenario/target.h"

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

TEST_F(KubeTargetTest, AppliesGetsAndObserves) {
  ASSERT_TRUE(target_->begin({}).ok());
  EXPECT_EQ(target_->kind(), "kube");
  EXPECT_EQ(target_->lacks("control-plane"), "");
  EXPECT_NE(target_->lacks("coldstart-events"), "");
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
  EXPECT_EQ(pods->at("sklearn-iris-predictor-00001").total, 2);  // one terminating
  EXPECT_EQ(pods->at("sklearn-iris-predictor-00001").ready, 1);
  EXPECT_EQ(pods->at("sklearn-iris-predictor-00002").total, 1);
  EXPECT_EQ(pods->at("sklearn-iris-predictor-00002").ready, 0);

  auto events = target_->pollEvents();
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
