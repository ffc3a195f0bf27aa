#pragma once
// The KPA as the reference stack runs it: one kh::autoscaler::RevisionAutoscaler per autoscaled
// revision (Knative's KPA, scale to zero included, tested in that library on a simulated clock),
// fed once a second with the revision's stats — its pods' queue-proxies, scraped in parallel
// (Knative's stats scraper), plus the activator's own report (Knative's collector sums them) —
// and ticked on its period, at its re-check times and when a request arrives at zero pods. It
// only feeds the library and applies what it decides: replicas through a ScaleTarget, the
// activator in or out of the path, a "scale" event, and a PodAutoscaler status for the
// Kubernetes API.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "kh/activator/activator.h"
#include "kh/autoscaler/config.h"
#include "kh/autoscaler/revision_autoscaler.h"
#include "kh/common/time_source.h"
#include "kh/events/event_log.h"

namespace prometheus {
class Registry;
class Gauge;
template <typename T>
class Family;
}  // namespace prometheus

namespace kh::queueproxy {
class StatsScraper;
}

namespace kh::controller {

/** Where the KPA's replica decisions go (the reconciler that runs the revision's pods). */
class ScaleTarget {
 public:
  virtual ~ScaleTarget() = default;
  /** Run `replicas` pods of `revision` from now on. Called without the KPA's lock; must not block. */
  virtual void setReplicas(const std::string& revision, int32_t replicas) = 0;
};

/** A revision's PodAutoscaler as Knative shows it (autoscaling.internal.knative.dev/v1alpha1). */
struct PodAutoscalerView {
  std::string isvc;  // "namespace/name"
  std::string revision;
  int32_t desired_scale = -1;  // -1: not known yet
  int32_t actual_scale = 0;    // ready pods
  int32_t replicas = 0;        // what the KPA runs now
  /** The Active condition: "True", "False" or "Unknown", with reason, message and since. */
  std::string active;
  std::string active_reason;
  std::string active_message;
  common::MonotonicTime active_since{};
  bool scale_target_initialized = false;
  bool activator_in_path = true;
  bool panicking = false;
  int32_t excess_burst_capacity = 0;
  double stable = 0;
};

struct KpaOptions {
  /** The decider's period (Knative: 2 s). */
  std::chrono::milliseconds tick{2'000};
  /** How often the pods' queue-proxies are scraped (Knative: 1 s); each scrape is one stat. */
  std::chrono::milliseconds scrape_period{1'000};
  std::chrono::milliseconds scrape_timeout{500};
};

class KpaReconciler {
 public:
  struct Deps {
    const common::TimeSource* time = nullptr;
    /** Its per-revision reports are the activator's stat; setInPath() applies the SKS mode. */
    activator::Activator* activator = nullptr;
    events::EventSink* events = nullptr;
    ScaleTarget* target = nullptr;
    /** Called (without the KPA's lock) whenever a revision's PodAutoscaler status changes. */
    std::function<void(const PodAutoscalerView&)> on_status;
    /** kh_autoscaler_desired_pods is registered here when set. */
    prometheus::Registry* metrics = nullptr;
  };

  KpaReconciler(Deps deps, KpaOptions options);
  /** Stops the loop. */
  ~KpaReconciler();
  KpaReconciler(const KpaReconciler&) = delete;
  KpaReconciler& operator=(const KpaReconciler&) = delete;

  /** Where replica decisions go, when it could not be given at construction (before start()). */
  void setTarget(ScaleTarget* target) { deps_.target = target; }

  /** Starts the loop thread. */
  void start();
  /** Stops the loop thread (idempotent). */
  void stop();

  /**
   * Starts the KPA of a revision, or gives an existing one new settings.
   * @param ready_pods its ready pods now (a restarted stack must not scale a busy revision down).
   * @return the replicas the revision runs: initial-scale for a new one, the last decision else.
   */
  int32_t track(const std::string& isvc, const std::string& revision, const autoscaler::RevisionScaling& settings,
                int ready_pods);
  /** The revision stopped taking traffic: its KPA goes. */
  void untrack(const std::string& revision);
  /** The replicas the KPA runs for a revision (nullopt when it is not tracked). */
  std::optional<int32_t> replicas(const std::string& revision) const;

  /**
   * The revision's ready pods (their queue-proxies' admin ports) as they are now; a change is
   * acted on at once (Knative re-reconciles on pod events).
   */
  void setPods(const std::string& revision, std::vector<uint16_t> ready_admin_ports);

  /**
   * A request arrived for the revision at the activator (wire Activator::Options::on_activation
   * here): at zero pods the revision scales up within this call. Does not block.
   */
  void activate(const std::string& revision);

  /** Every tracked revision's PodAutoscaler, ordered by revision. */
  std::vector<PodAutoscalerView> views() const;
  std::optional<PodAutoscalerView> view(const std::string& revision) const;

 private:
  struct Revision;
  struct Applied;

  void loop();
  // Ticks every revision that is due at `now` (or all with `force`); collects what to apply.
  void tickDue(common::MonotonicTime now, bool force, std::vector<Applied>& out);
  void decide(Revision& r, common::MonotonicTime now, const autoscaler::RevisionDecision& d,
              std::vector<Applied>& out);
  void apply(std::vector<Applied>& out);
  void scrape(common::MonotonicTime now);

  Deps deps_;
  KpaOptions options_;
  std::unique_ptr<queueproxy::StatsScraper> scraper_;
  prometheus::Family<prometheus::Gauge>* desired_pods_ = nullptr;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, std::unique_ptr<Revision>> revisions_ ABSL_GUARDED_BY(mu_);
  bool wake_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace kh::controller
