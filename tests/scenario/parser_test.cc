// The scenario parser: every shipped scenario parses; bad files are refused with line:column.

#include "kh/scenario/scenario.h"

#include "gtest/gtest.h"
#include "kh/common/strings.h"

namespace kh::scenario {
namespace {

const std::filesystem::path kScenarios = std::filesystem::path(KH_TEST_SOURCE_DIR) / "scenarios";

std::string error(const std::string& text) {
  auto s = parseScenario(text, "bad.yaml", kScenarios);
  if (s.ok()) return "parsed";
  return std::string(common::toStd(s.status().message()));
}

TEST(ScenarioParser, EveryShippedScenarioParses) {
  auto suite = loadSuite(kScenarios);
  ASSERT_TRUE(suite.ok()) << suite.status();
  EXPECT_GE(suite->size(), 7u);
  std::set<std::string> names;
  for (const auto& s : *suite) {
    EXPECT_FALSE(s.description.empty()) << s.name;
    EXPECT_FALSE(s.steps.empty()) << s.name;
    EXPECT_TRUE(names.insert(s.name).second) << "duplicate name " << s.name;
  }
  for (const char* want : {"conformance", "cold-start", "scale-to-zero", "burst-panic", "concurrency-backpressure",
                           "canary-rollout", "runtime-comparison", "inference-graph-sequence", "inference-graph-switch",
                           "inference-graph-splitter", "inference-graph-ensemble"}) {
    EXPECT_TRUE(names.count(want)) << want;
  }
}

TEST(ScenarioParser, ReadsEveryStepKind) {
  auto s = parseScenario(R"(name: all
description: every step
target: {isvc: svc, autoscaler_tick: 500ms}
requires: [control-plane]
autoscaler: {stable-window: 6s, scale-to-zero-grace-period: 1s}
manifests: [manifests/xgboost-iris.yaml]
steps:
  - apply: manifests/dense-iris.yaml
  - apply: {yaml: "kind: InferenceService"}
  - patch: {merge: {spec: {predictor: {canaryTrafficPercent: 20}}}}
  - wait: {for: replicas, replicas: 2, revision: latest, timeout: 1m}
  - load: {name: a, rate: 100, arrival: poisson, duration: 2s, concurrent: true, per_request: true, host: latest}
  - idle: 500ms
  - join: a
  - conform: {protocols: [v1, grpc]}
  - assert: {canary_split: {load: a, confidence: 0.99}}
  - delete: svc
)",
                         "all.yaml", kScenarios);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->autoscaler.at("stable-window"), "6s");
  EXPECT_DOUBLE_EQ(s->autoscaler_tick_s, 0.5);
  ASSERT_EQ(s->steps.size(), 10u);
  EXPECT_EQ(s->steps[0].kind, StepKind::kApply);
  EXPECT_EQ(s->steps[0].where.line, 8);
  EXPECT_EQ(s->steps[0].where.column, 5);
  EXPECT_EQ(s->steps[2].merge_patch["spec"]["predictor"]["canaryTrafficPercent"], 20);
  EXPECT_EQ(s->steps[3].wait_for, WaitFor::kReplicas);
  EXPECT_EQ(s->steps[3].replicas, 2);
  EXPECT_DOUBLE_EQ(s->steps[3].timeout_s, 60);
  EXPECT_EQ(s->steps[3].isvc, "svc");
  EXPECT_TRUE(s->steps[4].concurrent);
  EXPECT_TRUE(s->steps[4].per_request);
  EXPECT_DOUBLE_EQ(s->steps[4].load_options["rate"], 100);
  EXPECT_DOUBLE_EQ(s->steps[4].load_options["duration"], 2);
  EXPECT_DOUBLE_EQ(s->steps[5].idle_s, 0.5);
  EXPECT_EQ(s->steps[7].protocols, "v1,grpc");
  EXPECT_EQ(s->steps[8].assertion, "canary_split");
  EXPECT_DOUBLE_EQ(s->steps[8].params["confidence"], 0.99);
  EXPECT_EQ(s->steps[9].isvc, "svc");
}

TEST(ScenarioParser, RejectsWithLineAndColumn) {
  EXPECT_EQ(error("name: x\nsteps:\n  - idle: 1s\ncolour: blue\n"),
            "bad.yaml:4:1: unknown key \"colour\" in the scenario (allowed: autoscaler, description, manifests, name, "
            "requires, stack, steps, target, timeout)");
  EXPECT_EQ(error("name: x\nsteps:\n  - idle: 1s\n  - jump: 3\n"),
            "bad.yaml:4:5: unknown step \"jump\" (apply, delete, patch, wait, load, idle, conform, assert, join, fault)");
  EXPECT_EQ(error("name: x\nsteps:\n  - idle: soon\n"),
            "bad.yaml:3:11: idle: not a duration: \"soon\" (e.g. 30s, 500ms)");
  EXPECT_EQ(error("name: x\nsteps:\n  - load: {rate: 10, duraton: 1s}\n"),
            "bad.yaml:3:22: unknown key \"duraton\" in load (allowed: arrival, batch, concurrency, concurrent, "
            "connections, duration, graph, headers, host, input, isvc, label, name, per_request, profile, protocol, "
            "rate, requests, seed, slo, slo_confidence, threads, timeout, trace, warmup, window)");
  EXPECT_EQ(error("name: x\nsteps:\n  - load: {rate: fast, duration: 1s}\n"),
            "bad.yaml:3:18: load.rate must be a number, not \"fast\"");
  EXPECT_EQ(error("name: x\nsteps:\n  - load: {name: a, rate: 1, duration: 1s}\n  - assert: {canary_split: {load: a, confidence: nan}}\n"),
            "bad.yaml:4:50: assert.canary_split.confidence must be within [0.5, 0.999999], not nan");
  EXPECT_NE(error("name: x\nsteps:\n  - load: {rate: 1, duration: 1s, warmup: 5444444444444444444s}\n").find("is too long (at most 292 years)"),
            std::string::npos);
  EXPECT_EQ(error("name: x\nsteps:\n  - wait: {for: lunch}\n"),
            "bad.yaml:3:17: wait.for must be ready, replicas, zero or event, not \"lunch\"");
  EXPECT_EQ(error("name: x\nsteps:\n  - assert: {canary_split: {load: nope}}\n"),
            "bad.yaml:3:5: no earlier load named \"nope\"");
  EXPECT_EQ(error("name: x\nsteps:\n  - load: {name: a, rate: 1, duration: 1s}\n  - assert: {canary_split: {load: a, confidence: 2}}\n"),
            "bad.yaml:4:50: assert.canary_split.confidence must be within [0.5, 0.999999], not 2");
  EXPECT_EQ(error("name: x\nautoscaler: {stable-windw: 6s}\nsteps: []\n"),
            error("name: x\nautoscaler: {stable-windw: 6s}\nsteps: []\n"));
  EXPECT_NE(error("name: x\nautoscaler: {stable-windw: 6s}\nsteps: []\n").find("bad.yaml:2:14: unknown key \"stable-windw\" in autoscaler"),
            std::string::npos);
  EXPECT_EQ(error("name: x\nmanifests: [manifests/missing.yaml]\nsteps: []\n"),
            "bad.yaml:2:13: manifest " + (kScenarios / "manifests/missing.yaml").string() + " does not exist");
  // A name the file system refuses to look up (a component past NAME_MAX) is the scenario's error,
  // not an exception out of the parser (the scenario fuzzer's find: std::filesystem::exists threw).
  const std::string long_name(300, 'm');
  EXPECT_EQ(error("name: x\nmanifests: [" + long_name + "]\nsteps: []\n"),
            "bad.yaml:2:13: manifest " + (kScenarios / long_name).string() + ": File name too long");
  EXPECT_EQ(error("name: x\nsteps:\n  - apply: {file: " + long_name + "}\n"),
            "bad.yaml:3:12: manifest " + (kScenarios / long_name).string() + ": File name too long");
  EXPECT_EQ(error("name: x\nsteps:\n  - load: {name: a, rate: 1, duration: 1s}\n  - assert: {latency_slo: {load: a}}\n"),
            "bad.yaml:4:27: assert.latency_slo needs max (a duration)");
  EXPECT_EQ(error("name: x\nsteps: [\n"), "bad.yaml:3:1: end of sequence flow not found");
  EXPECT_EQ(error("steps: []\n"), "bad.yaml:1:1: a scenario needs a name");
  EXPECT_EQ(error("name: x\nrequires: [gpu]\nsteps: []\n"),
            "bad.yaml:2:11: requires: \"gpu\" is not control-plane, serverless, cuda or pod-signals");
  EXPECT_EQ(error("name: x\nsteps:\n  - load: {rate: 1, concurrency: 2, duration: 1s}\n"),
            "bad.yaml:3:11: load: give rate (open loop) or concurrency (closed loop), not both");
  // InferenceGraph keys.
  EXPECT_EQ(error("name: x\nsteps:\n  - wait: {for: zero, graph: g}\n"),
            "bad.yaml:3:30: wait.graph: an InferenceGraph is waited for with for: ready");
  EXPECT_EQ(error("name: x\nsteps:\n  - load: {graph: g, isvc: i, requests: 1}\n"),
            "bad.yaml:3:11: load: a graph load goes to the graph's host: give graph, or isvc/host, not both");
  EXPECT_EQ(error("name: x\nsteps:\n  - conform: {graph: all, protocols: [v1]}\n"),
            "bad.yaml:3:22: conform.graph runs graph cases: no isvc, protocols or model with it");
  EXPECT_EQ(error("name: x\nsteps:\n  - assert: {graph_output: {input: {}}}\n"),
            "bad.yaml:3:28: assert.graph_output needs graph (an InferenceGraph) and input (the request body)");
  EXPECT_EQ(error("name: x\nsteps:\n  - assert: {graph_split: {node: root}}\n"),
            "bad.yaml:3:27: assert.graph_split needs load (a load with graph: set)");
}

TEST(ScenarioParser, ReadsTheStackSettings) {
  auto s = parseScenario("name: s\nstack: {activator_queue_limit: 8}\nsteps:\n  - idle: 1s\n", "s.yaml", kScenarios);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->stack.activator_queue_limit, 8);
  EXPECT_FALSE(s->stack.empty());
  auto none = parseScenario("name: s\nsteps:\n  - idle: 1s\n", "s.yaml", kScenarios);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->stack.empty());
  EXPECT_EQ(error("name: x\nstack: {activator_queue_limit: 0}\nsteps: []\n"),
            "bad.yaml:2:32: stack.activator_queue_limit must be within [1, 1000000], not 0");
  EXPECT_EQ(error("name: x\nstack: {queue_limit: 5}\nsteps: []\n"),
            "bad.yaml:2:9: unknown key \"queue_limit\" in stack (allowed: activator_queue_limit)");
}

TEST(ScenarioParser, GraphStepsReadTheirKeys) {
  auto s = parseScenario(
      "name: g\nsteps:\n  - wait: {for: ready, graph: g}\n  - conform: {graph: all, filter: SWITCH}\n"
      "  - load: {name: l, graph: g, requests: 10}\n  - assert: {graph_split: {load: l, node: n1}}\n"
      "  - assert: {graph_breakdown: {load: l}}\n"
      "  - assert: {graph_output: {graph: g, input: {a: [1]}, status: 404, output: {detail: x}}}\n",
      "g.yaml", kScenarios);
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(s->steps.size(), 6u);
  EXPECT_EQ(s->steps[0].graph, "g");
  EXPECT_EQ(s->steps[1].graph, "all");
  EXPECT_EQ(s->steps[1].protocols, "graph");
  EXPECT_EQ(s->steps[1].filter, "SWITCH");
  EXPECT_EQ(s->steps[2].graph, "g");
  EXPECT_TRUE(s->steps[2].per_request);  // a graph load records the per-step breakdown
  EXPECT_EQ(s->steps[3].params["node"], "n1");
  EXPECT_EQ(s->steps[5].params["input"], nlohmann::json::parse(R"({"a":[1]})"));
  EXPECT_EQ(s->steps[5].params["status"], 404);
  EXPECT_EQ(s->steps[5].params["output"]["detail"], "x");
}

TEST(ScenarioParser, LoadValuesAreCheckedAsHarnessLoadChecksThem) {
  // The planner's conversion (kh/loadgen/plan.h), reported at the option's value.
  EXPECT_EQ(error("name: x\nsteps:\n  - load: {rate: 10, duration: 1s, slo: p99}\n"),
            "bad.yaml:3:41: load.slo wants pXX=DURATION with 0 < XX < 100, e.g. p99=50ms");
  EXPECT_EQ(error("name: x\nsteps:\n  - load: {protocol: v9, requests: 5}\n"),
            "bad.yaml:3:22: load.protocol must be v1, v2, v2-binary or grpc, not \"v9\"");
  EXPECT_EQ(error("name: x\nsteps:\n  - load: {profile: oops}\n"),
            "bad.yaml:3:21: load.profile: profile stage 'oops': expected RATE@DURATION, e.g. 1000@30s");
  EXPECT_EQ(error("name: x\nsteps:\n  - load: {requests: 5, headers: [X-Flag]}\n"),
            "bad.yaml:3:34: load.headers wants 'Name: value', not \"X-Flag\"");
  EXPECT_EQ(error("name: x\nsteps:\n  - load: {requests: 5, arrival: bursty}\n"),
            "bad.yaml:3:34: load.arrival must be constant or poisson");
  // Per-request recording is a mode of the one engine: gRPC and profiles record too.
  auto s = parseScenario("name: x\nsteps:\n  - load: {per_request: true, protocol: grpc, profile: 10@1s}\n",
                         "ok.yaml", kScenarios);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_TRUE(s->steps[0].per_request);
}

}  // namespace
}  // namespace kh::scenario
