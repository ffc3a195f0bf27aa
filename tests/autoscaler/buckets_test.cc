// Test that the header is self-contained.
#include "kh/autoscaler/buckets.h"
#include "kh/autoscaler/rounding.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>

namespace kh::autoscaler {
namespace {

using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

// Not on a whole second, as Go's time.Now(): reads and writes are truncated to the second.
const TimePoint kT{seconds(1'000'000) + milliseconds(300)};

TEST(DecayMultiplier, Golden) {
  EXPECT_DOUBLE_EQ(computeDecayMultiplier(100), 0.2);
  EXPECT_DOUBLE_EQ(computeDecayMultiplier(60), 0.2);
  EXPECT_NEAR(computeDecayMultiplier(40), 0.20567, 1e-5);
  EXPECT_NEAR(computeDecayMultiplier(6), 0.78456, 1e-5);
}

TEST(RoundToNDigits, SixDigitsHalfAwayFromZero) {
  EXPECT_DOUBLE_EQ(roundToNDigits(6, 1.0 / 6), 0.166667);
  EXPECT_DOUBLE_EQ(roundToNDigits(6, 3.1415926), 3.141593);
  EXPECT_DOUBLE_EQ(roundToNDigits(6, -0.0000005), -0.000001);
  EXPECT_DOUBLE_EQ(roundToNDigits(2, 2.345), 2.35);
}

// The autoscaler's rounding, without libm: the same value, bit for bit, as std::round, ceil, floor.
TEST(Rounding, SameAsLibmBitForBit) {
  auto bits = [](double want, double got) {
    if (std::isnan(want)) return std::isnan(got);
    return std::memcmp(&want, &got, sizeof want) == 0;
  };
  auto same = [&](double x) {
    return bits(std::round(x), roundHalfAway(x)) && bits(std::ceil(x), ceilExact(x)) &&
           bits(std::floor(x), floorExact(x));
  };
  const double edges[] = {0.0, -0.0, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 0.49999999999999994, -0.49999999999999994,
                          0.3, -0.3, 1e-300, -1e-300, 4503599627370495.5, -4503599627370495.5, 4503599627370496.0,
                          9007199254740993.0, 1e300, -1e300, std::numeric_limits<double>::infinity(),
                          -std::numeric_limits<double>::infinity(), std::numeric_limits<double>::quiet_NaN(),
                          std::numeric_limits<double>::denorm_min(), 123456.5, -123456.5, 0.1666665 * 1e6};
  for (double x : edges) EXPECT_TRUE(same(x)) << x;
  std::mt19937_64 random(42);
  std::uniform_real_distribution<double> small(-1000, 1000);
  std::uniform_int_distribution<int> halves(-2'000'000, 2'000'000);
  for (int i = 0; i < 200'000; ++i) {
    const double a = small(random), b = halves(random) / 2.0, c = a * 1e6;
    ASSERT_TRUE(same(a) && same(b) && same(c)) << a << " " << b << " " << c;
    ASSERT_TRUE(same(std::nextafter(b, 0)) && same(std::nextafter(b, b * 2)));
  }
}

// knative.md §2.4 "Window average" (bucketing_test.go TestTimedFloat64BucketsWindowAverage).
TEST(TimedBuckets, WindowAverageGolden) {
  TimedFloat64Buckets b(seconds(5), seconds(1));
  ASSERT_EQ(b.numBuckets(), 5u);

  // firstWrite makes a single write average over one bucket (0.2 without it).
  b.record(kT, 1);
  EXPECT_EQ(b.windowAverage(kT), 1.0);
  for (int i = 1; i < 5; ++i) b.record(kT + seconds(i), i + 1);
  EXPECT_EQ(b.windowAverage(kT + seconds(4)), 15.0 / 5);
  // Reading behind the last write.
  EXPECT_EQ(b.windowAverage(kT + milliseconds(3600)), 15.0 / 5);
  // A short hole: the stale tail leaves numerator and denominator.
  EXPECT_EQ(b.windowAverage(kT + seconds(6)), (15.0 - 1 - 2) / 3);
  // A hole of a whole window.
  EXPECT_EQ(b.windowAverage(kT + seconds(10)), 0.0);
  // A write after a hole zeroes the skipped buckets.
  b.record(kT + seconds(6), 91);
  EXPECT_EQ(b.windowAverage(kT + seconds(6)), (15.0 - 1 - 2 + 91) / 5);

  // Much later: the window starts over with a partial window.
  TimePoint now = kT + minutes(1);
  b.record(now, 1984);
  EXPECT_EQ(b.windowAverage(now), 1984.0);
  // An earlier write inside the window moves firstWrite back.
  b.record(now - seconds(3), 4);
  EXPECT_EQ(b.windowAverage(now), (4.0 + 1984) / 4);
  now += seconds(1);
  b.record(now, 5);
  EXPECT_EQ(b.windowAverage(now), (4.0 + 1984 + 5) / 5);
  b.record(now - seconds(3), 10);
  EXPECT_EQ(b.windowAverage(now), (4.0 + 10 + 1984 + 5) / 5);
  // Too early (a window or more before the last write): ignored.
  b.record(now - seconds(6), 10);
  EXPECT_EQ(b.windowAverage(now), (4.0 + 10 + 1984 + 5) / 5);
  b.record(now - seconds(5), 10);
  EXPECT_EQ(b.windowAverage(now), (4.0 + 10 + 1984 + 5) / 5);
  // No data for exactly a window: everything is cleared.
  b.record(now + seconds(5), 10);
  EXPECT_EQ(b.windowAverage(now + seconds(5)), 10.0);
}

TEST(TimedBuckets, ResultIsRoundedToSixDigits) {
  TimedFloat64Buckets b(seconds(60));
  b.record(kT, 1);
  b.record(kT + seconds(2), 0);
  EXPECT_EQ(b.windowAverage(kT + seconds(2)), 0.333333);
}

TEST(TimedBuckets, DescendingRecord) {
  TimedFloat64Buckets b(seconds(5), seconds(1));
  for (int i = 8; i >= 0; --i) b.record(kT + seconds(i), 5);
  // Writes more than a window behind the first (the newest) one are dropped.
  EXPECT_EQ(b.windowAverage(kT + seconds(5)), 5.0);
  EXPECT_EQ(b.windowTotalForTest(), 25.0);
}

TEST(TimedBuckets, HolesAreZeroed) {
  TimedFloat64Buckets b(seconds(5), seconds(1));
  for (int i = 0; i < 5; ++i) b.record(kT + seconds(i), i + 1);
  EXPECT_EQ(b.windowTotalForTest(), 15.0);
  EXPECT_EQ(b.windowAverage(kT + seconds(4)), 3.0);
  // Writing at +8 zeroes +5, +6, +7 and the +8 slot (which held +3): [4]=5 and [8]=2 remain.
  b.record(kT + seconds(8), 2);
  EXPECT_EQ(b.windowTotalForTest(), 7.0);
  EXPECT_EQ(b.windowAverage(kT + seconds(8)), 7.0 / 5);
}

TEST(TimedBuckets, SameSecondIsSummed) {
  TimedFloat64Buckets b(seconds(60));
  b.record(kT, 3);                      // the scraper
  b.record(kT + milliseconds(600), 2);  // an activator, same second
  EXPECT_EQ(b.windowAverage(kT), 5.0);
}

TEST(TimedBuckets, EmptyAndWindowBoundary) {
  TimedFloat64Buckets b(seconds(5));
  EXPECT_TRUE(b.isEmpty(kT));
  EXPECT_EQ(b.windowAverage(kT), 0.0);
  b.record(kT, 7);
  EXPECT_FALSE(b.isEmpty(kT));
  // Exactly a window later: not empty (> window is), but the average is already 0.
  EXPECT_FALSE(b.isEmpty(kT + seconds(5)));
  EXPECT_EQ(b.windowAverage(kT + seconds(5)), 0.0);
  EXPECT_TRUE(b.isEmpty(kT + seconds(6)));
}

TEST(TimedBuckets, TwoSecondGranularity) {
  // Buckets are aligned on multiples of the granularity.
  const TimePoint t{seconds(1'000'000)};
  TimedFloat64Buckets b(seconds(6), seconds(2));
  ASSERT_EQ(b.numBuckets(), 3u);
  b.record(t, 1);
  b.record(t + seconds(1), 1);  // same 2s bucket
  b.record(t + seconds(2), 4);
  EXPECT_EQ(b.windowAverage(t + seconds(3)), 3.0);  // (2 + 4) / 2 buckets
}

TEST(TimedBuckets, ResizeWindowKeepsNewestBuckets) {
  TimedFloat64Buckets b(seconds(5));
  for (int i = 0; i < 5; ++i) b.record(kT + seconds(i), i + 1);
  b.resizeWindow(kT + seconds(4), seconds(10));
  EXPECT_EQ(b.numBuckets(), 10u);
  EXPECT_EQ(b.window(), seconds(10));
  EXPECT_EQ(b.windowAverage(kT + seconds(4)), 3.0);
  b.record(kT + seconds(5), 6);
  EXPECT_EQ(b.windowAverage(kT + seconds(5)), 21.0 / 6);
  // Shrinking keeps the two newest (6 and 5).
  b.resizeWindow(kT + seconds(5), seconds(2));
  EXPECT_EQ(b.numBuckets(), 2u);
  EXPECT_EQ(b.windowTotalForTest(), 11.0);
  EXPECT_EQ(b.windowAverage(kT + seconds(5)), 5.5);
  // Same window: no-op.
  b.resizeWindow(kT + seconds(5), seconds(2));
  EXPECT_EQ(b.windowTotalForTest(), 11.0);
}

TEST(TimedBuckets, ResizeWindowDropsStaleData) {
  TimedFloat64Buckets b(seconds(5));
  b.record(kT, 9);
  b.resizeWindow(kT + seconds(30), seconds(10));
  EXPECT_EQ(b.windowTotalForTest(), 0.0);
  EXPECT_EQ(b.windowAverage(kT + seconds(30)), 0.0);
  b.record(kT + seconds(31), 4);
  EXPECT_EQ(b.windowAverage(kT + seconds(31)), 4.0);
}

// bucketing_test.go TestTimedFloat64BucketsWeightedAverage.
TEST(WeightedBuckets, WeightedAverage) {
  WeightedFloat64Buckets b(seconds(5), seconds(1));
  const double m = b.smoothingCoefficient();
  EXPECT_DOUBLE_EQ(m, computeDecayMultiplier(5));

  b.record(kT, 2);
  double want = 2 * m;
  EXPECT_DOUBLE_EQ(b.windowAverage(kT), want);
  // One empty second: the starting weight decays once.
  want *= (1 - m);
  EXPECT_DOUBLE_EQ(b.windowAverage(kT + seconds(1)), want);
  b.record(kT + seconds(1), 2);
  want += 2 * m;
  EXPECT_DOUBLE_EQ(b.windowAverage(kT + seconds(1)), want);

  for (int i = 0; i < 5; ++i) b.record(kT + seconds(2 + i), i + 2);  // [2, 3, 4, 5, 6]
  want = 6 * m + 5 * m * (1 - m) + 4 * m * (1 - m) * (1 - m) +
         3 * m * (1 - m) * (1 - m) * (1 - m) + 2 * m * (1 - m) * (1 - m) * (1 - m) * (1 - m);
  EXPECT_DOUBLE_EQ(b.windowAverage(kT + seconds(6)), want);
  EXPECT_EQ(b.windowAverage(kT + seconds(16)), 0.0);
}

TEST(WeightedBuckets, NewestDominates) {
  // [10, 10, 5, 5] newest last reads lower than [5, 5, 10, 10].
  WeightedFloat64Buckets a(seconds(60));
  WeightedFloat64Buckets b(seconds(60));
  const double va[] = {10, 10, 5, 5};
  const double vb[] = {5, 5, 10, 10};
  for (int i = 0; i < 4; ++i) {
    a.record(kT + seconds(i), va[i]);
    b.record(kT + seconds(i), vb[i]);
  }
  EXPECT_LT(a.windowAverage(kT + seconds(3)), b.windowAverage(kT + seconds(3)));
  EXPECT_DOUBLE_EQ(a.smoothingCoefficient(), 0.2);
  EXPECT_DOUBLE_EQ(a.windowAverage(kT + seconds(3)),
                   5 * 0.2 + 5 * 0.2 * 0.8 + 10 * 0.2 * 0.64 + 10 * 0.2 * 0.512);
}

TEST(WeightedBuckets, ResizeRecomputesCoefficient) {
  WeightedFloat64Buckets b(seconds(60));
  EXPECT_DOUBLE_EQ(b.smoothingCoefficient(), 0.2);
  b.record(kT, 3);
  b.resizeWindow(kT, seconds(6));
  EXPECT_NEAR(b.smoothingCoefficient(), 0.78456, 1e-5);
  EXPECT_DOUBLE_EQ(b.windowAverage(kT), 3 * b.smoothingCoefficient());
}

TEST(MaxTimeWindow, KeepsMaximumOverWindow) {
  const TimePoint t{seconds(1'000'000)};
  MaxTimeWindow w(seconds(10), seconds(2));  // 5 buckets
  EXPECT_EQ(w.current(), 0);
  w.record(t, 5);
  w.record(t + seconds(2), 3);
  EXPECT_EQ(w.current(), 5);
  w.record(t + seconds(4), 4);
  EXPECT_EQ(w.current(), 5);
  // Index t/2+5: the 5 leaves the window, 4 dominates 3.
  w.record(t + seconds(10), 1);
  EXPECT_EQ(w.current(), 4);
  w.record(t + seconds(14), 0);
  EXPECT_EQ(w.current(), 1);
  // A larger value replaces everything at once.
  w.record(t + seconds(16), 9);
  EXPECT_EQ(w.current(), 9);
}

TEST(MaxTimeWindow, SameBucketKeepsLarger) {
  const TimePoint t{seconds(1'000'000)};
  MaxTimeWindow w(seconds(4), seconds(2));
  w.record(t, 7);
  w.record(t + seconds(1), 2);  // same 2s bucket: 7 stays
  EXPECT_EQ(w.current(), 7);
  w.record(t + seconds(4), 1);  // 7's bucket is 2 back: gone
  EXPECT_EQ(w.current(), 1);
}

}  // namespace
}  // namespace kh::autoscaler
