#pragma once
// Windowed metric aggregation (knative.md §2.1): the linear and the weighted-exponential
// window averages of pkg/autoscaler/aggregation/bucketing.go, and the sliding maximum of
// pkg/autoscaler/aggregation/max (used by the scale-down delay).
//
// Times are points of the injected monotonic clock. Go reads `t.Unix()`; here the "Unix
// second" of a point is its time_since_epoch() floored to whole seconds, so buckets line up
// on whole seconds of whichever clock the caller uses. None of these classes is thread-safe:
// the owner serializes access (Knative guards them with a mutex).

#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

#include "kh/autoscaler/config.h"

namespace kh::autoscaler {

/**
 * computeDecayMultiplier()
 *
 * The smoothing coefficient of the weighted exponential average for `numBuckets` buckets:
 * `max(1 − (1−0.9999)^(1/numBuckets), 0.2)` (`computeSmoothingCoeff`). 100 and 60 buckets
 * give 0.2, 40 give 0.20567, 6 give 0.78456.
 */
double computeDecayMultiplier(double numBuckets);

/** Rounds to `digits` decimal digits, halves away from zero (`roundToNDigits`). */
double roundToNDigits(int digits, double value);

/** What the metric collector needs from a bucket set, whichever average it computes. */
class WindowAverager {
 public:
  virtual ~WindowAverager() = default;
  /** Adds `value` to the bucket of `now` (several values in one bucket are summed). */
  virtual void record(TimePoint now, double value) = 0;
  /** @return the average over the window as of `now`; 0 when nothing is in the window. */
  virtual double windowAverage(TimePoint now) const = 0;
  /** @return true when no data has been recorded for more than the window before `now`. */
  virtual bool isEmpty(TimePoint now) const = 0;
  /**
   * Changes the window length, keeping the newest buckets that fit. O(buckets); meant for
   * configuration changes only. `now` decides whether the old data is still valid (Go uses
   * time.Now() here).
   */
  virtual void resizeWindow(TimePoint now, Duration window) = 0;
};

/**
 * TimedFloat64Buckets: a ring of `ceil(window/granularity)` buckets and its linear window
 * average (`WindowAverage`, Knative's default aggregation):
 *  - `now` is truncated to the granularity;
 *  - now ≤ lastWrite: windowTotal / min((lastWrite−firstWrite)/g + 1, nBuckets);
 *  - 0 < now−lastWrite < window: the buckets in (lastWrite, now] are subtracted and the
 *    denominator is min((lastWrite−firstWrite)/g + 1, nBuckets − (idx(now)−idx(lastWrite)));
 *  - no write for ≥ window: 0, and the next write resets firstWrite;
 *  - gaps shorter than the window count as zeros; the result is rounded to 6 digits.
 */
class TimedFloat64Buckets : public WindowAverager {
 public:
  /**
   * @param window the averaging window (whole granularities; rounded up otherwise).
   * @param granularity bucket width, whole seconds ≥ 1 (Knative uses kBucketSize = 1s).
   */
  explicit TimedFloat64Buckets(Duration window, std::chrono::seconds granularity = kBucketSize);

  // kh::autoscaler::WindowAverager
  void record(TimePoint now, double value) override;
  double windowAverage(TimePoint now) const override;
  bool isEmpty(TimePoint now) const override;
  void resizeWindow(TimePoint now, Duration window) override;

  Duration window() const { return window_; }
  size_t numBuckets() const { return buckets_.size(); }
  /** Sum of every bucket, stale ones included (`windowTotal`). */
  double windowTotalForTest() const { return window_total_; }

 protected:
  using Seconds = std::chrono::seconds;
  /** `now` floored to the granularity, as whole seconds since the clock's epoch. */
  Seconds truncate(TimePoint now) const;
  /** Bucket number of a truncated time (`timeToIndex`), before the modulo. */
  int64_t timeToIndex(Seconds t) const;
  /** Positive modulo into the ring. */
  size_t ringIndex(int64_t index) const;
  bool isEmptyAt(Seconds now) const;
  static constexpr int64_t kNanosPerSecond = 1'000'000'000;
  static int64_t nanosOf(TimePoint t) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  }
  /** `now` falls in the last write's second or before it (1 s buckets; false otherwise). */
  bool inLastWriteSecondOrBefore(TimePoint now) const;
  void setLastWrite(Seconds t);
  /** record() past its fast paths (kept out of line so that they save no registers). */
  [[gnu::noinline]] void recordSlow(TimePoint now, double value);

  std::vector<double> buckets_;
  Seconds granularity_;
  Duration window_;
  double window_total_ = 0;
  // Unset until the first write (Go's zero time.Time); first_write_ is also cleared by a
  // resize that finds no valid data.
  std::optional<Seconds> first_write_;
  std::optional<Seconds> last_write_;
  /** *last_write_ in nanoseconds: the fast paths compare against it instead of dividing. */
  int64_t last_write_start_ns_ = 0;
  // The ring position of last_write_'s bucket (valid while last_write_ is set).
  size_t last_ring_ = 0;
};

/**
 * WeightedFloat64Buckets: the same ring read as an exponentially weighted average,
 * `Σ bucket_i · m·(1−m)^i` newest first, with m = computeDecayMultiplier(nBuckets). Each empty
 * second since the last write multiplies the starting weight by (1−m) and drops one bucket.
 * Not rounded. Selected by `metric-aggregation-algorithm: weighted-exponential`.
 */
class WeightedFloat64Buckets final : public TimedFloat64Buckets {
 public:
  explicit WeightedFloat64Buckets(Duration window,
                                  std::chrono::seconds granularity = kBucketSize);

  // kh::autoscaler::WindowAverager
  double windowAverage(TimePoint now) const override;
  void resizeWindow(TimePoint now, Duration window) override;

  double smoothingCoefficient() const { return smoothing_coeff_; }

 private:
  double smoothing_coeff_;
};

/**
 * MaxTimeWindow: the maximum value recorded over the last `duration`, in buckets of
 * `granularity` indexed by `Unix()/granularity` (`max.TimeWindow`, a descending-minima deque
 * in a ring of ceil(duration/granularity) entries). The decider uses it with kTickInterval to
 * hold the highest desired scale for `scale-down-delay`.
 */
class MaxTimeWindow {
 public:
  /** @param duration > 0; @param granularity whole seconds ≥ 1. */
  MaxTimeWindow(Duration duration, std::chrono::seconds granularity);

  /** Records `value` for the bucket of `now`; times must not go backwards by a bucket. */
  void record(TimePoint now, int32_t value);
  /** @return the maximum over the window; 0 before any record. */
  int32_t current() const { return maxima_[first_].value; }

 private:
  struct Entry {
    int32_t value = 0;
    int64_t index = 0;
  };
  size_t ring(size_t i) const { return i % maxima_.size(); }

  std::vector<Entry> maxima_;
  size_t first_ = 0;
  size_t length_ = 0;
  std::chrono::seconds granularity_;
};

}  // namespace kh::autoscaler
