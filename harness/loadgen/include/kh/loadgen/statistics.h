#pragma once
// Stopping rules: MLPerf LoadGen's binomial early stopping and perf_analyzer's window stability.

#include <cstdint>
#include <span>
#include <string>

namespace kh::loadgen {

/**
 * LoadGen early stopping. With `overruns` queries over the latency target, the smallest total
 * query count such that "the true pXX <= target" holds at `confidence`: the smallest h with
 * BinomialCDF(overruns; h + overruns, 1 - percentile) <= 1 - confidence, plus overruns.
 * E.g. percentile 0.99, confidence 0.99: 459 queries with 0 overruns, 662 with 1.
 */
int64_t earlyStoppingMinQueries(double percentile, int64_t overruns, double confidence = 0.99);

struct EarlyStoppingVerdict {
  bool passed = false;           // enough queries for the overruns seen
  int64_t queries = 0;
  int64_t overruns = 0;
  int64_t min_queries = 0;       // needed for this many overruns
  std::string describe() const;  // "p99 <= 50 ms at 99% confidence: 1200 queries, 2 over (needs 838)"
  double percentile = 0.99;
  double confidence = 0.99;
  double target_ms = 0;
};

EarlyStoppingVerdict earlyStopping(int64_t queries, int64_t overruns, double percentile,
                                   double confidence, double target_ms);

/** One measurement window's figures. */
struct WindowFigures {
  double throughput = 0;  // responses per second
  double latency = 0;     // the window's latency figure (mean or a percentile)
};

/**
 * perf_analyzer's rule: the last `windows` windows all have non-zero throughput, and
 * max/min of throughput and of latency are each within 1 + `tolerance`.
 */
bool isStable(std::span<const WindowFigures> history, int windows = 3, double tolerance = 0.10);

}  // namespace kh::loadgen
