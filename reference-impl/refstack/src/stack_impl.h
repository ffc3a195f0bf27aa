#pragma once
// Internal: the state and parts of the refstack daemon, shared by its source files
// (reconciler.cc, admin_api.cc, ingress_proxy.cc, grpc_ingress.cc, state.cc, refstack.cc).
//
// Locking: `mu` guards the resources, revisions, pods bookkeeping and the event log. The pod
// manager calls onPodEvent with its own lock held, so code holding `mu` never calls into the pod
// manager. The ingress reads an immutable RoutingSnapshot and takes no lock per request.

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
#include <unordered_map>
#include <vector>

#include "kh/controller/resources.h"
#include "kh/controller/rollout.h"
#include "kh/controller/status.h"
#include "kh/http/server.h"
#include "kh/ingress/routing.h"
#include "kh/pods/pod_manager.h"
#include "kh/queueproxy/request_stats.h"
#include "kh/refstack/refstack.h"
#include "nlohmann/json.hpp"
#include "serverless.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/server.h>

namespace kh::refstack {

using nlohmann::json;
namespace ctl = kh::controller;

/** Beast (Boost 1.74) has its own string_view. */
inline std::string_view sv(boost::beast::string_view s) { return {s.data(), s.size()}; }

std::string resourceKey(const std::string& ns, const std::string& name);
void jsonResponse(http::Response& res, int status, const json& body);

/** How a revision's pods are started; fixed when the revision is made. */
struct RevisionLaunch {
  std::string component;  // predictor, transformer, explainer
  std::vector<std::string> argv;
  std::map<std::string, std::string> env;
  std::string readiness_path = "/v2/health/ready";
};

/** A ready pod as the ingress sees it. */
struct Endpoint {
  std::string pod;
  uint16_t port = 0;
  uint16_t grpc_port = 0;
  uint16_t admin_port = 0;  // the queue-proxy's stats and probes (0 without one)
  /** Requests the ingress has in flight to this pod (shared by every snapshot naming it). */
  std::shared_ptr<std::atomic<int>> in_flight = std::make_shared<std::atomic<int>>(0);
};

/**
 * The activator's choice among a revision's ready pods, by containerConcurrency as Knative's
 * lb_policy.go: CC 0 -> the less loaded of two random pods; CC 1-3 -> the first pod with a free
 * slot; more -> round robin skipping full pods (any pod when all are full: the queue-proxy
 * queues).
 */
const Endpoint* chooseEndpoint(const std::vector<Endpoint>& endpoints, int container_concurrency);

/** When the first request that found a revision at zero pods went through each step. */
struct ColdStart {
  common::MonotonicTime arrival;
  std::optional<common::MonotonicTime> poked, pod_spawned, ready, forwarded, first_byte;
  /** The pod that became ready first, and the times its model server reported (if any). */
  std::string pod;
  std::optional<common::MonotonicTime> process_started, model_loaded;
};

/**
 * A revision under the autoscaler. Decision state is guarded by StackImpl::mu; the activator's
 * count of requests it holds is atomic (read by the scaler, written by ingress workers); the
 * cold-start record by `cold_mu`.
 */
struct RevisionScaling {
  std::string service;  // "ns/name"
  std::string revision;
  ScalingSettings settings;
  std::unique_ptr<RevisionDecider> decider;
  int desired = 1;
  int ready = 0;
  bool panicking = false;
  // Written by the scaler under StackImpl::mu, read by ingress workers without it.
  std::atomic<bool> activator_in_path{true};
  int excess_burst_capacity = 0;
  double stable = 0;
  std::optional<common::MonotonicTime> proxy_since;  // activator in path since
  std::optional<common::MonotonicTime> inactive_since;  // desired 0 decided since
  common::MonotonicTime active_since;  // scaled from zero (or created) at
  common::MonotonicTime next_decision;
  bool poked = false;
  std::atomic<int> activator_held{0};  // requests the activator holds now (HTTP and gRPC)
  /**
   * The activator's own stats for this revision (Knative's ConcurrencyReporter): requests it
   * holds or proxies, time-weighted per 1 s period; the autoscaler adds them to the pods'
   * non-proxied stats.
   */
  std::unique_ptr<queueproxy::RequestStats> activator_stats;
  std::mutex cold_mu;
  std::optional<ColdStart> cold;
};

/**
 * One request passing through the activator (held, or proxied while it is in the path): counted
 * in the revision's activator stats from construction until destruction, which is when the
 * request has been answered. Move-only.
 */
class ActivatorVisit {
 public:
  ActivatorVisit() = default;
  ActivatorVisit(std::shared_ptr<RevisionScaling> scaling, const common::TimeSource& time);
  ActivatorVisit(ActivatorVisit&& other) noexcept
      : scaling_(std::move(other.scaling_)), time_(other.time_) {}
  ActivatorVisit& operator=(ActivatorVisit&& other) noexcept;
  ~ActivatorVisit() { end(); }
  explicit operator bool() const { return scaling_ != nullptr; }
  /** The request was answered (idempotent; the destructor calls it too). */
  void end();

 private:
  std::shared_ptr<RevisionScaling> scaling_;
  const common::TimeSource* time_ = nullptr;
};

/** What the ingress reads per request: routes and each revision's ready pods. */
struct RoutingSnapshot {
  explicit RoutingSnapshot(const std::string& domain) : table(domain) {}
  ingress::RouteTable table;
  std::unordered_map<std::string, std::vector<Endpoint>> endpoints;  // revision -> ready pods
  std::unordered_map<std::string, std::shared_ptr<RevisionScaling>> scaling;  // autoscaled revisions
};

struct Metrics {
  Metrics();
  std::shared_ptr<prometheus::Registry> registry;
  prometheus::Family<prometheus::Gauge>& resources;
  prometheus::Counter& reconciles;
  prometheus::Histogram& reconcile_seconds;
  prometheus::Family<prometheus::Gauge>& pods;
  prometheus::Family<prometheus::Counter>& pod_restarts;
  prometheus::Family<prometheus::Counter>& ingress_requests;
  prometheus::Family<prometheus::Histogram>& ingress_seconds;
  prometheus::Family<prometheus::Gauge>& desired_pods;
  prometheus::Family<prometheus::Histogram>& cold_start_seconds;
  /** A counter of the ingress, found once per worker thread (Family::Add locks). */
  prometheus::Counter& requestCounter(const std::string& isvc, const std::string& ns,
                                      const std::string& revision, int code, const char* protocol);
  prometheus::Histogram& latencyHistogram(const std::string& isvc, const std::string& ns,
                                          const char* protocol);
  std::string text() const;
};

struct StackImpl : http::Handler {
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

  StackImpl(const Config& c, const common::TimeSource& t) : config(c), time(t) {}

  Config config;
  const common::TimeSource& time;
  Metrics metrics;

  mutable std::mutex mu;
  std::map<std::string, Entry> services;
  std::vector<ctl::ServingRuntime> builtin_runtimes;     // shipped YAML, read at start
  std::vector<ctl::ServingRuntime> cluster_runtimes;     // built-in overlaid by applied ones
  std::vector<ctl::ServingRuntime> namespaced_runtimes;
  std::map<std::string, json> applied_runtime_documents;  // "kind/ns/name" -> document
  int64_t runtime_order = 0;
  std::map<std::string, std::string> revision_of_pod;      // pod -> revision
  std::map<std::string, std::string> service_of_revision;  // revision -> service key
  std::map<std::string, Endpoint> ready_pods;
  std::deque<json> event_log;
  mutable std::condition_variable_any event_cv;
  int64_t next_seq = 1;
  std::vector<std::shared_ptr<http::StreamWriter>> watchers;
  std::string last_persisted;
  json last_reachable = json::object();
  std::map<std::string, std::shared_ptr<RevisionScaling>> scaling;  // revision -> autoscaler state
  std::thread scaler;
  std::vector<std::thread> stoppers;  // pods stop (drain) off the reconciler thread

  std::unique_ptr<pods::PodManager> pods;
  std::atomic<std::shared_ptr<const RoutingSnapshot>> routing;

  std::mutex queue_mu;
  std::condition_variable queue_cv;
  std::condition_variable scaler_cv;
  std::deque<std::string> queue;
  bool stopping = false;
  std::thread reconciler;

  std::unique_ptr<http::HttpServer> admin_server;
  std::unique_ptr<http::HttpServer> ingress_server;
  std::unique_ptr<grpc::Server> grpc_ingress;
  std::unique_ptr<grpc::CallbackGenericService> grpc_ingress_service;  // a GrpcIngressService
  uint16_t grpc_ingress_port = 0;
  std::unique_ptr<class IngressProxy> proxy;

  std::mutex shutdown_mu;
  std::condition_variable shutdown_cv;
  bool shutdown_requested = false;

  // events (refstack.cc)
  void event(json e);
  void eventLocked(json e);
  std::vector<json> eventsAfter(int64_t since) const;

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

  // autoscaler.cc
  void scalerLoop();
  /** The activator asks for pods for a revision at zero (Knative's poke). */
  void poke(const std::string& revision);
  void scaleEventLocked(RevisionScaling& s, int actual, const std::string& reason);
  /**
   * The first request that found `s` at zero pods has its first response byte: its cold-start
   * breakdown becomes an event and a metric (once; later calls do nothing).
   */
  void recordColdStart(RevisionScaling& s);
  /**
   * A request found `s` at zero pods and is held: @return true when it is the first, whose cold
   * start is recorded (the others wait along).
   */
  bool beginColdStart(RevisionScaling& s, common::MonotonicTime arrival);
  /** The request tracking `s`'s cold start goes out to a pod. */
  void coldStartForwarded(RevisionScaling& s);
  /**
   * The request that tracked `s`'s cold start ended without being forwarded (timed out, its
   * revision went away, cancelled): the record goes, so the next request at zero starts one.
   */
  void abandonColdStart(RevisionScaling& s);
  /** The activator's stats of every autoscaled revision, as GET /activator/stats answers. */
  json activatorStatsJson() const;
  std::shared_ptr<RevisionScaling> scalingForLocked(const std::string& service, const std::string& revision,
                                                    const ctl::ComponentExtension& component,
                                                    const std::map<std::string, std::string>& annotations);

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

  // state.cc
  json stateJsonLocked() const;
  void persistLocked();
  absl::Status restore();
};

struct Destination;

/** The HTTP ingress: routes by Host, splits traffic, proxies to pods (ingress_proxy.cc). */
class IngressProxy : public http::Handler {
 public:
  explicit IngressProxy(StackImpl& stack);
  ~IngressProxy() override;
  void handle(http::Request&, http::Response&) override {}
  bool isAsync() const override { return true; }
  void handleAsync(http::Request&& req, http::Responder responder) override;
  /** Large and chunked bodies are relayed as streams, not buffered (streaming_relay in kh::http). */
  bool streamsBody(const http::RequestHeader&) override { return true; }
  void handleStreamed(http::StreamedRequestPtr request) override;
  /** Binds the proxy to the server whose workers run it (before the server starts). */
  void attach(http::HttpServer& server);
  /** New routes: requests the activator holds for revisions that now have pods go out. */
  void onRoutes(const std::shared_ptr<const RoutingSnapshot>& snapshot);
  /** Answers held requests older than the revision timeout with 504. */
  void expireHeld(common::MonotonicTime now);
  /** Drops the connection pools; call once the server's workers have stopped. */
  void stop();

 private:
  /** Holds a request (whole, or `streamed` with its body still unread) for the activator. */
  void park(http::Request&& req, http::Responder responder, http::StreamedRequestPtr streamed,
            std::shared_ptr<RevisionScaling> scaling, std::chrono::steady_clock::time_point start);
  ActivatorVisit activatorVisitFor(const RoutingSnapshot& snapshot, const Destination& d);
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/** Starts the gRPC ingress (grpc_ingress.cc). */
absl::Status startGrpcIngress(StackImpl& stack);
/** Stops the gRPC ingress: held calls end first, calls arriving meanwhile are refused. */
void stopGrpcIngress(StackImpl& stack);
/** New routes: gRPC calls the activator holds for revisions that now have pods go out. */
void grpcIngressOnRoutes(StackImpl& stack, const std::shared_ptr<const RoutingSnapshot>& snapshot);
/** Ends held gRPC calls older than the revision timeout with DEADLINE_EXCEEDED. */
void grpcIngressExpireHeld(StackImpl& stack, common::MonotonicTime now);

/** Picks the destination of a request: revision and pod. Lock-free (ingress_proxy.cc). */
struct Destination {
  const ingress::Route* route = nullptr;
  std::string revision;
  const Endpoint* endpoint = nullptr;
  int error_status = 0;  // 404 unknown host, 503 nothing ready
  std::string error;
};
Destination pickDestination(const RoutingSnapshot& snapshot, std::string_view host,
                            std::string_view path);

}  // namespace kh::refstack
