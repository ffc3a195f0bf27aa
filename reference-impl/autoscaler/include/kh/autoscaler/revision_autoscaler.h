#pragma once
// The whole KPA loop of one revision, as Knative runs it across the autoscaler process and the
// KPA reconciler (knative.md §2–§4), composed from the pieces of this library: the revision's
// MetricCollector (metrics.h), its Decider (decider.h) and its PodAutoscaler (scaler.h), plus a
// model of the revision's ServerlessService (SKS), so that the time the activator entered the
// path (`ProxyFor`) is computed here rather than supplied.
//
// Sources followed:
//  - pkg/autoscaler/scaling/multiscaler.go: a decider per revision ticks every tickInterval on
//    a ticker started with it (`runScalerTicker`), and at once when `Poke` sees a stat with
//    concurrency while the latest desired scale is 0; a tick that yields no data keeps the last
//    result (`tickScaler`); the initial status is desired -1 and the initial EBC.
//  - cmd/autoscaler/main.go `statsHandler`/`accept`: every received stat is `collector.Record`ed
//    and then `multiScaler.Poke`d.
//  - pkg/activator/handler/concurrency_reporter.go: the first request of a revision in a
//    reporting period is reported at once as Stat{AverageConcurrentRequests: 1, RequestCount: 1}.
//  - pkg/reconciler/autoscaling/kpa/kpa.go `ReconcileKind`: scaler.scale on the decider's
//    status, the SKS mode (Serve only when want > 0 and EBC >= 0; Proxy when want == -1 and the
//    PA is Inactive), computeNumActivators, computeStatus and computeActiveCondition.
//  - pkg/reconciler/autoscaling/kpa/scaler.go `scale`/`handleScaleToZero`: bounds, initial
//    scale, the stable-window hold of an Active PA, grace, retention, the fast path on
//    `sks.Status.ProxyFor()`, the activation timeout, and the `enqueueCB` re-checks.
//  - pkg/reconciler/serverlessservice/serverlessservice.go `reconcilePublicEndpoints`: the SKS
//    is forced to Proxy when the private service has no ready endpoint, and
//    `ActivatorEndpointsPopulated` is True (since its last transition: `ProxyFor`) when there is
//    no serving endpoint or the spec mode is Proxy.
//
// How Knative's asynchronous pieces are folded into calls:
//  - Knative re-reconciles a PA whenever its status or its SKS changes (both informers enqueue
//    it), milliseconds after the reconcile that changed them. tick() therefore reconciles until
//    nothing changes (at most a few times) at the same `now`: an Active PA whose desired scale
//    just reached 0 goes Inactive, and, with the activator in the path for the grace period
//    already, reaches 0 replicas in the same call (the fast path).
//  - Knative reconciles on events (a published decider change, an `enqueueCB` re-check, a pod,
//    SKS or PA change); tick() reconciles on every call. This decides the same things at the
//    same times, because every time-dependent branch re-checks itself through requeue_after,
//    with one exception: an Activating PA whose desired scale is 0 re-checks after the whole
//    activation timeout (progress-deadline + 30s) from that reconcile, so Knative notices the
//    timeout at that re-check (or at an earlier pod event), and this class at the first tick
//    after Activating for progress-deadline + 30s.
//  - The `activator_probe_ok` input of the PodAutoscaler is always true: the reference stack's
//    activator is in-process, so once the SKS model says Proxy it is in the path and answers
//    the probe; no async probe is ever started. The number of activator endpoints is taken as 1
//    (there is always one), so the SKS is never forced to Serve for lack of activators.
//
// Pure: no threads, no I/O, no locks; time is passed in. Not thread-safe: the owner serializes
// every call (one loop per revision, or one lock around the object).

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "kh/autoscaler/config.h"
#include "kh/autoscaler/decider.h"
#include "kh/autoscaler/metrics.h"
#include "kh/autoscaler/scaler.h"

namespace kh::autoscaler {

/** Pod name of the activator's stats (the poke and its periodic reports). */
inline constexpr std::string_view kActivatorPodName = "activator";

/**
 * activatorPokeStat()
 *
 * The stat the activator sends at once for the first request of a revision in a reporting
 * period (`ConcurrencyReporter.getOrCreateStat`): AverageConcurrentRequests 1, RequestCount 1.
 * Knative's reporter subtracts it from its next periodic report of that revision
 * (concurrency max(c − 1, 0), count − 1); the owner's activator report must do the same.
 */
Stat activatorPokeStat();

/** What the owner observes of the revision when it calls tick(). */
struct RevisionObservation {
  /** Ready pods: the private service's ready endpoints (the decider's ReadyCount, the KPA's
   *  ready pod count and the SKS's private endpoints are all this number here). */
  int ready_pods = 0;
  /** The scale target's spec.replicas as the owner runs it now (Go reads a missing value as
   *  1). Usually the last `replicas` the owner applied. */
  int32_t current_replicas = 1;
  /** The PA's reachability (routes send it traffic). Unreachable ignores min-scale and the
   *  retention period, and lets the decider scale down without the scale-down rate. */
  Reachability reachability = Reachability::kReachable;
};

/**
 * What one tick() decided: everything the owner applies (replicas, the activator in or out
 * of the path), everything it reports (a "scale" event, a PodAutoscaler object, metrics), and
 * when to call again.
 */
struct RevisionDecision {
  // ----- To apply -----

  /** Patch the scale target's replicas to this; nullopt: leave them as they are. */
  std::optional<int32_t> replicas;
  /** The scale the KPA reconciler works with (-1: unknown, nothing to apply). */
  int32_t want = -1;
  /**
   * The SKS mode as the SKS reconciler runs it: the requested mode, forced to Proxy while no
   * pod is ready. Proxy means the activator is in the request path.
   */
  SksMode sks_mode = SksMode::kProxy;
  /** sks_mode == kProxy (`ActivatorEndpointsPopulated` True). */
  bool activator_in_path = true;
  /** When the activator last entered the path (the condition's LastTransitionTime); nullopt
   *  while it is out. ProxyFor = now − this. */
  std::optional<TimePoint> activator_in_path_since;
  /** activator_in_path differs from what the previous call returned. */
  bool activator_path_changed = false;
  /** How many activators the SKS puts in the path (`computeNumActivators`). */
  int32_t num_activators = kMinActivators;

  // ----- The decider, for events and metrics -----

  /** The decider ran in this call (its period was due, or a poke was pending). */
  bool decider_ticked = false;
  /** That run was a poke (a stat with concurrency arrived while the desired scale was 0). */
  bool poked = false;
  /** The run changed the decider's desired scale or the sign of its EBC (Knative's Inform). */
  bool published = false;
  /** The decider's published status: desired pods (-1 before any valid tick) and EBC. */
  DeciderStatus decider;
  /** The decider is in panic mode. */
  bool panicking = false;
  /** The last tick that was over the panic threshold; panic ends a stable window after it. */
  std::optional<TimePoint> panic_time;
  /** Window averages of the scaling metric (revision-wide) at the decider's last run; 0 and
   *  has_metrics=false while the collector has no data. */
  double stable = 0;
  double panic = 0;
  bool has_metrics = false;

  // ----- The PodAutoscaler -----

  /**
   * The PA's status after this call: desired_scale (pa.Status.DesiredScale), actual_scale
   * (ready pods), the Active condition (activity, reason, message, since) and
   * ScaleTargetInitialized.
   */
  PaStatus pa;
  /**
   * Each change of the Active condition (or ScaleTargetInitialized) in this call, in order:
   * Knative writes each as a status update. A later reconcile of the same call may overwrite
   * an earlier one: an activation timeout marks the PA Inactive "TimedOut", and the
   * re-reconcile that this status change causes marks it Inactive "NoTraffic" (so `pa` shows
   * NoTraffic, as Knative's PA does a moment after the timeout).
   */
  std::vector<PaStatus> pa_transitions;

  // ----- Why, and when to call again -----

  /**
   * In words, for a "scale" event, when changed(): why replicas changed ("stable window",
   * "panic window", "activation: ...", "fast path scaling to 0, ..."), else why the activator
   * moved. Empty when nothing changed (see `note`), and always with options().explain off:
   * words are built only for what is reported.
   */
  std::string reason;
  /** The reconciler's last note ("enqueueing PA after 28s": note.text()), changed or not. */
  ScaleNote note;
  /**
   * Call tick() again after this long even without new stats: the reconciler's pending
   * re-check (`enqueueCB`; the earliest of those not yet run). nullopt when none is pending.
   */
  std::optional<Duration> requeue_after;
  /** The latest time to call tick() again: the earlier of the decider's next period and
   *  now + requeue_after. Calling earlier (new pods, a poke) is always allowed. */
  TimePoint next_tick_at{};

  /** Something the owner applies or reports changed: replicas or the activator's path. */
  bool changed() const { return replicas.has_value() || activator_path_changed; }
};

/** Settings of the loop itself (not of the revision). */
struct RevisionAutoscalerOptions {
  /** The decider's period (Knative's hard-coded tickInterval, 2s). Must be > 0; a value ≤ 0
   *  is taken as kTickInterval. */
  Duration tick_interval = kTickInterval;
  /**
   * The owner never calls update() (a simulation replaying fixed settings): the collector then
   * keeps only the windows of the metric the decider reads (MetricSpec::only_metric). An
   * update() anyway records both from then on, the other metric's windows starting empty.
   */
  bool fixed_settings = false;
  /** Fill RevisionDecision::reason (text for events). An owner that never shows it (a
   *  simulation) turns it off: the text is most of the cost of a scale decision. */
  bool explain = true;
};

/**
 * RevisionAutoscaler: the KPA of one revision, from stats in to replicas and SKS mode out.
 *
 * The owner:
 *  - records every stat with record(): the revision-wide scraper stat once per
 *    kScrapeTickInterval (1s) while the revision has ready pods (nothing at 0 pods), and the
 *    activator's report once per second; several stats in one second are summed, as Knative
 *    sums the scraper's stat and each activator's;
 *  - calls activate() when the activator takes the first request of the revision in a
 *    reporting period (at least whenever a request arrives at zero pods);
 *  - calls tick() no later than the returned next_tick_at, and also right after record()
 *    returns true, and whenever the ready pod count changes (Knative re-reconciles on pod
 *    events);
 *  - applies each decision: replicas, and the activator in or out of the path;
 *  - passes times that never go backwards.
 * A short stable window makes the panic window one bucket (6s → 1s): its average is then only
 * the current second's bucket, so record the second's stats before that second's tick.
 *
 * Not thread-safe; not copyable or movable (the decider refers to the collector inside);
 * hold it by unique_ptr.
 */
class RevisionAutoscaler {
 public:
  /**
   * A new revision's KPA, as the KPA reconciler creates it: the decider with its initial
   * status (desired -1, initial EBC) and its ticker starting at `now`; the PA Activating since
   * `now`; the SKS created in Proxy mode, so the activator is in the path since `now`.
   * @param readyPods ready pods now: more than one starts the decider in panic mode (a
   *        restarted autoscaler must not scale an existing revision down).
   */
  RevisionAutoscaler(RevisionScaling scaling, TimePoint now, int readyPods = 0,
                     RevisionAutoscalerOptions options = {});

  RevisionAutoscaler(const RevisionAutoscaler&) = delete;
  RevisionAutoscaler& operator=(const RevisionAutoscaler&) = delete;

  /**
   * The replicas the scale target is created with (the revision reconciler's MakeDeployment:
   * initial-scale). The KPA's first reconciles then apply the bounds.
   */
  int32_t initialReplicas() const { return pa_.scaling().initial_scale; }

  /**
   * Records a stat received or scraped at `now` (Knative's collector: the concurrency is
   * AverageConcurrentRequests − AverageProxiedConcurrentRequests and the rps RequestCount −
   * ProxiedRequestCount, so a request that passed the activator counts once, in the
   * activator's stat).
   * @return true when a poke is due (`Decider::shouldPoke`: the stat has concurrency and the
   *         last desired scale is 0); the next tick() then runs the decider at once. The owner
   *         should call tick() right away.
   */
  bool record(TimePoint now, const Stat& stat);

  /**
   * A request arrived for the revision (the first in the activator's reporting period, e.g.
   * at zero pods): records activatorPokeStat() at `now` and ticks at once. When the desired
   * scale was 0 the decider runs within this call, so the decision scales from zero to
   * max(1, activation-scale) (bounded by max-scale) and the PA goes Activating ("Queued")
   * until a pod is ready. The owner's next activator report must leave this request out.
   */
  RevisionDecision activate(TimePoint now, const RevisionObservation& observation);

  /**
   * One pass of the loop at `now`:
   *  1. the decider runs when its period is due (a fixed grid from construction) or a poke is
   *     pending, with the observed ready pods; a run without data keeps the last status;
   *  2. the SKS model takes in the ready pods (Proxy is forced while none is ready);
   *  3. the PA reconciles on the decider's status, the SKS's spec mode and ProxyFor, and the
   *     observation, again until its status and the SKS stop changing; the SKS spec follows
   *     each reconcile's mode. As in Knative, only on an event: the decider published a
   *     change (poked or not), its re-check (requeue_after) fell due, or the ready pods, the
   *     current replicas, the reachability, the SKS mode or the settings changed since the
   *     last reconcile. Otherwise the last reconcile's want, activators and note stand.
   * @return the decision to apply; replicas is set only when they must change.
   */
  RevisionDecision tick(TimePoint now, const RevisionObservation& observation);

  /**
   * New settings for the revision (annotations or config-autoscaler changed). The metric
   * windows are resized in place, the decider keeps its panic state and status (a changed
   * scale-down delay restarts its window), the PA keeps its status. Takes effect at the next
   * tick(); call one right away, as Knative reconciles a PA whose spec changed.
   */
  void update(TimePoint now, RevisionScaling scaling);

  const RevisionScaling& scaling() const { return pa_.scaling(); }
  const RevisionAutoscalerOptions& options() const { return options_; }
  const PaStatus& paStatus() const { return pa_.status(); }
  const DeciderStatus& deciderStatus() const { return decider_.status(); }
  bool inPanic() const { return decider_.inPanic(); }
  /** The SKS's spec mode as last requested by the PA. */
  SksMode requestedSksMode() const { return sks_spec_mode_; }
  /** The SKS mode in effect (Proxy while no pod is ready). */
  SksMode sksMode() const { return sks_mode_; }
  std::optional<TimePoint> activatorInPathSince() const { return proxy_since_; }
  /** The decider's next scheduled run. */
  TimePoint nextDeciderTick() const { return next_decider_tick_; }
  /** The reconciler's earliest pending re-check, if any. */
  std::optional<TimePoint> requeueAt() const { return requeue_at_; }
  /** A poke is pending (record() returned true and tick() has not run since). */
  bool pokePending() const { return poke_pending_; }

 private:
  // The SKS reconciler's view: the effective mode and ActivatorEndpointsPopulated.
  void observeSks(TimePoint now, int readyPods);
  Duration proxyFor(TimePoint now) const;
  RevisionDecision makeDecision(TimePoint now) const;

  RevisionAutoscalerOptions options_;
  MetricCollector collector_;
  Decider decider_;
  PodAutoscaler pa_;

  TimePoint next_decider_tick_;
  bool poke_pending_ = false;
  std::optional<TimePoint> requeue_at_;

  SksMode sks_spec_mode_ = SksMode::kProxy;
  SksMode sks_mode_ = SksMode::kProxy;
  std::optional<TimePoint> proxy_since_;
  // What the previous call returned, for activator_path_changed.
  bool reported_in_path_ = true;

  // The decider's last observed window averages, for events.
  double stable_ = 0;
  double panic_ = 0;
  bool has_metrics_ = false;

  // What the PA reconciler watches, as of its last run (unset: it must run), and what that run
  // decided (reported again by a tick that does not reconcile).
  struct ReconcileInputs {
    int ready_pods = 0;
    int32_t current_replicas = 0;
    Reachability reachability = Reachability::kReachable;
    SksMode sks_mode = SksMode::kProxy;
    bool operator==(const ReconcileInputs&) const = default;
  };
  std::optional<ReconcileInputs> last_inputs_;
  int32_t last_want_ = -1;
  int32_t last_num_activators_ = kMinActivators;
  ScaleNote last_note_;
};

}  // namespace kh::autoscaler
