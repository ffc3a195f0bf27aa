#pragma once
// Internal: scaling settings of a revision (Knative's config-autoscaler keys and per-revision
// annotations, KServe's minReplicas/maxReplicas/scaleTarget/scaleMetric/containerConcurrency)
// and the per-revision KPA decision (stable and panic windows of 1 s buckets, panic mode,
// rate limits, excess burst capacity, scale to zero after the window and grace). Time is a
// parameter everywhere, so tests drive it.

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "kh/common/time_source.h"
#include "kh/controller/resources.h"

namespace kh::refstack {

struct ScalingSettings {
  std::chrono::seconds stable_window{60};
  std::chrono::seconds panic_window{6};
  double panic_threshold = 2.0;  // factor (200%)
  double target = 70;            // per-pod concurrency (or rps) target, after utilization
  double total = 100;            // per-pod capacity used by excess burst capacity
  double target_burst_capacity = 211;
  double max_scale_up_rate = 1000;
  double max_scale_down_rate = 2;
  std::chrono::milliseconds scale_to_zero_grace{30'000};
  std::chrono::milliseconds pod_retention{0};
  int min_scale = 0;
  int max_scale = 0;  // 0 = unbounded
  int initial_scale = 1;
  int activation_scale = 1;
  int container_concurrency = 0;
  bool enable_scale_to_zero = true;
  std::string metric = "concurrency";  // or rps
};

/**
 * Resolves a revision's settings: Knative's defaults, then `config` (config-autoscaler keys,
 * e.g. "stable-window": "6s"), then KServe's component fields, then the
 * autoscaling.knative.dev/* annotations. @return InvalidArgument naming the bad key.
 */
absl::StatusOr<ScalingSettings> resolveScalingSettings(
    const std::map<std::string, std::string>& config, const controller::ComponentExtension& component,
    const std::map<std::string, std::string>& annotations);

/** Parses Knative durations: "60s", "1m30s", "500ms", "1h"; a bare number is seconds. */
std::optional<std::chrono::milliseconds> parseKnativeDuration(const std::string& text);

struct ScaleDecision {
  int desired = 0;
  double stable = 0;  // window averages of the metric
  double panic = 0;
  bool panicking = false;
  int excess_burst_capacity = 0;
};

/** One revision's KPA decider (Knative pkg/autoscaler/scaling/autoscaler.go, simplified). */
class RevisionDecider {
 public:
  RevisionDecider(ScalingSettings settings, common::MonotonicTime now);

  /** Adds the metric observed over the last second (concurrency or rps of the revision). */
  void record(common::MonotonicTime now, double value);
  /** The decision at `now` for `ready` ready pods (before bounds and scale-to-zero rules). */
  ScaleDecision decide(common::MonotonicTime now, int ready);
  const ScalingSettings& settings() const { return settings_; }

 private:
  double windowAverage(common::MonotonicTime now, std::chrono::seconds window) const;

  ScalingSettings settings_;
  std::deque<std::pair<int64_t, double>> buckets_;  // (second, value), oldest first
  std::optional<common::MonotonicTime> panic_since_;
  int max_panic_pods_ = 0;
  common::MonotonicTime epoch_;
};

}  // namespace kh::refstack
