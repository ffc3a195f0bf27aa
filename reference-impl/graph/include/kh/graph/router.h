#pragma once
// The InferenceGraph router as KServe runs it (cmd/router/main.go): a graph's nodes executed on
// one request, the steps called over HTTP through a StepClient. The semantics are KServe's, not
// its docs' (see shared/specs/kserve.md section 5):
//  - Sequence: steps in order; a step gets the node's input, or the previous step's response
//    when `data: $response`; a condition is evaluated on the previous response (not JSON: 500
//    "invalid response"; no match: the previous response with 200); a Hard step that fails
//    (non-2xx) ends the node with its answer; the last step's answer is the node's.
//  - Switch: the first step whose condition exists on the input (which must be JSON) runs; none:
//    404 "None of the routes matched with the switch condition".
//  - Splitter: a draw in [0,100) picks the first step whose cumulative weight exceeds it.
//  - Ensemble: every step at once on the input; each answer must be a JSON object (else 500);
//    the first Hard failure in step order is the node's answer; otherwise 200 and an object of the
//    answers by step name (or index), Soft failures included, re-encoded as Go's encoding/json.
//  - A step or nested node that fails outright (unreachable, a nested node's error) makes the
//    node fail with 500; at the top, an error is {"error":"Failed to process request","cause":..}.
//
// Asynchronous throughout: route() returns at once and calls back when the graph is done, so a
// worker thread serves other requests meanwhile and an Ensemble's steps are in flight together.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "kh/common/random.h"
#include "kh/graph/spec.h"

namespace kh::graph {

using Headers = std::vector<std::pair<std::string, std::string>>;

/** One step's HTTP call: always a POST of `body` to `url`. */
struct StepRequest {
  std::string url;
  std::string body;
  Headers headers;  // the propagated headers and Content-Type
  /** routerTimeouts.serviceClient; none: the call waits as long as the step takes. */
  std::optional<std::chrono::milliseconds> timeout;
};

struct StepResponse {
  int status = 0;
  std::string body;
};

/** Calls a step. The callback runs exactly once, on any thread; an error is a failed call. */
class StepClient {
 public:
  using Callback = absl::AnyInvocable<void(absl::StatusOr<StepResponse>) &&>;
  virtual ~StepClient() = default;
  virtual void call(StepRequest request, Callback done) = 0;
};

/** What one service call of a graph request took (the graph's latency breakdown). */
struct StepTrace {
  std::string node;
  std::string step;    // the step's name, or its index
  std::string target;  // the URL called
  int status = 0;      // 0: the call failed (see error)
  double ms = 0;
  /** Since the graph request arrived, so a report can draw the steps on one time line. */
  double start_ms = 0;
  std::string error;
};

/** The graph's answer. */
struct GraphResponse {
  int status = 200;
  std::string body;
  /** Content-Type: application/json is set only when the body is valid JSON (as KServe). */
  bool json = false;
  std::vector<StepTrace> steps;
};

/** The Kh-Graph-Steps response header's value: the steps as a JSON array. */
std::string stepsHeader(const std::vector<StepTrace>& steps);

/**
 * PROPAGATE_HEADERS: comma-separated regular expressions matched unanchored on canonical header
 * names (Go's regexp.MatchString on textproto's canonical form). A pattern that does not compile
 * is skipped with a warning, as KServe's router logs and goes on.
 */
class HeaderPatterns {
 public:
  HeaderPatterns() = default;
  /** @param warnings gets one line per skipped pattern. */
  static HeaderPatterns parse(std::string_view comma_separated, std::vector<std::string>* warnings);

  /** The headers of `incoming` to send to every step, in pattern order, each name once. */
  Headers select(const Headers& incoming) const;
  size_t size() const { return patterns_.size(); }

 private:
  std::vector<std::regex> patterns_;
};

/** Go's textproto.CanonicalMIMEHeaderKey: "content-type" -> "Content-Type". */
std::string canonicalHeaderKey(std::string_view name);

/** Go's encoding/json re-encoding of a JSON value (sorted keys, float64 numbers, its escapes). */
std::string goJson(const nlohmann::json& value);

struct RouterOptions {
  HeaderPatterns propagate;
  /** routerTimeouts.serviceClient. */
  std::optional<std::chrono::milliseconds> step_timeout;
  /** Nodes nested deeper fail with 500 (KServe has no cycle check and overflows its stack). */
  int max_depth = 64;
};

class Router {
 public:
  using Callback = absl::AnyInvocable<void(GraphResponse) &&>;

  /** The graph must be loaded (loadGraph); `client` and `random` must outlive the router. */
  Router(GraphSpec graph, RouterOptions options, StepClient& client, common::RandomSource& random);

  /** Runs the graph's root node on `input`; `done` runs exactly once, on any thread. */
  void route(std::string input, const Headers& headers, Callback done) const;

  const GraphSpec& graph() const { return graph_; }

 private:
  struct Request;
  struct Outcome;
  using NodeDone = absl::AnyInvocable<void(Outcome) &&>;
  void runNode(const std::shared_ptr<Request>& request, const std::string& node, std::shared_ptr<const std::string> input,
               int depth, NodeDone done) const;
  void runStep(const std::shared_ptr<Request>& request, const std::string& node, size_t index,
               std::shared_ptr<const std::string> input, int depth, NodeDone done) const;
  void runSequence(const std::shared_ptr<Request>& request, const std::string& node, size_t index,
                   std::shared_ptr<const std::string> input, std::shared_ptr<const std::string> previous,
                   int previous_status, int depth, NodeDone done) const;
  void runEnsemble(const std::shared_ptr<Request>& request, const std::string& node,
                   std::shared_ptr<const std::string> input, int depth, NodeDone done) const;

  GraphSpec graph_;
  RouterOptions options_;
  StepClient& client_;
  common::RandomSource& random_;
};

}  // namespace kh::graph
