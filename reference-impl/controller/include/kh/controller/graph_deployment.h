#pragma once
// An InferenceGraph as refstack runs it, the way KServe's InferenceGraph controller does in
// Knative mode (pkg/controller/v1alpha1/inferencegraph/controller.go, knative_reconciler.go):
// every step's serviceName resolved to its InferenceService's predict URL
// (utils.GetPredictorEndpoint), the spec with those URLs given to the router as --graph-json,
// and the graph's minReplicas/maxReplicas/scaleTarget/scaleMetric/timeout as its revision's
// (knutils.SetAutoScalingAnnotations). The router's revision is named {graph}-0000N, as Knative
// names the revisions of the graph's Knative Service.

#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kh/common/time_source.h"
#include "kh/controller/resources.h"
#include "kh/controller/status.h"
#include "nlohmann/json.hpp"

namespace kh::controller {

/** The router's settings KServe keeps in the inferenceservice-config ConfigMap ("router" key). */
struct GraphRouterConfig {
  std::string image = "kserve/router";
  /** headers.propagate: regexps of the headers the router forwards (PROPAGATE_HEADERS). */
  std::vector<std::string> propagate_headers;
  /** How long the router answers /readyz 503 after SIGTERM before it stops (KServe: 30 s). */
  int drain_seconds = 1;
};

/** Where KServe keeps it. */
inline constexpr const char* kKServeConfigNamespace = "kserve";
inline constexpr const char* kKServeConfigName = "inferenceservice-config";

/** Reads data.router of inferenceservice-config (a JSON string); absent keys keep `defaults`. */
GraphRouterConfig routerConfigFrom(const nlohmann::json* configmap, GraphRouterConfig defaults);

/** A namespaced object of the API (kind, namespace, name); nullptr when there is none. */
using ObjectLookup =
    std::function<std::shared_ptr<const nlohmann::json>(const std::string&, const std::string&, const std::string&)>;

struct GraphDeployment {
  /** The router as a one-container service: revisions, pods and routes are made from it. */
  InferenceService service;
  /**
   * Why no revision can be made now: a service the graph calls is missing or not Ready (KServe
   * requeues and leaves the graph's Knative Service as it was). Empty when ready to deploy.
   */
  std::string waiting;
};

/** The InferenceServices an InferenceGraph's steps name (serviceName), in its own namespace. */
std::set<std::string> graphServiceNames(const nlohmann::json& graph_object);

/**
 * @param graph_object an InferenceGraph object (admission validated it).
 * @return InvalidArgument for a spec that does not load (an internal write could store one).
 */
absl::StatusOr<GraphDeployment> graphDeployment(const nlohmann::json& graph_object, const ObjectLookup& lookup,
                                                const GraphRouterConfig& config);

/**
 * status of an InferenceGraph as KServe writes it in Knative mode: the Knative Service's
 * conditions (ConfigurationsReady, RoutesReady, Ready) plus Stopped, and url once Ready.
 * `waiting`, when no revision is ready yet, is the Ready condition's message.
 */
nlohmann::json buildGraphStatus(const std::string& name, const std::string& ns, const std::string& domain,
                                const ComponentState& router, const std::string& waiting, common::SystemTime now);

}  // namespace kh::controller
