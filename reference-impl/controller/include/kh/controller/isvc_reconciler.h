#pragma once
// The InferenceService reconciler, as KServe's and Knative's controllers together: it watches
// InferenceServices and (Cluster)ServingRuntimes in the Kubernetes API's object store, turns each
// InferenceService into revisions (one per spec change of a component, a Revision object each),
// runs the pods of every revision that carries or may carry traffic (as many as the KPA decides
// for the autoscaled predictor), publishes the ingress's routes and the activator's endpoints,
// and writes the InferenceService's status, the Pods and the PodAutoscalers back to the store.
//
// InferenceGraphs too: each runs as a one-component service whose pods are its router.
//
// One thread, fed by a queue of "namespace/name" keys ("graph:namespace/name" for graphs). Nothing slow runs under its lock: storage
// downloads happen in StorageResolver, pods stop (drain) on threads of their own, routes are
// published after the lock is released.

#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "kh/activator/activator.h"
#include "kh/common/time_source.h"
#include "kh/controller/api_objects.h"
#include "kh/controller/kpa_reconciler.h"
#include "kh/controller/resources.h"
#include "kh/controller/rollout.h"
#include "kh/controller/status.h"
#include "kh/controller/storage.h"
#include "kh/events/event_log.h"
#include "kh/ingress/snapshot.h"
#include "kh/kubeapi/store.h"
#include "kh/pods/pod_manager.h"

namespace prometheus {
class Registry;
class Counter;
class Histogram;
class Gauge;
template <typename T>
class Family;
}  // namespace prometheus

namespace kh::controller {

/** Where Knative keeps its autoscaler settings; its data overlays ReconcilerOptions::autoscaler. */
inline constexpr const char* kAutoscalerConfigNamespace = "knative-serving";
inline constexpr const char* kAutoscalerConfigName = "config-autoscaler";

struct ReconcilerOptions {
  std::string domain = "example.com";
  /** Where pods reach the ingress (KH_INGRESS_ADDRESS), host part. */
  std::string address = "127.0.0.1";
  /** Image (without tag) -> command; the container's args follow. */
  std::map<std::string, std::vector<std::string>> images;
  /** The queue-proxy put in front of every pod (empty: none, and no autoscaling). */
  std::vector<std::string> queue_proxy;
  /** Knative's config-autoscaler keys (the knative-serving/config-autoscaler ConfigMap wins). */
  std::map<std::string, std::string> autoscaler;
  std::chrono::milliseconds revision_timeout{300'000};
  std::chrono::milliseconds pod_grace_period{10'000};
  std::chrono::milliseconds drain_quiet_period{1'000};
  size_t activator_queue_limit = 1000;
  /**
   * Seeds each pod's own draws (KH_RANDOM_SEED: this plus the pod's serial; a graph router's
   * Splitter), so that a run with the same seed draws the same.
   */
  uint64_t random_seed = 1;
  /** Pod logs (logs/), pid and start-up files (pods/). */
  std::filesystem::path state_dir = "/tmp/refstack";
  /** The ClusterServingRuntimes shipped with the stack (recreated when deleted). */
  std::vector<ServingRuntime> builtin_runtimes;
};

class InferenceServiceReconciler final : public ScaleTarget {
 public:
  /** What it works with; each must outlive it. */
  struct Deps {
    kubeapi::ObjectStore* store = nullptr;
    activator::Activator* activator = nullptr;
    KpaReconciler* kpa = nullptr;
    ingress::RoutingState* routing = nullptr;
    StorageResolver* storage = nullptr;
    events::EventSink* events = nullptr;
    const common::TimeSource* time = nullptr;
    prometheus::Registry* metrics = nullptr;
    /** The ingress's HTTP port, once known (pods reach other services through it). */
    std::function<uint16_t()> ingress_port;
  };

  InferenceServiceReconciler(Deps deps, ReconcilerOptions options);
  /** Stops the thread; pods are the pod manager's to stop. */
  ~InferenceServiceReconciler() override;
  InferenceServiceReconciler(const InferenceServiceReconciler&) = delete;
  InferenceServiceReconciler& operator=(const InferenceServiceReconciler&) = delete;

  /** The pod manager (made after the reconciler, since its events come to onPodEvent()). */
  void setPodManager(pods::PodManager* pods) { pods_ = pods; }

  /**
   * Takes over what the store holds (after a restore: revisions come back from their Revision
   * objects), puts the built-in runtimes in, subscribes to the store and starts reconciling
   * everything. @return an error when a stored Revision cannot be read.
   */
  absl::Status start();
  /** Stops reconciling and waits for pods being stopped (idempotent). */
  void stop();

  /** The pod manager's events (called with its lock held: bookkeeping and enqueue only). */
  void onPodEvent(const pods::PodEvent& event);

  /** A storage download ended: every InferenceService is looked at again. */
  void storageChanged();

  // ScaleTarget: the KPA decided a revision's replicas.
  void setReplicas(const std::string& revision, int32_t replicas) override;

  /** The KPA's PodAutoscaler status of a revision changed: its object is written. */
  void onPodAutoscaler(const PodAutoscalerView& view);

 private:
  struct Entry;
  void enqueue(const std::string& key);
  /** The "ns/name" of the service a revision belongs to, or empty; mu_ held. */
  std::string serviceOfRevisionLocked(const std::string& revision) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void loop();
  void reconcile(const std::string& key);
  /** An InferenceGraph's router as a service; `waiting` says which service it waits for. */
  absl::StatusOr<Resource> graphResource(const nlohmann::json& object, std::string& waiting) const;
  void deleted(const std::string& key);
  void publishRoutes();
  void startPod(const std::string& key, const std::string& revision);
  void stopPods(const std::vector<std::string>& names);
  void stopPodsLater(std::vector<std::string> names);
  void writeRevision(const Entry& e, const std::string& revision);
  void writePod(const std::string& pod);
  void ensureBuiltinRuntime(const std::string& name);
  absl::StatusOr<std::vector<std::string>> commandFor(const std::string& image) const;
  std::string startupFileOf(const std::string& pod) const;

  Deps deps_;
  ReconcilerOptions options_;
  pods::PodManager* pods_ = nullptr;
  prometheus::Counter* reconciles_ = nullptr;
  prometheus::Histogram* reconcile_seconds_ = nullptr;
  prometheus::Family<prometheus::Counter>* pod_restarts_ = nullptr;

  mutable std::mutex mu_;  // the bookkeeping below
  std::map<std::string, std::unique_ptr<Entry>> services_ ABSL_GUARDED_BY(mu_);  // "ns/name" -> state
  std::map<std::string, std::string> revision_of_pod_ ABSL_GUARDED_BY(mu_);  // pod -> revision
  std::map<std::string, std::string> service_of_revision_ ABSL_GUARDED_BY(mu_);  // revision -> "ns/name"
  std::map<std::string, activator::Endpoint> ready_pods_ ABSL_GUARDED_BY(mu_);
  struct PodInfo {
    PodRecord record;
  };
  std::map<std::string, PodInfo> pod_info_ ABSL_GUARDED_BY(mu_);  // pod -> what its object shows
  std::map<std::string, activator::RevisionSettings> autoscaled_;
  std::map<std::string, int> last_reachable_;

  std::mutex publish_mu_;  // one publication at a time, in order
  std::set<std::string> published_activator_revisions_ ABSL_GUARDED_BY(publish_mu_);

  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::deque<std::string> queue_ ABSL_GUARDED_BY(queue_mu_);
  bool stopping_ ABSL_GUARDED_BY(queue_mu_) = false;
  std::vector<std::thread> stoppers_ ABSL_GUARDED_BY(queue_mu_);
  std::thread thread_;
  std::vector<kubeapi::WatchHandle> subscriptions_;
  // What the InferenceService subscription last saw of each object (generation, labels,
  // annotations), to tell a client's change from a status write.
  std::mutex seen_mu_;
  std::map<std::string, std::string> seen_;
  // "graph:ns/name" of every InferenceGraph -> the InferenceServices its steps name (a change of
  // one of those, its status included, re-reconciles the graph).
  std::map<std::string, std::set<std::string>> graph_services_;
  uint64_t pod_serial_ ABSL_GUARDED_BY(mu_) = 0;  // every pod started, for its seed
};

}  // namespace kh::controller
