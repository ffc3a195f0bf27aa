#include "kh/controller/rollout.h"

#include <algorithm>

#include "kh/common/strings.h"

namespace kh::controller {
namespace {

// Protocol order used for sorting runtimes: v1 < v2 < grpc-v1 < grpc-v2 < none.
int protocolRank(const std::string& p) {
  if (p == "v1") return 0;
  if (p == "v2") return 1;
  if (p == "grpc-v1") return 2;
  if (p == "grpc-v2") return 3;
  return 4;
}

int lowestProtocolRank(const ServingRuntime& rt) {
  int best = 4;
  for (const auto& p : rt.protocol_versions) best = std::min(best, protocolRank(p));
  return best;
}

std::string lowestProtocol(const ServingRuntime& rt) {
  static const char* kNames[] = {"v1", "v2", "grpc-v1", "grpc-v2"};
  int rank = lowestProtocolRank(rt);
  return rank < 4 ? kNames[rank] : "v1";
}

bool supportsProtocol(const ServingRuntime& rt, const std::string& protocol) {
  return rt.protocol_versions.empty() ||
         std::find(rt.protocol_versions.begin(), rt.protocol_versions.end(), protocol) !=
             rt.protocol_versions.end();
}

// Explicit runtime: any supported format with the name (and the version when the ISVC sets one).
bool supportsFormat(const ServingRuntime& rt, const ModelFormat& f) {
  for (const auto& s : rt.supported_model_formats) {
    if (s.name == f.name && (!f.version || s.version == f.version)) return true;
  }
  return false;
}

// Auto-selection: KServe compares labels "mt:name" / "mt:name:version" of autoSelect formats.
bool autoSelects(const ServingRuntime& rt, const ModelFormat& f) {
  for (const auto& s : rt.supported_model_formats) {
    if (!s.auto_select || s.name != f.name) continue;
    if (!f.version || (s.version && *s.version == *f.version)) return true;
  }
  return false;
}

std::optional<int64_t> priorityFor(const ServingRuntime& rt, const ModelFormat& f) {
  for (const auto& s : rt.supported_model_formats) {
    if (s.name == f.name && s.auto_select) return s.priority;
  }
  return std::nullopt;
}

// One scope's candidates in KServe's order.
std::vector<const ServingRuntime*> ordered(const std::vector<ServingRuntime>& list,
                                           const ModelFormat& format,
                                           const std::string& protocol) {
  std::vector<const ServingRuntime*> out;
  for (const auto& rt : list) {
    if (rt.disabled || rt.multi_model || rt.has_worker_spec) continue;
    if (!autoSelects(rt, format) || !supportsProtocol(rt, protocol)) continue;
    out.push_back(&rt);
  }
  std::sort(out.begin(), out.end(), [](const ServingRuntime* a, const ServingRuntime* b) {
    int pa = lowestProtocolRank(*a), pb = lowestProtocolRank(*b);
    if (pa != pb) return pa < pb;
    if (a->created_order != b->created_order) return a->created_order > b->created_order;
    return a->metadata.name < b->metadata.name;
  });
  std::stable_sort(out.begin(), out.end(), [&](const ServingRuntime* a, const ServingRuntime* b) {
    auto pa = priorityFor(*a, format), pb = priorityFor(*b, format);
    if (pa.has_value() != pb.has_value()) return pa.has_value();
    return pa && pb && *pa > *pb;
  });
  return out;
}

}  // namespace

const char* runtimeFailureReason(RuntimeFailure failure) {
  switch (failure) {
    case RuntimeFailure::kNone: return "";
    case RuntimeFailure::kRuntimeNotRecognized: return "RuntimeNotRecognized";
    case RuntimeFailure::kRuntimeDisabled: return "RuntimeDisabled";
    case RuntimeFailure::kNoSupportingRuntime: return "NoSupportingRuntime";
  }
  return "";
}

RuntimeSelection selectRuntime(const InferenceService& isvc,
                               const std::vector<ServingRuntime>& namespaced,
                               const std::vector<ServingRuntime>& cluster) {
  RuntimeSelection sel;
  const ComponentSpec& p = isvc.predictor;
  ModelFormat format = p.model_format.value_or(ModelFormat{});
  std::string protocol = p.protocol_version.value_or("v1");
  if (p.runtime) {
    const ServingRuntime* found = nullptr;
    for (const auto& rt : namespaced) {
      if (rt.metadata.name == *p.runtime && rt.metadata.namespace_name == isvc.metadata.namespace_name) found = &rt;
    }
    if (!found) {
      for (const auto& rt : cluster) {
        if (rt.metadata.name == *p.runtime) found = &rt;
      }
    }
    if (!found) {
      sel.failure = RuntimeFailure::kRuntimeNotRecognized;
      sel.message = "Waiting for runtime to become available";
      return sel;
    }
    if (found->disabled) {
      sel.failure = RuntimeFailure::kRuntimeDisabled;
      sel.message = "Specified runtime is disabled";
      return sel;
    }
    if (p.protocol_version && !supportsProtocol(*found, *p.protocol_version)) {
      sel.failure = RuntimeFailure::kNoSupportingRuntime;
      sel.message = "Specified runtime does not support specified protocol version";
      return sel;
    }
    if (p.model_format && !supportsFormat(*found, format)) {
      sel.failure = RuntimeFailure::kNoSupportingRuntime;
      sel.message = "Specified runtime does not support specified framework/version";
      return sel;
    }
    sel.runtime = found;
  } else {
    if (!p.model_format) {
      sel.failure = RuntimeFailure::kNoSupportingRuntime;
      sel.message = "no model format and no runtime specified";
      return sel;
    }
    std::vector<ServingRuntime> same_ns;
    for (const auto& rt : namespaced) {
      if (rt.metadata.namespace_name == isvc.metadata.namespace_name) same_ns.push_back(rt);
    }
    auto first = ordered(same_ns, format, protocol);
    auto second = ordered(cluster, format, protocol);
    if (!first.empty()) {
      // Point into the caller's list, not our filtered copy.
      for (const auto& rt : namespaced) {
        if (rt.metadata.name == first[0]->metadata.name &&
            rt.metadata.namespace_name == first[0]->metadata.namespace_name) {
          sel.runtime = &rt;
        }
      }
    } else if (!second.empty()) {
      sel.runtime = second[0];
    } else {
      sel.failure = RuntimeFailure::kNoSupportingRuntime;
      sel.message = common::strCat("no runtime found to support predictor with model type: {",
                                   format.name, " ", format.version.value_or(""), "}");
      return sel;
    }
  }
  sel.protocol = p.protocol_version.value_or(lowestProtocol(*sel.runtime));
  return sel;
}

std::vector<TrafficTarget> computeTraffic(const std::optional<int64_t>& canary_percent,
                                          const RolloutState& state, bool tag_routing) {
  std::vector<TrafficTarget> out;
  std::optional<std::string> latest_tag =
      tag_routing ? std::optional<std::string>("latest") : std::nullopt;
  if (canary_percent && !state.latest_rolledout_revision.empty()) {
    int64_t p = std::clamp<int64_t>(*canary_percent, 0, 100);
    out.push_back({state.latest_ready_revision, p, latest_tag, true});
    if (p < 100) {
      out.push_back({state.latest_rolledout_revision, 100 - p, std::string("prev"), false});
    }
    return out;
  }
  out.push_back({state.latest_ready_revision, 100, latest_tag, true});
  return out;
}

void propagateRollout(RolloutState& state, const std::vector<TrafficTarget>& traffic) {
  const TrafficTarget* latest = nullptr;
  int64_t on_latest_ready = 0;
  for (const auto& t : traffic) {
    if (t.latest_revision) latest = &t;
    if (t.revision == state.latest_ready_revision) on_latest_ready += t.percent;
  }
  if (latest == nullptr || state.latest_ready_revision.empty()) return;
  if (latest->percent == 100 && state.latest_ready_revision != state.latest_rolledout_revision) {
    state.previous_rolledout_revision = state.latest_rolledout_revision;
    state.latest_rolledout_revision = state.latest_ready_revision;
    return;
  }
  // Rollback of a revision that was already promoted: send traffic back to the previous one.
  if (latest->percent < 100 && on_latest_ready == 100 &&
      state.latest_ready_revision == state.latest_created_revision &&
      state.latest_ready_revision == state.latest_rolledout_revision &&
      !state.previous_rolledout_revision.empty()) {
    state.latest_rolledout_revision = state.previous_rolledout_revision;
  }
}

}  // namespace kh::controller
