// The pure pieces: HumanDuration, JSONPath, Table rendering, content negotiation, discovery and
// OpenAPI documents, Status bodies, kubeconfig.

#include <gtest/gtest.h>

#include "kh/common/yaml_json.h"
#include "kh/kubeapi/discovery.h"
#include "kh/kubeapi/errors.h"
#include "kh/kubeapi/jsonpath.h"
#include "kh/kubeapi/kinds.h"
#include "kh/kubeapi/kubeconfig.h"
#include "kh/kubeapi/patch.h"
#include "kh/kubeapi/table.h"

namespace kh::kubeapi {
namespace {

using nlohmann::json;
using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

TEST(HumanDurationTest, MatchesKubernetes) {
  EXPECT_EQ(humanDuration(seconds(0)), "0s");
  EXPECT_EQ(humanDuration(milliseconds(-1999)), "0s");
  EXPECT_EQ(humanDuration(seconds(-2)), "<invalid>");
  EXPECT_EQ(humanDuration(seconds(5)), "5s");
  EXPECT_EQ(humanDuration(seconds(119)), "119s");
  EXPECT_EQ(humanDuration(seconds(120)), "2m");
  EXPECT_EQ(humanDuration(seconds(302)), "5m2s");
  EXPECT_EQ(humanDuration(seconds(599)), "9m59s");
  EXPECT_EQ(humanDuration(minutes(10) + seconds(30)), "10m");
  EXPECT_EQ(humanDuration(minutes(179)), "179m");
  EXPECT_EQ(humanDuration(hours(3)), "3h");
  EXPECT_EQ(humanDuration(hours(5) + minutes(10)), "5h10m");
  EXPECT_EQ(humanDuration(hours(8) + minutes(10)), "8h");
  EXPECT_EQ(humanDuration(hours(47)), "47h");
  EXPECT_EQ(humanDuration(hours(48)), "2d");
  EXPECT_EQ(humanDuration(hours(24 * 3 + 4)), "3d4h");
  EXPECT_EQ(humanDuration(hours(24 * 8)), "8d");
  EXPECT_EQ(humanDuration(hours(24 * 729)), "729d");
  EXPECT_EQ(humanDuration(hours(24 * (365 * 3 + 15))), "3y15d");
  EXPECT_EQ(humanDuration(hours(24 * 365 * 3)), "3y");
  EXPECT_EQ(humanDuration(hours(24 * 365 * 9)), "9y");
}

TEST(JsonPathTest, Subset) {
  json obj = json::parse(R"({
    "metadata": {"name": "n", "labels": {"serving.knative.dev/configuration": "cfg"}},
    "status": {"conditions": [{"type": "Ready", "status": "True"},
                              {"type": "X", "status": "False"}],
               "traffic": [{"tag": "prev", "percent": 10, "latestRevision": false},
                           {"percent": 90, "latestRevision": true, "revisionName": "r2"}]},
    "spec": {"formats": [{"name": "sklearn"}, {"name": "xgboost"}]}})");
  auto eval = [&](std::string_view path) {
    auto parsed = JsonPath::parse(path);
    EXPECT_TRUE(parsed.ok()) << path << ": " << parsed.status();
    json out = json::array();
    if (parsed.ok()) {
      for (const auto* v : parsed->evaluate(obj)) out.push_back(*v);
    }
    return out;
  };
  EXPECT_EQ(eval(".metadata.name"), json::array({"n"}));
  EXPECT_EQ(eval("{.metadata.name}"), json::array({"n"}));
  EXPECT_EQ(eval(".status.conditions[?(@.type=='Ready')].status"), json::array({"True"}));
  EXPECT_EQ(eval(".status.conditions[?(@.type==\"X\")].status"), json::array({"False"}));
  EXPECT_EQ(eval(".status.traffic[?(@.latestRevision==true)].percent"), json::array({90}));
  EXPECT_EQ(eval(".status.traffic[?(@.tag=='prev')].percent"), json::array({10}));
  EXPECT_EQ(eval(".status.traffic[?(@.tag!='prev')].revisionName"), json::array({"r2"}));
  EXPECT_EQ(eval(".status.traffic[?(@.revisionName)].percent"), json::array({90}));
  EXPECT_EQ(eval(".status.traffic[?(@.percent == 10)].tag"), json::array({"prev"}));
  EXPECT_EQ(eval(".spec.formats[*].name"), json::array({"sklearn", "xgboost"}));
  EXPECT_EQ(eval(".spec.formats[1].name"), json::array({"xgboost"}));
  EXPECT_EQ(eval(".spec.formats[-1].name"), json::array({"xgboost"}));
  EXPECT_EQ(eval(".spec.formats[5].name"), json::array());
  EXPECT_EQ(eval(".metadata.labels['serving\\.knative\\.dev/configuration']"),
            json::array({"cfg"}));
  EXPECT_EQ(eval(".metadata.missing.deeper"), json::array());
  EXPECT_EQ(eval(".metadata.*").size(), 2u);
  EXPECT_FALSE(JsonPath::parse(".a[").ok());
  EXPECT_FALSE(JsonPath::parse(".a[?(@.b=)]").ok());
  EXPECT_FALSE(JsonPath::parse("a.b").ok());
  EXPECT_FALSE(JsonPath::parse(".a..b").ok());
}

TEST(CatalogTest, EveryColumnPathParses) {
  for (const auto& kind : refstackKinds()) {
    for (const auto& column : kind.columns) {
      if (column.cell) continue;
      EXPECT_TRUE(JsonPath::parse(column.json_path).ok()) << kind.kind << " " << column.name;
    }
  }
  auto kinds = refstackKinds();
  EXPECT_EQ(findKind(kinds, "isvc-nope"), nullptr);
  EXPECT_EQ(findKind(kinds, "inferenceservices.serving.kserve.io")->kind, "InferenceService");
  EXPECT_EQ(findKind(kinds, "pods")->resource(), "pods");
  EXPECT_EQ(findKind(kinds, "InferenceGraph")->qualifiedKind(), "InferenceGraph.serving.kserve.io");
  EXPECT_FALSE(findKind(kinds, "Pod")->client_writable);
  EXPECT_FALSE(findKind(kinds, "Namespace")->namespaced);
  EXPECT_TRUE(findKind(kinds, "Namespace")->client_writable);
  EXPECT_FALSE(findKind(kinds, "ClusterServingRuntime")->namespaced);
}

class TableTest : public ::testing::Test {
 protected:
  common::SystemTime created() const {
    return std::chrono::system_clock::from_time_t(1767225600);  // 2026-01-01T00:00:00Z
  }
  std::vector<KindSpec> kinds_ = refstackKinds();
};

TEST_F(TableTest, InferenceServiceColumnsAndCells) {
  TablePrinter printer(*findKind(kinds_, "InferenceService"));
  json obj = json::parse(R"({"apiVersion":"serving.kserve.io/v1beta1","kind":"InferenceService",
    "metadata":{"name":"iris","namespace":"default","creationTimestamp":"2026-01-01T00:00:00Z"},
    "status":{"url":"http://iris.default.example.com",
      "conditions":[{"type":"Ready","status":"True"}],
      "components":{"predictor":{"traffic":[
        {"percent":100,"latestRevision":true,"revisionName":"iris-predictor-00001"}]}}}})");
  json table =
      printer.table(std::vector<std::shared_ptr<const json>>{std::make_shared<const json>(obj)},
                    104, created() + seconds(302), {});
  EXPECT_EQ(table["kind"], "Table");
  EXPECT_EQ(table["apiVersion"], "meta.k8s.io/v1");
  EXPECT_EQ(table["metadata"]["resourceVersion"], "104");
  std::vector<std::string> names;
  for (const auto& c : table["columnDefinitions"]) {
    names.push_back(c["name"]);
    EXPECT_EQ(c["priority"], 0);
  }
  EXPECT_EQ(names,
            (std::vector<std::string>{"Name", "URL", "Ready", "Prev", "Latest",
                                      "PrevRolledoutRevision", "LatestReadyRevision", "Age"}));
  EXPECT_EQ(table["columnDefinitions"][0]["format"], "name");
  EXPECT_EQ(table["columnDefinitions"][4]["type"], "integer");
  json cells = table["rows"][0]["cells"];
  EXPECT_EQ(cells, json::parse(R"(["iris","http://iris.default.example.com","True",null,100,
                                   null,"iris-predictor-00001","5m2s"])"));
  EXPECT_TRUE(cells[4].is_number_integer());
  EXPECT_EQ(table["rows"][0]["object"]["kind"], "PartialObjectMetadata");
  EXPECT_EQ(table["rows"][0]["object"]["metadata"]["name"], "iris");
  EXPECT_FALSE(table["rows"][0]["object"].contains("status"));

  TableOptions full;
  full.include_object = IncludeObject::kObject;
  full.no_headers = true;
  json one = printer.table(obj, 7, created(), full);
  EXPECT_TRUE(one["columnDefinitions"].empty());
  EXPECT_EQ(one["rows"][0]["object"]["status"]["url"], "http://iris.default.example.com");
  EXPECT_EQ(one["rows"][0]["cells"][7], "0s");
  TableOptions none;
  none.include_object = IncludeObject::kNone;
  EXPECT_FALSE(printer.row(obj, created(), IncludeObject::kNone).contains("object"));

  // An empty list still has rows: [].
  json empty = printer.table(std::vector<std::shared_ptr<const json>>{}, 1, created(), {});
  EXPECT_TRUE(empty["rows"].is_array());
  EXPECT_TRUE(empty["rows"].empty());
}

TEST_F(TableTest, CorePrinters) {
  TablePrinter pods(*findKind(kinds_, "Pod"));
  json pod = json::parse(
      R"({"metadata":{"name":"p","namespace":"default","creationTimestamp":"2026-01-01T00:00:00Z"},
    "spec":{"containers":[{"name":"a"},{"name":"b"}],"nodeName":"refstack"},
    "status":{"phase":"Running","podIP":"127.0.0.1","containerStatuses":[
      {"name":"a","ready":true,"restartCount":1,"state":{"running":{}},
       "lastState":{"terminated":{"finishedAt":"2026-01-01T00:01:00Z"}}},
      {"name":"b","ready":false,"restartCount":0,
       "state":{"waiting":{"reason":"CrashLoopBackOff"}}}]}})");
  json row = pods.row(pod, created() + minutes(3), IncludeObject::kNone);
  EXPECT_EQ(row["cells"], json::parse(R"j(["p","1/2","CrashLoopBackOff","1 (2m ago)","3m",
                                          "127.0.0.1","refstack","<none>","<none>"])j"));
  json defs = pods.columnDefinitions();
  EXPECT_EQ(defs[5]["name"], "IP");
  EXPECT_EQ(defs[5]["priority"], 1);
  pod["metadata"]["deletionTimestamp"] = "2026-01-01T00:02:00Z";
  EXPECT_EQ(pods.row(pod, created(), IncludeObject::kNone)["cells"][2], "Terminating");

  TablePrinter events(*findKind(kinds_, "Event"));
  json ev = json::parse(R"({"metadata":{"name":"e1","namespace":"default"},"type":"Normal",
    "reason":"Ready","message":" isvc ready ","count":3,
    "involvedObject":{"kind":"InferenceService","name":"iris"},"source":{"component":"refstack"},
    "firstTimestamp":"2026-01-01T00:00:00Z","lastTimestamp":"2026-01-01T00:00:30Z"})");
  json ecells = events.row(ev, created() + seconds(40), IncludeObject::kNone)["cells"];
  EXPECT_EQ(ecells, json::parse(R"(["10s","Normal","Ready","inferenceservice/iris","","refstack",
                                    "isvc ready","40s",3,"e1"])"));
  EXPECT_EQ(events.columnDefinitions()[0]["name"], "Last Seen");

  TablePrinter namespaces(*findKind(kinds_, "Namespace"));
  json ns = {{"metadata", {{"name", "default"}, {"creationTimestamp", "2026-01-01T00:00:00Z"}}},
             {"status", {{"phase", "Active"}}}};
  EXPECT_EQ(namespaces.row(ns, created() + hours(50), IncludeObject::kNone)["cells"],
            json::parse(R"(["default","Active","2d2h"])"));

  TablePrinter runtimes(*findKind(kinds_, "ServingRuntime"));
  json rt = json::parse(
      R"({"metadata":{"name":"kserve-sklearnserver","creationTimestamp":"2026-01-01T00:00:00Z"},
    "spec":{"supportedModelFormats":[{"name":"sklearn"},{"name":"xgboost"}],
            "containers":[{"name":"kserve-container"}]}})");
  EXPECT_EQ(runtimes.row(rt, created(), IncludeObject::kNone)["cells"],
            json::parse(R"(["kserve-sklearnserver",null,"sklearn","kserve-container","0s"])"));
  // Kinds without columns: Name and Age.
  KindSpec bare;
  bare.kind = "Thing";
  TablePrinter fallback(bare);
  EXPECT_EQ(fallback.columnDefinitions().size(), 2u);
  EXPECT_EQ(fallback.columnDefinitions()[1]["name"], "Age");
}

TEST(NegotiationTest, AggregatedDiscoveryMatchesParametersExactly) {
  const char* kubectl132 =
      "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
      "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,"
      "application/json";
  EXPECT_EQ(negotiateAggregatedDiscovery(kubectl132), "v2");
  EXPECT_EQ(negotiateAggregatedDiscovery(
                "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,"
                "application/json"),
            "v2beta1");
  // A version that merely contains "v2" is not v2.
  EXPECT_EQ(negotiateAggregatedDiscovery(
                "application/json;g=apidiscovery.k8s.io;v=v2alpha9;as=APIGroupDiscoveryList,"
                "application/json"),
            std::nullopt);
  EXPECT_EQ(negotiateAggregatedDiscovery("application/json, */*"), std::nullopt);
  EXPECT_EQ(negotiateAggregatedDiscovery(""), std::nullopt);
  EXPECT_EQ(aggregatedDiscoveryContentType("v2"),
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList");

  EXPECT_EQ(negotiateTable("application/json;as=Table;v=v1;g=meta.k8s.io,application/json;"
                           "as=Table;v=v1beta1;g=meta.k8s.io,application/json"),
            "v1");
  EXPECT_EQ(negotiateTable("application/json;as=Table;v=v1beta1;g=meta.k8s.io"), "v1beta1");
  EXPECT_EQ(negotiateTable("application/json"), std::nullopt);
  EXPECT_EQ(negotiateTable("application/vnd.kubernetes.protobuf,application/json"), std::nullopt);
  EXPECT_EQ(negotiateTable("application/json, application/json;as=Table;v=v1;g=meta.k8s.io"),
            std::nullopt);
  auto parsed = parseAccept(" Application/JSON ; as=Table ; v=\"v1\" , text/plain");
  ASSERT_EQ(parsed.size(), 2u);
  EXPECT_EQ(parsed[0].type, "application/json");
  EXPECT_EQ(parsed[0].params["v"], "v1");
}

TEST(DiscoveryTest, AggregatedAndLegacyDocuments) {
  auto kinds = refstackKinds();
  json apis = aggregatedDiscovery(kinds, false, "v2");
  EXPECT_EQ(apis["kind"], "APIGroupDiscoveryList");
  EXPECT_EQ(apis["apiVersion"], "apidiscovery.k8s.io/v2");
  ASSERT_EQ(apis["items"].size(), 3u);
  const json& kserve = apis["items"][0];
  EXPECT_EQ(kserve["metadata"]["name"], "serving.kserve.io");
  EXPECT_EQ(kserve["versions"][0]["version"], "v1beta1");  // preferred first
  EXPECT_EQ(kserve["versions"][1]["version"], "v1alpha1");
  const json& isvc = kserve["versions"][0]["resources"][0];
  EXPECT_EQ(isvc["resource"], "inferenceservices");
  EXPECT_EQ(isvc["shortNames"], json::array({"isvc"}));
  EXPECT_EQ(isvc["scope"], "Namespaced");
  EXPECT_EQ(isvc["responseKind"]["kind"], "InferenceService");
  EXPECT_EQ(isvc["subresources"][0]["subresource"], "status");
  EXPECT_EQ(isvc["verbs"].size(), 8u);
  bool found_csr = false;
  for (const auto& r : kserve["versions"][1]["resources"]) {
    if (r["resource"] == "clusterservingruntimes") {
      found_csr = true;
      EXPECT_EQ(r["scope"], "Cluster");
    }
  }
  EXPECT_TRUE(found_csr);
  EXPECT_EQ(apis["items"][2]["versions"][0]["resources"][0]["shortNames"],
            json::array({"kpa", "pa"}));
  EXPECT_EQ(apis["items"][1]["versions"][0]["resources"][0]["verbs"],
            json::array({"get", "list", "watch"}));

  json core = aggregatedDiscovery(kinds, true, "v2beta1");
  EXPECT_EQ(core["apiVersion"], "apidiscovery.k8s.io/v2beta1");
  ASSERT_EQ(core["items"].size(), 1u);
  EXPECT_FALSE(core["items"][0]["metadata"].contains("name"));
  EXPECT_EQ(core["items"][0]["versions"][0]["resources"].size(), 4u);  // pods, events, namespaces, configmaps

  EXPECT_EQ(legacyApiVersions("127.0.0.1:5")["serverAddressByClientCIDRs"][0]["serverAddress"],
            "127.0.0.1:5");
  json groups = legacyApiGroupList(kinds);
  EXPECT_EQ(groups["groups"][0]["preferredVersion"]["groupVersion"], "serving.kserve.io/v1beta1");
  auto list = apiResourceList(kinds, "serving.kserve.io", "v1beta1");
  ASSERT_TRUE(list.has_value());
  EXPECT_EQ((*list)["resources"][1]["name"], "inferenceservices/status");
  EXPECT_EQ((*list)["resources"][1]["singularName"], "");
  EXPECT_FALSE(apiResourceList(kinds, "serving.kserve.io", "v9").has_value());
  EXPECT_EQ((*legacyApiGroup(kinds, "serving.knative.dev"))["kind"], "APIGroup");
}

TEST(DiscoveryTest, OpenApiHasPatchOperationsWithGvkAndFieldValidation) {
  auto kinds = refstackKinds();
  json root = openApiRoot(kinds);
  ASSERT_TRUE(root["paths"].contains("apis/serving.kserve.io/v1beta1"));
  ASSERT_TRUE(root["paths"].contains("api/v1"));
  std::string url = root["paths"]["apis/serving.kserve.io/v1beta1"]["serverRelativeURL"];
  EXPECT_EQ(url.rfind("/openapi/v3/apis/serving.kserve.io/v1beta1?hash=", 0), 0u);
  auto doc = openApiGroupVersion(kinds, "apis/serving.kserve.io/v1beta1");
  ASSERT_TRUE(doc.has_value());
  const json& op =
      (*doc)["paths"]
            ["/apis/serving.kserve.io/v1beta1/namespaces/{namespace}/inferenceservices/{name}"]
            ["patch"];
  EXPECT_EQ(op["x-kubernetes-group-version-kind"]["kind"], "InferenceService");
  EXPECT_EQ(op["parameters"][0]["name"], "fieldValidation");
  EXPECT_FALSE(op.contains("requestBody"));
  auto core = openApiGroupVersion(kinds, "api/v1");
  ASSERT_TRUE(core.has_value());
  EXPECT_TRUE((*core)["paths"].contains("/api/v1/namespaces/{name}"));
  EXPECT_FALSE(openApiGroupVersion(kinds, "apis/nope/v1").has_value());
  json version = versionInfo("v1.32.0");
  EXPECT_EQ(version["major"], "1");
  EXPECT_EQ(version["minor"], "32");
  EXPECT_EQ(version["gitVersion"], "v1.32.0");
}

TEST(ErrorsTest, StatusBodies) {
  json nf = statusBody(notFoundError("serving.kserve.io", "inferenceservices", "x"));
  EXPECT_EQ(nf, json::parse(R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
    "message":"inferenceservices.serving.kserve.io \"x\" not found","reason":"NotFound","code":404,
    "details":{"name":"x","group":"serving.kserve.io","kind":"inferenceservices"}})"));
  json core = statusBody(notFoundError("", "namespaces", "foo"));
  EXPECT_EQ(core["message"], "namespaces \"foo\" not found");
  json invalid = statusBody(invalidObjectError("serving.kserve.io", "InferenceService", "bad1",
                                               {requiredField("spec.predictor")}));
  EXPECT_EQ(invalid["code"], 422);
  EXPECT_EQ(invalid["reason"], "Invalid");
  EXPECT_EQ(invalid["details"]["causes"],
            json::parse(R"([{"reason":"FieldValueRequired","message":"Required value",
                       "field":"spec.predictor"}])"));
  json two = statusBody(invalidObjectError("", "Namespace", "n",
                                           {requiredField("a"), invalidField("b", 3, "too big")}));
  EXPECT_EQ(two["message"],
            "Namespace \"n\" is invalid: [a: Required value, b: Invalid value: 3: too big]");
  EXPECT_EQ(statusBody(unsupportedPatchError())["code"], 415);
  EXPECT_EQ(statusBody(unsupportedPatchError())["reason"], "UnsupportedMediaType");
  EXPECT_EQ(statusBody(methodNotAllowedError())["code"], 405);
  EXPECT_EQ(statusBody(expiredError(7, 9))["message"], "too old resource version: 7 (9)");
  EXPECT_EQ(statusBody(absl::NotFoundError("plain"))["code"], 404);
  EXPECT_EQ(statusBody(absl::AbortedError("plain"))["reason"], "Conflict");
  EXPECT_EQ(statusBody(absl::InternalError("plain"))["code"], 500);
  EXPECT_FALSE(statusBody(absl::InternalError("plain")).contains("details"));
  auto causes = invalidCauses(invalidError({requiredField("spec.x")}));
  ASSERT_TRUE(causes.has_value());
  EXPECT_EQ((*causes)[0].field, "spec.x");
  EXPECT_FALSE(invalidCauses(absl::InvalidArgumentError("x")).has_value());
  EXPECT_EQ(successStatus({{"name", "x"}})["status"], "Success");
}

TEST(PatchTest, MergePatchIsRfc7386) {
  json target = json::parse(R"({"a":"b","c":{"d":"e","f":"g"},"l":[1,2]})");
  json patch = json::parse(R"({"a":"z","c":{"f":null},"l":[3],"n":{"x":null,"y":1}})");
  EXPECT_EQ(applyMergePatch(target, patch),
            json::parse(R"({"a":"z","c":{"d":"e"},"l":[3],"n":{"y":1}})"));
  EXPECT_EQ(applyMergePatch(target, json::array({1})), json::array({1}));
  EXPECT_EQ(*patchTypeOf("application/merge-patch+json; charset=utf-8"), PatchType::kMerge);
  EXPECT_EQ(*patchTypeOf("application/apply-patch+yaml"), PatchType::kApply);
  EXPECT_EQ(*patchTypeOf("application/strategic-merge-patch+json"), PatchType::kStrategicMerge);
  EXPECT_EQ(apiStatusOf(patchTypeOf("text/plain").status()).code, 415);
}

TEST(PatchTest, JsonPatchEdgeCases) {
  json doc = json::parse(R"({"a":{"b~c":1,"d/e":2},"arr":[1,2,3]})");
  auto r = applyJsonPatch(doc, json::parse(R"([
      {"op":"replace","path":"/a/b~0c","value":10},
      {"op":"remove","path":"/a/d~1e"},
      {"op":"add","path":"/arr/0","value":0},
      {"op":"move","from":"/arr/3","path":"/last"},
      {"op":"test","path":"/a","value":{"b~c":10}}])"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, json::parse(R"({"a":{"b~c":10},"arr":[0,1,2],"last":3})"));
  EXPECT_EQ(
      apiStatusOf(applyJsonPatch(doc, json::parse(R"([{"op":"remove","path":"/zz"}])")).status())
          .code,
      422);
  EXPECT_EQ(
      apiStatusOf(
          applyJsonPatch(doc, json::parse(R"([{"op":"add","path":"/arr/9","value":1}])")).status())
          .code,
      422);
  EXPECT_EQ(
      apiStatusOf(
          applyJsonPatch(doc, json::parse(R"([{"op":"move","from":"/a","path":"/a/x"}])")).status())
          .code,
      422);
  EXPECT_EQ(
      apiStatusOf(applyJsonPatch(doc, json::parse(R"([{"op":"bogus","path":"/a"}])")).status())
          .code,
      400);
  EXPECT_EQ(apiStatusOf(applyJsonPatch(doc, json::parse(R"({"op":"add"})")).status()).code, 400);
  EXPECT_EQ(apiStatusOf(
                applyJsonPatch(doc, json::parse(R"([{"op":"add","path":"a","value":1}])")).status())
                .code,
            400);
}

TEST(KubeconfigTest, RendersAContextWithToken) {
  std::string yaml = renderKubeconfig({"http://127.0.0.1:1234", "secret", "team", "rs"});
  auto docs = common::parseYamlDocuments(yaml, "kubeconfig");
  ASSERT_TRUE(docs.ok()) << docs.status();
  const json& c = docs->front();
  EXPECT_EQ(c["current-context"], "rs");
  EXPECT_EQ(c["clusters"][0]["cluster"]["server"], "http://127.0.0.1:1234");
  EXPECT_EQ(c["users"][0]["user"]["token"], "secret");
  EXPECT_EQ(c["contexts"][0]["context"]["namespace"], "team");
  auto no_token = common::parseYamlDocuments(renderKubeconfig({"http://h:1"}), "k");
  ASSERT_TRUE(no_token.ok());
  EXPECT_TRUE(no_token->front()["users"][0]["user"].is_object());
  EXPECT_TRUE(no_token->front()["users"][0]["user"].empty());
}

}  // namespace
}  // namespace kh::kubeapi
