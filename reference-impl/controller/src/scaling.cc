#include "kh/controller/scaling.h"

namespace kh::controller {

absl::StatusOr<autoscaler::RevisionScaling> resolveScalingSettings(
    const std::map<std::string, std::string>& config, const ComponentExtension& component,
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

}  // namespace kh::controller
