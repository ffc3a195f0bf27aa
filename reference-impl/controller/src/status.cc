#include "kh/controller/status.h"

#include <ctime>

#include "fmt/format.h"
#include "kh/common/strings.h"
#include "kh/controller/api_objects.h"

namespace kh::controller {
namespace {

using nlohmann::json;

std::string rfc3339(common::SystemTime t) {
  std::time_t secs = std::chrono::system_clock::to_time_t(t);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&secs));
  return buf;
}

json condition(const std::string& type, bool ok, const std::string& reason,
               const std::string& message, const std::string& time) {
  json c = {{"type", type}, {"status", ok ? "True" : "False"}, {"lastTransitionTime", time}};
  if (!ok) {
    c["reason"] = reason;
    if (!message.empty()) c["message"] = message;
  }
  return c;
}

const Revision* findRevision(const ComponentState& s, const std::string& name) {
  for (const auto& r : s.revisions) {
    if (r.name == name) return &r;
  }
  return nullptr;
}

json componentStatus(const std::string& host_prefix, const std::string& ns, const std::string& domain,
                     const ComponentState& s) {
  json traffic = json::array();
  for (const auto& t : s.traffic) {
    json entry = {{"revisionName", t.revision}, {"percent", t.percent}, {"latestRevision", t.latest_revision}};
    if (t.tag) {
      entry["tag"] = *t.tag;
      entry["url"] = fmt::format("http://{}-{}-{}.{}", *t.tag, host_prefix, ns, domain);
    }
    traffic.push_back(entry);
  }
  json out = {{"latestCreatedRevision", s.rollout.latest_created_revision},
              {"url", fmt::format("http://{}-{}.{}", host_prefix, ns, domain)},
              {"address", {{"url", fmt::format("http://{}.{}.svc.cluster.local", host_prefix, ns)}}},
              {"traffic", traffic}};
  if (!s.rollout.latest_ready_revision.empty()) out["latestReadyRevision"] = s.rollout.latest_ready_revision;
  if (!s.rollout.latest_rolledout_revision.empty()) out["latestRolledoutRevision"] = s.rollout.latest_rolledout_revision;
  if (!s.rollout.previous_rolledout_revision.empty()) out["previousRolledoutRevision"] = s.rollout.previous_rolledout_revision;
  return out;
}

}  // namespace

std::string revisionName(const std::string& isvc, const std::string& component, int index) {
  // A graph's router is a Knative Service of its own, named as the graph.
  if (component == kGraphComponent) return fmt::format("{}-{:05d}", isvc, index);
  return fmt::format("{}-{}-{:05d}", isvc, component, index);
}

bool recordSpec(ComponentState& state, const std::string& isvc, const std::string& component,
                const json& spec) {
  if (!state.revisions.empty() && state.revisions.back().spec == spec) return false;
  Revision r;
  r.name = revisionName(isvc, component, static_cast<int>(state.revisions.size()) + 1);
  r.spec = spec;
  state.rollout.latest_created_revision = r.name;
  state.revisions.push_back(std::move(r));
  return true;
}

void setRevisionReady(ComponentState& state, const std::string& revision, bool ready,
                      const std::string& failure) {
  for (auto& r : state.revisions) {
    if (r.name == revision) {
      r.ready = ready;
      r.failure = failure;
    }
  }
  // Latest ready = the newest revision that is ready.
  state.rollout.latest_ready_revision.clear();
  for (auto it = state.revisions.rbegin(); it != state.revisions.rend(); ++it) {
    if (it->ready) {
      state.rollout.latest_ready_revision = it->name;
      break;
    }
  }
}

json buildStatus(const InferenceService& isvc, const StatusInputs& in) {
  const std::string& name = isvc.metadata.name;
  const std::string& ns = isvc.metadata.namespace_name;
  std::string time = rfc3339(in.now);
  json status = json::object();
  status["url"] = fmt::format("http://{}-{}.{}", name, ns, in.domain);
  status["address"] = {{"url", fmt::format("http://{}.{}.svc.cluster.local", name, ns)}};
  status["deploymentMode"] = "Serverless";
  json conditions = json::array();
  json components = json::object();

  bool predictor_ready = false;
  std::string predictor_reason = "PredictorNotReady", predictor_message;
  if (in.predictor) {
    components["predictor"] = componentStatus(name + "-predictor", ns, in.domain, *in.predictor);
    predictor_ready = !in.predictor->rollout.latest_ready_revision.empty();
    // As Knative's route: ready only when every revision that takes traffic is ready (after a
    // restart the rollout names revisions whose pods are still starting).
    for (const auto& t : in.predictor->traffic) {
      const Revision* r = findRevision(*in.predictor, t.revision);
      if (t.percent > 0 && (r == nullptr || !r->ready)) predictor_ready = false;
    }
    if (const Revision* latest = findRevision(*in.predictor, in.predictor->rollout.latest_created_revision);
        latest && !latest->ready && !latest->failure.empty()) {
      predictor_message = latest->failure;
      if (!predictor_ready) predictor_reason = "RevisionFailed";
    }
  }
  if (in.runtime && in.runtime->failure != RuntimeFailure::kNone) {
    predictor_ready = false;
    predictor_reason = runtimeFailureReason(in.runtime->failure);
    predictor_message = in.runtime->message;
  }
  conditions.push_back(condition("PredictorReady", predictor_ready, predictor_reason, predictor_message, time));
  bool transformer_ready = true;
  if (isvc.transformer) {
    transformer_ready = in.transformer && !in.transformer->rollout.latest_ready_revision.empty();
    if (in.transformer) components["transformer"] = componentStatus(name + "-transformer", ns, in.domain, *in.transformer);
    conditions.push_back(condition("TransformerReady", transformer_ready, "TransformerNotReady", "", time));
  }
  // IngressReady waits for every component, so a transformer gates Ready through it.
  bool ingress_ready = predictor_ready && transformer_ready;
  std::string ingress_reason = !predictor_ready ? "Predictor ingress not created" : "Transformer ingress not created";
  conditions.push_back(condition("IngressReady", ingress_ready, ingress_reason, "", time));
  conditions.push_back(condition("Ready", predictor_ready && ingress_ready,
                                 predictor_ready ? ingress_reason : predictor_reason, predictor_message, time));
  status["conditions"] = conditions;
  status["components"] = components;

  // modelStatus
  json model = json::object();
  if (in.runtime && in.runtime->failure != RuntimeFailure::kNone) {
    model["transitionStatus"] = "InvalidSpec";
    model["states"] = {{"activeModelState", ""}, {"targetModelState", "FailedToLoad"}};
    model["lastFailureInfo"] = {{"reason", runtimeFailureReason(in.runtime->failure)},
                                {"message", in.runtime->message},
                                {"time", time}};
  } else if (predictor_ready) {
    model["transitionStatus"] = "UpToDate";
    model["states"] = {{"activeModelState", "Loaded"}, {"targetModelState", "Loaded"}};
  } else if (!predictor_message.empty()) {
    model["transitionStatus"] = "BlockedByFailedLoad";
    model["states"] = {{"activeModelState", ""}, {"targetModelState", "FailedToLoad"}};
    model["lastFailureInfo"] = {{"reason", "ModelLoadFailed"},
                                {"message", predictor_message},
                                {"modelRevisionName", in.predictor ? in.predictor->rollout.latest_created_revision : ""},
                                {"time", time}};
  } else {
    model["transitionStatus"] = "InProgress";
    model["states"] = {{"activeModelState", ""}, {"targetModelState", "Loading"}};
  }
  status["modelStatus"] = model;
  if (in.runtime && in.runtime->runtime) {
    status[in.runtime->runtime->cluster_scoped ? "clusterServingRuntimeName" : "servingRuntimeName"] =
        in.runtime->runtime->metadata.name;
  }
  return status;
}

}  // namespace kh::controller
