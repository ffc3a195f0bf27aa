// Test that the header is self-contained.
#include "kh/autoscaler/metrics.h"

#include <gtest/gtest.h>

#include <chrono>

namespace kh::autoscaler {
namespace {

using std::chrono::seconds;

const TimePoint kT{seconds(1'000'000)};

// sample_size_test.go.
TEST(SampleSize, Golden) {
  EXPECT_EQ(sampleSize(0), 0);
  EXPECT_EQ(sampleSize(1), 1);
  EXPECT_EQ(sampleSize(2), 2);
  EXPECT_EQ(sampleSize(3), 3);
  EXPECT_EQ(sampleSize(5), 4);
  EXPECT_EQ(sampleSize(10), 7);
  EXPECT_EQ(sampleSize(100), 14);
  EXPECT_EQ(sampleSize(1000), 16);
  EXPECT_EQ(sampleSize(-3), 0);
}

TEST(AggregateScrapedStats, ScalesSampleToPopulation) {
  Stat a;
  a.average_concurrent_requests = 2;
  a.average_proxied_concurrent_requests = 1;
  a.request_count = 10;
  a.proxied_request_count = 4;
  Stat b;
  b.average_concurrent_requests = 4;
  b.request_count = 20;
  Stat out = aggregateScrapedStats({a, b}, 10);
  EXPECT_EQ(out.pod_name, "service-scraper");
  EXPECT_DOUBLE_EQ(out.average_concurrent_requests, 30);  // (2+4)/2·10
  EXPECT_DOUBLE_EQ(out.average_proxied_concurrent_requests, 5);
  EXPECT_DOUBLE_EQ(out.request_count, 150);
  EXPECT_DOUBLE_EQ(out.proxied_request_count, 20);
  EXPECT_EQ(aggregateScrapedStats({}, 10).average_concurrent_requests, 0);
}

TEST(NoData, IsRecognized) {
  EXPECT_TRUE(isNoData(noDataError()));
  EXPECT_FALSE(isNoData(absl::UnavailableError("scrape failed")));
  EXPECT_FALSE(isNoData(absl::OkStatus()));
}

MetricSpec spec(Duration stable, Duration panic, bool scrape = true,
                AggregationAlgorithm a = AggregationAlgorithm::kLinear) {
  MetricSpec s;
  s.stable_window = stable;
  s.panic_window = panic;
  s.has_scrape_target = scrape;
  s.aggregation = a;
  return s;
}

TEST(MetricCollector, RecordSubtractsProxiedAndAverages) {
  MetricCollector c(spec(seconds(60), seconds(6)));
  Stat s;
  s.average_concurrent_requests = 10;
  s.average_proxied_concurrent_requests = 4;
  s.request_count = 100;
  s.proxied_request_count = 30;
  c.record(kT, s);
  auto conc = c.stableAndPanicConcurrency(kT);
  ASSERT_TRUE(conc.ok());
  EXPECT_EQ(conc->stable, 6);
  EXPECT_EQ(conc->panic, 6);
  auto rps = c.stableAndPanicRps(kT);
  ASSERT_TRUE(rps.ok());
  EXPECT_EQ(rps->stable, 70);
  EXPECT_EQ(rps->panic, 70);
}

TEST(MetricCollector, StableAndPanicWindowsDiffer) {
  MetricCollector c(spec(seconds(60), seconds(6)));
  Stat busy;
  busy.average_concurrent_requests = 12;
  // 10 busy seconds, then 10 idle ones.
  for (int i = 0; i < 10; ++i) c.record(kT + seconds(i), busy);
  for (int i = 10; i < 20; ++i) c.record(kT + seconds(i), Stat{});
  auto v = c.stableAndPanicConcurrency(kT + seconds(19));
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->stable, 6);  // 120 over 20 seconds
  EXPECT_EQ(v->panic, 0);   // the last 6 seconds were idle
}

TEST(MetricCollector, NoDataWhenScrapingAndWindowEmpty) {
  MetricCollector c(spec(seconds(60), seconds(6)));
  EXPECT_TRUE(isNoData(c.stableAndPanicConcurrency(kT).status()));
  EXPECT_TRUE(isNoData(c.stableAndPanicRps(kT).status()));
  Stat s;
  s.average_concurrent_requests = 1;
  c.record(kT, s);
  EXPECT_TRUE(c.stableAndPanicConcurrency(kT + seconds(60)).ok());
  EXPECT_TRUE(isNoData(c.stableAndPanicConcurrency(kT + seconds(61)).status()));
}

TEST(MetricCollector, NoScrapeTargetReadsZeroInsteadOfNoData) {
  // TBC = -1: only the activator reports, and silence means zero.
  MetricCollector c(spec(seconds(60), seconds(6), /*scrape=*/false));
  auto v = c.stableAndPanicConcurrency(kT);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->stable, 0);
  EXPECT_EQ(v->panic, 0);
}

TEST(MetricCollector, WeightedAggregation) {
  MetricCollector c(spec(seconds(60), seconds(6), true, AggregationAlgorithm::kWeightedExponential));
  Stat s;
  s.average_concurrent_requests = 10;
  c.record(kT, s);
  auto v = c.stableAndPanicConcurrency(kT);
  ASSERT_TRUE(v.ok());
  EXPECT_DOUBLE_EQ(v->stable, 10 * 0.2);
  EXPECT_DOUBLE_EQ(v->panic, 10 * computeDecayMultiplier(6));
}

TEST(MetricCollector, UpdateResizesWindows) {
  MetricCollector c(spec(seconds(60), seconds(6)));
  Stat s;
  s.average_concurrent_requests = 6;
  for (int i = 0; i < 10; ++i) c.record(kT + seconds(i), s);
  c.update(kT + seconds(9), spec(seconds(30), seconds(3)));
  EXPECT_EQ(c.spec().stable_window, seconds(30));
  c.record(kT + seconds(10), Stat{});
  auto v = c.stableAndPanicConcurrency(kT + seconds(10));
  ASSERT_TRUE(v.ok());
  // After a resize firstWrite is lastWrite − (oldBuckets−1)s, so the whole 30s counts.
  EXPECT_EQ(v->stable, 2);  // 60 / 30
  EXPECT_EQ(v->panic, 4);   // (6 + 6 + 0) / 3
}

TEST(MakeMetricSpec, FromRevisionScaling) {
  RevisionScaling r;
  r.stable_window = seconds(30);
  r.panic_window = seconds(3);
  r.aggregation = AggregationAlgorithm::kWeightedExponential;
  r.target_burst_capacity = -1;
  MetricSpec s = makeMetricSpec(r);
  EXPECT_EQ(s.stable_window, seconds(30));
  EXPECT_EQ(s.panic_window, seconds(3));
  EXPECT_EQ(s.aggregation, AggregationAlgorithm::kWeightedExponential);
  EXPECT_FALSE(s.has_scrape_target);
  r.target_burst_capacity = 211;
  EXPECT_TRUE(makeMetricSpec(r).has_scrape_target);
}

}  // namespace
}  // namespace kh::autoscaler
