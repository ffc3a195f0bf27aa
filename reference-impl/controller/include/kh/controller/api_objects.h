#pragma once
// The controller's side of the Kubernetes API objects: KServe's admission (its validating
// webhook's checks and messages) plugged into the API's kinds, and the objects the controller
// writes as KServe, Knative and the kubelet would: Revisions, Pods, PodAutoscalers and Events,
// with the labels KServe's and Knative's controllers put on them, so that what a client reads of
// refstack is what it would read of a cluster.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kh/common/time_source.h"
#include "kh/controller/kpa_reconciler.h"
#include "kh/controller/resources.h"
#include "kh/kubeapi/kinds.h"
#include "nlohmann/json.hpp"

namespace kh::controller {

/** Labels of every object of a revision (KServe's and Knative's names). */
inline constexpr const char* kIsvcLabel = "serving.kserve.io/inferenceservice";
inline constexpr const char* kComponentLabel = "component";
inline constexpr const char* kRevisionLabel = "serving.knative.dev/revision";
inline constexpr const char* kConfigurationLabel = "serving.knative.dev/configuration";
inline constexpr const char* kServiceLabel = "serving.knative.dev/service";
/** KServe's label on the objects of an InferenceGraph's router revision. */
inline constexpr const char* kGraphLabel = "serving.kserve.io/inferencegraph";
/** The component of an InferenceGraph's router revision (named {graph}-0000N). */
inline constexpr const char* kGraphComponent = "graph";
/**
 * The keys the controller gives what it reconciles, in its queue and its events: "ns/name" for
 * an InferenceService, "graph:ns/name" for an InferenceGraph.
 */
inline constexpr std::string_view kGraphKeyPrefix = "graph:";
struct OwnerKey {
  bool graph = false;
  std::string namespace_name;
  std::string name;
  const char* kind() const { return graph ? "InferenceGraph" : "InferenceService"; }
  const char* apiVersion() const { return graph ? "serving.kserve.io/v1alpha1" : "serving.kserve.io/v1beta1"; }
};
OwnerKey parseOwnerKey(std::string_view key);
std::string graphKey(std::string_view ns, std::string_view name);
/** Marks the ClusterServingRuntimes refstack ships (recreated when deleted). */
inline constexpr const char* kBuiltInAnnotation = "serving.kserve-harness.io/built-in";

/**
 * Sets KServe's admission on the kinds refstack serves: InferenceServices and (Cluster)
 * ServingRuntimes are parsed and validated as KServe's webhook does, and rejected as Invalid with
 * its message; InferenceGraphs are loaded (kh::graph) and checked as KServe's webhook does.
 */
void installAdmission(std::vector<kubeapi::KindSpec>& kinds);

/** An InferenceService, ServingRuntime or ClusterServingRuntime object, parsed. */
absl::StatusOr<Resource> resourceFromObject(const nlohmann::json& object);

/** How a revision's pods are started; fixed when the revision is made. */
struct RevisionLaunch {
  std::string component;  // predictor, transformer, explainer
  std::vector<std::string> argv;
  std::map<std::string, std::string> env;
  std::string readiness_path = "/v2/health/ready";
};

/** Everything the controller keeps of a revision, as its Revision object carries it. */
struct RevisionRecord {
  std::string name;
  std::string namespace_name;
  std::string isvc;
  /** The component spec the revision was made from (a new spec makes a new revision). */
  nlohmann::json spec;
  RevisionLaunch launch;
  int container_concurrency = 0;
  int64_t timeout_seconds = 300;
  /** The number of the revision's last pod (pods are named {revision}-pod-{n}). */
  int pod_serial = 0;
  bool ready = false;
};

/** The serving.knative.dev/v1 Revision object of a revision (its launch in status.refstack). */
nlohmann::json revisionObject(const RevisionRecord& revision);
/** Reads a Revision object back (after a restart). @return InvalidArgument naming the field. */
absl::StatusOr<RevisionRecord> revisionRecordFromObject(const nlohmann::json& object);

/** A pod's life as the kubelet would report it. */
struct PodRecord {
  std::string name;
  std::string namespace_name;
  std::string isvc;
  std::string component;
  std::string revision;
  std::string revision_uid;  // for the ownerReference ("" when not known)
  /** Starting, Ready, BackOff, Stopping (pods::podPhaseName). */
  std::string phase;
  int restarts = 0;
  std::string message;
  std::string last_exit;
  bool has_queue_proxy = false;
  common::SystemTime created{};
  common::SystemTime phase_since{};
};

/** The core v1 Pod object of a pod. */
nlohmann::json podObject(const PodRecord& pod);

/**
 * The autoscaling.internal.knative.dev/v1alpha1 PodAutoscaler object of a revision's KPA.
 * `now_system`/`now_monotonic` convert the view's monotonic times to timestamps.
 */
nlohmann::json podAutoscalerObject(const PodAutoscalerView& view, common::SystemTime now_system,
                                   common::MonotonicTime now_monotonic);

/** A core v1 Event about an object, as an EventRecorder writes it. */
struct EventRecord {
  std::string name;  // unique
  std::string namespace_name;
  std::string involved_kind;  // InferenceService, Pod, Revision
  std::string involved_api_version;
  std::string involved_name;
  std::string involved_uid;
  std::string reason;
  std::string message;
  std::string type = "Normal";  // or Warning
  std::string component = "refstack";
  common::SystemTime time{};
};
nlohmann::json eventObject(const EventRecord& event);

}  // namespace kh::controller
