// The objects the controller writes as KServe, Knative and the kubelet would (a Revision that
// brings its revision back after a restart, a Pod with what the Python client's typed models
// require, a PodAutoscaler as the kube target reads it), and KServe's admission.

#include "kh/controller/api_objects.h"

#include "gtest/gtest.h"
#include "kh/kubeapi/errors.h"
#include "kh/kubeapi/kinds.h"

namespace kh::controller {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

TEST(ApiObjects, ARevisionObjectBringsTheRevisionBack) {
  RevisionRecord r;
  r.name = "iris-predictor-00002";
  r.namespace_name = "team";
  r.isvc = "iris";
  r.spec = {{"model", {{"storageUri", "file://m"}}}};
  r.launch.component = "predictor";
  r.launch.argv = {"/bin/modelserver", "--model_name=iris"};
  r.launch.env = {{"A", "1"}};
  r.launch.readiness_path = "/v2/health/ready";
  r.container_concurrency = 4;
  r.timeout_seconds = 30;
  r.pod_serial = 7;
  r.ready = true;
  json o = revisionObject(r);
  EXPECT_EQ(o["apiVersion"], "serving.knative.dev/v1");
  EXPECT_EQ(o["metadata"]["labels"][kIsvcLabel], "iris");
  EXPECT_EQ(o["metadata"]["labels"][kConfigurationLabel], "iris-predictor");
  EXPECT_EQ(o["metadata"]["labels"]["serving.knative.dev/configurationGeneration"], "2");
  EXPECT_EQ(o["spec"]["containerConcurrency"], 4);
  EXPECT_EQ(o["status"]["conditions"][0]["status"], "True");
  auto back = revisionRecordFromObject(o);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->name, r.name);
  EXPECT_EQ(back->namespace_name, "team");
  EXPECT_EQ(back->isvc, "iris");
  EXPECT_EQ(back->spec, r.spec);
  EXPECT_EQ(back->launch.argv, r.launch.argv);
  EXPECT_EQ(back->launch.env, r.launch.env);
  EXPECT_EQ(back->launch.component, "predictor");
  EXPECT_EQ(back->container_concurrency, 4);
  EXPECT_EQ(back->timeout_seconds, 30);
  EXPECT_EQ(back->pod_serial, 7);
  EXPECT_TRUE(back->ready);
  json broken = o;
  broken["metadata"]["labels"].erase(kIsvcLabel);
  EXPECT_FALSE(revisionRecordFromObject(broken).ok());
}

TEST(ApiObjects, APodCarriesWhatClientsRequireAndShowsItsPhase) {
  PodRecord p;
  p.name = "iris-predictor-00001-pod-1";
  p.namespace_name = "default";
  p.isvc = "iris";
  p.component = "predictor";
  p.revision = "iris-predictor-00001";
  p.revision_uid = "u-1";
  p.phase = "Ready";
  p.has_queue_proxy = true;
  p.created = p.phase_since = std::chrono::system_clock::time_point(std::chrono::seconds(1'800'000'000));
  json o = podObject(p);
  EXPECT_EQ(o["metadata"]["labels"][kRevisionLabel], "iris-predictor-00001");
  EXPECT_EQ(o["metadata"]["ownerReferences"][0]["uid"], "u-1");
  EXPECT_EQ(o["status"]["phase"], "Running");
  ASSERT_EQ(o["status"]["containerStatuses"].size(), 2u);
  for (const auto& c : o["status"]["containerStatuses"]) {
    for (const char* field : {"name", "image", "imageID", "ready", "restartCount"}) {
      EXPECT_TRUE(c.contains(field)) << field;  // the Python client's V1ContainerStatus needs them
    }
    EXPECT_TRUE(c["ready"].get<bool>());
  }
  int ready_conditions = 0;
  for (const auto& c : o["status"]["conditions"]) {
    EXPECT_TRUE(c.contains("type") && c.contains("status"));
    if (c["type"] == "Ready") {
      ++ready_conditions;
      EXPECT_EQ(c["status"], "True");
    }
  }
  EXPECT_EQ(ready_conditions, 1);
  EXPECT_EQ(o["status"]["startTime"], "2027-01-15T08:00:00Z");
  EXPECT_FALSE(o["metadata"].contains("deletionTimestamp"));

  p.phase = "Stopping";
  json stopping = podObject(p);
  EXPECT_TRUE(stopping["metadata"].contains("deletionTimestamp"));  // kubectl shows Terminating
  p.phase = "BackOff";
  p.restarts = 2;
  p.last_exit = "exit code 1";
  json crashed = podObject(p);
  EXPECT_EQ(crashed["status"]["containerStatuses"][0]["state"]["waiting"]["reason"], "CrashLoopBackOff");
  EXPECT_EQ(crashed["status"]["containerStatuses"][0]["restartCount"], 2);
}

TEST(ApiObjects, APodAutoscalerShowsTheKpasDecision) {
  PodAutoscalerView v;
  v.isvc = "team/iris";
  v.revision = "iris-predictor-00001";
  v.desired_scale = 3;
  v.actual_scale = 2;
  v.replicas = 3;
  v.active = "True";
  v.panicking = true;
  v.activator_in_path = false;
  auto now_mono = common::MonotonicTime(std::chrono::seconds(100));
  v.active_since = now_mono - 5s;
  auto now_sys = std::chrono::system_clock::time_point(std::chrono::seconds(1'800'000'000));
  json o = podAutoscalerObject(v, now_sys, now_mono);
  EXPECT_EQ(o["metadata"]["namespace"], "team");
  EXPECT_EQ(o["metadata"]["labels"][kIsvcLabel], "iris");
  EXPECT_EQ(o["status"]["desiredScale"], 3);
  EXPECT_EQ(o["status"]["actualScale"], 2);
  EXPECT_EQ(o["status"]["conditions"][0]["type"], "Active");
  EXPECT_EQ(o["status"]["conditions"][0]["lastTransitionTime"], "2027-01-15T07:59:55Z");
  EXPECT_EQ(o["status"]["conditions"][2]["type"], "ScaleTargetInitialized");
  EXPECT_EQ(o["status"]["conditions"][2]["status"], "Unknown");
  v.scale_target_initialized = true;
  EXPECT_EQ(podAutoscalerObject(v, now_sys, now_mono)["status"]["conditions"][2]["status"], "True");
  EXPECT_EQ(o["status"]["refstack"]["panic"], true);
  v.desired_scale = -1;  // not known yet: absent, as Knative leaves it
  EXPECT_FALSE(podAutoscalerObject(v, now_sys, now_mono)["status"].contains("desiredScale"));
}

TEST(Admission, KServesWebhookDenialsAndSchemaErrors) {
  auto kinds = kubeapi::refstackKinds();
  installAdmission(kinds);
  const auto* isvc = kubeapi::findKind(kinds, "InferenceService");
  ASSERT_TRUE(isvc->admission);
  json good = {{"apiVersion", "serving.kserve.io/v1beta1"},
               {"kind", "InferenceService"},
               {"metadata", {{"name", "iris"}, {"namespace", "default"}}},
               {"spec", {{"predictor", {{"model", {{"modelFormat", {{"name", "xgboost"}}}}}}}}}};
  EXPECT_TRUE(isvc->admission(good, nullptr).ok());
  json negative = good;
  negative["spec"]["predictor"]["minReplicas"] = -1;
  auto denied = isvc->admission(negative, nullptr);
  ASSERT_FALSE(denied.ok());
  auto api = kubeapi::apiStatusOf(denied);
  EXPECT_EQ(api.code, 400);
  EXPECT_EQ(api.reason, "BadRequest");
  EXPECT_EQ(std::string(denied.message()),
            "admission webhook \"inferenceservice.kserve-webhook-server.validator\" denied the request: "
            "MinReplicas cannot be less than 0.");
  json malformed = good;
  malformed["spec"]["predictor"]["minReplicas"] = "one";
  auto invalid = isvc->admission(malformed, nullptr);
  ASSERT_FALSE(invalid.ok());
  EXPECT_EQ(invalid.code(), absl::StatusCode::kInvalidArgument);  // the store makes it 422 Invalid
  const auto* sr = kubeapi::findKind(kinds, "ServingRuntime");
  json runtime = {{"apiVersion", "serving.kserve.io/v1alpha1"},
                  {"kind", "ServingRuntime"},
                  {"metadata", {{"name", "r"}, {"namespace", "default"}}},
                  {"spec", {{"containers", json::array()}}}};
  auto refused = sr->admission(runtime, nullptr);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(std::string(refused.message()).find("servingruntime.kserve-webhook-server.validator"), std::string::npos);
}

}  // namespace
}  // namespace kh::controller
