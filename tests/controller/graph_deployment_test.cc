// An InferenceGraph as the controller deploys it (KServe's InferenceGraph controller in Knative
// mode): serviceName steps resolved to predict URLs by protocol, the graph waiting (with KServe's
// message) for services that are missing or not Ready, the router's settings from
// inferenceservice-config, scaling fields onto the router's revision, and the status.

#include "kh/controller/graph_deployment.h"

#include <map>
#include <set>

#include "gtest/gtest.h"

namespace kh::controller {
namespace {

using nlohmann::json;

json isvc(const std::string& name, bool ready, const std::string& extra_predictor = "") {
  json o = {{"apiVersion", "serving.kserve.io/v1beta1"},
            {"kind", "InferenceService"},
            {"metadata", {{"name", name}, {"namespace", "default"}}},
            {"spec", {{"predictor", {{"model", {{"modelFormat", {{"name", "xgboost"}}}, {"storageUri", "file:///m"}}}}}}}};
  if (!extra_predictor.empty()) o["spec"]["predictor"]["model"]["protocolVersion"] = extra_predictor;
  if (ready) {
    o["status"] = {{"conditions", json::array({{{"type", "Ready"}, {"status", "True"}}})},
                   {"address", {{"url", "http://" + name + ".default.svc.cluster.local"}}}};
  }
  return o;
}

json graphObject(const json& spec) {
  return {{"apiVersion", "serving.kserve.io/v1alpha1"},
          {"kind", "InferenceGraph"},
          {"metadata", {{"name", "g"}, {"namespace", "default"}}},
          {"spec", spec}};
}

class Objects {
 public:
  void put(const json& o) {
    objects_[o["kind"].get<std::string>() + "/" + o["metadata"]["name"].get<std::string>()] = std::make_shared<json>(o);
  }
  ObjectLookup lookup() {
    return [this](const std::string& kind, const std::string&, const std::string& name) -> std::shared_ptr<const json> {
      auto it = objects_.find(kind + "/" + name);
      return it == objects_.end() ? nullptr : it->second;
    };
  }

 private:
  std::map<std::string, std::shared_ptr<json>> objects_;
};

// The graph spec the router is given (--graph-json=...).
json routerSpec(const InferenceService& s) {
  for (const auto& a : s.predictor.containers.at(0).args) {
    if (a.rfind("--graph-json=", 0) == 0) return json::parse(a.substr(13));
  }
  return nullptr;
}

const json kTwoSteps = json::parse(R"({"nodes":{"root":{"routerType":"Sequence","steps":[
  {"name":"a","serviceName":"v1-model"},{"name":"b","serviceName":"v2-model","data":"$response"}]}}})");

TEST(GraphDeployment, ResolvesServiceNamesToPredictUrlsByProtocol) {
  Objects objects;
  objects.put(isvc("v1-model", true));
  objects.put(isvc("v2-model", true, "v2"));
  auto d = graphDeployment(graphObject(kTwoSteps), objects.lookup(), {});
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->waiting, "");
  json spec = routerSpec(d->service);
  EXPECT_EQ(spec["nodes"]["root"]["steps"][0]["serviceUrl"],
            "http://v1-model.default.svc.cluster.local/v1/models/v1-model:predict");
  EXPECT_EQ(spec["nodes"]["root"]["steps"][1]["serviceUrl"],
            "http://v2-model.default.svc.cluster.local/v2/models/v2-model/infer");
  const Container& c = d->service.predictor.containers.at(0);
  EXPECT_EQ(c.image, "kserve/router");
  // KServe's router probe path and port template are the reconciler's; the args carry the rest.
  EXPECT_NE(std::find(c.args.begin(), c.args.end(), "--http_port={{.Port}}"), c.args.end());
  EXPECT_NE(std::find(c.args.begin(), c.args.end(), "--name=g"), c.args.end());
}

TEST(GraphDeployment, TheServicesAGraphCallsAreItsServiceNameSteps) {
  json spec = kTwoSteps;
  spec["nodes"]["other"] = json::parse(R"({"routerType":"Ensemble","steps":[{"serviceName":"v1-model"},
    {"serviceUrl":"http://elsewhere/v1/models/x:predict"},{"nodeName":"root"}]})");
  EXPECT_EQ(graphServiceNames(graphObject(spec)), (std::set<std::string>{"v1-model", "v2-model"}));
  EXPECT_TRUE(graphServiceNames(graphObject(json::object())).empty());
}

TEST(GraphDeployment, WaitsForMissingOrUnreadyServicesWithKServesMessages) {
  Objects objects;
  auto d = graphDeployment(graphObject(kTwoSteps), objects.lookup(), {});
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->waiting, "Failed to find graph service v1-model");
  objects.put(isvc("v1-model", true));
  objects.put(isvc("v2-model", false));
  d = graphDeployment(graphObject(kTwoSteps), objects.lookup(), {});
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->waiting, "service v2-model is not ready");
}

TEST(GraphDeployment, ScalingFieldsAndRouterConfigReachTheRevision) {
  json spec = kTwoSteps;
  spec["minReplicas"] = 0;
  spec["maxReplicas"] = 3;
  spec["scaleTarget"] = 5;
  spec["scaleMetric"] = "concurrency";
  spec["timeout"] = 42;
  Objects objects;
  objects.put(isvc("v1-model", true));
  objects.put(isvc("v2-model", true));
  json configmap = {{"data", {{"router", R"({"image":"example.com/router:v1","headers":{"propagate":["Authorization","Test-Header-*"]}})"}}}};
  GraphRouterConfig config = routerConfigFrom(&configmap, {});
  EXPECT_EQ(config.image, "example.com/router:v1");
  EXPECT_EQ(config.propagate_headers, (std::vector<std::string>{"Authorization", "Test-Header-*"}));
  auto d = graphDeployment(graphObject(spec), objects.lookup(), config);
  ASSERT_TRUE(d.ok()) << d.status();
  const ComponentExtension& x = d->service.predictor.extension;
  EXPECT_EQ(x.min_replicas, 0);
  EXPECT_EQ(x.max_replicas, 3);
  EXPECT_EQ(x.scale_target, 5);
  EXPECT_EQ(x.scale_metric, "concurrency");
  EXPECT_EQ(x.timeout_seconds, 42);
  const Container& c = d->service.predictor.containers.at(0);
  EXPECT_EQ(c.image, "example.com/router:v1");
  ASSERT_EQ(c.env.size(), 1u);
  EXPECT_EQ(c.env[0].first, "PROPAGATE_HEADERS");
  EXPECT_EQ(c.env[0].second, "Authorization,Test-Header-*");
  // Unset minReplicas stays unset: the reconciler's default (KServe's 1) applies.
  spec.erase("minReplicas");
  d = graphDeployment(graphObject(spec), objects.lookup(), config);
  ASSERT_TRUE(d.ok());
  EXPECT_FALSE(d->service.predictor.extension.min_replicas.has_value());
  // A config map without a router key keeps the defaults.
  json empty = {{"data", json::object()}};
  EXPECT_EQ(routerConfigFrom(&empty, {}).image, "kserve/router");
}

TEST(GraphDeployment, StatusIsReadyWithUrlOnlyWhenTheRouterRevisionIs) {
  ComponentState router;
  router.revisions = {{"g-00001", json::object(), false, ""}};
  router.rollout.latest_created_revision = "g-00001";
  router.traffic = {{"g-00001", 100, std::nullopt, true}};
  auto now = common::SystemTime{};
  json status = buildGraphStatus("g", "default", "example.com", router, "", now);
  auto ready = [](const json& s) {
    for (const auto& c : s["conditions"]) {
      if (c["type"] == "Ready") return c["status"] == "True";
    }
    return false;
  };
  EXPECT_FALSE(ready(status));
  EXPECT_FALSE(status.contains("url"));
  router.revisions[0].ready = true;
  status = buildGraphStatus("g", "default", "example.com", router, "", now);
  EXPECT_TRUE(ready(status));
  EXPECT_EQ(status["url"], "http://g-default.example.com");
  EXPECT_EQ(status["deploymentMode"], "Serverless");
  // Waiting for a service: not Ready, and the message says which.
  ComponentState none;
  status = buildGraphStatus("g", "default", "example.com", none, "Failed to find graph service x", now);
  EXPECT_FALSE(ready(status));
  int ready_conditions = 0;
  for (const auto& c : status["conditions"]) {
    if (c["type"] != "Ready") continue;
    ++ready_conditions;
    EXPECT_EQ(c["status"], "False");
    EXPECT_EQ(c["message"], "Failed to find graph service x");
  }
  EXPECT_EQ(ready_conditions, 1);
}

}  // namespace
}  // namespace kh::controller
