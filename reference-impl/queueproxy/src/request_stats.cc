#include "kh/queueproxy/request_stats.h"

#include <algorithm>

namespace kh::queueproxy {

namespace {
double seconds(std::chrono::nanoseconds d) { return std::chrono::duration<double>(d).count(); }
}  // namespace

RequestStats::RequestStats(common::MonotonicTime start, std::chrono::nanoseconds period)
    : period_(period), period_start_(start), last_change_(start) {}

void RequestStats::accumulateUntil(common::MonotonicTime t) {
  if (t <= last_change_) return;
  double dt = seconds(t - last_change_);
  weighted_ += static_cast<double>(concurrency_) * dt;
  proxied_weighted_ += static_cast<double>(proxied_concurrency_) * dt;
  last_change_ = t;
}

void RequestStats::advanceTo(common::MonotonicTime now) {
  common::MonotonicTime period_end = period_start_ + period_;
  if (now < period_end) {
    accumulateUntil(now);
    return;
  }
  // Close the running period.
  accumulateUntil(period_end);
  double length = seconds(period_);
  last_.average_concurrency = weighted_ / length;
  last_.average_proxied_concurrency = proxied_weighted_ / length;
  last_.request_count = static_cast<double>(requests_) / length;
  last_.proxied_request_count = static_cast<double>(proxied_requests_) / length;
  weighted_ = proxied_weighted_ = 0;
  requests_ = proxied_requests_ = 0;
  // Whole periods that passed with no event had constant concurrency and no arrivals.
  auto skipped = (now - period_end) / period_;
  if (skipped > 0) {
    last_ = StatsReport{static_cast<double>(concurrency_),
                        static_cast<double>(proxied_concurrency_), 0, 0};
  }
  period_start_ = period_end + skipped * period_;
  last_change_ = period_start_;
  accumulateUntil(now);
}

void RequestStats::requestIn(common::MonotonicTime now, bool proxied) {
  absl::MutexLock lock(&mu_);
  advanceTo(std::max(now, last_change_));
  ++concurrency_;
  ++requests_;
  if (proxied) {
    ++proxied_concurrency_;
    ++proxied_requests_;
  }
}

void RequestStats::requestOut(common::MonotonicTime now, bool proxied) {
  absl::MutexLock lock(&mu_);
  advanceTo(std::max(now, last_change_));
  --concurrency_;
  if (proxied) --proxied_concurrency_;
}

StatsReport RequestStats::lastReport(common::MonotonicTime now) {
  absl::MutexLock lock(&mu_);
  advanceTo(std::max(now, last_change_));
  return last_;
}

int64_t RequestStats::concurrency() const {
  absl::MutexLock lock(&mu_);
  return concurrency_;
}

}  // namespace kh::queueproxy
