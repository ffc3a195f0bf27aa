// refstack: apply real manifests, route by Host through the ingress, canary split with an exact
// binomial test, tag hosts, promote, invalid manifests, delete.

#include "kh/refstack/refstack.h"

#include <signal.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "gtest/gtest.h"
#include "kh/http/client.h"
#include "support/modelserver_process.h"
#include "support/refstack_test_support.h"

namespace kh::refstack {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

using testing::manifest;

double upperTail(int64_t k, int64_t n, double p) {
  double total = 0;
  for (int64_t x = k; x <= n; ++x) {
    total += std::exp(std::lgamma(n + 1.0) - std::lgamma(x + 1.0) - std::lgamma(n - x + 1.0) +
                      x * std::log(p) + (n - x) * std::log1p(-p));
  }
  return total;
}

class RefstackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.state_dir = std::string(::testing::TempDir()) + "/refstack-" +
                        ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(config_.state_dir);  // state from an earlier run would be restored
    config_.admin_port = 0;
    config_.ingress_port = 0;
    config_.grpc_ingress_port = 0;
    config_.images = builtinImages(testing::binDir());
    config_.runtimes_dir = testing::sourceDir() + "/reference-impl/controller/runtimes";
    config_.base_dir = testing::sourceDir();
    config_.pod_grace_period = 5s;
    startStack();
  }

  void startStack() {
    auto s = Refstack::start(config_, time_);
    ASSERT_TRUE(s.ok()) << s.status();
    stack_ = std::move(*s);
  }

  // Waits for the InferenceService's status to report Ready (an event, not a sleep).
  void waitReady(int64_t since) {
    auto e = stack_->waitForEvent(
        since, testing::eventWhere<events::StatusChanged>([](const auto& s) { return s.ready; }), 30s);
    ASSERT_TRUE(e.has_value()) << testing::dumpEvents(stack_->events(0));
  }

  int64_t lastSeq() {
    auto all = stack_->events(0);
    return all.empty() ? 0 : all.back().seq;
  }

  absl::StatusOr<http::Response> predict(http::Client& c, const std::string& host) {
    http::Request req;
    req.method(boost::beast::http::verb::post);
    req.target("/v1/models/xgboost-iris:predict");
    req.version(11);
    req.set(boost::beast::http::field::host, host);
    req.set(boost::beast::http::field::content_type, "application/json");
    req.body() = R"({"instances":[[6.8,2.8,4.8,1.4]]})";
    return c.send(std::move(req));
  }

  common::RealTimeSource time_;
  Config config_;
  std::unique_ptr<Refstack> stack_;
};

TEST_F(RefstackTest, AppliesRoutesSplitsPromotesAndDeletes) {
  auto applied = stack_->apply(manifest("xgboost-iris.yaml"), "xgboost-iris.yaml");
  ASSERT_TRUE(applied.ok()) << applied.status();
  waitReady(0);
  auto obj = stack_->get("default", "xgboost-iris");
  ASSERT_TRUE(obj.ok());
  EXPECT_EQ((*obj)["status"]["url"], "http://xgboost-iris-default.example.com");
  EXPECT_EQ((*obj)["status"]["clusterServingRuntimeName"], "kh-xgboost");

  http::Client client("127.0.0.1", stack_->ingressPort());
  auto res = predict(client, "xgboost-iris-default.example.com");
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(res->result_int(), 200u);
  EXPECT_EQ(res->body(), R"({"predictions":[1]})");
  EXPECT_EQ(std::string((*res)["Kh-Revision"]), "xgboost-iris-predictor-00001");
  auto unknown = predict(client, "nobody-default.example.com");
  EXPECT_EQ(unknown->result_int(), 404u);

  // Canary: a new revision takes 20%, the rolled-out one 80% (tag routing on in this manifest).
  int64_t seq = lastSeq();
  ASSERT_TRUE(stack_->apply(manifest("canary.yaml"), "canary.yaml").ok());
  ASSERT_TRUE(stack_->waitForEvent(seq, testing::eventWhere<events::PodPhaseChanged>(
      [](const auto& p) { return p.phase == "Ready" && p.revision == "xgboost-iris-predictor-00002"; }), 30s).has_value());
  // The traffic table follows the readiness event through the reconciler.
  ASSERT_TRUE(stack_->waitForEvent(seq, testing::eventWhere<events::StatusChanged>([](const auto& s) { return s.traffic.size() == 2; }), 30s).has_value()) << testing::dumpEvents(stack_->events(seq));
  const int64_t n = 2000;
  int64_t to_new = 0;
  for (int64_t i = 0; i < n; ++i) {
    auto r = predict(client, "xgboost-iris-default.example.com");
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->result_int(), 200u);
    to_new += std::string((*r)["Kh-Revision"]) == "xgboost-iris-predictor-00002";
  }
  double p_value = 2 * std::min(upperTail(to_new, n, 0.2), 1 - upperTail(to_new + 1, n, 0.2));
  EXPECT_GT(p_value, 0.001) << to_new << " of " << n << " went to the canary";
  // Tag hosts go to exactly one revision.
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(std::string((*predict(client, "latest-xgboost-iris-predictor-default.example.com"))["Kh-Revision"]),
              "xgboost-iris-predictor-00002");
    EXPECT_EQ(std::string((*predict(client, "prev-xgboost-iris-predictor-default.example.com"))["Kh-Revision"]),
              "xgboost-iris-predictor-00001");
  }

  // Roll back: canaryTrafficPercent 0 sends everything to the rolled-out revision (tag prev).
  std::string rollback = manifest("canary.yaml");
  rollback.replace(rollback.find("canaryTrafficPercent: 20"), 24, "canaryTrafficPercent: 0");
  seq = lastSeq();
  ASSERT_TRUE(stack_->apply(rollback, "rollback").ok());
  ASSERT_TRUE(stack_->waitForEvent(seq, testing::eventWhere<events::StatusChanged>(
      [](const auto& s) { return s.traffic.size() == 2 && s.traffic[0].percent == 0; }), 30s).has_value()) << testing::dumpEvents(stack_->events(seq));
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(std::string((*predict(client, "xgboost-iris-default.example.com"))["Kh-Revision"]),
              "xgboost-iris-predictor-00001");
  }
  // Back to the canary for the rest of the test.
  seq = lastSeq();
  ASSERT_TRUE(stack_->apply(manifest("canary.yaml"), "canary again").ok());
  ASSERT_TRUE(stack_->waitForEvent(seq, testing::eventWhere<events::StatusChanged>(
      [](const auto& s) { return s.traffic.size() == 2 && s.traffic[0].percent == 20; }), 30s).has_value());

  // An invalid manifest is refused and changes nothing.
  auto bad = stack_->apply("apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\n"
                           "metadata: {name: xgboost-iris}\nspec:\n  predictor: {minReplicas: -1, "
                           "model: {modelFormat: {name: xgboost}}}\n", "bad");
  ASSERT_FALSE(bad.ok());
  // KServe's message, as the apiserver relays its validating webhook's denial.
  EXPECT_EQ(std::string(bad.status().message()),
            "bad: admission webhook \"inferenceservice.kserve-webhook-server.validator\" denied the request: "
            "MinReplicas cannot be less than 0.");
  EXPECT_EQ((*stack_->get("default", "xgboost-iris"))["spec"]["predictor"]["canaryTrafficPercent"], 20);

  // Promote: drop canaryTrafficPercent; everything goes to the new revision.
  std::string promoted = manifest("canary.yaml");
  promoted.replace(promoted.find("    canaryTrafficPercent: 20\n"), 29, "");
  seq = lastSeq();
  ASSERT_TRUE(stack_->apply(promoted, "promote").ok());
  ASSERT_TRUE(stack_->waitForEvent(seq, testing::eventWhere<events::StatusChanged>([](const auto& s) { return s.traffic.size() == 1; }), 30s).has_value()) << testing::dumpEvents(stack_->events(seq));
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(std::string((*predict(client, "xgboost-iris-default.example.com"))["Kh-Revision"]),
              "xgboost-iris-predictor-00002");
  }
  auto status = (*stack_->get("default", "xgboost-iris"))["status"]["components"]["predictor"];
  EXPECT_EQ(status["latestRolledoutRevision"], "xgboost-iris-predictor-00002");
  EXPECT_EQ(status["previousRolledoutRevision"], "xgboost-iris-predictor-00001");

  // Delete: the service and its routes go.
  ASSERT_TRUE(stack_->remove("InferenceService", "default", "xgboost-iris").ok());
  EXPECT_FALSE(stack_->get("default", "xgboost-iris").ok());
}

TEST_F(RefstackTest, AKilledPodIsRestartedAndServesAgain) {
  ASSERT_TRUE(stack_->apply(manifest("xgboost-iris.yaml"), "m").ok());
  waitReady(0);
  auto events = stack_->events(0);
  int pid = 0;
  for (const auto& e : events) {
    const auto* p = e.as<events::PodPhaseChanged>();
    if (p && p->message.rfind("started pid ", 0) == 0) pid = std::stoi(p->message.substr(12));
  }
  ASSERT_GT(pid, 0);
  int64_t seq = lastSeq();
  ::kill(pid, SIGKILL);
  ASSERT_TRUE(stack_->waitForEvent(seq, testing::eventWhere<events::PodPhaseChanged>([](const auto& p) { return p.phase == "BackOff"; }), 10s).has_value());
  ASSERT_TRUE(stack_->waitForEvent(seq, testing::eventWhere<events::PodPhaseChanged>([](const auto& p) { return p.phase == "Ready"; }), 30s).has_value());
  http::Client client("127.0.0.1", stack_->ingressPort());
  // The ready event reaches the routing through the reconciler: wait for the status after it.
  ASSERT_TRUE(stack_->waitForEvent(seq, testing::eventWhere<events::StatusChanged>([](const auto& s) { return s.ready; }), 30s).has_value());
  auto res = predict(client, "xgboost-iris-default.example.com");
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(res->result_int(), 200u);
}

TEST_F(RefstackTest, MissingRuntimeShowsInStatus) {
  ASSERT_TRUE(stack_->apply("apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\n"
                            "metadata: {name: tf}\nspec:\n  predictor: {model: {modelFormat: {name: tensorflow}}}\n",
                            "tf").ok());
  ASSERT_TRUE(stack_->waitForEvent(0, testing::eventOf<events::StatusChanged>(), 10s).has_value());
  auto obj = stack_->get("default", "tf");
  ASSERT_TRUE(obj.ok());
  EXPECT_EQ((*obj)["status"]["modelStatus"]["lastFailureInfo"]["reason"], "NoSupportingRuntime");
}

// Each state directory's failure is its own: a logs/ that cannot be made is not hidden by a pods/
// that can (one shared error_code once let the second call clear the first's error).
TEST(RefstackStart, AStateDirectoryThatCannotBeMadeIsNamed) {
  Config config;
  config.state_dir = std::string(::testing::TempDir()) + "/refstack-unmakeable";
  std::filesystem::remove_all(config.state_dir);
  std::filesystem::create_directories(config.state_dir);
  std::ofstream(config.state_dir / "logs") << "a file where the logs directory goes\n";
  common::RealTimeSource time;
  auto stack = Refstack::start(config, time);
  ASSERT_FALSE(stack.ok());
  EXPECT_EQ(stack.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(std::string(stack.status().message()).find((config.state_dir / "logs").string()), std::string::npos)
      << stack.status();
  std::filesystem::remove_all(config.state_dir);
}

}  // namespace
}  // namespace kh::refstack
