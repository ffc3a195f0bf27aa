#pragma once
// Self-contained HTML reports with inline SVG plots (no scripts, no external files), and the
// comparison of several load runs with regression thresholds.

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace kh::report {

/** One line series of a plot. */
struct Series {
  std::string name;
  std::vector<std::pair<double, double>> points;
  bool dashed = false;
  int color = -1;  // palette index; -1 = by position
};

struct PlotOptions {
  std::string title;
  std::string x_label;
  std::string y_label;
  /** x holds percentiles (0..100) drawn on the "nines" scale: 1/(1-p). */
  bool percentile_x = false;
  bool y_from_zero = true;
  /** Optional vertical markers (x, label), e.g. scale events. */
  std::vector<std::pair<double, std::string>> markers;
};

/** An inline SVG line plot. */
std::string svgLinePlot(const std::vector<Series>& series, const PlotOptions& options);

/** Escapes text for HTML. */
std::string escapeHtml(std::string_view text);

/** A page for one run or several (overlaid): summary, percentile curves, time series, windows. */
std::string runReportHtml(const std::vector<nlohmann::json>& runs, const std::string& title);

/** A regression rule: a metric and the change that flags it, e.g. p99 +10%, throughput -5%. */
struct Threshold {
  std::string metric;  // throughput, p50, p90, p99, p999, max, error_rate
  double percent = 0;  // signed: +10 flags rises beyond 10%, -5 flags drops beyond 5%
  bool drop = false;   // written with a leading '-' (so "-0%" flags any drop)
};

/** Parses "p99=+10%,throughput=-5%". */
absl::StatusOr<std::vector<Threshold>> parseThresholds(const std::string& text);

/**
 * Compares every run with the first (the baseline).
 * @return {"baseline", "rows": [{label, metrics, changes}], "regressions": [...]}.
 */
nlohmann::json compareRuns(const std::vector<nlohmann::json>& runs,
                           const std::vector<Threshold>& thresholds);

std::string compareMarkdown(const nlohmann::json& comparison);
std::string compareHtml(const std::vector<nlohmann::json>& runs, const nlohmann::json& comparison);

}  // namespace kh::report
