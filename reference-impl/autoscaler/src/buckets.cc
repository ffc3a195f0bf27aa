#include "kh/autoscaler/buckets.h"

#include <algorithm>
#include <cmath>

#include "kh/autoscaler/rounding.h"

namespace kh::autoscaler {
namespace {

constexpr double kMinExponent = 0.2;
constexpr double kWeightPrecision = 0.9999;
constexpr int kPrecision = 6;

int64_t floorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

size_t bucketCount(Duration window, std::chrono::seconds granularity) {
  // math.Ceil(float64(window) / float64(granularity)), at least one bucket.
  auto g = std::chrono::duration_cast<Duration>(granularity).count();
  int64_t n = (window.count() + g - 1) / g;
  return static_cast<size_t>(std::max<int64_t>(n, 1));
}

}  // namespace

double computeDecayMultiplier(double numBuckets) {
  return std::max(1 - std::pow(1 - kWeightPrecision, 1 / numBuckets), kMinExponent);
}

double roundToNDigits(int digits, double value) {
  double p = std::pow(10.0, digits);
  return std::round(value * p) / p;
}

namespace {
// roundToPrecision(v) without a pow per call (the window average runs every tick).
double roundToPrecision(double value) {
  constexpr double kScale = 1e6;
  static_assert(kPrecision == 6);
  return roundHalfAway(value * kScale) / kScale;
}

// roundToPrecision(total / count), count > 0. An empty window (a revision's quiet seconds: most
// of a fleet's) skips the two divisions, which were a tenth of a simulation's time: ±0 stays
// itself through both.
double averageToPrecision(double total, double count) {
  if (total == 0) return total;
  return roundToPrecision(total / count);
}
}  // namespace

// ----- TimedFloat64Buckets -----

TimedFloat64Buckets::TimedFloat64Buckets(Duration window, std::chrono::seconds granularity)
    : buckets_(bucketCount(window, std::max(granularity, std::chrono::seconds(1)))),
      granularity_(std::max(granularity, std::chrono::seconds(1))),
      window_(window) {}

TimedFloat64Buckets::Seconds TimedFloat64Buckets::truncate(TimePoint now) const {
  // std::chrono::floor<seconds>, in integers.
  const int64_t nanos = nanosOf(now);
  // Times after the epoch (every clock we run on) need no floor correction: one division by a
  // constant, which a fleet simulation does billions of times.
  const int64_t secs = nanos >= 0 ? nanos / kNanosPerSecond : floorDiv(nanos, kNanosPerSecond);
  // Knative's buckets are a second wide: no division then (a fleet simulation records
  // millions of stats).
  if (granularity_.count() == 1) return Seconds(secs);
  return Seconds(floorDiv(secs, granularity_.count()) * granularity_.count());
}

int64_t TimedFloat64Buckets::timeToIndex(Seconds t) const {
  if (granularity_.count() == 1) return t.count();
  return floorDiv(t.count(), granularity_.count());
}

size_t TimedFloat64Buckets::ringIndex(int64_t index) const {
  auto n = static_cast<int64_t>(buckets_.size());
  int64_t r = index % n;
  return static_cast<size_t>(r < 0 ? r + n : r);
}

bool TimedFloat64Buckets::isEmptyAt(Seconds now) const {
  return !last_write_ || now - *last_write_ > window_;
}

bool TimedFloat64Buckets::inLastWriteSecondOrBefore(TimePoint now) const {
  // Seconds granularity only: then the last write's bucket is [last_write_start_ns_, +1 s).
  return last_write_ && granularity_.count() == 1 && nanosOf(now) < last_write_start_ns_ + kNanosPerSecond;
}

bool TimedFloat64Buckets::isEmpty(TimePoint now) const {
  // Read in the last write's second (a tick right after the second's stat): data, no division.
  if (inLastWriteSecondOrBefore(now)) return false;
  return isEmptyAt(truncate(now));
}

void TimedFloat64Buckets::setLastWrite(Seconds t) {
  last_write_ = t;
  last_write_start_ns_ = t.count() * kNanosPerSecond;
}

void TimedFloat64Buckets::record(TimePoint now, double value) {
  // The common cases, in the same arithmetic as below: another value in the last write's second,
  // or the next second (its bucket, a window old, is zeroed first). Collectors record every
  // second, and a fleet simulation records billions of times: compared on the nanosecond clock,
  // without a division.
  if (last_write_ && granularity_.count() == 1) {
    const int64_t ns = nanosOf(now);
    const int64_t ahead_ns = ns - last_write_start_ns_;
    if (ahead_ns >= 0 && ahead_ns < kNanosPerSecond) {
      buckets_[last_ring_] += value;
      window_total_ += value;
      return;
    }
    // (A resize that found no data leaves first_write_ unset: the general path sets it.)
    if (ahead_ns >= kNanosPerSecond && ahead_ns < 2 * kNanosPerSecond && Seconds(1) < window_ && first_write_) {
      last_ring_ = last_ring_ + 1 == buckets_.size() ? 0 : last_ring_ + 1;
      double& b = buckets_[last_ring_];
      window_total_ -= b;
      b = 0;
      b += value;
      window_total_ += value;
      setLastWrite(*last_write_ + Seconds(1));
      return;
    }
  }
  recordSlow(now, value);
}

void TimedFloat64Buckets::recordSlow(TimePoint now, double value) {
  const Seconds bucket_time = truncate(now);
  const int64_t write_idx = timeToIndex(bucket_time);

  if (!last_write_ || *last_write_ != bucket_time) {
    // Values older than a window before the last write are dropped.
    if (last_write_ && !(bucket_time + window_ > *last_write_)) return;
    if (!first_write_ || *first_write_ > bucket_time) first_write_ = bucket_time;
    if (!last_write_ || bucket_time > *last_write_) {
      if (!last_write_ || bucket_time - *last_write_ >= window_) {
        // No write for a whole window: start over with a partial window.
        first_write_ = bucket_time;
        std::fill(buckets_.begin(), buckets_.end(), 0.0);
        window_total_ = 0;
      } else {
        // Zero the buckets skipped since the last write (they hold data a window old).
        for (int64_t i = timeToIndex(*last_write_) + 1; i <= write_idx; ++i) {
          double& b = buckets_[ringIndex(i)];
          window_total_ -= b;
          b = 0;
        }
      }
      setLastWrite(bucket_time);
    }
    // Otherwise lastWrite − window < bucket_time < lastWrite: add to the older bucket.
  }
  buckets_[ringIndex(write_idx)] += value;
  window_total_ += value;
  last_ring_ = ringIndex(timeToIndex(*last_write_));
}

double TimedFloat64Buckets::windowAverage(TimePoint now_point) const {
  if (!last_write_) return 0;
  const Seconds last = *last_write_;
  const auto n = static_cast<double>(buckets_.size());
  // (lastWrite − firstWrite)/g + 1 valid buckets; with no firstWrite (after a resize that
  // found no data) Go's zero time makes this huge, so the whole ring counts.
  const double valid =
      first_write_ ? static_cast<double>((last - *first_write_) / granularity_ + 1) : n;
  // now ≤ the last write's second (d ≤ 0 below): known without truncating the clock.
  if (inLastWriteSecondOrBefore(now_point)) return averageToPrecision(window_total_, std::min(valid, n));
  const Seconds now = truncate(now_point);
  const auto d = now - last;
  if (d <= Seconds(0)) {
    return averageToPrecision(window_total_, std::min(valid, n));
  }
  if (d < window_) {
    const int64_t st_idx = timeToIndex(last);
    const int64_t e_idx = timeToIndex(now);
    double ret = window_total_;
    for (int64_t i = st_idx + 1; i <= e_idx; ++i) ret -= buckets_[ringIndex(i)];
    const double num_b = std::min(valid, n - static_cast<double>(e_idx - st_idx));
    return averageToPrecision(ret, num_b);
  }
  return 0;
}

void TimedFloat64Buckets::resizeWindow(TimePoint now, Duration window) {
  if (window == window_) return;
  const size_t num_buckets = bucketCount(window, granularity_);
  std::vector<double> new_buckets(num_buckets, 0.0);
  double new_total = 0;
  if (last_write_ && truncate(now) - *last_write_ <= window_) {
    // Copy the newest min(old, new) buckets, going back from the last write.
    const size_t old_num = buckets_.size();
    int64_t t_idx = timeToIndex(*last_write_);
    auto old_ring = [&](int64_t i) {
      int64_t r = i % static_cast<int64_t>(old_num);
      return static_cast<size_t>(r < 0 ? r + static_cast<int64_t>(old_num) : r);
    };
    auto new_ring = [&](int64_t i) {
      int64_t r = i % static_cast<int64_t>(num_buckets);
      return static_cast<size_t>(r < 0 ? r + static_cast<int64_t>(num_buckets) : r);
    };
    for (size_t k = 0; k < std::min(num_buckets, old_num); ++k) {
      new_buckets[new_ring(t_idx)] = buckets_[old_ring(t_idx)];
      new_total += buckets_[old_ring(t_idx)];
      --t_idx;
    }
    first_write_ = *last_write_ - granularity_ * static_cast<int64_t>(old_num - 1);
  } else {
    first_write_.reset();
  }
  window_ = window;
  buckets_ = std::move(new_buckets);
  window_total_ = new_total;
  if (last_write_) last_ring_ = ringIndex(timeToIndex(*last_write_));
}

// ----- WeightedFloat64Buckets -----

WeightedFloat64Buckets::WeightedFloat64Buckets(Duration window, std::chrono::seconds granularity)
    : TimedFloat64Buckets(window, granularity),
      smoothing_coeff_(computeDecayMultiplier(static_cast<double>(buckets_.size()))) {}

double WeightedFloat64Buckets::windowAverage(TimePoint now_point) const {
  const Seconds now = truncate(now_point);
  if (isEmptyAt(now)) return 0;
  const auto total_b = static_cast<int64_t>(buckets_.size());
  int64_t num_b = total_b;
  double multiplier = smoothing_coeff_;
  // We know there is some data since the window is not empty; skip the empty seconds.
  if (now > *last_write_) {
    const int64_t num_z = (now - *last_write_) / granularity_;
    multiplier *= std::pow(1 - smoothing_coeff_, static_cast<double>(num_z));
    num_b -= num_z;
  }
  const int64_t start_idx = timeToIndex(*last_write_);
  double ret = 0;
  for (int64_t i = 0; i < num_b; ++i) {
    ret += buckets_[ringIndex(start_idx - i)] * multiplier;
    multiplier *= (1 - smoothing_coeff_);
  }
  return ret;
}

void WeightedFloat64Buckets::resizeWindow(TimePoint now, Duration window) {
  TimedFloat64Buckets::resizeWindow(now, window);
  smoothing_coeff_ = computeDecayMultiplier(static_cast<double>(bucketCount(window, granularity_)));
}

// ----- MaxTimeWindow -----

MaxTimeWindow::MaxTimeWindow(Duration duration, std::chrono::seconds granularity)
    : maxima_(bucketCount(duration, std::max(granularity, std::chrono::seconds(1)))),
      granularity_(std::max(granularity, std::chrono::seconds(1))) {}

void MaxTimeWindow::record(TimePoint now, int32_t value) {
  const int64_t secs =
      std::chrono::floor<std::chrono::seconds>(now.time_since_epoch()).count();
  const int64_t index = floorDiv(secs, granularity_.count());
  const auto size = static_cast<int64_t>(maxima_.size());

  // 1. Drop the tail entries the new value dominates (it is larger and more recent); the
  //    deque is kept in descending order, so stop at the first larger one.
  for (; length_ > 0; --length_) {
    if (value < maxima_[ring(first_ + length_ - 1)].value) break;
  }
  // 2. Drop entries that left the window from the front.
  while (length_ > 0 && index - maxima_[first_].index >= size) {
    --length_;
    first_ = ring(first_ + 1);
  }
  // 2b. Several values for one index: keep the largest.
  if (length_ > 0) {
    const Entry& last = maxima_[ring(first_ + length_ - 1)];
    if (last.index == index) {
      value = std::max(value, last.value);
      --length_;
    }
  }
  // 3. Append; it is the smallest value in the deque.
  maxima_[ring(first_ + length_)] = Entry{value, index};
  ++length_;
}

}  // namespace kh::autoscaler
