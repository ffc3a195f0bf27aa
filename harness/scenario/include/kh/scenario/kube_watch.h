#pragma once
// What the kube target learns from watching a cluster, kept pure (no clock, no I/O) so that it is
// tested on recorded watch streams:
//  - JsonStreamSplitter cuts kubectl's watch output into documents (`kubectl get -w -o json
//    --output-watch-events` prints one compact object per line, about 16 KB for a Pod with its
//    managedFields; without --output-watch-events the objects come indented over many lines);
//  - KubeColdStarts finds the requests that met an InferenceService with no Ready pod, and breaks
//    each such cold start down by when the watch events of the Pod and the Knative PodAutoscaler
//    that ended it arrived. Arrival times are our own clock's reading when a line came, which
//    resolves far finer than the objects' own one-second timestamps (metav1.Time), the
//    resolution kperf's breakdown is limited to.

#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "kh/events/events.h"
#include "nlohmann/json.hpp"

namespace kh::scenario {

/** Cuts a stream of concatenated JSON objects into one string per top-level object. */
class JsonStreamSplitter {
 public:
  /** Larger than any Kubernetes object (etcd keeps at most 1.5 MiB): dropped, not held forever. */
  static constexpr size_t kMaxDocumentBytes = 16u << 20;
  /** Takes the next bytes; returns the objects they complete, in order. */
  std::vector<std::string> feed(std::string_view bytes);
  /** Bytes held of an object not yet complete. */
  size_t pending() const { return pending_.size(); }

 private:
  std::string pending_;
  int depth_ = 0;
  bool in_string_ = false;
  bool escaped_ = false;
};

/** One watch event, as it arrived. */
struct WatchArrival {
  double arrival = 0;  // unix seconds when the harness read it
  std::string type;    // ADDED, MODIFIED, DELETED (BOOKMARK and ERROR carry no object state)
  nlohmann::json object;
};

/** A request the harness sent to an InferenceService, on the unix clock. */
struct SentRequest {
  double sent = 0;        // its intended send time
  double first_byte = 0;  // its first response byte, or its completion where that is all there is
  bool answered = false;  // some response came (any status)
};

class KubeColdStarts {
 public:
  /**
   * From `since` on, the watches of namespace `ns` see every Pod and PodAutoscaler change (a
   * watch lists what exists when it starts); requests sent before that are not judged.
   */
  void watching(const std::string& ns, double since);
  /** A Pod watch event (labels serving.kserve.io/inferenceservice and serving.knative.dev/revision). */
  void addPod(const WatchArrival& pod);
  /** A PodAutoscaler watch event (autoscaling.internal.knative.dev/v1alpha1). */
  void addPodAutoscaler(const WatchArrival& pa);
  /** Requests a load sent to `ns`/`isvc` (any order). */
  void addRequests(const std::string& ns, const std::string& isvc, const std::vector<SentRequest>& requests);
  /**
   * The cold starts complete so far, each returned once: a request that found no Ready pod,
   * answered, whose InferenceService then got a pod that became Ready. Only the first such
   * request per pod counts, as on refstack. The event's time is the request's first byte.
   */
  std::vector<events::Event> take();
  /** Drops the requests still waiting for their pod (a new scenario starts). */
  void forgetRequests() { pending_.clear(); }

 private:
  struct PodTimeline {
    std::string ns, isvc, revision, name;
    std::optional<double> created, scheduled, started, ready;
    std::vector<std::pair<double, bool>> serving;  // (arrival, Ready and not terminating)
    bool claimed = false;  // a cold start was reported for it
    bool servingAt(double t) const;
  };
  struct PendingRequest {
    std::string ns, isvc;
    SentRequest request;
  };
  std::map<std::string, double> watching_since_;  // namespace -> since
  std::map<std::string, PodTimeline> pods_;       // by uid (name when there is none)
  // namespace/revision -> (arrival, desiredScale) of each PodAutoscaler change
  std::map<std::string, std::vector<std::pair<double, int>>> scale_;
  std::vector<PendingRequest> pending_;
};

}  // namespace kh::scenario
