#pragma once
// The report of a scenario run: reports/<timestamp>/ with index.html (self-contained, inline SVG:
// pods and request rate over time with scale events, cold-start breakdowns, latency percentile
// curves, canary splits with their confidence intervals, a pass/fail table), summary.md,
// results.json (schema "kserve-harness/scenario-report/v1") and junit.xml.

#include <filesystem>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "nlohmann/json.hpp"

namespace kh::scenario {

/** The whole run: {"schema", "started", "target", "duration_s", "scenarios": [resultToJson...]}. */
nlohmann::json reportJson(const std::vector<nlohmann::json>& scenarios, const std::string& target,
                          const std::string& started, double duration_s);

std::string reportHtml(const nlohmann::json& report);
std::string reportMarkdown(const nlohmann::json& report);
std::string reportJunit(const nlohmann::json& report);

/** Writes index.html, summary.md, results.json and junit.xml into `dir` (created). */
absl::Status writeReport(const std::filesystem::path& dir, const nlohmann::json& report);

/** A horizontal stacked-bar SVG of cold-start breakdowns (offsets from arrival, ms). */
std::string svgColdStartBreakdown(const nlohmann::json& samples);

/** A waterfall SVG of an InferenceGraph's steps (a graph_breakdown assertion's data). */
std::string svgGraphBreakdown(const nlohmann::json& data);

/** An SVG of a measured proportion with its interval against the expected value (percent); `label` is its title. */
std::string svgSplitInterval(const std::string& label, double expected, double measured, double low,
                             double high);

}  // namespace kh::scenario
