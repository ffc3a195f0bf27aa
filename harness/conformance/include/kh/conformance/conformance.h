#pragma once
// The protocol conformance suite: data-driven cases (YAML under protocols/conformance/) run over
// real HTTP and gRPC against a target, with results as text lines, JUnit XML and JSON. Graph
// cases (protocol `graph`) check an InferenceGraph's answers: each names the graph it runs
// against, one of the shipped graphs of protocols/conformance/graphs/.

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace kh::conformance {

/** One case as written in a suite file (after datatype-matrix expansion). */
struct Case {
  std::string id;
  std::string title;
  std::string section;   // the spec section it checks, e.g. "2.3"
  std::string tag;       // SPEC (written protocol) or REF (KServe's reference server)
  std::string level;     // MUST or SHOULD
  std::string protocol;  // v1, v2, grpc or graph
  std::string graph;     // graph cases: the InferenceGraph they run against
  std::string suite;     // file stem
  nlohmann::json spec;   // request and expect blocks, variables not yet substituted
};

/**
 * Loads every *.yaml suite in `dir` (sorted by name; cases keep file order).
 * @return InvalidArgument naming the file, line and column of a bad case.
 */
absl::StatusOr<std::vector<Case>> loadCases(const std::string& dir);

/** Parses one suite document (for tests). */
absl::StatusOr<std::vector<Case>> parseSuite(const std::string& yaml_text, const std::string& name);

struct RunOptions {
  std::string http_host;
  uint16_t http_port = 0;
  std::optional<std::string> grpc_target;  // host:port
  std::string model;
  /** "all", or any of v1, v2, grpc, graph (comma-separated). */
  std::string protocols = "all";
  /**
   * The graphs whose cases run ("all": every graph's); none: graph cases are skipped. Model
   * cases need `model`; a run of graph cases only needs none.
   */
  std::vector<std::string> graphs;
  /**
   * Host header of a graph case's requests; "{graph}" is replaced by the case's graph. Empty:
   * host:port (a graph router reached directly).
   */
  std::string graph_host = "{graph}-default.example.com";
  /** A V2 inference request JSON whose inputs are the sample (else made from metadata). */
  std::optional<std::string> sample_file;
  /**
   * Demo samples (<name>.json, V2 requests) for models whose metadata lists no inputs and that
   * are called <name> or end in -<name> (iris); the closest name wins (exact, then the longest
   * suffix). Empty: none. Default: <case dir>/samples.
   */
  std::string samples_dir;
  /** Told once, before the first result, when the suite works around the target (a missing
   *  description of inputs); the same text is in Summary::notice. */
  std::function<void(const std::string&)> on_notice;
  /** Only cases whose id contains this text. */
  std::string filter;
  std::chrono::milliseconds timeout{10'000};
  /**
   * Host header and gRPC :authority of every request when set (a target behind an ingress that
   * routes by host); otherwise host:port as usual.
   */
  std::string authority;
};

enum class Outcome { kPass, kFail, kSkip };

struct CaseResult {
  const Case* test = nullptr;
  Outcome outcome = Outcome::kSkip;
  std::string detail;  // why it failed or was skipped
  double seconds = 0;
};

struct Summary {
  int passed = 0, failed = 0, skipped = 0, must_failed = 0;
  /** What the suite could not take from the target and what it did instead ("the model's
   *  metadata lists no inputs: ..."); empty when nothing was missing. */
  std::string notice;
  std::vector<CaseResult> results;
};

/** Raised when the target cannot be reached at all (exit code 2). */
struct Unreachable {
  std::string message;
};

/**
 * Runs the cases in order; `on_result` sees each result as it comes (for live output).
 * @return Unavailable when neither the HTTP nor the gRPC target answers.
 */
absl::StatusOr<Summary> runCases(const std::vector<Case>& cases, const RunOptions& options,
                                 const std::function<void(const CaseResult&)>& on_result);

/** One text line per result: "PASS  ID  [SPEC MUST 2.1 v2] title" (+ expected vs got). */
std::string formatResult(const CaseResult& result);
std::string junitXml(const Summary& summary, const RunOptions& options);
nlohmann::json resultsJson(const Summary& summary, const RunOptions& options);

/** The default case directory (protocols/conformance of the source tree, or $KH_CONFORMANCE_DIR). */
std::string defaultCaseDir();

}  // namespace kh::conformance
