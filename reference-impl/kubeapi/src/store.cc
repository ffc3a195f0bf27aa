#include "kh/kubeapi/store.h"

#include <algorithm>
#include <deque>
#include <map>
#include <random>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "kh/common/json.h"
#include "kh/common/status_macros.h"
#include "kh/common/strings.h"
#include "kh/common/yaml_json.h"
#include "kh/kubeapi/errors.h"

namespace kh::kubeapi {
namespace {

using common::strCat;
using common::toStd;
using nlohmann::json;
using Key = std::pair<std::string, std::string>;  // namespace ("" if cluster-scoped), name
using TextPtr = std::shared_ptr<const std::string>;

struct Watcher {
  std::string ns;  // "" for every namespace
  Selector selector;
  uint64_t min_rv = 0;  // only events above this
  WatchSink sink;
  SubscriptionCallback callback;  // set for subscriptions
};

// One event of the watch history. Only the serialized object is kept for long: the parsed tree
// is held while it is also the live version (shared with the Entry, so it costs nothing) and
// dropped once superseded or deleted, so the history's memory is about its text.
struct EventRecord {
  EventType type;
  uint64_t rv;
  std::string ns;
  ObjectPtr object;  // null once superseded: parse `text`
  TextPtr text;
  TextPtr prev_text;  // MODIFIED: the version before (for selector transitions on replay)
};
using RecordPtr = std::shared_ptr<EventRecord>;

struct Entry {
  ObjectPtr object;
  TextPtr text;
  std::weak_ptr<EventRecord> record;  // the event that made this version
};

ObjectPtr parseText(const std::string& text) {
  return std::make_shared<const json>(json::parse(text, nullptr, false));
}

struct KindState {
  const KindSpec* spec = nullptr;
  std::map<Key, Entry> objects;
  std::deque<RecordPtr> history;
  size_t history_bytes = 0;
  uint64_t floor = 0;  // every event of this kind above `floor` is in `history`
  std::map<uint64_t, Watcher> watchers;
  uint64_t watches_opened = 0;
  size_t subscriptions = 0;
};

const json& field(const json& object, std::string_view key) {
  static const json kNull;
  if (!object.is_object()) return kNull;
  auto it = object.find(key);
  return it == object.end() ? kNull : *it;
}

std::string stringField(const json& object, std::string_view key) {
  const json& v = field(object, key);
  return v.is_string() ? v.get<std::string>() : std::string();
}

std::string metaString(const json& object, std::string_view key) {
  return stringField(field(object, "metadata"), key);
}

std::string nsOf(const json& object) { return metaString(object, "namespace"); }

std::string rfc3339(common::SystemTime t) { return common::formatRfc3339(t); }

json& metadataOf(json& object) {
  json& meta = object["metadata"];
  if (!meta.is_object()) meta = json::object();
  return meta;
}

// Whether anything outside metadata and status differs (the generation rule).
bool specChanged(const json& a, const json& b) {
  auto skip = [](const std::string& k) { return k == "metadata" || k == "status"; };
  for (auto it = a.begin(); it != a.end(); ++it) {
    if (skip(it.key())) continue;
    auto other = b.find(it.key());
    if (other == b.end() || *other != it.value()) return true;
  }
  for (auto it = b.begin(); it != b.end(); ++it) {
    if (!skip(it.key()) && a.find(it.key()) == a.end()) return true;
  }
  return false;
}

bool hasFinalizers(const json& object) {
  const json& f = field(field(object, "metadata"), "finalizers");
  return f.is_array() && !f.empty();
}

bool isDeleting(const json& object) { return !metaString(object, "deletionTimestamp").empty(); }

// DNS-1123 subdomain (object names) or label (namespace names).
bool validName(std::string_view name, bool label) {
  if (name.empty() || name.size() > (label ? 63u : 253u)) return false;
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!alnum(name.front()) || !alnum(name.back())) return false;
  for (char c : name) {
    if (!alnum(c) && c != '-' && !(c == '.' && !label)) return false;
  }
  return true;
}

FieldCause nameCause(std::string_view name, bool label) {
  if (label) {
    return invalidField("metadata.name", json(name),
                        "a lowercase RFC 1123 label must consist of lower case alphanumeric "
                        "characters or '-', and must start and end with an alphanumeric "
                        "character (e.g. 'my-name',  or '123-abc', regex used for validation is "
                        "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')");
  }
  return invalidField("metadata.name", json(name),
                      "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                      "characters, '-' or '.', and must start and end with an alphanumeric "
                      "character (e.g. 'example.com', regex used for validation is "
                      "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')");
}

absl::Status unknownKind(std::string_view kind) {
  return apiError(absl::StatusCode::kNotFound, 404, "NotFound",
                  strCat("the server could not find the requested resource (kind ", kind, ")"));
}

// What the API server's decoding into ObjectMeta refuses (map[string]string), with a 400: of a
// body, and of what a patch makes of the stored object.
absl::Status checkLabelMaps(const json& object) {
  const json& meta = field(object, "metadata");
  for (const char* key : {"labels", "annotations"}) {
    const json& map = field(meta, key);
    if (map.is_null()) continue;
    bool strings = map.is_object();
    for (auto it = map.begin(); strings && it != map.end(); ++it) strings = it->is_string();
    if (!strings) return badRequestError(strCat("metadata.", key, " must be a map of strings"));
  }
  return absl::OkStatus();
}

// Checks apiVersion and kind in a body and fills them in when absent.
absl::Status checkTypeMeta(json& object, const KindSpec& spec) {
  if (!object.is_object()) return badRequestError("the request body must be a JSON object");
  std::string api_version = spec.apiVersion();
  const json& av = field(object, "apiVersion");
  if (av.is_string() && !av.get_ref<const std::string&>().empty() && av != api_version) {
    return badRequestError(strCat("the API version in the data (", av.get<std::string>(),
                                  ") does not match the expected API version (", api_version, ")"));
  }
  const json& k = field(object, "kind");
  if (k.is_string() && !k.get_ref<const std::string&>().empty() && k != spec.kind) {
    return badRequestError(strCat("the kind in the data (", k.get<std::string>(),
                                  ") does not match the expected kind (", spec.kind, ")"));
  }
  object["apiVersion"] = api_version;
  object["kind"] = spec.kind;
  metadataOf(object);
  return checkLabelMaps(object);
}

// Aligns metadata.namespace with the request's namespace.
absl::Status checkNamespace(json& object, const KindSpec& spec, std::string_view ns) {
  json& meta = metadataOf(object);
  if (!spec.namespaced) {
    meta.erase("namespace");
    return absl::OkStatus();
  }
  if (ns.empty()) return badRequestError("the namespace of the object must be set");
  const json& body_ns = field(meta, "namespace");
  if (body_ns.is_string() && !body_ns.get_ref<const std::string&>().empty() && body_ns != ns) {
    return badRequestError(
        "the namespace of the provided object does not match the namespace sent on the request");
  }
  meta["namespace"] = ns;
  return absl::OkStatus();
}

// The admission verdict, as the final 422 Invalid naming the object.
absl::Status admit(const KindSpec& spec, const json& object, const json* old) {
  if (!spec.admission) return absl::OkStatus();
  absl::Status verdict = spec.admission(object, old);
  if (verdict.ok()) return verdict;
  // Another error is the hook's own answer (a validating webhook's 400 denial, say): as given.
  if (verdict.code() != absl::StatusCode::kInvalidArgument) return verdict;
  std::string name = metaString(object, "name");
  auto causes = invalidCauses(verdict);
  if (!causes || causes->empty()) {
    causes =
        std::vector<FieldCause>{{"FieldValueInvalid", std::string(toStd(verdict.message())), ""}};
  }
  return invalidObjectError(spec.group, spec.kind, name, std::move(*causes));
}

}  // namespace

std::string_view eventTypeName(EventType type) {
  switch (type) {
    case EventType::kAdded: return "ADDED";
    case EventType::kModified: return "MODIFIED";
    case EventType::kDeleted: return "DELETED";
    case EventType::kBookmark: return "BOOKMARK";
  }
  return "UNKNOWN";
}

struct ObjectStore::Impl {
  Impl(StoreOptions opts, const common::TimeSource& t) : options(std::move(opts)), time(t) {
    seed = options.seed ? *options.seed
                        : (uint64_t{std::random_device{}()} << 32) ^ std::random_device{}();
    rng.seed(seed);
    states.reserve(options.kinds.size());
    for (const auto& k : options.kinds) {
      resources.push_back(k.resource());
      auto state = std::make_unique<KindState>();
      state->spec = &k;
      if (k.isCore() && k.plural == "namespaces") namespaces = state.get();
      states.push_back(std::move(state));
    }
  }

  StoreOptions options;
  const common::TimeSource& time;
  std::vector<std::unique_ptr<KindState>> states;
  std::vector<std::string> resources;  // states[i]'s qualified resource
  KindState* namespaces = nullptr;
  uint64_t seed = 0;

  mutable absl::Mutex mu;
  uint64_t rv ABSL_GUARDED_BY(mu) = 0;
  uint64_t persisted_rv ABSL_GUARDED_BY(mu) = 0;
  uint64_t next_watcher_id ABSL_GUARDED_BY(mu) = 1;
  std::mt19937_64 rng ABSL_GUARDED_BY(mu);

  absl::StatusOr<KindState*> stateOf(std::string_view kind) const {
    for (size_t i = 0; i < states.size(); ++i) {
      if (resources[i] == kind) return states[i].get();
    }
    for (const auto& s : states) {
      if (s->spec->kind == kind || s->spec->plural == kind) return s.get();
    }
    return unknownKind(kind);
  }

  std::string newUid() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    uint64_t hi = rng();
    uint64_t lo = rng();
    hi = (hi & 0xFFFFFFFFFFFF0FFFull) | 0x0000000000004000ull;  // version 4
    lo = (lo & 0x3FFFFFFFFFFFFFFFull) | 0x8000000000000000ull;  // RFC 4122 variant
    char buf[40];
    std::snprintf(buf, sizeof buf, "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(hi >> 32),
                  static_cast<unsigned>((hi >> 16) & 0xFFFF), static_cast<unsigned>(hi & 0xFFFF),
                  static_cast<unsigned>(lo >> 48),
                  static_cast<unsigned long long>(lo & 0xFFFFFFFFFFFFull));
    return buf;
  }

  std::string randomSuffix() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    static constexpr std::string_view kAlphabet = "bcdfghjklmnpqrstvwxz2456789";
    std::string out;
    for (int i = 0; i < 5; ++i) out.push_back(kAlphabet[rng() % kAlphabet.size()]);
    return out;
  }

  // --- Publishing. ---

  // Gives one event to one watcher. `live_prev` is the previous version when the event is being
  // published (null on replay from the history, where it is parsed from prev_text if needed).
  bool deliver(const EventRecord& rec, Watcher& w, const ObjectPtr& live_prev) {
    if (rec.rv <= w.min_rv) return true;
    if (!w.ns.empty() && rec.ns != w.ns) return true;
    ObjectPtr object = rec.object ? rec.object : parseText(*rec.text);
    if (w.callback) {
      w.callback(WatchEvent{rec.type, object, rec.rv, rec.text});
      return true;
    }
    bool now = w.selector.empty() || w.selector.matches(*object);
    if (rec.type == EventType::kModified && !w.selector.empty()) {
      ObjectPtr prev = live_prev;
      if (!prev && rec.prev_text) prev = parseText(*rec.prev_text);
      bool before = prev && w.selector.matches(*prev);
      if (!now && !before) return true;
      if (now && !before) return w.sink(WatchEvent{EventType::kAdded, object, rec.rv, rec.text});
      if (!now && before) {
        // It left the selection: the watcher sees it deleted, as it was, at this version.
        json gone = *prev;
        metadataOf(gone)["resourceVersion"] = std::to_string(rec.rv);
        auto text = std::make_shared<const std::string>(common::jsonText(gone));
        return w.sink(WatchEvent{EventType::kDeleted, std::make_shared<const json>(std::move(gone)),
                                 rec.rv, text});
      }
    } else if (!now) {
      return true;
    }
    return w.sink(WatchEvent{rec.type, object, rec.rv, rec.text});
  }

  RecordPtr publish(KindState& ks, EventType type, ObjectPtr object, const ObjectPtr& prev,
                    TextPtr prev_text, TextPtr text, uint64_t event_rv)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    std::string ns = nsOf(*object);
    auto rec = std::make_shared<EventRecord>(EventRecord{
        type, event_rv, std::move(ns), std::move(object), std::move(text), std::move(prev_text)});
    ks.history.push_back(rec);
    ks.history_bytes += rec->text->size();
    while (ks.history.size() > options.history_events_per_kind ||
           (ks.history_bytes > options.history_bytes_per_kind && ks.history.size() > 1)) {
      ks.floor = ks.history.front()->rv;
      ks.history_bytes -= ks.history.front()->text->size();
      ks.history.pop_front();
    }
    if (ks.spec->persisted) persisted_rv = event_rv;
    for (auto it = ks.watchers.begin(); it != ks.watchers.end();) {
      if (deliver(*rec, it->second, prev)) {
        ++it;
      } else {
        it = ks.watchers.erase(it);
      }
    }
    if (type == EventType::kDeleted) rec->object.reset();  // no live version shares it
    return rec;
  }

  // Stores `object` (at a new resourceVersion) and publishes ADDED or MODIFIED.
  ObjectPtr commitPut(KindState& ks, const Key& key, json object, ObjectPtr prev)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    uint64_t v = ++rv;
    metadataOf(object)["resourceVersion"] = std::to_string(v);
    auto ptr = std::make_shared<const json>(std::move(object));
    auto text = std::make_shared<const std::string>(common::jsonText(*ptr));
    Entry& entry = ks.objects[key];
    if (auto superseded = entry.record.lock()) superseded->object.reset();
    TextPtr prev_text = prev ? entry.text : nullptr;
    entry = Entry{ptr, text, {}};
    EventType type = prev ? EventType::kModified : EventType::kAdded;
    entry.record = publish(ks, type, ptr, prev, std::move(prev_text), text, v);
    return ptr;
  }

  // Removes the object and publishes DELETED with its final state at a new resourceVersion.
  ObjectPtr commitDelete(KindState& ks, const Key& key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    auto it = ks.objects.find(key);
    if (it == ks.objects.end()) return nullptr;
    if (&ks == namespaces) cascadeNamespace(key.second);
    uint64_t v = ++rv;
    json final_object = *it->second.object;
    metadataOf(final_object)["resourceVersion"] = std::to_string(v);
    if (auto superseded = it->second.record.lock()) superseded->object.reset();
    ks.objects.erase(it);
    auto ptr = std::make_shared<const json>(std::move(final_object));
    auto text = std::make_shared<const std::string>(common::jsonText(*ptr));
    publish(ks, EventType::kDeleted, ptr, nullptr, nullptr, text, v);
    return ptr;
  }

  void cascadeNamespace(const std::string& ns) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    for (auto& s : states) {
      if (!s->spec->namespaced) continue;
      std::vector<Key> keys;
      for (auto it = s->objects.lower_bound({ns, ""});
           it != s->objects.end() && it->first.first == ns; ++it) {
        keys.push_back(it->first);
      }
      for (const auto& k : keys) commitDelete(*s, k);
    }
  }

  // A write that leaves a deleting object without finalizers deletes it.
  ObjectPtr commitWrite(KindState& ks, const Key& key, json object, ObjectPtr prev)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (prev && isDeleting(object) && !hasFinalizers(object)) {
      ks.objects[key].object = std::make_shared<const json>(std::move(object));
      return commitDelete(ks, key);
    }
    return commitPut(ks, key, std::move(object), std::move(prev));
  }

  const Entry* find(const KindState& ks, const Key& key) const ABSL_SHARED_LOCKS_REQUIRED(mu) {
    auto it = ks.objects.find(key);
    return it == ks.objects.end() ? nullptr : &it->second;
  }

  Key keyOf(const KindState& ks, std::string_view ns, std::string_view name) const {
    return {ks.spec->namespaced ? std::string(ns) : std::string(), std::string(name)};
  }

  absl::Status notFound(const KindState& ks, std::string_view name) const {
    return notFoundError(ks.spec->group, ks.spec->plural, name);
  }

  // Ensures namespace `ns` exists for a namespaced write.
  absl::Status namespaceFor(const KindState& ks, const std::string& ns, bool internal)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (!ks.spec->namespaced || namespaces == nullptr) return absl::OkStatus();
    if (find(*namespaces, {"", ns}) != nullptr) return absl::OkStatus();
    if (!internal || !options.internal_creates_namespaces) {
      return notFoundError("", "namespaces", ns);
    }
    json object = {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", ns}}}};
    return createLocked(*namespaces, "", std::move(object), /*client=*/false, false).status();
  }

  // The create path shared by create(), server-side apply and upsert(). `object` has its
  // apiVersion, kind and namespace aligned already.
  absl::StatusOr<ObjectPtr> createLocked(KindState& ks, const std::string& ns, json object,
                                         bool client, bool dry_run)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    const KindSpec& spec = *ks.spec;
    KH_RETURN_IF_ERROR(namespaceFor(ks, ns, !client));
    json& meta = metadataOf(object);
    std::string name = stringField(meta, "name");
    if (name.empty()) {
      std::string prefix = stringField(meta, "generateName");
      if (prefix.empty()) {
        return invalidObjectError(
            spec.group, spec.kind, "",
            {requiredField("metadata.name", "name or generateName is required")});
      }
      for (int attempt = 0; attempt < 8; ++attempt) {
        name = prefix + randomSuffix();
        if (find(ks, keyOf(ks, ns, name)) == nullptr) break;
      }
      meta["name"] = name;
    }
    if (client && !validName(name, &ks == namespaces)) {
      return invalidObjectError(spec.group, spec.kind, name, {nameCause(name, &ks == namespaces)});
    }
    Key key = keyOf(ks, ns, name);
    if (find(ks, key) != nullptr) return alreadyExistsError(spec.group, spec.plural, name);
    for (const char* k : {"resourceVersion", "managedFields", "selfLink", "deletionTimestamp",
                          "deletionGracePeriodSeconds"}) {
      meta.erase(k);
    }
    meta["uid"] = newUid();
    meta["creationTimestamp"] = rfc3339(time.systemTime());
    meta["generation"] = 1;
    if (client && spec.status_subresource) object.erase("status");
    if (spec.defaulter) spec.defaulter(object);
    if (client) KH_RETURN_IF_ERROR(admit(spec, object, nullptr));
    if (dry_run) return std::make_shared<const json>(std::move(object));
    return commitPut(ks, key, std::move(object), nullptr);
  }

  // Restores what a writer may not change on `next` from `current`: identity, creation,
  // deletion and (for reproducible comparison) the resourceVersion.
  static void carrySystemFields(json& next, const json& current) {
    json& meta = metadataOf(next);
    const json& cur = field(current, "metadata");
    for (const char* k : {"uid", "creationTimestamp", "generation", "deletionTimestamp",
                          "deletionGracePeriodSeconds", "name", "namespace", "resourceVersion"}) {
      const json& v = field(cur, k);
      if (v.is_null()) {
        meta.erase(k);
      } else {
        meta[k] = v;
      }
    }
    meta.erase("managedFields");
    meta.erase("selfLink");
    next["apiVersion"] = current["apiVersion"];
    next["kind"] = current["kind"];
  }

  static void setStatusFrom(json& next, const json& source) {
    auto it = source.find("status");
    if (it != source.end()) {
      next["status"] = *it;
    } else {
      next.erase("status");
    }
  }

  static void bumpGenerationIfSpecChanged(json& next, const json& current) {
    if (!specChanged(next, current)) return;
    const json& g = field(field(current, "metadata"), "generation");
    metadataOf(next)["generation"] = (g.is_number_integer() ? g.get<int64_t>() : 0) + 1;
  }

  // The end of every update path: admission, no-op detection, dry run, commit.
  absl::StatusOr<ObjectPtr> finishUpdate(KindState& ks, const Key& key, json next,
                                         const ObjectPtr& current, bool admit_it, bool dry_run)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (admit_it) KH_RETURN_IF_ERROR(admit(*ks.spec, next, current.get()));
    if (next == *current) return current;
    if (dry_run) return std::make_shared<const json>(std::move(next));
    return commitWrite(ks, key, std::move(next), current);
  }

  absl::Status checkResourceVersion(const KindState& ks, const json& body, const json& current,
                                    std::string_view name) const {
    std::string want = metaString(body, "resourceVersion");
    if (want.empty()) {
      if (ks.spec->isCore()) return absl::OkStatus();
      return invalidObjectError(
          ks.spec->group, ks.spec->kind, name,
          {{"FieldValueInvalid", "Invalid value: 0x0: must be specified for an update",
            "metadata.resourceVersion"}});
    }
    if (want != metaString(current, "resourceVersion")) {
      return conflictError(ks.spec->group, ks.spec->plural, name);
    }
    return absl::OkStatus();
  }

  absl::StatusOr<DeleteResult> deleteLocked(KindState& ks, const Key& key,
                                            const DeleteOptions& opts)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    const KindSpec& spec = *ks.spec;
    const Entry* entry = find(ks, key);
    if (entry == nullptr) return notFound(ks, key.second);
    ObjectPtr current = entry->object;
    if (!opts.precondition_uid.empty() && opts.precondition_uid != metaString(*current, "uid")) {
      return apiError(
          absl::StatusCode::kAborted, 409, "Conflict",
          strCat("Operation cannot be fulfilled on ", spec.resource(), " \"", key.second,
                 "\": Precondition failed: UID in precondition: ", opts.precondition_uid,
                 ", UID in object meta: ", metaString(*current, "uid")),
          {{"name", key.second}, {"group", spec.group}, {"kind", spec.plural}});
    }
    if (!opts.precondition_resource_version.empty() &&
        opts.precondition_resource_version != metaString(*current, "resourceVersion")) {
      return conflictError(spec.group, spec.plural, key.second);
    }
    if (&ks == namespaces &&
        std::find(options.initial_namespaces.begin(), options.initial_namespaces.end(),
                  key.second) != options.initial_namespaces.end()) {
      return apiError(
          absl::StatusCode::kPermissionDenied, 403, "Forbidden",
          strCat("namespaces \"", key.second, "\" is forbidden: this namespace may not be deleted"),
          {{"name", key.second}, {"kind", "namespaces"}});
    }
    if (hasFinalizers(*current)) {
      if (isDeleting(*current) || opts.dry_run) return DeleteResult{current, true};
      json next = *current;
      metadataOf(next)["deletionTimestamp"] = rfc3339(time.systemTime());
      metadataOf(next)["deletionGracePeriodSeconds"] = 0;
      return DeleteResult{commitPut(ks, key, std::move(next), current), true};
    }
    if (opts.dry_run) return DeleteResult{current, false};
    return DeleteResult{commitDelete(ks, key), false};
  }

  absl::StatusOr<ObjectPtr> internalUpdate(std::string_view kind, std::string_view ns,
                                           std::string_view name,
                                           const std::function<absl::Status(json&)>& fn,
                                           bool status_only) {
    KH_ASSIGN_OR_RETURN(KindState * ks, stateOf(kind));
    absl::MutexLock lock(&mu);
    Key key = keyOf(*ks, ns, name);
    const Entry* entry = find(*ks, key);
    if (entry == nullptr) return notFound(*ks, name);
    ObjectPtr current = entry->object;
    json scratch = *current;
    KH_RETURN_IF_ERROR(fn(scratch));
    json next;
    if (status_only) {
      next = *current;
      setStatusFrom(next, scratch);
    } else {
      next = std::move(scratch);
      if (!next.is_object())
        return absl::InvalidArgumentError("the object must stay a JSON object");
      carrySystemFields(next, *current);
      bumpGenerationIfSpecChanged(next, *current);
    }
    return finishUpdate(*ks, key, std::move(next), current, false, false);
  }
};

// --- WatchHandle. ---

WatchHandle::WatchHandle(std::weak_ptr<void> store, size_t kind, uint64_t id)
    : store_(std::move(store)), kind_(kind), id_(id) {}

WatchHandle::WatchHandle(WatchHandle&& other) noexcept
    : store_(std::move(other.store_)), kind_(other.kind_), id_(other.id_) {
  other.id_ = 0;
}

WatchHandle& WatchHandle::operator=(WatchHandle&& other) noexcept {
  if (this != &other) {
    cancel();
    store_ = std::move(other.store_);
    kind_ = other.kind_;
    id_ = other.id_;
    other.id_ = 0;
  }
  return *this;
}

WatchHandle::~WatchHandle() { cancel(); }

void WatchHandle::cancel() {
  if (id_ == 0) return;
  if (auto locked = store_.lock()) {
    auto* impl = static_cast<ObjectStore::Impl*>(locked.get());
    absl::MutexLock lock(&impl->mu);
    KindState& ks = *impl->states[kind_];
    auto it = ks.watchers.find(id_);
    if (it != ks.watchers.end()) {
      if (it->second.callback) --ks.subscriptions;
      ks.watchers.erase(it);
    }
  }
  id_ = 0;
  store_.reset();
}

bool WatchHandle::bookmark() {
  if (id_ == 0) return false;
  auto locked = store_.lock();
  if (!locked) return false;
  auto* impl = static_cast<ObjectStore::Impl*>(locked.get());
  absl::MutexLock lock(&impl->mu);
  KindState& ks = *impl->states[kind_];
  auto it = ks.watchers.find(id_);
  if (it == ks.watchers.end()) return false;
  if (it->second.callback) return true;
  json stub = {{"kind", ks.spec->kind},
               {"apiVersion", ks.spec->apiVersion()},
               {"metadata", {{"resourceVersion", std::to_string(impl->rv)}}}};
  auto object = std::make_shared<const json>(std::move(stub));
  auto text = std::make_shared<const std::string>(common::jsonText(*object));
  if (!it->second.sink(WatchEvent{EventType::kBookmark, object, impl->rv, text})) {
    ks.watchers.erase(it);
    return false;
  }
  return true;
}

bool WatchHandle::active() const {
  if (id_ == 0) return false;
  auto locked = store_.lock();
  if (!locked) return false;
  auto* impl = static_cast<ObjectStore::Impl*>(locked.get());
  absl::ReaderMutexLock lock(&impl->mu);
  const KindState& ks = *impl->states[kind_];
  return ks.watchers.count(id_) > 0;
}

// --- ObjectStore. ---

ObjectStore::ObjectStore(StoreOptions options, const common::TimeSource& time)
    : time_(time), impl_(std::make_shared<Impl>(std::move(options), time)) {
  if (impl_->namespaces != nullptr) {
    absl::MutexLock lock(&impl_->mu);
    for (const auto& ns : impl_->options.initial_namespaces) {
      json object = {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", ns}}}};
      (void)impl_->createLocked(*impl_->namespaces, "", std::move(object), false, false);
    }
  }
}

ObjectStore::~ObjectStore() = default;

const std::vector<KindSpec>& ObjectStore::kinds() const { return impl_->options.kinds; }

const KindSpec* ObjectStore::findKind(std::string_view ref) const {
  return kubeapi::findKind(impl_->options.kinds, ref);
}

absl::StatusOr<ObjectPtr> ObjectStore::get(std::string_view kind, std::string_view ns,
                                           std::string_view name) const {
  KH_ASSIGN_OR_RETURN(KindState * ks, impl_->stateOf(kind));
  absl::ReaderMutexLock lock(&impl_->mu);
  const Entry* entry = impl_->find(*ks, impl_->keyOf(*ks, ns, name));
  if (entry == nullptr) return impl_->notFound(*ks, name);
  return entry->object;
}

absl::StatusOr<ListResult> ObjectStore::list(std::string_view kind, std::string_view ns,
                                             const Selector& selector) const {
  KH_ASSIGN_OR_RETURN(KindState * ks, impl_->stateOf(kind));
  ListResult result;
  absl::ReaderMutexLock lock(&impl_->mu);
  result.resource_version = impl_->rv;
  auto add = [&](const Entry& e) {
    if (!selector.empty() && !selector.matches(*e.object)) return;
    result.items.push_back(e.object);
    result.serialized.push_back(e.text);
  };
  if (ns.empty() || !ks->spec->namespaced) {
    for (const auto& [key, entry] : ks->objects) add(entry);
  } else {
    std::string n(ns);
    for (auto it = ks->objects.lower_bound({n, ""});
         it != ks->objects.end() && it->first.first == n; ++it) {
      add(it->second);
    }
  }
  return result;
}

uint64_t ObjectStore::resourceVersion() const {
  absl::ReaderMutexLock lock(&impl_->mu);
  return impl_->rv;
}

uint64_t ObjectStore::persistedResourceVersion() const {
  absl::ReaderMutexLock lock(&impl_->mu);
  return impl_->persisted_rv;
}

absl::StatusOr<ObjectPtr> ObjectStore::create(std::string_view kind, std::string_view ns,
                                              json object, const WriteOptions& options) {
  KH_ASSIGN_OR_RETURN(KindState * ks, impl_->stateOf(kind));
  if (!ks->spec->client_writable) return methodNotAllowedError();
  KH_RETURN_IF_ERROR(checkTypeMeta(object, *ks->spec));
  KH_RETURN_IF_ERROR(checkNamespace(object, *ks->spec, ns));
  absl::MutexLock lock(&impl_->mu);
  return impl_->createLocked(*ks, ks->spec->namespaced ? std::string(ns) : std::string(),
                             std::move(object), true, options.dry_run);
}

absl::StatusOr<ObjectPtr> ObjectStore::update(std::string_view kind, std::string_view ns,
                                              std::string_view name, json object,
                                              const WriteOptions& options) {
  KH_ASSIGN_OR_RETURN(KindState * ks, impl_->stateOf(kind));
  const KindSpec& spec = *ks->spec;
  if (!spec.client_writable) return methodNotAllowedError();
  KH_RETURN_IF_ERROR(checkTypeMeta(object, spec));
  KH_RETURN_IF_ERROR(checkNamespace(object, spec, ns));
  std::string body_name = metaString(object, "name");
  if (!body_name.empty() && body_name != name) {
    return badRequestError(strCat("the name of the object (", body_name,
                                  ") does not match the name on the URL (", name, ")"));
  }
  absl::MutexLock lock(&impl_->mu);
  Key key = impl_->keyOf(*ks, ns, name);
  const Entry* entry = impl_->find(*ks, key);
  if (entry == nullptr) return impl_->notFound(*ks, name);
  ObjectPtr current = entry->object;
  KH_RETURN_IF_ERROR(impl_->checkResourceVersion(*ks, object, *current, name));
  json next = std::move(object);
  Impl::carrySystemFields(next, *current);
  if (spec.status_subresource) Impl::setStatusFrom(next, *current);
  Impl::bumpGenerationIfSpecChanged(next, *current);
  return impl_->finishUpdate(*ks, key, std::move(next), current, true, options.dry_run);
}

absl::StatusOr<ObjectPtr> ObjectStore::replaceStatus(std::string_view kind, std::string_view ns,
                                                     std::string_view name, json object,
                                                     const WriteOptions& options) {
  KH_ASSIGN_OR_RETURN(KindState * ks, impl_->stateOf(kind));
  const KindSpec& spec = *ks->spec;
  if (!spec.status_subresource) return unknownPathError();
  if (!spec.client_writable) return methodNotAllowedError();
  KH_RETURN_IF_ERROR(checkTypeMeta(object, spec));
  absl::MutexLock lock(&impl_->mu);
  Key key = impl_->keyOf(*ks, ns, name);
  const Entry* entry = impl_->find(*ks, key);
  if (entry == nullptr) return impl_->notFound(*ks, name);
  ObjectPtr current = entry->object;
  KH_RETURN_IF_ERROR(impl_->checkResourceVersion(*ks, object, *current, name));
  json next = *current;
  Impl::setStatusFrom(next, object);
  return impl_->finishUpdate(*ks, key, std::move(next), current, false, options.dry_run);
}

absl::StatusOr<PatchResult> ObjectStore::patch(std::string_view kind, std::string_view ns,
                                               std::string_view name, PatchType type,
                                               std::string_view body, bool status_subresource,
                                               const WriteOptions& options) {
  KH_ASSIGN_OR_RETURN(KindState * ks, impl_->stateOf(kind));
  const KindSpec& spec = *ks->spec;
  if (status_subresource && !spec.status_subresource) return unknownPathError();
  if (!spec.client_writable) return methodNotAllowedError();
  if (type == PatchType::kStrategicMerge) {
    if (!spec.isCore()) return unsupportedPatchError();
    type = PatchType::kMerge;
  }
  json patch_doc;
  if (type == PatchType::kApply) {
    if (auto parsed = common::parseJson(body); parsed.ok()) {
      patch_doc = std::move(*parsed);
    } else {  // YAML, or JSON nested too deep, which YAML's own limit refuses
      auto docs = common::parseYamlDocuments(std::string(body), "apply patch");
      if (!docs.ok()) return badRequestError(toStd(docs.status().message()));
      if (docs->size() != 1) return badRequestError("an apply patch must be one document");
      patch_doc = std::move(docs->front());
    }
    if (!patch_doc.is_object()) return badRequestError("an apply patch must be an object");
    if (stringField(patch_doc, "apiVersion").empty() || stringField(patch_doc, "kind").empty()) {
      return badRequestError("an apply patch needs apiVersion and kind");
    }
    KH_RETURN_IF_ERROR(checkTypeMeta(patch_doc, spec));
    std::string body_name = metaString(patch_doc, "name");
    if (body_name.empty()) {
      return invalidObjectError(spec.group, spec.kind, name, {requiredField("metadata.name")});
    }
    if (body_name != name) {
      return badRequestError(strCat("the name of the object (", body_name,
                                    ") does not match the name on the URL (", name, ")"));
    }
  } else {
    auto parsed = common::parseJson(body);
    if (!parsed.ok()) return badRequestError(strCat("the patch is not valid JSON: ", parsed.status().message()));
    patch_doc = std::move(*parsed);
    if (type == PatchType::kMerge && !patch_doc.is_object()) {
      return badRequestError("a merge patch must be a JSON object");
    }
  }
  absl::MutexLock lock(&impl_->mu);
  Key key = impl_->keyOf(*ks, ns, name);
  const Entry* entry = impl_->find(*ks, key);
  if (entry == nullptr) {
    if (type != PatchType::kApply || status_subresource) return impl_->notFound(*ks, name);
    KH_RETURN_IF_ERROR(checkNamespace(patch_doc, spec, ns));
    KH_ASSIGN_OR_RETURN(ObjectPtr created, impl_->createLocked(*ks, key.first, std::move(patch_doc),
                                                               true, options.dry_run));
    return PatchResult{std::move(created), true};
  }
  ObjectPtr current = entry->object;
  json patched;
  if (type == PatchType::kJson) {
    KH_ASSIGN_OR_RETURN(patched, applyJsonPatch(*current, patch_doc));
  } else {
    patched = applyMergePatch(*current, patch_doc);
  }
  if (!patched.is_object()) return badRequestError("the patched object is not a JSON object");
  KH_RETURN_IF_ERROR(checkLabelMaps(patched));
  std::string patched_rv = metaString(patched, "resourceVersion");
  if (!patched_rv.empty() && patched_rv != metaString(*current, "resourceVersion")) {
    return conflictError(spec.group, spec.plural, name);
  }
  json next;
  if (status_subresource) {
    next = *current;
    Impl::setStatusFrom(next, patched);
  } else {
    next = std::move(patched);
    Impl::carrySystemFields(next, *current);
    if (spec.status_subresource) Impl::setStatusFrom(next, *current);
    Impl::bumpGenerationIfSpecChanged(next, *current);
  }
  KH_ASSIGN_OR_RETURN(ObjectPtr stored, impl_->finishUpdate(*ks, key, std::move(next), current,
                                                            !status_subresource, options.dry_run));
  return PatchResult{std::move(stored), false};
}

absl::StatusOr<DeleteResult> ObjectStore::deleteObject(std::string_view kind, std::string_view ns,
                                                       std::string_view name,
                                                       const DeleteOptions& options) {
  KH_ASSIGN_OR_RETURN(KindState * ks, impl_->stateOf(kind));
  if (!ks->spec->client_writable) return methodNotAllowedError();
  absl::MutexLock lock(&impl_->mu);
  return impl_->deleteLocked(*ks, impl_->keyOf(*ks, ns, name), options);
}

absl::StatusOr<std::vector<ObjectPtr>> ObjectStore::deleteCollection(std::string_view kind,
                                                                     std::string_view ns,
                                                                     const Selector& selector,
                                                                     const DeleteOptions& options) {
  KH_ASSIGN_OR_RETURN(KindState * ks, impl_->stateOf(kind));
  if (!ks->spec->client_writable) return methodNotAllowedError();
  absl::MutexLock lock(&impl_->mu);
  std::vector<Key> keys;
  for (const auto& [key, entry] : ks->objects) {
    if (ks->spec->namespaced && !ns.empty() && key.first != ns) continue;
    if (!selector.empty() && !selector.matches(*entry.object)) continue;
    keys.push_back(key);
  }
  std::vector<ObjectPtr> deleted;
  for (const auto& key : keys) {
    auto result = impl_->deleteLocked(*ks, key, options);
    if (result.ok()) deleted.push_back(result->object);
  }
  return deleted;
}

absl::StatusOr<ObjectPtr> ObjectStore::upsert(std::string_view kind, json object) {
  KH_ASSIGN_OR_RETURN(KindState * ks, impl_->stateOf(kind));
  const KindSpec& spec = *ks->spec;
  KH_RETURN_IF_ERROR(checkTypeMeta(object, spec));
  std::string ns = nsOf(object);
  std::string name = metaString(object, "name");
  if (name.empty()) return absl::InvalidArgumentError("upsert needs metadata.name");
  if (spec.namespaced && ns.empty())
    return absl::InvalidArgumentError("upsert needs metadata.namespace");
  if (!spec.namespaced) metadataOf(object).erase("namespace");
  absl::MutexLock lock(&impl_->mu);
  Key key = impl_->keyOf(*ks, ns, name);
  const Entry* entry = impl_->find(*ks, key);
  if (entry == nullptr) return impl_->createLocked(*ks, key.first, std::move(object), false, false);
  ObjectPtr current = entry->object;
  json next = std::move(object);
  Impl::carrySystemFields(next, *current);
  Impl::bumpGenerationIfSpecChanged(next, *current);
  return impl_->finishUpdate(*ks, key, std::move(next), current, false, false);
}

absl::StatusOr<ObjectPtr> ObjectStore::updateStatus(
    std::string_view kind, std::string_view ns, std::string_view name,
    const std::function<absl::Status(json& object)>& fn) {
  return impl_->internalUpdate(kind, ns, name, fn, true);
}

absl::StatusOr<ObjectPtr> ObjectStore::mutate(std::string_view kind, std::string_view ns,
                                              std::string_view name,
                                              const std::function<absl::Status(json& object)>& fn) {
  return impl_->internalUpdate(kind, ns, name, fn, false);
}

absl::Status ObjectStore::remove(std::string_view kind, std::string_view ns,
                                 std::string_view name) {
  KH_ASSIGN_OR_RETURN(KindState * ks, impl_->stateOf(kind));
  absl::MutexLock lock(&impl_->mu);
  Key key = impl_->keyOf(*ks, ns, name);
  if (impl_->find(*ks, key) == nullptr) return impl_->notFound(*ks, name);
  impl_->commitDelete(*ks, key);
  return absl::OkStatus();
}

absl::StatusOr<WatchHandle> ObjectStore::watch(std::string_view kind, std::string_view ns,
                                               Selector selector, std::string_view resource_version,
                                               WatchSink sink) {
  KH_ASSIGN_OR_RETURN(KindState * ks, impl_->stateOf(kind));
  size_t index = 0;
  while (impl_->states[index].get() != ks) ++index;
  bool from_now = resource_version.empty() || resource_version == "0";
  uint64_t from = 0;
  if (!from_now) {
    auto parsed = common::parseInt<uint64_t>(resource_version);
    if (!parsed) {
      return badRequestError(strCat("invalid resource version \"", resource_version, "\""));
    }
    from = *parsed;
  }
  Watcher w;
  w.ns = ks->spec->namespaced ? std::string(ns) : std::string();
  w.selector = std::move(selector);
  w.sink = std::move(sink);
  absl::MutexLock lock(&impl_->mu);
  if (!from_now && from < ks->floor) return expiredError(from, ks->floor);
  if (!from_now && from > impl_->rv) {
    // A version this store never gave out (e.g. from before a restart): Expired, so that the
    // client lists again rather than waits for versions it may already have been told about.
    return apiError(absl::StatusCode::kOutOfRange, 410, "Expired",
                    strCat("Too large resource version: ", from, ", current: ", impl_->rv));
  }
  ++ks->watches_opened;
  uint64_t id = impl_->next_watcher_id++;
  WatchHandle handle(impl_, index, id);
  if (from_now) {
    for (const auto& [key, entry] : ks->objects) {
      if (!w.ns.empty() && key.first != w.ns) continue;
      if (!w.selector.empty() && !w.selector.matches(*entry.object)) continue;
      uint64_t object_rv =
          common::parseInt<uint64_t>(metaString(*entry.object, "resourceVersion")).value_or(0);
      if (!w.sink(WatchEvent{EventType::kAdded, entry.object, object_rv, entry.text})) {
        return handle;  // dropped already: not registered
      }
    }
    w.min_rv = impl_->rv;
  } else {
    w.min_rv = from;
    auto start = std::upper_bound(ks->history.begin(), ks->history.end(), from,
                                  [](uint64_t v, const RecordPtr& r) { return v < r->rv; });
    for (auto it = start; it != ks->history.end(); ++it) {
      if (!impl_->deliver(**it, w, nullptr)) return handle;
    }
    w.min_rv = std::max(from, impl_->rv);
  }
  ks->watchers.emplace(id, std::move(w));
  return handle;
}

absl::StatusOr<WatchHandle> ObjectStore::subscribe(std::string_view kind,
                                                   SubscriptionCallback callback) {
  KH_ASSIGN_OR_RETURN(KindState * ks, impl_->stateOf(kind));
  size_t index = 0;
  while (impl_->states[index].get() != ks) ++index;
  Watcher w;
  w.callback = std::move(callback);
  absl::MutexLock lock(&impl_->mu);
  w.min_rv = impl_->rv;
  uint64_t id = impl_->next_watcher_id++;
  ks->watchers.emplace(id, std::move(w));
  ++ks->subscriptions;
  return WatchHandle(impl_, index, id);
}

uint64_t ObjectStore::watchesOpened(std::string_view kind) const {
  auto ks = impl_->stateOf(kind);
  if (!ks.ok()) return 0;
  absl::ReaderMutexLock lock(&impl_->mu);
  return (*ks)->watches_opened;
}

bool ObjectStore::awaitWatchesOpened(std::string_view kind, uint64_t count,
                                     std::chrono::milliseconds timeout) const {
  auto ks = impl_->stateOf(kind);
  if (!ks.ok()) return false;
  KindState* state = *ks;
  auto reached = [state, count]() { return state->watches_opened >= count; };
  bool ok =
      impl_->mu.ReaderLockWhenWithTimeout(absl::Condition(&reached), absl::FromChrono(timeout));
  impl_->mu.ReaderUnlock();
  return ok;
}

size_t ObjectStore::activeWatches(std::string_view kind) const {
  auto ks = impl_->stateOf(kind);
  if (!ks.ok()) return 0;
  absl::ReaderMutexLock lock(&impl_->mu);
  return (*ks)->watchers.size() - (*ks)->subscriptions;
}

json ObjectStore::snapshot() const {
  std::vector<std::pair<std::string, std::vector<ObjectPtr>>> gathered;
  uint64_t v = 0;
  {
    absl::ReaderMutexLock lock(&impl_->mu);
    v = impl_->rv;
    for (const auto& s : impl_->states) {
      if (!s->spec->persisted) continue;
      std::vector<ObjectPtr> objects;
      objects.reserve(s->objects.size());
      for (const auto& [key, entry] : s->objects) objects.push_back(entry.object);
      gathered.emplace_back(s->spec->resource(), std::move(objects));
    }
  }
  json kinds = json::object();
  for (auto& [resource, objects] : gathered) {
    json list = json::array();
    for (const auto& o : objects) list.push_back(*o);
    kinds[resource] = std::move(list);
  }
  return {{"resourceVersion", std::to_string(v)}, {"kinds", std::move(kinds)}};
}

absl::Status ObjectStore::restore(const json& snapshot) {
  // field() (a find), not operator[]: on a const object a missing key is undefined behaviour.
  const json& rv_field = field(snapshot, "resourceVersion");
  const json& kinds_field = field(snapshot, "kinds");
  if (!rv_field.is_string() || !kinds_field.is_object()) {
    return absl::InvalidArgumentError(
        "a snapshot is {\"resourceVersion\": \"N\", \"kinds\": {resource: [objects]}}");
  }
  auto snap_rv = common::parseInt<uint64_t>(rv_field.get<std::string>());
  if (!snap_rv) return absl::InvalidArgumentError("the snapshot's resourceVersion is not a number");
  std::vector<std::pair<KindState*, std::map<Key, Entry>>> replaced;
  for (auto it = kinds_field.begin(); it != kinds_field.end(); ++it) {
    auto ks = impl_->stateOf(it.key());
    if (!ks.ok() || !(*ks)->spec->persisted) continue;  // kinds no longer served are dropped
    if (!it.value().is_array()) {
      return absl::InvalidArgumentError(strCat("snapshot kind ", it.key(), " is not a list"));
    }
    std::map<Key, Entry> objects;
    for (const auto& o : it.value()) {
      std::string name = metaString(o, "name");
      if (name.empty()) {
        return absl::InvalidArgumentError(
            strCat("snapshot kind ", it.key(), " has an object without metadata.name"));
      }
      auto ptr = std::make_shared<const json>(o);
      objects[impl_->keyOf(**ks, nsOf(o), name)] =
          Entry{ptr, std::make_shared<const std::string>(common::jsonText(*ptr)), {}};
    }
    replaced.emplace_back(*ks, std::move(objects));
  }
  absl::MutexLock lock(&impl_->mu);
  for (auto& [ks, objects] : replaced) ks->objects = std::move(objects);
  // Versions handed out after the snapshot was taken (writes to kinds not persisted) must not
  // be handed out again: continue well above it.
  impl_->rv = std::max(impl_->rv, *snap_rv + impl_->options.restore_version_gap);
  impl_->persisted_rv = impl_->rv;
  for (auto& s : impl_->states) {
    s->history.clear();
    s->history_bytes = 0;
    s->floor = impl_->rv;
  }
  impl_->rng.seed(impl_->seed ^ (impl_->rv * 0x9E3779B97F4A7C15ull));
  if (impl_->namespaces != nullptr) {
    for (const auto& ns : impl_->options.initial_namespaces) {
      if (impl_->find(*impl_->namespaces, {"", ns}) != nullptr) continue;
      json object = {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", ns}}}};
      (void)impl_->createLocked(*impl_->namespaces, "", std::move(object), false, false);
    }
  }
  return absl::OkStatus();
}

}  // namespace kh::kubeapi
