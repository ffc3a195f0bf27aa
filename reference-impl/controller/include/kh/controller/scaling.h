#pragma once
// A revision's autoscaling settings as KServe and Knative resolve them: Knative's defaults, then
// the stack's config-autoscaler map, then KServe's component fields written as the annotations
// KServe's controller writes, then the user's autoscaling.knative.dev annotations.

#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "kh/autoscaler/config.h"
#include "kh/controller/resources.h"

namespace kh::controller {

/**
 * @param config config-autoscaler keys, e.g. "stable-window": "6s".
 * @return InvalidArgument with Knative's message for a bad key or annotation.
 */
absl::StatusOr<autoscaler::RevisionScaling> resolveScalingSettings(
    const std::map<std::string, std::string>& config, const ComponentExtension& component,
    const std::map<std::string, std::string>& annotations);

}  // namespace kh::controller
