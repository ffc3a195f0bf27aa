#include "kh/autoscaler/config.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <limits>
#include <vector>

#include "kh/common/strings.h"

namespace kh::autoscaler {
namespace {

using common::strCat;

// A kmap.KeyPriority: the first key present wins.
struct KeyPriority {
  std::string_view primary;
  std::string_view legacy;  // empty when there is no camelCase alias
};

constexpr KeyPriority kClassKeys{kClassAnnotation, {}};
constexpr KeyPriority kMetricKeys{kMetricAnnotation, {}};
constexpr KeyPriority kTargetKeys{kTargetAnnotation, {}};
constexpr KeyPriority kWindowKeys{kWindowAnnotation, {}};
constexpr KeyPriority kActivationScaleKeys{kActivationScaleAnnotation, {}};
constexpr KeyPriority kMinScaleKeys{kMinScaleAnnotation, "autoscaling.knative.dev/minScale"};
constexpr KeyPriority kMaxScaleKeys{kMaxScaleAnnotation, "autoscaling.knative.dev/maxScale"};
constexpr KeyPriority kInitialScaleKeys{kInitialScaleAnnotation,
                                        "autoscaling.knative.dev/initialScale"};
constexpr KeyPriority kScaleDownDelayKeys{kScaleDownDelayAnnotation,
                                          "autoscaling.knative.dev/scaleDownDelay"};
constexpr KeyPriority kRetentionKeys{kScaleToZeroPodRetentionPeriodAnnotation,
                                     "autoscaling.knative.dev/scaleToZeroPodRetentionPeriod"};
constexpr KeyPriority kAlgorithmKeys{kMetricAggregationAlgorithmAnnotation,
                                     "autoscaling.knative.dev/metricAggregationAlgorithm"};
constexpr KeyPriority kUtilizationKeys{kTargetUtilizationPercentageAnnotation,
                                       "autoscaling.knative.dev/targetUtilizationPercentage"};
constexpr KeyPriority kTbcKeys{kTargetBurstCapacityAnnotation,
                               "autoscaling.knative.dev/targetBurstCapacity"};
constexpr KeyPriority kPanicWindowKeys{kPanicWindowPercentageAnnotation,
                                       "autoscaling.knative.dev/panicWindowPercentage"};
constexpr KeyPriority kPanicThresholdKeys{kPanicThresholdPercentageAnnotation,
                                          "autoscaling.knative.dev/panicThresholdPercentage"};
constexpr KeyPriority kProgressDeadlineKeys{kProgressDeadlineAnnotation, {}};

struct Found {
  std::string key;
  std::string value;
};

std::optional<Found> getKey(const Annotations& m, const KeyPriority& keys) {
  for (std::string_view k : {keys.primary, keys.legacy}) {
    if (k.empty()) continue;
    auto it = m.find(std::string(k));
    if (it != m.end()) return Found{it->first, it->second};
  }
  return std::nullopt;
}

std::string_view trimSpace(std::string_view s) {
  auto isSpace = [](char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
  };
  while (!s.empty() && isSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && isSpace(s.back())) s.remove_suffix(1);
  return s;
}

// strconv.ParseFloat(s, 64) for the decimal forms, "inf" and "nan".
std::optional<double> parseFloat(std::string_view s) {
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  if (s.empty() || s.front() == '+') return std::nullopt;
  double value = 0;
  auto res = std::from_chars(s.data(), s.data() + s.size(), value);
  if (res.ec != std::errc() || res.ptr != s.data() + s.size()) return std::nullopt;
  return value;
}

// strconv.ParseInt(s, 10, bits): optional sign, decimal digits, range-checked.
template <typename T>
std::optional<T> parseInt(std::string_view s) {
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  if (s.empty() || s.front() == '+') return std::nullopt;
  return common::parseInt<T>(s);
}

// strconv.ParseBool.
std::optional<bool> parseBool(std::string_view s) {
  for (std::string_view t : {"1", "t", "T", "TRUE", "true", "True"}) {
    if (s == t) return true;
  }
  for (std::string_view f : {"0", "f", "F", "FALSE", "false", "False"}) {
    if (s == f) return false;
  }
  return std::nullopt;
}

// Duration.Round(time.Second): halves away from zero.
Duration roundToSecond(Duration d) {
  const int64_t s = 1'000'000'000;
  int64_t ns = d.count();
  int64_t r = ns % s;
  if (r < 0) r = -r;
  int64_t truncated = ns - (ns % s);
  if (r + r < s) return Duration(truncated);
  return Duration(ns >= 0 ? truncated + s : truncated - s);
}

bool wholeSeconds(Duration d) { return d.count() % 1'000'000'000 == 0; }

// apis.FieldError renderings.
std::string errInvalidValue(std::string_view value, std::string_view key) {
  return strCat("invalid value: ", value, ": ", key);
}
std::string errOutOfBounds(std::string_view value, std::string_view lo, std::string_view hi,
                           std::string_view key) {
  return strCat("expected ", lo, " <= ", value, " <= ", hi, ": ", key);
}
std::string errGeneric(std::string_view message, std::string_view key) {
  return strCat(message, ": ", key);
}

std::string num(double v) { return strCat(v); }

absl::Status invalid(const std::vector<std::string>& errors) {
  std::string message;
  for (const auto& e : errors) {
    if (!message.empty()) message += "; ";
    message += e;
  }
  return absl::InvalidArgumentError(message);
}

// ----- ConfigMap parsing (knative.dev/pkg/configmap parse.go) -----

class CmParser {
 public:
  explicit CmParser(const std::map<std::string, std::string>& data) : data_(data) {}

  void asString(std::string_view key, std::string& target) {
    if (auto v = raw(key)) target = std::string(*v);
  }
  void asBool(std::string_view key, bool& target) {
    if (auto v = raw(key)) {
      if (auto b = parseBool(trimSpace(*v))) {
        target = *b;
      } else {
        fail(key, *v);
      }
    }
  }
  void asFloat(std::string_view key, double& target) {
    if (auto v = raw(key)) {
      if (auto f = parseFloat(trimSpace(*v))) {
        target = *f;
      } else {
        fail(key, *v);
      }
    }
  }
  void asInt32(std::string_view key, int32_t& target) {
    if (auto v = raw(key)) {
      if (auto i = parseInt<int32_t>(trimSpace(*v))) {
        target = *i;
      } else {
        fail(key, *v);
      }
    }
  }
  void asDuration(std::string_view key, Duration& target) {
    if (auto v = raw(key)) {
      if (auto d = parseGoDuration(trimSpace(*v)); d.ok()) {
        target = *d;
      } else {
        fail(key, *v);
      }
    }
  }
  absl::Status status() const {
    if (error_.empty()) return absl::OkStatus();
    return absl::InvalidArgumentError(strCat("failed to parse data: ", error_));
  }

 private:
  std::optional<std::string_view> raw(std::string_view key) const {
    auto it = data_.find(std::string(key));
    if (it == data_.end()) return std::nullopt;
    return std::string_view(it->second);
  }
  void fail(std::string_view key, std::string_view value) {
    if (error_.empty()) error_ = strCat("failed to parse \"", key, "\": invalid value \"", value, "\"");
  }

  const std::map<std::string, std::string>& data_;
  std::string error_;
};

}  // namespace

// ----- Durations -----

absl::StatusOr<Duration> parseGoDuration(std::string_view text) {
  const std::string original(text);
  auto bad = [&]() {
    return absl::InvalidArgumentError(strCat("time: invalid duration \"", original, "\""));
  };
  std::string_view s = text;
  bool negative = false;
  if (!s.empty() && (s.front() == '-' || s.front() == '+')) {
    negative = s.front() == '-';
    s.remove_prefix(1);
  }
  if (s == "0") return Duration(0);
  if (s.empty()) return bad();
  long double total = 0;
  while (!s.empty()) {
    if (!(std::isdigit(static_cast<unsigned char>(s.front())) || s.front() == '.')) return bad();
    // The number: [0-9]*(\.[0-9]*)?
    long double whole = 0;
    bool any_digit = false;
    while (!s.empty() && std::isdigit(static_cast<unsigned char>(s.front()))) {
      whole = whole * 10 + (s.front() - '0');
      any_digit = true;
      s.remove_prefix(1);
    }
    long double frac = 0;
    long double scale = 1;
    if (!s.empty() && s.front() == '.') {
      s.remove_prefix(1);
      while (!s.empty() && std::isdigit(static_cast<unsigned char>(s.front()))) {
        frac = frac * 10 + (s.front() - '0');
        scale *= 10;
        any_digit = true;
        s.remove_prefix(1);
      }
    }
    if (!any_digit) return bad();
    // The unit: everything up to the next digit or '.'.
    size_t n = 0;
    while (n < s.size() && s[n] != '.' && !std::isdigit(static_cast<unsigned char>(s[n]))) ++n;
    if (n == 0) {
      return absl::InvalidArgumentError(
          strCat("time: missing unit in duration \"", original, "\""));
    }
    std::string_view unit = s.substr(0, n);
    s.remove_prefix(n);
    long double unit_ns = 0;
    if (unit == "ns") {
      unit_ns = 1;
    } else if (unit == "us" || unit == "\xC2\xB5s" || unit == "\xCE\xBCs") {
      unit_ns = 1e3L;
    } else if (unit == "ms") {
      unit_ns = 1e6L;
    } else if (unit == "s") {
      unit_ns = 1e9L;
    } else if (unit == "m") {
      unit_ns = 60e9L;
    } else if (unit == "h") {
      unit_ns = 3600e9L;
    } else {
      return absl::InvalidArgumentError(
          strCat("time: unknown unit \"", unit, "\" in duration \"", original, "\""));
    }
    total += whole * unit_ns + frac * unit_ns / scale;
    if (total > static_cast<long double>(std::numeric_limits<int64_t>::max())) {
      return bad();
    }
  }
  auto ns = static_cast<int64_t>(total);
  return Duration(negative ? -ns : ns);
}

std::string formatGoDuration(Duration d) {
  int64_t ns = d.count();
  if (ns == 0) return "0s";
  std::string sign = ns < 0 ? "-" : "";
  uint64_t u = ns < 0 ? static_cast<uint64_t>(-(ns + 1)) + 1 : static_cast<uint64_t>(ns);
  auto fraction = [](uint64_t v, uint64_t unit) {
    // "1.5" style: integer part, then the fraction without trailing zeros.
    std::string out = strCat(v / unit);
    uint64_t rest = v % unit;
    if (rest != 0) {
      std::string digits;
      for (uint64_t p = unit / 10; p > 0; p /= 10) {
        digits.push_back(static_cast<char>('0' + (rest / p) % 10));
      }
      while (!digits.empty() && digits.back() == '0') digits.pop_back();
      out += "." + digits;
    }
    return out;
  };
  if (u < 1'000'000'000ULL) {
    if (u < 1'000ULL) return strCat(sign, u, "ns");
    if (u < 1'000'000ULL) return strCat(sign, fraction(u, 1'000ULL), "\xC2\xB5s");
    return strCat(sign, fraction(u, 1'000'000ULL), "ms");
  }
  uint64_t secs_ns = u % 60'000'000'000ULL;
  uint64_t minutes = u / 60'000'000'000ULL;
  std::string out = sign;
  if (minutes >= 60) {
    out += strCat(minutes / 60, "h");
    out += strCat(minutes % 60, "m");
  } else if (minutes > 0) {
    out += strCat(minutes, "m");
  }
  out += fraction(secs_ns, 1'000'000'000ULL) + "s";
  return out;
}

// ----- ConfigMap -----

absl::Status validateAutoscalerConfig(const AutoscalerConfig& lc) {
  if (lc.scale_to_zero_grace_period <= Duration(0)) {
    return absl::InvalidArgumentError(strCat("scale-to-zero-grace-period must be positive, was: ",
                                             formatGoDuration(lc.scale_to_zero_grace_period)));
  }
  if (lc.scale_down_delay < Duration(0)) {
    return absl::InvalidArgumentError(strCat("scale-down-delay cannot be negative, was: ",
                                             formatGoDuration(lc.scale_down_delay)));
  }
  if (roundToSecond(lc.scale_down_delay) != lc.scale_down_delay) {
    return absl::InvalidArgumentError(strCat("scale-down-delay = ",
                                             formatGoDuration(lc.scale_down_delay),
                                             ", must be specified with at most second precision"));
  }
  if (lc.scale_to_zero_pod_retention_period < Duration(0)) {
    return absl::InvalidArgumentError(
        strCat("scale-to-zero-pod-retention-period cannot be negative, was: ",
               formatGoDuration(lc.scale_to_zero_pod_retention_period)));
  }
  if (lc.target_burst_capacity < 0 && lc.target_burst_capacity != -1) {
    return absl::InvalidArgumentError(
        strCat("target-burst-capacity must be either non-negative or -1 (for unlimited), was: ",
               num(lc.target_burst_capacity)));
  }
  if (!(lc.container_concurrency_target_fraction > 0) ||
      lc.container_concurrency_target_fraction > 1) {
    return absl::InvalidArgumentError(strCat("container-concurrency-target-percentage = ",
                                             num(lc.container_concurrency_target_fraction),
                                             " is outside of valid range of (0, 100]"));
  }
  if (double x = lc.container_concurrency_target_fraction * lc.container_concurrency_target_default;
      !(x >= kTargetMin)) {
    return absl::InvalidArgumentError(strCat(
        "container-concurrency-target-percentage and container-concurrency-target-default yield "
        "target concurrency of ",
        num(x), ", can't be less than ", num(kTargetMin)));
  }
  if (!(lc.rps_target_default >= kTargetMin)) {
    return absl::InvalidArgumentError(strCat("requests-per-second-target-default must be at least ",
                                             num(kTargetMin), ", was: ",
                                             num(lc.rps_target_default)));
  }
  if (!(lc.activator_capacity >= 1)) {
    return absl::InvalidArgumentError(
        strCat("activator-capacity = ", num(lc.activator_capacity), ", must be at least 1"));
  }
  if (!(lc.max_scale_up_rate > 1.0)) {
    return absl::InvalidArgumentError(
        strCat("max-scale-up-rate = ", num(lc.max_scale_up_rate), ", must be greater than 1.0"));
  }
  if (!(lc.max_scale_down_rate > 1.0)) {
    return absl::InvalidArgumentError(strCat("max-scale-down-rate = ", num(lc.max_scale_down_rate),
                                             ", must be greater than 1.0"));
  }
  if (lc.stable_window < kWindowMin || lc.stable_window > kWindowMax) {
    return absl::InvalidArgumentError(strCat("stable-window = ", formatGoDuration(lc.stable_window),
                                             ", must be in [", formatGoDuration(kWindowMin), "; ",
                                             formatGoDuration(kWindowMax), "] range"));
  }
  if (roundToSecond(lc.stable_window) != lc.stable_window) {
    return absl::InvalidArgumentError(strCat("stable-window = ", formatGoDuration(lc.stable_window),
                                             ", must be specified with at most second precision"));
  }
  if (!(lc.panic_window_percentage >= kPanicWindowPercentageMin &&
        lc.panic_window_percentage <= kPanicWindowPercentageMax)) {
    return absl::InvalidArgumentError(strCat(
        "panic-window-percentage = ", num(lc.panic_window_percentage), ", must be in [",
        num(kPanicWindowPercentageMin), ", ", num(kPanicWindowPercentageMax), "] interval"));
  }
  if (lc.initial_scale < 0 || (lc.initial_scale == 0 && !lc.allow_zero_initial_scale)) {
    return absl::InvalidArgumentError(
        strCat("initial-scale = ", lc.initial_scale,
               ", must be at least 0 (or at least 1 when allow-zero-initial-scale is false)"));
  }
  if (lc.min_scale < 0) {
    return absl::InvalidArgumentError(strCat("min-scale = ", lc.min_scale, ", must be at least 0"));
  }
  int32_t min_max_scale = lc.max_scale_limit > 0 ? 1 : 0;
  if (lc.max_scale < min_max_scale || (lc.max_scale_limit > 0 && lc.max_scale > lc.max_scale_limit)) {
    return absl::InvalidArgumentError(strCat("max-scale = ", lc.max_scale, ", must be in [",
                                             min_max_scale, ", max-scale-limit(",
                                             lc.max_scale_limit, ")] range"));
  }
  if (lc.max_scale_limit < 0) {
    return absl::InvalidArgumentError(
        strCat("max-scale-limit = ", lc.max_scale_limit, ", must be at least 0"));
  }
  if (lc.min_scale > lc.max_scale && lc.max_scale > 0) {
    return absl::InvalidArgumentError(strCat("min-scale (", lc.min_scale,
                                             ") must be less than max-scale (", lc.max_scale, ")"));
  }
  return absl::OkStatus();
}

const std::vector<std::string>& autoscalerConfigKeys() {
  // Those parseAutoscalerConfig reads below.
  static const std::vector<std::string> kKeys = {
      "pod-autoscaler-class", "enable-scale-to-zero", "allow-zero-initial-scale", "max-scale-up-rate",
      "max-scale-down-rate", "container-concurrency-target-percentage", "container-concurrency-target-default",
      "requests-per-second-target-default", "target-burst-capacity", "panic-window-percentage",
      "activator-capacity", "panic-threshold-percentage", "initial-scale", "min-scale", "max-scale",
      "max-scale-limit", "stable-window", "scale-down-delay", "scale-to-zero-grace-period",
      "scale-to-zero-pod-retention-period"};
  return kKeys;
}

absl::StatusOr<AutoscalerConfig> parseAutoscalerConfig(
    const std::map<std::string, std::string>& configMap) {
  AutoscalerConfig lc;
  CmParser p(configMap);
  p.asString("pod-autoscaler-class", lc.pod_autoscaler_class);
  p.asBool("enable-scale-to-zero", lc.enable_scale_to_zero);
  p.asBool("allow-zero-initial-scale", lc.allow_zero_initial_scale);
  p.asFloat("max-scale-up-rate", lc.max_scale_up_rate);
  p.asFloat("max-scale-down-rate", lc.max_scale_down_rate);
  p.asFloat("container-concurrency-target-percentage", lc.container_concurrency_target_fraction);
  p.asFloat("container-concurrency-target-default", lc.container_concurrency_target_default);
  p.asFloat("requests-per-second-target-default", lc.rps_target_default);
  p.asFloat("target-burst-capacity", lc.target_burst_capacity);
  p.asFloat("panic-window-percentage", lc.panic_window_percentage);
  p.asFloat("activator-capacity", lc.activator_capacity);
  p.asFloat("panic-threshold-percentage", lc.panic_threshold_percentage);
  p.asInt32("initial-scale", lc.initial_scale);
  p.asInt32("min-scale", lc.min_scale);
  p.asInt32("max-scale", lc.max_scale);
  p.asInt32("max-scale-limit", lc.max_scale_limit);
  p.asDuration("stable-window", lc.stable_window);
  p.asDuration("scale-down-delay", lc.scale_down_delay);
  p.asDuration("scale-to-zero-grace-period", lc.scale_to_zero_grace_period);
  p.asDuration("scale-to-zero-pod-retention-period", lc.scale_to_zero_pod_retention_period);
  if (absl::Status s = p.status(); !s.ok()) return s;

  // For legacy reasons a value in (0, 1] is already a fraction; anything above is a percentage.
  if (lc.container_concurrency_target_fraction > 1.0) {
    lc.container_concurrency_target_fraction /= 100.0;
  }
  if (absl::Status s = validateAutoscalerConfig(lc); !s.ok()) return s;
  return lc;
}

// ----- Annotations -----

namespace {

// getIntGE0: absent → 0; malformed or negative → an error.
int32_t intGE0(const Annotations& m, const KeyPriority& keys, std::vector<std::string>& errs) {
  auto f = getKey(m, keys);
  if (!f) return 0;
  auto v = parseInt<int64_t>(f->value);
  if (!v) {
    errs.push_back(errInvalidValue(f->value, f->key));
    return 0;
  }
  if (*v < 0 || *v > std::numeric_limits<int32_t>::max()) {
    errs.push_back(errOutOfBounds(f->value, "0", "2147483647", f->key));
    return 0;
  }
  return static_cast<int32_t>(*v);
}

void validateAnnotations(const AutoscalerConfig& config, const Annotations& m,
                         std::vector<std::string>& errs) {
  // validateClass
  auto cls = getKey(m, kClassKeys);
  if (cls && cls->value.size() >= 12 &&
      std::string_view(cls->value).substr(cls->value.size() - 12) == ".knative.dev" &&
      cls->value != kKpaClass && cls->value != kHpaClass) {
    errs.push_back(errInvalidValue(cls->value, cls->key));
  }
  const std::string class_value = cls ? cls->value : config.pod_autoscaler_class;

  // validateMinMaxScale
  int32_t min = intGE0(m, kMinScaleKeys, errs);
  int32_t max = intGE0(m, kMaxScaleKeys, errs);
  if (max != 0 && max < min) {
    errs.push_back(strCat("max-scale=", max, " is less than min-scale=", min, ": ",
                          kMaxScaleAnnotation, ", ", kMinScaleAnnotation));
  }
  if (auto mx = getKey(m, kMaxScaleKeys); mx && config.max_scale_limit != 0) {
    if (max > config.max_scale_limit) {
      errs.push_back(errOutOfBounds(strCat(max), "1", strCat(config.max_scale_limit), mx->key));
    }
    if (max == 0) {
      errs.push_back(strCat("max-scale=0 (unlimited), must be less than ", config.max_scale_limit,
                            ": ", mx->key));
    }
  }
  if (auto as = getKey(m, kActivationScaleKeys)) {
    auto nz = parseInt<int32_t>(as->value);
    if (!nz) {
      errs.push_back(errInvalidValue(as->value, as->key));
    } else if (min > *nz) {
      errs.push_back(strCat("min-scale=", min, " is greater than activation-scale=", *nz, ": ",
                            as->key));
    } else if (max < *nz && max != 0) {
      errs.push_back(
          strCat("max-scale=", max, " is less than activation-scale=", *nz, ": ", as->key));
    } else if (*nz < 2) {
      errs.push_back(strCat("activation-scale=", *nz, " must be greater than 1: ", as->key));
    }
  }

  // validateFloats
  if (auto f = getKey(m, kPanicWindowKeys)) {
    auto v = parseFloat(f->value);
    if (!v) {
      errs.push_back(errInvalidValue(f->value, f->key));
    } else if (!(*v >= kPanicWindowPercentageMin && *v <= kPanicWindowPercentageMax)) {
      errs.push_back(errOutOfBounds(f->value, num(kPanicWindowPercentageMin),
                                    num(kPanicWindowPercentageMax), f->key));
    }
  }
  if (auto f = getKey(m, kPanicThresholdKeys)) {
    auto v = parseFloat(f->value);
    if (!v) {
      errs.push_back(errInvalidValue(f->value, f->key));
    } else if (!(*v >= kPanicThresholdPercentageMin && *v <= kPanicThresholdPercentageMax)) {
      errs.push_back(errOutOfBounds(f->value, num(kPanicThresholdPercentageMin),
                                    num(kPanicThresholdPercentageMax), f->key));
    }
  }
  if (auto f = getKey(m, kTargetKeys)) {
    auto v = parseFloat(f->value);
    if (!v) {
      errs.push_back(errInvalidValue(f->value, f->key));
    } else if (!(*v >= kTargetMin)) {
      errs.push_back(
          errGeneric(strCat("target ", f->value, " should be at least ", num(kTargetMin)), f->key));
    }
  }
  if (auto f = getKey(m, kUtilizationKeys)) {
    auto v = parseFloat(f->value);
    if (!v) {
      errs.push_back(errInvalidValue(f->value, f->key));
    } else if (!(*v >= 1 && *v <= 100)) {
      errs.push_back(errOutOfBounds(f->value, "1", "100", f->key));
    }
  }
  if (auto f = getKey(m, kTbcKeys)) {
    auto v = parseFloat(f->value);
    if (!v || std::isnan(*v) || (*v < 0 && *v != -1)) {
      errs.push_back(errInvalidValue(f->value, f->key));
    }
  }

  // validateWindow
  if (auto f = getKey(m, kWindowKeys)) {
    auto d = parseGoDuration(f->value);
    if (!d.ok()) {
      errs.push_back(errInvalidValue(f->value, kWindowAnnotation));
    } else if (*d < kWindowMin || *d > kWindowMax) {
      errs.push_back(errOutOfBounds(f->value, formatGoDuration(kWindowMin),
                                    formatGoDuration(kWindowMax), kWindowAnnotation));
    } else if (!wholeSeconds(*d)) {
      errs.push_back(
          errGeneric("must be specified with at most second precision", kWindowAnnotation));
    }
  }

  // validateLastPodRetention
  if (auto f = getKey(m, kRetentionKeys)) {
    auto d = parseGoDuration(f->value);
    if (!d.ok()) {
      errs.push_back(errInvalidValue(f->value, f->key));
    } else if (*d < Duration(0) || *d > kWindowMax) {
      errs.push_back(errOutOfBounds(f->value, "0s", formatGoDuration(kWindowMax), f->key));
    }
  }

  // validateScaleDownDelay
  if (auto f = getKey(m, kScaleDownDelayKeys)) {
    auto d = parseGoDuration(f->value);
    if (!d.ok()) {
      errs.push_back(errInvalidValue(f->value, f->key));
    } else if (*d < Duration(0) || *d > kWindowMax) {
      errs.push_back(errOutOfBounds(f->value, "0s", formatGoDuration(kWindowMax), f->key));
    } else if (roundToSecond(*d) != *d) {
      errs.push_back(errGeneric("must be specified with at most second precision", f->key));
    }
  }

  // validateMetric
  if (auto f = getKey(m, kMetricKeys)) {
    bool ok = true;
    if (class_value == kKpaClass) {
      ok = f->value == kMetricConcurrency || f->value == kMetricRps;
    } else if (class_value == kHpaClass) {
      ok = !f->value.empty();
    }
    if (!ok) errs.push_back(errInvalidValue(f->value, kMetricAnnotation));
  }

  // validateAlgorithm. Go checks it only when the class annotation says KPA; we check whenever
  // the resolved class is the KPA, since this library is the KPA.
  if (class_value == kKpaClass) {
    if (auto f = getKey(m, kAlgorithmKeys); f && !f->value.empty()) {
      if (f->value != kAggregationLinear && f->value != kAggregationWeightedExponential &&
          f->value != kAggregationWeightedExponentialAlt) {
        errs.push_back(errInvalidValue(f->value, f->key));
      }
    }
  }

  // validateInitialScale
  if (auto f = getKey(m, kInitialScaleKeys)) {
    auto v = parseInt<int64_t>(f->value);
    if (!v) {
      errs.push_back(errInvalidValue(f->value, f->key));
    } else if (*v < 0) {
      errs.push_back(errInvalidValue(f->value, strCat(f->key, " must be greater than 0")));
    } else if (!config.allow_zero_initial_scale && *v == 0) {
      errs.push_back(errInvalidValue(f->value, strCat(f->key, "=0 not allowed by cluster")));
    }
  }

  // The revision's own progress deadline (validated by the serving webhook in Knative).
  if (auto f = getKey(m, kProgressDeadlineKeys)) {
    auto d = parseGoDuration(f->value);
    if (!d.ok() || *d <= Duration(0)) errs.push_back(errInvalidValue(f->value, f->key));
  }
}

}  // namespace

absl::StatusOr<RevisionScaling> resolveRevisionScaling(const AutoscalerConfig& config,
                                                       const Annotations& annotations,
                                                       int containerConcurrency,
                                                       Duration defaultProgressDeadline) {
  std::vector<std::string> errs;
  if (containerConcurrency < 0 || containerConcurrency > kMaxContainerConcurrency) {
    errs.push_back(errOutOfBounds(strCat(containerConcurrency), "0",
                                  strCat(kMaxContainerConcurrency), "containerConcurrency"));
  }
  validateAnnotations(config, annotations, errs);
  if (!errs.empty()) return invalid(errs);

  // Past validation every present annotation parses.
  auto str = [&](const KeyPriority& k) -> std::optional<std::string> {
    if (auto f = getKey(annotations, k)) return f->value;
    return std::nullopt;
  };
  auto flt = [&](const KeyPriority& k) -> std::optional<double> {
    if (auto f = getKey(annotations, k)) return parseFloat(f->value);
    return std::nullopt;
  };
  auto i32 = [&](const KeyPriority& k) -> std::optional<int32_t> {
    if (auto f = getKey(annotations, k)) return parseInt<int32_t>(f->value);
    return std::nullopt;
  };
  auto dur = [&](const KeyPriority& k) -> std::optional<Duration> {
    if (auto f = getKey(annotations, k)) {
      if (auto d = parseGoDuration(f->value); d.ok()) return *d;
    }
    return std::nullopt;
  };

  RevisionScaling r;
  r.pod_autoscaler_class = str(kClassKeys).value_or(config.pod_autoscaler_class);
  if (auto metric = str(kMetricKeys)) {
    r.metric = *metric;
  } else if (r.pod_autoscaler_class == kKpaClass) {
    r.metric = std::string(kMetricConcurrency);
  } else if (r.pod_autoscaler_class == kHpaClass) {
    r.metric = std::string(kMetricCpu);
  }
  r.scaling_metric = r.metric == kMetricRps ? ScalingMetric::kRps : ScalingMetric::kConcurrency;
  if (auto algo = str(kAlgorithmKeys);
      algo && (*algo == kAggregationWeightedExponential ||
               *algo == kAggregationWeightedExponentialAlt)) {
    r.aggregation = AggregationAlgorithm::kWeightedExponential;
  }
  r.container_concurrency = containerConcurrency;

  // ResolveMetricTarget.
  double total = 0;
  double tu = 0;
  if (r.metric == kMetricRps) {
    total = config.rps_target_default;
    tu = config.target_utilization;
  } else {
    total = containerConcurrency;
    if (total == 0) total = config.container_concurrency_target_default;
    tu = config.container_concurrency_target_fraction;
  }
  if (auto target = flt(kTargetKeys)) {
    total = *target;
    if (r.metric == kMetricConcurrency && containerConcurrency != 0) {
      total = std::min(*target, static_cast<double>(containerConcurrency));
    }
  }
  if (auto util = flt(kUtilizationKeys)) tu = *util / 100;
  r.target_utilization = tu;
  r.total_value = total;
  r.target_value = std::max(kTargetMin, total * tu);

  r.target_burst_capacity = flt(kTbcKeys).value_or(config.target_burst_capacity);
  r.panic_threshold = flt(kPanicThresholdKeys).value_or(config.panic_threshold_percentage) / 100.0;
  r.panic_window_percentage = flt(kPanicWindowKeys).value_or(config.panic_window_percentage);
  r.stable_window = dur(kWindowKeys).value_or(config.stable_window);
  // MakeMetric: time.Duration(float64(stable) * pct / 100).Round(time.Second), at least 1s.
  Duration panic_window = roundToSecond(Duration(static_cast<int64_t>(
      static_cast<double>(r.stable_window.count()) * r.panic_window_percentage / 100.0)));
  r.panic_window = std::max<Duration>(panic_window, kBucketSize);
  r.scale_down_delay = dur(kScaleDownDelayKeys).value_or(config.scale_down_delay);
  r.scale_to_zero_pod_retention_period =
      dur(kRetentionKeys).value_or(config.scale_to_zero_pod_retention_period);
  r.scale_to_zero_grace_period = config.scale_to_zero_grace_period;
  r.min_scale = i32(kMinScaleKeys).value_or(config.min_scale);
  r.max_scale = i32(kMaxScaleKeys).value_or(config.max_scale);
  // GetInitialScale: a revision's 0 only counts when the cluster allows it.
  r.initial_scale = config.initial_scale;
  if (auto is = i32(kInitialScaleKeys); is && (*is != 0 || config.allow_zero_initial_scale)) {
    r.initial_scale = *is;
  }
  r.activation_scale = i32(kActivationScaleKeys).value_or(0);
  r.max_scale_up_rate = config.max_scale_up_rate;
  r.max_scale_down_rate = config.max_scale_down_rate;
  r.activator_capacity = config.activator_capacity;
  r.enable_scale_to_zero = config.enable_scale_to_zero;
  r.progress_deadline = dur(kProgressDeadlineKeys).value_or(defaultProgressDeadline);
  return r;
}

Annotations applyKServeScaling(const KServeScalingFields& fields, Annotations annotations) {
  annotations[std::string(kMinScaleAnnotation)] =
      strCat(fields.min_replicas.value_or(kKServeDefaultMinReplicas));
  if (fields.max_replicas != 0) {
    annotations[std::string(kMaxScaleAnnotation)] = strCat(fields.max_replicas);
  }
  if (annotations.find(std::string(kClassAnnotation)) == annotations.end()) {
    annotations[std::string(kClassAnnotation)] = std::string(kKpaClass);
  }
  if (fields.scale_target) {
    annotations[std::string(kTargetAnnotation)] = strCat(*fields.scale_target);
  }
  if (fields.scale_metric) annotations[std::string(kMetricAnnotation)] = *fields.scale_metric;
  return annotations;
}

}  // namespace kh::autoscaler
