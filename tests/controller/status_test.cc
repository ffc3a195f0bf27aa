// Revisions and KServe-shaped status through a canary rollout.

#include "kh/controller/status.h"

#include "gtest/gtest.h"

namespace kh::controller {
namespace {

using nlohmann::json;

InferenceService iris() {
  auto r = parseManifests(R"(
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: iris, namespace: demo}
spec:
  predictor:
    model: {modelFormat: {name: xgboost}, storageUri: models/iris}
)");
  return *r->at(0).inference_service;
}

json conditionOf(const json& status, const std::string& type) {
  for (const auto& c : status["conditions"]) {
    if (c["type"] == type) return c;
  }
  return nullptr;
}

TEST(Revisions, NewRevisionOnlyWhenTheSpecChanges) {
  ComponentState s;
  EXPECT_TRUE(recordSpec(s, "iris", "predictor", json{{"a", 1}}));
  EXPECT_FALSE(recordSpec(s, "iris", "predictor", json{{"a", 1}}));
  EXPECT_TRUE(recordSpec(s, "iris", "predictor", json{{"a", 2}}));
  ASSERT_EQ(s.revisions.size(), 2u);
  EXPECT_EQ(s.revisions[0].name, "iris-predictor-00001");
  EXPECT_EQ(s.rollout.latest_created_revision, "iris-predictor-00002");
  setRevisionReady(s, "iris-predictor-00001", true);
  EXPECT_EQ(s.rollout.latest_ready_revision, "iris-predictor-00001");
  setRevisionReady(s, "iris-predictor-00002", true);
  EXPECT_EQ(s.rollout.latest_ready_revision, "iris-predictor-00002");
}

TEST(Status, ReadyIsolatedServiceLooksLikeKServes) {
  auto isvc = iris();
  ComponentState p;
  recordSpec(p, "iris", "predictor", json{{"v", 1}});
  setRevisionReady(p, "iris-predictor-00001", true);
  p.traffic = computeTraffic(std::nullopt, p.rollout, false);
  propagateRollout(p.rollout, p.traffic);
  StatusInputs in;
  in.predictor = &p;
  auto st = buildStatus(isvc, in);
  EXPECT_EQ(st["url"], "http://iris-demo.example.com");
  EXPECT_EQ(st["address"]["url"], "http://iris.demo.svc.cluster.local");
  EXPECT_EQ(conditionOf(st, "Ready")["status"], "True");
  EXPECT_EQ(conditionOf(st, "PredictorReady")["status"], "True");
  EXPECT_EQ(conditionOf(st, "IngressReady")["status"], "True");
  const auto& pred = st["components"]["predictor"];
  EXPECT_EQ(pred["latestReadyRevision"], "iris-predictor-00001");
  EXPECT_EQ(pred["latestRolledoutRevision"], "iris-predictor-00001");
  EXPECT_EQ(pred["traffic"][0]["percent"], 100);
  EXPECT_EQ(pred["traffic"][0]["latestRevision"], true);
  EXPECT_EQ(st["modelStatus"]["transitionStatus"], "UpToDate");
  EXPECT_EQ(st["modelStatus"]["states"]["activeModelState"], "Loaded");
}

TEST(Status, CanaryTrafficAndTagUrls) {
  auto isvc = iris();
  ComponentState p;
  recordSpec(p, "iris", "predictor", json{{"v", 1}});
  setRevisionReady(p, "iris-predictor-00001", true);
  p.traffic = computeTraffic(std::nullopt, p.rollout, true);
  propagateRollout(p.rollout, p.traffic);
  recordSpec(p, "iris", "predictor", json{{"v", 2}});
  setRevisionReady(p, "iris-predictor-00002", true);
  p.traffic = computeTraffic(20, p.rollout, true);
  StatusInputs in;
  in.predictor = &p;
  auto st = buildStatus(isvc, in);
  const auto& t = st["components"]["predictor"]["traffic"];
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0]["percent"], 20);
  EXPECT_EQ(t[0]["url"], "http://latest-iris-predictor-demo.example.com");
  EXPECT_EQ(t[1]["percent"], 80);
  EXPECT_EQ(t[1]["tag"], "prev");
  EXPECT_EQ(t[1]["url"], "http://prev-iris-predictor-demo.example.com");
}

TEST(Status, FailuresShowInConditionsAndModelStatus) {
  auto isvc = iris();
  ComponentState p;
  recordSpec(p, "iris", "predictor", json{{"v", 1}});
  setRevisionReady(p, "iris-predictor-00001", false, "model failed to load: no model.json");
  StatusInputs in;
  in.predictor = &p;
  auto st = buildStatus(isvc, in);
  EXPECT_EQ(conditionOf(st, "Ready")["status"], "False");
  EXPECT_EQ(conditionOf(st, "PredictorReady")["reason"], "RevisionFailed");
  EXPECT_EQ(st["modelStatus"]["transitionStatus"], "BlockedByFailedLoad");
  EXPECT_EQ(st["modelStatus"]["lastFailureInfo"]["reason"], "ModelLoadFailed");
  EXPECT_EQ(st["modelStatus"]["lastFailureInfo"]["modelRevisionName"], "iris-predictor-00001");

  RuntimeSelection none;
  none.failure = RuntimeFailure::kNoSupportingRuntime;
  none.message = "no runtime found to support predictor with model type: {xgboost }";
  in.runtime = none;
  st = buildStatus(isvc, in);
  EXPECT_EQ(conditionOf(st, "PredictorReady")["reason"], "NoSupportingRuntime");
  EXPECT_EQ(st["modelStatus"]["transitionStatus"], "InvalidSpec");
  EXPECT_EQ(st["modelStatus"]["lastFailureInfo"]["reason"], "NoSupportingRuntime");
}

TEST(Status, TransformerGatesReadyThroughIngress) {
  auto r = parseManifests(R"(
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: t}
spec:
  transformer: {containers: [{name: kserve-container, image: x}]}
  predictor: {model: {modelFormat: {name: xgboost}}}
)");
  auto isvc = *r->at(0).inference_service;
  ComponentState p, tr;
  recordSpec(p, "t", "predictor", json{{"v", 1}});
  setRevisionReady(p, "t-predictor-00001", true);
  recordSpec(tr, "t", "transformer", json{{"v", 1}});
  StatusInputs in;
  in.predictor = &p;
  in.transformer = &tr;
  auto st = buildStatus(isvc, in);
  EXPECT_EQ(conditionOf(st, "PredictorReady")["status"], "True");
  EXPECT_EQ(conditionOf(st, "TransformerReady")["status"], "False");
  EXPECT_EQ(conditionOf(st, "IngressReady")["reason"], "Transformer ingress not created");
  EXPECT_EQ(conditionOf(st, "Ready")["status"], "False");
  setRevisionReady(tr, "t-transformer-00001", true);
  st = buildStatus(isvc, in);
  EXPECT_EQ(conditionOf(st, "Ready")["status"], "True");
}

}  // namespace
}  // namespace kh::controller
