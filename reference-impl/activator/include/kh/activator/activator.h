#pragma once
// The activator (Knative pkg/activator): holds requests for a revision that has no ready pod while
// the autoscaler scales it from zero, and releases them to a pod chosen by Knative's load-balancing
// policy once one is ready; while it stays in a revision's path it also balances the requests it
// proxies. One hold queue per revision serves every protocol (HTTP whole or streamed, gRPC), with
// one limit, the revision timeout counted from arrival, and cancellation; the ingress only asks it
// to hold or choose, as Knative's handler asks its Throttler. It also owns the revision's
// time-weighted request stats (Knative's ConcurrencyReporter), which the autoscaler reads, and the
// cold-start record of the first request that found the revision at zero pods.
//
// Time comes from an injected TimeSource and randomness from an injected RandomSource, so every
// decision here is tested on a simulated clock with seeded draws.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "kh/common/random.h"
#include "kh/common/time_source.h"
#include "kh/events/event_log.h"
#include "kh/queueproxy/request_stats.h"

namespace prometheus {
class Registry;
template <typename T>
class Family;
class Histogram;
}  // namespace prometheus

namespace kh::activator {

/** A ready pod of a revision, as the activator and the ingress see it. */
struct Endpoint {
  std::string pod;
  uint16_t port = 0;        // HTTP traffic (the queue-proxy's when the pod has one)
  uint16_t grpc_port = 0;   // gRPC traffic (0: the pod serves no gRPC)
  uint16_t admin_port = 0;  // the queue-proxy's stats and probes (0 without one)
  /** Requests the stack has in flight to this pod (shared by every list naming the pod). */
  std::shared_ptr<std::atomic<int>> in_flight = std::make_shared<std::atomic<int>>(0);
};

/** A revision's ready pods: one immutable list, shared by routing snapshots and held requests. */
using EndpointList = std::vector<Endpoint>;
using EndpointListPtr = std::shared_ptr<const EndpointList>;

/** Random draws for traffic splits and load balancing (kh/common/random.h). */
using common::RandomSource;
using common::SeededRandom;

/**
 * Knative's lb_policy.go, chosen by containerConcurrency: 0 → the less loaded of two random pods
 * (randomChoice2); 1-3 → the first pod with a free slot (firstAvailable); more → round robin that
 * skips full pods. When every pod is full the least loaded (CC 1-3) or the next in turn (more) is
 * taken: the pod's queue-proxy queues. Loads are Endpoint::in_flight. @return nullptr when empty.
 */
const Endpoint* chooseEndpoint(const EndpointList& endpoints, int container_concurrency,
                               RandomSource& random, std::atomic<size_t>& round_robin);

/** Why a held request was not released to a pod. */
enum class Rejection {
  kQueueFull,     // the revision's hold queue is at its limit (HTTP 503, gRPC UNAVAILABLE)
  kTimeout,       // the revision timeout passed while it waited (HTTP 504, gRPC DEADLINE_EXCEEDED)
  kRevisionGone,  // the revision stopped taking traffic while it waited (503, UNAVAILABLE)
  kStopping,      // the stack is stopping (503, UNAVAILABLE)
  kCancelled,     // the client gave up (gRPC CANCELLED)
};
const char* rejectionName(Rejection rejection);

class Revision;

/**
 * One request counted in a revision's activator stats, from construction until destruction (or
 * end()), which is when it has been answered. Move-only; empty when default-constructed.
 */
class Visit {
 public:
  Visit() = default;
  Visit(Visit&& other) noexcept : revision_(std::move(other.revision_)) {}
  Visit& operator=(Visit&& other) noexcept;
  ~Visit() { end(); }
  explicit operator bool() const { return revision_ != nullptr; }
  /** The request was answered (idempotent). */
  void end();

 private:
  friend class Revision;
  friend class Activator;
  explicit Visit(std::shared_ptr<Revision> revision) : revision_(std::move(revision)) {}
  std::shared_ptr<Revision> revision_;
};

/**
 * The handle of the request whose cold start is being recorded (the first that found its revision
 * at zero pods). firstByte() when the pod's first response byte arrives records the cold start
 * (an events::ColdStart and the kh_cold_start_seconds histogram); destroyed without it, the record
 * is dropped so that the next request at zero starts a new one. Move-only; usually empty.
 */
class ColdStartTracker {
 public:
  ColdStartTracker() = default;
  ColdStartTracker(ColdStartTracker&& other) noexcept : revision_(std::move(other.revision_)) {}
  ColdStartTracker& operator=(ColdStartTracker&& other) noexcept;
  ~ColdStartTracker();
  explicit operator bool() const { return revision_ != nullptr; }
  void firstByte();

 private:
  friend class Revision;
  friend class Activator;
  explicit ColdStartTracker(std::shared_ptr<Revision> revision) : revision_(std::move(revision)) {}
  std::shared_ptr<Revision> revision_;
};

/** What a held request gets when a pod of its revision is ready. */
struct Release {
  /** The revision's ready pods; keep it while `endpoint` (which points into it) is used. */
  EndpointListPtr endpoints;
  const Endpoint* endpoint = nullptr;
  /** Counts the request in the activator's stats until it is answered. */
  Visit visit;
  ColdStartTracker cold_start;
};

/**
 * A request waiting for a pod, whatever its protocol. Exactly one of release() or reject() is
 * called, once, from any thread, without the activator's locks held; the activator owns the
 * object until then and destroys it right after.
 */
class HeldRequest {
 public:
  virtual ~HeldRequest() = default;
  /** Forward the request to `release.endpoint`. */
  virtual void release(Release&& release) = 0;
  /** Answer the request with an error for `why` (the message says it in words). */
  virtual void reject(Rejection why, const std::string& message) = 0;
};

/** A revision's settings, fixed when the revision is made (revisions are immutable). */
struct RevisionSettings {
  std::string isvc;  // "namespace/name", for events
  int container_concurrency = 0;
  /** Requests for the revision time out this long after they arrived (held time included). */
  std::chrono::milliseconds timeout{300'000};
  /** Held requests (every protocol together) beyond this many are refused. */
  size_t queue_limit = 1000;
};

/** The steps of a cold start that other components observe (see markColdStart). */
enum class ColdStartStep { kPodSpawned, kReady };

/** What the model server of the pod that became ready reported (KH_STARTUP_FILE), if anything. */
struct PodStartup {
  std::string pod;
  std::optional<common::MonotonicTime> process_started;
  std::optional<common::MonotonicTime> model_loaded;
};

/** A revision's activator figures, as GET /activator/stats shows them. */
struct RevisionStats {
  std::string isvc;
  std::string revision;
  queueproxy::StatsReport last_period;  // the last complete 1 s period
  int64_t concurrency = 0;              // requests in the activator now (held or proxied)
  size_t held = 0;
  bool in_path = false;
};

/**
 * One revision's activator state. Thread-safe. Made by Activator::addRevision(); the ingress
 * reaches it from its routing snapshot without a lookup.
 */
class Revision : public std::enable_shared_from_this<Revision> {
 public:
  /** What a revision shares with its activator; each must outlive every handle to the revision. */
  struct Context {
    const common::TimeSource* time = nullptr;
    RandomSource* random = nullptr;
    events::EventSink* events = nullptr;
    prometheus::Family<prometheus::Histogram>* cold_start_seconds = nullptr;
  };

  Revision(std::string name, RevisionSettings settings, Context context);

  const std::string& name() const { return name_; }
  const RevisionSettings& settings() const { return settings_; }

  /**
   * Whether the activator is in the revision's path (the autoscaler's SKS mode is Proxy):
   * then requests to its pods go through choose() and count in its stats.
   */
  bool inPath() const { return in_path_.load(std::memory_order_acquire); }

  /** Picks a pod by the revision's policy (see chooseEndpoint). */
  const Endpoint* choose(const EndpointList& endpoints);

  /** Counts one request in the activator's stats until the returned Visit ends. */
  Visit visit();

 private:
  friend class Activator;
  friend class Visit;
  friend class ColdStartTracker;

  struct ColdRecord {
    common::MonotonicTime arrival;
    std::optional<common::MonotonicTime> poked, pod_spawned, ready, forwarded, first_byte;
    PodStartup startup;
  };
  struct Held {
    uint64_t ticket;
    common::MonotonicTime arrival;
    std::unique_ptr<HeldRequest> request;
    Visit visit;
    bool tracks_cold_start;
  };

  void visitEnded();
  void recordColdStart();
  void abandonColdStart();

  const std::string name_;
  const RevisionSettings settings_;
  const Context context_;
  std::atomic<bool> in_path_{true};
  std::atomic<size_t> round_robin_{0};
  queueproxy::RequestStats stats_;

  std::mutex mu_;
  std::deque<Held> held_ ABSL_GUARDED_BY(mu_);  // oldest first
  EndpointListPtr endpoints_ ABSL_GUARDED_BY(mu_);  // the latest published ready pods
  std::optional<ColdRecord> cold_ ABSL_GUARDED_BY(mu_);
  bool removed_ ABSL_GUARDED_BY(mu_) = false;
};

/**
 * The activator of a stack: its revisions, their hold queues and stats. Thread-safe.
 */
class Activator {
 public:
  struct Options {
    const common::TimeSource* time = nullptr;
    RandomSource* random = nullptr;
    /** Cold starts are reported here (events::ColdStart). */
    events::EventSink* events = nullptr;
    /**
     * Called (without locks held) when a request is held for a revision: the autoscaler's
     * activation, as Knative's ConcurrencyReporter sends a stat at once. Must not block.
     */
    std::function<void(const std::string& revision)> on_activation;
    /** kh_cold_start_seconds is registered here when set. */
    prometheus::Registry* metrics = nullptr;
  };

  explicit Activator(Options options);
  ~Activator();

  /**
   * The revision named `name`, made with `settings` if it is new (an existing one keeps its
   * settings: revisions are immutable).
   */
  std::shared_ptr<Revision> addRevision(const std::string& name, const RevisionSettings& settings);
  /** The revision, or nullptr. */
  std::shared_ptr<Revision> find(const std::string& name) const;
  /** The revision stops taking traffic: what it holds is rejected with kRevisionGone. */
  void removeRevision(const std::string& name);

  /**
   * Holds `request` until the revision has a ready pod (released at once if it has one now: the
   * routing snapshot the caller read may be older than the latest endpoints), or rejects it
   * (queue full, stopping) before returning. @return a ticket for cancel(), 0 when it was already
   * released or rejected.
   */
  uint64_t hold(const std::shared_ptr<Revision>& revision, std::unique_ptr<HeldRequest> request);

  /**
   * The client gave up: the request `ticket` names, if `revision` still holds it, is rejected with
   * kCancelled. @return whether it was (false: it was already released or rejected).
   */
  bool cancel(const std::shared_ptr<Revision>& revision, uint64_t ticket);

  /**
   * A revision's ready pods changed (published with each routing snapshot): when there are any,
   * every request it holds is released to one chosen by the policy.
   */
  void setEndpoints(const std::string& revision, EndpointListPtr endpoints);

  /** The autoscaler's SKS mode for the revision: Proxy puts the activator in its path. */
  void setInPath(const std::string& revision, bool in_path);

  /** Rejects held requests whose revision timeout has passed at `now` (call it periodically). */
  void expire(common::MonotonicTime now);

  /** Refuses every later hold and rejects what is held (kStopping). */
  void stop();

  /** A cold-start step another component observed for the revision (recorded when one is open). */
  void markColdStart(const std::string& revision, ColdStartStep step, common::MonotonicTime at,
                     const PodStartup& startup = {});

  /** The activator's figures of every revision, ordered by name. */
  std::vector<RevisionStats> stats();

  /** The activator's stat of one revision for the last complete period (zeros when unknown). */
  queueproxy::StatsReport lastReport(const std::string& revision);

 private:
  friend class Revision;
  friend class ColdStartTracker;

  /** Releases `held` (taken out of `revision` under its lock) to pods of `endpoints`. */
  void releaseAll(std::deque<Revision::Held>&& held, Revision& revision,
                  const EndpointListPtr& endpoints);
  /** Rejects `held` (taken out of its revision under its lock). */
  static void rejectAll(std::deque<Revision::Held>&& held, Revision& revision, Rejection why,
                        const std::string& message);

  Options options_;
  Revision::Context context_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<Revision>> revisions_ ABSL_GUARDED_BY(mu_);
  std::atomic<uint64_t> next_ticket_{1};
  std::atomic<bool> stopping_{false};
};

}  // namespace kh::activator
