#include "kh/autoscaler/scaler.h"

#include <algorithm>
#include <cmath>

#include "kh/autoscaler/rounding.h"
#include "kh/common/strings.h"

namespace kh::autoscaler {
namespace {

using common::strCat;

constexpr std::string_view kMessageNoTraffic = "The target is not receiving traffic.";
constexpr std::string_view kMessageTimedOut = "The target could not be activated.";
constexpr std::string_view kMessageQueued =
    "Requests to the target are being buffered as resources are provisioned.";
// Re-check delay once the SKS is already proxying and the PA may go Inactive.
constexpr std::chrono::seconds kProxyRequeue{3};

// The knative.dev/pkg condition set keeps LastTransitionTime unless something but the time
// changes.
void markActive(PaStatus& pa, PaActivity activity, std::string_view reason,
                std::string_view message, TimePoint now) {
  // The reasons are the same constants every time: compare where they point before their text.
  auto same = [](std::string_view a, std::string_view b) {
    return (a.data() == b.data() && a.size() == b.size()) || a == b;
  };
  if (pa.activity == activity && same(pa.reason, reason) && same(pa.message, message)) return;
  pa.activity = activity;
  pa.reason = reason;
  pa.message = message;
  pa.activity_since = now;
}

using NoteKind = ScaleNote::Kind;
ScaleNote note(NoteKind kind, Duration a = Duration(0), Duration b = Duration(0)) { return ScaleNote{kind, a, b}; }

// Returns the decision itself (not a struct copied into it): the scaler runs every tick of
// every revision in a fleet simulation, and the copy cost store-forwarding stalls.
ScalerDecision handleScaleToZero(const RevisionScaling& scaling, const PaStatus& pa,
                              const ScalerInput& input, int32_t desired, TimePoint now) {
  if (desired != 0) return {desired, true, std::nullopt, false, {}};
  if (!scaling.enable_scale_to_zero) return {1, true, std::nullopt, false, note(NoteKind::kScaleToZeroDisabled)};

  const Duration activation_timeout = scaling.progress_deadline + kActivationTimeoutBuffer;
  switch (pa.activity) {
    case PaActivity::kActivating:
      if (pa.inStateFor(PaActivity::kActivating, now) > activation_timeout) {
        return {desired, true, std::nullopt, false, note(NoteKind::kActivationTimedOut, activation_timeout)};
      }
      return {-1, false, activation_timeout, false, note(NoteKind::kActivating)};

    case PaActivity::kActive: {
      const Duration sw = scaling.stable_window;
      const Duration af = pa.inStateFor(PaActivity::kActive, now);
      if (af >= sw) {
        // Not applied: the PA goes Inactive and the SKS to Proxy first.
        std::optional<Duration> requeue;
        if (input.sks_mode == SksMode::kProxy) requeue = kProxyRequeue;
        return {desired, false, requeue, false, note(NoteKind::kCanDeactivate, af)};
      }
      return {1, true, sw - af, false, note(NoteKind::kSleeping, sw - af)};
    }

    case PaActivity::kInactive:
      break;
  }

  // Inactive: unless TBC = -1, the activator must be in the path before the last pod goes.
  const bool probe_ok = scaling.target_burst_capacity == -1 || input.activator_probe_ok;
  if (!probe_ok) {
    return {desired, false, std::nullopt, true, note(NoteKind::kNotBackedByActivator)};
  }
  const Duration inactive_for = pa.inStateFor(PaActivity::kInactive, now);
  const Duration last_pod_timeout = lastPodRetention(scaling, input.reachability);
  const Duration last_pod_max_timeout =
      std::max(scaling.scale_to_zero_grace_period, last_pod_timeout);
  if (inactive_for >= last_pod_max_timeout) {
    return {desired, true, std::nullopt, false, note(NoteKind::kPastGrace)};
  }
  if (last_pod_timeout > Duration(0) && inactive_for < last_pod_timeout) {
    return {desired, false, last_pod_timeout - inactive_for, false,
            note(NoteKind::kRetention, inactive_for, last_pod_timeout)};
  }
  const Duration to = scaling.scale_to_zero_grace_period - input.proxy_for;
  if (to <= Duration(0)) {
    return {desired, true, std::nullopt, false, note(NoteKind::kFastPath, input.proxy_for)};
  }
  return {desired, false, to, false, note(NoteKind::kEnqueueing, to)};
}

}  // namespace

std::string ScaleNote::text() const {
  switch (kind) {
    case Kind::kNone:
      return "";
    case Kind::kNoMetrics:
      return "metrics are not yet being collected";
    case Kind::kScaleToZeroDisabled:
      return "scale to zero disabled";
    case Kind::kActivationTimedOut:
      return strCat("activation timed out after ", formatGoDuration(a));
    case Kind::kActivating:
      return "activating";
    case Kind::kCanDeactivate:
      return strCat("can deactivate PA, was active for ", formatGoDuration(a));
    case Kind::kSleeping:
      return strCat("sleeping ", formatGoDuration(a), " more before scaling to 0");
    case Kind::kNotBackedByActivator:
      return "PA is not yet backed by activator, cannot scale to zero";
    case Kind::kPastGrace:
      return "inactive past grace and retention";
    case Kind::kRetention:
      return strCat("can't scale to 0; inactive for ", formatGoDuration(a),
                    " < scale-to-zero-pod-retention-period ", formatGoDuration(b));
    case Kind::kFastPath:
      return strCat("fast path scaling to 0, in proxy mode for: ", formatGoDuration(a));
    case Kind::kEnqueueing:
      return strCat("enqueueing PA after ", formatGoDuration(a));
  }
  return "";
}

const char* paActivityName(PaActivity activity) {
  switch (activity) {
    case PaActivity::kActivating:
      return "Activating";
    case PaActivity::kActive:
      return "Active";
    case PaActivity::kInactive:
      return "Inactive";
  }
  return "?";
}

const char* sksModeName(SksMode mode) { return mode == SksMode::kServe ? "Serve" : "Proxy"; }

Duration PaStatus::inStateFor(PaActivity state, TimePoint now) const {
  if (activity != state) return Duration(-1);
  return now - activity_since;
}

int32_t applyBounds(int32_t min, int32_t max, int32_t x) {
  if (x < min) return min;
  if (max != 0 && x > max) return max;
  return x;
}

std::pair<int32_t, int32_t> scaleBounds(const RevisionScaling& scaling,
                                        Reachability reachability) {
  const int32_t min = reachability == Reachability::kUnreachable ? 0 : scaling.min_scale;
  return {min, scaling.max_scale};
}

Duration lastPodRetention(const RevisionScaling& scaling, Reachability reachability) {
  if (reachability == Reachability::kUnreachable) return Duration(0);
  return scaling.scale_to_zero_pod_retention_period;
}

int32_t computeActivatorNum(int readyPods, const DeciderSpec& spec) {
  if (spec.target_burst_capacity == 0) return kMinActivators;
  double capacity_to_cover = static_cast<double>(readyPods) * spec.total_value;
  if (spec.target_burst_capacity > 0) capacity_to_cover += spec.target_burst_capacity;
  return static_cast<int32_t>(std::max(static_cast<double>(kMinActivators),
                                       ceilExact(capacity_to_cover / spec.activator_capacity)));
}

SksMode computeSksMode(int32_t want, int32_t excessBurstCapacity, bool paInactive) {
  if (want == -1 && paInactive) return SksMode::kProxy;
  if (want > 0 && excessBurstCapacity >= 0) return SksMode::kServe;
  return SksMode::kProxy;
}

SksMode effectiveSksMode(SksMode requested, int privateReadyEndpoints, int activatorEndpoints) {
  if (requested == SksMode::kServe && privateReadyEndpoints == 0) return SksMode::kProxy;
  if (requested == SksMode::kProxy && activatorEndpoints == 0) return SksMode::kServe;
  return requested;
}

int activeThreshold(const RevisionScaling& scaling, Reachability reachability,
                    bool scaleTargetInitialized) {
  const int32_t min = scaleBounds(scaling, reachability).first;
  if (!scaleTargetInitialized) return std::max(min, scaling.initial_scale);
  return std::max(min, 1);
}

ScalerDecision computeScale(const RevisionScaling& scaling, const PaStatus& pa,
                            const ScalerInput& input, TimePoint now) {
  int32_t desired = input.desired_scale;
  if (desired < 0 && pa.activity != PaActivity::kActivating) {
    return {desired, false, std::nullopt, false, note(NoteKind::kNoMetrics)};
  }
  auto [min_scale, max_scale] = scaleBounds(scaling, input.reachability);
  if (scaling.initial_scale > 1 && !pa.scale_target_initialized &&
      input.reachability != Reachability::kUnreachable) {
    min_scale = std::max(scaling.initial_scale, min_scale);
  }
  desired = applyBounds(min_scale, max_scale, desired);
  return handleScaleToZero(scaling, pa, input, desired, now);
}

void computeActiveCondition(PaStatus& pa, const RevisionScaling& scaling,
                            Reachability reachability, int32_t want, int readyPods,
                            TimePoint now) {
  const int min_ready = activeThreshold(scaling, reachability, pa.scale_target_initialized);
  // Go also requires the SKS's public service name; the SKS exists by the time we run.
  if (readyPods >= min_ready) pa.scale_target_initialized = true;

  const bool inactive = pa.activity == PaActivity::kInactive;
  if (want == 0 || min_ready == 0) {
    if (pa.activity == PaActivity::kActivating && min_ready > 0) {
      markActive(pa, PaActivity::kInactive, kReasonTimedOut, kMessageTimedOut, now);
    } else {
      markActive(pa, PaActivity::kInactive, kReasonNoTraffic, kMessageNoTraffic, now);
    }
  } else if (readyPods < min_ready) {
    if (want > 0 || !inactive) {
      markActive(pa, PaActivity::kActivating, kReasonQueued, kMessageQueued, now);
    } else {
      markActive(pa, PaActivity::kInactive, kReasonNoTraffic, kMessageNoTraffic, now);
    }
  } else if (want > 0 || !inactive) {
    markActive(pa, PaActivity::kActive, "", "", now);
  }
}

PodAutoscaler::PodAutoscaler(RevisionScaling scaling, TimePoint now)
    : scaling_(std::move(scaling)), activator_spec_(makeDeciderSpec(scaling_, /*reachable=*/true)) {
  status_.activity = PaActivity::kActivating;
  status_.activity_since = now;
}

PodAutoscaler::Result PodAutoscaler::reconcile(TimePoint now, const Observation& obs) {
  ScalerInput input;
  input.desired_scale = obs.decider.desired_scale;
  input.reachability = obs.reachability;
  input.sks_mode = obs.sks_mode;
  input.proxy_for = obs.proxy_for;
  input.activator_probe_ok = obs.activator_probe_ok;
  Result r{computeScale(scaling_, status_, input, now), std::nullopt, SksMode::kProxy, kMinActivators};
  if (r.apply && r.want != obs.current_replicas) r.replicas_to_apply = r.want;
  r.sks_mode = computeSksMode(r.want, obs.decider.excess_burst_capacity,
                              status_.activity == PaActivity::kInactive);
  r.num_activators = computeActivatorNum(obs.ready_pods, activator_spec_);

  // computeStatus: a -1 does not overwrite a known desired scale.
  status_.actual_scale = obs.ready_pods;
  if (!(r.want == -1 && status_.desired_scale && *status_.desired_scale >= 0)) {
    status_.desired_scale = r.want;
  }
  computeActiveCondition(status_, scaling_, obs.reachability, r.want, obs.ready_pods, now);
  return r;
}

}  // namespace kh::autoscaler
