#pragma once
// Time-weighted request concurrency per reporting period, as Knative's queue-proxy reports it to
// the autoscaler (knative.dev/networking pkg/http/stats RequestStats): the average of
// concurrency over time (sum of concurrency * dt / period), and the requests that arrived, each
// also counted separately for requests the activator proxied (K-Proxy-Request: activator).

#include <chrono>
#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "kh/common/time_source.h"

namespace kh::queueproxy {

/** One reporting period's numbers. Counts are per second (equal to the count for a 1s period). */
struct StatsReport {
  double average_concurrency = 0;
  double average_proxied_concurrency = 0;
  double request_count = 0;
  double proxied_request_count = 0;
};

/**
 * Accumulates request events into consecutive periods [start + k*period, start + (k+1)*period).
 * Periods roll over lazily when an event or a read arrives, so it needs no timer and runs on an
 * injected clock. Times passed in must come from one monotonic clock; a time earlier than one
 * already seen (a racing thread) counts as that later time. Thread-safe.
 */
class RequestStats {
 public:
  RequestStats(common::MonotonicTime start, std::chrono::nanoseconds period);

  /** A request arrived (before any queueing: waiting requests count as concurrent). */
  void requestIn(common::MonotonicTime now, bool proxied);
  /** A request was answered. */
  void requestOut(common::MonotonicTime now, bool proxied);

  /**
   * @return the report of the last period that ended at or before `now`; all zeros while the
   *     first period is still running.
   */
  StatsReport lastReport(common::MonotonicTime now);

  /** Requests in flight right now. */
  int64_t concurrency() const;

 private:
  void advanceTo(common::MonotonicTime now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void accumulateUntil(common::MonotonicTime t) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::chrono::nanoseconds period_;
  mutable absl::Mutex mu_;
  common::MonotonicTime period_start_ ABSL_GUARDED_BY(mu_);
  common::MonotonicTime last_change_ ABSL_GUARDED_BY(mu_);
  int64_t concurrency_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t proxied_concurrency_ ABSL_GUARDED_BY(mu_) = 0;
  // Integrals of concurrency over the current period, in request-seconds.
  double weighted_ ABSL_GUARDED_BY(mu_) = 0;
  double proxied_weighted_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t requests_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t proxied_requests_ ABSL_GUARDED_BY(mu_) = 0;
  StatsReport last_ ABSL_GUARDED_BY(mu_);
};

}  // namespace kh::queueproxy
