// The load planner: `harness load`'s flags and a scenario's JSON options give the same spec and
// the same plan; bad values are refused with messages that name the option. No network: the
// payload comes from a request file.

#include "kh/loadgen/plan.h"

#include <fstream>

#include "gtest/gtest.h"
#include "kh/common/strings.h"

namespace kh::loadgen {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

std::string message(const absl::Status& s) { return std::string(common::toStd(s.message())); }

// A V2 request file in a temporary directory of the running test's own (CTest runs each test
// as its own process, in parallel: a shared file could be read while another test rewrites it);
// @return its directory.
std::filesystem::path requestDir() {
  std::filesystem::path dir = std::filesystem::path(::testing::TempDir()) /
                              (std::string("plan_test-") + ::testing::UnitTest::GetInstance()->current_test_info()->name());
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "iris.json")
      << R"({"inputs":[{"name":"input-0","datatype":"FP32","shape":[1,4],"data":[6.8,2.8,4.8,1.4]}]})";
  std::ofstream(dir / "offsets.txt") << "0\n0.5\n1.25\n";
  return dir;
}

// The parts of a plan a run depends on, as a document that compares whole.
json planJson(LoadPlan& plan, int offsets = 50) {
  json schedule = json::array();
  if (plan.options.schedule) {
    for (int i = 0; i < offsets; ++i) {
      auto t = plan.options.schedule->next();
      if (!t) break;
      schedule.push_back(t->count());
    }
  }
  RunResult empty;
  empty.schedule = plan.options.schedule ? plan.options.schedule->describe() : "closed";
  json run = runToJson(empty, plan.config);
  const LoadOptions& o = plan.options;
  return {{"config", run["config"]},
          {"label", run["label"]},
          {"slo", run.value("slo", json())},
          {"stability", run["stability"]},
          {"schedule", schedule},
          {"options",
           {o.concurrency, o.threads, o.connections, o.duration.count(), o.max_requests,
            o.warmup.count(), o.window.count(), o.request_timeout.count(),
            static_cast<bool>(o.check), o.recording.enabled, o.recording.header,
            o.recording.expected}},
          {"http", {plan.http.host, plan.http.port, plan.grpc}},
          {"payload",
           {plan.payload.source, plan.payload.http.path, plan.payload.http.body,
            plan.payload.http.headers, plan.payload.grpc.authority, plan.payload.grpc.target,
            plan.payload.grpc.channels}}};
}

absl::StatusOr<json> planFrom(const absl::StatusOr<LoadSpec>& spec) {
  if (!spec.ok()) return spec.status();
  auto plan = planLoad(*spec);
  if (!plan.ok()) return plan.status();
  return planJson(*plan);
}

TEST(LoadPlan, FlagsAndScenarioOptionsGiveTheSamePlan) {
  const auto dir = requestDir();
  LoadFlags flags;
  flags.target = "http://127.0.0.1:9";
  flags.model = "iris";
  flags.rate = 200;
  flags.arrival = "poisson";
  flags.seed = 7;
  flags.duration = "2s";
  flags.warmup = "500ms";
  flags.window = "250ms";
  flags.requests = 300;
  flags.threads = 2;
  flags.connections = 8;
  flags.input = (dir / "iris.json").string();
  flags.timeout = "3s";
  flags.slo = "p99=50ms";
  flags.slo_confidence = 0.95;
  flags.label = "open";
  flags.headers = {"Host: iris.example.com", "X-Trace:  on"};

  LoadFlags base;
  base.target = "http://127.0.0.1:9";
  base.model = "iris";
  json options = {{"rate", 200},         {"arrival", "poisson"},  {"seed", 7},
                  {"duration", 2},       {"warmup", 0.5},         {"window", "250ms"},
                  {"requests", 300},     {"threads", 2},          {"connections", 8},
                  {"input", "iris.json"}, {"timeout", 3},         {"slo", "p99=50ms"},
                  {"slo_confidence", 0.95}, {"label", "open"},
                  {"headers", {"Host: iris.example.com", "X-Trace:  on"}}};
  auto from_json = loadFlagsFromJson(options, base, dir);
  ASSERT_TRUE(from_json.ok()) << from_json.status();

  auto a = planFrom(loadSpecFromFlags(flags));
  auto b = planFrom(loadSpecFromFlags(*from_json, "load."));
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(*a, *b) << a->dump(1) << "\n" << b->dump(1);

  // And the plan is what the options say.
  const json& p = *a;
  EXPECT_EQ(p["config"]["mode"], "poisson");
  EXPECT_EQ(p["config"]["target"], "http://127.0.0.1:9");
  EXPECT_EQ(p["config"]["protocol"], "v2");
  EXPECT_EQ(p["config"]["connections"], 8);
  EXPECT_DOUBLE_EQ(p["config"]["warmup_s"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(p["config"]["window_s"].get<double>(), 0.25);
  EXPECT_EQ(p["label"], "open");
  EXPECT_DOUBLE_EQ(p["slo"]["target_ms"].get<double>(), 50);
  EXPECT_DOUBLE_EQ(p["slo"]["confidence"].get<double>(), 0.95);
  EXPECT_EQ(p["schedule"].size(), 50u);
  EXPECT_EQ(p["payload"][3], json::parse(R"([["Host","iris.example.com"],["X-Trace","on"]])"));
  EXPECT_EQ(p["payload"][4], "iris.example.com");  // the gRPC :authority
  EXPECT_EQ(p["payload"][6], 2);                   // a channel per thread
  EXPECT_EQ(p["options"][4], 300);
  EXPECT_EQ(p["options"][7], 3'000'000'000);
}

TEST(LoadPlan, ScheduleKindsAndTheirDurations) {
  const auto dir = requestDir();
  LoadSpec spec;
  spec.model = "iris";
  spec.input = (dir / "iris.json").string();
  EXPECT_EQ(scheduleKind(spec), ScheduleKind::kClosed);
  auto plan = planLoad(spec);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->options.schedule, nullptr);
  EXPECT_EQ(plan->options.concurrency, 1);  // concurrency below 1 means 1
  EXPECT_EQ(plan->config.mode, "closed");
  EXPECT_EQ(plan->config.connections, 1);
  EXPECT_EQ(plan->options.duration, 10s);

  // A profile wins over the rate and sets the duration; a window under 100 ms is 100 ms.
  spec.rate = 50;
  spec.stages = *parseProfile("100@1s,ramp:100-300@2s");
  spec.window = 10ms;
  plan = planLoad(spec);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->config.mode, "profile");
  EXPECT_EQ(plan->options.duration, 3s);
  EXPECT_EQ(plan->options.window, 100ms);

  // Then a trace; it is bounded by the duration.
  spec.stages.clear();
  spec.trace = (dir / "offsets.txt").string();
  plan = planLoad(spec);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->config.mode, "trace");
  EXPECT_EQ(plan->options.schedule->next(), Nanos(0));
  EXPECT_EQ(plan->options.duration, 10s);

  spec.trace.clear();
  EXPECT_EQ(scheduleKind(spec), ScheduleKind::kConstant);
  spec.arrival = Arrival::kPoisson;
  EXPECT_EQ(scheduleKind(spec), ScheduleKind::kPoisson);
}

TEST(LoadPlan, PerRequestRecordingReservesFromTheBudgetOrRateTimesDuration) {
  const auto dir = requestDir();
  LoadSpec spec;
  spec.model = "iris";
  spec.input = (dir / "iris.json").string();
  spec.per_request = true;
  spec.record_header = "Kh-Revision";
  auto plan = planLoad(spec);
  ASSERT_TRUE(plan.ok());
  EXPECT_TRUE(plan->options.recording.enabled);
  EXPECT_EQ(plan->options.recording.header, "Kh-Revision");
  EXPECT_EQ(plan->options.recording.expected, 0);  // closed loop without a budget: unknown

  spec.requests = 2000;
  EXPECT_EQ(planLoad(spec)->options.recording.expected, 2000);
  spec.rate = 100;
  spec.duration = 2s;
  EXPECT_EQ(planLoad(spec)->options.recording.expected, 201);  // the smaller bound
  spec.requests = 0;
  spec.stages = *parseProfile("100@1s,ramp:100-300@2s");  // 100 + 400
  EXPECT_EQ(planLoad(spec)->options.recording.expected, 501);

  spec.per_request = false;
  EXPECT_FALSE(planLoad(spec)->options.recording.enabled);
}

TEST(LoadPlan, BadValuesAreRefusedNamingTheOption) {
  auto flagError = [](auto change) {
    LoadFlags f;
    f.model = "iris";
    change(f);
    auto spec = loadSpecFromFlags(f);
    return spec.ok() ? std::string("converted") : message(spec.status());
  };
  EXPECT_EQ(flagError([](LoadFlags& f) { f.slo = "p99"; }),
            "--slo wants pXX=DURATION with 0 < XX < 100, e.g. p99=50ms");
  EXPECT_EQ(flagError([](LoadFlags& f) { f.slo = "p100=5ms"; }),
            "--slo wants pXX=DURATION with 0 < XX < 100, e.g. p99=50ms");
  EXPECT_EQ(flagError([](LoadFlags& f) { f.protocol = "v9"; }),
            "--protocol must be v1, v2, v2-binary or grpc, not \"v9\"");
  EXPECT_EQ(flagError([](LoadFlags& f) { f.duration = "soon"; }),
            "--duration: bad duration 'soon' (e.g. 500ms, 10s, 2m)");
  EXPECT_EQ(flagError([](LoadFlags& f) { f.headers = {"X-Flag"}; }),
            "--header wants 'Name: value', not \"X-Flag\"");
  EXPECT_EQ(flagError([](LoadFlags& f) { f.arrival = "bursty"; }), "--arrival must be constant or poisson");
  EXPECT_EQ(flagError([](LoadFlags& f) { f.profile = "oops"; }).rfind("--profile: ", 0), 0u);

  // The same conversion for a scenario names the option as the scenario writes it.
  auto jsonError = [](const json& options) {
    auto flags = loadFlagsFromJson(options, LoadFlags{});
    if (!flags.ok()) return message(flags.status());
    auto spec = loadSpecFromFlags(*flags, "load.");
    return spec.ok() ? std::string("converted") : message(spec.status());
  };
  EXPECT_EQ(jsonError({{"slo", "p99"}}), "load.slo wants pXX=DURATION with 0 < XX < 100, e.g. p99=50ms");
  EXPECT_EQ(jsonError({{"slo_confidence", "high"}}), "load.slo_confidence must be a number");
  EXPECT_EQ(jsonError({{"requests", 2.5}}), "load.requests must be a whole number >= 0, not 2.5");
  EXPECT_EQ(jsonError({{"threads", -1}}), "load.threads must be a whole number >= 0, not -1");
  EXPECT_EQ(jsonError({{"headers", {"X-Flag"}}}), "load.headers wants 'Name: value', not \"X-Flag\"");
  EXPECT_EQ(jsonError({{"warmup", true}}), "load.warmup must be a duration (seconds, or e.g. 500ms)");
  EXPECT_EQ(jsonError({{"colour", "blue"}}), "load.colour is not a load option");
  EXPECT_EQ(jsonError({{"window", "fast"}}), "load.window: bad duration 'fast' (e.g. 500ms, 10s, 2m)");
  EXPECT_EQ(jsonError({{"rate", 10}, {"duration", "1.5"}}), "converted");

  // What needs more than the text: the spec's own checks, then the files.
  LoadSpec spec;
  EXPECT_EQ(message(validateLoadSpec(spec)), "a load needs a model name");
  spec.model = "iris";
  spec.protocol = WireProtocol::kGrpc;
  EXPECT_EQ(message(buildPayload(spec).status()),
            "protocol grpc needs the gRPC endpoint's HOST:PORT (harness load --grpc)");
  spec.protocol = WireProtocol::kV2;
  spec.batch = 0;
  EXPECT_EQ(message(planLoad(spec).status()), "the batch size must be at least 1");
  spec.batch = 1;
  spec.target = "http://127.0.0.1:notaport";
  EXPECT_FALSE(validateLoadSpec(spec).ok());
  spec.target = "http://127.0.0.1:9";
  spec.input = "/nonexistent/request.json";
  EXPECT_NE(message(buildPayload(spec).status()).find("/nonexistent/request.json"), std::string::npos);
  spec.input = (requestDir() / "iris.json").string();
  spec.trace = "/nonexistent/offsets.txt";
  auto plan = planLoad(spec);
  ASSERT_FALSE(plan.ok());
  EXPECT_NE(message(plan.status()).find("/nonexistent/offsets.txt"), std::string::npos);
}

}  // namespace
}  // namespace kh::loadgen
