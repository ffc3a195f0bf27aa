// ObjectStore semantics: versions, generation, conflicts, /status, patches, server-side apply,
// selectors, namespaces, finalizers, watches (from 0, from N, 410, ordering, selector
// transitions), subscriptions and snapshots.

#include "kh/kubeapi/store.h"

#include <gtest/gtest.h>

#include <thread>

#include "kh/kubeapi/errors.h"

namespace kh::kubeapi {
namespace {

using nlohmann::json;

json isvc(const std::string& name,
          json spec = {{"predictor", {{"model", {{"storageUri", "gs://a"}}}}}}) {
  return {{"apiVersion", "serving.kserve.io/v1beta1"},
          {"kind", "InferenceService"},
          {"metadata", {{"name", name}}},
          {"spec", std::move(spec)}};
}

std::string rvOf(const ObjectPtr& o) { return (*o)["metadata"]["resourceVersion"]; }

class StoreTest : public ::testing::Test {
 protected:
  StoreTest() : store_(options(), time_) {}

  static StoreOptions options() {
    StoreOptions o;
    o.kinds = refstackKinds();
    o.seed = 42;
    return o;
  }

  ObjectPtr mustCreate(const std::string& name, const std::string& ns = "default") {
    auto created = store_.create("InferenceService", ns, isvc(name));
    EXPECT_TRUE(created.ok()) << created.status();
    return created.ok() ? *created : nullptr;
  }

  common::SimulatedTimeSource time_;
  ObjectStore store_;
};

TEST_F(StoreTest, CreateFillsSystemFields) {
  time_.advance(std::chrono::hours(24 * 365 * 30));
  ObjectPtr o = mustCreate("a");
  const json& meta = (*o)["metadata"];
  EXPECT_EQ(meta["namespace"], "default");
  EXPECT_TRUE(meta["generation"].is_number_integer());
  EXPECT_EQ(meta["generation"], 1);
  EXPECT_TRUE(meta["resourceVersion"].is_string());
  std::string uid = meta["uid"];
  ASSERT_EQ(uid.size(), 36u);
  EXPECT_EQ(uid[8], '-');
  EXPECT_EQ(uid[14], '4');  // UUID version 4
  std::string ts = meta["creationTimestamp"];
  EXPECT_EQ(ts.size(), 20u);
  EXPECT_EQ(ts.back(), 'Z');
  EXPECT_EQ((*o)["apiVersion"], "serving.kserve.io/v1beta1");
  EXPECT_EQ((*o)["kind"], "InferenceService");
  EXPECT_FALSE(o->contains("status"));
}

TEST_F(StoreTest, UidsAreReproducibleWithASeed) {
  StoreOptions o = options();
  common::SimulatedTimeSource t;
  ObjectStore other(o, t);
  ObjectPtr mine = mustCreate("a");
  auto theirs = other.create("InferenceService", "default", isvc("a"));
  ASSERT_TRUE(theirs.ok());
  EXPECT_EQ((*mine)["metadata"]["uid"], (**theirs)["metadata"]["uid"]);
  ObjectPtr second = mustCreate("b");
  EXPECT_NE((*mine)["metadata"]["uid"], (*second)["metadata"]["uid"]);
}

TEST_F(StoreTest, CreateDropsStatusAndRejectsDuplicatesAndMissingNamespaces) {
  json body = isvc("a");
  body["status"] = {{"url", "http://x"}};
  auto created = store_.create("InferenceService", "default", body);
  ASSERT_TRUE(created.ok());
  EXPECT_FALSE((*created)->contains("status"));

  auto dup = store_.create("InferenceService", "default", isvc("a"));
  EXPECT_EQ(dup.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(apiStatusOf(dup.status()).code, 409);
  EXPECT_EQ(dup.status().message(), "inferenceservices.serving.kserve.io \"a\" already exists");

  auto missing = store_.create("InferenceService", "foo", isvc("a"));
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(missing.status().message(), "namespaces \"foo\" not found");

  auto bad_name = store_.create("InferenceService", "default", isvc("Bad_Name"));
  EXPECT_EQ(apiStatusOf(bad_name.status()).code, 422);

  json wrong = isvc("w");
  wrong["apiVersion"] = "serving.kserve.io/v1alpha1";
  EXPECT_EQ(apiStatusOf(store_.create("InferenceService", "default", wrong).status()).code, 400);
  json other_ns = isvc("w");
  other_ns["metadata"]["namespace"] = "kube-system";
  EXPECT_EQ(apiStatusOf(store_.create("InferenceService", "default", other_ns).status()).code, 400);
}

TEST_F(StoreTest, GenerateName) {
  json body = isvc("");
  body["metadata"].erase("name");
  body["metadata"]["generateName"] = "gen-";
  auto created = store_.create("InferenceService", "default", body);
  ASSERT_TRUE(created.ok()) << created.status();
  std::string name = (**created)["metadata"]["name"];
  EXPECT_EQ(name.size(), 9u);
  EXPECT_EQ(name.substr(0, 4), "gen-");
  json none = isvc("");
  none["metadata"].erase("name");
  auto rejected = store_.create("InferenceService", "default", none);
  EXPECT_EQ(apiStatusOf(rejected.status()).code, 422);
}

TEST_F(StoreTest, OneResourceVersionCounterAcrossKinds) {
  uint64_t start = store_.resourceVersion();
  ObjectPtr a = mustCreate("a");
  auto pod = store_.upsert("Pod", {{"metadata", {{"name", "p"}, {"namespace", "default"}}},
                                   {"spec", {{"containers", {{{"name", "c"}}}}}}});
  ASSERT_TRUE(pod.ok()) << pod.status();
  ObjectPtr b = mustCreate("b");
  EXPECT_EQ(rvOf(a), std::to_string(start + 1));
  EXPECT_EQ(rvOf(*pod), std::to_string(start + 2));
  EXPECT_EQ(rvOf(b), std::to_string(start + 3));
  auto list = store_.list("isvc-is-not-a-kind", "default");
  EXPECT_EQ(list.status().code(), absl::StatusCode::kNotFound);
  auto isvcs = store_.list("InferenceService", "default");
  ASSERT_TRUE(isvcs.ok());
  EXPECT_EQ(isvcs->items.size(), 2u);
  EXPECT_EQ(isvcs->resource_version, start + 3);
}

TEST_F(StoreTest, UpdateRulesGenerationConflictAndStatus) {
  ObjectPtr a = mustCreate("a");
  ASSERT_TRUE(store_
                  .updateStatus("InferenceService", "default", "a",
                                [](json& o) {
                                  o["status"]["url"] = "http://a";
                                  return absl::OkStatus();
                                })
                  .ok());
  auto current = *store_.get("InferenceService", "default", "a");

  // No resourceVersion: 422 for a custom resource.
  json body = *current;
  body["metadata"].erase("resourceVersion");
  auto no_rv = store_.update("InferenceService", "default", "a", body);
  EXPECT_EQ(apiStatusOf(no_rv.status()).code, 422);
  EXPECT_NE(std::string(no_rv.status().message()).find("must be specified for an update"),
            std::string::npos);

  // Stale resourceVersion: 409 Conflict.
  body = *current;
  body["metadata"]["resourceVersion"] = rvOf(a);
  auto stale = store_.update("InferenceService", "default", "a", body);
  EXPECT_EQ(stale.status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(apiStatusOf(stale.status()).reason, "Conflict");
  EXPECT_EQ(stale.status().message(),
            "Operation cannot be fulfilled on inferenceservices.serving.kserve.io \"a\": the "
            "object has been modified; please apply your changes to the latest version and try "
            "again");

  // A label change: new RV, same generation; status kept even when the body says null.
  body = *current;
  body["metadata"]["labels"] = {{"team", "x"}};
  body["status"] = nullptr;
  auto labelled = store_.update("InferenceService", "default", "a", body);
  ASSERT_TRUE(labelled.ok()) << labelled.status();
  EXPECT_EQ((**labelled)["metadata"]["generation"], 1);
  EXPECT_EQ((**labelled)["status"]["url"], "http://a");
  EXPECT_EQ((**labelled)["metadata"]["uid"], (*a)["metadata"]["uid"]);
  EXPECT_EQ((**labelled)["metadata"]["creationTimestamp"], (*a)["metadata"]["creationTimestamp"]);
  EXPECT_NE(rvOf(*labelled), rvOf(current));

  // A spec change bumps generation.
  body = **labelled;
  body["spec"]["predictor"]["model"]["storageUri"] = "gs://b";
  auto changed = store_.update("InferenceService", "default", "a", body);
  ASSERT_TRUE(changed.ok());
  EXPECT_EQ((**changed)["metadata"]["generation"], 2);

  // A no-op update stores nothing.
  uint64_t rv = store_.resourceVersion();
  auto same = store_.update("InferenceService", "default", "a", **changed);
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(store_.resourceVersion(), rv);

  // Absent: 404, no create on update.
  json ghost = isvc("ghost");
  ghost["metadata"]["resourceVersion"] = "1";
  EXPECT_EQ(store_.update("InferenceService", "default", "ghost", ghost).status().code(),
            absl::StatusCode::kNotFound);
  // The URL names another object.
  EXPECT_EQ(apiStatusOf(store_.update("InferenceService", "default", "b", body).status()).code,
            400);
}

TEST_F(StoreTest, StatusSubresourceChangesOnlyStatus) {
  ObjectPtr a = mustCreate("a");
  json body = *a;
  body["spec"]["predictor"]["model"]["storageUri"] = "gs://changed";
  body["status"] = {{"observedGeneration", 1}};
  auto updated = store_.replaceStatus("InferenceService", "default", "a", body);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ((**updated)["spec"]["predictor"]["model"]["storageUri"], "gs://a");
  EXPECT_EQ((**updated)["status"]["observedGeneration"], 1);
  EXPECT_TRUE((**updated)["status"]["observedGeneration"].is_number_integer());
  EXPECT_EQ((**updated)["metadata"]["generation"], 1);

  // The main resource's PUT cannot change status.
  json main = **updated;
  main["status"] = {{"observedGeneration", 7}};
  auto kept = store_.update("InferenceService", "default", "a", main);
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ((**kept)["status"]["observedGeneration"], 1);

  // Status patches.
  auto patched = store_.patch("InferenceService", "default", "a", PatchType::kMerge,
                              R"({"status":{"url":"http://a"},"spec":{"x":1}})", true);
  ASSERT_TRUE(patched.ok()) << patched.status();
  EXPECT_EQ(patched->object->at("status")["url"], "http://a");
  EXPECT_FALSE(patched->object->at("spec").contains("x"));
  EXPECT_EQ(patched->object->at("metadata")["generation"], 1);

  // Events have no /status.
  EXPECT_EQ(store_.patch("Event", "default", "x", PatchType::kMerge, "{}", true).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(StoreTest, ReadOnlyKindsRefuseClientWrites) {
  json pod = {{"metadata", {{"name", "p"}}}, {"spec", {{"containers", {{{"name", "c"}}}}}}};
  auto created = store_.create("Pod", "default", pod);
  EXPECT_EQ(created.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(apiStatusOf(created.status()).code, 405);
  EXPECT_EQ(created.status().message(),
            "the server does not allow this method on the requested resource");
  pod["metadata"]["namespace"] = "default";
  ASSERT_TRUE(store_.upsert("Pod", pod).ok());
  EXPECT_EQ(apiStatusOf(store_.deleteObject("Pod", "default", "p").status()).code, 405);
  EXPECT_EQ(apiStatusOf(store_.patch("Pod", "default", "p", PatchType::kMerge, "{}").status()).code,
            405);
  EXPECT_TRUE(store_.remove("Pod", "default", "p").ok());
}

TEST_F(StoreTest, InternalWritersCreateNamespacesAndKeepStatus) {
  json pod = {{"metadata", {{"name", "p"}, {"namespace", "team-a"}}},
              {"spec", {{"containers", {{{"name", "c"}}}}}},
              {"status", {{"phase", "Running"}}}};
  auto stored = store_.upsert("Pod", pod);
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ((**stored)["status"]["phase"], "Running");
  auto ns = store_.get("Namespace", "", "team-a");
  ASSERT_TRUE(ns.ok());
  EXPECT_EQ((**ns)["status"]["phase"], "Active");

  // Replace keeps uid and creationTimestamp; an identical upsert stores nothing.
  pod["status"]["phase"] = "Succeeded";
  auto replaced = store_.upsert("Pod", pod);
  ASSERT_TRUE(replaced.ok());
  EXPECT_EQ((**replaced)["metadata"]["uid"], (**stored)["metadata"]["uid"]);
  EXPECT_EQ((**replaced)["status"]["phase"], "Succeeded");
  uint64_t rv = store_.resourceVersion();
  ASSERT_TRUE(store_.upsert("Pod", pod).ok());
  EXPECT_EQ(store_.resourceVersion(), rv);

  StoreOptions strict = options();
  strict.internal_creates_namespaces = false;
  common::SimulatedTimeSource t;
  ObjectStore other(strict, t);
  EXPECT_EQ(other.upsert("Pod", pod).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(StoreTest, UpdateStatusBumpsVersionOnlyOnChange) {
  mustCreate("a");
  auto set = [](json& o) {
    o["status"]["observedGeneration"] = o["metadata"]["generation"];
    o["spec"]["ignored"] = true;  // only status is kept
    return absl::OkStatus();
  };
  auto first = store_.updateStatus("InferenceService", "default", "a", set);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ((**first)["status"]["observedGeneration"], 1);
  EXPECT_FALSE((**first)["spec"].contains("ignored"));
  uint64_t rv = store_.resourceVersion();
  ASSERT_TRUE(store_.updateStatus("InferenceService", "default", "a", set).ok());
  EXPECT_EQ(store_.resourceVersion(), rv);
  auto failing = store_.updateStatus("InferenceService", "default", "a",
                                     [](json&) { return absl::InternalError("no"); });
  EXPECT_EQ(failing.status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(store_.updateStatus("InferenceService", "default", "zz", set).status().code(),
            absl::StatusCode::kNotFound);

  auto mutated = store_.mutate("InferenceService", "default", "a", [](json& o) {
    o["metadata"]["labels"]["x"] = "y";
    o["metadata"]["uid"] = "forged";
    o["spec"]["predictor"]["minReplicas"] = 0;
    return absl::OkStatus();
  });
  ASSERT_TRUE(mutated.ok());
  EXPECT_EQ((**mutated)["metadata"]["labels"]["x"], "y");
  EXPECT_NE((**mutated)["metadata"]["uid"], "forged");
  EXPECT_EQ((**mutated)["metadata"]["generation"], 2);
}

TEST_F(StoreTest, MergeAndJsonPatches) {
  mustCreate("a");
  auto merged = store_.patch(
      "InferenceService", "default", "a", PatchType::kMerge,
      R"({"metadata":{"labels":{"k":"v"}},"spec":{"predictor":{"model":null,"x":[1,2]}}})");
  ASSERT_TRUE(merged.ok()) << merged.status();
  EXPECT_EQ(merged->object->at("metadata")["labels"]["k"], "v");
  EXPECT_FALSE(merged->object->at("spec")["predictor"].contains("model"));
  EXPECT_EQ(merged->object->at("spec")["predictor"]["x"], json::array({1, 2}));
  EXPECT_EQ(merged->object->at("metadata")["generation"], 2);

  auto jp = store_.patch("InferenceService", "default", "a", PatchType::kJson,
                         R"([{"op":"add","path":"/metadata/annotations","value":{}},
                             {"op":"add","path":"/metadata/annotations/a~1b~0c","value":"1"},
                             {"op":"test","path":"/spec/predictor/x/0","value":1},
                             {"op":"add","path":"/spec/predictor/x/-","value":3},
                             {"op":"replace","path":"/spec/predictor/x/1","value":20},
                             {"op":"copy","from":"/spec/predictor/x","path":"/spec/copy"},
                             {"op":"move","from":"/spec/copy","path":"/spec/moved"},
                             {"op":"remove","path":"/spec/predictor/x/0"}])");
  ASSERT_TRUE(jp.ok()) << jp.status();
  EXPECT_EQ(jp->object->at("metadata")["annotations"]["a/b~c"], "1");
  EXPECT_EQ(jp->object->at("spec")["predictor"]["x"], json::array({20, 3}));
  EXPECT_EQ(jp->object->at("spec")["moved"], json::array({1, 20, 3}));
  EXPECT_FALSE(jp->object->at("spec").contains("copy"));

  uint64_t rv = store_.resourceVersion();
  auto failed = store_.patch("InferenceService", "default", "a", PatchType::kJson,
                             R"([{"op":"replace","path":"/spec/predictor/x/0","value":99},
                                 {"op":"test","path":"/spec/predictor/x/0","value":1}])");
  EXPECT_EQ(apiStatusOf(failed.status()).code, 422);
  EXPECT_EQ(failed.status().message(), "testing value /spec/predictor/x/0 failed");
  EXPECT_EQ(store_.resourceVersion(), rv);  // all or nothing
  auto x = (**store_.get("InferenceService", "default", "a"))["spec"]["predictor"]["x"];
  EXPECT_EQ(x, json::array({20, 3}));

  EXPECT_EQ(
      apiStatusOf(
          store_.patch("InferenceService", "default", "a", PatchType::kJson, R"([{"path":"/x"}])")
              .status())
          .code,
      400);
  // A resourceVersion in a patch is a precondition.
  auto stale = store_.patch("InferenceService", "default", "a", PatchType::kMerge,
                            R"({"metadata":{"resourceVersion":"1"},"spec":{"y":1}})");
  EXPECT_EQ(apiStatusOf(stale.status()).reason, "Conflict");
  // Strategic merge: 415 on custom resources, a merge patch on core kinds.
  auto smp = store_.patch("InferenceService", "default", "a", PatchType::kStrategicMerge, "{}");
  EXPECT_EQ(apiStatusOf(smp.status()).code, 415);
  auto ns = store_.patch("Namespace", "", "default", PatchType::kStrategicMerge,
                         R"({"metadata":{"labels":{"team":"t"}}})");
  ASSERT_TRUE(ns.ok()) << ns.status();
  EXPECT_EQ(ns->object->at("metadata")["labels"]["team"], "t");
  EXPECT_EQ(ns->object->at("metadata")["labels"]["kubernetes.io/metadata.name"], "default");
}

TEST_F(StoreTest, ServerSideApplyCreatesThenMerges) {
  std::string yaml = R"(apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: ssa
  labels: {a: "1"}
spec:
  predictor:
    minReplicas: 1
)";
  auto created = store_.patch("InferenceService", "default", "ssa", PatchType::kApply, yaml);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_TRUE(created->created);
  EXPECT_EQ(created->object->at("metadata")["namespace"], "default");
  EXPECT_EQ(created->object->at("spec")["predictor"]["minReplicas"], 1);
  auto updated =
      store_.patch("InferenceService", "default", "ssa", PatchType::kApply,
                   R"({"apiVersion":"serving.kserve.io/v1beta1","kind":"InferenceService",
          "metadata":{"name":"ssa"},"spec":{"predictor":{"minReplicas":2}}})");
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_FALSE(updated->created);
  EXPECT_EQ(updated->object->at("spec")["predictor"]["minReplicas"], 2);
  EXPECT_EQ(updated->object->at("metadata")["labels"]["a"], "1");  // known gap: not removed
  EXPECT_EQ(updated->object->at("metadata")["generation"], 2);
  auto nameless =
      store_.patch("InferenceService", "default", "ssa", PatchType::kApply,
                   R"({"apiVersion":"serving.kserve.io/v1beta1","kind":"InferenceService"})");
  EXPECT_FALSE(nameless.ok());
  auto no_kind = store_.patch("InferenceService", "default", "ssa", PatchType::kApply,
                              R"({"metadata":{"name":"ssa"}})");
  EXPECT_EQ(apiStatusOf(no_kind.status()).code, 400);
}

TEST_F(StoreTest, AdmissionRejectsWithCauses) {
  StoreOptions o = options();
  findKind(o.kinds, "InferenceService")->admission = [](const json& obj, const json* old) {
    if (!obj["spec"].contains("predictor")) {
      return invalidError({requiredField("spec.predictor")});
    }
    if (old != nullptr && obj["spec"].contains("frozen")) {
      return absl::InvalidArgumentError("frozen");
    }
    return absl::OkStatus();
  };
  common::SimulatedTimeSource t;
  ObjectStore store(o, t);
  auto bad = store.create("InferenceService", "default", isvc("bad1", json::object()));
  ASSERT_FALSE(bad.ok());
  ApiStatus api = apiStatusOf(bad.status());
  EXPECT_EQ(api.code, 422);
  EXPECT_EQ(api.reason, "Invalid");
  EXPECT_EQ(
      bad.status().message(),
      "InferenceService.serving.kserve.io \"bad1\" is invalid: spec.predictor: Required value");
  EXPECT_EQ(api.details["kind"], "InferenceService");
  EXPECT_EQ(api.details["name"], "bad1");
  EXPECT_EQ(api.details["causes"][0]["field"], "spec.predictor");
  EXPECT_EQ(api.details["causes"][0]["reason"], "FieldValueRequired");
  EXPECT_FALSE(store.get("InferenceService", "default", "bad1").ok());

  ASSERT_TRUE(store.create("InferenceService", "default", isvc("ok")).ok());
  auto frozen = store.patch("InferenceService", "default", "ok", PatchType::kMerge,
                            R"({"spec":{"frozen":true}})");
  EXPECT_EQ(apiStatusOf(frozen.status()).code, 422);
  EXPECT_FALSE((**store.get("InferenceService", "default", "ok"))["spec"].contains("frozen"));
  // Internal writes and /status skip admission.
  EXPECT_TRUE(store
                  .patch("InferenceService", "default", "ok", PatchType::kMerge,
                         R"({"status":{"url":"u"}})", true)
                  .ok());
}

TEST_F(StoreTest, SelectorsFilterLists) {
  for (auto [name, team] : {std::pair{"a", "x"}, {"b", "y"}, {"c", ""}}) {
    json body = isvc(name);
    if (*team) body["metadata"]["labels"] = {{"team", team}, {"tier", "gold"}};
    ASSERT_TRUE(store_.create("InferenceService", "default", body).ok());
  }
  const KindSpec& spec = *store_.findKind("InferenceService");
  auto names = [&](std::string_view labels, std::string_view fields) {
    auto selector = Selector::parse(labels, fields, spec);
    EXPECT_TRUE(selector.ok()) << selector.status();
    std::string out;
    auto listed = store_.list("InferenceService", "", *selector);
    for (const auto& o : listed->items) {
      out += (*o)["metadata"]["name"].get<std::string>();
    }
    return out;
  };
  EXPECT_EQ(names("team=x", ""), "a");
  EXPECT_EQ(names("team==y", ""), "b");
  EXPECT_EQ(names("team!=x", ""), "bc");
  EXPECT_EQ(names("team in (x, y)", ""), "ab");
  EXPECT_EQ(names("team notin (x)", ""), "bc");
  EXPECT_EQ(names("team", ""), "ab");
  EXPECT_EQ(names("!team", ""), "c");
  EXPECT_EQ(names("team,tier=gold", ""), "ab");
  EXPECT_EQ(names("", "metadata.name=b"), "b");
  EXPECT_EQ(names("", "metadata.name!=b,metadata.namespace=default"), "ac");
  EXPECT_EQ(names("team", "metadata.name!=a"), "b");
  EXPECT_FALSE(Selector::parse("team in x", "", spec).ok());
  auto unknown = Selector::parse("", "spec.foo=1", spec);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(apiStatusOf(unknown.status()).code, 400);
  EXPECT_TRUE(Selector::parse("", "involvedObject.name=a", *store_.findKind("Event")).ok());
}

TEST_F(StoreTest, DeleteEmitsFinalObjectAndFinalizersHoldIt) {
  std::vector<WatchEvent> events;
  auto sub =
      store_.subscribe("InferenceService", [&](const WatchEvent& e) { events.push_back(e); });
  ASSERT_TRUE(sub.ok());
  ObjectPtr a = mustCreate("a");
  auto deleted = store_.deleteObject("InferenceService", "default", "a");
  ASSERT_TRUE(deleted.ok());
  EXPECT_FALSE(deleted->finalizing);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].type, EventType::kDeleted);
  EXPECT_EQ(events[1].resource_version, std::stoull(rvOf(a)) + 1);
  EXPECT_EQ(rvOf(events[1].object), std::to_string(events[1].resource_version));
  EXPECT_EQ(store_.deleteObject("InferenceService", "default", "a").status().code(),
            absl::StatusCode::kNotFound);

  json held = isvc("held");
  held["metadata"]["finalizers"] = {"kserve.io/x"};
  ASSERT_TRUE(store_.create("InferenceService", "default", held).ok());
  auto marked = store_.deleteObject("InferenceService", "default", "held");
  ASSERT_TRUE(marked.ok());
  EXPECT_TRUE(marked->finalizing);
  EXPECT_TRUE(marked->object->at("metadata").contains("deletionTimestamp"));
  ASSERT_TRUE(store_.get("InferenceService", "default", "held").ok());
  auto cleared = store_.patch("InferenceService", "default", "held", PatchType::kMerge,
                              R"({"metadata":{"finalizers":null}})");
  ASSERT_TRUE(cleared.ok()) << cleared.status();
  EXPECT_FALSE(store_.get("InferenceService", "default", "held").ok());
  EXPECT_EQ(events.back().type, EventType::kDeleted);

  // Preconditions.
  ObjectPtr b = mustCreate("b");
  DeleteOptions wrong_uid;
  wrong_uid.precondition_uid = "nope";
  EXPECT_EQ(
      apiStatusOf(store_.deleteObject("InferenceService", "default", "b", wrong_uid).status()).code,
      409);
}

TEST_F(StoreTest, DeletingANamespaceRemovesItsObjects) {
  ASSERT_TRUE(store_.create("Namespace", "", {{"metadata", {{"name", "team"}}}}).ok());
  mustCreate("a", "team");
  mustCreate("b");
  ASSERT_TRUE(store_.deleteObject("Namespace", "", "team").ok());
  EXPECT_FALSE(store_.get("InferenceService", "team", "a").ok());
  EXPECT_TRUE(store_.get("InferenceService", "default", "b").ok());
  auto forbidden = store_.deleteObject("Namespace", "", "default");
  EXPECT_EQ(apiStatusOf(forbidden.status()).code, 403);
}

// A watch sink that records events.
struct Recorder {
  std::vector<std::pair<std::string, std::string>> events;  // type, name@rv
  WatchSink sink() {
    return [this](const WatchEvent& e) {
      std::string name = (*e.object)["metadata"].value("name", "");
      events.emplace_back(std::string(eventTypeName(e.type)),
                          name + "@" + std::to_string(e.resource_version));
      return true;
    };
  }
};

TEST_F(StoreTest, WatchFromZeroSendsSyntheticAddedThenLive) {
  ObjectPtr a = mustCreate("a");
  ObjectPtr b = mustCreate("b");
  Recorder r;
  auto handle = store_.watch("InferenceService", "default", {}, "0", r.sink());
  ASSERT_TRUE(handle.ok());
  ASSERT_EQ(r.events.size(), 2u);
  EXPECT_EQ(r.events[0], (std::pair<std::string, std::string>{"ADDED", "a@" + rvOf(a)}));
  EXPECT_EQ(r.events[1].first, "ADDED");
  ObjectPtr c = mustCreate("c");
  ASSERT_TRUE(store_.remove("InferenceService", "default", "a").ok());
  ASSERT_EQ(r.events.size(), 4u);
  EXPECT_EQ(r.events[2], (std::pair<std::string, std::string>{"ADDED", "c@" + rvOf(c)}));
  EXPECT_EQ(r.events[3].first, "DELETED");
  EXPECT_EQ(store_.activeWatches("InferenceService"), 1u);
  handle->cancel();
  EXPECT_EQ(store_.activeWatches("InferenceService"), 0u);
  mustCreate("d");
  EXPECT_EQ(r.events.size(), 4u);
}

TEST_F(StoreTest, WatchFromAVersionReplaysInOrderAndOldVersionsExpire) {
  ObjectPtr a = mustCreate("a");
  ObjectPtr b = mustCreate("b");
  ObjectPtr c = mustCreate("c");
  Recorder r;
  auto handle = store_.watch("InferenceService", "", {}, rvOf(a), r.sink());
  ASSERT_TRUE(handle.ok());
  ASSERT_EQ(r.events.size(), 2u);
  EXPECT_EQ(r.events[0].second, "b@" + rvOf(b));
  EXPECT_EQ(r.events[1].second, "c@" + rvOf(c));

  StoreOptions small = options();
  small.history_events_per_kind = 2;
  common::SimulatedTimeSource t;
  ObjectStore store(small, t);
  std::vector<std::string> rvs;
  for (std::string n : {"a", "b", "c", "d"}) {
    rvs.push_back(rvOf(*store.create("InferenceService", "default", isvc(n))));
  }
  Recorder late;
  auto expired = store.watch("InferenceService", "", {}, rvs[0], late.sink());
  ASSERT_FALSE(expired.ok());
  EXPECT_EQ(expired.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(apiStatusOf(expired.status()).code, 410);
  EXPECT_EQ(apiStatusOf(expired.status()).reason, "Expired");
  EXPECT_EQ(expired.status().message(),
            "too old resource version: " + rvs[0] + " (" + rvs[1] + ")");
  auto kept = store.watch("InferenceService", "", {}, rvs[1], late.sink());
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(late.events.size(), 2u);
  EXPECT_FALSE(store.watch("InferenceService", "", {}, "abc", late.sink()).ok());
  auto future = store.watch("InferenceService", "", {}, std::to_string(store.resourceVersion() + 5),
                            late.sink());
  EXPECT_EQ(apiStatusOf(future.status()).code, 410);
  EXPECT_EQ(future.status().message(),
            "Too large resource version: " + std::to_string(store.resourceVersion() + 5) +
                ", current: " + std::to_string(store.resourceVersion()));
}

TEST_F(StoreTest, WatchSelectorTransitionsAndNamespaces) {
  mustCreate("a");
  const KindSpec& spec = *store_.findKind("InferenceService");
  Recorder r;
  auto handle = store_.watch("InferenceService", "default", *Selector::parse("team=x", "", spec),
                             "", r.sink());
  ASSERT_TRUE(handle.ok());
  EXPECT_TRUE(r.events.empty());
  auto label = [&](const std::string& team) {
    std::string patch = team.empty() ? R"({"metadata":{"labels":null}})"
                                     : R"({"metadata":{"labels":{"team":")" + team + "\"}}}";
    ASSERT_TRUE(store_.patch("InferenceService", "default", "a", PatchType::kMerge, patch).ok());
  };
  std::string before = std::to_string(store_.resourceVersion());
  label("x");
  label("x2");
  label("x");
  label("");
  ASSERT_EQ(r.events.size(), 4u);
  EXPECT_EQ(r.events[0].first, "ADDED");
  EXPECT_EQ(r.events[1].first, "DELETED");
  EXPECT_EQ(r.events[2].first, "ADDED");
  EXPECT_EQ(r.events[3].first, "DELETED");
  // The same from the history (the superseded versions are kept as text only).
  Recorder replay;
  auto replayed = store_.watch("InferenceService", "default", *Selector::parse("team=x", "", spec),
                               before, replay.sink());
  ASSERT_TRUE(replayed.ok());
  EXPECT_EQ(replay.events, r.events);
  // Another namespace is not seen.
  ASSERT_TRUE(store_.create("Namespace", "", {{"metadata", {{"name", "other"}}}}).ok());
  json other = isvc("o");
  other["metadata"]["labels"] = {{"team", "x"}};
  ASSERT_TRUE(store_.create("InferenceService", "other", other).ok());
  EXPECT_EQ(r.events.size(), 4u);
}

TEST_F(StoreTest, DroppedWatchersAreNeverCalledAgainAndBookmarksAreOrdered) {
  int calls = 0;
  auto handle = store_.watch("InferenceService", "", {}, "", [&](const WatchEvent&) {
    ++calls;
    return false;
  });
  ASSERT_TRUE(handle.ok());
  mustCreate("a");
  mustCreate("b");
  EXPECT_EQ(calls, 1);
  EXPECT_FALSE(handle->active());
  EXPECT_FALSE(handle->bookmark());

  Recorder r;
  auto live = store_.watch("InferenceService", "", {}, "", r.sink());
  ASSERT_TRUE(live.ok());
  mustCreate("c");
  ASSERT_TRUE(live->bookmark());
  ASSERT_EQ(r.events.size(), 4u);
  EXPECT_EQ(r.events[3].first, "BOOKMARK");
  EXPECT_EQ(r.events[3].second, "@" + std::to_string(store_.resourceVersion()));
}

TEST_F(StoreTest, ConcurrentWritersDeliverInVersionOrder) {
  Recorder r;
  std::vector<uint64_t> seen;
  auto handle = store_.watch("InferenceService", "", {}, "", [&](const WatchEvent& e) {
    seen.push_back(e.resource_version);
    return true;
  });
  ASSERT_TRUE(handle.ok());
  std::vector<std::thread> writers;
  for (int w = 0; w < 4; ++w) {
    writers.emplace_back([this, w] {
      for (int i = 0; i < 50; ++i) {
        (void)store_.create("InferenceService", "default",
                            isvc("w" + std::to_string(w) + "-" + std::to_string(i)));
      }
    });
  }
  for (auto& t : writers) t.join();
  ASSERT_EQ(seen.size(), 200u);
  for (size_t i = 1; i < seen.size(); ++i) EXPECT_LT(seen[i - 1], seen[i]);
  EXPECT_EQ(store_.watchesOpened("InferenceService"), 1u);
  EXPECT_TRUE(store_.awaitWatchesOpened("InferenceService", 1, std::chrono::milliseconds(10)));
  EXPECT_FALSE(store_.awaitWatchesOpened("InferenceService", 2, std::chrono::milliseconds(10)));
}

TEST_F(StoreTest, SnapshotAndRestoreContinueVersionsUpward) {
  mustCreate("a");
  ASSERT_TRUE(store_.upsert("Pod", {{"metadata", {{"name", "p"}, {"namespace", "default"}}}}).ok());
  ASSERT_TRUE(store_.create("Namespace", "", {{"metadata", {{"name", "team"}}}}).ok());
  json snap = store_.snapshot();
  EXPECT_EQ(snap["resourceVersion"], std::to_string(store_.resourceVersion()));
  EXPECT_EQ(snap["kinds"]["inferenceservices.serving.kserve.io"].size(), 1u);
  EXPECT_FALSE(snap["kinds"].contains("pods"));  // not persisted
  EXPECT_EQ(store_.persistedResourceVersion(), store_.resourceVersion());

  common::SimulatedTimeSource t;
  ObjectStore restored(options(), t);
  ASSERT_TRUE(restored.restore(json::parse(snap.dump())).ok());
  auto a = restored.get("InferenceService", "default", "a");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(**a, **store_.get("InferenceService", "default", "a"));
  EXPECT_TRUE(restored.get("Namespace", "", "team").ok());
  EXPECT_TRUE(restored.get("Namespace", "", "default").ok());
  EXPECT_EQ(restored.resourceVersion(),
            std::stoull(snap["resourceVersion"].get<std::string>()) + 1'000'000);
  auto b = restored.create("InferenceService", "default", isvc("b"));
  ASSERT_TRUE(b.ok());
  EXPECT_GT(std::stoull(rvOf(*b)), std::stoull(snap["resourceVersion"].get<std::string>()));
  EXPECT_NE((**b)["metadata"]["uid"], (**a)["metadata"]["uid"]);
  // Watching from before the restart: 410.
  Recorder r;
  EXPECT_EQ(restored.watch("InferenceService", "", {}, "1", r.sink()).status().code(),
            absl::StatusCode::kOutOfRange);
  EXPECT_FALSE(restored.restore(json::array()).ok());
}

}  // namespace
}  // namespace kh::kubeapi
