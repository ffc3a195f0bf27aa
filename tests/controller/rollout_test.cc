// Runtime selection rule by rule, and the traffic table through a whole canary lifecycle.

#include "kh/controller/rollout.h"

#include "gtest/gtest.h"

namespace kh::controller {
namespace {

ServingRuntime runtime(std::string name, std::vector<SupportedModelFormat> formats,
                       std::vector<std::string> protocols = {}, bool cluster = false,
                       int64_t created = 0) {
  ServingRuntime rt;
  rt.metadata.name = std::move(name);
  rt.cluster_scoped = cluster;
  rt.supported_model_formats = std::move(formats);
  rt.protocol_versions = std::move(protocols);
  rt.created_order = created;
  rt.containers.push_back({"kserve-container", "img", {}, {}, {}});
  return rt;
}

InferenceService isvc(std::string format, std::optional<std::string> version = std::nullopt,
                      std::optional<std::string> protocol = std::nullopt,
                      std::optional<std::string> explicit_runtime = std::nullopt) {
  InferenceService i;
  i.metadata.name = "m";
  i.predictor.model_format = ModelFormat{std::move(format), std::move(version)};
  i.predictor.protocol_version = std::move(protocol);
  i.predictor.runtime = std::move(explicit_runtime);
  i.predictor.implementations = {"model"};
  return i;
}

std::string chosen(const RuntimeSelection& s) { return s.runtime ? s.runtime->metadata.name : std::string(runtimeFailureReason(s.failure)); }

TEST(RuntimeSelection, AutoSelectNeedsAutoSelectAndMatchingVersion) {
  std::vector<ServingRuntime> cluster = {
      runtime("no-auto", {{"xgboost", "1", false, std::nullopt}}, {"v1"}, true),
      runtime("auto", {{"xgboost", "1", true, std::nullopt}}, {"v1"}, true)};
  EXPECT_EQ(chosen(selectRuntime(isvc("xgboost"), {}, cluster)), "auto");
  EXPECT_EQ(chosen(selectRuntime(isvc("xgboost", "1"), {}, cluster)), "auto");
  EXPECT_EQ(chosen(selectRuntime(isvc("xgboost", "2"), {}, cluster)), "NoSupportingRuntime");
  auto none = selectRuntime(isvc("onnx"), {}, cluster);
  EXPECT_NE(none.message.find("no runtime found to support predictor with model type"), std::string::npos);
}

TEST(RuntimeSelection, ProtocolDefaultsToV1) {
  std::vector<ServingRuntime> cluster = {runtime("v2-only", {{"dense", std::nullopt, true, std::nullopt}}, {"v2"}, true)};
  EXPECT_EQ(chosen(selectRuntime(isvc("dense"), {}, cluster)), "NoSupportingRuntime");
  auto s = selectRuntime(isvc("dense", std::nullopt, "v2"), {}, cluster);
  EXPECT_EQ(chosen(s), "v2-only");
  EXPECT_EQ(s.protocol, "v2");
  // A runtime without protocolVersions supports every protocol.
  cluster.push_back(runtime("any", {{"dense", std::nullopt, true, std::nullopt}}, {}, true));
  EXPECT_EQ(chosen(selectRuntime(isvc("dense"), {}, cluster)), "any");
}

TEST(RuntimeSelection, OrderingProtocolThenNewestThenNameThenPriority) {
  auto f = [](std::optional<int64_t> p) { return std::vector<SupportedModelFormat>{{"sk", std::nullopt, true, p}}; };
  // Lowest protocol first.
  EXPECT_EQ(chosen(selectRuntime(isvc("sk", std::nullopt, "v2"), {},
                                 {runtime("b-v2", f(std::nullopt), {"v2"}, true, 1),
                                  runtime("a-v1v2", f(std::nullopt), {"v1", "v2"}, true, 0)})),
            "a-v1v2");
  // Same protocol: newest first, then name.
  EXPECT_EQ(chosen(selectRuntime(isvc("sk"), {}, {runtime("old", f(std::nullopt), {"v1"}, true, 1),
                                                  runtime("new", f(std::nullopt), {"v1"}, true, 5)})),
            "new");
  EXPECT_EQ(chosen(selectRuntime(isvc("sk"), {}, {runtime("zeta", f(std::nullopt), {"v1"}, true, 1),
                                                  runtime("alpha", f(std::nullopt), {"v1"}, true, 1)})),
            "alpha");
  // With priority before without, whatever the age.
  EXPECT_EQ(chosen(selectRuntime(isvc("sk"), {}, {runtime("newest", f(std::nullopt), {"v1"}, true, 9),
                                                  runtime("ranked", f(1), {"v1"}, true, 0)})),
            "ranked");
}

TEST(RuntimeSelection, PriorityOrderAmongSupportingRuntimes) {
  auto f = [](std::optional<int64_t> p) { return std::vector<SupportedModelFormat>{{"sk", std::nullopt, true, p}}; };
  // The selection points into the runtime list, which must outlive it.
  std::vector<ServingRuntime> cluster = {runtime("new", f(std::nullopt), {"v1"}, true, 9),
                                         runtime("low", f(1), {"v1"}, true, 0),
                                         runtime("high", f(5), {"v1"}, true, 0)};
  auto s = selectRuntime(isvc("sk"), {}, cluster);
  EXPECT_EQ(chosen(s), "high");
}

TEST(RuntimeSelection, NamespacedBeforeClusterAndDisabledOrMultiModelSkipped) {
  auto f = std::vector<SupportedModelFormat>{{"sk", std::nullopt, true, 10}};
  auto g = std::vector<SupportedModelFormat>{{"sk", std::nullopt, true, std::nullopt}};
  std::vector<ServingRuntime> ns = {runtime("ns-rt", g, {"v1"})};
  std::vector<ServingRuntime> cluster = {runtime("cluster-rt", f, {"v1"}, true)};
  EXPECT_EQ(chosen(selectRuntime(isvc("sk"), ns, cluster)), "ns-rt");
  ns[0].disabled = true;
  EXPECT_EQ(chosen(selectRuntime(isvc("sk"), ns, cluster)), "cluster-rt");
  ns[0].disabled = false;
  ns[0].multi_model = true;
  EXPECT_EQ(chosen(selectRuntime(isvc("sk"), ns, cluster)), "cluster-rt");
  // Another namespace's runtime is not a candidate.
  ns[0].multi_model = false;
  ns[0].metadata.namespace_name = "other";
  EXPECT_EQ(chosen(selectRuntime(isvc("sk"), ns, cluster)), "cluster-rt");
}

TEST(RuntimeSelection, ExplicitRuntimeRules) {
  std::vector<ServingRuntime> ns = {runtime("mine", {{"sk", "1", false, std::nullopt}}, {"v1"})};
  std::vector<ServingRuntime> cluster = {runtime("mine", {{"sk", "1", true, std::nullopt}}, {"v2"}, true),
                                         runtime("off", {{"sk", "1", true, std::nullopt}}, {"v1"}, true)};
  cluster[1].disabled = true;
  // Namespaced first; autoSelect does not matter for an explicit runtime.
  auto s = selectRuntime(isvc("sk", std::nullopt, std::nullopt, "mine"), ns, cluster);
  EXPECT_EQ(chosen(s), "mine");
  EXPECT_FALSE(s.runtime->cluster_scoped);
  EXPECT_EQ(s.protocol, "v1");
  auto missing = selectRuntime(isvc("sk", std::nullopt, std::nullopt, "ghost"), ns, cluster);
  EXPECT_EQ(chosen(missing), "RuntimeNotRecognized");
  EXPECT_EQ(missing.message, "Waiting for runtime to become available");
  EXPECT_EQ(chosen(selectRuntime(isvc("sk", std::nullopt, std::nullopt, "off"), ns, cluster)), "RuntimeDisabled");
  auto proto = selectRuntime(isvc("sk", std::nullopt, "v2", "mine"), ns, cluster);
  EXPECT_EQ(proto.message, "Specified runtime does not support specified protocol version");
  auto fmt = selectRuntime(isvc("onnx", std::nullopt, std::nullopt, "mine"), ns, cluster);
  EXPECT_EQ(fmt.message, "Specified runtime does not support specified framework/version");
}

TEST(Traffic, CanaryLifecyclePromoteAndRollback) {
  RolloutState st;
  // First deployment: no rolled-out revision, so 100% latest whatever the field says.
  st.latest_created_revision = st.latest_ready_revision = "iris-predictor-00001";
  auto t = computeTraffic(20, st, false);
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].percent, 100);
  propagateRollout(st, t);
  EXPECT_EQ(st.latest_rolledout_revision, "iris-predictor-00001");

  // Canary 20%: the new ready revision gets 20, the rolled-out one 80 with tag prev.
  st.latest_created_revision = st.latest_ready_revision = "iris-predictor-00002";
  t = computeTraffic(20, st, true);
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0].revision, "iris-predictor-00002");
  EXPECT_EQ(t[0].percent, 20);
  EXPECT_EQ(t[0].tag, "latest");
  EXPECT_TRUE(t[0].latest_revision);
  EXPECT_EQ(t[1].revision, "iris-predictor-00001");
  EXPECT_EQ(t[1].percent, 80);
  EXPECT_EQ(t[1].tag, "prev");
  propagateRollout(st, t);
  EXPECT_EQ(st.latest_rolledout_revision, "iris-predictor-00001");  // not promoted yet

  // Without tag routing only "prev" is tagged.
  EXPECT_FALSE(computeTraffic(20, st, false)[0].tag.has_value());

  // Promote: remove the field -> 100% latest, which becomes the rolled-out revision.
  t = computeTraffic(std::nullopt, st, true);
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].percent, 100);
  propagateRollout(st, t);
  EXPECT_EQ(st.latest_rolledout_revision, "iris-predictor-00002");
  EXPECT_EQ(st.previous_rolledout_revision, "iris-predictor-00001");

  // Rollback of the promoted revision: canary 0 -> reset to the previous one, which then gets 100.
  t = computeTraffic(0, st, true);
  propagateRollout(st, t);
  EXPECT_EQ(st.latest_rolledout_revision, "iris-predictor-00001");
  t = computeTraffic(0, st, true);
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0].percent, 0);
  EXPECT_EQ(t[1].revision, "iris-predictor-00001");
  EXPECT_EQ(t[1].percent, 100);
  EXPECT_EQ(t[1].tag, "prev");
}

TEST(Traffic, UnreadyRevisionNeverGetsTraffic) {
  // A new revision that is created but not ready: latest ready is still the old one.
  RolloutState st{"iris-predictor-00002", "iris-predictor-00001", "iris-predictor-00001", ""};
  auto t = computeTraffic(50, st, false);
  ASSERT_FALSE(t.empty());  // the ready revision keeps its traffic
  for (const auto& target : t) EXPECT_NE(target.revision, "iris-predictor-00002");
  // Canary 100 is the same as promoting.
  RolloutState st2{"r2", "r2", "r1", ""};
  t = computeTraffic(100, st2, false);
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].revision, "r2");
  EXPECT_EQ(t[0].percent, 100);
}

}  // namespace
}  // namespace kh::controller
