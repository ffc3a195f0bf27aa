#pragma once
// Runtime selection and canary traffic, exactly as KServe computes them (Knative mode).

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kh/controller/resources.h"

namespace kh::controller {

/** Why no runtime was chosen, as modelStatus.lastFailureInfo.reason. */
enum class RuntimeFailure { kNone, kRuntimeNotRecognized, kRuntimeDisabled, kNoSupportingRuntime };
const char* runtimeFailureReason(RuntimeFailure failure);

struct RuntimeSelection {
  RuntimeFailure failure = RuntimeFailure::kNone;
  std::string message;          // for failures
  const ServingRuntime* runtime = nullptr;  // points into the lists given to selectRuntime
  std::string protocol;         // the ISVC's protocol after selection (runtime's lowest if unset)
};

/**
 * Selects the runtime of a predictor: an explicit `runtime` (namespaced before cluster-scoped;
 * disabled, protocol and format checks), else auto-selection among enabled, single-model runtimes
 * whose autoSelect formats match (name, and version when the ISVC sets one) and whose protocols
 * include the ISVC's (v1 when unset); ordered by lowest protocol, newest, name, then stably by
 * priority for the format; namespaced runtimes always before cluster ones.
 */
RuntimeSelection selectRuntime(const InferenceService& isvc,
                               const std::vector<ServingRuntime>& namespaced,
                               const std::vector<ServingRuntime>& cluster);

/** One entry of a component's traffic table (a Knative TrafficTarget). */
struct TrafficTarget {
  std::string revision;  // resolved revision name
  int64_t percent = 0;
  std::optional<std::string> tag;
  bool latest_revision = false;
};

/** The rollout state KServe keeps in status.components.<component>. */
struct RolloutState {
  std::string latest_created_revision;
  std::string latest_ready_revision;
  std::string latest_rolledout_revision;
  std::string previous_rolledout_revision;
};

/**
 * The traffic table for a component (ksvc_reconciler createKnativeService): with a canary
 * percent and a rolled-out revision, latest ready gets P and the rolled-out one 100-P tagged
 * "prev"; otherwise 100% latest. "latest" tags only with tag routing enabled.
 */
std::vector<TrafficTarget> computeTraffic(const std::optional<int64_t>& canary_percent,
                                          const RolloutState& state, bool tag_routing);

/**
 * Updates the rollout bookkeeping after traffic settled (PropagateStatus): a latest-ready
 * revision at 100% becomes the rolled-out one (the old one moves to previous); a rollback of an
 * already promoted revision (latest at < 100%) restores the previous rolled-out revision.
 */
void propagateRollout(RolloutState& state, const std::vector<TrafficTarget>& traffic);

}  // namespace kh::controller
