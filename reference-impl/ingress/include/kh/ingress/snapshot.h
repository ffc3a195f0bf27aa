#pragma once
// What the ingress reads for every request, without a lock: an immutable snapshot of the route
// table and of each revision's ready pods and activator, published whole by the controller
// whenever routes or pods change. A request keeps the snapshot it was routed with (shared_ptr)
// for as long as it uses anything in it.

#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "kh/activator/activator.h"
#include "kh/ingress/routing.h"

namespace kh::ingress {

/** One revision as the ingress reaches it. */
struct RevisionTarget {
  /** Its ready pods (never null; empty at zero pods). */
  activator::EndpointListPtr endpoints = std::make_shared<activator::EndpointList>();
  /** Its activator state; null when the revision is not autoscaled (no activator, no hold). */
  std::shared_ptr<activator::Revision> activator;
};

struct RoutingSnapshot {
  explicit RoutingSnapshot(std::string domain = "example.com") : table(std::move(domain)) {}
  RouteTable table;
  std::unordered_map<std::string, RevisionTarget> revisions;  // revision -> target
};
using RoutingSnapshotPtr = std::shared_ptr<const RoutingSnapshot>;

/**
 * The latest snapshot. The controller publishes, ingress workers read (an atomic load).
 * Thread-safe.
 */
class RoutingState {
 public:
  explicit RoutingState(std::string domain)
      : current_(std::make_shared<const RoutingSnapshot>(std::move(domain))) {}
  RoutingSnapshotPtr current() const { return current_.load(std::memory_order_acquire); }
  void publish(RoutingSnapshotPtr snapshot) { current_.store(std::move(snapshot), std::memory_order_release); }

 private:
  std::atomic<RoutingSnapshotPtr> current_;
};

/** Where a request goes: views into the snapshot it was picked from. */
struct Destination {
  const Route* route = nullptr;
  std::string_view revision;
  const RevisionTarget* target = nullptr;
  const activator::Endpoint* endpoint = nullptr;
  /** 0, or why no pod was chosen: 404 (no service for the host), 503 (nothing ready). */
  int error_status = 0;
  std::string error;
};

/**
 * Picks the revision of a request by its Host (or gRPC :authority) and the traffic split, then a
 * ready pod: by the activator's policy while the activator is in the revision's path, else round
 * robin. `:explain` on a service's own host goes to its explainer (KServe routes it by path). A
 * revision at zero pods gives 503 with `revision` and `target` set, so the caller can hold the
 * request with the revision's activator. Lock-free; `random` draws the split.
 */
Destination pickDestination(const RoutingSnapshot& snapshot, std::string_view host, std::string_view path,
                            activator::RandomSource& random, std::atomic<size_t>& round_robin);

/** Picks a pod of an already chosen revision, as pickDestination does. @return nullptr when none. */
const activator::Endpoint* pickEndpoint(const RevisionTarget& target, std::atomic<size_t>& round_robin);

}  // namespace kh::ingress
