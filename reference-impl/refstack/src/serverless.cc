#include "serverless.h"

#include <algorithm>
#include <cmath>

#include "kh/common/strings.h"

namespace kh::refstack {

std::optional<std::chrono::milliseconds> parseKnativeDuration(const std::string& text) {
  if (text.empty()) return std::nullopt;
  if (std::all_of(text.begin(), text.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
    return std::chrono::seconds(std::stoll(text));
  }
  double total_ms = 0;
  size_t i = 0;
  while (i < text.size()) {
    size_t start = i;
    while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
    if (start == i) return std::nullopt;
    double value = std::stod(text.substr(start, i - start));
    size_t unit_start = i;
    while (i < text.size() && std::isalpha(static_cast<unsigned char>(text[i]))) ++i;
    std::string unit = text.substr(unit_start, i - unit_start);
    if (unit == "ms") total_ms += value;
    else if (unit == "s") total_ms += value * 1000;
    else if (unit == "m") total_ms += value * 60'000;
    else if (unit == "h") total_ms += value * 3'600'000;
    else return std::nullopt;
  }
  return std::chrono::milliseconds(static_cast<int64_t>(std::llround(total_ms)));
}

namespace {

absl::Status bad(const std::string& key, const std::string& value, const std::string& want) {
  return absl::InvalidArgumentError(common::strCat(key, ": '", value, "' ", want));
}

// Applies one setting from a config key or an annotation (the same names, less the prefix).
absl::Status applySetting(ScalingSettings& s, const std::string& key, const std::string& value,
                          bool annotation, std::optional<double>& target_override,
                          std::optional<double>& utilization) {
  auto number = [&]() -> std::optional<double> {
    char* end = nullptr;
    double v = std::strtod(value.c_str(), &end);
    if (end == value.c_str() || *end != '\0') return std::nullopt;
    return v;
  };
  auto duration = [&]() { return parseKnativeDuration(value); };
  if (key == "stable-window" || key == "window") {
    auto d = duration();
    if (!d || *d < std::chrono::seconds(6) || *d > std::chrono::hours(1) || d->count() % 1000 != 0) {
      return bad(key, value, "must be a whole number of seconds in [6s, 1h]");
    }
    s.stable_window = std::chrono::duration_cast<std::chrono::seconds>(*d);
  } else if (key == "panic-window-percentage" || key == "panicWindowPercentage") {
    auto v = number();
    if (!v || *v < 1 || *v > 100) return bad(key, value, "must be in [1, 100]");
    s.panic_window = std::chrono::seconds(std::max<int64_t>(1, std::llround(s.stable_window.count() * *v / 100)));
  } else if (key == "panic-threshold-percentage" || key == "panicThresholdPercentage") {
    auto v = number();
    if (!v || *v < 110 || *v > 1000) return bad(key, value, "must be in [110, 1000]");
    s.panic_threshold = *v / 100;
  } else if (key == "target-burst-capacity" || key == "targetBurstCapacity") {
    auto v = number();
    if (!v || (*v < 0 && *v != -1)) return bad(key, value, "must be >= 0 or -1");
    s.target_burst_capacity = *v;
  } else if (key == "container-concurrency-target-percentage" || key == "target-utilization-percentage" ||
             key == "targetUtilizationPercentage") {
    auto v = number();
    if (!v || *v <= 0 || *v > 100) return bad(key, value, "must be in (0, 100]");
    utilization = (!annotation && *v <= 1) ? *v : *v / 100;
  } else if (key == "container-concurrency-target-default" || key == "target") {
    auto v = number();
    if (!v || *v < 0.01) return bad(key, value, "must be >= 0.01");
    if (annotation) target_override = *v;
    else if (s.metric == "concurrency") s.total = *v;
  } else if (key == "max-scale-up-rate") {
    auto v = number();
    if (!v || *v <= 1) return bad(key, value, "must be > 1");
    s.max_scale_up_rate = *v;
  } else if (key == "max-scale-down-rate") {
    auto v = number();
    if (!v || *v <= 1) return bad(key, value, "must be > 1");
    s.max_scale_down_rate = *v;
  } else if (key == "scale-to-zero-grace-period") {
    auto d = duration();
    if (!d || d->count() <= 0) return bad(key, value, "must be a positive duration");
    s.scale_to_zero_grace = *d;
  } else if (key == "scale-to-zero-pod-retention-period" || key == "scaleToZeroPodRetentionPeriod") {
    auto d = duration();
    if (!d || d->count() < 0) return bad(key, value, "must be a duration >= 0");
    s.pod_retention = *d;
  } else if (key == "initial-scale" || key == "initialScale") {
    auto v = number();
    if (!v || *v < 0 || std::floor(*v) != *v) return bad(key, value, "must be an integer >= 0");
    s.initial_scale = static_cast<int>(*v);
  } else if (key == "min-scale" || key == "minScale") {
    auto v = number();
    if (!v || *v < 0 || std::floor(*v) != *v) return bad(key, value, "must be an integer >= 0");
    s.min_scale = static_cast<int>(*v);
  } else if (key == "max-scale" || key == "maxScale") {
    auto v = number();
    if (!v || *v < 0 || std::floor(*v) != *v) return bad(key, value, "must be an integer >= 0");
    s.max_scale = static_cast<int>(*v);
  } else if (key == "activation-scale") {
    auto v = number();
    if (!v || *v < 2 || std::floor(*v) != *v) return bad(key, value, "must be greater than 1");
    s.activation_scale = static_cast<int>(*v);
  } else if (key == "enable-scale-to-zero") {
    if (value != "true" && value != "false") return bad(key, value, "must be true or false");
    s.enable_scale_to_zero = value == "true";
  } else if (key == "metric") {
    if (value != "concurrency" && value != "rps") return bad(key, value, "must be concurrency or rps (KPA)");
    s.metric = value;
  } else if (key == "requests-per-second-target-default" || key == "class" || key == "metric-aggregation-algorithm" ||
             key == "metricAggregationAlgorithm" || key == "max-scale-limit" || key == "allow-zero-initial-scale" ||
             key == "activator-capacity" || key == "pod-autoscaler-class") {
    // Accepted; the reference decider uses linear averages and the KPA class only.
  } else {
    return absl::InvalidArgumentError(common::strCat("unknown autoscaler key '", key, "'"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ScalingSettings> resolveScalingSettings(
    const std::map<std::string, std::string>& config, const controller::ComponentExtension& component,
    const std::map<std::string, std::string>& annotations) {
  ScalingSettings s;
  std::optional<double> target_override, utilization;
  // stable-window first: the panic window is a percentage of it.
  if (auto it = config.find("stable-window"); it != config.end()) {
    if (auto st = applySetting(s, it->first, it->second, false, target_override, utilization); !st.ok()) return st;
  }
  for (const auto& [k, v] : config) {
    if (k == "stable-window") continue;
    if (auto st = applySetting(s, k, v, false, target_override, utilization); !st.ok()) return st;
  }
  // KServe writes these fields as the Knative annotations; explicit annotations win.
  s.min_scale = static_cast<int>(component.min_replicas.value_or(1));
  if (component.max_replicas > 0) s.max_scale = static_cast<int>(component.max_replicas);
  s.container_concurrency = static_cast<int>(component.container_concurrency.value_or(0));
  if (component.scale_metric && (*component.scale_metric == "concurrency" || *component.scale_metric == "rps")) {
    s.metric = *component.scale_metric;
  }
  if (component.scale_target) target_override = static_cast<double>(*component.scale_target);
  const std::string prefix = "autoscaling.knative.dev/";
  if (auto it = annotations.find(prefix + "window"); it != annotations.end()) {
    if (auto st = applySetting(s, "window", it->second, true, target_override, utilization); !st.ok()) return st;
    s.panic_window = std::chrono::seconds(std::max<int64_t>(1, std::llround(s.stable_window.count() * 0.1)));
  }
  for (const auto& [k, v] : annotations) {
    if (k.rfind(prefix, 0) != 0 || k == prefix + "window") continue;
    if (auto st = applySetting(s, k.substr(prefix.size()), v, true, target_override, utilization); !st.ok()) {
      return absl::InvalidArgumentError(common::strCat("annotation ", prefix, common::toStd(st.message())));
    }
  }
  if (!config.count("panic-window-percentage") && !annotations.count(prefix + "panic-window-percentage")) {
    s.panic_window = std::chrono::seconds(std::max<int64_t>(1, std::llround(s.stable_window.count() * 0.1)));
  }
  // Target and total as Knative's target.go resolves them.
  double total = s.metric == "rps" ? 200 : (s.container_concurrency > 0 ? s.container_concurrency : s.total);
  if (target_override) {
    total = *target_override;
    if (s.metric == "concurrency" && s.container_concurrency > 0) {
      total = std::min(total, static_cast<double>(s.container_concurrency));
    }
  }
  s.total = total;
  s.target = std::max(0.01, total * utilization.value_or(0.7));
  if (s.max_scale > 0 && s.min_scale > s.max_scale) {
    return absl::InvalidArgumentError("minReplicas cannot be greater than maxReplicas");
  }
  return s;
}

RevisionDecider::RevisionDecider(ScalingSettings settings, common::MonotonicTime now)
    : settings_(std::move(settings)), epoch_(now) {}

void RevisionDecider::record(common::MonotonicTime now, double value) {
  int64_t second = std::chrono::duration_cast<std::chrono::seconds>(now - epoch_).count();
  if (!buckets_.empty() && buckets_.back().first == second) {
    buckets_.back().second += value;
  } else {
    buckets_.emplace_back(second, value);
  }
  int64_t keep = settings_.stable_window.count();
  while (!buckets_.empty() && buckets_.front().first <= second - keep) buckets_.pop_front();
}

// The average over the buckets of the last `window` seconds (empty seconds count as zero once
// data has been seen; a window with no data at all is 0).
double RevisionDecider::windowAverage(common::MonotonicTime now, std::chrono::seconds window) const {
  int64_t second = std::chrono::duration_cast<std::chrono::seconds>(now - epoch_).count();
  int64_t from = second - window.count() + 1;
  double sum = 0;
  int64_t first_seen = second + 1;
  for (const auto& [s, v] : buckets_) {
    if (s >= from && s <= second) {
      sum += v;
      first_seen = std::min(first_seen, s);
    }
  }
  if (first_seen > second) return 0;
  // A partly filled window averages over the seconds since its first data, as Knative does.
  int64_t span = second - std::max(from, buckets_.front().first) + 1;
  return std::round(sum / static_cast<double>(std::max<int64_t>(1, span)) * 1e6) / 1e6;
}

ScaleDecision RevisionDecider::decide(common::MonotonicTime now, int ready) {
  ScaleDecision d;
  d.stable = windowAverage(now, settings_.stable_window);
  d.panic = windowAverage(now, settings_.panic_window);
  double ready_f = std::max(1, ready);
  int max_up = static_cast<int>(std::ceil(settings_.max_scale_up_rate * ready_f));
  int max_down = static_cast<int>(std::floor(ready_f / settings_.max_scale_down_rate));
  int dspc = static_cast<int>(std::ceil(d.stable / settings_.target));
  int dppc = static_cast<int>(std::ceil(d.panic / settings_.target));
  int desired_stable = std::min(std::max(dspc, max_down), max_up);
  int desired_panic = std::min(std::max(dppc, max_down), max_up);
  if (settings_.activation_scale > 1) {
    if (dspc > 0) desired_stable = std::max(desired_stable, settings_.activation_scale);
    if (dppc > 0) desired_panic = std::max(desired_panic, settings_.activation_scale);
  }
  bool over_panic = dppc / ready_f >= settings_.panic_threshold;
  if (over_panic) {
    panic_since_ = now;
  } else if (panic_since_ && *panic_since_ + settings_.stable_window < now) {
    panic_since_.reset();
    max_panic_pods_ = 0;
  }
  int desired = desired_stable;
  if (panic_since_) {
    desired = std::max(desired_stable, desired_panic);
    max_panic_pods_ = std::max(max_panic_pods_, desired);  // no scale-down while panicking
    desired = max_panic_pods_;
  }
  d.desired = desired;
  d.panicking = panic_since_.has_value();
  double tbc = settings_.target_burst_capacity;
  d.excess_burst_capacity = tbc == -1 ? -1
                            : tbc == 0 ? 0
                                       : static_cast<int>(std::floor(ready * settings_.total - tbc - d.panic));
  return d;
}

}  // namespace kh::refstack
