// KServe's InferenceGraph validation (inference_graph_validation.go), message for message, and
// the schema and condition checks of our own.

#include "kh/graph/spec.h"

#include <gtest/gtest.h>

namespace kh::graph {
namespace {

using nlohmann::json;

std::string loadError(const std::string& name, const std::string& spec) {
  auto g = loadGraph(name, json::parse(spec));
  if (g.ok()) return "ok";
  return std::string(g.status().message());
}

TEST(GraphSpec, ParsesEveryField) {
  auto g = loadGraph("model-chainer", json::parse(R"({
    "nodes": {
      "root": {"routerType": "Sequence", "steps": [
        {"name": "first", "serviceName": "sklearn", "dependency": "Hard"},
        {"nodeName": "split", "data": "$response", "mapPredictionsToInstances": true,
         "condition": "predictions"}]},
      "split": {"routerType": "Splitter", "steps": [
        {"serviceUrl": "http://a/v1/models/a:predict", "weight": 30},
        {"serviceUrl": "http://b/v1/models/b:predict", "weight": 70}]}
    },
    "routerTimeouts": {"serverRead": 5, "serverWrite": 6, "serverIdle": 7, "serviceClient": 8},
    "timeout": 30, "minReplicas": 0, "maxReplicas": 3, "scaleTarget": 10, "scaleMetric": "rps"
  })"));
  ASSERT_TRUE(g.ok()) << g.status();
  const Node& root = g->nodes.at("root");
  EXPECT_EQ(root.type, RouterType::kSequence);
  ASSERT_EQ(root.steps.size(), 2u);
  EXPECT_EQ(root.steps[0].service_name, "sklearn");
  EXPECT_EQ(root.steps[0].dependency, Dependency::kHard);
  EXPECT_EQ(root.steps[1].dependency, Dependency::kSoft);
  EXPECT_EQ(root.steps[1].node_name, "split");
  EXPECT_EQ(root.steps[1].data, "$response");
  EXPECT_TRUE(root.steps[1].map_predictions_to_instances);
  EXPECT_TRUE(root.steps[1].compiled_condition.has_value());
  EXPECT_EQ(g->nodes.at("split").steps[1].weight, 70);
  EXPECT_EQ(g->router_timeouts.server_read, 5);
  EXPECT_EQ(g->router_timeouts.server_write, 6);
  EXPECT_EQ(g->router_timeouts.server_idle, 7);
  EXPECT_EQ(g->router_timeouts.service_client, 8);
  EXPECT_EQ(g->timeout_seconds, 30);
  EXPECT_EQ(g->min_replicas, 0);
  EXPECT_EQ(g->max_replicas, 3);
  EXPECT_EQ(g->scale_target, 10);
  EXPECT_EQ(g->scale_metric, "rps");
}

TEST(GraphSpec, KServeWebhookMessages) {
  EXPECT_EQ(loadError("Bad_Name", R"({"nodes":{"root":{"routerType":"Sequence","steps":[{"serviceName":"a"}]}}})"),
            "The InferenceGraph \"Bad_Name\" is invalid: a InferenceGraph name must consist of lower case alphanumeric "
            "characters or '-', and must start with alphabetical character. (e.g. \"my-name\" or \"abc-123\", regex "
            "used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')");
  EXPECT_EQ(loadError("g", R"({"nodes":{"start":{"routerType":"Sequence","steps":[{"serviceName":"a"}]}}})"),
            "root node not found, InferenceGraph needs a node with name 'root' as the root node of the graph");
  EXPECT_EQ(loadError("g", R"({"nodes":{"root":{"routerType":"Sequence","steps":[
                {"name":"s","serviceName":"a"},{"name":"s","serviceName":"b"}]}}})"),
            "Node \"root\" of InferenceGraph \"g\" contains more than one step with name \"s\"");
  EXPECT_EQ(loadError("g", R"({"nodes":{"root":{"routerType":"Sequence","steps":[
                {"serviceName":"a"},{"name":"empty"}]}}})"),
            "Step 1 (\"empty\") in node \"root\" of InferenceGraph \"g\" does not specify an inference target");
  EXPECT_EQ(loadError("g", R"({"nodes":{"root":{"routerType":"Sequence","steps":[
                {"name":"two","serviceName":"a","serviceUrl":"http://b"}]}}})"),
            "Step 0 (\"two\") in node \"root\" of InferenceGraph \"g\" specifies more than one of nodeName, "
            "serviceName, serviceUrl");
  // The router's spec: KServe's controller fills serviceUrl beside serviceName; that is one target.
  const auto resolved = nlohmann::json::parse(R"({"nodes":{"root":{"routerType":"Sequence","steps":[
                {"name":"two","serviceName":"a","serviceUrl":"http://a.default/v1/models/a:predict"}]}}})");
  EXPECT_TRUE(loadGraph("g", resolved, /*resolved=*/true).ok());
  const auto node_and_url = nlohmann::json::parse(R"({"nodes":{"root":{"routerType":"Sequence","steps":[
                {"nodeName":"root","serviceUrl":"http://b"}]}}})");
  EXPECT_FALSE(loadGraph("g", node_and_url, /*resolved=*/true).ok());
  EXPECT_EQ(loadError("g", R"({"nodes":{"root":{"routerType":"Splitter","steps":[
                {"serviceName":"a","weight":50},{"serviceName":"b"}]}}})"),
            "InferenceGraph[g] Node[root] Route[b] missing the 'Weight'");
  EXPECT_EQ(loadError("g", R"({"nodes":{"root":{"routerType":"Splitter","steps":[
                {"serviceName":"a","weight":50},{"serviceName":"b","weight":49}]}}})"),
            "InferenceGraph[g] Node[root] splitter node: the sum of traffic weights for all routing targets should be "
            "100");
  // Unnamed steps may repeat; names need not be unique across nodes.
  EXPECT_EQ(loadError("g", R"({"nodes":{"root":{"routerType":"Sequence","steps":[
                {"serviceName":"a"},{"serviceName":"a"},{"name":"x","nodeName":"n"}]},
                "n":{"routerType":"Ensemble","steps":[{"name":"x","serviceName":"b"}]}}})"),
            "ok");
}

TEST(GraphSpec, ChecksRunInKServesOrder) {
  // A bad name wins over a missing root, which wins over duplicate names, ...
  EXPECT_EQ(loadError("-g", R"({"nodes":{"x":{"routerType":"Splitter","steps":[{"name":"s"},{"name":"s"}]}}})")
                .rfind("The InferenceGraph \"-g\" is invalid", 0),
            0u);
  EXPECT_EQ(loadError("g", R"({"nodes":{"root":{"routerType":"Splitter","steps":[{"name":"s"},{"name":"s"}]}}})"),
            "Node \"root\" of InferenceGraph \"g\" contains more than one step with name \"s\"");
  EXPECT_EQ(loadError("g", R"({"nodes":{"root":{"routerType":"Splitter","steps":[{"name":"s"}]}}})"),
            "Step 0 (\"s\") in node \"root\" of InferenceGraph \"g\" does not specify an inference target");
}

TEST(GraphSpec, SchemaErrorsNameTheField) {
  EXPECT_EQ(loadError("g", R"({})"), "spec.nodes: Required value");
  EXPECT_EQ(loadError("g", R"({"nodes":{"root":{"steps":[]}}})"), "spec.nodes.root.routerType: Required value");
  EXPECT_EQ(loadError("g", R"({"nodes":{"root":{"routerType":"Parallel"}}})"),
            "spec.nodes.root.routerType: Unsupported value: \"Parallel\": supported values: \"Sequence\", "
            "\"Splitter\", \"Ensemble\", \"Switch\"");
  EXPECT_EQ(loadError("g", R"({"nodes":{"root":{"routerType":"Splitter","steps":[{"serviceName":"a","weight":"50"}]}}})"),
            "spec.nodes.root.steps[0].weight: must be an integer");
  EXPECT_EQ(loadError("g", R"({"nodes":{"root":{"routerType":"Sequence","steps":[{"serviceName":"a","dependency":"Firm"}]}}})"),
            "spec.nodes.root.steps[0].dependency: Unsupported value: \"Firm\": supported values: \"Soft\", \"Hard\"");
  EXPECT_EQ(loadError("g", R"({"nodes":{"root":{"routerType":"Sequence","steps":[]}},"routerTimeouts":{"serviceClient":0}})"),
            "spec.routerTimeouts.serviceClient: must be positive (seconds)");
  EXPECT_EQ(loadError("g", R"({"nodes":{"root":{"routerType":"Sequence","steps":[]}},"minReplicas":-1})"),
            "spec.minReplicas: must be greater than or equal to 0");
}

TEST(GraphSpec, ConditionsOutsideTheSubsetAreRefusedAtApplyTime) {
  EXPECT_EQ(loadError("g", R"j({"nodes":{"root":{"routerType":"Switch","steps":[
                {"serviceName":"a","condition":"[@this].#(decision_picker==ERROR)"},
                {"serviceName":"b","condition":"instances|@reverse"}]}}})j"),
            "InferenceGraph[g] Node[root] Step[1] condition: gjson path 'instances|@reverse': unexpected '|' at "
            "offset 9");
}

}  // namespace
}  // namespace kh::graph
