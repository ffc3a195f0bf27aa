// Cold starts from watched Pods and PodAutoscalers (see kube_watch.h).

#include "kh/scenario/kube_watch.h"

#include <algorithm>

namespace kh::scenario {

using nlohmann::json;

namespace {

constexpr const char* kIsvcLabel = "serving.kserve.io/inferenceservice";
constexpr const char* kRevisionLabel = "serving.knative.dev/revision";

bool conditionTrue(const json& status, const char* type) {
  for (const auto& c : status.value("conditions", json::array())) {
    if (c.is_object() && c.value("type", "") == type) return c.value("status", "") == "True";
  }
  return false;
}

// The model container is running: KServe names it kserve-container; where it is missing, any
// container but Knative's queue-proxy.
bool modelContainerRunning(const json& status) {
  const json statuses = status.value("containerStatuses", json::array());
  const json* chosen = nullptr;
  for (const auto& s : statuses) {
    if (!s.is_object()) continue;
    std::string name = s.value("name", "");
    if (name == "kserve-container") {
      chosen = &s;
      break;
    }
    if (chosen == nullptr && name != "queue-proxy") chosen = &s;
  }
  return chosen != nullptr && chosen->contains("state") && (*chosen)["state"].is_object() &&
         (*chosen)["state"].contains("running");
}

}  // namespace

std::vector<std::string> JsonStreamSplitter::feed(std::string_view bytes) {
  std::vector<std::string> out;
  for (char c : bytes) {
    if (depth_ == 0) {
      // Between objects: whitespace, or text that is not ours to parse (kubectl's stderr shares
      // the pipe); an object starts at '{'.
      if (c != '{') continue;
      pending_.clear();
    }
    pending_.push_back(c);
    if (pending_.size() > kMaxDocumentBytes) {
      // No object is this large: a stream that never closes one is dropped up to here.
      pending_.clear();
      depth_ = 0;
      in_string_ = escaped_ = false;
      continue;
    }
    if (in_string_) {
      if (escaped_) {
        escaped_ = false;
      } else if (c == '\\') {
        escaped_ = true;
      } else if (c == '"') {
        in_string_ = false;
      }
      continue;
    }
    if (c == '"') {
      in_string_ = true;
    } else if (c == '{' || c == '[') {
      ++depth_;
    } else if (c == '}' || c == ']') {
      if (--depth_ == 0) {
        out.push_back(std::move(pending_));
        pending_.clear();
      }
    }
  }
  return out;
}

bool KubeColdStarts::PodTimeline::servingAt(double t) const {
  bool state = false;
  for (const auto& [at, serving_now] : serving) {
    if (at > t) break;
    state = serving_now;
  }
  return state;
}

void KubeColdStarts::watching(const std::string& ns, double since) {
  if (!watching_since_.count(ns)) watching_since_[ns] = since;
}

void KubeColdStarts::addPod(const WatchArrival& a) {
  if (!a.object.is_object()) return;
  const json md = a.object.value("metadata", json::object());
  const json labels = md.value("labels", json::object());
  std::string isvc = labels.value(kIsvcLabel, "");
  if (isvc.empty()) return;
  std::string ns = md.value("namespace", "");
  std::string name = md.value("name", "");
  std::string key = md.value("uid", "");
  if (key.empty()) key = ns + "/" + name;
  PodTimeline& p = pods_[key];
  if (p.name.empty()) {
    p.ns = ns;
    p.isvc = isvc;
    p.revision = labels.value(kRevisionLabel, "");
    p.name = name;
    p.created = a.arrival;
  }
  bool serving = false;
  if (a.type != "DELETED") {
    const json status = a.object.value("status", json::object());
    const json spec = a.object.value("spec", json::object());
    if (!p.scheduled && (conditionTrue(status, "PodScheduled") || !spec.value("nodeName", "").empty())) {
      p.scheduled = a.arrival;
    }
    if (!p.started && modelContainerRunning(status)) p.started = a.arrival;
    bool ready = conditionTrue(status, "Ready");
    if (!p.ready && ready) p.ready = a.arrival;
    serving = ready && !md.contains("deletionTimestamp");
  }
  if (p.serving.empty() || p.serving.back().second != serving) p.serving.emplace_back(a.arrival, serving);
}

void KubeColdStarts::addPodAutoscaler(const WatchArrival& a) {
  if (!a.object.is_object() || a.type == "DELETED") return;
  const json md = a.object.value("metadata", json::object());
  const json status = a.object.value("status", json::object());
  if (!status.contains("desiredScale") || !status["desiredScale"].is_number_integer()) return;
  auto& changes = scale_[md.value("namespace", "") + "/" + md.value("name", "")];
  int desired = status["desiredScale"].get<int>();
  if (changes.empty() || changes.back().second != desired) changes.emplace_back(a.arrival, desired);
}

void KubeColdStarts::addRequests(const std::string& ns, const std::string& isvc,
                                 const std::vector<SentRequest>& requests) {
  for (const auto& r : requests) {
    if (r.answered) pending_.push_back({ns, isvc, r});
  }
  std::stable_sort(pending_.begin(), pending_.end(),
                   [](const PendingRequest& a, const PendingRequest& b) { return a.request.sent < b.request.sent; });
}

std::vector<events::Event> KubeColdStarts::take() {
  std::vector<events::Event> out;
  std::vector<PendingRequest> still;
  for (auto& p : pending_) {
    auto since = watching_since_.find(p.ns);
    const double sent = p.request.sent;
    if (since == watching_since_.end() || sent < since->second) continue;  // not judged
    bool warm = false;
    PodTimeline* first = nullptr;  // the first pod to serve after the request was sent
    double first_at = 0;
    for (auto& [key, pod] : pods_) {
      if (pod.ns != p.ns || pod.isvc != p.isvc) continue;
      if (pod.servingAt(sent)) {
        warm = true;
        break;
      }
      for (const auto& [at, serving] : pod.serving) {
        if (at > sent && serving) {
          if (first == nullptr || at < first_at) {
            first = &pod;
            first_at = at;
          }
          break;
        }
      }
    }
    if (warm) continue;
    if (first == nullptr) {
      still.push_back(std::move(p));  // its pod has not become Ready yet
      continue;
    }
    if (first->claimed) continue;  // the same cold start as an earlier request's
    first->claimed = true;
    auto ms = [&](const std::optional<double>& at) -> std::optional<double> {
      if (!at || *at < sent) return std::nullopt;  // before the request: not part of its wait
      return (*at - sent) * 1000;
    };
    events::ColdStart cold;
    cold.isvc = p.ns + "/" + p.isvc;
    cold.revision = first->revision;
    cold.pod = first->name;
    cold.total_ms = std::max(0.0, (p.request.first_byte - sent) * 1000);
    auto& b = cold.breakdown;
    auto scale = scale_.find(p.ns + "/" + first->revision);
    if (scale != scale_.end()) {
      for (const auto& [at, desired] : scale->second) {
        if (at >= sent && desired >= 1) {
          b.scale_decided_ms = (at - sent) * 1000;
          break;
        }
      }
    }
    b.pod_created_ms = ms(first->created);
    b.pod_scheduled_ms = ms(first->scheduled);
    b.process_started_ms = ms(first->started);
    b.ready_ms = ms(first->ready);
    b.first_byte_ms = cold.total_ms;
    out.push_back({0, p.request.first_byte, std::move(cold)});
  }
  pending_ = std::move(still);
  return out;
}

}  // namespace kh::scenario
