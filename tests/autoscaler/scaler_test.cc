// Test that the header is self-contained.
#include "kh/autoscaler/scaler.h"

#include <gtest/gtest.h>

#include <chrono>

#include "kh/common/time_source.h"

namespace kh::autoscaler {
namespace {

using std::chrono::minutes;
using std::chrono::seconds;

// kpa_test.go constants.
constexpr Duration kGrace = seconds(60);
constexpr Duration kStableWindow = minutes(5);
constexpr Duration kPaStableWindow = seconds(45);
constexpr Duration kProgressDeadline = seconds(121);
constexpr Duration kActivationTimeout = kProgressDeadline + kActivationTimeoutBuffer;

const TimePoint kNow{seconds(1'000'000)};

// The kpa_test.go config (stable window 5m, grace 60s) with `cmOverrides`, and `annotations`.
RevisionScaling scaling(const Annotations& annotations = {},
                        const std::map<std::string, std::string>& cmOverrides = {}) {
  std::map<std::string, std::string> cm = {{"stable-window", "5m"},
                                           {"scale-to-zero-grace-period", "60s"}};
  for (auto& [k, v] : cmOverrides) cm[k] = v;
  auto cfg = parseAutoscalerConfig(cm);
  EXPECT_TRUE(cfg.ok()) << cfg.status();
  auto r = resolveRevisionScaling(*cfg, annotations, 0, kProgressDeadline);
  EXPECT_TRUE(r.ok()) << r.status();
  return *r;
}

PaStatus pa(PaActivity activity, TimePoint since, bool initialized = true) {
  PaStatus p;
  p.activity = activity;
  p.activity_since = since;
  p.scale_target_initialized = initialized;
  return p;
}

ScalerInput input(int32_t desired, SksMode mode = SksMode::kServe, Duration proxyFor = Duration(0),
                  Reachability reach = Reachability::kReachable, bool probeOk = true) {
  ScalerInput in;
  in.desired_scale = desired;
  in.sks_mode = mode;
  in.proxy_for = proxyFor;
  in.reachability = reach;
  in.activator_probe_ok = probeOk;
  return in;
}

// ----- Helpers -----

TEST(ApplyBounds, ClampsWithZeroMaxUnbounded) {
  EXPECT_EQ(applyBounds(0, 0, 5), 5);
  EXPECT_EQ(applyBounds(2, 0, 1), 2);
  EXPECT_EQ(applyBounds(2, 4, 9), 4);
  EXPECT_EQ(applyBounds(0, 4, -1), 0);
  EXPECT_EQ(applyBounds(3, 3, 0), 3);
}

// kpa_test.go TestComputeActivatorNum.
TEST(ComputeActivatorNum, Golden) {
  DeciderSpec spec;
  spec.total_value = 100;
  spec.target_burst_capacity = 200;
  spec.activator_capacity = 100;
  EXPECT_EQ(computeActivatorNum(0, spec), 2);
  EXPECT_EQ(computeActivatorNum(1, spec), 3);
  EXPECT_EQ(computeActivatorNum(15, spec), 17);
  spec.target_burst_capacity = 0;
  EXPECT_EQ(computeActivatorNum(100, spec), 2);
  spec.target_burst_capacity = -1;
  EXPECT_EQ(computeActivatorNum(5, spec), 5);
  // Knative defaults (TBC 211): 0 pods → 3 activators.
  spec.target_burst_capacity = 211;
  EXPECT_EQ(computeActivatorNum(0, spec), 3);
}

TEST(SksMode, ServeOnlyWithWantAndNonNegativeEbc) {
  EXPECT_EQ(computeSksMode(1, 0, false), SksMode::kServe);
  EXPECT_EQ(computeSksMode(3, 5, true), SksMode::kServe);
  EXPECT_EQ(computeSksMode(1, -1, false), SksMode::kProxy);
  EXPECT_EQ(computeSksMode(0, 10, false), SksMode::kProxy);
  EXPECT_EQ(computeSksMode(-1, 10, true), SksMode::kProxy);
  EXPECT_EQ(computeSksMode(-1, 10, false), SksMode::kProxy);
  EXPECT_EQ(effectiveSksMode(SksMode::kServe, 0, 3), SksMode::kProxy);
  EXPECT_EQ(effectiveSksMode(SksMode::kProxy, 2, 0), SksMode::kServe);
  EXPECT_EQ(effectiveSksMode(SksMode::kServe, 2, 3), SksMode::kServe);
  EXPECT_EQ(effectiveSksMode(SksMode::kProxy, 2, 3), SksMode::kProxy);
  EXPECT_STREQ(sksModeName(SksMode::kProxy), "Proxy");
}

TEST(ScaleBounds, MinIgnoredWhenUnreachable) {
  RevisionScaling r = scaling({{"autoscaling.knative.dev/min-scale", "2"},
                                {"autoscaling.knative.dev/max-scale", "5"},
                                {"autoscaling.knative.dev/scale-to-zero-pod-retention-period",
                                 "90s"}});
  EXPECT_EQ(scaleBounds(r, Reachability::kReachable), std::make_pair(2, 5));
  EXPECT_EQ(scaleBounds(r, Reachability::kUnknown), std::make_pair(2, 5));
  EXPECT_EQ(scaleBounds(r, Reachability::kUnreachable), std::make_pair(0, 5));
  EXPECT_EQ(lastPodRetention(r, Reachability::kReachable), seconds(90));
  EXPECT_EQ(lastPodRetention(r, Reachability::kUnreachable), Duration(0));
}

// ----- scaler_test.go TestScaler -----

TEST(Scaler, WaitsToScaleToZeroJustBeforeIdlePeriod) {
  auto d = computeScale(scaling(), pa(PaActivity::kActive, kNow - kStableWindow + seconds(1)),
                        input(0), kNow);
  EXPECT_EQ(d.want, 1);  // hold one pod
  EXPECT_TRUE(d.apply);
  EXPECT_EQ(d.requeue_after, seconds(1));
}

TEST(Scaler, WaitsJustBeforeIdlePeriodCustomWindow) {
  auto d = computeScale(scaling({{"autoscaling.knative.dev/window", "45s"}}),
                        pa(PaActivity::kActive, kNow - kPaStableWindow + seconds(1)), input(0),
                        kNow);
  EXPECT_EQ(d.want, 1);
  EXPECT_TRUE(d.apply);
  EXPECT_EQ(d.requeue_after, seconds(1));
}

TEST(Scaler, CustomWindowActiveForStandardWindow) {
  auto d = computeScale(scaling({{"autoscaling.knative.dev/window", "45s"}}),
                        pa(PaActivity::kActive, kNow - kStableWindow), input(0), kNow);
  EXPECT_EQ(d.want, 0);
  EXPECT_FALSE(d.apply);
  EXPECT_FALSE(d.requeue_after.has_value());
}

TEST(Scaler, ActiveAfterIdlePeriodDeactivatesFirst) {
  auto d = computeScale(scaling(), pa(PaActivity::kActive, kNow - kStableWindow), input(0), kNow);
  EXPECT_EQ(d.want, 0);
  EXPECT_FALSE(d.apply);  // the PA goes Inactive and the SKS to Proxy first
  EXPECT_FALSE(d.requeue_after.has_value());
}

TEST(Scaler, ActiveAfterIdlePeriodSksInProxyRequeues) {
  auto d = computeScale(scaling(), pa(PaActivity::kActive, kNow - kStableWindow),
                        input(0, SksMode::kProxy), kNow);
  EXPECT_EQ(d.want, 0);
  EXPECT_FALSE(d.apply);
  EXPECT_EQ(d.requeue_after, seconds(3));
}

TEST(Scaler, ScaleToZeroAfterGraceWithZeroRetentionAnnotation) {
  auto d = computeScale(
      scaling({{"autoscaling.knative.dev/scale-to-zero-pod-retention-period", "0"}},
               {{"scale-to-zero-pod-retention-period", "120s"}}),
      pa(PaActivity::kInactive, kNow - kGrace), input(0), kNow);
  EXPECT_EQ(d.want, 0);
  EXPECT_TRUE(d.apply);
}

TEST(Scaler, RetentionBlocksScaleDownAfterGrace) {
  auto d = computeScale(scaling({}, {{"scale-to-zero-pod-retention-period", "120s"}}),
                        pa(PaActivity::kInactive, kNow - kGrace), input(0), kNow);
  EXPECT_EQ(d.want, 0);
  EXPECT_FALSE(d.apply);
  EXPECT_EQ(d.requeue_after, seconds(60));  // 2×grace − grace
}

TEST(Scaler, RetentionAnnotationBlocksScaleDown) {
  auto d = computeScale(
      scaling({{"autoscaling.knative.dev/scale-to-zero-pod-retention-period", "2m"}},
               {{"scale-to-zero-pod-retention-period", "0s"}}),
      pa(PaActivity::kInactive, kNow - kGrace), input(0), kNow);
  EXPECT_FALSE(d.apply);
  EXPECT_EQ(d.requeue_after, seconds(60));
}

TEST(Scaler, ScaleToZeroAfterGraceAndRetention) {
  auto d = computeScale(scaling({}, {{"scale-to-zero-pod-retention-period", "60s"}}),
                        pa(PaActivity::kInactive, kNow - kGrace), input(0), kNow);
  EXPECT_EQ(d.want, 0);
  EXPECT_TRUE(d.apply);
}

TEST(Scaler, ScaleToZeroAfterGrace) {
  auto d = computeScale(scaling(), pa(PaActivity::kInactive, kNow - kGrace), input(0), kNow);
  EXPECT_EQ(d.want, 0);
  EXPECT_TRUE(d.apply);
}

TEST(Scaler, WaitsJustBeforeGrace) {
  auto d = computeScale(scaling(), pa(PaActivity::kInactive, kNow - kGrace + seconds(1)),
                        input(0), kNow);
  EXPECT_EQ(d.want, 0);
  EXPECT_FALSE(d.apply);
  EXPECT_EQ(d.requeue_after, kGrace);  // not proxying at all yet
}

TEST(Scaler, WaitsJustBeforeGraceSksShortInProxy) {
  auto d = computeScale(scaling(), pa(PaActivity::kInactive, kNow - kGrace + seconds(1)),
                        input(0, SksMode::kProxy, kGrace - seconds(1)), kNow);
  EXPECT_FALSE(d.apply);
  EXPECT_EQ(d.requeue_after, seconds(1));
}

TEST(Scaler, FastPathWithShortRetention) {
  auto d = computeScale(scaling({}, {{"scale-to-zero-pod-retention-period", "42s"}}),
                        pa(PaActivity::kInactive, kNow - kGrace + seconds(1)),
                        input(0, SksMode::kProxy, kGrace), kNow);
  EXPECT_EQ(d.want, 0);
  EXPECT_TRUE(d.apply);
}

TEST(Scaler, FastPathSksInProxyLong) {
  auto d = computeScale(scaling(), pa(PaActivity::kInactive, kNow - kGrace + seconds(1)),
                        input(0, SksMode::kProxy, kGrace), kNow);
  EXPECT_EQ(d.want, 0);
  EXPECT_TRUE(d.apply);
  EXPECT_NE(d.note.text().find("fast path"), std::string::npos);
}

TEST(Scaler, UnlimitedTbcNeedsNoProbe) {
  auto d = computeScale(scaling({{"autoscaling.knative.dev/target-burst-capacity", "-1"}}),
                        pa(PaActivity::kInactive, kNow - kGrace),
                        input(0, SksMode::kProxy, Duration(0), Reachability::kReachable,
                              /*probeOk=*/false),
                        kNow);
  EXPECT_EQ(d.want, 0);
  EXPECT_TRUE(d.apply);
  EXPECT_FALSE(d.start_async_probe);
}

TEST(Scaler, FailedProbeStartsAsyncProbe) {
  auto d = computeScale(scaling(), pa(PaActivity::kInactive, kNow - kGrace),
                        input(0, SksMode::kProxy, kGrace, Reachability::kReachable, false), kNow);
  EXPECT_EQ(d.want, 0);
  EXPECT_FALSE(d.apply);
  EXPECT_TRUE(d.start_async_probe);
  EXPECT_FALSE(d.requeue_after.has_value());
}

TEST(Scaler, ActivatingWaitsUntilDeadline) {
  auto d = computeScale(scaling(), pa(PaActivity::kActivating, kNow - kActivationTimeout / 2),
                        input(0), kNow);
  EXPECT_EQ(d.want, -1);
  EXPECT_FALSE(d.apply);
  EXPECT_EQ(d.requeue_after, kActivationTimeout);
}

TEST(Scaler, ActivatingPastDeadlineScalesToZero) {
  auto d = computeScale(scaling(),
                        pa(PaActivity::kActivating, kNow - kActivationTimeout - seconds(1)),
                        input(0), kNow);
  EXPECT_EQ(d.want, 0);
  EXPECT_TRUE(d.apply);
  // Exactly at the deadline it still waits (strictly greater).
  d = computeScale(scaling(), pa(PaActivity::kActivating, kNow - kActivationTimeout), input(0),
                   kNow);
  EXPECT_FALSE(d.apply);
}

TEST(Scaler, ActivatingPastRevisionProgressDeadline) {
  RevisionScaling r = scaling({{"serving.knative.dev/progress-deadline", "5s"}});
  auto d = computeScale(r, pa(PaActivity::kActivating, kNow - seconds(5 + 30 + 1)), input(0),
                        kNow);
  EXPECT_EQ(d.want, 0);
  EXPECT_TRUE(d.apply);
}

TEST(Scaler, DefaultActivationTimeoutIs630s) {
  auto cfg = parseAutoscalerConfig({});
  RevisionScaling r = *resolveRevisionScaling(*cfg, {}, 0);
  auto d = computeScale(r, pa(PaActivity::kActivating, kNow - seconds(600)), input(0), kNow);
  EXPECT_EQ(d.requeue_after, seconds(630));
  d = computeScale(r, pa(PaActivity::kActivating, kNow - seconds(631)), input(0), kNow);
  EXPECT_TRUE(d.apply);
}

TEST(Scaler, ScaleDownToMinScaleBeforeGrace) {
  auto d = computeScale(scaling({{"autoscaling.knative.dev/min-scale", "2"}}),
                        pa(PaActivity::kInactive, kNow - kGrace + seconds(1)), input(0), kNow);
  EXPECT_EQ(d.want, 2);
  EXPECT_TRUE(d.apply);
}

TEST(Scaler, ScaleDownToMinScaleAfterGrace) {
  auto d = computeScale(scaling({{"autoscaling.knative.dev/min-scale", "2"}}),
                        pa(PaActivity::kInactive, kNow - kGrace), input(0), kNow);
  EXPECT_EQ(d.want, 2);
  EXPECT_TRUE(d.apply);
}

TEST(Scaler, UnreachableIgnoresRetention) {
  auto d = computeScale(scaling({}, {{"scale-to-zero-pod-retention-period", "600s"}}),
                        pa(PaActivity::kInactive, kNow - kGrace),
                        input(0, SksMode::kServe, Duration(0), Reachability::kUnreachable), kNow);
  EXPECT_EQ(d.want, 0);
  EXPECT_TRUE(d.apply);
}

TEST(Scaler, UnreachableStillWaitsForGrace) {
  auto d = computeScale(scaling({}, {{"scale-to-zero-pod-retention-period", "600s"}}),
                        pa(PaActivity::kInactive, kNow - kGrace + seconds(1)),
                        input(0, SksMode::kServe, Duration(0), Reachability::kUnreachable), kNow);
  EXPECT_FALSE(d.apply);
  EXPECT_EQ(d.requeue_after, kGrace);
}

TEST(Scaler, IgnoreMinScaleIfUnreachable) {
  auto d = computeScale(scaling({{"autoscaling.knative.dev/min-scale", "2"}}),
                        pa(PaActivity::kInactive, kNow - kGrace),
                        input(0, SksMode::kServe, Duration(0), Reachability::kUnreachable), kNow);
  EXPECT_EQ(d.want, 0);
  EXPECT_TRUE(d.apply);
}

TEST(Scaler, ObserveMinScaleIfReachabilityUnknown) {
  auto d = computeScale(scaling({{"autoscaling.knative.dev/min-scale", "2"}}),
                        pa(PaActivity::kInactive, kNow - kGrace),
                        input(0, SksMode::kServe, Duration(0), Reachability::kUnknown), kNow);
  EXPECT_EQ(d.want, 2);
  EXPECT_TRUE(d.apply);
}

TEST(Scaler, ScalesUpToMaxScale) {
  auto d = computeScale(scaling(), pa(PaActivity::kActive, kNow), input(10), kNow);
  EXPECT_EQ(d.want, 10);
  EXPECT_TRUE(d.apply);
  d = computeScale(scaling({{"autoscaling.knative.dev/max-scale", "8"}}),
                   pa(PaActivity::kActive, kNow), input(10), kNow);
  EXPECT_EQ(d.want, 8);
  d = computeScale(scaling(), pa(PaActivity::kInactive, kNow - kGrace / 2), input(10), kNow);
  EXPECT_EQ(d.want, 10);
  EXPECT_TRUE(d.apply);
}

TEST(Scaler, NoMetricsDoesNothingUnlessActivating) {
  auto d = computeScale(scaling(), pa(PaActivity::kInactive, kNow), input(-1), kNow);
  EXPECT_EQ(d.want, -1);
  EXPECT_FALSE(d.apply);
  d = computeScale(scaling(), pa(PaActivity::kActive, kNow), input(-1), kNow);
  EXPECT_EQ(d.want, -1);
  EXPECT_FALSE(d.apply);
  // Activating goes on: bounds → 0 → wait for the activation timeout.
  d = computeScale(scaling(), pa(PaActivity::kActivating, kNow), input(-1), kNow);
  EXPECT_EQ(d.want, -1);
  EXPECT_EQ(d.requeue_after, kActivationTimeout);
}

TEST(Scaler, InitialScaleAttainedThenScaleDown) {
  auto d = computeScale(scaling({{"autoscaling.knative.dev/initial-scale", "2"}}),
                        pa(PaActivity::kActive, kNow - minutes(2), /*initialized=*/true), input(0),
                        kNow);
  EXPECT_EQ(d.want, 1);  // deactivate first: hold one pod
  EXPECT_TRUE(d.apply);
  EXPECT_EQ(d.requeue_after, minutes(3));
}

TEST(Scaler, InitialScaleOverridesDesiredBeforeInitialized) {
  auto d = computeScale(scaling({{"autoscaling.knative.dev/initial-scale", "2"}}),
                        pa(PaActivity::kActivating, kNow, /*initialized=*/false), input(1), kNow);
  EXPECT_EQ(d.want, 2);
  EXPECT_TRUE(d.apply);
  d = computeScale(scaling({{"autoscaling.knative.dev/initial-scale", "5"}}),
                   pa(PaActivity::kActivating, kNow, false), input(1), kNow);
  EXPECT_EQ(d.want, 5);
}

TEST(Scaler, InitialScaleZero) {
  auto d = computeScale(scaling({{"autoscaling.knative.dev/initial-scale", "0"}},
                                 {{"allow-zero-initial-scale", "true"}}),
                        pa(PaActivity::kInactive, kNow, false), input(0), kNow);
  EXPECT_EQ(d.want, 0);
  EXPECT_FALSE(d.apply);
  EXPECT_EQ(d.requeue_after, kGrace);
}

TEST(Scaler, UnreachableWithInitialScaleCanScaleDown) {
  auto d = computeScale(scaling({{"autoscaling.knative.dev/initial-scale", "2"}}),
                        pa(PaActivity::kActive, kNow - minutes(2), false),
                        input(0, SksMode::kServe, Duration(0), Reachability::kUnreachable), kNow);
  EXPECT_EQ(d.want, 1);
  EXPECT_TRUE(d.apply);
}

TEST(Scaler, ScaleToZeroDisabledKeepsOnePod) {
  auto d = computeScale(scaling({}, {{"enable-scale-to-zero", "false"}}),
                        pa(PaActivity::kInactive, kNow - kGrace), input(0), kNow);
  EXPECT_EQ(d.want, 1);
  EXPECT_TRUE(d.apply);
}

// ----- Active condition -----

TEST(ActiveCondition, Transitions) {
  RevisionScaling r = scaling();
  PaStatus p = pa(PaActivity::kActivating, kNow, false);
  computeActiveCondition(p, r, Reachability::kReachable, 1, 0, kNow + seconds(1));
  EXPECT_EQ(p.activity, PaActivity::kActivating);
  EXPECT_EQ(p.reason, "Queued");
  EXPECT_EQ(p.message, "Requests to the target are being buffered as resources are provisioned.");
  EXPECT_EQ(p.activity_since, kNow + seconds(1));  // the reason changed
  EXPECT_FALSE(p.scale_target_initialized);
  // Same state again: the transition time stays.
  computeActiveCondition(p, r, Reachability::kReachable, 1, 0, kNow + seconds(2));
  EXPECT_EQ(p.activity_since, kNow + seconds(1));

  computeActiveCondition(p, r, Reachability::kReachable, 1, 1, kNow + seconds(3));
  EXPECT_EQ(p.activity, PaActivity::kActive);
  EXPECT_TRUE(p.scale_target_initialized);
  EXPECT_EQ(p.activity_since, kNow + seconds(3));

  computeActiveCondition(p, r, Reachability::kReachable, 0, 1, kNow + seconds(4));
  EXPECT_EQ(p.activity, PaActivity::kInactive);
  EXPECT_EQ(p.reason, "NoTraffic");

  // Inactive and nothing wanted: stays Inactive even with pods still up.
  computeActiveCondition(p, r, Reachability::kReachable, -1, 1, kNow + seconds(5));
  EXPECT_EQ(p.activity, PaActivity::kInactive);
  EXPECT_EQ(p.activity_since, kNow + seconds(4));
  computeActiveCondition(p, r, Reachability::kReachable, -1, 0, kNow + seconds(6));
  EXPECT_EQ(p.activity, PaActivity::kInactive);
}

TEST(ActiveCondition, ActivationFailureIsTimedOut) {
  RevisionScaling r = scaling();
  PaStatus p = pa(PaActivity::kActivating, kNow, false);
  computeActiveCondition(p, r, Reachability::kReachable, 0, 0, kNow + seconds(700));
  EXPECT_EQ(p.activity, PaActivity::kInactive);
  EXPECT_EQ(p.reason, "TimedOut");
  EXPECT_EQ(p.message, "The target could not be activated.");
}

TEST(ActiveCondition, ThresholdUsesInitialScaleUntilInitialized) {
  RevisionScaling r = scaling({{"autoscaling.knative.dev/initial-scale", "3"},
                                {"autoscaling.knative.dev/min-scale", "1"}});
  EXPECT_EQ(activeThreshold(r, Reachability::kReachable, false), 3);
  EXPECT_EQ(activeThreshold(r, Reachability::kReachable, true), 1);
  PaStatus p = pa(PaActivity::kActivating, kNow, false);
  computeActiveCondition(p, r, Reachability::kReachable, 3, 2, kNow);
  EXPECT_EQ(p.activity, PaActivity::kActivating);
  computeActiveCondition(p, r, Reachability::kReachable, 3, 3, kNow);
  EXPECT_EQ(p.activity, PaActivity::kActive);
  EXPECT_TRUE(p.scale_target_initialized);
}

// ----- PodAutoscaler: whole timelines on a simulated clock -----

TEST(PodAutoscaler, IdleToZeroFastPathWithActivatorInPath) {
  // Defaults: stable window 60s, grace 30s, TBC 211 (activator in the path with 1 pod).
  common::SimulatedTimeSource clock;
  auto cfg = parseAutoscalerConfig({});
  RevisionScaling r = *resolveRevisionScaling(*cfg, {}, 0);
  PodAutoscaler kpa(r, clock.monotonicTime());
  EXPECT_EQ(kpa.status().activity, PaActivity::kActivating);

  PodAutoscaler::Observation obs;
  obs.decider.desired_scale = -1;
  obs.decider.excess_burst_capacity = -111;
  obs.ready_pods = 0;
  obs.current_replicas = 1;
  obs.sks_mode = SksMode::kProxy;
  auto res = kpa.reconcile(clock.monotonicTime(), obs);
  EXPECT_EQ(res.want, -1);
  EXPECT_FALSE(res.replicas_to_apply.has_value());
  EXPECT_EQ(res.requeue_after, seconds(630));
  EXPECT_EQ(res.sks_mode, SksMode::kProxy);
  EXPECT_EQ(res.num_activators, 3);
  EXPECT_EQ(kpa.status().reason, "Queued");

  // The pod comes up and traffic flows: Active, activator stays (EBC < 0).
  clock.advance(seconds(5));
  const TimePoint proxy_since = clock.monotonicTime();
  obs.decider.desired_scale = 1;
  obs.ready_pods = 1;
  res = kpa.reconcile(clock.monotonicTime(), obs);
  EXPECT_EQ(res.want, 1);
  EXPECT_FALSE(res.replicas_to_apply.has_value());  // already 1 replica
  EXPECT_EQ(res.sks_mode, SksMode::kProxy);
  EXPECT_EQ(res.num_activators, 4);  // ceil((100 + 211) / 100)
  EXPECT_EQ(kpa.status().activity, PaActivity::kActive);
  EXPECT_TRUE(kpa.status().scale_target_initialized);

  // Traffic stops; a stable window later the decider wants 0: deactivate, re-check in 3s.
  clock.advance(seconds(95));
  obs.decider.desired_scale = 0;
  res = kpa.reconcile(clock.monotonicTime(), obs);
  EXPECT_EQ(res.want, 0);
  EXPECT_FALSE(res.replicas_to_apply.has_value());
  EXPECT_EQ(res.requeue_after, seconds(3));
  EXPECT_EQ(kpa.status().activity, PaActivity::kInactive);
  EXPECT_EQ(kpa.status().reason, "NoTraffic");

  // Fast path: the SKS has been proxying far longer than the grace period.
  clock.advance(seconds(3));
  obs.proxy_for = clock.monotonicTime() - proxy_since;
  res = kpa.reconcile(clock.monotonicTime(), obs);
  EXPECT_EQ(res.want, 0);
  ASSERT_TRUE(res.replicas_to_apply.has_value());
  EXPECT_EQ(*res.replicas_to_apply, 0);
  EXPECT_EQ(kpa.status().desired_scale, 0);
}

TEST(PodAutoscaler, IdleToZeroWaitsGraceWhenActivatorNotInPath) {
  common::SimulatedTimeSource clock;
  auto cfg = parseAutoscalerConfig({{"target-burst-capacity", "0"}});
  RevisionScaling r = *resolveRevisionScaling(*cfg, {}, 0);
  PodAutoscaler kpa(r, clock.monotonicTime());

  PodAutoscaler::Observation obs;
  obs.decider.desired_scale = 1;
  obs.decider.excess_burst_capacity = 0;
  obs.ready_pods = 1;
  obs.sks_mode = SksMode::kServe;
  auto res = kpa.reconcile(clock.monotonicTime(), obs);
  EXPECT_EQ(res.sks_mode, SksMode::kServe);
  EXPECT_EQ(res.num_activators, 2);

  clock.advance(seconds(60));
  obs.decider.desired_scale = 0;
  res = kpa.reconcile(clock.monotonicTime(), obs);
  EXPECT_FALSE(res.replicas_to_apply.has_value());
  EXPECT_FALSE(res.requeue_after.has_value());
  EXPECT_EQ(res.sks_mode, SksMode::kProxy);  // want 0: activator back in the path
  const TimePoint proxy_since = clock.monotonicTime();

  clock.advance(seconds(3));
  obs.sks_mode = SksMode::kProxy;
  obs.proxy_for = clock.monotonicTime() - proxy_since;
  res = kpa.reconcile(clock.monotonicTime(), obs);
  EXPECT_FALSE(res.replicas_to_apply.has_value());
  EXPECT_EQ(res.requeue_after, seconds(27));  // grace − proxyFor

  clock.advance(seconds(27));
  obs.proxy_for = clock.monotonicTime() - proxy_since;
  res = kpa.reconcile(clock.monotonicTime(), obs);
  ASSERT_TRUE(res.replicas_to_apply.has_value());
  EXPECT_EQ(*res.replicas_to_apply, 0);
}

TEST(PodAutoscaler, ActivationTimesOut) {
  common::SimulatedTimeSource clock;
  auto cfg = parseAutoscalerConfig({});
  PodAutoscaler kpa(*resolveRevisionScaling(*cfg, {}, 0), clock.monotonicTime());
  PodAutoscaler::Observation obs;
  obs.decider.desired_scale = 1;  // poked, but the pod never becomes ready
  obs.ready_pods = 0;
  auto res = kpa.reconcile(clock.monotonicTime(), obs);
  EXPECT_EQ(res.want, 1);
  EXPECT_EQ(kpa.status().activity, PaActivity::kActivating);

  clock.advance(seconds(631));
  obs.decider.desired_scale = 0;
  res = kpa.reconcile(clock.monotonicTime(), obs);
  EXPECT_EQ(res.want, 0);
  ASSERT_TRUE(res.replicas_to_apply.has_value());
  EXPECT_EQ(*res.replicas_to_apply, 0);
  EXPECT_EQ(kpa.status().activity, PaActivity::kInactive);
  EXPECT_EQ(kpa.status().reason, "TimedOut");
}

TEST(PodAutoscaler, UnknownWantKeepsKnownDesiredScale) {
  common::SimulatedTimeSource clock;
  auto cfg = parseAutoscalerConfig({});
  PodAutoscaler kpa(*resolveRevisionScaling(*cfg, {}, 0), clock.monotonicTime());
  PaStatus s = pa(PaActivity::kActive, clock.monotonicTime());
  s.desired_scale = 3;
  kpa.setStatusForTest(s);
  PodAutoscaler::Observation obs;
  obs.decider.desired_scale = -1;
  obs.ready_pods = 3;
  auto res = kpa.reconcile(clock.monotonicTime(), obs);
  EXPECT_EQ(res.want, -1);
  EXPECT_EQ(kpa.status().desired_scale, 3);
  EXPECT_EQ(kpa.status().actual_scale, 3);
}

}  // namespace
}  // namespace kh::autoscaler
