#pragma once
// The KPA reconciler's side (knative.md §2.3, §3.1): pkg/reconciler/autoscaling/kpa/kpa.go
// and scaler.go. It turns the decider's desired scale into the replica count to apply (bounds,
// initial scale, scale-to-zero with its grace and retention periods, the activation timeout),
// chooses the SKS mode (activator in or out of the path) and the number of activators, and
// keeps the PodAutoscaler's Active condition.
//
// No network and no Kubernetes: the caller supplies pod counts, the SKS state and the result
// of the activator probe, and acts on what comes back (patch replicas, re-check after a delay,
// start the async probe, set the SKS mode).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "kh/autoscaler/config.h"
#include "kh/autoscaler/decider.h"

namespace kh::autoscaler {

/** The Active condition of a PodAutoscaler: Unknown / True / False. */
enum class PaActivity { kActivating, kActive, kInactive };
const char* paActivityName(PaActivity activity);

/** ServerlessService mode: Serve = straight to the pods; Proxy = through the activator. */
enum class SksMode { kServe, kProxy };
const char* sksModeName(SksMode mode);

/** Whether routes send traffic to the revision (`pa.Spec.Reachability`). */
enum class Reachability { kReachable, kUnreachable, kUnknown };

/** PA condition reasons used by the KPA. */
inline constexpr std::string_view kReasonNoTraffic = "NoTraffic";
inline constexpr std::string_view kReasonTimedOut = "TimedOut";
inline constexpr std::string_view kReasonQueued = "Queued";

/** The part of `PodAutoscalerStatus` the KPA reads and writes. */
struct PaStatus {
  PaActivity activity = PaActivity::kActivating;
  /** LastTransitionTime of the Active condition (changes with status, reason or message). */
  TimePoint activity_since{};
  /** The KPA's constant reason and message (kReason*, the Message* texts): views of static
   *  strings, so copying a status and reconciling allocate nothing. */
  std::string_view reason;
  std::string_view message;
  bool scale_target_initialized = false;
  /** Last `want` recorded (nullopt until the first reconcile). */
  std::optional<int32_t> desired_scale;
  int32_t actual_scale = 0;

  /** How long the PA has been in `state` as of `now`; -1ns when it is not in it. */
  Duration inStateFor(PaActivity state, TimePoint now) const;
};

/** applyBounds(): clamps to [min, max]; max == 0 means unbounded. */
int32_t applyBounds(int32_t min, int32_t max, int32_t x);

/** ScaleBounds(): (min, max); min-scale is ignored (0) while the PA is Unreachable. */
std::pair<int32_t, int32_t> scaleBounds(const RevisionScaling& scaling, Reachability reachability);

/** lastPodRetention(): the retention period, 0 while the PA is Unreachable. */
Duration lastPodRetention(const RevisionScaling& scaling, Reachability reachability);

/**
 * computeNumActivators(): how many activators the SKS puts in the path.
 * TBC == 0 → 2; otherwise max(2, ceil((ready·TotalValue + max(TBC, 0)) / activatorCapacity)).
 */
int32_t computeActivatorNum(int readyPods, const DeciderSpec& spec);

/**
 * The SKS mode the KPA asks for: Serve when want > 0 and EBC ≥ 0; Proxy otherwise (also when
 * want == -1 and the PA is Inactive).
 */
SksMode computeSksMode(int32_t want, int32_t excessBurstCapacity, bool paInactive);

/**
 * The SKS reconciler's override of the requested mode: Proxy when the private service has no
 * ready endpoint (nothing to serve from), Serve when there is no activator endpoint.
 */
SksMode effectiveSksMode(SksMode requested, int privateReadyEndpoints, int activatorEndpoints);

/**
 * activeThreshold(): ready pods needed to count as Active. Before ScaleTargetInitialized
 * max(min, initialScale), after it max(min, 1).
 */
int activeThreshold(const RevisionScaling& scaling, Reachability reachability,
                    bool scaleTargetInitialized);

/** What the scaler is told about the world at one reconcile. */
struct ScalerInput {
  /** The decider's DesiredScale (-1: no metrics yet). */
  int32_t desired_scale = -1;
  Reachability reachability = Reachability::kReachable;
  /** The SKS's current spec mode. */
  SksMode sks_mode = SksMode::kServe;
  /** SKS ProxyFor(): how long activator endpoints have been in the path; 0 if they are not. */
  Duration proxy_for{0};
  /**
   * Result of the synchronous activator probe of the revision's public service (200 "activator"
   * with `K-Network-Probe: activator`). Not used when TBC == -1 (no probe is made then).
   */
  bool activator_probe_ok = true;
};

/**
 * Why the scaler decided as it did. Kept as a kind and its durations and put in words only when
 * asked (text()), because the reconciler runs every tick and a fleet simulation runs millions
 * of them: building the sentence each time cost more than the decision.
 */
struct ScaleNote {
  enum class Kind {
    kNone,
    kNoMetrics,             // metrics are not yet being collected
    kScaleToZeroDisabled,   // scale to zero disabled
    kActivationTimedOut,    // activation timed out after `a`
    kActivating,            // activating
    kCanDeactivate,         // can deactivate PA, was active for `a`
    kSleeping,              // sleeping `a` more before scaling to 0
    kNotBackedByActivator,  // PA is not yet backed by activator, cannot scale to zero
    kPastGrace,             // inactive past grace and retention
    kRetention,             // can't scale to 0; inactive for `a` < retention `b`
    kFastPath,              // fast path scaling to 0, in proxy mode for: `a`
    kEnqueueing,            // enqueueing PA after `a`
  };
  Kind kind = Kind::kNone;
  Duration a{0};
  Duration b{0};

  bool empty() const { return kind == Kind::kNone; }
  /** The note in words, as Knative's scaler logs it ("enqueueing PA after 28s"). */
  std::string text() const;
};

/** What the scaler decided (`scaler.scale` + `handleScaleToZero`). */
struct ScalerDecision {
  /** The scale the reconciler works with (-1: unknown); goes into PA status and SKS mode. */
  int32_t want = -1;
  /** Patch the scale target's replicas to `want` (when they differ). */
  bool apply = false;
  /** Re-run the reconcile after this long ("not now, re-check after D"). */
  std::optional<Duration> requeue_after;
  /** Start the async activator probe (kProbePeriod, kProbeTimeout); re-queue when it ends. */
  bool start_async_probe = false;
  /** Why, for logs and tests. */
  ScaleNote note;
};

/**
 * computeScale(): the KPA scaler's decision for one reconcile (scaler.go `scale`):
 *  1. desired < 0 (no metrics yet) does nothing unless the PA is Activating;
 *  2. before ScaleTargetInitialized, reachable, initial-scale > 1: min = max(initial, min);
 *     then applyBounds(min, max, desired);
 *  3. desired == 0 goes through handleScaleToZero: enable-scale-to-zero=false → 1; Activating
 *     for > progress-deadline + 30s → 0 (else wait); Active for ≥ stable window → 0 not applied
 *     (the PA goes Inactive, re-check after 3s when the SKS is already Proxy), else hold 1 and
 *     re-check after the rest of the window; Inactive: probe the activator (unless TBC = -1),
 *     scale to 0 once inactive ≥ max(grace, retention), wait out the retention, or take the
 *     fast path when the SKS has been proxying for ≥ grace.
 */
ScalerDecision computeScale(const RevisionScaling& scaling, const PaStatus& pa,
                            const ScalerInput& input, TimePoint now);

/**
 * computeActiveCondition(): updates the Active condition (and ScaleTargetInitialized) from
 * `want` and the ready count:
 *  - want == 0 (or nothing required): Inactive NoTraffic, or TimedOut when it was Activating;
 *  - ready < minReady: Activating "Queued" (unless Inactive and want ≤ 0);
 *  - otherwise Active (unless Inactive and want ≤ 0).
 */
void computeActiveCondition(PaStatus& pa, const RevisionScaling& scaling,
                            Reachability reachability, int32_t want, int readyPods, TimePoint now);

/**
 * PodAutoscaler: the KPA reconcile loop of one revision (kpa.go `ReconcileKind` once the SKS
 * exists), holding the PA status between reconciles. Not thread-safe.
 */
class PodAutoscaler {
 public:
  /** A new PA: conditions initialized, so Active is Unknown (Activating) since `now`. */
  PodAutoscaler(RevisionScaling scaling, TimePoint now);

  struct Observation {
    /** The decider's published status. */
    DeciderStatus decider;
    int ready_pods = 0;
    /** The scale target's spec.replicas (Go defaults a missing value to 1). */
    int32_t current_replicas = 1;
    Reachability reachability = Reachability::kReachable;
    SksMode sks_mode = SksMode::kServe;
    Duration proxy_for{0};
    bool activator_probe_ok = true;
  };

  /** The scaler's decision (want, requeue_after, start_async_probe, note), extended in place
   *  rather than copied field by field: this runs every tick of every simulated revision. */
  struct Result : ScalerDecision {
    /** Set when replicas must be patched to this value. */
    std::optional<int32_t> replicas_to_apply;
    /** The SKS mode to request, and the number of activators for it. */
    SksMode sks_mode = SksMode::kProxy;
    int32_t num_activators = kMinActivators;
  };

  /** One reconcile at `now`. Updates status(). */
  Result reconcile(TimePoint now, const Observation& observation);

  /** New scaling settings (a changed annotation or ConfigMap); the status is kept. */
  void update(RevisionScaling scaling) {
    scaling_ = std::move(scaling);
    activator_spec_ = makeDeciderSpec(scaling_, /*reachable=*/true);
  }

  const PaStatus& status() const { return status_; }
  const RevisionScaling& scaling() const { return scaling_; }
  /** Sets the status directly, e.g. to start a test in a given condition. */
  void setStatusForTest(PaStatus status) { status_ = std::move(status); }

 private:
  RevisionScaling scaling_;
  // What computeActivatorNum reads (it ignores reachability), made with the settings rather
  // than on every reconcile.
  DeciderSpec activator_spec_;
  PaStatus status_;
};

}  // namespace kh::autoscaler
