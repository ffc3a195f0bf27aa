// What the kube target learns from watching a cluster: kubectl's watch output cut into documents,
// cold starts built from recorded Pod and PodAutoscaler watch streams (shaped as Kubernetes and
// Knative write them: tests/scenario/fixtures/kube-watch/README.md says where each shape comes
// from), and the storageUri rewrite that puts the demo models on the cluster's store.

#include <fstream>
#include <sstream>

#include "gtest/gtest.h"
#include "kh/common/yaml_json.h"
#include "kh/scenario/kube_watch.h"
#include "kh/scenario/target.h"

namespace kh::scenario {
namespace {

using nlohmann::json;

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// ------------------------------------------------------------------ JsonStreamSplitter

TEST(JsonStreamSplitter, CutsPrettyAndCompactDocumentsFedInAnyPieces) {
  const std::string stream =
      "{\n    \"type\": \"ADDED\",\n    \"object\": {\"a\": [1, {\"b\": \"}{\"}]}\n}\n"
      "{\"type\":\"MODIFIED\",\"object\":{\"s\":\"quote \\\" and brace } inside\"}}\n";
  for (size_t piece : {size_t{1}, size_t{3}, size_t{7}, stream.size()}) {
    JsonStreamSplitter splitter;
    std::vector<std::string> docs;
    for (size_t at = 0; at < stream.size(); at += piece) {
      for (auto& d : splitter.feed(std::string_view(stream).substr(at, piece))) docs.push_back(std::move(d));
    }
    ASSERT_EQ(docs.size(), 2u) << "pieces of " << piece;
    EXPECT_EQ(json::parse(docs[0])["object"]["a"][1]["b"], "}{");
    EXPECT_EQ(json::parse(docs[1])["object"]["s"], "quote \" and brace } inside");
    EXPECT_EQ(splitter.pending(), 0u);
  }
}

TEST(JsonStreamSplitter, SkipsTextBetweenDocuments) {
  // kubectl's errors share the pipe with its output.
  JsonStreamSplitter splitter;
  auto docs = splitter.feed("error: the server doesn't have a resource type \"podautoscalers\"\n{\"type\":\"ADDED\"}\n");
  ASSERT_EQ(docs.size(), 1u);
  EXPECT_EQ(docs[0], "{\"type\":\"ADDED\"}");
}

TEST(JsonStreamSplitter, DropsAnObjectThatNeverEndsInsteadOfHoldingItForever) {
  JsonStreamSplitter splitter;
  std::string endless = "{\"a\": \"" + std::string(JsonStreamSplitter::kMaxDocumentBytes, 'x');
  EXPECT_TRUE(splitter.feed(endless).empty());
  EXPECT_LT(splitter.pending(), 16u);
  auto docs = splitter.feed("\n{\"type\":\"ADDED\"}\n");
  ASSERT_EQ(docs.size(), 1u);
  EXPECT_EQ(docs[0], "{\"type\":\"ADDED\"}");
}

TEST(JsonStreamSplitter, CutsWhatKubectlPrintsForAWatch) {
  // The bytes `kubectl get pods -w -o json --output-watch-events` printed (fixture).
  JsonStreamSplitter splitter;
  auto docs = splitter.feed(readFile(KH_TEST_DIR "/fixtures/kube-watch/kubectl-watch-output.txt"));
  ASSERT_EQ(docs.size(), 2u);
  for (const auto& d : docs) {
    json e = json::parse(d);
    EXPECT_TRUE(e["type"] == "ADDED" || e["type"] == "MODIFIED") << e["type"];
    EXPECT_EQ(e["object"]["kind"], "Pod");
  }
}

// ------------------------------------------------------------------ KubeColdStarts, recorded

// Feeds a fixture's lines ({"arrival": unix seconds, "event": what kubectl printed}).
template <typename Add>
void feedFixture(const std::string& name, Add add) {
  std::ifstream in(std::string(KH_TEST_DIR "/fixtures/kube-watch/") + name);
  ASSERT_TRUE(in) << name;
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    json l = json::parse(line);
    add(WatchArrival{l["arrival"].get<double>(), l["event"]["type"].get<std::string>(), l["event"]["object"]});
    ++n;
  }
  ASSERT_GT(n, 0) << name;
}

TEST(KubeColdStarts, BreaksDownAKnativeColdStartFromItsWatchStreams) {
  // README.md there: T0 is when the request that found zero pods was sent.
  constexpr double kT0 = 1773151330.000;
  KubeColdStarts cs;
  cs.watching("kserve-test", kT0 - 20);
  cs.addRequests("kserve-test", "iris",
                 {{kT0, kT0 + 5.450, true},           // the cold start
                  {kT0 + 1, kT0 + 5.452, true},       // held with it: the same cold start
                  {kT0 + 10, kT0 + 10.004, true},     // the pod is Ready: warm
                  {kT0 + 20, kT0 + 21, false}});      // unanswered: not judged
  feedFixture("coldstart-podautoscalers.jsonl", [&](const WatchArrival& a) { cs.addPodAutoscaler(a); });
  feedFixture("coldstart-pods.jsonl", [&](const WatchArrival& a) { cs.addPod(a); });
  auto got = cs.take();
  ASSERT_EQ(got.size(), 1u);
  const auto* cold = got[0].as<events::ColdStart>();
  ASSERT_NE(cold, nullptr);
  EXPECT_EQ(cold->isvc, "kserve-test/iris");
  EXPECT_EQ(cold->revision, "iris-predictor-00001");
  EXPECT_EQ(cold->pod.rfind("iris-predictor-00001-deployment-", 0), 0u) << cold->pod;
  const auto& b = cold->breakdown;
  EXPECT_NEAR(*b.scale_decided_ms, 50, 0.5);      // PodAutoscaler Active=Unknown (Queued), desiredScale 1
  EXPECT_NEAR(*b.pod_created_ms, 94, 0.5);        // the Deployment's ReplicaSet made the Pod
  EXPECT_NEAR(*b.pod_scheduled_ms, 121, 0.5);     // bound to kserve-control-plane
  EXPECT_NEAR(*b.process_started_ms, 4712, 0.5);  // kserve-container running (after the storage initializer)
  EXPECT_NEAR(*b.ready_ms, 5318, 0.5);            // queue-proxy's probe passed: Ready
  EXPECT_NEAR(*b.first_byte_ms, 5450, 0.5);
  EXPECT_NEAR(cold->total_ms, 5450, 0.5);
  // Each step at arrival resolution, in the order Kubernetes made them.
  EXPECT_LT(*b.scale_decided_ms, *b.pod_created_ms);
  EXPECT_LT(*b.pod_created_ms, *b.pod_scheduled_ms);
  EXPECT_LT(*b.pod_scheduled_ms, *b.process_started_ms);
  EXPECT_LT(*b.process_started_ms, *b.ready_ms);
}

// ------------------------------------------------------------------ KubeColdStarts, synthetic

json pod(const std::string& name, bool scheduled, bool running, bool ready, bool terminating = false) {
  json status = {{"phase", ready || running ? "Running" : "Pending"}, {"conditions", json::array()}};
  if (scheduled) status["conditions"].push_back({{"type", "PodScheduled"}, {"status", "True"}});
  status["conditions"].push_back({{"type", "Ready"}, {"status", ready ? "True" : "False"}});
  json state = running ? json{{"running", {{"startedAt", "2026-12-07T10:00:01Z"}}}}
                       : json{{"waiting", {{"reason", "ContainerCreating"}}}};
  status["containerStatuses"] = json::array({{{"name", "queue-proxy"}, {"state", {{"running", json::object()}}}},
                                             {{"name", "kserve-container"}, {"state", state}}});
  json md = {{"name", name},
             {"namespace", "ns"},
             {"uid", "uid-" + name},
             {"labels", {{"serving.kserve.io/inferenceservice", "iris"}, {"serving.knative.dev/revision", "iris-predictor-00001"}}}};
  if (terminating) md["deletionTimestamp"] = "2026-12-07T10:01:00Z";
  return {{"kind", "Pod"}, {"metadata", md}, {"status", status}};
}

json pa(int desired, int actual) {
  return {{"kind", "PodAutoscaler"},
          {"metadata", {{"name", "iris-predictor-00001"}, {"namespace", "ns"}}},
          {"status", {{"desiredScale", desired}, {"actualScale", actual}}}};
}

TEST(KubeColdStarts, BreaksDownTheFirstRequestThatFoundNoReadyPod) {
  KubeColdStarts cs;
  cs.watching("ns", 100.0);
  cs.addPodAutoscaler({100.0, "ADDED", pa(0, 0)});
  // Two requests at zero: one cold start, timed from the first.
  cs.addRequests("ns", "iris", {{110.0, 113.5, true}, {110.2, 113.6, true}});
  cs.addPodAutoscaler({110.1, "MODIFIED", pa(1, 0)});
  cs.addPod({110.3, "ADDED", pod("p1", false, false, false)});
  cs.addPod({110.4, "MODIFIED", pod("p1", true, false, false)});
  EXPECT_TRUE(cs.take().empty());  // not Ready yet: pending
  cs.addPod({112.0, "MODIFIED", pod("p1", true, true, false)});
  cs.addPod({113.0, "MODIFIED", pod("p1", true, true, true)});
  auto got = cs.take();
  ASSERT_EQ(got.size(), 1u);
  const auto* cold = got[0].as<events::ColdStart>();
  ASSERT_NE(cold, nullptr);
  EXPECT_EQ(cold->isvc, "ns/iris");
  EXPECT_EQ(cold->revision, "iris-predictor-00001");
  EXPECT_EQ(cold->pod, "p1");
  EXPECT_DOUBLE_EQ(got[0].time, 113.5);
  EXPECT_NEAR(cold->total_ms, 3500, 1e-6);
  const auto& b = cold->breakdown;
  EXPECT_NEAR(*b.scale_decided_ms, 100, 1e-6);
  EXPECT_NEAR(*b.pod_created_ms, 300, 1e-6);
  EXPECT_NEAR(*b.pod_scheduled_ms, 400, 1e-6);
  EXPECT_NEAR(*b.process_started_ms, 2000, 1e-6);
  EXPECT_NEAR(*b.ready_ms, 3000, 1e-6);
  EXPECT_NEAR(*b.first_byte_ms, 3500, 1e-6);
  EXPECT_FALSE(b.buffered_ms.has_value());  // refstack's activator steps are not seen on a cluster
  EXPECT_TRUE(cs.take().empty());           // each once
}

TEST(KubeColdStarts, AWarmRequestIsNoColdStart) {
  KubeColdStarts cs;
  cs.watching("ns", 100.0);
  cs.addPod({100.0, "ADDED", pod("p1", true, true, true)});
  cs.addRequests("ns", "iris", {{105.0, 105.01, true}});
  EXPECT_TRUE(cs.take().empty());
  // Scaled down: terminating, then gone; the next request is a cold start on a new pod.
  cs.addPod({120.0, "MODIFIED", pod("p1", true, true, true, /*terminating=*/true)});
  cs.addPod({150.0, "DELETED", pod("p1", true, true, false, true)});
  cs.addRequests("ns", "iris", {{125.0, 131.0, true}});
  cs.addPod({125.5, "ADDED", pod("p2", true, false, false)});
  cs.addPod({130.5, "MODIFIED", pod("p2", true, true, true)});
  auto got = cs.take();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].as<events::ColdStart>()->pod, "p2");
  EXPECT_NEAR(got[0].as<events::ColdStart>()->total_ms, 6000, 1e-6);
}

TEST(KubeColdStarts, JudgesNoRequestFromBeforeTheWatchOrUnanswered) {
  KubeColdStarts cs;
  cs.addRequests("other", "iris", {{90.0, 95.0, true}});  // never watched
  cs.watching("ns", 100.0);
  cs.addRequests("ns", "iris", {{99.0, 103.0, true}, {101.0, 0, false}});
  cs.addPod({102.0, "ADDED", pod("p1", true, true, true)});
  EXPECT_TRUE(cs.take().empty());
}

TEST(KubeColdStarts, ReadyAfterTheFirstByteStillCounts) {
  // The activator probes the pod itself and can answer before the kubelet's Ready reaches the
  // watch.
  KubeColdStarts cs;
  cs.watching("ns", 100.0);
  cs.addRequests("ns", "iris", {{110.0, 112.0, true}});
  cs.addPod({110.5, "ADDED", pod("p1", true, true, false)});
  cs.addPod({112.2, "MODIFIED", pod("p1", true, true, true)});
  auto got = cs.take();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_NEAR(*got[0].as<events::ColdStart>()->breakdown.ready_ms, 2200, 1e-6);
  EXPECT_NEAR(got[0].as<events::ColdStart>()->total_ms, 2000, 1e-6);
}

// ------------------------------------------------------------------ rewriteModelStore

TEST(RewriteModelStore, PutsTheDemoModelsOnTheClustersStore) {
  const std::string yaml =
      "apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata: {name: a}\nspec:\n  predictor:\n"
      "    model: {modelFormat: {name: xgboost}, storageUri: file://reference-impl/models/xgboost-iris}\n"
      "---\napiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata: {name: b}\nspec:\n  predictor:\n"
      "    containers:\n    - name: kserve-container\n      image: x:1\n"
      "      env: [{name: STORAGE_URI, value: 'file:///src/repo/reference-impl/models/dense-iris'}]\n";
  auto parse = [](const std::string& text) {
    auto docs = common::parseYamlDocuments(text, "test.yaml");
    EXPECT_TRUE(docs.ok()) << docs.status();
    return docs.ok() ? *docs : std::vector<json>{};
  };
  auto docs = parse(yaml);
  auto changed = rewriteModelStore(docs, "pvc://kh-models/");
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_TRUE(*changed);
  std::string out;
  for (const auto& d : docs) out += d.dump();
  EXPECT_NE(out.find("pvc://kh-models/xgboost-iris"), std::string::npos) << out;
  EXPECT_NE(out.find("pvc://kh-models/dense-iris"), std::string::npos) << out;
  EXPECT_EQ(out.find("file://"), std::string::npos) << out;

  auto fresh = parse(yaml);
  auto refused = rewriteModelStore(fresh, "");
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find("--model-store"), absl::string_view::npos) << refused.status();

  // Anything else is the cluster's business, and passes unchanged.
  auto other = parse("kind: InferenceService\nspec: {predictor: {model: {storageUri: 'gs://bucket/m'}}}\n");
  const auto before = other;
  auto untouched = rewriteModelStore(other, "");
  ASSERT_TRUE(untouched.ok()) << untouched.status();
  EXPECT_FALSE(*untouched);
  EXPECT_EQ(other, before);
}

}  // namespace
}  // namespace kh::scenario
