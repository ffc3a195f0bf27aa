#pragma once
// A High Dynamic Range histogram of non-negative integer values (nanoseconds here): fixed
// relative precision (3 significant digits) over a wide range (1 ns to 1 hour) in constant memory,
// with O(1) recording. Layout and arithmetic follow HdrHistogram (Gil Tene): buckets of
// 2^k-spaced sub-buckets, so any two histograms with the same settings merge by adding counts.
// No HDR histogram is packaged for Debian, hence this small one.

#include <cstdint>
#include <string>
#include <vector>

namespace kh::loadgen {

class HdrHistogram {
 public:
  /**
   * @param lowest_discernible smallest value told apart from 0 (>= 1).
   * @param highest_trackable largest value recorded exactly; larger ones are clamped to it and
   *        counted in clampedCount().
   * @param significant_digits 1..5.
   */
  HdrHistogram(int64_t lowest_discernible = 1, int64_t highest_trackable = 3'600'000'000'000,
               int significant_digits = 3);

  /** Records `count` occurrences of `value` (negative values count as 0). Not thread-safe. */
  void record(int64_t value, int64_t count = 1);
  /** Adds every count of `other`, which must have the same settings. */
  void merge(const HdrHistogram& other);
  void reset();

  int64_t totalCount() const { return total_count_; }
  int64_t clampedCount() const { return clamped_count_; }
  int64_t min() const;
  int64_t max() const;
  double mean() const;
  double stddev() const;
  /**
   * @return the value at `percentile` (0..100): the highest value equivalent (within the
   *         precision) to the smallest recorded value with at least that share of counts at or
   *         below it. 0 when empty.
   */
  int64_t valueAtPercentile(double percentile) const;
  /** Counts at or below `value`. */
  int64_t countAtOrBelow(int64_t value) const;

  /** Lowest and highest values that share `value`'s bucket (its precision range). */
  int64_t lowestEquivalent(int64_t value) const;
  int64_t highestEquivalent(int64_t value) const;

  bool sameSettings(const HdrHistogram& other) const;
  /** Non-empty buckets as (highest equivalent value, count), in value order. */
  std::vector<std::pair<int64_t, int64_t>> buckets() const;

 private:
  int bucketIndex(int64_t value) const;
  size_t countsIndex(int64_t value) const;
  int64_t valueFromIndex(size_t index) const;

  int64_t lowest_;
  int64_t highest_;
  int digits_;
  int unit_magnitude_;
  int sub_bucket_half_count_magnitude_;
  int64_t sub_bucket_count_;
  int64_t sub_bucket_half_count_;
  int64_t sub_bucket_mask_;
  std::vector<int64_t> counts_;
  int64_t total_count_ = 0;
  int64_t clamped_count_ = 0;
  int64_t min_ = INT64_MAX;
  int64_t max_ = 0;
};

}  // namespace kh::loadgen
