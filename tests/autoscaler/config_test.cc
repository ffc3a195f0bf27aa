// Test that the header is self-contained.
#include "kh/autoscaler/config.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

namespace kh::autoscaler {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

std::string message(const absl::Status& s) { return std::string(s.message()); }

#define EXPECT_INVALID(expr, substring)                                               \
  do {                                                                                \
    auto kh_result_ = (expr);                                                         \
    ASSERT_FALSE(kh_result_.ok());                                                    \
    EXPECT_EQ(kh_result_.status().code(), absl::StatusCode::kInvalidArgument);        \
    EXPECT_NE(message(kh_result_.status()).find(substring), std::string::npos)        \
        << message(kh_result_.status());                                              \
  } while (false)

// ----- Go durations -----

TEST(GoDuration, Parses) {
  EXPECT_EQ(*parseGoDuration("60s"), seconds(60));
  EXPECT_EQ(*parseGoDuration("1m30s"), seconds(90));
  EXPECT_EQ(*parseGoDuration("500ms"), milliseconds(500));
  EXPECT_EQ(*parseGoDuration("1.5h"), minutes(90));
  EXPECT_EQ(*parseGoDuration("0"), Duration(0));
  EXPECT_EQ(*parseGoDuration("-2s"), seconds(-2));
  EXPECT_EQ(*parseGoDuration("+3m"), minutes(3));
  EXPECT_EQ(*parseGoDuration("1h2m3s4ms5us6ns"),
            hours(1) + minutes(2) + seconds(3) + milliseconds(4) + std::chrono::microseconds(5) +
                Duration(6));
  EXPECT_EQ(*parseGoDuration(".5s"), milliseconds(500));
}

TEST(GoDuration, Rejects) {
  for (const char* bad : {"", "60", "s", "1x", "1.s.", "--1s", "1 s", "."}) {
    EXPECT_FALSE(parseGoDuration(bad).ok()) << bad;
  }
}

TEST(GoDuration, Formats) {
  EXPECT_EQ(formatGoDuration(seconds(90)), "1m30s");
  EXPECT_EQ(formatGoDuration(milliseconds(500)), "500ms");
  EXPECT_EQ(formatGoDuration(hours(1)), "1h0m0s");
  EXPECT_EQ(formatGoDuration(Duration(0)), "0s");
  EXPECT_EQ(formatGoDuration(milliseconds(1500)), "1.5s");
  EXPECT_EQ(formatGoDuration(seconds(-6)), "-6s");
}

// ----- ConfigMap -----

TEST(AutoscalerConfig, DefaultsMatchKnative) {
  auto cfg = parseAutoscalerConfig({});
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->stable_window, seconds(60));
  EXPECT_EQ(cfg->panic_window_percentage, 10.0);
  EXPECT_EQ(cfg->panic_threshold_percentage, 200.0);
  EXPECT_EQ(cfg->target_burst_capacity, 211.0);
  EXPECT_EQ(cfg->container_concurrency_target_fraction, 0.7);
  EXPECT_EQ(cfg->container_concurrency_target_default, 100.0);
  EXPECT_EQ(cfg->rps_target_default, 200.0);
  EXPECT_EQ(cfg->target_utilization, 0.7);
  EXPECT_EQ(cfg->max_scale_up_rate, 1000.0);
  EXPECT_EQ(cfg->max_scale_down_rate, 2.0);
  EXPECT_EQ(cfg->scale_to_zero_grace_period, seconds(30));
  EXPECT_EQ(cfg->scale_to_zero_pod_retention_period, Duration(0));
  EXPECT_EQ(cfg->scale_down_delay, Duration(0));
  EXPECT_EQ(cfg->initial_scale, 1);
  EXPECT_FALSE(cfg->allow_zero_initial_scale);
  EXPECT_EQ(cfg->min_scale, 0);
  EXPECT_EQ(cfg->max_scale, 0);
  EXPECT_EQ(cfg->max_scale_limit, 0);
  EXPECT_TRUE(cfg->enable_scale_to_zero);
  EXPECT_EQ(cfg->activator_capacity, 100.0);
  EXPECT_EQ(cfg->pod_autoscaler_class, "kpa.autoscaling.knative.dev");
}

TEST(AutoscalerConfig, ParsesEveryKey) {
  auto cfg = parseAutoscalerConfig({
      {"stable-window", "1m30s"},
      {"panic-window-percentage", "20"},
      {"panic-threshold-percentage", "300"},
      {"target-burst-capacity", "-1"},
      {"container-concurrency-target-percentage", "80"},
      {"container-concurrency-target-default", "10"},
      {"requests-per-second-target-default", "50"},
      {"max-scale-up-rate", "3.5"},
      {"max-scale-down-rate", "1.5"},
      {"scale-to-zero-grace-period", "10s"},
      {"scale-to-zero-pod-retention-period", "1m"},
      {"scale-down-delay", "20s"},
      {"initial-scale", "0"},
      {"allow-zero-initial-scale", "true"},
      {"min-scale", "1"},
      {"max-scale", "8"},
      {"max-scale-limit", "10"},
      {"enable-scale-to-zero", "false"},
      {"activator-capacity", " 50 "},
      {"pod-autoscaler-class", "hpa.autoscaling.knative.dev"},
      {"unknown-key", "ignored"},
  });
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->stable_window, seconds(90));
  EXPECT_EQ(cfg->panic_window_percentage, 20.0);
  EXPECT_EQ(cfg->panic_threshold_percentage, 300.0);
  EXPECT_EQ(cfg->target_burst_capacity, -1.0);
  EXPECT_DOUBLE_EQ(cfg->container_concurrency_target_fraction, 0.8);
  EXPECT_EQ(cfg->container_concurrency_target_default, 10.0);
  EXPECT_EQ(cfg->rps_target_default, 50.0);
  EXPECT_EQ(cfg->max_scale_up_rate, 3.5);
  EXPECT_EQ(cfg->max_scale_down_rate, 1.5);
  EXPECT_EQ(cfg->scale_to_zero_grace_period, seconds(10));
  EXPECT_EQ(cfg->scale_to_zero_pod_retention_period, minutes(1));
  EXPECT_EQ(cfg->scale_down_delay, seconds(20));
  EXPECT_EQ(cfg->initial_scale, 0);
  EXPECT_TRUE(cfg->allow_zero_initial_scale);
  EXPECT_EQ(cfg->min_scale, 1);
  EXPECT_EQ(cfg->max_scale, 8);
  EXPECT_EQ(cfg->max_scale_limit, 10);
  EXPECT_FALSE(cfg->enable_scale_to_zero);
  EXPECT_EQ(cfg->activator_capacity, 50.0);
  EXPECT_EQ(cfg->pod_autoscaler_class, "hpa.autoscaling.knative.dev");
}

TEST(AutoscalerConfig, TargetPercentageFractionRule) {
  // ≤ 1.0 is already a fraction (legacy); above, a percentage.
  EXPECT_EQ(parseAutoscalerConfig({{"container-concurrency-target-percentage", "0.5"}})
                ->container_concurrency_target_fraction,
            0.5);
  EXPECT_EQ(parseAutoscalerConfig({{"container-concurrency-target-percentage", "1"}})
                ->container_concurrency_target_fraction,
            1.0);
  EXPECT_EQ(parseAutoscalerConfig({{"container-concurrency-target-percentage", "100"}})
                ->container_concurrency_target_fraction,
            1.0);
  EXPECT_INVALID(parseAutoscalerConfig({{"container-concurrency-target-percentage", "0"}}),
                 "container-concurrency-target-percentage = 0 is outside of valid range of (0, 100]");
  EXPECT_INVALID(parseAutoscalerConfig({{"container-concurrency-target-percentage", "101"}}),
                 "outside of valid range of (0, 100]");
  EXPECT_INVALID(parseAutoscalerConfig({{"container-concurrency-target-percentage", "-5"}}),
                 "outside of valid range");
  // target × fraction must reach 0.01.
  EXPECT_INVALID(parseAutoscalerConfig({{"container-concurrency-target-percentage", "1.5"},
                                        {"container-concurrency-target-default", "0.5"}}),
                 "can't be less than 0.01");
}

TEST(AutoscalerConfig, MalformedValues) {
  EXPECT_INVALID(parseAutoscalerConfig({{"stable-window", "sixty"}}),
                 "failed to parse data: failed to parse \"stable-window\"");
  EXPECT_INVALID(parseAutoscalerConfig({{"max-scale-up-rate", "fast"}}), "\"max-scale-up-rate\"");
  EXPECT_INVALID(parseAutoscalerConfig({{"initial-scale", "1.5"}}), "\"initial-scale\"");
  EXPECT_INVALID(parseAutoscalerConfig({{"max-scale", "3000000000"}}), "\"max-scale\"");
  EXPECT_INVALID(parseAutoscalerConfig({{"enable-scale-to-zero", "yes"}}),
                 "\"enable-scale-to-zero\"");
}

TEST(AutoscalerConfig, RangeErrors) {
  struct Case {
    std::map<std::string, std::string> data;
    std::string want;
  };
  const Case cases[] = {
      {{{"scale-to-zero-grace-period", "0s"}},
       "scale-to-zero-grace-period must be positive, was: 0s"},
      {{{"scale-down-delay", "-1s"}}, "scale-down-delay cannot be negative, was: -1s"},
      {{{"scale-down-delay", "1500ms"}},
       "scale-down-delay = 1.5s, must be specified with at most second precision"},
      {{{"scale-to-zero-pod-retention-period", "-1s"}},
       "scale-to-zero-pod-retention-period cannot be negative"},
      {{{"target-burst-capacity", "-2"}},
       "target-burst-capacity must be either non-negative or -1 (for unlimited), was: -2"},
      {{{"requests-per-second-target-default", "0.001"}},
       "requests-per-second-target-default must be at least 0.01, was: 0.001"},
      {{{"activator-capacity", "0.5"}}, "activator-capacity = 0.5, must be at least 1"},
      {{{"max-scale-up-rate", "1"}}, "max-scale-up-rate = 1, must be greater than 1.0"},
      {{{"max-scale-down-rate", "1.0"}}, "max-scale-down-rate = 1, must be greater than 1.0"},
      {{{"stable-window", "5s"}}, "stable-window = 5s, must be in [6s; 1h0m0s] range"},
      {{{"stable-window", "2h"}}, "stable-window = 2h0m0s, must be in [6s; 1h0m0s] range"},
      {{{"stable-window", "6500ms"}},
       "stable-window = 6.5s, must be specified with at most second precision"},
      {{{"panic-window-percentage", "0.5"}},
       "panic-window-percentage = 0.5, must be in [1, 100] interval"},
      {{{"panic-window-percentage", "101"}}, "must be in [1, 100] interval"},
      {{{"initial-scale", "0"}},
       "initial-scale = 0, must be at least 0 (or at least 1 when allow-zero-initial-scale is "
       "false)"},
      {{{"initial-scale", "-1"}, {"allow-zero-initial-scale", "true"}}, "initial-scale = -1"},
      {{{"min-scale", "-1"}}, "min-scale = -1, must be at least 0"},
      {{{"max-scale-limit", "10"}}, "max-scale = 0, must be in [1, max-scale-limit(10)] range"},
      {{{"max-scale-limit", "10"}, {"max-scale", "11"}}, "max-scale = 11, must be in [1"},
      {{{"max-scale", "-1"}}, "max-scale = -1, must be in [0, max-scale-limit(0)] range"},
      {{{"min-scale", "5"}, {"max-scale", "3"}}, "min-scale (5) must be less than max-scale (3)"},
  };
  for (const Case& c : cases) {
    auto cfg = parseAutoscalerConfig(c.data);
    ASSERT_FALSE(cfg.ok()) << c.want;
    EXPECT_EQ(cfg.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(message(cfg.status()).find(c.want), std::string::npos)
        << "got: " << message(cfg.status()) << "\nwant: " << c.want;
  }
  // Zero initial scale is fine once allowed.
  EXPECT_TRUE(
      parseAutoscalerConfig({{"initial-scale", "0"}, {"allow-zero-initial-scale", "true"}}).ok());
}

// ----- Annotations -----

class RevisionScalingTest : public ::testing::Test {
 protected:
  absl::StatusOr<RevisionScaling> resolve(const Annotations& a, int cc = 0) {
    return resolveRevisionScaling(cfg_, a, cc);
  }
  AutoscalerConfig cfg_ = *parseAutoscalerConfig({});
};

TEST_F(RevisionScalingTest, DefaultsWithUnboundedConcurrency) {
  auto r = resolve({});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->pod_autoscaler_class, "kpa.autoscaling.knative.dev");
  EXPECT_EQ(r->metric, "concurrency");
  EXPECT_EQ(r->scaling_metric, ScalingMetric::kConcurrency);
  EXPECT_EQ(r->aggregation, AggregationAlgorithm::kLinear);
  EXPECT_DOUBLE_EQ(r->target_value, 70);
  EXPECT_EQ(r->total_value, 100);
  EXPECT_EQ(r->target_burst_capacity, 211);
  EXPECT_EQ(r->panic_threshold, 2.0);
  EXPECT_EQ(r->stable_window, seconds(60));
  EXPECT_EQ(r->panic_window, seconds(6));
  EXPECT_EQ(r->scale_down_delay, Duration(0));
  EXPECT_EQ(r->scale_to_zero_grace_period, seconds(30));
  EXPECT_EQ(r->scale_to_zero_pod_retention_period, Duration(0));
  EXPECT_EQ(r->min_scale, 0);
  EXPECT_EQ(r->max_scale, 0);
  EXPECT_EQ(r->initial_scale, 1);
  EXPECT_EQ(r->activation_scale, 0);
  EXPECT_EQ(r->max_scale_up_rate, 1000);
  EXPECT_EQ(r->max_scale_down_rate, 2);
  EXPECT_EQ(r->activator_capacity, 100);
  EXPECT_TRUE(r->enable_scale_to_zero);
  EXPECT_EQ(r->progress_deadline, seconds(600));
}

TEST_F(RevisionScalingTest, ContainerConcurrencyIsTheTotal) {
  auto r = resolve({}, 1);
  ASSERT_TRUE(r.ok());
  EXPECT_DOUBLE_EQ(r->target_value, 0.7);  // one request wants ceil(1/0.7) = 2 pods
  EXPECT_EQ(r->total_value, 1);
  r = resolve({{"autoscaling.knative.dev/target-utilization-percentage", "100"}}, 1);
  EXPECT_DOUBLE_EQ(r->target_value, 1.0);
}

TEST_F(RevisionScalingTest, TargetAnnotationCappedByContainerConcurrency) {
  auto r = resolve({{"autoscaling.knative.dev/target", "50"}}, 10);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->total_value, 10);
  EXPECT_DOUBLE_EQ(r->target_value, 7);
  r = resolve({{"autoscaling.knative.dev/target", "5"}}, 10);
  EXPECT_EQ(r->total_value, 5);
  EXPECT_DOUBLE_EQ(r->target_value, 3.5);
  r = resolve({{"autoscaling.knative.dev/target", "50"}}, 0);
  EXPECT_EQ(r->total_value, 50);
  EXPECT_DOUBLE_EQ(r->target_value, 35);
}

TEST_F(RevisionScalingTest, TargetNeverBelowMinimum) {
  auto r = resolve({{"autoscaling.knative.dev/target", "0.01"},
                    {"autoscaling.knative.dev/target-utilization-percentage", "1"}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->target_value, 0.01);
  EXPECT_EQ(r->total_value, 0.01);
}

TEST_F(RevisionScalingTest, RpsMetric) {
  auto r = resolve({{"autoscaling.knative.dev/metric", "rps"}}, 5);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->scaling_metric, ScalingMetric::kRps);
  EXPECT_EQ(r->total_value, 200);  // CC does not cap RPS
  EXPECT_DOUBLE_EQ(r->target_value, 140);
  r = resolve({{"autoscaling.knative.dev/metric", "rps"}, {"autoscaling.knative.dev/target", "50"}},
              5);
  EXPECT_EQ(r->total_value, 50);
  EXPECT_DOUBLE_EQ(r->target_value, 35);
}

TEST_F(RevisionScalingTest, EveryAnnotation) {
  auto r = resolve({
      {"autoscaling.knative.dev/window", "30s"},
      {"autoscaling.knative.dev/panic-window-percentage", "20"},
      {"autoscaling.knative.dev/panic-threshold-percentage", "150"},
      {"autoscaling.knative.dev/target-burst-capacity", "0"},
      {"autoscaling.knative.dev/target-utilization-percentage", "50"},
      {"autoscaling.knative.dev/target", "20"},
      {"autoscaling.knative.dev/scale-down-delay", "1m"},
      {"autoscaling.knative.dev/scale-to-zero-pod-retention-period", "2m"},
      {"autoscaling.knative.dev/min-scale", "2"},
      {"autoscaling.knative.dev/max-scale", "9"},
      {"autoscaling.knative.dev/initial-scale", "3"},
      {"autoscaling.knative.dev/activation-scale", "4"},
      {"autoscaling.knative.dev/metric-aggregation-algorithm", "weighted-exponential"},
      {"autoscaling.knative.dev/class", "kpa.autoscaling.knative.dev"},
      {"serving.knative.dev/progress-deadline", "2m"},
  });
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->stable_window, seconds(30));
  EXPECT_EQ(r->panic_window, seconds(6));
  EXPECT_EQ(r->panic_threshold, 1.5);
  EXPECT_EQ(r->target_burst_capacity, 0);
  EXPECT_EQ(r->total_value, 20);
  EXPECT_DOUBLE_EQ(r->target_value, 10);
  EXPECT_EQ(r->scale_down_delay, minutes(1));
  EXPECT_EQ(r->scale_to_zero_pod_retention_period, minutes(2));
  EXPECT_EQ(r->min_scale, 2);
  EXPECT_EQ(r->max_scale, 9);
  EXPECT_EQ(r->initial_scale, 3);
  EXPECT_EQ(r->activation_scale, 4);
  EXPECT_EQ(r->aggregation, AggregationAlgorithm::kWeightedExponential);
  EXPECT_EQ(r->progress_deadline, minutes(2));
}

TEST_F(RevisionScalingTest, PanicWindowRounding) {
  auto panicWindow = [&](const char* window, const char* pct) {
    Annotations a{{"autoscaling.knative.dev/window", window}};
    if (pct) a["autoscaling.knative.dev/panic-window-percentage"] = pct;
    auto r = resolve(a);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->panic_window : Duration(-1);
  };
  EXPECT_EQ(panicWindow("60s", nullptr), seconds(6));
  EXPECT_EQ(panicWindow("15s", nullptr), seconds(2));  // 1.5s rounds half up
  EXPECT_EQ(panicWindow("13s", nullptr), seconds(1));  // 1.3s → 1s
  EXPECT_EQ(panicWindow("7s", nullptr), seconds(1));   // 0.7s → 1s
  EXPECT_EQ(panicWindow("6s", "1"), seconds(1));       // 0.06s → 0 → the 1s minimum
  EXPECT_EQ(panicWindow("1h", "100"), hours(1));
  EXPECT_EQ(panicWindow("100s", "12.5"), seconds(13));  // 12.5s → 13s
}

TEST_F(RevisionScalingTest, LegacyCamelCaseAliases) {
  auto r = resolve({
      {"autoscaling.knative.dev/minScale", "2"},
      {"autoscaling.knative.dev/maxScale", "7"},
      {"autoscaling.knative.dev/initialScale", "3"},
      {"autoscaling.knative.dev/scaleDownDelay", "10s"},
      {"autoscaling.knative.dev/scaleToZeroPodRetentionPeriod", "20s"},
      {"autoscaling.knative.dev/metricAggregationAlgorithm", "weightedExponential"},
      {"autoscaling.knative.dev/targetUtilizationPercentage", "50"},
      {"autoscaling.knative.dev/targetBurstCapacity", "-1"},
      {"autoscaling.knative.dev/panicWindowPercentage", "50"},
      {"autoscaling.knative.dev/panicThresholdPercentage", "400"},
  });
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->min_scale, 2);
  EXPECT_EQ(r->max_scale, 7);
  EXPECT_EQ(r->initial_scale, 3);
  EXPECT_EQ(r->scale_down_delay, seconds(10));
  EXPECT_EQ(r->scale_to_zero_pod_retention_period, seconds(20));
  EXPECT_EQ(r->aggregation, AggregationAlgorithm::kWeightedExponential);
  EXPECT_DOUBLE_EQ(r->target_value, 50);
  EXPECT_EQ(r->target_burst_capacity, -1);
  EXPECT_EQ(r->panic_window, seconds(30));
  EXPECT_EQ(r->panic_threshold, 4.0);
}

TEST_F(RevisionScalingTest, KebabCaseKeyWinsOverAlias) {
  auto r = resolve({{"autoscaling.knative.dev/min-scale", "1"},
                    {"autoscaling.knative.dev/minScale", "5"}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->min_scale, 1);
  // The alias is not validated when the main key is present (first key wins).
  r = resolve({{"autoscaling.knative.dev/max-scale", "4"},
               {"autoscaling.knative.dev/maxScale", "junk"}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->max_scale, 4);
}

TEST_F(RevisionScalingTest, InitialScaleZeroNeedsClusterPermission) {
  EXPECT_INVALID(resolve({{"autoscaling.knative.dev/initial-scale", "0"}}),
                 "invalid value: 0: autoscaling.knative.dev/initial-scale=0 not allowed by cluster");
  EXPECT_INVALID(resolve({{"autoscaling.knative.dev/initial-scale", "-1"}}),
                 "autoscaling.knative.dev/initial-scale must be greater than 0");
  cfg_.allow_zero_initial_scale = true;
  auto r = resolve({{"autoscaling.knative.dev/initial-scale", "0"}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->initial_scale, 0);
}

TEST_F(RevisionScalingTest, ActivationScaleValidation) {
  EXPECT_INVALID(resolve({{"autoscaling.knative.dev/activation-scale", "1"}}),
                 "activation-scale=1 must be greater than 1");
  EXPECT_INVALID(resolve({{"autoscaling.knative.dev/activation-scale", "0"}}),
                 "must be greater than 1");
  EXPECT_INVALID(resolve({{"autoscaling.knative.dev/activation-scale", "2"},
                          {"autoscaling.knative.dev/min-scale", "3"}}),
                 "min-scale=3 is greater than activation-scale=2");
  EXPECT_INVALID(resolve({{"autoscaling.knative.dev/activation-scale", "5"},
                          {"autoscaling.knative.dev/max-scale", "4"}}),
                 "max-scale=4 is less than activation-scale=5");
  EXPECT_INVALID(resolve({{"autoscaling.knative.dev/activation-scale", "two"}}),
                 "invalid value: two: autoscaling.knative.dev/activation-scale");
  EXPECT_TRUE(resolve({{"autoscaling.knative.dev/activation-scale", "2"}}).ok());
}

TEST_F(RevisionScalingTest, AnnotationRanges) {
  struct Case {
    const char* key;
    const char* value;
    const char* want;
  };
  const Case cases[] = {
      {"autoscaling.knative.dev/window", "5s",
       "expected 6s <= 5s <= 1h0m0s: autoscaling.knative.dev/window"},
      {"autoscaling.knative.dev/window", "61m", "expected 6s <= 61m <= 1h0m0s"},
      {"autoscaling.knative.dev/window", "6500ms",
       "must be specified with at most second precision: autoscaling.knative.dev/window"},
      {"autoscaling.knative.dev/window", "soon", "invalid value: soon"},
      {"autoscaling.knative.dev/panic-window-percentage", "0.5",
       "expected 1 <= 0.5 <= 100: autoscaling.knative.dev/panic-window-percentage"},
      {"autoscaling.knative.dev/panic-threshold-percentage", "109",
       "expected 110 <= 109 <= 1000"},
      {"autoscaling.knative.dev/panic-threshold-percentage", "1001", "expected 110 <= 1001"},
      {"autoscaling.knative.dev/target", "0.001", "target 0.001 should be at least 0.01"},
      {"autoscaling.knative.dev/target", "x", "invalid value: x: autoscaling.knative.dev/target"},
      {"autoscaling.knative.dev/target-utilization-percentage", "0.5", "expected 1 <= 0.5 <= 100"},
      {"autoscaling.knative.dev/target-utilization-percentage", "101", "expected 1 <= 101 <= 100"},
      {"autoscaling.knative.dev/target-burst-capacity", "-2",
       "invalid value: -2: autoscaling.knative.dev/target-burst-capacity"},
      {"autoscaling.knative.dev/scale-down-delay", "2h",
       "expected 0s <= 2h <= 1h0m0s: autoscaling.knative.dev/scale-down-delay"},
      {"autoscaling.knative.dev/scale-down-delay", "-1s", "expected 0s <= -1s"},
      {"autoscaling.knative.dev/scale-down-delay", "1500ms",
       "must be specified with at most second precision"},
      {"autoscaling.knative.dev/scale-to-zero-pod-retention-period", "2h",
       "expected 0s <= 2h <= 1h0m0s"},
      {"autoscaling.knative.dev/min-scale", "-1",
       "expected 0 <= -1 <= 2147483647: autoscaling.knative.dev/min-scale"},
      {"autoscaling.knative.dev/min-scale", "one", "invalid value: one"},
      {"autoscaling.knative.dev/metric", "cpu",
       "invalid value: cpu: autoscaling.knative.dev/metric"},
      {"autoscaling.knative.dev/metric-aggregation-algorithm", "median",
       "invalid value: median: autoscaling.knative.dev/metric-aggregation-algorithm"},
      {"autoscaling.knative.dev/class", "foo.knative.dev",
       "invalid value: foo.knative.dev: autoscaling.knative.dev/class"},
      {"serving.knative.dev/progress-deadline", "0s", "invalid value: 0s"},
  };
  for (const Case& c : cases) {
    auto r = resolve({{c.key, c.value}});
    ASSERT_FALSE(r.ok()) << c.key << "=" << c.value;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(message(r.status()).find(c.want), std::string::npos)
        << "got: " << message(r.status()) << "\nwant: " << c.want;
  }
}

TEST_F(RevisionScalingTest, MinMaxAndLimit) {
  EXPECT_INVALID(resolve({{"autoscaling.knative.dev/min-scale", "5"},
                          {"autoscaling.knative.dev/max-scale", "3"}}),
                 "max-scale=3 is less than min-scale=5");
  cfg_.max_scale_limit = 10;
  cfg_.max_scale = 5;
  EXPECT_INVALID(resolve({{"autoscaling.knative.dev/max-scale", "11"}}),
                 "expected 1 <= 11 <= 10: autoscaling.knative.dev/max-scale");
  EXPECT_INVALID(resolve({{"autoscaling.knative.dev/max-scale", "0"}}),
                 "max-scale=0 (unlimited), must be less than 10");
  auto r = resolve({});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->max_scale, 5);  // the CM default applies
}

TEST_F(RevisionScalingTest, SeveralErrorsAreJoined) {
  auto r = resolve({{"autoscaling.knative.dev/target", "0"},
                    {"autoscaling.knative.dev/window", "1s"}});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(message(r.status()).find("target 0 should be at least 0.01"), std::string::npos);
  EXPECT_NE(message(r.status()).find("autoscaling.knative.dev/window"), std::string::npos);
}

TEST_F(RevisionScalingTest, ContainerConcurrencyRange) {
  EXPECT_INVALID(resolve({}, -1), "containerConcurrency");
  EXPECT_INVALID(resolve({}, 1001), "expected 0 <= 1001 <= 1000: containerConcurrency");
  EXPECT_TRUE(resolve({}, 1000).ok());
}

TEST_F(RevisionScalingTest, HpaClassKeepsItsMetric) {
  auto r = resolve({{"autoscaling.knative.dev/class", "hpa.autoscaling.knative.dev"}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->metric, "cpu");
  r = resolve({{"autoscaling.knative.dev/class", "hpa.autoscaling.knative.dev"},
               {"autoscaling.knative.dev/metric", "memory"}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->metric, "memory");
  // Other classes outside knative.dev are left alone.
  EXPECT_TRUE(resolve({{"autoscaling.knative.dev/class", "keda.sh"}}).ok());
}

TEST_F(RevisionScalingTest, ProgressDeadlineDefaultIsAParameter) {
  auto r = resolveRevisionScaling(cfg_, {}, 0, seconds(121));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->progress_deadline, seconds(121));
}

// ----- KServe fields -----

TEST(KServeScaling, FieldsOverwriteAnnotations) {
  KServeScalingFields f;
  f.min_replicas = 0;
  f.max_replicas = 4;
  f.scale_target = 10;
  f.scale_metric = "rps";
  Annotations a = applyKServeScaling(f, {{"autoscaling.knative.dev/target", "99"},
                                         {"autoscaling.knative.dev/min-scale", "3"},
                                         {"other", "kept"}});
  EXPECT_EQ(a.at("autoscaling.knative.dev/min-scale"), "0");
  EXPECT_EQ(a.at("autoscaling.knative.dev/max-scale"), "4");
  EXPECT_EQ(a.at("autoscaling.knative.dev/target"), "10");
  EXPECT_EQ(a.at("autoscaling.knative.dev/metric"), "rps");
  EXPECT_EQ(a.at("autoscaling.knative.dev/class"), "kpa.autoscaling.knative.dev");
  EXPECT_EQ(a.at("other"), "kept");
}

TEST(KServeScaling, UnsetFieldsLeaveUserAnnotations) {
  KServeScalingFields f;  // minReplicas unset → 1; nothing else set
  Annotations a = applyKServeScaling(f, {{"autoscaling.knative.dev/target", "7"},
                                         {"autoscaling.knative.dev/max-scale", "3"},
                                         {"autoscaling.knative.dev/class", "hpa.autoscaling.knative.dev"}});
  EXPECT_EQ(a.at("autoscaling.knative.dev/min-scale"), "1");
  EXPECT_EQ(a.at("autoscaling.knative.dev/max-scale"), "3");
  EXPECT_EQ(a.at("autoscaling.knative.dev/target"), "7");
  EXPECT_EQ(a.count("autoscaling.knative.dev/metric"), 0u);
  EXPECT_EQ(a.at("autoscaling.knative.dev/class"), "hpa.autoscaling.knative.dev");

  // And the result resolves: target 7 → 4.9 per pod, min 1.
  auto r = resolveRevisionScaling(*parseAutoscalerConfig({}),
                                  applyKServeScaling(KServeScalingFields{}, {}), 0);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->min_scale, 1);
}

}  // namespace
}  // namespace kh::autoscaler
