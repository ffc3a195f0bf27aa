// The real kubectl (the machine's gcloud dispatcher build of 1.32) against ApiHandler: discovery,
// apply (create, configured, unchanged, server-side), get (table, json, yaml, -l, -A), get -w,
// wait, patch (merge, json, the default strategic one refused), replace with a stale file,
// admission errors, delete, create ns, a read-only kind written through the internal API.

#include <gtest/gtest.h>

#include "kh/common/yaml_json.h"
#include "kube_client_support.h"

namespace kh::kubeapi {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using testing::RunResult;

constexpr const char* kIris = R"(apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: iris
  labels:
    app: iris
spec:
  predictor:
    model:
      modelFormat:
        name: sklearn
      storageUri: STORAGE
)";

class KubectlTest : public testing::KubeClientFixture {
 protected:
  explicit KubectlTest(bool use_token = false) : KubeClientFixture(use_token) {}

  void SetUp() override {
    if (!testing::onPath("kubectl"))
      GTEST_SKIP() << "no kubectl on PATH: skipping the kubectl tests";
    KubeClientFixture::SetUp();
  }

  std::vector<std::string> argv(std::vector<std::string> args) const {
    std::vector<std::string> out{"kubectl", "--cache-dir=" + (dir_ / "cache").string(),
                                 "--request-timeout=30s"};
    out.insert(out.end(), args.begin(), args.end());
    return out;
  }

  RunResult kubectl(std::vector<std::string> args) {
    auto child = spawn(argv(std::move(args)));
    if (!child) return {};
    return testing::finish(*child, milliseconds(60'000));
  }

  std::string iris(const std::string& storage) {
    std::string text = kIris;
    text.replace(text.find("STORAGE"), 7, storage);
    return write("iris.yaml", text);
  }

  json stored(const std::string& name) {
    auto o = store_->get("InferenceService", "default", name);
    return o.ok() ? **o : json();
  }

  void makeReady(const std::string& name) {
    ASSERT_TRUE(
        store_
            ->updateStatus("InferenceService", "default", name,
                           [](json& o) {
                             o["status"]["observedGeneration"] = o["metadata"]["generation"];
                             o["status"]["url"] = "http://iris.default.example.com";
                             o["status"]["conditions"] = {{{"type", "Ready"}, {"status", "True"}}};
                             o["status"]["components"]["predictor"]["traffic"] = {
                                 {{"percent", 100},
                                  {"latestRevision", true},
                                  {"revisionName", "iris-predictor-00001"}}};
                             return absl::OkStatus();
                           })
            .ok());
  }
};

// The first line of `output` that contains `needle`, or "".
std::string lineWith(const std::string& output, const std::string& needle) {
  size_t at = output.find(needle);
  if (at == std::string::npos) return {};
  size_t start = output.rfind('\n', at);
  start = start == std::string::npos ? 0 : start + 1;
  return output.substr(start, output.find('\n', at) - start);
}

std::vector<std::string> words(const std::string& line) {
  std::vector<std::string> out;
  std::string w;
  for (char c : line + " ") {
    if (c == ' ') {
      if (!w.empty()) out.push_back(w);
      w.clear();
    } else {
      w.push_back(c);
    }
  }
  return out;
}

TEST_F(KubectlTest, ApiResources) {
  RunResult r = kubectl({"api-resources"});
  ASSERT_EQ(r.rc, 0) << r.output;
  EXPECT_EQ(words(lineWith(r.output, "SHORTNAMES")),
            (std::vector<std::string>{"NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"}));
  EXPECT_EQ(words(lineWith(r.output, "inferenceservices")),
            (std::vector<std::string>{"inferenceservices", "isvc", "serving.kserve.io/v1beta1",
                                      "true", "InferenceService"}));
  EXPECT_EQ(words(lineWith(r.output, "podautoscalers")),
            (std::vector<std::string>{"podautoscalers", "kpa,pa",
                                      "autoscaling.internal.knative.dev/v1alpha1", "true",
                                      "PodAutoscaler"}));
  EXPECT_EQ(words(lineWith(r.output, "clusterservingruntimes")),
            (std::vector<std::string>{"clusterservingruntimes", "serving.kserve.io/v1alpha1",
                                      "false", "ClusterServingRuntime"}));
  EXPECT_EQ(words(lineWith(r.output, "namespaces")),
            (std::vector<std::string>{"namespaces", "ns", "v1", "false", "Namespace"}));
}

TEST_F(KubectlTest, ApplyGetPatchReplaceDelete) {
  std::string file = iris("gs://models/1.0/model");
  RunResult created = kubectl({"apply", "-f", file});
  ASSERT_EQ(created.rc, 0) << created.output;
  EXPECT_EQ(created.output, "inferenceservice.serving.kserve.io/iris created\n");
  json obj = stored("iris");
  EXPECT_EQ(obj["spec"]["predictor"]["model"]["storageUri"], "gs://models/1.0/model");
  EXPECT_TRUE(
      obj["metadata"]["annotations"].contains("kubectl.kubernetes.io/last-applied-configuration"));

  RunResult unchanged = kubectl({"apply", "-f", file});
  EXPECT_EQ(unchanged.rc, 0) << unchanged.output;
  EXPECT_EQ(unchanged.output, "inferenceservice.serving.kserve.io/iris unchanged\n");

  // An old copy for the stale replace below.
  RunResult old_json = kubectl({"get", "isvc", "iris", "-o", "json"});
  ASSERT_EQ(old_json.rc, 0) << old_json.output;
  std::string old_file = write("old.json", old_json.output);
  json parsed = json::parse(old_json.output, nullptr, false);
  ASSERT_FALSE(parsed.is_discarded()) << old_json.output;
  EXPECT_EQ(parsed["metadata"]["name"], "iris");
  EXPECT_TRUE(parsed["metadata"]["generation"].is_number_integer());

  RunResult configured = kubectl({"apply", "-f", iris("gs://models/2.0/model")});
  EXPECT_EQ(configured.rc, 0) << configured.output;
  EXPECT_EQ(configured.output, "inferenceservice.serving.kserve.io/iris configured\n");
  obj = stored("iris");
  EXPECT_EQ(obj["spec"]["predictor"]["model"]["storageUri"], "gs://models/2.0/model");
  EXPECT_EQ(obj["metadata"]["generation"], 2);

  makeReady("iris");
  time_.advance(std::chrono::seconds(5));
  RunResult table = kubectl({"get", "isvc"});
  ASSERT_EQ(table.rc, 0) << table.output;
  EXPECT_EQ(words(lineWith(table.output, "NAME")),
            (std::vector<std::string>{"NAME", "URL", "READY", "PREV", "LATEST",
                                      "PREVROLLEDOUTREVISION", "LATESTREADYREVISION", "AGE"}));
  EXPECT_EQ(words(lineWith(table.output, "iris ")),
            (std::vector<std::string>{"iris", "http://iris.default.example.com", "True", "100",
                                      "iris-predictor-00001", "5s"}));

  RunResult yaml = kubectl({"get", "isvc", "iris", "-o", "yaml"});
  ASSERT_EQ(yaml.rc, 0) << yaml.output;
  auto docs = common::parseYamlDocuments(yaml.output, "kubectl output");
  ASSERT_TRUE(docs.ok()) << yaml.output;
  EXPECT_EQ(docs->front()["status"]["url"], "http://iris.default.example.com");
  EXPECT_EQ(docs->front()["metadata"]["generation"], 2);

  RunResult labelled = kubectl({"get", "isvc", "-l", "app=iris", "-o", "name"});
  EXPECT_EQ(labelled.output, "inferenceservice.serving.kserve.io/iris\n");
  RunResult none = kubectl({"get", "isvc", "-l", "app=other"});
  EXPECT_EQ(none.rc, 0);
  EXPECT_EQ(none.output, "No resources found in default namespace.\n");
  RunResult all = kubectl({"get", "isvc", "-A"});
  ASSERT_EQ(all.rc, 0) << all.output;
  EXPECT_EQ(words(lineWith(all.output, "NAME")).front(), "NAMESPACE");
  EXPECT_EQ(words(lineWith(all.output, "iris ")).front(), "default");

  RunResult merge = kubectl(
      {"patch", "isvc", "iris", "--type=merge", "-p", R"({"metadata":{"labels":{"team":"a"}}})"});
  EXPECT_EQ(merge.rc, 0) << merge.output;
  EXPECT_EQ(merge.output, "inferenceservice.serving.kserve.io/iris patched\n");
  RunResult json_patch =
      kubectl({"patch", "isvc", "iris", "--type=json", "-p",
               R"([{"op":"add","path":"/metadata/labels/tier","value":"gold"}])"});
  EXPECT_EQ(json_patch.rc, 0) << json_patch.output;
  obj = stored("iris");
  EXPECT_EQ(obj["metadata"]["labels"]["team"], "a");
  EXPECT_EQ(obj["metadata"]["labels"]["tier"], "gold");
  RunResult strategic =
      kubectl({"patch", "isvc", "iris", "-p", R"({"metadata":{"labels":{"x":"y"}}})"});
  EXPECT_EQ(strategic.rc, 1);
  EXPECT_EQ(strategic.output,
            "error: application/strategic-merge-patch+json is not supported by "
            "serving.kserve.io/v1beta1, Kind=InferenceService: the body of the request was in an "
            "unknown format - accepted media types include: application/json-patch+json, "
            "application/merge-patch+json, application/apply-patch+yaml\n");
  RunResult failed_test =
      kubectl({"patch", "isvc", "iris", "--type=json", "-p",
               R"([{"op":"test","path":"/metadata/labels/tier","value":"x"}])"});
  EXPECT_EQ(failed_test.rc, 1);
  EXPECT_EQ(failed_test.output,
            "The request is invalid: testing value /metadata/labels/tier failed\n");

  RunResult stale = kubectl({"replace", "-f", old_file});
  EXPECT_EQ(stale.rc, 1);
  EXPECT_EQ(stale.output,
            "Error from server (Conflict): error when replacing \"" + old_file +
                "\": Operation cannot be fulfilled on inferenceservices.serving.kserve.io "
                "\"iris\": the object has been modified; please apply your changes to the latest "
                "version and try again\n");

  RunResult deleted = kubectl({"delete", "isvc", "iris"});
  EXPECT_EQ(deleted.rc, 0) << deleted.output;
  EXPECT_EQ(deleted.output, "inferenceservice.serving.kserve.io \"iris\" deleted\n");
  EXPECT_TRUE(stored("iris").is_null());
  RunResult gone = kubectl({"get", "isvc", "iris"});
  EXPECT_EQ(gone.rc, 1);
  EXPECT_EQ(
      gone.output,
      "Error from server (NotFound): inferenceservices.serving.kserve.io \"iris\" not found\n");
}

TEST_F(KubectlTest, ServerSideApply) {
  RunResult created = kubectl({"apply", "--server-side", "-f", iris("gs://a")});
  EXPECT_EQ(created.rc, 0) << created.output;
  EXPECT_EQ(created.output, "inferenceservice.serving.kserve.io/iris serverside-applied\n");
  RunResult updated = kubectl({"apply", "--server-side", "-f", iris("gs://b")});
  EXPECT_EQ(updated.rc, 0) << updated.output;
  EXPECT_EQ(updated.output, "inferenceservice.serving.kserve.io/iris serverside-applied\n");
  EXPECT_EQ(stored("iris")["spec"]["predictor"]["model"]["storageUri"], "gs://b");
}

TEST_F(KubectlTest, AdmissionRejectsInvalidManifests) {
  std::string bad = write("bad.yaml", R"(apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: bad1
spec: {}
)");
  uint64_t rv = store_->resourceVersion();
  RunResult r = kubectl({"apply", "-f", bad});
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.output, "The InferenceService \"bad1\" is invalid: spec.predictor: Required value\n");
  EXPECT_TRUE(stored("bad1").is_null());
  EXPECT_EQ(store_->resourceVersion(), rv);
}

TEST_F(KubectlTest, GetWatchPrintsAStatusChange) {
  ASSERT_TRUE(store_
                  ->create("InferenceService", "default",
                           json::parse(R"({"metadata":{"name":"iris"},"spec":{"predictor":{}}})"))
                  .ok());
  uint64_t opened = store_->watchesOpened("InferenceService");
  auto child = spawn(argv({"get", "isvc", "iris", "-w"}));
  ASSERT_TRUE(child);
  std::string seen;
  auto header = child->waitForLine("NAME", milliseconds(30'000), &seen);
  ASSERT_TRUE(header.ok()) << seen;
  ASSERT_TRUE(store_->awaitWatchesOpened("InferenceService", opened + 1, milliseconds(30'000)));
  makeReady("iris");
  auto row = child->waitForLine("http://iris.default.example.com", milliseconds(30'000), &seen);
  ASSERT_TRUE(row.ok()) << seen;
  EXPECT_EQ(words(*row)[0], "iris");
  EXPECT_EQ(words(*row)[2], "True");
  handler_->closeWatches();  // the server ends the stream: kubectl exits 0, silently
  RunResult r = testing::finish(*child, milliseconds(30'000), seen);
  EXPECT_EQ(r.rc, 0) << r.output;
  // The initial row, then the change; the synthetic ADDED is not printed again.
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 3) << r.output;
}

TEST_F(KubectlTest, WaitForConditionReady) {
  ASSERT_TRUE(store_
                  ->create("InferenceService", "default",
                           json::parse(R"({"metadata":{"name":"iris"},"spec":{"predictor":{}}})"))
                  .ok());
  uint64_t opened = store_->watchesOpened("InferenceService");
  auto child = spawn(argv({"wait", "--for=condition=Ready", "isvc/iris", "--timeout=30s"}));
  ASSERT_TRUE(child);
  ASSERT_TRUE(store_->awaitWatchesOpened("InferenceService", opened + 1, milliseconds(30'000)));
  makeReady("iris");
  RunResult r = testing::finish(*child, milliseconds(40'000));
  EXPECT_EQ(r.rc, 0) << r.output;
  EXPECT_EQ(r.output, "inferenceservice.serving.kserve.io/iris condition met\n");
}

TEST_F(KubectlTest, NamespacesAndReadOnlyPods) {
  RunResult ns = kubectl({"create", "ns", "team"});
  EXPECT_EQ(ns.rc, 0) << ns.output;
  EXPECT_EQ(ns.output, "namespace/team created\n");
  RunResult list = kubectl({"get", "ns"});
  EXPECT_EQ(words(lineWith(list.output, "team")).at(1), "Active") << list.output;

  ASSERT_TRUE(store_
                  ->upsert("Pod", json::parse(R"({"metadata":{"name":"iris-0","namespace":"team"},
      "spec":{"containers":[{"name":"kserve-container"}]},
      "status":{"phase":"Running","containerStatuses":[{"name":"kserve-container","ready":true,
        "restartCount":0,"image":"refstack","imageID":"","state":{"running":{}}}]}})"))
                  .ok());
  time_.advance(std::chrono::seconds(65));
  RunResult pods = kubectl({"get", "pods", "-n", "team"});
  ASSERT_EQ(pods.rc, 0) << pods.output;
  EXPECT_EQ(words(lineWith(pods.output, "NAME")),
            (std::vector<std::string>{"NAME", "READY", "STATUS", "RESTARTS", "AGE"}));
  EXPECT_EQ(words(lineWith(pods.output, "iris-0")),
            (std::vector<std::string>{"iris-0", "1/1", "Running", "0", "65s"}));
  RunResult del = kubectl({"delete", "pod", "iris-0", "-n", "team"});
  EXPECT_EQ(del.rc, 1);
  EXPECT_EQ(del.output,
            "Error from server (MethodNotAllowed): the server does not allow this method on the "
            "requested resource\n");
  RunResult missing_ns = kubectl({"apply", "-n", "nowhere", "-f", iris("gs://a")});
  EXPECT_EQ(missing_ns.rc, 1);
  EXPECT_NE(missing_ns.output.find("namespaces \"nowhere\" not found"), std::string::npos)
      << missing_ns.output;
}

// kubectl never sends a kubeconfig's token to a plain-HTTP server (clientcmd applies credentials
// only over TLS): against a token-protected API on http:// it is refused. The gcloud dispatcher's
// own GET /version is refused too, and it falls back to its default kubectl (1.32).
class KubectlWithTokenTest : public KubectlTest {
 protected:
  KubectlWithTokenTest() : KubectlTest(/*use_token=*/true) {}
};

TEST_F(KubectlWithTokenTest, CredentialsAreNotSentOverPlainHttp) {
  RunResult r = kubectl({"get", "isvc"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.output.find("error: You must be logged in to the server"), std::string::npos)
      << r.output;
}

}  // namespace
}  // namespace kh::kubeapi
