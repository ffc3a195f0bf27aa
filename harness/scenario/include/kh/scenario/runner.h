#pragma once
// Runs a scenario's steps against a target while an observer thread records pod counts per
// revision and the target's events; assertions are evaluated on what was observed. Results are
// JSON documents (schema "kserve-harness/scenario-run/v1"), which the report renders.

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "kh/common/time_source.h"
#include "kh/scenario/scenario.h"
#include "kh/scenario/target.h"
#include "nlohmann/json.hpp"

namespace kh::scenario {

enum class Verdict { kPass, kFail, kSkip };
const char* verdictName(Verdict v);

/** One assertion's outcome: what was expected, what was measured, and why it passed or not. */
struct AssertionResult {
  std::string name;  // e.g. "canary_split (load canary)"
  Verdict verdict = Verdict::kSkip;
  std::string expected;
  std::string measured;
  std::string why;
  nlohmann::json data = nlohmann::json::object();  // figures for plots
};

struct RunOptions {
  /** Progress lines ("[canary] load canary: 2000 requests ..."). */
  std::function<void(const std::string&)> log;
  /** Where per-scenario files (conformance results) go; empty = none. */
  std::filesystem::path out_dir;
  /** The endpoint target's model name when the scenario names none. */
  std::string model;
  /** Conformance cases (default: protocols/conformance). */
  std::string conformance_dir;
};

struct ScenarioResult {
  std::string name;
  std::string description;
  std::string file;
  std::string target;
  Verdict verdict = Verdict::kSkip;
  std::string skip_reason;  // when skipped
  std::string error;        // a step that could not run (a failure)
  double duration_s = 0;
  std::vector<AssertionResult> assertions;
  /** Everything else for the report: steps, pod samples, events, loads, conformance. */
  nlohmann::json observations = nlohmann::json::object();
};

ScenarioResult runScenario(const Scenario& scenario, Target& target, const RunOptions& options,
                           const common::TimeSource& time);

nlohmann::json resultToJson(const ScenarioResult& result);

}  // namespace kh::scenario
