// How the controller resolves a revision's autoscaling (kh::autoscaler, whose own tests hold
// Knative's golden cases): config-autoscaler keys, KServe's component fields and annotations.

#include <chrono>

#include "gtest/gtest.h"
#include "kh/controller/scaling.h"

namespace kh::controller {
namespace {

using namespace std::chrono_literals;

TEST(ScalingSettings, KnativeDefaultsAndKServeFields) {
  ComponentExtension component;
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
  ComponentExtension component;
  EXPECT_FALSE(resolveScalingSettings({}, component, {{"autoscaling.knative.dev/window", "5s"}}).ok());
  auto activation = resolveScalingSettings({}, component, {{"autoscaling.knative.dev/activation-scale", "1"}});
  ASSERT_FALSE(activation.ok());
  EXPECT_NE(std::string(activation.status().message()).find("must be greater than 1"), std::string::npos)
      << activation.status();
  EXPECT_FALSE(resolveScalingSettings({{"max-scale-down-rate", "1"}}, component, {}).ok());
}

}  // namespace
}  // namespace kh::controller
