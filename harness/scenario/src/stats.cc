// Exact binomial test, Clopper-Pearson bounds, percentiles and the KPA scale-to-zero timing.

#include "kh/scenario/stats.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

#include "kh/common/strings.h"
#include "kh/loadgen/schedule.h"

namespace kh::scenario {

double binomialLogPmf(int64_t k, int64_t n, double p) {
  if (k < 0 || k > n) return -std::numeric_limits<double>::infinity();
  if (p <= 0) return k == 0 ? 0.0 : -std::numeric_limits<double>::infinity();
  if (p >= 1) return k == n ? 0.0 : -std::numeric_limits<double>::infinity();
  double kk = static_cast<double>(k), nn = static_cast<double>(n);
  return std::lgamma(nn + 1) - std::lgamma(kk + 1) - std::lgamma(nn - kk + 1) + kk * std::log(p) +
         (nn - kk) * std::log1p(-p);
}

double binomialTwoSidedPValue(int64_t k, int64_t n, double p) {
  if (n <= 0) return 1.0;
  const double observed = binomialLogPmf(k, n, p);
  // scipy's relative slack (1 + 1e-7) so that outcomes exactly as likely as k count in full.
  const double limit = observed + std::log1p(1e-7);
  // Sum in a numerically stable way around the largest term (the mode).
  double total = 0;
  for (int64_t i = 0; i <= n; ++i) {
    double lp = binomialLogPmf(i, n, p);
    if (lp <= limit) total += std::exp(lp);
  }
  return std::min(1.0, total);
}

namespace {

// Continued fraction for the incomplete beta function (Lentz's method).
double betaContinuedFraction(double x, double a, double b) {
  constexpr int kMaxIterations = 10'000;
  constexpr double kEpsilon = 1e-15;
  constexpr double kTiny = 1e-300;
  double qab = a + b, qap = a + 1, qam = a - 1;
  double c = 1, d = 1 - qab * x / qap;
  if (std::fabs(d) < kTiny) d = kTiny;
  d = 1 / d;
  double h = d;
  for (int m = 1; m <= kMaxIterations; ++m) {
    double m2 = 2.0 * m;
    double aa = m * (b - m) * x / ((qam + m2) * (a + m2));
    d = 1 + aa * d;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = 1 + aa / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1 / d;
    h *= d * c;
    aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
    d = 1 + aa * d;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = 1 + aa / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1 / d;
    double del = d * c;
    h *= del;
    if (std::fabs(del - 1) < kEpsilon) break;
  }
  return h;
}

}  // namespace

double regularizedBeta(double x, double a, double b) {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  double log_front = std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) +
                     b * std::log1p(-x);
  if (x < (a + 1) / (a + b + 2)) return std::exp(log_front) * betaContinuedFraction(x, a, b) / a;
  return 1 - std::exp(log_front) * betaContinuedFraction(1 - x, b, a) / b;
}

namespace {

// The x in [0, 1] with I_x(a, b) = target (I is increasing in x), by bisection to 1e-15.
double inverseRegularizedBeta(double target, double a, double b) {
  double lo = 0, hi = 1;
  for (int i = 0; i < 200 && hi - lo > 1e-16; ++i) {
    double mid = (lo + hi) / 2;
    if (regularizedBeta(mid, a, b) < target) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  return (lo + hi) / 2;
}

}  // namespace

Interval clopperPearson(int64_t k, int64_t n, double confidence) {
  Interval out;
  if (n <= 0) return out;
  double alpha = (1 - confidence) / 2;
  double kk = static_cast<double>(k), nn = static_cast<double>(n);
  out.low = k == 0 ? 0.0 : inverseRegularizedBeta(alpha, kk, nn - kk + 1);
  out.high = k == n ? 1.0 : inverseRegularizedBeta(1 - alpha, kk + 1, nn - kk);
  return out;
}

double percentile(std::vector<double> values, double q) {
  if (values.empty()) return std::nan("");
  std::sort(values.begin(), values.end());
  double rank = std::clamp(q, 0.0, 100.0) / 100.0 * static_cast<double>(values.size() - 1);
  size_t lo = static_cast<size_t>(std::floor(rank));
  size_t hi = std::min(values.size() - 1, lo + 1);
  double frac = rank - static_cast<double>(lo);
  return values[lo] + (values[hi] - values[lo]) * frac;
}

absl::StatusOr<double> parseSeconds(const std::string& text) {
  auto duration = loadgen::parseDuration(text);
  if (absl::IsOutOfRange(duration.status())) return absl::InvalidArgumentError(duration.status().message());
  if (!duration.ok()) return absl::InvalidArgumentError(common::strCat("not a duration: \"", text, "\" (e.g. 30s, 500ms)"));
  return std::chrono::duration<double>(*duration).count();
}

absl::StatusOr<ScaleToZeroExpectation> expectedScaleToZero(
    const std::map<std::string, std::string>& autoscaler,
    const std::map<std::string, std::string>& annotations, double tick_s) {
  ScaleToZeroExpectation e;
  e.tick_s = tick_s;
  auto pick = [&](const std::string& cm_key, const std::string& annotation,
                  double fallback) -> absl::StatusOr<double> {
    auto a = annotations.find("autoscaling.knative.dev/" + annotation);
    if (!annotation.empty() && a != annotations.end()) {
      auto v = parseSeconds(a->second);
      if (!v.ok()) {
        return absl::InvalidArgumentError(common::strCat("annotation autoscaling.knative.dev/",
                                                         annotation, ": ", common::toStd(v.status().message())));
      }
      return *v;
    }
    auto c = autoscaler.find(cm_key);
    if (c != autoscaler.end()) {
      auto v = parseSeconds(c->second);
      if (!v.ok()) {
        return absl::InvalidArgumentError(
            common::strCat("autoscaler ", cm_key, ": ", common::toStd(v.status().message())));
      }
      return *v;
    }
    return fallback;
  };
  auto window = pick("stable-window", "window", 60);
  if (!window.ok()) return window.status();
  auto grace = pick("scale-to-zero-grace-period", "", 30);
  if (!grace.ok()) return grace.status();
  auto retention = pick("scale-to-zero-pod-retention-period", "scale-to-zero-pod-retention-period", 0);
  if (!retention.ok()) return retention.status();
  auto delay = pick("scale-down-delay", "scale-down-delay", 0);
  if (!delay.ok()) return delay.status();
  e.stable_window_s = *window;
  e.grace_s = *grace;
  e.retention_s = *retention;
  e.scale_down_delay_s = *delay;
  auto enabled = autoscaler.find("enable-scale-to-zero");
  e.enabled = enabled == autoscaler.end() || enabled->second != "false";
  // The activator stays in the path of a one-pod revision unless target-burst-capacity is 0.
  std::string tbc = "211";
  if (auto a = annotations.find("autoscaling.knative.dev/target-burst-capacity"); a != annotations.end()) {
    tbc = a->second;
  } else if (auto c = autoscaler.find("target-burst-capacity"); c != autoscaler.end()) {
    tbc = c->second;
  }
  bool activator_in_path = tbc != "0";
  double wait = activator_in_path ? e.retention_s : std::max(e.grace_s, e.retention_s);
  e.expected_s = e.stable_window_s + wait + e.scale_down_delay_s;
  e.explanation = common::strCat(
      "stable window ", e.stable_window_s, "s (the last request's bucket leaves it) + ",
      activator_in_path ? common::strCat("retention ", e.retention_s, "s (activator in the path: fast path, the grace already served)")
                        : common::strCat("max(grace ", e.grace_s, "s, retention ", e.retention_s,
                                         "s) (target-burst-capacity 0: the activator joins only now)"),
      e.scale_down_delay_s > 0 ? common::strCat(" + scale-down delay ", e.scale_down_delay_s, "s") : std::string(),
      " = ", e.expected_s, "s");
  return e;
}

}  // namespace kh::scenario
