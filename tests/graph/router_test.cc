// The router's node semantics, KServe's (cmd/router/main.go and its main_test.go), on a step
// client that answers from a table (the real HTTP path is tested end to end in
// tests/refstack/refstack_graph_test.cc).

#include "kh/graph/router.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <deque>
#include <map>

namespace kh::graph {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::Pair;

constexpr const char* kSuccess = R"({"predictions":[{"message":"SUCCESS"}]})";
constexpr const char* kError = R"({"detail":"Intentional 404 code"})";

/** Answers by URL; records every call. With `deferred`, answers wait until flush(). */
class TableClient : public StepClient {
 public:
  std::map<std::string, absl::StatusOr<StepResponse>> answers;
  std::vector<StepRequest> calls;
  bool deferred = false;
  std::deque<std::pair<std::string, Callback>> waiting;

  void call(StepRequest request, Callback done) override {
    std::string url = request.url;
    calls.push_back(std::move(request));
    if (deferred) {
      waiting.emplace_back(url, std::move(done));
      return;
    }
    answer(url, std::move(done));
  }
  void flush() {
    while (!waiting.empty()) {
      auto [url, done] = std::move(waiting.back());  // the last call finishes first
      waiting.pop_back();
      answer(url, std::move(done));
    }
  }

 private:
  void answer(const std::string& url, Callback done) {
    auto it = answers.find(url);
    if (it == answers.end()) return std::move(done)(absl::UnavailableError("connect: connection refused"));
    std::move(done)(it->second);
  }
};

/** Draws that give the Splitter the points asked for, in order. */
class FixedDraws : public common::RandomSource {
 public:
  explicit FixedDraws(std::vector<int> points) : points_(points.begin(), points.end()) {}
  uint64_t next() override {
    int p = points_.front();
    points_.pop_front();
    return static_cast<uint64_t>((static_cast<unsigned __int128>(p) << 64) / 100) + 1;
  }

 private:
  std::deque<int> points_;
};

struct Harness {
  TableClient client;
  FixedDraws draws{{}};
  RouterOptions options;

  Harness() {
    client.answers["http://success/v1/models/success:predict"] = StepResponse{200, kSuccess};
    client.answers["http://error/v1/models/error:predict"] = StepResponse{404, kError};
  }

  GraphResponse run(const std::string& spec, const std::string& input, const Headers& headers = {}) {
    auto graph = loadGraph("g", json::parse(spec));
    EXPECT_TRUE(graph.ok()) << graph.status();
    Router router(*graph, options, client, draws);
    std::optional<GraphResponse> out;
    router.route(input, headers, [&](GraphResponse r) { out = std::move(r); });
    client.flush();
    EXPECT_TRUE(out.has_value()) << "the router never answered";
    return out.value_or(GraphResponse{});
  }
};

const char* kSuccessUrl = "http://success/v1/models/success:predict";
const char* kErrorUrl = "http://error/v1/models/error:predict";

std::string step(const std::string& url, const std::string& extra = "") {
  return "{\"serviceUrl\":\"" + url + "\"" + (extra.empty() ? "" : "," + extra) + "}";
}

std::string graph(const std::string& type, const std::vector<std::string>& steps, const std::string& more = "") {
  std::string s = "{\"nodes\":{\"root\":{\"routerType\":\"" + type + "\",\"steps\":[";
  for (size_t i = 0; i < steps.size(); ++i) s += (i ? "," : "") + steps[i];
  return s + "]}" + more + "}}";
}

std::string failure(const std::string& cause) {
  // KServe's InferenceGraphRoutingError struct: "error" first.
  return R"({"error":"Failed to process request","cause":)" + json(cause).dump() + "}";
}

TEST(Sequence, RequestOrResponseFeedsEachStep) {
  Harness h;
  h.client.answers["http://a/"] = StepResponse{200, R"({"predictions":[1]})"};
  h.client.answers["http://b/"] = StepResponse{200, R"({"predictions":[2]})"};
  h.client.answers["http://c/"] = StepResponse{200, R"({"predictions":[3]})"};
  auto r = h.run(graph("Sequence", {step("http://a/"), step("http://b/", R"("data":"$response")"),
                                    step("http://c/", R"("data":"$request")")}),
                 R"({"instances":[0]})");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"predictions":[3]})");
  EXPECT_TRUE(r.json);
  ASSERT_EQ(h.client.calls.size(), 3u);
  EXPECT_EQ(h.client.calls[0].body, R"({"instances":[0]})");
  EXPECT_EQ(h.client.calls[1].body, R"({"predictions":[1]})");
  EXPECT_EQ(h.client.calls[2].body, R"({"instances":[0]})");
}

TEST(Sequence, SoftFailuresContinueAndTheLastStatusIsReturned) {
  Harness h;
  // KServe's scenario 1 (success -> error) and 2 (error -> success), Soft by default.
  auto one = h.run(graph("Sequence", {step(kSuccessUrl), step(kErrorUrl)}), "{}");
  EXPECT_EQ(one.status, 404);
  EXPECT_EQ(one.body, kError);
  auto two = h.run(graph("Sequence", {step(kErrorUrl), step(kSuccessUrl, R"("data":"$response")")}), "{}");
  EXPECT_EQ(two.status, 200);
  EXPECT_EQ(two.body, kSuccess);
  // The Soft failure's body became the next step's input.
  EXPECT_EQ(h.client.calls.back().body, kError);
}

TEST(Sequence, AHardFailureStopsTheSequence) {
  Harness h;
  // Scenario 3.
  auto r = h.run(graph("Sequence", {step(kErrorUrl, R"("dependency":"Hard")"), step(kSuccessUrl)}), "{}");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body, kError);
  EXPECT_EQ(h.client.calls.size(), 1u);
}

TEST(Sequence, ConditionsAreEvaluatedOnThePreviousResponse) {
  Harness h;
  h.client.answers["http://dog/"] = StepResponse{200, R"({"predictions":["dog"]})"};
  h.client.answers["http://breed/"] = StepResponse{200, R"({"predictions":["husky"]})"};
  std::string g = graph("Sequence", {step("http://dog/"), step("http://breed/", R"j("condition":"[@this].#(predictions.0==\"dog\")")j")});
  EXPECT_EQ(h.run(g, "{}").body, R"({"predictions":["husky"]})");
  // Not matched: the previous response, with 200 (KServe v0.15.1 on), even after a failure.
  h.client.answers["http://dog/"] = StepResponse{500, R"({"predictions":["cat"]})"};
  auto r = h.run(g, "{}");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"predictions":["cat"]})");
  // A previous response that is not JSON: 500 "invalid response".
  h.client.answers["http://dog/"] = StepResponse{200, "not json"};
  auto bad = h.run(g, "{}");
  EXPECT_EQ(bad.status, 500);
  EXPECT_EQ(bad.body, failure("invalid response"));
  // On the first step there is no previous response: always 500.
  auto first = h.run(graph("Sequence", {step(kSuccessUrl, R"("condition":"instances")")}), R"({"instances":[1]})");
  EXPECT_EQ(first.status, 500);
  EXPECT_EQ(first.body, failure("invalid response"));
}

TEST(Sequence, MapPredictionsToInstances) {
  Harness h;
  h.client.answers["http://a/"] = StepResponse{200, R"({"predictions":[[1.0,2.5]],"model_name":"a"})"};
  h.client.answers["http://b/"] = StepResponse{200, "{}"};
  h.run(graph("Sequence", {step("http://a/"), step("http://b/", R"("data":"$response","mapPredictionsToInstances":true)")}),
        "{}");
  EXPECT_EQ(h.client.calls[1].body, R"({"instances":[[1,2.5]]})");
}

TEST(Switch, TheFirstMatchingConditionOnTheInputWins) {
  Harness h;
  // Scenario 4.
  std::string g = graph("Switch", {step(kErrorUrl, R"j("condition":"[@this].#(decision_picker==ERROR)")j"),
                                   step(kSuccessUrl, R"j("condition":"[@this].#(decision_picker==SUCCESS)")j")});
  auto error = h.run(g, R"({"decision_picker":"ERROR"})");
  EXPECT_EQ(error.status, 404);
  EXPECT_EQ(error.body, kError);
  auto success = h.run(g, R"({"decision_picker":"SUCCESS"})");
  EXPECT_EQ(success.status, 200);
  EXPECT_EQ(success.body, kSuccess);
  auto none = h.run(g, R"({"decision_picker":"NO_MATCH"})");
  EXPECT_EQ(none.status, 404);
  EXPECT_EQ(none.body, R"({"error":"Failed to process request","cause":"None of the routes matched with the switch condition"})");
  // Input that is not JSON matches nothing.
  EXPECT_EQ(h.run(g, "decision_picker=ERROR").status, 404);
  // A step without a condition never matches (gjson's empty path finds nothing).
  EXPECT_EQ(h.run(graph("Switch", {step(kSuccessUrl)}), "{}").status, 404);
}

TEST(Splitter, TheDrawPicksByCumulativeWeight) {
  Harness h;
  h.draws = FixedDraws({0, 29, 30, 99});
  h.client.answers["http://a/"] = StepResponse{200, R"("a")"};
  h.client.answers["http://b/"] = StepResponse{200, R"("b")"};
  auto graph_json = json::parse(graph("Splitter", {step("http://a/", R"("weight":30)"), step("http://b/", R"("weight":70)")}));
  auto g = loadGraph("g", graph_json);
  ASSERT_TRUE(g.ok());
  Router router(*g, h.options, h.client, h.draws);
  std::vector<std::string> got;
  for (int i = 0; i < 4; ++i) router.route("{}", {}, [&](GraphResponse r) { got.push_back(r.body); });
  EXPECT_THAT(got, ElementsAre(R"("a")", R"("a")", R"("b")", R"("b")"));
}

TEST(Ensemble, AnswersAreMergedByStepNameOrIndex) {
  Harness h;
  // Scenario 7: the Soft failure is embedded.
  auto r = h.run(graph("Ensemble", {step(kSuccessUrl, R"("name":"rootStep1")"), step(kErrorUrl, R"("name":"rootStep2")")}),
                 "{}");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"rootStep1":{"predictions":[{"message":"SUCCESS"}]},"rootStep2":{"detail":"Intentional 404 code"}})");
  // Unnamed steps are keyed by index; keys come out sorted, numbers as Go's float64.
  h.client.answers["http://n/"] = StepResponse{200, R"({"z":1.0,"a":[1e-7,2.50,1e21,"<&>"]})"};
  auto n = h.run(graph("Ensemble", {step("http://n/"), step(kSuccessUrl, R"("name":"b")")}), "{}");
  EXPECT_EQ(n.body, R"({"0":{"a":[1e-7,2.5,1e+21,"\u003c\u0026\u003e"],"z":1},"b":{"predictions":[{"message":"SUCCESS"}]}})");
}

TEST(Ensemble, TheFirstHardFailureInStepOrderDecides) {
  Harness h;
  // Scenario 8.
  h.client.answers["http://hard500/"] = StepResponse{503, R"({"b":2,"a":1})"};
  auto r = h.run(graph("Ensemble", {step(kSuccessUrl), step(kErrorUrl, R"("dependency":"Hard")"),
                                    step("http://hard500/", R"("dependency":"Hard")"), step(kSuccessUrl)}),
                 "{}");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body, kError);
  auto second = h.run(graph("Ensemble", {step("http://hard500/", R"("dependency":"Hard")"), step(kErrorUrl, R"("dependency":"Hard")")}),
                      "{}");
  EXPECT_EQ(second.status, 503);
  EXPECT_EQ(second.body, R"({"a":1,"b":2})");  // re-encoded, as KServe's json.Marshal
}

TEST(Ensemble, AnAnswerThatIsNotAnObjectFailsTheNode) {
  Harness h;
  h.client.answers["http://array/"] = StepResponse{200, "[1,2]"};
  h.client.answers["http://text/"] = StepResponse{200, "hello"};
  auto a = h.run(graph("Ensemble", {step(kSuccessUrl), step("http://array/")}), "{}");
  EXPECT_EQ(a.status, 500);
  EXPECT_EQ(a.body, failure("json: cannot unmarshal array into Go value of type map[string]interface {}"));
  auto t = h.run(graph("Ensemble", {step("http://text/")}), "{}");
  EXPECT_EQ(t.body, failure("invalid character 'h' looking for beginning of value"));
}

TEST(Ensemble, StepsRunInParallel) {
  Harness h;
  h.client.deferred = true;
  auto g = loadGraph("g", json::parse(graph("Ensemble", {step(kSuccessUrl, R"("name":"a")"), step(kSuccessUrl, R"("name":"b")"),
                                                         step(kErrorUrl, R"("name":"c")")})));
  ASSERT_TRUE(g.ok());
  Router router(*g, h.options, h.client, h.draws);
  std::optional<GraphResponse> out;
  router.route("{}", {}, [&](GraphResponse r) { out = std::move(r); });
  EXPECT_EQ(h.client.waiting.size(), 3u) << "every step is in flight before any answers";
  EXPECT_FALSE(out.has_value());
  h.client.flush();  // answers arrive last first
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(json::parse(out->body).size(), 3u);
}

// KServe's scenarios 5, 6, 9 and 10: a Switch or Splitter node inside a Sequence.
TEST(Nested, TheStepInTheSequenceDecidesSoftOrHard) {
  for (const char* inner : {"Switch", "Splitter"}) {
    for (bool hard : {false, true}) {
      Harness h;
      h.draws = FixedDraws({50});
      std::string inner_step = std::string(inner) == "Switch" ? step(kErrorUrl, R"j("condition":"[@this].#(decision_picker==ERROR)")j")
                                                              : step(kErrorUrl, R"("weight":100)");
      std::string spec = R"({"nodes":{"root":{"routerType":"Sequence","steps":[{"name":"rootStep1","nodeName":"node1")" +
                         std::string(hard ? R"(,"dependency":"Hard")" : "") + R"(},)" + step(kSuccessUrl, R"("name":"rootStep2")") +
                         R"(]},"node1":{"routerType":")" + inner + R"(","steps":[)" + inner_step + "]}}}";
      auto r = h.run(spec, R"({"decision_picker":"ERROR"})");
      EXPECT_EQ(r.status, hard ? 404 : 200) << inner << (hard ? " Hard" : " Soft");
      EXPECT_EQ(r.body, hard ? kError : kSuccess) << inner;
    }
  }
}

TEST(Nested, AnErrorInsideANodeIsA500WithItsCause) {
  Harness h;
  std::string spec = R"({"nodes":{"root":{"routerType":"Sequence","steps":[{"nodeName":"pick"}]},
    "pick":{"routerType":"Switch","steps":[{"serviceUrl":"http://success/","condition":"nothing"}]}}})";
  auto r = h.run(spec, "{}");
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(r.body, failure("None of the routes matched with the switch condition"));
  // A node that does not exist: KServe's zero-value router type.
  auto missing = h.run(R"({"nodes":{"root":{"routerType":"Sequence","steps":[{"nodeName":"nope"}]}}})", "{}");
  EXPECT_EQ(missing.body, failure("invalid route type: "));
  // A cycle is cut at the depth limit.
  auto cycle = h.run(R"({"nodes":{"root":{"routerType":"Sequence","steps":[{"nodeName":"root"}]}}})", "{}");
  EXPECT_EQ(cycle.status, 500);
  EXPECT_THAT(cycle.body, ::testing::HasSubstr("nested deeper than 64"));
}

TEST(Errors, AnUnreachableStepIs500WithTheCause) {
  Harness h;
  auto r = h.run(graph("Sequence", {step("http://nowhere/v1/models/x:predict")}), "{}");
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(r.body, failure("Post \"http://nowhere/v1/models/x:predict\": connect: connection refused"));
  EXPECT_TRUE(r.json);
  ASSERT_EQ(r.steps.size(), 1u);
  EXPECT_EQ(r.steps[0].status, 0);
  EXPECT_EQ(r.steps[0].error, "connect: connection refused");
}

TEST(Errors, ABodyThatIsNotJsonGetsNoJsonContentType) {
  Harness h;
  h.client.answers["http://text/"] = StepResponse{200, "plain"};
  auto r = h.run(graph("Sequence", {step("http://text/")}), "{}");
  EXPECT_EQ(r.body, "plain");
  EXPECT_FALSE(r.json);
}

TEST(Headers, PatternsAreUnanchoredRegexpsOnCanonicalNames) {
  std::vector<std::string> warnings;
  Harness h;
  h.options.propagate = HeaderPatterns::parse("Authorization,Test-Header-*,*Trace-Id*", &warnings);
  EXPECT_EQ(h.options.propagate.size(), 2u);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_THAT(warnings[0], ::testing::HasSubstr("\"*Trace-Id*\""));
  h.run(graph("Sequence", {step(kSuccessUrl)}), "{}",
        {{"authorization", "Bearer x"}, {"test-header-1", "one"}, {"X-Test-Header-2", "two"}, {"Other", "no"},
         {"X-B3-Trace-Id", "t"}});
  // "Test-Header-*" is "Test-Header" then any number of "-": unanchored, it matches both.
  EXPECT_THAT(h.client.calls[0].headers,
              ElementsAre(Pair("Authorization", "Bearer x"), Pair("Test-Header-1", "one"), Pair("X-Test-Header-2", "two"),
                          Pair("Content-Type", "application/json")));
}

TEST(Headers, NoPatternsPropagateNothingButContentType) {
  Harness h;
  h.run(graph("Sequence", {step(kSuccessUrl)}), "{}", {{"Authorization", "x"}, {"Content-Type", "text/plain"}});
  EXPECT_THAT(h.client.calls[0].headers, ElementsAre(Pair("Content-Type", "application/json")));
  // A propagated Content-Type is kept.
  h.options.propagate = HeaderPatterns::parse("Content-Type", nullptr);
  h.run(graph("Sequence", {step(kSuccessUrl)}), "{}", {{"content-type", "text/plain"}});
  EXPECT_THAT(h.client.calls[1].headers, ElementsAre(Pair("Content-Type", "text/plain")));
}

TEST(Headers, CanonicalKeys) {
  EXPECT_EQ(canonicalHeaderKey("content-type"), "Content-Type");
  EXPECT_EQ(canonicalHeaderKey("X-B3-TRACEID"), "X-B3-Traceid");
  EXPECT_EQ(canonicalHeaderKey("bad key"), "bad key");
}

TEST(Timeouts, TheServiceClientTimeoutGoesWithEveryStep) {
  Harness h;
  h.options.step_timeout = std::chrono::seconds(7);
  h.run(graph("Sequence", {step(kSuccessUrl), step(kSuccessUrl)}), "{}");
  ASSERT_EQ(h.client.calls.size(), 2u);  // else the loop below checks nothing
  for (const auto& c : h.client.calls) EXPECT_EQ(c.timeout, std::chrono::milliseconds(7000));
}

TEST(Trace, EveryServiceCallIsRecorded) {
  Harness h;
  auto r = h.run(R"({"nodes":{"root":{"routerType":"Sequence","steps":[{"name":"first","serviceUrl":"http://success/v1/models/success:predict"},{"nodeName":"ens"}]},
    "ens":{"routerType":"Ensemble","steps":[{"name":"x","serviceUrl":"http://success/v1/models/success:predict"},{"serviceUrl":"http://error/v1/models/error:predict"}]}}})",
                 "{}");
  ASSERT_EQ(r.steps.size(), 3u);
  EXPECT_EQ(r.steps[0].node, "root");
  EXPECT_EQ(r.steps[0].step, "first");
  EXPECT_EQ(r.steps[0].status, 200);
  auto header = json::parse(stepsHeader(r.steps));
  ASSERT_EQ(header.size(), 3u);
  EXPECT_EQ(header[0]["target"], kSuccessUrl);
  for (const auto& s : header) EXPECT_TRUE(s.contains("ms") && s.contains("start_ms"));
}

}  // namespace
}  // namespace kh::graph
