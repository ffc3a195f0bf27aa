#include "kh/autoscaler/decider.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "kh/autoscaler/rounding.h"

namespace kh::autoscaler {
namespace {

// Go's int32(float64) on the values seen here; saturating instead of undefined out of range.
int32_t toInt32(double v) {
  if (std::isnan(v)) return 0;
  if (v >= static_cast<double>(std::numeric_limits<int32_t>::max())) {
    return std::numeric_limits<int32_t>::max();
  }
  if (v <= static_cast<double>(std::numeric_limits<int32_t>::min())) {
    return std::numeric_limits<int32_t>::min();
  }
  return static_cast<int32_t>(v);
}

std::optional<MaxTimeWindow> makeDelayWindow(Duration delay) {
  if (delay <= Duration(0)) return std::nullopt;
  return MaxTimeWindow(delay, kTickInterval);
}

bool sameSign(int32_t a, int32_t b) { return (a < 0) == (b < 0); }

}  // namespace

DeciderSpec makeDeciderSpec(const RevisionScaling& scaling, bool reachable) {
  DeciderSpec spec;
  spec.max_scale_up_rate = scaling.max_scale_up_rate;
  spec.max_scale_down_rate = scaling.max_scale_down_rate;
  spec.scaling_metric = scaling.scaling_metric;
  spec.target_value = scaling.target_value;
  spec.total_value = scaling.total_value;
  spec.target_burst_capacity = scaling.target_burst_capacity;
  spec.activator_capacity = scaling.activator_capacity;
  spec.panic_threshold = scaling.panic_threshold;
  spec.stable_window = scaling.stable_window;
  spec.scale_down_delay = scaling.scale_down_delay;
  spec.initial_scale = scaling.initial_scale;
  spec.reachable = reachable;
  spec.activation_scale = scaling.activation_scale;
  return spec;
}

int32_t initialExcessBurstCapacity(const DeciderSpec& spec) {
  const double tbc = spec.target_burst_capacity;
  if (tbc == -1 || tbc == 0) return toInt32(tbc);
  return toInt32(static_cast<double>(spec.initial_scale) * spec.total_value - tbc);
}

Decider::Decider(DeciderSpec spec, const MetricClient& metrics, int readyCount, TimePoint now)
    : spec_(std::move(spec)),
      metrics_(metrics),
      max_panic_pods_(std::max(readyCount, 0)),
      delay_window_(makeDelayWindow(spec_.scale_down_delay)) {
  status_.desired_scale = -1;
  status_.excess_burst_capacity = initialExcessBurstCapacity(spec_);
  if (readyCount > 1) panic_time_ = now;
}

void Decider::update(DeciderSpec spec) {
  if (spec.scale_down_delay != spec_.scale_down_delay) {
    delay_window_ = makeDelayWindow(spec.scale_down_delay);
  }
  spec_ = std::move(spec);
}

ScaleResult Decider::scale(TimePoint now, int readyCount) {
  absl::StatusOr<StableAndPanic> observed = spec_.scaling_metric == ScalingMetric::kRps
                                                ? metrics_.stableAndPanicRps(now)
                                                : metrics_.stableAndPanicConcurrency(now);
  // ErrNoData or any other error: no decision this tick.
  if (!observed.ok()) {
    last_observed_.reset();
    return ScaleResult{};
  }
  last_observed_ = *observed;
  return scaleObserved(now, readyCount, observed->stable, observed->panic);
}

ScaleResult Decider::scaleObserved(TimePoint now, int readyCount, double stable, double panic) {
  const DeciderSpec& spec = spec_;
  const int original_ready = std::max(readyCount, 0);
  // Use 1 when there are no ready pods.
  const double ready = std::max(1.0, static_cast<double>(original_ready));

  // Rounding up lets a conservative rate still grow by one pod (MSUR 1.1 × 2 pods → 3).
  const double max_scale_up = ceilExact(spec.max_scale_up_rate * ready);
  const double max_scale_down = spec.reachable ? floorExact(ready / spec.max_scale_down_rate) : 0.;

  const double dspc = ceilExact(stable / spec.target_value);
  const double dppc = ceilExact(panic / spec.target_value);

  int32_t desired_stable = toInt32(std::min(std::max(dspc, max_scale_down), max_scale_up));
  int32_t desired_panic = toInt32(std::min(std::max(dppc, max_scale_down), max_scale_up));

  if (spec.activation_scale > 1) {
    if (dspc > 0 && spec.activation_scale > desired_stable) desired_stable = spec.activation_scale;
    if (dppc > 0 && spec.activation_scale > desired_panic) desired_panic = spec.activation_scale;
  }

  const bool over_panic_threshold = dppc / ready >= spec.panic_threshold;
  if (over_panic_threshold) {
    // Start panicking, or extend the panic while still over the threshold.
    panic_time_ = now;
  } else if (panic_time_ && *panic_time_ + spec.stable_window < now) {
    // The surge has made its way into the stable window: un-panic.
    panic_time_.reset();
    max_panic_pods_ = 0;
  }

  int32_t desired = desired_stable;
  if (panic_time_) {
    // The stable value may exceed the panic one; provision for the larger.
    desired = std::max(desired, desired_panic);
    // No scale-down while panicking: only increases apply.
    if (desired > max_panic_pods_) max_panic_pods_ = desired;
    desired = max_panic_pods_;
  }

  // A one-bucket window is not the same as no delay (two ticks in one bucket keep the
  // larger), hence the explicit check.
  if (spec.reachable && delay_window_) {
    delay_window_->record(now, desired);
    desired = delay_window_->current();
  }

  // Excess burst capacity, on the panic value so the activator is not flipped on a whim.
  double ebc = -1;
  if (spec.target_burst_capacity == 0) {
    ebc = 0;
  } else if (spec.target_burst_capacity > 0) {
    const double total_capacity = static_cast<double>(original_ready) * spec.total_value;
    ebc = floorExact(total_capacity - spec.target_burst_capacity - panic);
  }
  return ScaleResult{desired, toInt32(ebc), true};
}

bool Decider::tick(TimePoint now, int readyCount) {
  const ScaleResult result = scale(now, readyCount);
  if (!result.valid) return false;
  bool changed = status_.desired_scale != result.desired_pod_count;
  status_.desired_scale = result.desired_pod_count;
  changed = changed || !sameSign(status_.excess_burst_capacity, result.excess_burst_capacity);
  status_.excess_burst_capacity = result.excess_burst_capacity;
  return changed;
}

}  // namespace kh::autoscaler
