// State kept across restarts, in <state-dir>/state.json: the object store's persisted kinds
// (InferenceServices with their status, runtimes, graphs, namespaces and Revisions, whose objects
// carry how to run their pods), so a restarted refstack keeps revision names, rollout and traffic
// and starts the pods those revisions need. Written whole and atomically (temporary file, fsync,
// rename), off every lock, whenever one of those kinds changes.

#include <fstream>
#include <sstream>

#include "kh/common/files.h"
#include "kh/common/json.h"
#include "kh/common/strings.h"
#include "stack_impl.h"

namespace kh::refstack {
namespace {

constexpr int kStateVersion = 2;

std::string message(const absl::Status& st) { return std::string(common::toStd(st.message())); }

}  // namespace

StatePersister::StatePersister(kubeapi::ObjectStore& store, std::filesystem::path path, events::EventSink& events)
    : store_(store), path_(std::move(path)), events_(events), written_version_(store.persistedResourceVersion()) {}

absl::Status StatePersister::start() {
  for (const auto& kind : store_.kinds()) {
    if (!kind.persisted) continue;
    // Under the store's lock: only mark and wake the writer.
    auto sub = store_.subscribe(kind.kind, [this](const kubeapi::WatchEvent&) {
      std::lock_guard lock(mu_);
      dirty_ = true;
      cv_.notify_one();
    });
    if (!sub.ok()) return sub.status();
    subscriptions_.push_back(std::move(*sub));
  }
  thread_ = std::thread([this] { loop(); });
  return absl::OkStatus();
}

StatePersister::~StatePersister() {
  subscriptions_.clear();
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
  writeNow();
}

void StatePersister::loop() {
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return stopping_ || dirty_; });
    if (stopping_) return;
    // A burst of changes (an apply, a rollout) is written once.
    cv_.wait_for(lock, std::chrono::milliseconds(20), [&] { return stopping_; });
    dirty_ = false;
    lock.unlock();
    writeNow();
    lock.lock();
  }
}

void StatePersister::writeNow() {
  uint64_t version = store_.persistedResourceVersion();
  if (version == written_version_) return;
  json state = {{"version", kStateVersion}, {"store", store_.snapshot()}};
  auto st = common::writeFileAtomically(path_, common::jsonText(state));
  if (st.ok()) {
    written_version_ = version;
    last_error_.clear();
  } else if (message(st) != last_error_) {
    // Once per distinct failure; the old file stays as it was, refstack keeps serving.
    last_error_ = message(st);
    events_.emit(events::StackError{common::strCat("cannot write ", path_.string(), ": ", last_error_)});
  }
}

namespace {
// What a parsed state file says; throws json::exception on fields of the wrong type.
absl::Status restoreState(kubeapi::ObjectStore& store, const json& state, const std::filesystem::path& path,
                          events::EventSink& events) {
  int version = state.value("version", 0);
  if (version == kStateVersion) {
    if (auto st = store.restore(state.value("store", json::object())); !st.ok()) {
      return absl::DataLossError(common::strCat(path.string(), ": ", message(st), "; move it away to start empty"));
    }
    return absl::OkStatus();
  }
  if (version == 1) {
    // An older refstack's state: its resources come back (their revisions start afresh).
    for (const auto& doc : state.value("servingRuntimes", json::array())) {
      if (doc.is_object() && doc.contains("kind")) (void)store.upsert(doc["kind"].get<std::string>(), doc);
    }
    for (const auto& item : state.value("inferenceServices", json::array())) {
      json doc = item.value("document", json::object());
      if (!doc.is_object()) continue;
      if (item.contains("namespace")) doc["metadata"]["namespace"] = item["namespace"];
      doc.erase("status");
      if (store.upsert("InferenceService", doc).ok()) {
        events.emit(events::ResourceRestored{common::strCat(doc["metadata"].value("namespace", "default"), "/",
                                                            doc["metadata"].value("name", ""))});
      }
    }
    return absl::OkStatus();
  }
  return absl::DataLossError(common::strCat(path.string(), " has state version ", version, " (this refstack writes ",
                                            kStateVersion, "); move it away to start empty"));
}
}  // namespace

absl::Status loadState(kubeapi::ObjectStore& store, const std::filesystem::path& path, events::EventSink& events) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return absl::OkStatus();
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  auto parsed = common::parseJson(text.str());
  if (!parsed.ok() || !parsed->is_object()) {
    return absl::DataLossError(common::strCat(path.string(), " is not valid JSON; move it away to start empty"));
  }
  // A state file edited by hand can hold any types; nlohmann's accessors throw on the wrong one.
  try {
    return restoreState(store, *parsed, path, events);
  } catch (const json::exception& e) {
    return absl::DataLossError(common::strCat(path.string(), ": ", e.what(), "; move it away to start empty"));
  }
}

}  // namespace kh::refstack
