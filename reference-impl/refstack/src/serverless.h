#pragma once
// Internal: a revision's autoscaling as refstack runs it, on the kh::autoscaler library (Knative's
// KPA): the settings come from refstack's config-autoscaler map, KServe's component fields and
// the autoscaling.knative.dev annotations; the decider reads 1 s stats through a
// MetricCollector. Time is a parameter everywhere, so tests drive it.

#include <chrono>
#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "kh/autoscaler/config.h"
#include "kh/autoscaler/decider.h"
#include "kh/autoscaler/metrics.h"
#include "kh/common/time_source.h"
#include "kh/controller/resources.h"

namespace kh::refstack {

using ScalingSettings = autoscaler::RevisionScaling;

/**
 * Resolves a revision's settings: Knative's defaults, then `config` (config-autoscaler keys,
 * e.g. "stable-window": "6s"), then KServe's component fields written as annotations the way
 * KServe's controller writes them, then the user's autoscaling.knative.dev annotations.
 * @return InvalidArgument with Knative's message.
 */
absl::StatusOr<ScalingSettings> resolveScalingSettings(
    const std::map<std::string, std::string>& config, const controller::ComponentExtension& component,
    const std::map<std::string, std::string>& annotations);

struct ScaleDecision {
  bool valid = false;  // false: no data yet (keep the last decision)
  int desired = 0;
  double stable = 0;   // window averages of the metric
  double panic = 0;
  bool panicking = false;
  int excess_burst_capacity = 0;
};

/** One revision's KPA: its metric collector and decider. Not thread-safe. */
class RevisionDecider {
 public:
  RevisionDecider(const ScalingSettings& settings, common::MonotonicTime now);

  /** Records the revision's stat of the last second (the metric's value, revision-wide). */
  void record(common::MonotonicTime now, double concurrency, double requests_per_second);
  ScaleDecision decide(common::MonotonicTime now, int ready);

 private:
  autoscaler::MetricCollector collector_;
  autoscaler::Decider decider_;
  bool rps_;
};

}  // namespace kh::refstack
