#include "kh/loadgen/hdr_histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

#include "kh/common/assert.h"

namespace kh::loadgen {

HdrHistogram::HdrHistogram(int64_t lowest_discernible, int64_t highest_trackable,
                           int significant_digits)
    : lowest_(std::max<int64_t>(1, lowest_discernible)),
      highest_(std::max(highest_trackable, 2 * std::max<int64_t>(1, lowest_discernible))),
      digits_(std::clamp(significant_digits, 1, 5)) {
  // Enough sub-buckets that adjacent values differ by at most 10^-digits of their magnitude.
  int64_t largest_single_unit = 2 * static_cast<int64_t>(std::pow(10, digits_));
  int magnitude = static_cast<int>(std::ceil(std::log2(static_cast<double>(largest_single_unit))));
  sub_bucket_half_count_magnitude_ = std::max(magnitude, 1) - 1;
  unit_magnitude_ = static_cast<int>(std::floor(std::log2(static_cast<double>(lowest_))));
  sub_bucket_count_ = int64_t{1} << (sub_bucket_half_count_magnitude_ + 1);
  sub_bucket_half_count_ = sub_bucket_count_ / 2;
  sub_bucket_mask_ = (sub_bucket_count_ - 1) << unit_magnitude_;
  // Buckets needed to cover highest_: each doubles the range.
  int64_t smallest_untrackable = sub_bucket_count_ << unit_magnitude_;
  int buckets = 1;
  while (smallest_untrackable <= highest_) {
    if (smallest_untrackable > INT64_MAX / 2) {
      ++buckets;
      break;
    }
    smallest_untrackable <<= 1;
    ++buckets;
  }
  counts_.assign(static_cast<size_t>((buckets + 1) * sub_bucket_half_count_), 0);
}

int HdrHistogram::bucketIndex(int64_t value) const {
  int pow2ceiling = 64 - std::countl_zero(static_cast<uint64_t>(value | sub_bucket_mask_));
  return pow2ceiling - unit_magnitude_ - (sub_bucket_half_count_magnitude_ + 1);
}

size_t HdrHistogram::countsIndex(int64_t value) const {
  int bucket = bucketIndex(value);
  int64_t sub_bucket = value >> (bucket + unit_magnitude_);
  int64_t base = static_cast<int64_t>(bucket + 1) << sub_bucket_half_count_magnitude_;
  return static_cast<size_t>(base + (sub_bucket - sub_bucket_half_count_));
}

int64_t HdrHistogram::valueFromIndex(size_t index) const {
  int bucket = static_cast<int>(index >> sub_bucket_half_count_magnitude_) - 1;
  int64_t sub_bucket =
      static_cast<int64_t>(index & (sub_bucket_half_count_ - 1)) + sub_bucket_half_count_;
  if (bucket < 0) {
    sub_bucket -= sub_bucket_half_count_;
    bucket = 0;
  }
  return sub_bucket << (bucket + unit_magnitude_);
}

int64_t HdrHistogram::lowestEquivalent(int64_t value) const {
  int bucket = bucketIndex(value);
  int64_t sub_bucket = value >> (bucket + unit_magnitude_);
  return sub_bucket << (bucket + unit_magnitude_);
}

int64_t HdrHistogram::highestEquivalent(int64_t value) const {
  int bucket = bucketIndex(value);
  int64_t sub_bucket = value >> (bucket + unit_magnitude_);
  // Sub-buckets of the first half of bucket 0 are one unit wide like the rest of bucket 0.
  int adjusted = sub_bucket >= sub_bucket_count_ ? bucket + 1 : bucket;
  int64_t range = int64_t{1} << (unit_magnitude_ + adjusted);
  return lowestEquivalent(value) + range - 1;
}

void HdrHistogram::record(int64_t value, int64_t count) {
  if (value < 0) value = 0;
  if (value > highest_) {
    value = highest_;
    clamped_count_ += count;
  }
  counts_[countsIndex(value)] += count;
  total_count_ += count;
  min_ = std::min(min_, value);
  max_ = std::max(max_, value);
}

void HdrHistogram::merge(const HdrHistogram& other) {
  KH_RELEASE_ASSERT(sameSettings(other), "merging histograms with different settings");
  for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
  total_count_ += other.total_count_;
  clamped_count_ += other.clamped_count_;
  if (other.total_count_ > 0) {
    min_ = std::min(min_, other.min_);
    max_ = std::max(max_, other.max_);
  }
}

void HdrHistogram::reset() {
  std::fill(counts_.begin(), counts_.end(), 0);
  total_count_ = clamped_count_ = 0;
  min_ = INT64_MAX;
  max_ = 0;
}

bool HdrHistogram::sameSettings(const HdrHistogram& o) const {
  return lowest_ == o.lowest_ && highest_ == o.highest_ && digits_ == o.digits_;
}

int64_t HdrHistogram::min() const { return total_count_ == 0 ? 0 : lowestEquivalent(min_); }
int64_t HdrHistogram::max() const { return total_count_ == 0 ? 0 : highestEquivalent(max_); }

double HdrHistogram::mean() const {
  if (total_count_ == 0) return 0;
  double sum = 0;
  for (size_t i = 0; i < counts_.size(); ++i) {
    if (counts_[i] == 0) continue;
    int64_t v = valueFromIndex(i);
    // The middle of the bucket's range stands for its values.
    double mid = (static_cast<double>(lowestEquivalent(v)) + highestEquivalent(v)) / 2.0;
    sum += mid * static_cast<double>(counts_[i]);
  }
  return sum / static_cast<double>(total_count_);
}

double HdrHistogram::stddev() const {
  if (total_count_ == 0) return 0;
  double m = mean(), acc = 0;
  for (size_t i = 0; i < counts_.size(); ++i) {
    if (counts_[i] == 0) continue;
    int64_t v = valueFromIndex(i);
    double mid = (static_cast<double>(lowestEquivalent(v)) + highestEquivalent(v)) / 2.0;
    acc += (mid - m) * (mid - m) * static_cast<double>(counts_[i]);
  }
  return std::sqrt(acc / static_cast<double>(total_count_));
}

int64_t HdrHistogram::valueAtPercentile(double percentile) const {
  if (total_count_ == 0) return 0;
  double p = std::clamp(percentile, 0.0, 100.0);
  auto target = static_cast<int64_t>(std::ceil(p / 100.0 * static_cast<double>(total_count_)));
  target = std::max<int64_t>(target, 1);
  int64_t running = 0;
  for (size_t i = 0; i < counts_.size(); ++i) {
    running += counts_[i];
    if (running >= target) return std::min(highestEquivalent(valueFromIndex(i)), max());
  }
  return max();
}

int64_t HdrHistogram::countAtOrBelow(int64_t value) const {
  if (value < 0) return 0;
  size_t last = countsIndex(std::min(value, highest_));
  int64_t running = 0;
  for (size_t i = 0; i <= last && i < counts_.size(); ++i) running += counts_[i];
  return running;
}

std::vector<std::pair<int64_t, int64_t>> HdrHistogram::buckets() const {
  std::vector<std::pair<int64_t, int64_t>> out;
  for (size_t i = 0; i < counts_.size(); ++i) {
    if (counts_[i] > 0) out.emplace_back(highestEquivalent(valueFromIndex(i)), counts_[i]);
  }
  return out;
}

}  // namespace kh::loadgen
