#pragma once
// The reference stack's events, typed: one struct per kind of event and one JSON codec. refstack
// emits them (its event log, GET /events and the watch stream), the harness's targets return
// them (the embedded stack's own, the kube target's made from PodAutoscaler and Pod changes) and
// the scenario runner asserts on them. The JSON form is the wire contract of GET /events: an
// object with "seq", "time" (unix seconds), "type" and the fields of the struct, named as
// toJson() writes them.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace kh::events {

/**
 * A resource was applied (created or changed) or deleted. `kind` is the Kubernetes kind
 * (InferenceService, ServingRuntime, ...); `namespace_name` is empty for cluster-scoped kinds.
 */
struct ResourceApplied {
  std::string kind;
  std::string namespace_name;
  std::string name;
};
struct ResourceDeleted {
  std::string kind;
  std::string namespace_name;
  std::string name;
};

/** An InferenceService came back from the state directory when refstack started. */
struct ResourceRestored {
  std::string isvc;  // "namespace/name"
};

/** Pods left running by an earlier refstack that was killed were ended at start-up. */
struct OrphansEnded {
  int count = 0;
};

/** A component's spec changed and made a new revision. */
struct RevisionCreated {
  std::string isvc;  // "namespace/name"
  std::string revision;
  std::string component;  // predictor, transformer, explainer
};

/** A pod changed phase (Starting, Ready, BackOff, Stopping, Stopped, Failed). */
struct PodPhaseChanged {
  std::string pod;
  std::string revision;
  std::string phase;
  int restarts = 0;
  std::string message;
};

struct TrafficShare {
  std::string revision;
  int64_t percent = 0;
  bool operator==(const TrafficShare&) const = default;
};

/** An InferenceService's status changed: its Ready condition and the predictor's traffic. */
struct StatusChanged {
  std::string isvc;  // "namespace/name"
  bool ready = false;
  std::vector<TrafficShare> traffic;
};

/** What the ingress can reach changed: ready pods of each revision that takes traffic. */
struct RoutesChanged {
  std::map<std::string, int> ready_pods;  // revision -> ready pods
};

/**
 * The autoscaler decided a revision's scale (or the activator moved in or out of its path). The
 * kube target fills what a PodAutoscaler shows (desired, actual, active) and leaves the rest.
 */
struct ScaleDecided {
  std::string isvc;  // "namespace/name"
  std::string revision;
  int desired = 0;
  int actual = 0;
  int ready = 0;
  bool panic = false;
  bool activator_in_path = false;
  int excess_burst_capacity = 0;
  double stable = 0;  // the stable-window average of the scaling metric
  std::optional<bool> active;  // the PodAutoscaler's Active condition, when known
  std::string reason;
};

/**
 * The first request that found a revision at zero pods got its first response byte. Each step is
 * milliseconds from the request's arrival at the activator (refstack) or from its send (a
 * cluster, where the harness sees Kubernetes' objects, not the activator); absent when it was not
 * observed. On a cluster each step is when the watch event showing it arrived.
 */
struct ColdStartBreakdown {
  std::optional<double> buffered_ms;         // the activator poked the autoscaler
  std::optional<double> scale_decided_ms;    // cluster: the PodAutoscaler's desiredScale left 0
  std::optional<double> pod_created_ms;      // cluster: the Pod object was created
  std::optional<double> pod_scheduled_ms;    // cluster: PodScheduled (bound to a node)
  std::optional<double> pod_spawned_ms;      // the pod's processes were started
  std::optional<double> process_started_ms;  // the model server's main() began (cluster: kserve-container running)
  std::optional<double> model_loaded_ms;     // its model was loaded
  std::optional<double> ready_ms;            // the pod reported ready (cluster: the Pod's Ready condition)
  std::optional<double> forwarded_ms;        // the request left for the pod
  std::optional<double> first_byte_ms;       // the pod's first response byte
};
struct ColdStart {
  std::string isvc;  // "namespace/name"
  std::string revision;
  std::string pod;
  double total_ms = 0;
  ColdStartBreakdown breakdown;
};

/** Something went wrong that no request reports (e.g. the state file cannot be written). */
struct StackError {
  std::string message;
};

using Payload = std::variant<ResourceApplied, ResourceDeleted, ResourceRestored, OrphansEnded,
                             RevisionCreated, PodPhaseChanged, StatusChanged, RoutesChanged,
                             ScaleDecided, ColdStart, StackError>;

/** One event of the log. */
struct Event {
  int64_t seq = 0;   // from 1, in the order of the log
  double time = 0;   // unix seconds when it was logged
  Payload payload;

  /** The payload as `T`, or nullptr when it is another kind. */
  template <typename T>
  const T* as() const {
    return std::get_if<T>(&payload);
  }
};

/** The "type" of a payload in JSON: applied, deleted, restored, orphans, revision, pod, status, routes, scale, coldstart, error. */
std::string_view typeName(const Payload& payload);

/** The InferenceService ("namespace/name") an event concerns, or "" when none. */
std::string isvcOf(const Payload& payload);

/** Encodes an event as the GET /events JSON object. */
nlohmann::json toJson(const Event& event);

/**
 * Decodes an event. @return InvalidArgument naming the field when the object is not an event of
 * a known type (unknown fields are ignored, missing optional ones left unset).
 */
absl::StatusOr<Event> fromJson(const nlohmann::json& object);

}  // namespace kh::events
