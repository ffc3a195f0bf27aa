#pragma once
// InferenceGraph (serving.kserve.io/v1alpha1), as KServe's API types define it
// (pkg/apis/serving/v1alpha1/inference_graph.go) and its webhook validates it
// (inference_graph_validation.go, whose messages are kept word for word).

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "kh/graph/gjson.h"
#include "nlohmann/json.hpp"

namespace kh::graph {

/** The root node every graph needs (GraphRootNodeName). */
inline constexpr const char* kRootNode = "root";

enum class RouterType { kSequence, kSplitter, kEnsemble, kSwitch };
enum class Dependency { kSoft, kHard };

std::string_view routerTypeName(RouterType type);

struct Step {
  std::string name;  // optional (Ensemble output falls back to the step's index)
  // The target: exactly one of the three (the controller fills service_url from service_name).
  std::string node_name;
  std::string service_name;
  std::string service_url;
  /** "$request" (the node's input), "$response" (the previous step's response) or empty. */
  std::string data;
  /** {"predictions": X} becomes {"instances": X} before the step is called. */
  bool map_predictions_to_instances = false;
  std::optional<int64_t> weight;  // Splitter
  std::string condition;          // GJSON (Sequence: on the previous response; Switch: on the input)
  /** Compiled from `condition` by compileConditions(); empty when there is none. */
  std::optional<GjsonPath> compiled_condition;
  Dependency dependency = Dependency::kSoft;
};

struct Node {
  RouterType type = RouterType::kSequence;
  std::vector<Step> steps;
};

/** spec.routerTimeouts, seconds. */
struct RouterTimeouts {
  std::optional<int64_t> server_read;
  std::optional<int64_t> server_write;
  std::optional<int64_t> server_idle;
  /** Per step call; none by default (KServe's router uses Go's default client, no timeout). */
  std::optional<int64_t> service_client;
};

/** KServe's router defaults (constants.RouterTimeouts*). */
inline constexpr int64_t kDefaultServerReadSeconds = 60;
inline constexpr int64_t kDefaultServerWriteSeconds = 60;
inline constexpr int64_t kDefaultServerIdleSeconds = 180;

struct GraphSpec {
  std::map<std::string, Node> nodes;  // sorted, so validation reports the same node every time
  RouterTimeouts router_timeouts;
  std::optional<int64_t> timeout_seconds;  // the revision's timeoutSeconds
  std::optional<int64_t> min_replicas;     // unset: 1 (a graph does not scale to zero unless 0)
  int64_t max_replicas = 0;                // 0: no limit
  std::optional<int64_t> scale_target;
  std::optional<std::string> scale_metric;
};

/**
 * Reads an InferenceGraph's `spec`. Types and enums the CRD's schema checks (routerType,
 * dependency, integer fields) are InvalidArgument naming the field, e.g.
 * "spec.nodes.root.steps[0].weight: must be an integer".
 */
absl::StatusOr<GraphSpec> parseGraphSpec(const nlohmann::json& spec);

/**
 * KServe's webhook checks, in its order and with its messages: the name, the root node, unique
 * step names per node, exactly one target per step, Splitter weights present and summing to 100.
 * `resolved`: the spec the controller gives the router, where a serviceName step also has the
 * serviceUrl it resolved to (KServe's controller keeps both); that pair is one target.
 */
absl::Status validateGraph(std::string_view name, const GraphSpec& spec, bool resolved = false);

/**
 * Compiles every step's condition. A condition outside our GJSON subset is InvalidArgument
 * "InferenceGraph[name] Node[n] Step[i] condition: gjson path '...': <problem> at offset N".
 * KServe's webhook does not look at conditions (gjson never fails, it just matches nothing); we
 * refuse them at apply time so that no request meets a condition we would evaluate differently.
 */
absl::Status compileConditions(std::string_view name, GraphSpec& spec);

/** parseGraphSpec + validateGraph + compileConditions. */
absl::StatusOr<GraphSpec> loadGraph(std::string_view name, const nlohmann::json& spec, bool resolved = false);

}  // namespace kh::graph
