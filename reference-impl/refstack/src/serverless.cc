#include "serverless.h"

#include "kh/common/strings.h"

namespace kh::refstack {

absl::StatusOr<ScalingSettings> resolveScalingSettings(
    const std::map<std::string, std::string>& config, const controller::ComponentExtension& component,
    const std::map<std::string, std::string>& annotations) {
  auto parsed = autoscaler::parseAutoscalerConfig(config);
  if (!parsed.ok()) return parsed.status();
  autoscaler::KServeScalingFields fields;
  if (component.min_replicas) fields.min_replicas = static_cast<int32_t>(*component.min_replicas);
  fields.max_replicas = static_cast<int32_t>(component.max_replicas);
  if (component.scale_target) fields.scale_target = static_cast<int32_t>(*component.scale_target);
  fields.scale_metric = component.scale_metric;
  auto merged = autoscaler::applyKServeScaling(fields, annotations);
  return autoscaler::resolveRevisionScaling(*parsed, merged,
                                            static_cast<int>(component.container_concurrency.value_or(0)));
}

RevisionDecider::RevisionDecider(const ScalingSettings& settings, common::MonotonicTime now)
    : collector_(autoscaler::makeMetricSpec(settings)),
      decider_(autoscaler::makeDeciderSpec(settings, /*reachable=*/true), collector_, 0, now),
      rps_(settings.scaling_metric == autoscaler::ScalingMetric::kRps) {}

void RevisionDecider::record(common::MonotonicTime now, double concurrency, double requests_per_second) {
  autoscaler::Stat stat;
  stat.pod_name = std::string(autoscaler::kScraperPodName);
  stat.average_concurrent_requests = concurrency;
  stat.request_count = requests_per_second;
  collector_.record(now, stat);
}

ScaleDecision RevisionDecider::decide(common::MonotonicTime now, int ready) {
  ScaleDecision d;
  auto result = decider_.scale(now, ready);
  d.valid = result.valid;
  d.desired = result.desired_pod_count;
  d.excess_burst_capacity = result.excess_burst_capacity;
  d.panicking = decider_.inPanic();
  auto windows = rps_ ? collector_.stableAndPanicRps(now) : collector_.stableAndPanicConcurrency(now);
  if (windows.ok()) {
    d.stable = windows->stable;
    d.panic = windows->panic;
  }
  return d;
}

}  // namespace kh::refstack
