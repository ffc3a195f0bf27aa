#pragma once
// Revisions and the status KServe writes for an InferenceService (Knative mode): each spec change
// of a component makes an immutable revision {isvc}-{component}-0000N; status carries url,
// address, conditions, components.<c> (revisions and traffic) and modelStatus.

#include <optional>
#include <string>
#include <vector>

#include "kh/common/time_source.h"
#include "kh/controller/resources.h"
#include "kh/controller/rollout.h"
#include "nlohmann/json.hpp"

namespace kh::controller {

struct Revision {
  std::string name;
  nlohmann::json spec;  // the component spec it was made from
  bool ready = false;
  std::string failure;  // why it is not ready, when known
};

/** Everything the controller tracks for one component of one InferenceService. */
struct ComponentState {
  std::vector<Revision> revisions;
  RolloutState rollout;
  std::vector<TrafficTarget> traffic;
};

/** "{isvc}-{component}-{index:05}" (index from 1). */
std::string revisionName(const std::string& isvc, const std::string& component, int index);

/**
 * Records `spec` for a component: a new revision when it differs from the latest one (the
 * latest created revision moves), nothing otherwise. @return whether a revision was made.
 */
bool recordSpec(ComponentState& state, const std::string& isvc, const std::string& component,
                const nlohmann::json& spec);

/** Marks a revision ready (or not) and moves latest_ready_revision accordingly. */
void setRevisionReady(ComponentState& state, const std::string& revision, bool ready,
                      const std::string& failure = {});

struct StatusInputs {
  std::string domain = "example.com";
  const ComponentState* predictor = nullptr;
  const ComponentState* transformer = nullptr;
  std::optional<RuntimeSelection> runtime;  // predictor's runtime choice
  common::SystemTime now;
};

/** status as KServe writes it (see shared/specs/kserve.md 3.1). */
nlohmann::json buildStatus(const InferenceService& isvc, const StatusInputs& inputs);

}  // namespace kh::controller
