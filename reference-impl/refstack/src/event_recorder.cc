// The stack's events as Kubernetes Events (what `kubectl describe isvc` and `kubectl get events`
// show): about the InferenceService for status, revision, scale and cold-start events, about the
// Pod for its phases. The log only queues; a thread of its own looks up the objects and writes.

#include "kh/common/strings.h"
#include "kh/controller/api_objects.h"
#include "stack_impl.h"

namespace kh::refstack {
namespace {

constexpr size_t kKept = 1000;
constexpr size_t kQueueLimit = 10000;

std::pair<std::string, std::string> splitKey(const std::string& key) {
  auto slash = key.find('/');
  if (slash == std::string::npos) return {"default", key};
  return {key.substr(0, slash), key.substr(slash + 1)};
}

std::string fmtMs(double ms) { return common::strCat(static_cast<int64_t>(ms * 10 + 0.5) / 10.0, " ms"); }

}  // namespace

EventRecorder::EventRecorder(kubeapi::ObjectStore& store, events::EventLog& log) : store_(store), log_(log) {
  thread_ = std::thread([this] { loop(); });
  subscription_ = log_.subscribe([this](const events::Event& e) {
    std::lock_guard lock(mu_);
    if (queue_.size() < kQueueLimit) queue_.push_back(e);  // beyond: dropped, as a recorder's bounded queue
    cv_.notify_one();
  });
}

EventRecorder::~EventRecorder() {
  log_.unsubscribe(subscription_);
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  thread_.join();
}

void EventRecorder::loop() {
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (stopping_) return;
    events::Event e = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    record(e);
    lock.lock();
  }
}

void EventRecorder::record(const events::Event& e) {
  controller::EventRecord r;
  r.time = std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::duration<double>(e.time)));
  std::string isvc_key;
  if (const auto* s = e.as<events::StatusChanged>()) {
    isvc_key = s->isvc;
    r.reason = s->ready ? "InferenceServiceReady" : "InferenceServiceNotReady";
    std::string split;
    for (const auto& t : s->traffic) split += common::strCat(split.empty() ? "" : ", ", t.revision, " ", t.percent, "%");
    r.message = common::strCat(s->ready ? "Ready" : "Not ready", split.empty() ? "" : ", traffic: ", split);
    if (!s->ready) r.type = "Warning";
  } else if (const auto* rc = e.as<events::RevisionCreated>()) {
    isvc_key = rc->isvc;
    r.reason = "RevisionCreated";
    r.message = common::strCat("Created ", rc->component, " revision ", rc->revision);
  } else if (const auto* sc = e.as<events::ScaleDecided>()) {
    isvc_key = sc->isvc;
    r.reason = "ScaleDecided";
    r.message = common::strCat("revision ", sc->revision, ": ", sc->desired, " pod(s) (", sc->ready, " ready)",
                               sc->panic ? ", panic mode" : "", sc->activator_in_path ? ", activator in path" : "",
                               sc->reason.empty() ? "" : ": ", sc->reason);
  } else if (const auto* cs = e.as<events::ColdStart>()) {
    isvc_key = cs->isvc;
    r.reason = "ColdStart";
    r.message = common::strCat("revision ", cs->revision, " scaled from zero: first byte after ", fmtMs(cs->total_ms),
                               cs->breakdown.ready_ms ? common::strCat(" (pod ready at ", fmtMs(*cs->breakdown.ready_ms), ")") : "");
  } else if (const auto* p = e.as<events::PodPhaseChanged>()) {
    if (p->phase == "Stopped") return;  // the pod is gone
    auto pods = store_.list("Pod", "");
    if (!pods.ok()) return;
    for (const auto& o : pods->items) {
      if ((*o)["metadata"].value("name", "") != p->pod) continue;
      r.namespace_name = (*o)["metadata"].value("namespace", "default");
      r.involved_uid = (*o)["metadata"].value("uid", "");
    }
    if (r.namespace_name.empty()) return;
    r.involved_kind = "Pod";
    r.involved_api_version = "v1";
    r.involved_name = p->pod;
    r.component = "kubelet";
    if (p->phase == "Starting") r.reason = "Started";
    if (p->phase == "Ready") r.reason = "Ready";
    if (p->phase == "Stopping") r.reason = "Killing";
    if (p->phase == "BackOff" || p->phase == "Failed") {
      r.reason = p->phase;
      r.type = "Warning";
    }
    if (r.reason.empty()) r.reason = p->phase;
    r.message = p->message;
  } else {
    return;  // resource writes, routes, errors: no object to tell about
  }
  if (!isvc_key.empty()) {
    auto [ns, name] = splitKey(isvc_key);
    r.namespace_name = ns;
    r.involved_kind = "InferenceService";
    r.involved_api_version = "serving.kserve.io/v1beta1";
    r.involved_name = name;
    if (auto o = store_.get("InferenceService", ns, name); o.ok()) r.involved_uid = (**o)["metadata"].value("uid", "");
  }
  char suffix[20];
  std::snprintf(suffix, sizeof suffix, "%016llx", static_cast<unsigned long long>(++serial_));
  r.name = common::strCat(r.involved_name, ".", suffix);
  if (!store_.upsert("Event", controller::eventObject(r)).ok()) return;
  written_.emplace_back(r.namespace_name, r.name);
  while (written_.size() > kKept) {
    (void)store_.remove("Event", written_.front().first, written_.front().second);
    written_.pop_front();
  }
}

}  // namespace kh::refstack
