#pragma once
// ObjectStore: one generic, typed object store for every kind the API serves, modelled on
// kube-apiserver's generic registry store with its watch cache.
//
// - Objects are nlohmann::json values, immutable once stored (ObjectPtr), kept per kind and keyed
//   by namespace and name. One global resourceVersion counter (decimal strings) rises on every
//   write to any kind, deletes included.
// - Client writes (create, update, replaceStatus, patch, deleteObject, deleteCollection) follow
//   kube-apiserver's semantics for custom resources (kube-api.md §4-§6): they refuse kinds that
//   are not client-writable (405), run the kind's admission hook, need an existing namespace.
// - Internal writes (upsert, updateStatus, mutate, remove) are for the stack's own controllers:
//   no writability check, no admission, namespaces created on demand (StoreOptions).
// - Watches and subscriptions see every change of a kind in resourceVersion order.
//
// Threading: every method is thread-safe. One reader/writer lock guards the store; reads share
// it. A write publishes its event to every watcher and subscriber of the kind while it holds the
// lock, which is what keeps each watcher's events in resourceVersion order: sinks and callbacks
// must therefore only queue work (a non-blocking StreamWriter::write, a push onto a work queue),
// never block and never call back into the store.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "kh/common/time_source.h"
#include "kh/kubeapi/kinds.h"
#include "kh/kubeapi/patch.h"
#include "kh/kubeapi/selectors.h"
#include "nlohmann/json.hpp"

namespace kh::kubeapi {

/** A stored object: shared and immutable (a write stores a new value). */
using ObjectPtr = std::shared_ptr<const nlohmann::json>;

enum class EventType { kAdded, kModified, kDeleted, kBookmark };

/** "ADDED", "MODIFIED", "DELETED", "BOOKMARK". */
std::string_view eventTypeName(EventType type);

/** One change seen by a watcher or subscriber. */
struct WatchEvent {
  EventType type = EventType::kAdded;
  /**
   * The object after the change; for DELETED the final object, carrying the resourceVersion of
   * the delete; for BOOKMARK {kind, apiVersion, metadata: {resourceVersion}}.
   */
  ObjectPtr object;
  uint64_t resource_version = 0;
  /** `object` serialized compactly, shared by every watcher of the event. */
  std::shared_ptr<const std::string> object_json;
};

/**
 * Receives a watch's events, under the store's lock (see the file comment). Return false to be
 * dropped (e.g. the client is gone or too slow): the store then never calls it again.
 */
using WatchSink = std::function<bool(const WatchEvent&)>;
/** Receives a subscription's events, under the store's lock: it must only enqueue work. */
using SubscriptionCallback = std::function<void(const WatchEvent&)>;

/**
 * A registered watch or subscription. Move-only; destroying it (or cancel()) unregisters it, and
 * once cancel() returns the sink is not called again. May outlive the store (then it does
 * nothing). Must not be cancelled from inside its own sink (return false instead).
 */
class WatchHandle {
 public:
  WatchHandle() = default;
  WatchHandle(WatchHandle&& other) noexcept;
  WatchHandle& operator=(WatchHandle&& other) noexcept;
  WatchHandle(const WatchHandle&) = delete;
  WatchHandle& operator=(const WatchHandle&) = delete;
  ~WatchHandle();

  /** Unregisters; idempotent. */
  void cancel();
  /**
   * Sends the watcher a BOOKMARK with the current resourceVersion, in order with its other
   * events. @return false when the watch is no longer registered (dropped or cancelled).
   */
  bool bookmark();
  /** Whether the watch is still registered. */
  bool active() const;

 private:
  friend class ObjectStore;
  WatchHandle(std::weak_ptr<void> store, size_t kind, uint64_t id);
  std::weak_ptr<void> store_;
  size_t kind_ = 0;
  uint64_t id_ = 0;
};

/** A list: the matching objects, sorted by namespace and name, and the current RV. */
struct ListResult {
  std::vector<ObjectPtr> items;
  /** items[i] serialized compactly (shared with the store), for building responses fast. */
  std::vector<std::shared_ptr<const std::string>> serialized;
  uint64_t resource_version = 0;
};

/** Options of client writes. */
struct WriteOptions {
  /** Validate and compute the result but store nothing (dryRun=All). */
  bool dry_run = false;
};

/** The result of a patch. */
struct PatchResult {
  ObjectPtr object;
  /** True when a server-side apply created the object (answered 201). */
  bool created = false;
};

/** Options of a client delete (DeleteOptions). */
struct DeleteOptions {
  /** preconditions.uid / preconditions.resourceVersion; empty means none. */
  std::string precondition_uid;
  std::string precondition_resource_version;
  bool dry_run = false;
};

/** The result of a client delete. */
struct DeleteResult {
  /** The final object (deleted), or the object now marked for deletion (finalizing). */
  ObjectPtr object;
  /** True when finalizers hold the object: deletionTimestamp is set, it is not gone yet. */
  bool finalizing = false;
};

struct StoreOptions {
  /** The kinds served; a kind's spec (hooks included) is fixed for the store's life. */
  std::vector<KindSpec> kinds;
  /**
   * Seed of the generator that makes uids (UUID-formatted) and generateName suffixes. Without
   * one, a seed is drawn once from std::random_device at construction. With a fixed seed the
   * sequence is reproducible; after restore() the generator is reseeded from the seed and the
   * restored resourceVersion, so uids made after a restart do not repeat earlier ones.
   */
  std::optional<uint64_t> seed;
  /**
   * The watch history kept per kind, for watches that start from a resourceVersion: the last
   * `history_events_per_kind` events of the kind, and no more than `history_bytes_per_kind` of
   * their serialized objects, whichever is smaller. The history keeps superseded versions as
   * text only (the parsed tree of an event is shared with the live object while it is the
   * current version), so its memory is about these bytes. A watch from an older
   * resourceVersion gets 410 Expired.
   */
  size_t history_events_per_kind = 100'000;
  size_t history_bytes_per_kind = 8u << 20;
  /**
   * restore() continues the counter this far above the snapshot's resourceVersion: versions
   * given out between the last snapshot and a restart (writes to kinds not persisted) are never
   * given out again, and watches from them get 410 and relist.
   */
  uint64_t restore_version_gap = 1'000'000;
  /** Namespaces that exist from the start (when the store serves Namespaces). */
  std::vector<std::string> initial_namespaces = {"default"};
  /** Whether internal writes into a missing namespace create it (else they get 404). */
  bool internal_creates_namespaces = true;
};

class ObjectStore {
 public:
  /**
   * @param time gives creationTimestamp and deletionTimestamp; must outlive the store.
   */
  ObjectStore(StoreOptions options, const common::TimeSource& time);
  ~ObjectStore();
  ObjectStore(const ObjectStore&) = delete;
  ObjectStore& operator=(const ObjectStore&) = delete;

  /** The kinds served, in the order given; stable for the store's life. */
  const std::vector<KindSpec>& kinds() const;
  /** A served kind by Kind, resource or qualified resource (see findKind()); null if none. */
  const KindSpec* findKind(std::string_view ref) const;
  const common::TimeSource& timeSource() const { return time_; }

  // --- Reads. `kind` is a Kind, resource or qualified resource; unknown kinds get NotFound. ---

  /** @return the object, or 404 `<resource> "<name>" not found`. */
  absl::StatusOr<ObjectPtr> get(std::string_view kind, std::string_view ns,
                                std::string_view name) const;
  /**
   * The objects of `kind` in namespace `ns` ("" for every namespace, and for cluster-scoped
   * kinds) matching `selector`.
   */
  absl::StatusOr<ListResult> list(std::string_view kind, std::string_view ns,
                                  const Selector& selector = {}) const;
  /** The current value of the resourceVersion counter. */
  uint64_t resourceVersion() const;
  /** The resourceVersion of the last write to a persisted kind (to decide when to save). */
  uint64_t persistedResourceVersion() const;

  // --- Client writes (the API's verbs). ---

  /**
   * POST: stores a new object in `ns` (ignored for cluster-scoped kinds). Fills in uid,
   * resourceVersion, generation 1, creationTimestamp, namespace, apiVersion and kind; a name
   * from generateName when the name is empty; drops status when the kind has a /status
   * subresource; runs the defaulter, then admission.
   * @return the stored object; 405 for a read-only kind, 404 `namespaces "x" not found`, 409
   *         AlreadyExists, 400 BadRequest (apiVersion/kind/namespace mismatch), 422 Invalid.
   */
  absl::StatusOr<ObjectPtr> create(std::string_view kind, std::string_view ns,
                                   nlohmann::json object, const WriteOptions& options = {});
  /**
   * PUT: replaces the object. Custom resources require metadata.resourceVersion (422 when
   * missing) equal to the stored one (409 Conflict when stale). uid, creationTimestamp and
   * deletionTimestamp are kept, and status too when the kind has a /status subresource;
   * generation rises only when something outside metadata and status changed. A no-op update
   * stores nothing and returns the stored object.
   * @return 404 when absent (no create on update), 400 when the body names another object.
   */
  absl::StatusOr<ObjectPtr> update(std::string_view kind, std::string_view ns,
                                   std::string_view name, nlohmann::json object,
                                   const WriteOptions& options = {});
  /**
   * PUT /status: only the status of `object` is taken (a missing status removes it); never
   * changes generation; same resourceVersion rules as update(). No admission.
   * @return 404 also when the kind has no /status subresource.
   */
  absl::StatusOr<ObjectPtr> replaceStatus(std::string_view kind, std::string_view ns,
                                          std::string_view name, nlohmann::json object,
                                          const WriteOptions& options = {});
  /**
   * PATCH, of the main resource or (status_subresource) of /status. The patch applies to the
   * stored object; a resourceVersion in the patch is a precondition (409 when stale). Merge and
   * JSON patches; strategic merge is 415 for custom resources and a merge patch for core kinds;
   * apply (server-side apply, YAML or JSON body needing apiVersion, kind and metadata.name)
   * creates the object when absent (created = true) and otherwise merges it in (fieldManager,
   * force and managedFields are ignored: no conflicts, and fields dropped from the manifest
   * stay). The main resource keeps its status; /status keeps everything but status.
   */
  absl::StatusOr<PatchResult> patch(std::string_view kind, std::string_view ns,
                                    std::string_view name, PatchType type, std::string_view body,
                                    bool status_subresource = false,
                                    const WriteOptions& options = {});
  /**
   * DELETE: removes the object and publishes DELETED with the final object at a new
   * resourceVersion. An object with finalizers is only marked (deletionTimestamp, MODIFIED) and
   * goes once a write empties its finalizers. Deleting a Namespace removes everything in it;
   * "default" cannot be deleted (403).
   * @return 409 Conflict on a failed precondition.
   */
  absl::StatusOr<DeleteResult> deleteObject(std::string_view kind, std::string_view ns,
                                            std::string_view name,
                                            const DeleteOptions& options = {});
  /** DELETE of a collection: deleteObject() for each match. @return the deleted objects. */
  absl::StatusOr<std::vector<ObjectPtr>> deleteCollection(std::string_view kind,
                                                          std::string_view ns,
                                                          const Selector& selector,
                                                          const DeleteOptions& options = {});

  // --- Internal writes (the stack's controllers): no writability check, no admission. ---

  /**
   * Creates or replaces the object named by `object`'s metadata (namespace and name), status
   * included. On create, system fields are filled as by create(); on replace, uid and
   * creationTimestamp are kept and generation rises when the spec changed. A no-op stores
   * nothing. @return the stored object.
   */
  absl::StatusOr<ObjectPtr> upsert(std::string_view kind, nlohmann::json object);
  /**
   * Applies `fn` to a copy of the stored object, under the lock, and keeps only its status
   * (generation never changes). `fn` may read anything (metadata.generation for
   * observedGeneration); it must be quick and must not call the store. A non-OK result from `fn`
   * changes nothing and is returned. The resourceVersion rises only if the status changed.
   * @return the stored object (unchanged when nothing changed); 404 when absent.
   */
  absl::StatusOr<ObjectPtr> updateStatus(
      std::string_view kind, std::string_view ns, std::string_view name,
      const std::function<absl::Status(nlohmann::json& object)>& fn);
  /**
   * Like updateStatus() but keeps every change `fn` makes except to the system fields (uid,
   * resourceVersion, creationTimestamp, name, namespace); generation rises if the spec changed.
   */
  absl::StatusOr<ObjectPtr> mutate(std::string_view kind, std::string_view ns,
                                   std::string_view name,
                                   const std::function<absl::Status(nlohmann::json& object)>& fn);
  /** Removes the object at once (finalizers ignored). @return 404 when absent. */
  absl::Status remove(std::string_view kind, std::string_view ns, std::string_view name);

  // --- Watches and subscriptions. ---

  /**
   * Watches `kind` in `ns` ("" for all) for objects matching `selector`. From resourceVersion
   * "" or "0": first a synthetic ADDED for every current match, then live events. From N: every
   * kept event with a resourceVersion above N, then live events. An object that starts or stops
   * matching the selector arrives as ADDED or DELETED. Initial events are given to `sink`
   * before watch() returns.
   * @return the handle; 410 Expired ("too old resource version: N (M)") when N is older than
   *         the kept history, and ("Too large resource version: N, current: M") when N was never
   *         given out; 400 when N is not a number.
   */
  absl::StatusOr<WatchHandle> watch(std::string_view kind, std::string_view ns, Selector selector,
                                    std::string_view resource_version, WatchSink sink);
  /**
   * Calls `callback` for every later change of `kind` (ADDED / MODIFIED / DELETED with the
   * object), in resourceVersion order, under the store's lock: it must only enqueue work.
   * @return the handle (unsubscribes when destroyed); 404 for an unknown kind.
   */
  absl::StatusOr<WatchHandle> subscribe(std::string_view kind, SubscriptionCallback callback);
  /** How many watches of `kind` were ever opened (for tests and readiness checks). */
  uint64_t watchesOpened(std::string_view kind) const;
  /** Waits until watchesOpened(kind) >= count. @return false on timeout. */
  bool awaitWatchesOpened(std::string_view kind, uint64_t count,
                          std::chrono::milliseconds timeout) const;
  /** Watches (not subscriptions) of `kind` registered now. */
  size_t activeWatches(std::string_view kind) const;

  // --- Persistence. ---

  /**
   * The objects of every persisted kind and the resourceVersion counter, as
   * {"resourceVersion": "N", "kinds": {"<qualified resource>": [objects...]}}. The objects are
   * gathered under the lock; the JSON is built after it is released. Serialize and write it
   * wherever (atomically) without holding anything.
   */
  nlohmann::json snapshot() const;
  /**
   * Replaces the objects of the persisted kinds found in `snapshot` (a snapshot() result) and
   * raises the counter to its resourceVersion plus StoreOptions::restore_version_gap, so
   * versions continue upward. The watch history
   * starts afresh (older resourceVersions get 410). Publishes no events: call it before serving
   * and before subscribing. @return InvalidArgument when `snapshot` is malformed (nothing
   * changed then).
   */
  absl::Status restore(const nlohmann::json& snapshot);

 private:
  friend class WatchHandle;
  struct Impl;
  const common::TimeSource& time_;
  std::shared_ptr<Impl> impl_;
};

}  // namespace kh::kubeapi
