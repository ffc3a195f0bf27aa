// The statistics behind assertions, against values computed independently (mpmath at 40
// digits, and R's binom.test for 7 of 20), and closed forms.

#include "kh/scenario/stats.h"

#include <cmath>

#include "gtest/gtest.h"

namespace kh::scenario {
namespace {

TEST(BinomialTest, TwoSidedPValuesMatchScipy) {
  // scipy.stats.binomtest(k, n, p).pvalue (two-sided) for these is the same sum.
  EXPECT_NEAR(binomialTwoSidedPValue(3, 15, 0.1), 0.18406106910639102, 1e-12);
  EXPECT_NEAR(binomialTwoSidedPValue(7, 20, 0.5), 0.26317596435546875, 1e-12);  // R: 0.2632
  EXPECT_NEAR(binomialTwoSidedPValue(380, 2000, 0.2), 0.27564348069446388, 1e-10);
  EXPECT_NEAR(binomialTwoSidedPValue(430, 2000, 0.2), 0.093581249162296278, 1e-10);
  EXPECT_NEAR(binomialTwoSidedPValue(0, 10, 0.3), 0.0388396033, 1e-10);
  EXPECT_NEAR(binomialTwoSidedPValue(51, 100, 0.5), 0.92041076261282124, 1e-10);
  EXPECT_NEAR(binomialTwoSidedPValue(1, 1000, 0.01), 0.0011310695918519674, 1e-12);
  EXPECT_NEAR(binomialTwoSidedPValue(10, 20, 0.5), 1.0, 1e-12);
}

TEST(BinomialTest, DetectsAWrongSplit) {
  // 300 of 2000 at 20%: far outside (p ~ 1e-9), rejected at 99.9%.
  EXPECT_LT(binomialTwoSidedPValue(300, 2000, 0.2), 1e-6);
}

TEST(ClopperPearson, MatchesKnownBounds) {
  auto ci = clopperPearson(7, 20, 0.95);  // R binom.test(7, 20): 0.1539092 0.5921885
  EXPECT_NEAR(ci.low, 0.15390920478454119, 1e-9);
  EXPECT_NEAR(ci.high, 0.59218853453282808, 1e-9);
  ci = clopperPearson(380, 2000, 0.999);
  EXPECT_NEAR(ci.low, 0.16209846265455984, 1e-9);
  EXPECT_NEAR(ci.high, 0.2202667471834747, 1e-9);
  ci = clopperPearson(3, 15, 0.95);
  EXPECT_NEAR(ci.low, 0.043312005105836609, 1e-9);
  EXPECT_NEAR(ci.high, 0.48089113380685307, 1e-9);
  ci = clopperPearson(1, 1000, 0.999);
  EXPECT_NEAR(ci.low, 5.0012491661979055e-7, 1e-12);
  EXPECT_NEAR(ci.high, 0.009953814340950811, 1e-9);
}

TEST(ClopperPearson, ClosedFormsAtTheEdges) {
  // k = 0: upper = 1 - (alpha/2)^(1/n); k = n: lower = (alpha/2)^(1/n).
  auto ci = clopperPearson(0, 10, 0.95);
  EXPECT_EQ(ci.low, 0.0);
  EXPECT_NEAR(ci.high, 1 - std::pow(0.025, 0.1), 1e-12);
  ci = clopperPearson(10, 10, 0.95);
  EXPECT_NEAR(ci.low, std::pow(0.025, 0.1), 1e-12);
  EXPECT_EQ(ci.high, 1.0);
}

TEST(RegularizedBeta, KnownValues) {
  EXPECT_NEAR(regularizedBeta(0.5, 2, 2), 0.5, 1e-14);
  EXPECT_NEAR(regularizedBeta(0.3, 1, 1), 0.3, 1e-14);
  // I_x(a, 1) = x^a.
  EXPECT_NEAR(regularizedBeta(0.7, 3, 1), std::pow(0.7, 3), 1e-14);
}

TEST(Percentile, LinearInterpolationAsNumpy) {
  EXPECT_DOUBLE_EQ(percentile({1, 2, 3, 4}, 50), 2.5);
  EXPECT_DOUBLE_EQ(percentile({10, 20, 30}, 100), 30);
  EXPECT_DOUBLE_EQ(percentile({10, 20, 30}, 0), 10);
  EXPECT_NEAR(percentile({1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 95), 9.55, 1e-12);  // numpy: 9.55
  EXPECT_TRUE(std::isnan(percentile({}, 50)));
}

TEST(Durations, Parse) {
  EXPECT_DOUBLE_EQ(*parseSeconds("60s"), 60);
  EXPECT_DOUBLE_EQ(*parseSeconds("500ms"), 0.5);
  EXPECT_DOUBLE_EQ(*parseSeconds("2m"), 120);
  EXPECT_DOUBLE_EQ(*parseSeconds("1.5"), 1.5);
  EXPECT_FALSE(parseSeconds("soon").ok());
  EXPECT_FALSE(parseSeconds("5 parsecs").ok());
}

TEST(ScaleToZero, KnativeDefaultsAndOverrides) {
  // Defaults, activator in the path (TBC 211): the fast path after the 60 s stable window.
  auto e = expectedScaleToZero({}, {}, 2);
  ASSERT_TRUE(e.ok());
  EXPECT_DOUBLE_EQ(e->expected_s, 60);
  // TBC 0: the activator joins only when the window drained, then the 30 s grace.
  e = expectedScaleToZero({{"target-burst-capacity", "0"}}, {}, 2);
  EXPECT_DOUBLE_EQ(e->expected_s, 90);
  // Retention and scale-down delay add; annotations win over the ConfigMap.
  e = expectedScaleToZero({{"stable-window", "6s"}, {"scale-to-zero-pod-retention-period", "4s"}},
                          {{"autoscaling.knative.dev/window", "10s"}, {"autoscaling.knative.dev/scale-down-delay", "2s"}}, 0.5);
  EXPECT_DOUBLE_EQ(e->expected_s, 16);
  EXPECT_FALSE(expectedScaleToZero({{"stable-window", "a while"}}, {}, 2).ok());
}

}  // namespace
}  // namespace kh::scenario
