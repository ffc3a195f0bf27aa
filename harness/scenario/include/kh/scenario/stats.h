#pragma once
// The statistics behind scenario assertions: exact binomial tests and Clopper-Pearson intervals
// (canary splits), percentiles of small samples (cold starts), and the scale-to-zero time
// Knative's KPA should take for a given config-autoscaler (knative.md §3.1).

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace kh::scenario {

/** log P(X = k) for X ~ Binomial(n, p). */
double binomialLogPmf(int64_t k, int64_t n, double p);

/**
 * Two-sided exact binomial test (scipy.stats.binomtest's "two-sided"): the probability, under
 * Binomial(n, p), of every outcome no more likely than the one observed (relative slack 1e-7).
 */
double binomialTwoSidedPValue(int64_t k, int64_t n, double p);

/** Regularized incomplete beta function I_x(a, b) (continued fraction, Numerical Recipes). */
double regularizedBeta(double x, double a, double b);

struct Interval {
  double low = 0;
  double high = 1;
};

/** Clopper-Pearson ("exact") two-sided interval for a proportion k/n at `confidence`. */
Interval clopperPearson(int64_t k, int64_t n, double confidence);

/** The q-th percentile (0..100) by linear interpolation between closest ranks (numpy's default). */
double percentile(std::vector<double> values, double q);

/** Parses "60s", "1.5s", "500ms", "2m", "1h" or a bare number of seconds. */
absl::StatusOr<double> parseSeconds(const std::string& text);

/**
 * The scale-to-zero timing Knative's KPA gives for the effective config-autoscaler keys and a
 * revision's annotations (autoscaling.knative.dev/window, scale-to-zero-pod-retention-period),
 * measured from the last request to the last pod gone (replicas = 0).
 */
struct ScaleToZeroExpectation {
  double stable_window_s = 60;
  double grace_s = 30;
  double retention_s = 0;
  double scale_down_delay_s = 0;
  double tick_s = 2;
  bool enabled = true;
  /** Lower bound of the time from the last request to replicas = 0. */
  double expected_s = 0;
  /** How it was derived, for reports. */
  std::string explanation;
};

/**
 * Computes the expectation. `autoscaler` holds config-autoscaler keys (stable-window,
 * scale-to-zero-grace-period, scale-to-zero-pod-retention-period, scale-down-delay,
 * enable-scale-to-zero); `annotations` the ISVC's (autoscaling.knative.dev/...), which win.
 * The activator is taken as in the path (default target-burst-capacity with one pod), so the
 * grace period has run while the stable window drained: expected = window + max(retention,
 * 0) + delay (Knative's fast path), tolerance covering the grace wait when it has not.
 */
absl::StatusOr<ScaleToZeroExpectation> expectedScaleToZero(
    const std::map<std::string, std::string>& autoscaler,
    const std::map<std::string, std::string>& annotations, double tick_s);

}  // namespace kh::scenario
