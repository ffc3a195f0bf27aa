// refstack driven as a cluster: `refstack up` (a real process) and the real kubectl with the
// kubeconfig it writes, and the kubernetes Python client (Debian's python3-kubernetes): create,
// a changed re-apply that makes a new revision, tables, JSON, YAML, label selectors, a watch that
// prints the rollout, wait for Ready, the pods and PodAutoscalers a cluster would show, an
// invalid manifest refused with KServe's message and nothing changed, delete. Each client test
// is skipped, saying why, when its client is not installed.

#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>

#include "gtest/gtest.h"
#include "kh/process/subprocess.h"
#include "nlohmann/json.hpp"
#include "support/modelserver_process.h"
#include "support/refstack_process.h"

namespace kh::refstack {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
namespace fs = std::filesystem;

struct CommandRun {
  int rc = -1;
  std::string out;
};

class RefstackKubectl : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::onPath("kubectl")) GTEST_SKIP() << "no kubectl on PATH (./scripts/test installs Debian's kubernetes-client)";
    dir_ = fs::path(::testing::TempDir()) /
           ("refstack-kubectl-" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "home");
    auto started = testing::startRefstackProcess(dir_ / "state");
    ASSERT_TRUE(started.ok()) << started.status();
    daemon_ = std::move(started->process);
    kubeconfig_ = (dir_ / "state" / "kubeconfig").string();
    ASSERT_TRUE(fs::exists(kubeconfig_));
  }

  void TearDown() override {
    if (daemon_ && daemon_->running()) {
      daemon_->signalGroup(SIGTERM);
      daemon_->wait(30s);
    }
  }

  // The environment of a client: the kubeconfig, and a HOME of its own (kubectl's discovery cache).
  std::map<std::string, std::string> clientEnv() const {
    return {{"KUBECONFIG", kubeconfig_}, {"HOME", (dir_ / "home").string()}};
  }

  CommandRun run(std::vector<std::string> argv, std::chrono::milliseconds timeout = 60s) {
    process::SpawnOptions o;
    o.argv = std::move(argv);
    o.env = clientEnv();
    o.working_dir = testing::sourceDir();
    auto child = process::Subprocess::spawn(o);
    CommandRun r;
    if (!child.ok()) {
      r.out = std::string(child.status().message());
      return r;
    }
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      auto line = (*child)->readLine(left);
      if (!line.ok()) break;
      r.out += *line + "\n";
    }
    auto status = (*child)->wait(10s);
    r.rc = status && status->exited ? status->code : -1;
    return r;
  }

  CommandRun kubectl(std::vector<std::string> args, std::chrono::milliseconds timeout = 60s) {
    args.insert(args.begin(), "kubectl");
    return run(std::move(args), timeout);
  }

  std::string writeFile(const std::string& name, const std::string& text) {
    std::string path = (dir_ / name).string();
    std::ofstream(path) << text;
    return path;
  }

  fs::path dir_;
  std::string kubeconfig_;
  std::unique_ptr<process::Subprocess> daemon_;
};

std::string irisManifest(const std::string& env_value) {
  return "apiVersion: serving.kserve.io/v1beta1\n"
         "kind: InferenceService\n"
         "metadata:\n  name: iris\n  labels: {team: ml}\n"
         "spec:\n  predictor:\n    model:\n      modelFormat: {name: xgboost}\n"
         "      storageUri: file://reference-impl/models/xgboost-iris\n"
         "      env: [{name: ROLLOUT, value: \"" + env_value + "\"}]\n";
}

TEST_F(RefstackKubectl, ApplyRolloutTablesWatchWaitPodsAndDelete) {
  CommandRun resources = kubectl({"api-resources"});
  ASSERT_EQ(resources.rc, 0) << resources.out;
  EXPECT_TRUE(std::regex_search(resources.out, std::regex(R"(inferenceservices +isvc +serving.kserve.io/v1beta1 +true +InferenceService)")))
      << resources.out;
  EXPECT_TRUE(std::regex_search(resources.out, std::regex(R"(podautoscalers +kpa,pa +autoscaling.internal.knative.dev/v1alpha1)")))
      << resources.out;

  std::string v1 = writeFile("iris-v1.yaml", irisManifest("one"));
  CommandRun created = kubectl({"apply", "-f", v1});
  ASSERT_EQ(created.rc, 0) << created.out;
  EXPECT_NE(created.out.find("inferenceservice.serving.kserve.io/iris created"), std::string::npos) << created.out;
  CommandRun ready = kubectl({"wait", "--for=condition=Ready", "isvc/iris", "--timeout=60s"});
  ASSERT_EQ(ready.rc, 0) << ready.out;
  EXPECT_NE(ready.out.find("condition met"), std::string::npos) << ready.out;

  CommandRun table = kubectl({"get", "isvc"});
  ASSERT_EQ(table.rc, 0) << table.out;
  EXPECT_TRUE(std::regex_search(table.out, std::regex(R"(NAME +URL +READY +PREV +LATEST +PREVROLLEDOUTREVISION +LATESTREADYREVISION +AGE)")))
      << table.out;
  EXPECT_TRUE(std::regex_search(table.out, std::regex(R"(iris +http://iris-default.example.com +True +100 +iris-predictor-00001 +[0-9]+s)")))
      << table.out;
  CommandRun as_json = kubectl({"get", "isvc", "iris", "-o", "json"});
  json object = json::parse(as_json.out, nullptr, false);
  ASSERT_TRUE(object.is_object()) << as_json.out;
  EXPECT_EQ(object["metadata"]["generation"], 1);
  EXPECT_EQ(object["status"]["observedGeneration"], 1);
  EXPECT_EQ(object["status"]["url"], "http://iris-default.example.com");
  CommandRun as_yaml = kubectl({"get", "isvc", "iris", "-o", "yaml"});
  EXPECT_NE(as_yaml.out.find("latestReadyRevision: iris-predictor-00001"), std::string::npos) << as_yaml.out;
  EXPECT_NE(kubectl({"get", "isvc", "-l", "team=ml", "-o", "name"}).out.find("inferenceservice.serving.kserve.io/iris"),
            std::string::npos);
  EXPECT_NE(kubectl({"get", "isvc", "-l", "team=other"}).out.find("No resources found"), std::string::npos);

  // The pods and the autoscaler, as on a cluster.
  CommandRun pods = kubectl({"get", "pods", "-l", "serving.kserve.io/inferenceservice=iris"});
  EXPECT_TRUE(std::regex_search(pods.out, std::regex(R"(iris-predictor-00001-pod-1 +2/2 +Running +0)"))) << pods.out;
  CommandRun pas = kubectl({"get", "kpa", "iris-predictor-00001", "-o", "json"});
  json pa = json::parse(pas.out, nullptr, false);
  ASSERT_TRUE(pa.is_object()) << pas.out;
  EXPECT_EQ(pa["status"]["desiredScale"], 1) << pas.out;

  // A watch prints the rollout of a changed spec: a new revision becomes the latest ready one.
  process::SpawnOptions w;
  w.argv = {"kubectl", "get", "isvc", "-w", "--request-timeout=90s"};
  w.env = clientEnv();
  auto watch = process::Subprocess::spawn(w);
  ASSERT_TRUE(watch.ok()) << watch.status();
  ASSERT_TRUE((*watch)->waitForLine("iris-predictor-00001", 30s).ok());  // the list
  CommandRun configured = kubectl({"apply", "-f", writeFile("iris-v2.yaml", irisManifest("two"))});
  ASSERT_EQ(configured.rc, 0) << configured.out;
  EXPECT_NE(configured.out.find("inferenceservice.serving.kserve.io/iris configured"), std::string::npos) << configured.out;
  std::string seen;
  auto rolled = (*watch)->waitForLine("iris-predictor-00002", 60s, &seen);
  EXPECT_TRUE(rolled.ok()) << rolled.status() << "\n" << seen;
  (*watch)->signalGroup(SIGTERM);
  (*watch)->wait(10s);
  EXPECT_EQ(kubectl({"wait", "--for=condition=Ready", "isvc/iris", "--timeout=60s"}).rc, 0);
  CommandRun revisions = kubectl({"get", "revisions", "-o", "name"});
  EXPECT_NE(revisions.out.find("revision.serving.knative.dev/iris-predictor-00002"), std::string::npos) << revisions.out;
  EXPECT_EQ(json::parse(kubectl({"get", "isvc", "iris", "-o", "json"}).out)["metadata"]["generation"], 2);

  // An invalid manifest is refused with KServe's message, and nothing changes.
  std::string bad = writeFile("bad.yaml",
                              "apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata: {name: iris}\n"
                              "spec:\n  predictor: {minReplicas: -1, model: {modelFormat: {name: xgboost}}}\n");
  CommandRun refused = kubectl({"apply", "-f", bad});
  EXPECT_EQ(refused.rc, 1) << refused.out;
  EXPECT_NE(refused.out.find("MinReplicas cannot be less than 0."), std::string::npos) << refused.out;
  EXPECT_NE(refused.out.find("denied the request"), std::string::npos) << refused.out;
  EXPECT_EQ(json::parse(kubectl({"get", "isvc", "iris", "-o", "json"}).out)["metadata"]["generation"], 2);

  // describe shows the stack's events about it.
  CommandRun described = kubectl({"describe", "isvc", "iris"});
  EXPECT_NE(described.out.find("RevisionCreated"), std::string::npos) << described.out;

  CommandRun deleted = kubectl({"delete", "isvc", "iris"});
  EXPECT_EQ(deleted.rc, 0) << deleted.out;
  EXPECT_NE(deleted.out.find("inferenceservice.serving.kserve.io \"iris\" deleted"), std::string::npos) << deleted.out;
  CommandRun gone = kubectl({"get", "isvc", "iris"});
  EXPECT_EQ(gone.rc, 1);
  EXPECT_NE(gone.out.find("(NotFound)"), std::string::npos) << gone.out;
}

constexpr const char* kPython = "/usr/bin/python3";

TEST_F(RefstackKubectl, ThePythonClientCreatesAndWatchesAnInferenceServiceUntilReady) {
  if (::access(kPython, X_OK) != 0 ||
      run({kPython, "-c", "import kubernetes"}, 30s).rc != 0) {
    GTEST_SKIP() << "no kubernetes module for /usr/bin/python3 (Debian's python3-kubernetes; ./scripts/test installs it)";
  }
  const char* script = R"PY(
from kubernetes import client, config, watch
config.load_kube_config()
api = client.CustomObjectsApi()
G, V, NS, P = "serving.kserve.io", "v1beta1", "default", "inferenceservices"
body = {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
        "metadata": {"name": "py-iris"},
        "spec": {"predictor": {"model": {"modelFormat": {"name": "xgboost"},
                                         "storageUri": "file://reference-impl/models/xgboost-iris"}}}}
created = api.create_namespaced_custom_object(G, V, NS, P, body)
print("created", created["metadata"]["name"], created["metadata"]["generation"], flush=True)
w = watch.Watch()
for event in w.stream(api.list_namespaced_custom_object, G, V, NS, P,
                      field_selector="metadata.name=py-iris", timeout_seconds=60):
    status = event["object"].get("status") or {}
    ready = [c["status"] for c in status.get("conditions", []) if c["type"] == "Ready"]
    print("event", event["type"], ready, flush=True)
    if ready == ["True"] and status.get("observedGeneration") == 1:
        print("READY", status["url"], flush=True)
        w.stop()
pods = client.CoreV1Api().list_namespaced_pod("default", label_selector="serving.kserve.io/inferenceservice=py-iris")
print("pods", [(p.metadata.name, p.status.phase) for p in pods.items], flush=True)
api.delete_namespaced_custom_object(G, V, NS, P, "py-iris")
print("deleted", flush=True)
)PY";
  CommandRun r = run({kPython, "-c", script}, 90s);
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("created py-iris 1"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("event ADDED"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("READY http://py-iris-default.example.com"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("('py-iris-predictor-00001-pod-1', 'Running')"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("deleted"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace kh::refstack
