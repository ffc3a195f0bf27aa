#pragma once
// A load run as documents: the JSON result (schema "kserve-harness/load-run/v1", described in
// harness/README.md), a text summary, perf_analyzer-compatible CSV rows and an HdrHistogram
// interval log.

#include <string>
#include <vector>

#include "kh/loadgen/engine.h"
#include "kh/loadgen/statistics.h"
#include "nlohmann/json.hpp"

namespace kh::loadgen {

/** What produced a run, recorded with it. */
struct RunConfig {
  std::string target;
  std::string model;
  std::string protocol;
  std::string payload;
  std::string mode;  // "closed", "constant", "poisson", "profile", "trace"
  int concurrency = 0;
  double rate = 0;
  uint64_t seed = 0;
  int threads = 1;
  int connections = 0;
  double duration_s = 0;
  double warmup_s = 0;
  double window_s = 1;
  std::string label;  // a name for comparisons (default: protocol + mode)
  // Stopping rules reported with the run.
  int stability_windows = 3;
  double stability_tolerance = 0.10;
  double slo_percentile = 0;  // 0 = no SLO
  double slo_ms = 0;
  double slo_confidence = 0.99;
};

nlohmann::json runToJson(const RunResult& result, const RunConfig& config);

/** The summary printed at the end of a run. */
std::string textSummary(const nlohmann::json& run);

/** perf_analyzer's CSV columns (times in microseconds), one row per run. */
std::string perfAnalyzerCsv(const std::vector<nlohmann::json>& runs);

/** HdrHistogram interval log (V2 compressed histograms, base64), one line per window. */
std::string hdrIntervalLog(const RunResult& result, double start_epoch_s);

/**
 * The run's recorded requests (LoadOptions::recording), one JSON object per line, in intended
 * send order: `intended`, `sent`, `first_byte` (HTTP with a response) and `done` as Unix
 * seconds (microseconds kept), `latency_ms` (done − intended, coordinated-omission corrected),
 * `service_ms` (done − sent), `status` (HTTP status or gRPC code; 0 without a response),
 * `error` (errorKindName: "none" when the request succeeded) and `header` (the recorded
 * response header's value; "" when absent).
 */
std::string requestsJsonl(const RunResult& result);

}  // namespace kh::loadgen
