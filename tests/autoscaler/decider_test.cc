// Test that the header is self-contained.
#include "kh/autoscaler/decider.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>

#include "kh/common/time_source.h"

namespace kh::autoscaler {
namespace {

using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

// A MetricClient returning whatever the test set (Go's fake `metricClient`).
class FakeMetrics final : public MetricClient {
 public:
  void setConcurrency(double stable, double panic) {
    stable_concurrency = stable;
    panic_concurrency = panic;
  }
  absl::StatusOr<StableAndPanic> stableAndPanicConcurrency(TimePoint) const override {
    if (!error.ok()) return error;
    return StableAndPanic{stable_concurrency, panic_concurrency};
  }
  absl::StatusOr<StableAndPanic> stableAndPanicRps(TimePoint) const override {
    if (!error.ok()) return error;
    return StableAndPanic{stable_rps, panic_rps};
  }

  double stable_concurrency = 0;
  double panic_concurrency = 0;
  double stable_rps = 0;
  double panic_rps = 0;
  absl::Status error;
};

constexpr double kTargetUtilization = 0.75;  // the Go tests presume 75%
const TimePoint kT0{seconds(1'000'000)};

// newTestAutoscalerWithScalingMetric: TotalValue = target/0.75, PanicThreshold 2, MSUR = MSDR
// = 10, stable window 60s, reachable, activator capacity 150, no delay window.
DeciderSpec testSpec(double target, double tbc, ScalingMetric metric = ScalingMetric::kConcurrency) {
  DeciderSpec spec;
  spec.scaling_metric = metric;
  spec.target_value = target;
  spec.total_value = target / kTargetUtilization;
  spec.target_burst_capacity = tbc;
  spec.panic_threshold = 2;
  spec.max_scale_up_rate = 10;
  spec.max_scale_down_rate = 10;
  spec.activator_capacity = 150;
  spec.stable_window = seconds(60);
  spec.reachable = true;
  spec.initial_scale = 1;
  return spec;
}

// The Go oracle, floor(T/0.75·R − TBC − P): spelled out so the hard-coded values below can be
// checked against it.
int32_t expectedEbc(double target, double tbc, double panic, double ready) {
  return static_cast<int32_t>(std::floor(target / kTargetUtilization * ready - tbc - panic));
}

ScaleResult sr(int32_t desired, int32_t ebc) { return ScaleResult{desired, ebc, true}; }

// ----- 2.4 golden cases, one test each -----

// 1
TEST(DeciderGolden, StableModeNoChange) {
  FakeMetrics m;
  m.setConcurrency(50, 50);
  Decider d(testSpec(10, 100), m, 1, kT0);
  EXPECT_EQ(expectedEbc(10, 100, 50, 1), -137);
  EXPECT_EQ(d.scale(kT0, 1), sr(5, -137));
}

// 2
TEST(DeciderGolden, PanicModeDoublePodCount) {
  FakeMetrics m;
  m.setConcurrency(50, 100);
  Decider d(testSpec(10, 84), m, 1, kT0);
  EXPECT_EQ(expectedEbc(10, 84, 100, 1), -171);
  EXPECT_EQ(d.scale(kT0, 1), sr(10, -171));  // the panic value wins
  EXPECT_TRUE(d.inPanic());
}

// 3
TEST(DeciderGolden, StableModeIncreaseWithSmallScaleUpRate) {
  FakeMetrics m;
  m.setConcurrency(3, 3.1);
  DeciderSpec spec = testSpec(1, 1982);
  spec.max_scale_up_rate = 1.1;
  Decider d(spec, m, 1, kT0);
  EXPECT_EQ(expectedEbc(1, 1982, 3.1, 2), -1983);
  // ceil(1.1 × 2) = 3 still permits one more pod.
  EXPECT_EQ(d.scale(kT0, 2), sr(3, -1983));
}

// 4
TEST(DeciderGolden, StableModeDecreaseWithSmallScaleDownRate) {
  FakeMetrics m;
  m.setConcurrency(1, 1);
  DeciderSpec spec = testSpec(10, 1982);
  spec.max_scale_down_rate = 1.1;
  Decider d(spec, m, 1, kT0);
  EXPECT_EQ(expectedEbc(10, 1982, 1, 100), -650);
  EXPECT_EQ(d.scale(kT0, 100), sr(90, -650));  // floor(100/1.1)
}

// 5
TEST(DeciderGolden, StableModeDecreaseNonReachable) {
  FakeMetrics m;
  m.setConcurrency(1, 1);
  DeciderSpec spec = testSpec(10, 1982);
  spec.max_scale_down_rate = 1.1;
  spec.reachable = false;
  Decider d(spec, m, 1, kT0);
  EXPECT_EQ(d.scale(kT0, 100), sr(1, -650));
}

// 6
TEST(DeciderGolden, RateLimitScaleUp) {
  FakeMetrics m;
  m.setConcurrency(1000, 1001);
  Decider d(testSpec(10, 61), m, 1, kT0);
  // Needs 100 pods but may only grow ×10.
  EXPECT_EQ(d.scale(kT0, 1), sr(10, expectedEbc(10, 61, 1001, 1)));
  EXPECT_EQ(expectedEbc(10, 61, 1001, 1), -1049);
  EXPECT_EQ(d.scale(kT0 + seconds(2), 10), sr(100, -929));
}

// 7
TEST(DeciderGolden, RateLimitScaleDown) {
  FakeMetrics m;
  m.setConcurrency(1, 1);
  Decider d(testSpec(10, 61), m, 1, kT0);
  EXPECT_EQ(d.scale(kT0, 100), sr(10, expectedEbc(10, 61, 1, 100)));
  EXPECT_EQ(d.scale(kT0 + seconds(2), 10), sr(1, expectedEbc(10, 61, 1, 10)));
}

// 8
TEST(DeciderGolden, PanicThenUnPanicScaleDown) {
  FakeMetrics m;
  m.setConcurrency(100, 100);
  Decider d(testSpec(10, 93), m, 1, kT0);
  EXPECT_EQ(d.scale(kT0, 1), sr(10, expectedEbc(10, 93, 100, 1)));

  const TimePoint tp = kT0 + milliseconds(10);
  m.panic_concurrency = 1000;
  EXPECT_EQ(d.scale(tp, 10), sr(100, expectedEbc(10, 93, 1000, 10)));
  EXPECT_EQ(d.panicTime(), tp);

  // Traffic dropped off; still panicking, so no scale-down.
  m.setConcurrency(1, 1);
  EXPECT_EQ(d.scale(tp + seconds(30), 10), sr(100, expectedEbc(10, 93, 1, 10)));
  // A stable window after the last over-threshold tick: un-panic and scale down.
  EXPECT_EQ(d.scale(tp + seconds(61), 10), sr(1, expectedEbc(10, 93, 1, 10)));
  EXPECT_FALSE(d.inPanic());
  EXPECT_EQ(d.maxPanicPods(), 0);
}

// 9
TEST(DeciderGolden, UnpanicAfterSlowIncrease) {
  FakeMetrics m;
  m.setConcurrency(11, 25);
  Decider d(testSpec(1, 98), m, 1, kT0);
  EXPECT_EQ(d.scale(kT0, 10), sr(25, expectedEbc(1, 98, 25, 10)));
  EXPECT_EQ(d.panicTime(), kT0);

  // Half a window later, +1 pod per tick: 40 ready. Not over the threshold (41/40).
  m.setConcurrency(30, 41);
  EXPECT_EQ(d.scale(kT0 + seconds(30), 40), sr(41, expectedEbc(1, 98, 41, 40)));
  EXPECT_EQ(d.panicTime(), kT0);  // not moved

  m.setConcurrency(50, 56);
  EXPECT_EQ(d.scale(kT0 + seconds(62), 55), sr(50, expectedEbc(1, 98, 56, 55)));
  EXPECT_FALSE(d.panicTime().has_value());
}

// 10
TEST(DeciderGolden, PanicModeExponentialTrackAndStabilize) {
  FakeMetrics m;
  m.setConcurrency(6, 6);
  Decider d(testSpec(1, 101), m, 1, kT0);
  EXPECT_EQ(d.scale(kT0, 1), sr(6, expectedEbc(1, 101, 6, 1)));

  TimePoint tm = kT0 + milliseconds(1);
  m.setConcurrency(36, 36);
  EXPECT_EQ(d.scale(tm, 6), sr(36, expectedEbc(1, 101, 36, 6)));
  EXPECT_EQ(d.panicTime(), tm);

  tm += seconds(1);
  m.setConcurrency(216, 216);
  EXPECT_EQ(d.scale(tm, 36), sr(216, expectedEbc(1, 101, 216, 36)));
  EXPECT_EQ(d.panicTime(), tm);

  m.setConcurrency(1296, 1296);
  EXPECT_EQ(d.scale(tm, 216), sr(1296, expectedEbc(1, 101, 1296, 216)));
  EXPECT_EQ(d.panicTime(), tm);

  tm += seconds(1);
  EXPECT_EQ(d.scale(tm, 1296), sr(1296, expectedEbc(1, 101, 1296, 1296)));
}

// 11 (base `time.Time{}` in Go: any whole even second works, the clock's epoch here)
TEST(DeciderGolden, ScaleDownDelay) {
  FakeMetrics m;
  DeciderSpec spec;
  spec.target_value = 10;
  spec.total_value = 0;
  spec.target_burst_capacity = 0;
  spec.max_scale_down_rate = 10;
  spec.max_scale_up_rate = 10;
  spec.panic_threshold = 100;
  spec.scale_down_delay = minutes(5);
  spec.reachable = true;
  const TimePoint now{};
  Decider d(spec, m, 0, now);

  // simple
  m.setConcurrency(40, 40);
  EXPECT_EQ(d.scale(now + seconds(2), 0), sr(4, 0));
  m.setConcurrency(0, 0);
  EXPECT_EQ(d.scale(now + minutes(5), 0), sr(4, 0));  // less than the delay
  EXPECT_EQ(d.scale(now + minutes(5) + seconds(2), 0), sr(0, 0));

  // gradual
  m.setConcurrency(40, 40);
  EXPECT_EQ(d.scale(now + minutes(9), 0), sr(4, 0));
  m.setConcurrency(30, 30);
  EXPECT_EQ(d.scale(now + minutes(10), 0), sr(4, 0));  // 4 still dominates
  m.setConcurrency(0, 0);
  EXPECT_EQ(d.scale(now + minutes(11), 0), sr(4, 0));
  EXPECT_EQ(d.scale(now + minutes(14), 0), sr(3, 0));  // 4 scrolls out
  EXPECT_EQ(d.scale(now + minutes(15), 0), sr(0, 0));  // everything scrolled out
}

TEST(DeciderGolden, ScaleDownDelayNotReachable) {
  FakeMetrics m;
  DeciderSpec spec;
  spec.target_value = 10;
  spec.total_value = 0;
  spec.target_burst_capacity = 0;
  spec.max_scale_down_rate = 10;
  spec.max_scale_up_rate = 10;
  spec.panic_threshold = 100;
  spec.scale_down_delay = minutes(5);
  spec.reachable = true;
  const TimePoint now{};
  Decider d(spec, m, 0, now);
  m.setConcurrency(40, 40);
  EXPECT_EQ(d.scale(now + seconds(2), 0), sr(4, 0));
  m.setConcurrency(0, 0);
  EXPECT_EQ(d.scale(now + minutes(1), 0), sr(4, 0));
  // Another revision takes the traffic: unreachable revisions skip the delay.
  spec.reachable = false;
  d.update(spec);
  EXPECT_EQ(d.scale(now + seconds(2), 0), sr(0, 0));
}

// 12
TEST(DeciderGolden, ScaleDownDelayZero) {
  FakeMetrics m;
  DeciderSpec spec;
  spec.target_value = 10;
  spec.total_value = 0;
  spec.target_burst_capacity = 0;
  spec.max_scale_down_rate = 10;
  spec.max_scale_up_rate = 10;
  spec.panic_threshold = 100;
  spec.scale_down_delay = Duration(0);
  spec.reachable = false;  // unset in the Go test
  const TimePoint now{};
  Decider d(spec, m, 0, now);
  m.setConcurrency(40, 40);
  EXPECT_EQ(d.scale(now, 0), sr(4, 0));
  // No delay window at all: two decisions in one 2s bucket do not keep the larger.
  m.setConcurrency(20, 20);
  EXPECT_EQ(d.scale(now + milliseconds(500), 0), sr(2, 0));
}

// 13
TEST(DeciderGolden, ActivationScale) {
  FakeMetrics m;
  DeciderSpec spec = testSpec(10, 75);
  spec.activation_scale = 2;
  Decider d(spec, m, 1, kT0);
  EXPECT_EQ(expectedEbc(10, 75, 0, 1), -62);
  EXPECT_EQ(d.scale(kT0, 1), sr(0, -62));
  m.stable_concurrency = 1;
  EXPECT_EQ(d.scale(kT0 + seconds(2), 1), sr(2, -62));
}

// 14
TEST(DeciderGolden, StableModeNoTrafficScaleToZero) {
  FakeMetrics m;
  m.setConcurrency(1, 0);
  Decider d(testSpec(10, 75), m, 1, kT0);
  EXPECT_EQ(d.scale(kT0, 1), sr(1, -62));
  m.stable_concurrency = 0;
  EXPECT_EQ(d.scale(kT0 + seconds(2), 1), sr(0, -62));
}

// 15
TEST(DeciderGolden, UseOnePodAsMinimumIfEndpointsNotFound) {
  FakeMetrics m;
  m.setConcurrency(1000, 888);
  Decider d(testSpec(10, 81), m, 1, kT0);
  // Rate-limited from one pod (×10), but the EBC uses the raw ready count 0.
  EXPECT_EQ(expectedEbc(10, 81, 888, 0), -969);
  EXPECT_EQ(d.scale(kT0, 0), sr(10, -969));
}

// 16
TEST(DeciderGolden, PanicStableLargerThanPanic) {
  FakeMetrics m;
  m.setConcurrency(50, 30);
  Decider d(testSpec(1, 100), m, 1, kT0);
  d.setPanicStateForTest(kT0 - seconds(5), 5);
  EXPECT_EQ(d.scale(kT0, 5), sr(50, expectedEbc(1, 100, 30, 5)));
  EXPECT_EQ(expectedEbc(1, 100, 30, 5), -124);
}

TEST(DeciderGolden, PanicStableLessThanPanic) {
  FakeMetrics m;
  m.setConcurrency(20, 30);
  Decider d(testSpec(1, 100), m, 1, kT0);
  d.setPanicStateForTest(kT0 - seconds(5), 5);
  EXPECT_EQ(d.scale(kT0, 5), sr(30, -124));
}

// 17
TEST(DeciderGolden, StableModeUnlimitedTbc) {
  FakeMetrics m;
  m.setConcurrency(21, 26);
  Decider d(testSpec(181, -1), m, 1, kT0);
  EXPECT_EQ(d.scale(kT0, 1), sr(1, -1));
}

TEST(DeciderGolden, ZeroTbc) {
  FakeMetrics m;
  m.setConcurrency(50, 49);
  Decider d(testSpec(10, 0), m, 1, kT0);
  EXPECT_EQ(d.scale(kT0, 1), sr(5, 0));
}

// 18
TEST(DeciderGolden, UpdateTarget) {
  FakeMetrics m;
  m.setConcurrency(100, 101);
  Decider d(testSpec(10, 77), m, 1, kT0);
  EXPECT_EQ(d.scale(kT0, 1), sr(10, expectedEbc(10, 77, 101, 1)));

  DeciderSpec updated;
  updated.target_value = 1;
  updated.total_value = 1 / kTargetUtilization;
  updated.activator_capacity = 21;
  updated.target_burst_capacity = 71;
  updated.panic_threshold = 2;
  updated.max_scale_down_rate = 10;
  updated.max_scale_up_rate = 10;
  updated.stable_window = seconds(60);
  updated.reachable = false;  // unset in the Go test
  d.update(updated);
  EXPECT_EQ(expectedEbc(1, 71, 101, 10), -159);
  EXPECT_EQ(d.scale(kT0 + seconds(2), 10), sr(100, -159));
}

// ----- Other decider behaviour -----

TEST(Decider, NoDataNoAutoscale) {
  FakeMetrics m;
  m.error = noDataError();
  Decider d(testSpec(10, 100), m, 1, kT0);
  EXPECT_EQ(d.scale(kT0, 1), (ScaleResult{0, 0, false}));
  EXPECT_FALSE(d.tick(kT0, 1));
  EXPECT_EQ(d.status().desired_scale, -1);  // the last decision (none) stands
}

TEST(Decider, StableModeIncreaseWithRps) {
  FakeMetrics m;
  m.stable_rps = 50;
  m.panic_rps = 50;
  m.setConcurrency(1000, 1000);  // must not be read
  Decider d(testSpec(10, 101, ScalingMetric::kRps), m, 1, kT0);
  EXPECT_EQ(d.scale(kT0, 1), sr(5, expectedEbc(10, 101, 50, 1)));
  m.stable_rps = 100;
  m.panic_rps = 99;
  EXPECT_EQ(d.scale(kT0 + seconds(2), 1), sr(10, expectedEbc(10, 101, 99, 1)));
}

TEST(Decider, StartsInPanicModeAboveOnePod) {
  FakeMetrics m;
  for (int ready = 0; ready < 2; ++ready) {
    Decider d(testSpec(100, 11), m, ready, kT0);
    EXPECT_FALSE(d.inPanic()) << ready;
    EXPECT_EQ(d.maxPanicPods(), ready);
  }
  Decider d(testSpec(100, 11), m, 2, kT0);
  EXPECT_EQ(d.panicTime(), kT0);
  EXPECT_EQ(d.maxPanicPods(), 2);
  // The restart panic holds the 2 pods although nothing is observed...
  EXPECT_EQ(d.scale(kT0 + seconds(2), 2).desired_pod_count, 2);
  // ...until a stable window has passed (max-scale-down-rate 10 allows 2 → 0).
  EXPECT_EQ(d.scale(kT0 + seconds(61), 2).desired_pod_count, 0);
}

TEST(Decider, InitialStatus) {
  FakeMetrics m;
  DeciderSpec spec;  // defaults: TBC 211, total 100, initial scale 1
  EXPECT_EQ(initialExcessBurstCapacity(spec), -111);
  Decider d(spec, m, 0, kT0);
  EXPECT_EQ(d.status().desired_scale, -1);
  EXPECT_EQ(d.status().excess_burst_capacity, -111);
  spec.target_burst_capacity = -1;
  EXPECT_EQ(initialExcessBurstCapacity(spec), -1);
  spec.target_burst_capacity = 0;
  EXPECT_EQ(initialExcessBurstCapacity(spec), 0);
  spec.target_burst_capacity = 150;
  spec.initial_scale = 3;
  EXPECT_EQ(initialExcessBurstCapacity(spec), 150);
}

TEST(Decider, TickPublishesOnChangeOrEbcSignFlip) {
  FakeMetrics m;
  m.setConcurrency(50, 50);
  Decider d(testSpec(10, 100), m, 1, kT0);
  EXPECT_TRUE(d.tick(kT0, 1));  // -1 → 5
  EXPECT_EQ(d.status().desired_scale, 5);
  EXPECT_EQ(d.status().excess_burst_capacity, -137);
  EXPECT_FALSE(d.tick(kT0 + seconds(2), 1));  // same scale, same sign
  // Same desired count (5, held by the panic that began at kT0), but with 20 ready pods the
  // EBC turns non-negative: floor(20·13.33 − 100 − 50) = 116.
  EXPECT_TRUE(d.tick(kT0 + seconds(4), 20));
  EXPECT_EQ(d.status().desired_scale, 5);
  EXPECT_GE(d.status().excess_burst_capacity, 0);
  // Only the EBC magnitude changes: not published, but recorded.
  EXPECT_FALSE(d.tick(kT0 + seconds(6), 21));
  EXPECT_EQ(d.status().excess_burst_capacity, expectedEbc(10, 100, 50, 21));
}

TEST(Decider, PokeOnlyWhenAtZeroAndConcurrencyArrives) {
  FakeMetrics m;
  Decider d(testSpec(10, 100), m, 0, kT0);
  Stat poke;
  poke.average_concurrent_requests = 1;
  poke.request_count = 1;
  EXPECT_FALSE(d.shouldPoke(poke));  // desired is -1, not 0
  m.setConcurrency(0, 0);
  d.tick(kT0, 0);
  ASSERT_EQ(d.status().desired_scale, 0);
  EXPECT_TRUE(d.shouldPoke(poke));
  Stat rps_only;
  rps_only.request_count = 5;
  EXPECT_FALSE(d.shouldPoke(rps_only));
  m.setConcurrency(1, 1);
  d.tick(kT0 + milliseconds(3), 0);
  EXPECT_EQ(d.status().desired_scale, 1);
  EXPECT_FALSE(d.shouldPoke(poke));
}

TEST(Decider, ScaleFromZeroWithCollectorOnSimulatedClock) {
  // End to end with the real collector: the activator's poke stat scales 0 → 1 at once.
  common::SimulatedTimeSource clock;
  MetricSpec ms;
  ms.stable_window = seconds(60);
  ms.panic_window = seconds(6);
  MetricCollector collector(ms);
  DeciderSpec spec;  // Knative defaults: target 70, total 100, TBC 211
  Decider d(spec, collector, 0, clock.monotonicTime());

  EXPECT_FALSE(d.tick(clock.monotonicTime(), 0));  // no data yet: invalid tick
  Stat idle;
  collector.record(clock.monotonicTime(), idle);
  EXPECT_TRUE(d.tick(clock.monotonicTime(), 0));
  EXPECT_EQ(d.status().desired_scale, 0);

  clock.advance(seconds(5));
  Stat poke;
  poke.average_concurrent_requests = 1;
  poke.request_count = 1;
  collector.record(clock.monotonicTime(), poke);
  ASSERT_TRUE(d.shouldPoke(poke));
  EXPECT_TRUE(d.tick(clock.monotonicTime(), 0));
  EXPECT_EQ(d.status().desired_scale, 1);
  EXPECT_EQ(d.status().excess_burst_capacity, -212);  // floor(0·100 − 211 − 1)
}

TEST(Decider, MakeDeciderSpecFromRevisionScaling) {
  RevisionScaling r;
  r.max_scale_up_rate = 5;
  r.max_scale_down_rate = 3;
  r.scaling_metric = ScalingMetric::kRps;
  r.target_value = 140;
  r.total_value = 200;
  r.target_burst_capacity = -1;
  r.activator_capacity = 50;
  r.panic_threshold = 3;
  r.stable_window = seconds(30);
  r.scale_down_delay = seconds(10);
  r.initial_scale = 2;
  r.activation_scale = 3;
  DeciderSpec s = makeDeciderSpec(r, false);
  EXPECT_EQ(s.max_scale_up_rate, 5);
  EXPECT_EQ(s.max_scale_down_rate, 3);
  EXPECT_EQ(s.scaling_metric, ScalingMetric::kRps);
  EXPECT_EQ(s.target_value, 140);
  EXPECT_EQ(s.total_value, 200);
  EXPECT_EQ(s.target_burst_capacity, -1);
  EXPECT_EQ(s.activator_capacity, 50);
  EXPECT_EQ(s.panic_threshold, 3);
  EXPECT_EQ(s.stable_window, seconds(30));
  EXPECT_EQ(s.scale_down_delay, seconds(10));
  EXPECT_EQ(s.initial_scale, 2);
  EXPECT_FALSE(s.reachable);
  EXPECT_EQ(s.activation_scale, 3);
}

}  // namespace
}  // namespace kh::autoscaler
