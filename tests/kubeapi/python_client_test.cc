// The kubernetes Python client (Debian's python3-kubernetes 22.6, for /usr/bin/python3) against
// ApiHandler: load_kube_config with a token, CustomObjectsApi create / get / list / patch
// (merge) / watch (ADDED, then a MODIFIED the test makes) / delete, and CoreV1Api's typed models.

#include <gtest/gtest.h>

#include "kube_client_support.h"

namespace kh::kubeapi {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

constexpr const char* kPython = "/usr/bin/python3";

constexpr const char* kScript = R"PY(
import sys
from kubernetes import client, config, watch

config.load_kube_config()
api = client.CustomObjectsApi()
G, V, NS, P = "serving.kserve.io", "v1beta1", "default", "inferenceservices"
body = {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
        "metadata": {"name": "py", "labels": {"from": "python"}},
        "spec": {"predictor": {"minReplicas": 1}}}
created = api.create_namespaced_custom_object(G, V, NS, P, body)
print("created", created["metadata"]["name"], created["metadata"]["generation"], flush=True)
got = api.get_namespaced_custom_object(G, V, NS, P, "py")
print("got", got["metadata"]["uid"] == created["metadata"]["uid"], flush=True)
listed = api.list_namespaced_custom_object(G, V, NS, P, label_selector="from=python")
print("listed", [i["metadata"]["name"] for i in listed["items"]], flush=True)
patched = api.patch_namespaced_custom_object(G, V, NS, P, "py",
                                             {"spec": {"predictor": {"minReplicas": 2}}})
print("patched", patched["spec"]["predictor"]["minReplicas"], patched["metadata"]["generation"],
      flush=True)
w = watch.Watch()
for event in w.stream(api.list_namespaced_custom_object, G, V, NS, P,
                      field_selector="metadata.name=py", timeout_seconds=30):
    status = event["object"].get("status", {})
    print("event", event["type"], status.get("url", "-"), flush=True)
    if event["type"] == "MODIFIED":
        w.stop()
deleted = api.delete_namespaced_custom_object(G, V, NS, P, "py")
print("deleted", deleted["status"], flush=True)
core = client.CoreV1Api()
pods = core.list_namespaced_pod("default")
print("pods", [(p.metadata.name, p.status.phase, p.status.container_statuses[0].ready)
              for p in pods.items], flush=True)
namespaces = core.list_namespace()
print("namespaces", [n.metadata.name for n in namespaces.items], flush=True)
try:
    api.get_namespaced_custom_object(G, V, NS, P, "py")
except client.exceptions.ApiException as e:
    print("missing", e.status, flush=True)
)PY";

class PythonClientTest : public testing::KubeClientFixture {
 protected:
  PythonClientTest() : KubeClientFixture(/*use_token=*/true) {}

  void SetUp() override {
    if (::access(kPython, X_OK) != 0) GTEST_SKIP() << kPython << " is missing";
    if (std::system("/usr/bin/python3 -c 'import kubernetes' >/dev/null 2>&1") != 0) {
      GTEST_SKIP() << "the kubernetes Python module is missing for /usr/bin/python3 "
                      "(apt-get install python3-kubernetes)";
    }
    KubeClientFixture::SetUp();
  }
};

TEST_F(PythonClientTest, CustomObjectsAndWatch) {
  ASSERT_TRUE(store_
                  ->upsert("Pod", json::parse(R"({"metadata":{"name":"py-0","namespace":"default"},
      "spec":{"containers":[{"name":"kserve-container","image":"refstack"}]},
      "status":{"phase":"Running","conditions":[{"type":"Ready","status":"True"}],
        "containerStatuses":[{"name":"kserve-container","ready":true,"restartCount":0,
          "image":"refstack","imageID":"refstack","state":{"running":{}}}]}})"))
                  .ok());
  std::string script = write("client.py", kScript);
  uint64_t opened = store_->watchesOpened("InferenceService");
  auto child = spawn({kPython, script});
  ASSERT_TRUE(child);
  ASSERT_TRUE(store_->awaitWatchesOpened("InferenceService", opened + 1, milliseconds(60'000)))
      << testing::finish(*child, milliseconds(5000)).output;
  ASSERT_TRUE(store_
                  ->updateStatus("InferenceService", "default", "py",
                                 [](json& o) {
                                   o["status"]["url"] = "http://py.default.example.com";
                                   return absl::OkStatus();
                                 })
                  .ok());
  testing::RunResult r = testing::finish(*child, milliseconds(60'000));
  EXPECT_EQ(r.rc, 0) << r.output;
  EXPECT_EQ(r.output,
            "created py 1\n"
            "got True\n"
            "listed ['py']\n"
            "patched 2 2\n"
            "event ADDED -\n"
            "event MODIFIED http://py.default.example.com\n"
            "deleted Success\n"
            "pods [('py-0', 'Running', True)]\n"
            "namespaces ['default']\n"
            "missing 404\n");
  EXPECT_FALSE(store_->get("InferenceService", "default", "py").ok());
}

}  // namespace
}  // namespace kh::kubeapi
