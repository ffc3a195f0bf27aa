// How refstack resolves a revision's autoscaling (kh::autoscaler, whose own tests hold Knative's
// golden cases): config-autoscaler keys, KServe's component fields and annotations, and the
// adapter that feeds revision-wide stats to the decider on a virtual clock.

#include <chrono>

#include "gtest/gtest.h"
#include "serverless.h"
#include "stack_impl.h"

namespace kh::refstack {
namespace {

using namespace std::chrono_literals;

TEST(ScalingSettings, KnativeDefaultsAndKServeFields) {
  controller::ComponentExtension component;
  auto s = resolveScalingSettings({}, component, {});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->stable_window, 60s);
  EXPECT_EQ(s->panic_window, 6s);
  EXPECT_DOUBLE_EQ(s->target_value, 70);  // 100 x 0.7
  EXPECT_DOUBLE_EQ(s->total_value, 100);
  EXPECT_DOUBLE_EQ(s->target_burst_capacity, 211);
  EXPECT_EQ(s->min_scale, 1);  // KServe's minReplicas default
  component.container_concurrency = 1;
  component.min_replicas = 0;
  component.max_replicas = 3;
  auto cc1 = resolveScalingSettings({}, component, {});
  ASSERT_TRUE(cc1.ok()) << cc1.status();
  EXPECT_DOUBLE_EQ(cc1->target_value, 0.7);  // CC = 1: two pods for one request (knative.md §1)
  EXPECT_EQ(cc1->min_scale, 0);
  EXPECT_EQ(cc1->max_scale, 3);
  auto annotated = resolveScalingSettings({{"scale-to-zero-grace-period", "1s"}}, component,
                                          {{"autoscaling.knative.dev/window", "6s"},
                                           {"autoscaling.knative.dev/target-utilization-percentage", "100"}});
  ASSERT_TRUE(annotated.ok()) << annotated.status();
  EXPECT_EQ(annotated->stable_window, 6s);
  EXPECT_EQ(annotated->panic_window, 1s);
  EXPECT_DOUBLE_EQ(annotated->target_value, 1);
  EXPECT_EQ(annotated->scale_to_zero_grace_period, 1s);
}

TEST(ScalingSettings, BadValuesAreRefused) {
  controller::ComponentExtension component;
  EXPECT_FALSE(resolveScalingSettings({}, component, {{"autoscaling.knative.dev/window", "5s"}}).ok());
  auto activation = resolveScalingSettings({}, component, {{"autoscaling.knative.dev/activation-scale", "1"}});
  ASSERT_FALSE(activation.ok());
  EXPECT_NE(std::string(activation.status().message()).find("must be greater than 1"), std::string::npos)
      << activation.status();
  EXPECT_FALSE(resolveScalingSettings({{"max-scale-down-rate", "1"}}, component, {}).ok());
}

TEST(RevisionDecider, RevisionWideStatsDriveTheDecision) {
  controller::ComponentExtension component;
  component.min_replicas = 0;
  auto s = resolveScalingSettings({}, component, {{"autoscaling.knative.dev/window", "6s"}});
  ASSERT_TRUE(s.ok());
  auto t0 = common::MonotonicTime() + 1000s;
  RevisionDecider decider(*s, t0);
  EXPECT_FALSE(decider.decide(t0, 0).valid);  // no data yet
  for (int i = 0; i < 6; ++i) decider.record(t0 + std::chrono::seconds(i), 140, 0);  // 2 pods' worth
  auto busy = decider.decide(t0 + 5s, 1);
  ASSERT_TRUE(busy.valid);
  EXPECT_EQ(busy.desired, 2);  // ceil(140 / 70)
  EXPECT_DOUBLE_EQ(busy.stable, 140);
  for (int i = 6; i < 20; ++i) decider.record(t0 + std::chrono::seconds(i), 0, 0);
  auto idle = decider.decide(t0 + 19s, 1);  // (with 2 ready, max-scale-down-rate 2 allows 1)
  ASSERT_TRUE(idle.valid);
  EXPECT_EQ(idle.desired, 0);  // the window holds only zeros
}

TEST(ActivatorBalancing, PolicyFollowsContainerConcurrency) {
  std::vector<Endpoint> eps(3);
  for (size_t i = 0; i < eps.size(); ++i) eps[i].pod = "pod-" + std::to_string(i);
  eps[0].in_flight->store(1);
  eps[1].in_flight->store(0);
  eps[2].in_flight->store(5);
  // CC 1-3: the first pod with a free slot.
  EXPECT_EQ(chooseEndpoint(eps, 1)->pod, "pod-1");
  EXPECT_EQ(chooseEndpoint(eps, 2)->pod, "pod-0");
  eps[1].in_flight->store(1);
  EXPECT_EQ(chooseEndpoint(eps, 1)->pod, "pod-0");  // all full: the least loaded
  // CC 0: the less loaded of two random pods, never the busiest of three.
  for (int i = 0; i < 50; ++i) EXPECT_NE(chooseEndpoint(eps, 0)->pod, "pod-2");
  // CC > 3: round robin that skips full pods.
  eps[2].in_flight->store(10);
  for (int i = 0; i < 20; ++i) EXPECT_NE(chooseEndpoint(eps, 10)->pod, "pod-2");
  EXPECT_EQ(chooseEndpoint({}, 1), nullptr);
}

}  // namespace
}  // namespace kh::refstack
