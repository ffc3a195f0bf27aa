// The KPA decider and scaling settings on a virtual clock: Knative's golden cases
// (knative.md §2.4, autoscaler_test.go) and the settings resolution of §1.

#include <chrono>

#include "gtest/gtest.h"
#include "serverless.h"

namespace kh::refstack {
namespace {

using namespace std::chrono_literals;

// Knative's test harness: TotalValue = Target / 0.75, panic threshold 2, rates 10, window 60 s.
ScalingSettings golden(double target, double tbc) {
  ScalingSettings s;
  s.target = target;
  s.total = target / 0.75;
  s.target_burst_capacity = tbc;
  s.panic_threshold = 2;
  s.max_scale_up_rate = 10;
  s.max_scale_down_rate = 10;
  s.stable_window = 60s;
  s.panic_window = 6s;
  return s;
}

// Fills the seconds (from - 60 s, to] so that the stable (60 s) average is `stable` and the
// panic (6 s) average is `panic`.
void feed(RevisionDecider& d, common::MonotonicTime to, double stable, double panic, int seconds = 60) {
  double early = (60 * stable - 6 * panic) / 54;
  for (int i = seconds - 1; i >= 0; --i) {
    d.record(to - std::chrono::seconds(i), i < 6 ? panic : early);
  }
}

const common::MonotonicTime t0 = common::MonotonicTime() + 1000s;

TEST(KpaGolden, StableModeNoChange) {
  RevisionDecider d(golden(10, 100), t0 - 100s);
  feed(d, t0, 50, 50);
  auto r = d.decide(t0, 1);
  EXPECT_EQ(r.desired, 5);
  EXPECT_NEAR(r.excess_burst_capacity, -137, 1);
}

TEST(KpaGolden, PanicModeDoublePodCount) {
  RevisionDecider d(golden(10, 84), t0 - 100s);
  feed(d, t0, 50, 100);
  auto r = d.decide(t0, 1);
  EXPECT_EQ(r.desired, 10);  // the panic value wins
  EXPECT_NEAR(r.excess_burst_capacity, -171, 1);
  EXPECT_TRUE(r.panicking);
}

TEST(KpaGolden, IncreaseWithSmallScaleUpRate) {
  auto s = golden(1, 1982);
  s.max_scale_up_rate = 1.1;
  RevisionDecider d(s, t0 - 100s);
  feed(d, t0, 3, 3.1);
  EXPECT_EQ(d.decide(t0, 2).desired, 3);  // ceil(2 * 1.1) = 3 permits +1
}

TEST(KpaGolden, DecreaseWithSmallScaleDownRate) {
  auto s = golden(10, 1982);
  s.max_scale_down_rate = 1.1;
  RevisionDecider d(s, t0 - 100s);
  feed(d, t0, 1, 1);
  auto r = d.decide(t0, 100);
  EXPECT_EQ(r.desired, 90);  // floor(100 / 1.1)
  EXPECT_NEAR(r.excess_burst_capacity, -650, 1);
}

TEST(KpaGolden, RateLimitScaleUpAndDown) {
  RevisionDecider up(golden(10, 61), t0 - 100s);
  feed(up, t0, 1000, 1001);
  EXPECT_EQ(up.decide(t0, 1).desired, 10);
  EXPECT_EQ(up.decide(t0, 10).desired, 100);
  RevisionDecider down(golden(10, 0), t0 - 100s);
  feed(down, t0, 1, 1);
  EXPECT_EQ(down.decide(t0, 100).desired, 10);
  EXPECT_EQ(down.decide(t0, 10).desired, 1);
}

TEST(KpaGolden, PanicThenUnpanicScaleDown) {
  RevisionDecider d(golden(10, 93), t0 - 100s);
  feed(d, t0, 100, 100);
  EXPECT_EQ(d.decide(t0, 1).desired, 10);
  auto tp = t0 + 10s;
  for (int i = 9; i >= 0; --i) d.record(tp - std::chrono::seconds(i), 1000);
  EXPECT_EQ(d.decide(tp, 10).desired, 100);
  for (int i = 1; i <= 30; ++i) d.record(tp + std::chrono::seconds(i), 1);
  EXPECT_EQ(d.decide(tp + 30s, 10).desired, 100);  // still panicking: no scale-down
  for (int i = 31; i <= 61; ++i) d.record(tp + std::chrono::seconds(i), 1);
  auto r = d.decide(tp + 61s, 10);
  EXPECT_FALSE(r.panicking);
  EXPECT_EQ(r.desired, 1);
}

TEST(KpaGolden, ActivationScale) {
  auto s = golden(10, 75);
  s.activation_scale = 2;
  RevisionDecider idle(s, t0 - 100s);
  feed(idle, t0, 0, 0);
  EXPECT_EQ(idle.decide(t0, 1).desired, 0);
  RevisionDecider busy(s, t0 - 100s);
  feed(busy, t0, 1, 1);
  EXPECT_EQ(busy.decide(t0, 1).desired, 2);
}

TEST(KpaGolden, NoTrafficScalesToZero) {
  RevisionDecider d(golden(10, 75), t0 - 100s);
  feed(d, t0, 1, 0);
  EXPECT_EQ(d.decide(t0, 1).desired, 1);
  RevisionDecider zero(golden(10, 75), t0 - 100s);
  feed(zero, t0, 0, 0);
  EXPECT_EQ(zero.decide(t0, 1).desired, 0);
}

TEST(KpaGolden, OnePodIsTheMinimumWhenNoEndpoints) {
  RevisionDecider d(golden(10, 81), t0 - 100s);
  feed(d, t0, 1000, 888);
  auto r = d.decide(t0, 0);
  EXPECT_EQ(r.desired, 10);
  EXPECT_NEAR(r.excess_burst_capacity, -969, 1);
}

TEST(KpaGolden, UnlimitedAndZeroTargetBurstCapacity) {
  RevisionDecider unlimited(golden(181, -1), t0 - 100s);
  feed(unlimited, t0, 21, 26);
  auto r = unlimited.decide(t0, 1);
  EXPECT_EQ(r.desired, 1);
  EXPECT_EQ(r.excess_burst_capacity, -1);
  RevisionDecider zero(golden(10, 0), t0 - 100s);
  feed(zero, t0, 50, 49);
  auto z = zero.decide(t0, 1);
  EXPECT_EQ(z.desired, 5);
  EXPECT_EQ(z.excess_burst_capacity, 0);
}

TEST(KpaWindow, AveragesOverThePartialWindowThenForgets) {
  ScalingSettings s = golden(1, 0);
  s.stable_window = 6s;
  s.panic_window = 1s;
  RevisionDecider d(s, t0);
  d.record(t0, 6);
  EXPECT_DOUBLE_EQ(d.decide(t0, 1).stable, 6);  // one second of data
  d.record(t0 + 1s, 0);
  EXPECT_DOUBLE_EQ(d.decide(t0 + 1s, 1).stable, 3);
  EXPECT_DOUBLE_EQ(d.decide(t0 + 20s, 1).stable, 0);  // nothing left in the window
}

TEST(ScalingSettings, KnativeDefaultsAndKServeFields) {
  controller::ComponentExtension component;
  auto s = resolveScalingSettings({}, component, {});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->stable_window, 60s);
  EXPECT_EQ(s->panic_window, 6s);
  EXPECT_DOUBLE_EQ(s->target, 70);   // 100 x 0.7
  EXPECT_DOUBLE_EQ(s->total, 100);
  EXPECT_DOUBLE_EQ(s->target_burst_capacity, 211);
  EXPECT_EQ(s->min_scale, 1);        // KServe's minReplicas default
  component.container_concurrency = 1;
  component.min_replicas = 0;
  component.max_replicas = 3;
  auto cc1 = resolveScalingSettings({}, component, {});
  EXPECT_DOUBLE_EQ(cc1->target, 0.7);  // CC = 1: two pods for one request (knative.md §1)
  EXPECT_EQ(cc1->min_scale, 0);
  EXPECT_EQ(cc1->max_scale, 3);
  auto annotated = resolveScalingSettings({{"scale-to-zero-grace-period", "1s"}}, component,
                                          {{"autoscaling.knative.dev/window", "6s"},
                                           {"autoscaling.knative.dev/target-utilization-percentage", "100"}});
  ASSERT_TRUE(annotated.ok()) << annotated.status();
  EXPECT_EQ(annotated->stable_window, 6s);
  EXPECT_EQ(annotated->panic_window, 1s);
  EXPECT_DOUBLE_EQ(annotated->target, 1);
  EXPECT_EQ(annotated->scale_to_zero_grace, 1s);
}

TEST(ScalingSettings, BadValuesAreRefusedWithTheKey) {
  controller::ComponentExtension component;
  auto short_window = resolveScalingSettings({}, component, {{"autoscaling.knative.dev/window", "5s"}});
  ASSERT_FALSE(short_window.ok());
  EXPECT_NE(std::string(short_window.status().message()).find("window"), std::string::npos);
  auto activation = resolveScalingSettings({}, component, {{"autoscaling.knative.dev/activation-scale", "1"}});
  ASSERT_FALSE(activation.ok());
  EXPECT_NE(std::string(activation.status().message()).find("must be greater than 1"), std::string::npos);
  EXPECT_FALSE(resolveScalingSettings({{"max-scale-down-rate", "1"}}, component, {}).ok());
  EXPECT_FALSE(resolveScalingSettings({{"no-such-key", "1"}}, component, {}).ok());
  EXPECT_FALSE(resolveScalingSettings({}, component, {{"autoscaling.knative.dev/metric", "cpu"}}).ok());
  EXPECT_EQ(parseKnativeDuration("1m30s"), std::chrono::milliseconds(90'000));
  EXPECT_EQ(parseKnativeDuration("500ms"), std::chrono::milliseconds(500));
  EXPECT_FALSE(parseKnativeDuration("5 parsecs").has_value());
}

}  // namespace
}  // namespace kh::refstack
