#pragma once
// Knative's `config-autoscaler` ConfigMap and the per-revision `autoscaling.knative.dev/...`
// annotations, resolved into the numbers the KPA works with (knative.md §1).
//
// Sources ported: pkg/autoscaler/config/config.go (defaults, NewConfigFromMap, validate),
// pkg/apis/autoscaling/{register.go,annotation_validation.go},
// pkg/apis/autoscaling/v1alpha1/pa_lifecycle.go (annotation getters),
// pkg/reconciler/autoscaling/resources/{target.go,metric.go} and kpa/resources/decider.go.

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kh/common/time_source.h"

namespace kh::autoscaler {

/** Durations are nanoseconds, as Go's time.Duration. */
using Duration = std::chrono::nanoseconds;
/** Every decision is taken at an explicit point of the injected monotonic clock. */
using TimePoint = common::MonotonicTime;
using Annotations = std::map<std::string, std::string>;

// ----- Hard-coded values (knative.md §1 "Hard-coded values") -----

/** Granularity of the metric buckets (`config.BucketSize`). */
inline constexpr std::chrono::seconds kBucketSize{1};
/** The decider ticks every 2s (`tickInterval`); also the delay window's bucket width. */
inline constexpr std::chrono::seconds kTickInterval{2};
/** The scraper runs every 1s per revision (`scrapeTickInterval`). */
inline constexpr std::chrono::seconds kScrapeTickInterval{1};
/** Bounds of `stable-window` / the `window` annotation (`WindowMin`, `WindowMax`). */
inline constexpr std::chrono::seconds kWindowMin{6};
inline constexpr std::chrono::seconds kWindowMax{3600};
/** Smallest per-pod target (`TargetMin`). */
inline constexpr double kTargetMin = 0.01;
inline constexpr double kPanicWindowPercentageMin = 1.0;
inline constexpr double kPanicWindowPercentageMax = 100.0;
inline constexpr double kPanicThresholdPercentageMin = 110.0;
inline constexpr double kPanicThresholdPercentageMax = 1000.0;
/** Target utilization for RPS; it has no ConfigMap key. */
inline constexpr double kDefaultTargetUtilization = 0.7;
/** `containerConcurrency` may not exceed this (`pkg/apis/config/defaults.go`). */
inline constexpr int kMaxContainerConcurrency = 1000;
/** config-deployment `progress-deadline` default. */
inline constexpr std::chrono::seconds kDefaultProgressDeadline{600};
/** Added to the progress deadline before an Activating PA gives up (`activationTimeoutBuffer`). */
inline constexpr std::chrono::seconds kActivationTimeoutBuffer{30};
/** The async activator probe (`probePeriod`, `probeTimeout`). */
inline constexpr std::chrono::seconds kProbePeriod{1};
inline constexpr std::chrono::seconds kProbeTimeout{45};
/** Fewest activators put in the path (`minActivators`). */
inline constexpr int32_t kMinActivators = 2;

inline constexpr std::string_view kKpaClass = "kpa.autoscaling.knative.dev";
inline constexpr std::string_view kHpaClass = "hpa.autoscaling.knative.dev";
inline constexpr std::string_view kMetricConcurrency = "concurrency";
inline constexpr std::string_view kMetricRps = "rps";
inline constexpr std::string_view kMetricCpu = "cpu";
inline constexpr std::string_view kAggregationLinear = "linear";
inline constexpr std::string_view kAggregationWeightedExponential = "weighted-exponential";
inline constexpr std::string_view kAggregationWeightedExponentialAlt = "weightedExponential";

// ----- Annotation keys (pkg/apis/autoscaling/register.go) -----
// Where a legacy camelCase alias exists, the kebab-case key is looked up first (kmap.KeyPriority).

inline constexpr std::string_view kClassAnnotation = "autoscaling.knative.dev/class";
inline constexpr std::string_view kMetricAnnotation = "autoscaling.knative.dev/metric";
inline constexpr std::string_view kTargetAnnotation = "autoscaling.knative.dev/target";
inline constexpr std::string_view kWindowAnnotation = "autoscaling.knative.dev/window";
inline constexpr std::string_view kMinScaleAnnotation = "autoscaling.knative.dev/min-scale";
inline constexpr std::string_view kMaxScaleAnnotation = "autoscaling.knative.dev/max-scale";
inline constexpr std::string_view kInitialScaleAnnotation = "autoscaling.knative.dev/initial-scale";
inline constexpr std::string_view kActivationScaleAnnotation =
    "autoscaling.knative.dev/activation-scale";
inline constexpr std::string_view kScaleDownDelayAnnotation =
    "autoscaling.knative.dev/scale-down-delay";
inline constexpr std::string_view kScaleToZeroPodRetentionPeriodAnnotation =
    "autoscaling.knative.dev/scale-to-zero-pod-retention-period";
inline constexpr std::string_view kMetricAggregationAlgorithmAnnotation =
    "autoscaling.knative.dev/metric-aggregation-algorithm";
inline constexpr std::string_view kTargetUtilizationPercentageAnnotation =
    "autoscaling.knative.dev/target-utilization-percentage";
inline constexpr std::string_view kTargetBurstCapacityAnnotation =
    "autoscaling.knative.dev/target-burst-capacity";
inline constexpr std::string_view kPanicWindowPercentageAnnotation =
    "autoscaling.knative.dev/panic-window-percentage";
inline constexpr std::string_view kPanicThresholdPercentageAnnotation =
    "autoscaling.knative.dev/panic-threshold-percentage";
/** Revision's own progress deadline (`serving.knative.dev/progress-deadline`). */
inline constexpr std::string_view kProgressDeadlineAnnotation =
    "serving.knative.dev/progress-deadline";

enum class ScalingMetric { kConcurrency, kRps };
enum class AggregationAlgorithm { kLinear, kWeightedExponential };

/**
 * The `config-autoscaler` ConfigMap, every key with Knative's default (`defaultConfig()`).
 * Percentages are stored as given except `container-concurrency-target-percentage`, which is
 * stored as a fraction (70 → 0.7).
 */
struct AutoscalerConfig {
  bool enable_scale_to_zero = true;            // enable-scale-to-zero
  bool allow_zero_initial_scale = false;       // allow-zero-initial-scale
  double container_concurrency_target_fraction = 0.7;  // container-concurrency-target-percentage
  double container_concurrency_target_default = 100;   // container-concurrency-target-default
  double target_utilization = kDefaultTargetUtilization;  // RPS utilization; no key
  double rps_target_default = 200;             // requests-per-second-target-default
  double max_scale_up_rate = 1000;             // max-scale-up-rate
  double max_scale_down_rate = 2;              // max-scale-down-rate
  double target_burst_capacity = 211;          // target-burst-capacity (-1: unlimited)
  double panic_window_percentage = 10;         // panic-window-percentage
  double activator_capacity = 100;             // activator-capacity
  double panic_threshold_percentage = 200;     // panic-threshold-percentage
  Duration stable_window = std::chrono::seconds(60);              // stable-window
  Duration scale_to_zero_grace_period = std::chrono::seconds(30);  // scale-to-zero-grace-period
  Duration scale_to_zero_pod_retention_period{0};  // scale-to-zero-pod-retention-period
  Duration scale_down_delay{0};                    // scale-down-delay
  std::string pod_autoscaler_class{kKpaClass};     // pod-autoscaler-class
  int32_t initial_scale = 1;                       // initial-scale
  int32_t min_scale = 0;                           // min-scale
  int32_t max_scale = 0;                           // max-scale (0: unbounded)
  int32_t max_scale_limit = 0;                     // max-scale-limit (0: none)
};

/**
 * Parses the ConfigMap's data over the defaults and validates it (`NewConfigFromMap`).
 * Unknown keys are ignored. Durations take Go syntax ("60s", "1m30s", "500ms").
 * A `container-concurrency-target-percentage` above 1.0 is divided by 100; one in (0, 1] is
 * taken as a fraction already.
 * @return InvalidArgument naming the key on a malformed or out-of-range value.
 */
absl::StatusOr<AutoscalerConfig> parseAutoscalerConfig(
    const std::map<std::string, std::string>& configMap);

/** The config-autoscaler keys parseAutoscalerConfig reads, as Knative spells them. */
const std::vector<std::string>& autoscalerConfigKeys();

/** The range checks of parseAutoscalerConfig on an already-built config (`validate`). */
absl::Status validateAutoscalerConfig(const AutoscalerConfig& config);

/**
 * Parses a Go duration (`time.ParseDuration`): a sequence of decimal numbers with units
 * ns, us (µs), ms, s, m, h, optionally signed, e.g. "1m30s", "1.5h", "-2s"; "0" alone is 0.
 */
absl::StatusOr<Duration> parseGoDuration(std::string_view text);

/** Formats like Go's Duration.String(): "1m30s", "500ms", "0s". */
std::string formatGoDuration(Duration d);

/**
 * Everything the KPA needs for one revision: the ConfigMap overlaid with the revision's
 * annotations, and the target resolved against its containerConcurrency.
 */
struct RevisionScaling {
  std::string pod_autoscaler_class;     // "class" annotation or the CM's class
  std::string metric;                   // "concurrency", "rps" (or an HPA metric)
  ScalingMetric scaling_metric = ScalingMetric::kConcurrency;  // metric as the KPA reads it
  AggregationAlgorithm aggregation = AggregationAlgorithm::kLinear;
  int container_concurrency = 0;
  /** Per-pod target of the scaling metric: max(0.01, total*utilization). */
  double target_value = 0;
  /** Per-pod capacity: CC, the default target, or the `target` annotation. */
  double total_value = 0;
  double target_utilization = 0;  // the fraction used to get target_value
  double target_burst_capacity = 0;
  /** panic-threshold-percentage / 100 (a factor, 2.0 by default). */
  double panic_threshold = 0;
  double panic_window_percentage = 0;
  Duration stable_window{0};
  /** round(stable*pct/100) to whole seconds, at least kBucketSize. */
  Duration panic_window{0};
  Duration scale_down_delay{0};
  /** The annotation or the CM value; the scaler ignores it while the PA is Unreachable. */
  Duration scale_to_zero_pod_retention_period{0};
  Duration scale_to_zero_grace_period{0};  // CM only (no annotation, #11125)
  /** The min-scale annotation or CM value; ignored by the scaler while Unreachable. */
  int32_t min_scale = 0;
  int32_t max_scale = 0;  // 0: unbounded
  /** GetInitialScale: the annotation, unless it is 0 and the cluster forbids 0. */
  int32_t initial_scale = 1;
  /** activation-scale annotation; 0 when absent (only values > 1 take effect). */
  int32_t activation_scale = 0;
  double max_scale_up_rate = 0;
  double max_scale_down_rate = 0;
  double activator_capacity = 0;
  bool enable_scale_to_zero = true;
  /** The revision's progress deadline (annotation or config-deployment default). */
  Duration progress_deadline{kDefaultProgressDeadline};

  bool operator==(const RevisionScaling&) const = default;
};

/**
 * Validates the revision's autoscaling annotations (`ValidateAnnotations`) and resolves them
 * over `config` (`MakeDecider`, `MakeMetric`, `ResolveMetricTarget`, `GetInitialScale`).
 *
 * Target resolution (`target.go`): concurrency: total = CC if CC>0 else
 * container-concurrency-target-default, utilization = the CM fraction; rps: total =
 * requests-per-second-target-default, utilization 0.7. A `target` annotation replaces total
 * (capped at CC for concurrency with CC>0); `target-utilization-percentage` replaces the
 * utilization (/100). target_value = max(0.01, total*utilization).
 *
 * @param containerConcurrency the revision's containerConcurrency, in [0, 1000] (0: unbounded).
 * @param defaultProgressDeadline config-deployment's progress-deadline, used unless the
 *        revision carries `serving.knative.dev/progress-deadline`.
 * @return InvalidArgument naming the annotation key on an invalid annotation.
 */
absl::StatusOr<RevisionScaling> resolveRevisionScaling(
    const AutoscalerConfig& config, const Annotations& annotations, int containerConcurrency,
    Duration defaultProgressDeadline = kDefaultProgressDeadline);

/**
 * The KServe component fields that map onto Knative autoscaling annotations
 * (ComponentExtensionSpec: minReplicas, maxReplicas, scaleTarget, scaleMetric).
 */
struct KServeScalingFields {
  std::optional<int32_t> min_replicas;  // nil in KServe → DefaultMinReplicas (1)
  int32_t max_replicas = 0;             // 0: not set
  std::optional<int32_t> scale_target;
  std::optional<std::string> scale_metric;  // "concurrency", "rps", "cpu", "memory"
};

/** KServe's `constants.DefaultMinReplicas`. */
inline constexpr int32_t kKServeDefaultMinReplicas = 1;

/**
 * Writes the KServe fields into the revision annotations the way KServe's ksvc reconciler does
 * (`createKnativeService` / `SetAutoScalingAnnotations`), and returns the result.
 *
 * Precedence (KServe's, kept on purpose): the KServe controller *writes* the annotations from
 * the fields, so a field that is set wins over an annotation the user wrote:
 *  - min-scale is always written: minReplicas, or 1 when minReplicas is unset (KServe's
 *    default, so an InferenceService only scales to zero with an explicit minReplicas: 0);
 *  - max-scale is written when maxReplicas != 0;
 *  - target / metric are written when scaleTarget / scaleMetric are set;
 *  - class defaults to the KPA only when the user gave none.
 * A legacy camelCase alias the user wrote (minScale, maxScale) stays but loses, because the
 * kebab-case key is looked up first.
 */
Annotations applyKServeScaling(const KServeScalingFields& fields, Annotations annotations);

}  // namespace kh::autoscaler
