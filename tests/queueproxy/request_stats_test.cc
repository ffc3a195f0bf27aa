// Time-weighted concurrency and request counts per reporting period, on a simulated clock.

#include "kh/queueproxy/request_stats.h"

#include "gtest/gtest.h"

namespace kh::queueproxy {
namespace {

using namespace std::chrono_literals;

class RequestStatsTest : public ::testing::Test {
 protected:
  common::MonotonicTime at(std::chrono::milliseconds offset) { return start_ + offset; }
  common::MonotonicTime start_ = common::SimulatedTimeSource().monotonicTime();
  RequestStats stats_{start_, 1s};
};

TEST_F(RequestStatsTest, ZerosUntilTheFirstPeriodEnds) {
  stats_.requestIn(at(100ms), false);
  StatsReport r = stats_.lastReport(at(900ms));
  EXPECT_EQ(r.average_concurrency, 0);
  EXPECT_EQ(r.request_count, 0);
}

TEST_F(RequestStatsTest, OneRequestForHalfAPeriodAveragesAHalf) {
  stats_.requestIn(at(250ms), false);
  stats_.requestOut(at(750ms), false);
  StatsReport r = stats_.lastReport(at(1000ms));
  EXPECT_DOUBLE_EQ(r.average_concurrency, 0.5);
  EXPECT_DOUBLE_EQ(r.average_proxied_concurrency, 0);
  EXPECT_DOUBLE_EQ(r.request_count, 1);
  EXPECT_DOUBLE_EQ(r.proxied_request_count, 0);
}

TEST_F(RequestStatsTest, ProxiedRequestsCountInBothFigures) {
  stats_.requestIn(at(0ms), true);       // proxied, the whole period
  stats_.requestIn(at(500ms), false);    // direct, half of it
  StatsReport r = stats_.lastReport(at(1500ms));
  EXPECT_DOUBLE_EQ(r.average_concurrency, 1.5);
  EXPECT_DOUBLE_EQ(r.average_proxied_concurrency, 1.0);
  EXPECT_DOUBLE_EQ(r.request_count, 2);
  EXPECT_DOUBLE_EQ(r.proxied_request_count, 1);
}

TEST_F(RequestStatsTest, ARequestSpanningPeriodsCountsOnceAndWeighsInEach) {
  stats_.requestIn(at(800ms), false);
  stats_.requestOut(at(1300ms), false);
  // The first period saw it arrive and 0.2s of it.
  EXPECT_DOUBLE_EQ(stats_.lastReport(at(1999ms)).average_concurrency, 0.2);
  StatsReport second = stats_.lastReport(at(2000ms));
  EXPECT_DOUBLE_EQ(second.average_concurrency, 0.3);
  EXPECT_DOUBLE_EQ(second.request_count, 0);
}

TEST_F(RequestStatsTest, IdlePeriodsWithARequestStillOpenReportItsConcurrency) {
  stats_.requestIn(at(500ms), false);
  stats_.requestIn(at(600ms), false);
  StatsReport r = stats_.lastReport(at(5500ms));  // periods 1..4 had no events
  EXPECT_DOUBLE_EQ(r.average_concurrency, 2);
  EXPECT_DOUBLE_EQ(r.request_count, 0);
  stats_.requestOut(at(5500ms), false);
  stats_.requestOut(at(5500ms), false);
  EXPECT_DOUBLE_EQ(stats_.lastReport(at(6000ms)).average_concurrency, 1.0);  // 2 for half
  EXPECT_DOUBLE_EQ(stats_.lastReport(at(9000ms)).average_concurrency, 0);
}

TEST_F(RequestStatsTest, CountsArePerSecondForOtherPeriods) {
  RequestStats stats(start_, 500ms);
  for (int i = 0; i < 3; ++i) stats.requestIn(at(100ms), false);
  for (int i = 0; i < 3; ++i) stats.requestOut(at(200ms), false);
  StatsReport r = stats.lastReport(at(500ms));
  EXPECT_DOUBLE_EQ(r.request_count, 6);  // 3 in half a second
  EXPECT_DOUBLE_EQ(r.average_concurrency, 3 * 0.1 / 0.5);
}

TEST_F(RequestStatsTest, AnEventStampedBeforeOneAlreadySeenCountsAsThatTime) {
  stats_.requestIn(at(600ms), false);
  stats_.requestOut(at(400ms), false);  // a racing thread read the clock earlier
  StatsReport r = stats_.lastReport(at(1000ms));
  EXPECT_DOUBLE_EQ(r.average_concurrency, 0);
  EXPECT_EQ(stats_.concurrency(), 0);
}

}  // namespace
}  // namespace kh::queueproxy
