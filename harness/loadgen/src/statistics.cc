#include "kh/loadgen/statistics.h"

#include <algorithm>
#include <cmath>

#include "kh/common/strings.h"

namespace kh::loadgen {
namespace {

// log of the binomial CDF P[X <= t] for X ~ Binomial(n, q), summed in log space for stability.
double logBinomialCdf(int64_t t, int64_t n, double q) {
  double log_q = std::log(q), log_1q = std::log1p(-q);
  double acc = -INFINITY;
  for (int64_t x = 0; x <= t; ++x) {
    double log_term = std::lgamma(static_cast<double>(n) + 1) -
                      std::lgamma(static_cast<double>(x) + 1) -
                      std::lgamma(static_cast<double>(n - x) + 1) + static_cast<double>(x) * log_q +
                      static_cast<double>(n - x) * log_1q;
    double hi = std::max(acc, log_term);
    acc = hi + std::log(std::exp(acc - hi) + std::exp(log_term - hi));
  }
  return acc;
}

}  // namespace

int64_t earlyStoppingMinQueries(double percentile, int64_t overruns, double confidence) {
  double q = 1.0 - percentile;
  double limit = std::log(1.0 - confidence);
  auto passes = [&](int64_t h) { return logBinomialCdf(overruns, h + overruns, q) <= limit; };
  // The CDF falls as h grows: widen, then binary-search the smallest passing h.
  int64_t lo = 0, hi = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(limit / std::log(percentile))));
  while (!passes(hi)) {
    lo = hi;
    hi *= 2;
  }
  while (lo + 1 < hi) {
    int64_t mid = lo + (hi - lo) / 2;
    if (passes(mid)) {
      hi = mid;
    } else {
      lo = mid;
    }
  }
  if (passes(lo)) hi = lo;
  return hi + overruns;
}

EarlyStoppingVerdict earlyStopping(int64_t queries, int64_t overruns, double percentile,
                                   double confidence, double target_ms) {
  EarlyStoppingVerdict v;
  v.queries = queries;
  v.overruns = overruns;
  v.percentile = percentile;
  v.confidence = confidence;
  v.target_ms = target_ms;
  v.min_queries = earlyStoppingMinQueries(percentile, overruns, confidence);
  v.passed = queries >= v.min_queries;
  return v;
}

std::string EarlyStoppingVerdict::describe() const {
  return common::strCat("p", percentile * 100, " <= ", target_ms, " ms at ", confidence * 100,
                        "% confidence: ", passed ? "PASS" : "not established", " (", queries,
                        " queries, ", overruns, " over target; needs ", min_queries, ")");
}

bool isStable(std::span<const WindowFigures> history, int windows, double tolerance) {
  if (windows <= 0 || history.size() < static_cast<size_t>(windows)) return false;
  auto last = history.subspan(history.size() - static_cast<size_t>(windows));
  double tmin = INFINITY, tmax = 0, lmin = INFINITY, lmax = 0;
  for (const auto& w : last) {
    if (w.throughput <= 0) return false;
    tmin = std::min(tmin, w.throughput);
    tmax = std::max(tmax, w.throughput);
    lmin = std::min(lmin, w.latency);
    lmax = std::max(lmax, w.latency);
  }
  if (lmin <= 0) return lmax <= 0;
  return tmax / tmin <= 1.0 + tolerance + 1e-12 && lmax / lmin <= 1.0 + tolerance + 1e-12;
}

}  // namespace kh::loadgen
