// HDR histogram: percentiles of known data within its precision; merge equals one histogram.

#include "kh/loadgen/hdr_histogram.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "gtest/gtest.h"

namespace kh::loadgen {
namespace {

// Exact percentile of sorted data, by the same rank rule (smallest value with >= p% at or below).
int64_t exactPercentile(const std::vector<int64_t>& sorted, double p) {
  auto rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size())));
  rank = std::max<size_t>(rank, 1);
  return sorted[rank - 1];
}

TEST(HdrHistogram, PercentilesOfUniformDataWithinThreeDigits) {
  HdrHistogram h;
  std::vector<int64_t> values;
  for (int64_t v = 1; v <= 100'000; ++v) {
    h.record(v * 1000);  // 1 us .. 100 ms in ns
    values.push_back(v * 1000);
  }
  for (double p : {0.0, 1.0, 25.0, 50.0, 90.0, 99.0, 99.9, 99.99, 100.0}) {
    double exact = static_cast<double>(exactPercentile(values, p));
    double got = static_cast<double>(h.valueAtPercentile(p));
    EXPECT_NEAR(got, exact, exact * 1e-3) << "p" << p;
  }
  EXPECT_EQ(h.totalCount(), 100'000);
  EXPECT_NEAR(h.mean(), 50'000'500.0, 50'000'500.0 * 1e-3);
}

TEST(HdrHistogram, ExactForSmallValues) {
  HdrHistogram h;
  for (int64_t v = 0; v < 2048; ++v) h.record(v);
  for (int64_t v = 0; v < 2048; ++v) {
    EXPECT_EQ(h.lowestEquivalent(v), v);
    EXPECT_EQ(h.highestEquivalent(v), v);
  }
  EXPECT_EQ(h.valueAtPercentile(50), 1023);
  EXPECT_EQ(h.min(), 0);
  EXPECT_EQ(h.max(), 2047);
}

TEST(HdrHistogram, CoversOneNanosecondToOneHour) {
  HdrHistogram h;
  h.record(1);
  h.record(3'600'000'000'000);
  EXPECT_EQ(h.clampedCount(), 0);
  EXPECT_EQ(h.valueAtPercentile(0), 1);
  double hour = 3.6e12;
  EXPECT_NEAR(static_cast<double>(h.valueAtPercentile(100)), hour, hour * 1e-3);
  h.record(int64_t{10} * 3'600'000'000'000);  // beyond the range: clamped and counted
  EXPECT_EQ(h.clampedCount(), 1);
}

TEST(HdrHistogram, RelativeErrorBoundHoldsEverywhere) {
  HdrHistogram h;
  for (int64_t v : {1ll, 999ll, 2049ll, 123'456ll, 987'654'321ll, 3'000'000'000'000ll}) {
    int64_t lo = h.lowestEquivalent(v), hi = h.highestEquivalent(v);
    EXPECT_LE(lo, v);
    EXPECT_GE(hi, v);
    EXPECT_LE(static_cast<double>(hi - lo), std::max(1.0, static_cast<double>(v) * 1e-3)) << v;
  }
}

TEST(HdrHistogram, MergeEqualsOneHistogramOfAllSamples) {
  std::mt19937_64 rng(42);
  std::lognormal_distribution<double> dist(13.0, 1.5);  // around 0.5 ms, long tail
  HdrHistogram all, a, b, c;
  for (int i = 0; i < 30'000; ++i) {
    auto v = static_cast<int64_t>(dist(rng));
    all.record(v);
    (i % 3 == 0 ? a : i % 3 == 1 ? b : c).record(v);
  }
  HdrHistogram merged;
  merged.merge(a);
  merged.merge(b);
  merged.merge(c);
  EXPECT_EQ(merged.totalCount(), all.totalCount());
  EXPECT_EQ(merged.buckets(), all.buckets());
  for (double p : {50.0, 90.0, 99.0, 99.9}) {
    EXPECT_EQ(merged.valueAtPercentile(p), all.valueAtPercentile(p));
  }
  EXPECT_EQ(merged.min(), all.min());
  EXPECT_EQ(merged.max(), all.max());
}

TEST(HdrHistogram, CountAtOrBelowAndReset) {
  HdrHistogram h;
  for (int i = 0; i < 10; ++i) h.record(100);
  for (int i = 0; i < 5; ++i) h.record(5000);
  EXPECT_EQ(h.countAtOrBelow(100), 10);
  EXPECT_EQ(h.countAtOrBelow(4000), 10);
  EXPECT_EQ(h.countAtOrBelow(6000), 15);
  h.reset();
  EXPECT_EQ(h.totalCount(), 0);
  EXPECT_EQ(h.valueAtPercentile(99), 0);
}

}  // namespace
}  // namespace kh::loadgen
