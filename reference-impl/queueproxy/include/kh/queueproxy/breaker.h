#pragma once
// The queue-proxy's breaker (Knative pkg/queue/breaker.go): at most `max_concurrency` requests in
// flight and `queue_depth` more waiting, first in first out. A request that finds all
// queue_depth + max_concurrency slots taken is rejected at once ("pending request queue full");
// a queued one waits without a thread, holding a callback that runs when a slot frees.

#include <cstdint>
#include <deque>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"

namespace kh::queueproxy {

class Breaker {
 public:
  enum class Admission {
    /** A slot is held now: proceed, and call release() when done. */
    kAcquired,
    /** Waiting in the queue: `on_granted` runs when a slot is handed over. */
    kQueued,
    /** Every slot is taken; nothing is held. */
    kRejected,
  };

  /** Knative's BreakerParams{QueueDepth: 10*CC, MaxConcurrency: CC}. Both must be >= 1. */
  Breaker(int queue_depth, int max_concurrency);

  /**
   * Admits one request. When the result is kQueued, `on_granted` later runs exactly once, on the
   * thread that calls release(), outside the breaker's lock; the slot is then held by the
   * waiter (which must call release() in turn), unless cancel() removed it first. `on_granted`
   * must not block. `*ticket` identifies the waiter for cancel(). Thread-safe.
   */
  Admission enter(absl::AnyInvocable<void()> on_granted, uint64_t* ticket);

  /**
   * Withdraws a queued waiter (its deadline passed). Thread-safe.
   * @return true when it was still queued: it holds nothing and its callback will not run;
   *     false when a slot was already granted (its callback runs or ran): the waiter holds a
   *     slot and must release() it.
   */
  bool cancel(uint64_t ticket);

  /** Gives back a held slot: hands it to the oldest waiter, if any. Thread-safe. */
  void release();

  /** Requests holding a slot. */
  int inFlight() const;
  /** Requests waiting. */
  int queued() const;

 private:
  const int total_slots_;
  const int max_concurrency_;
  mutable absl::Mutex mu_;
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t next_ticket_ ABSL_GUARDED_BY(mu_) = 1;
  std::deque<std::pair<uint64_t, absl::AnyInvocable<void()>>> waiters_ ABSL_GUARDED_BY(mu_);
};

}  // namespace kh::queueproxy
