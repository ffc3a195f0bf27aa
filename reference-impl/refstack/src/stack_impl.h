#pragma once
// Internal: refstack as a composition root. It owns the components (the Kubernetes API's object
// store, the controller's reconcilers, the activator, the ingress, the pods) and wires them
// through their narrow interfaces; what is its own is the admin routes beside the Kubernetes API
// (apply, the event log, metrics, shutdown), the state file and the recorder that turns the
// stack's events into Kubernetes Events.

#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "kh/activator/activator.h"
#include "kh/controller/isvc_reconciler.h"
#include "kh/controller/kpa_reconciler.h"
#include "kh/controller/storage.h"
#include "kh/events/event_log.h"
#include "kh/http/server.h"
#include "kh/ingress/grpc_ingress.h"
#include "kh/ingress/http_ingress.h"
#include "kh/ingress/metrics.h"
#include "kh/ingress/snapshot.h"
#include "kh/kubeapi/api_handler.h"
#include "kh/kubeapi/store.h"
#include "kh/pods/pod_manager.h"
#include "kh/refstack/refstack.h"
#include "nlohmann/json.hpp"
#include "prometheus/registry.h"

namespace kh::refstack {

using nlohmann::json;
namespace ctl = kh::controller;

/** Beast (Boost 1.74) has its own string_view. */
inline std::string_view sv(boost::beast::string_view s) { return {s.data(), s.size()}; }

void jsonResponse(http::Response& res, int status, const json& body);

/**
 * Keeps the state file (STATE/state.json: the persisted kinds of the object store) up to date:
 * a thread of its own writes it atomically whenever they change, off every lock.
 */
class StatePersister {
 public:
  StatePersister(kubeapi::ObjectStore& store, std::filesystem::path path, events::EventSink& events);
  /** Writes what is not written yet, then stops. */
  ~StatePersister();
  /** Subscribes to the persisted kinds and starts the thread. */
  absl::Status start();

 private:
  void loop();
  void writeNow();

  kubeapi::ObjectStore& store_;
  const std::filesystem::path path_;
  events::EventSink& events_;
  std::vector<kubeapi::WatchHandle> subscriptions_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool dirty_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t written_version_ = 0;
  std::string last_error_;
  std::thread thread_;
};

/**
 * Loads STATE/state.json into the store before anything is served: this version's snapshot, or
 * an older refstack's resources (version 1: the documents; revisions start afresh).
 */
absl::Status loadState(kubeapi::ObjectStore& store, const std::filesystem::path& path, events::EventSink& events);

/**
 * Writes the stack's events as Kubernetes Events (core v1, read-only) about the objects they
 * concern, so `kubectl describe` and `kubectl get events` show them, as an EventRecorder does:
 * asynchronously (the log only queues), the newest 1,000 kept.
 */
class EventRecorder {
 public:
  EventRecorder(kubeapi::ObjectStore& store, events::EventLog& log);
  ~EventRecorder();

 private:
  void loop();
  void record(const events::Event& e);

  kubeapi::ObjectStore& store_;
  events::EventLog& log_;
  int64_t subscription_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<events::Event> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<std::pair<std::string, std::string>> written_;  // (namespace, name), oldest first
  uint64_t serial_ = 0;
  std::thread thread_;
};

struct StackImpl : http::Handler {
  StackImpl(const Config& c, const common::TimeSource& t);

  Config config;
  const common::TimeSource& time;
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  events::EventLog events;
  activator::SeededRandom random;

  std::unique_ptr<kubeapi::ObjectStore> store;
  std::unique_ptr<ctl::StorageResolver> storage;
  std::unique_ptr<activator::Activator> activator;
  std::unique_ptr<ctl::KpaReconciler> kpa;
  std::unique_ptr<ctl::InferenceServiceReconciler> reconciler;
  std::unique_ptr<pods::PodManager> pods;
  ingress::RoutingState routing;
  std::unique_ptr<ingress::IngressMetrics> ingress_metrics;
  std::unique_ptr<ingress::HttpIngress> http_ingress;
  std::unique_ptr<ingress::GrpcIngress> grpc_ingress;
  std::unique_ptr<StatePersister> persister;
  std::unique_ptr<EventRecorder> recorder;
  std::unique_ptr<kubeapi::ApiHandler> api;

  std::unique_ptr<http::HttpServer> admin_server;
  std::unique_ptr<http::HttpServer> ingress_server;

  std::thread housekeeping;  // expires held requests at their timeout
  std::mutex housekeeping_mu;
  std::condition_variable housekeeping_cv;
  bool stopping ABSL_GUARDED_BY(housekeeping_mu) = false;

  std::mutex watchers_mu;
  std::map<int64_t, std::shared_ptr<http::StreamWriter>> watchers ABSL_GUARDED_BY(watchers_mu);  // subscription -> stream

  std::mutex shutdown_mu;
  std::condition_variable shutdown_cv;
  bool shutdown_requested ABSL_GUARDED_BY(shutdown_mu) = false;

  std::string metricsText() const;
  void housekeepingLoop();

  // admin_api.cc: the routes beside the Kubernetes API (its fallback).
  void handle(http::Request& req, http::Response& res) override;
  bool isAsync() const override { return true; }
  void handleAsync(http::Request&& req, http::Responder responder) override;
  absl::StatusOr<json> applyText(const std::string& text, const std::string& source);
  json activatorStatsJson() const;
};

}  // namespace kh::refstack
