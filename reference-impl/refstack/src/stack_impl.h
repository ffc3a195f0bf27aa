#pragma once
// Internal: the parts of the refstack daemon and the state its reconciler keeps. The components
// (activator, ingress, KPA, pods) have homes of their own and reach each other through narrow
// interfaces; what is left here is the reconciler's bookkeeping and the admin API.
//
// Locking: `mu` guards the resources, revisions and pod bookkeeping. The pod manager calls
// onPodEvent with its own lock held, so code holding `mu` never calls into the pod manager; and
// nothing that may call back (the activator releasing held requests, the KPA) is called with
// `mu` held.

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "kh/activator/activator.h"
#include "kh/controller/kpa_reconciler.h"
#include "kh/controller/resources.h"
#include "kh/controller/rollout.h"
#include "kh/controller/status.h"
#include "kh/controller/storage.h"
#include "kh/events/event_log.h"
#include "kh/http/server.h"
#include "kh/ingress/grpc_ingress.h"
#include "kh/ingress/http_ingress.h"
#include "kh/ingress/metrics.h"
#include "kh/ingress/snapshot.h"
#include "kh/pods/pod_manager.h"
#include "kh/refstack/refstack.h"
#include "nlohmann/json.hpp"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace kh::refstack {

using nlohmann::json;
namespace ctl = kh::controller;

/** Beast (Boost 1.74) has its own string_view. */
inline std::string_view sv(boost::beast::string_view s) { return {s.data(), s.size()}; }

std::string resourceKey(const std::string& ns, const std::string& name);

/** A key of the reconcile queue that stands for every InferenceService. */
inline constexpr std::string_view kEveryService = "*";
void jsonResponse(http::Response& res, int status, const json& body);

/** How a revision's pods are started; fixed when the revision is made. */
struct RevisionLaunch {
  std::string component;  // predictor, transformer, explainer
  std::vector<std::string> argv;
  std::map<std::string, std::string> env;
  std::string readiness_path = "/v2/health/ready";
};

/** The control plane's own metrics (the components register theirs on the same registry). */
struct Metrics {
  Metrics();
  std::shared_ptr<prometheus::Registry> registry;
  prometheus::Family<prometheus::Gauge>& resources;
  prometheus::Counter& reconciles;
  prometheus::Histogram& reconcile_seconds;
  prometheus::Family<prometheus::Gauge>& pods;
  prometheus::Family<prometheus::Counter>& pod_restarts;
  std::string text() const;
};

struct StackImpl : http::Handler, ctl::ScaleTarget {
  struct Entry {
    ctl::InferenceService isvc;
    ctl::ComponentState predictor;
    std::optional<ctl::ComponentState> transformer;
    std::optional<ctl::ComponentState> explainer;
    std::map<std::string, RevisionLaunch> launches;               // revision -> launch
    std::map<std::string, std::vector<std::string>> pods_of_revision;
    std::map<std::string, int> pod_serial;                         // revision -> last pod number
    json status = json::object();
    bool deleted = false;
  };

  StackImpl(const Config& c, const common::TimeSource& t);

  Config config;
  const common::TimeSource& time;
  Metrics metrics;
  events::EventLog events;
  activator::SeededRandom random;

  mutable std::mutex mu;
  std::map<std::string, Entry> services;
  std::vector<ctl::ServingRuntime> builtin_runtimes;     // shipped YAML, read at start
  std::vector<ctl::ServingRuntime> cluster_runtimes;     // built-in overlaid by applied ones
  std::vector<ctl::ServingRuntime> namespaced_runtimes;
  std::map<std::string, json> applied_runtime_documents;  // "kind/ns/name" -> document
  int64_t runtime_order = 0;
  std::map<std::string, std::string> revision_of_pod;      // pod -> revision
  std::map<std::string, std::string> service_of_revision;  // revision -> service key
  std::map<std::string, activator::Endpoint> ready_pods;
  /** Autoscaled revisions that take traffic -> their activator settings. */
  std::map<std::string, activator::RevisionSettings> autoscaled;
  std::set<std::string> published_activator_revisions;  // guarded by publish_mu
  std::mutex publish_mu;  // one routing publication at a time, in order
  std::string last_persisted;
  std::map<std::string, int> last_reachable;
  std::vector<std::thread> stoppers;  // pods stop (drain) off the reconciler thread

  std::unique_ptr<ctl::StorageResolver> storage;
  std::unique_ptr<pods::PodManager> pods;
  std::unique_ptr<activator::Activator> activator;
  std::unique_ptr<ctl::KpaReconciler> kpa;
  ingress::RoutingState routing;
  std::unique_ptr<ingress::IngressMetrics> ingress_metrics;
  std::unique_ptr<ingress::HttpIngress> http_ingress;
  std::unique_ptr<ingress::GrpcIngress> grpc_ingress;

  std::mutex queue_mu;
  std::condition_variable queue_cv;
  std::condition_variable housekeeping_cv;
  std::deque<std::string> queue;
  bool stopping = false;
  std::thread reconciler;
  std::thread housekeeping;  // expires held requests at their timeout

  std::unique_ptr<http::HttpServer> admin_server;
  std::unique_ptr<http::HttpServer> ingress_server;

  std::mutex watchers_mu;
  std::map<int64_t, std::shared_ptr<http::StreamWriter>> watchers;  // subscription -> stream

  std::mutex shutdown_mu;
  std::condition_variable shutdown_cv;
  bool shutdown_requested = false;

  // ctl::ScaleTarget: the KPA decided a revision's replicas.
  void setReplicas(const std::string& revision, int32_t replicas) override;

  // reconciler.cc
  void enqueue(const std::string& key);
  void reconcileLoop();
  void reconcile(const std::string& key);
  void onPodEvent(const pods::PodEvent& e);
  void publishRoutes();
  absl::StatusOr<std::vector<std::string>> commandFor(const std::string& image) const;
  void startPod(const std::string& service, const std::string& revision);
  /** Where a pod's model server writes its start-up times (KH_STARTUP_FILE). */
  std::string startupFileOf(const std::string& pod) const;
  void stopPods(const std::vector<std::string>& names);
  void stopPodsLater(std::vector<std::string> names);
  void housekeepingLoop();

  // admin_api.cc
  void handle(http::Request& req, http::Response& res) override;
  bool isAsync() const override { return true; }
  void handleAsync(http::Request&& req, http::Responder responder) override;
  absl::StatusOr<json> applyText(const std::string& text, const std::string& source);
  absl::Status removeService(const std::string& ns, const std::string& name);
  absl::Status removeRuntime(bool cluster, const std::string& ns, const std::string& name);
  json objectJson(const Entry& e) const;
  absl::StatusOr<json> getJson(const std::string& ns, const std::string& name) const;
  json listJson() const;
  json runtimesJson(bool cluster, const std::string& ns) const;
  json activatorStatsJson() const;

  // state.cc
  json stateJsonLocked() const;
  void persistLocked();
  absl::Status restore();
};

}  // namespace kh::refstack
