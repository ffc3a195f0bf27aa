#pragma once
// Scenario files: YAML that names manifests to apply, config-autoscaler overrides and an ordered
// list of steps (apply, delete, patch, wait, load, idle, conform, assert, join). The format is
// documented field by field in scenarios/README.md. The parser checks every key and value and
// reports problems as "file:line:column: message".

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace kh::scenario {

/** Where something was written (1-based), for messages. */
struct Location {
  int line = 0;
  int column = 0;
};

enum class StepKind { kApply, kDelete, kPatch, kWait, kLoad, kIdle, kConform, kAssert, kJoin, kFault };
const char* stepKindName(StepKind kind);

/** What a wait step waits for. */
enum class WaitFor { kReady, kReplicas, kZero, kEvent };

struct Step {
  StepKind kind = StepKind::kIdle;
  Location where;
  /** A name other steps refer to (loads; optional elsewhere). */
  std::string name;
  std::string isvc;  // the InferenceService the step is about (default: the scenario's)
  /** The InferenceGraph the step is about instead (wait for ready, load, conform). */
  std::string graph;

  // apply: a manifest file (resolved against the scenario's directory) or inline documents.
  std::filesystem::path file;
  std::string inline_yaml;

  // patch: a JSON merge patch (RFC 7386) of the InferenceService.
  nlohmann::json merge_patch;

  // wait
  WaitFor wait_for = WaitFor::kReady;
  int replicas = 0;
  std::string revision;        // replicas: "" = all revisions, "latest", or a revision name
  nlohmann::json event_match;  // event: fields an event must have (type, panic, ...)
  double timeout_s = 120;

  // load: `harness load` options (long names without dashes) plus the scenario keys.
  nlohmann::json load_options = nlohmann::json::object();
  std::string host;         // "" (the service host), a tag ("latest", "prev") or a full Host
  bool concurrent = false;  // runs beside the following steps until a `join`
  bool per_request = false; // records every request's revision, status and latency

  // idle
  double idle_s = 0;

  // fault: a signal to every process of the InferenceService's pods' model containers.
  int signal = 0;
  std::string signal_name;  // "SIGKILL", "SIGSTOP", "SIGCONT", "SIGTERM"

  // conform
  std::string protocols = "v1,v2,grpc";
  std::string model;  // default: the ISVC's name
  std::string filter;

  // assert: its kind (cold_start, scale_to_zero, canary_split, tag_routing, no_errors,
  // latency_slo, scaled_up, compare, graph_output, graph_split, graph_breakdown) and parameters.
  std::string assertion;
  nlohmann::json params = nlohmann::json::object();

  // join: load names ("" = every concurrent load).
  std::vector<std::string> join;
};

/**
 * Settings of the stack itself, which no manifest field reaches (Knative fixes them, or sets them
 * per installation). Only a target that starts its own stack (the embedded one) can honour them;
 * elsewhere a scenario that sets any is skipped, saying so.
 */
struct StackSettings {
  /** Requests the activator holds per revision while it has no ready pod; beyond them, 503. */
  std::optional<int> activator_queue_limit;

  bool empty() const { return !activator_queue_limit; }
};

struct Scenario {
  std::string name;
  std::string description;
  std::filesystem::path file;  // where it was read from
  std::filesystem::path dir;   // relative paths resolve here
  /** Target defaults. */
  std::string ns = "default";
  std::string isvc;
  std::string model;  // for the endpoint target: the model name behind the URL
  double autoscaler_tick_s = 0;  // 0 = the target's default
  /** What the scenario needs: "control-plane", "serverless". */
  std::vector<std::string> requires_;
  /** Manifests applied (in order) before the steps. */
  std::vector<std::filesystem::path> manifests;
  /** Knative config-autoscaler keys passed to the target. */
  std::map<std::string, std::string> autoscaler;
  StackSettings stack;
  std::vector<Step> steps;
  /** Default seconds for waits without their own timeout. */
  double default_timeout_s = 120;
};

/** Parses a scenario text; `source` names it in messages; `dir` resolves relative paths. */
absl::StatusOr<Scenario> parseScenario(const std::string& text, const std::string& source,
                                       const std::filesystem::path& dir);

/** Reads and parses a scenario file. */
absl::StatusOr<Scenario> loadScenarioFile(const std::filesystem::path& path);

/** The default suite: every *.yaml in `dir`, sorted by file name. */
absl::StatusOr<std::vector<Scenario>> loadSuite(const std::filesystem::path& dir);

/** scenarios/ of the source tree, or $KH_SCENARIO_DIR. */
std::filesystem::path defaultSuiteDir();

}  // namespace kh::scenario
