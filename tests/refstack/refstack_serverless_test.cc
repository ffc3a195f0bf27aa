// Serverless behaviour of the reference stack with real processes and short windows from
// annotations: scale to zero (activator fast path, and after the grace period), cold start from
// zero with its breakdown, containerConcurrency back-pressure through the queue-proxy, and a
// burst that enters panic mode and scales up.

#include <signal.h>

#include <atomic>
#include <filesystem>
#include <optional>
#include <thread>

#include <grpcpp/grpcpp.h>

#include "absl/cleanup/cleanup.h"
#include "gtest/gtest.h"
#include "kh/http/client.h"
#include "kh/protocols/grpc_predict_v2.grpc.pb.h"
#include "kh/refstack/refstack.h"
#include "support/iris_grpc.h"
#include "support/modelserver_process.h"
#include "support/refstack_test_support.h"

namespace kh::refstack {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
namespace bhttp = boost::beast::http;

constexpr auto kTick = 1s;
constexpr double kWindowS = 6, kGraceS = 1, kDrainS = 0.2;

std::string zeroManifest(const std::string& name, const std::string& extra_annotations = "",
                         const std::string& extra_spec = "", const std::string& model_args = "") {
  return "apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata:\n  name: " + name +
         "\n  annotations:\n    autoscaling.knative.dev/window: \"6s\"\n" + extra_annotations +
         "spec:\n  predictor:\n" + extra_spec +
         "    model:\n      modelFormat: {name: xgboost}\n      storageUri: file://reference-impl/models/xgboost-iris\n" +
         model_args;
}

class RefstackServerless : public ::testing::Test {
 protected:
  void SetUp() override {
    Config config = testing::refstackTestConfig("refstack-serverless", /*serverless=*/true);
    config.autoscaler_tick = kTick;
    auto s = Refstack::start(config, time_);
    ASSERT_TRUE(s.ok()) << s.status();
    stack_ = std::move(*s);
  }

  // Waits until `revision` takes traffic with `pods` ready pods (a routes event).
  bool waitRoutable(const std::string& revision, int pods, std::chrono::seconds timeout = 60s) {
    return stack_->waitForEvent(0, testing::eventWhere<events::RoutesChanged>(
        [&](const auto& r) { return r.ready_pods.count(revision) && r.ready_pods.at(revision) >= pods; }), timeout).has_value();
  }

  http::Response predict(const std::string& isvc, std::chrono::milliseconds timeout = 30s) {
    http::Client c("127.0.0.1", stack_->ingressPort(), timeout);
    http::Request req{bhttp::verb::post, "/v1/models/" + isvc + ":predict", 11};
    req.set(bhttp::field::host, isvc + "-default.example.com");
    req.body() = R"({"instances":[[6.8,2.8,4.8,1.4]]})";
    auto res = c.send(std::move(req));
    EXPECT_TRUE(res.ok()) << res.status();
    return res.ok() ? *res : http::Response{};
  }

  static double now() {
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  }

  // Seconds from `since` (unix time) until every pod of `revision` has stopped.
  double secondsUntilZero(const std::string& revision, double since) {
    auto stopped = stack_->waitForEvent(0, [&](const events::Event& e) {
      const auto* p = e.as<events::PodPhaseChanged>();
      return p && p->phase == "Stopped" && p->revision == revision && e.time > since;
    }, 60s);
    EXPECT_TRUE(stopped.has_value()) << testing::dumpEvents(stack_->events(0));
    return stopped ? stopped->time - since : -1;
  }

  common::RealTimeSource time_;
  std::unique_ptr<Refstack> stack_;
};

TEST_F(RefstackServerless, ScalesToZeroOnTheActivatorFastPathThenColdStartsAndRecordsIt) {
  ASSERT_TRUE(stack_->apply(zeroManifest("iris-zero", "", "    minReplicas: 0\n"), "zero").ok());
  ASSERT_TRUE(waitRoutable("iris-zero-predictor-00001", 1));
  auto res = predict("iris-zero");
  ASSERT_EQ(res.result_int(), 200u) << res.body();
  double last_request = now();
  // With the default target burst capacity the activator is in the path of a one-pod revision,
  // so Knative's fast path applies: zero once the stable window has no data (plus a tick).
  double seconds = secondsUntilZero("iris-zero-predictor-00001", last_request);
  EXPECT_GE(seconds, kWindowS - 1) << "scaled to zero too early";
  EXPECT_LE(seconds, kWindowS + kGraceS + 2 * 1.0 + kDrainS + 1) << "scaled to zero too late";
  auto scale = stack_->waitForEvent(0, testing::eventWhere<events::ScaleDecided>([](const auto& s) { return s.desired == 0; }), 1s);
  ASSERT_TRUE(scale.has_value());
  EXPECT_NE(scale->as<events::ScaleDecided>()->reason.find("fast path"), std::string::npos)
      << events::toJson(*scale).dump();
  // Still Ready at zero pods, as in Knative.
  auto status = *stack_->get("default", "iris-zero");
  EXPECT_EQ(status["status"]["components"]["predictor"]["latestReadyRevision"], "iris-zero-predictor-00001");

  // The first request finds zero pods: the activator holds it, pokes the autoscaler, a pod
  // starts, the request goes out; its breakdown is an event.
  int64_t seq = stack_->events(0).back().seq;
  auto cold = predict("iris-zero");
  EXPECT_EQ(cold.result_int(), 200u) << cold.body();
  EXPECT_EQ(cold.body(), R"({"predictions":[1]})");
  auto event = stack_->waitForEvent(seq, testing::eventOf<events::ColdStart>(), 10s);
  ASSERT_TRUE(event.has_value()) << testing::dumpEvents(stack_->events(seq));
  // As GET /events shows it: a breakdown of numbers (null for a step not observed).
  const json wire = events::toJson(*event);
  const json& b = wire["breakdown"];
  EXPECT_GT(wire["total_ms"].get<double>(), 0);
  for (const char* step : {"buffered_ms", "pod_spawned_ms", "ready_ms", "forwarded_ms", "first_byte_ms"}) {
    ASSERT_TRUE(b[step].is_number()) << step << " " << b.dump();
  }
  EXPECT_LE(b["pod_spawned_ms"].get<double>(), b["ready_ms"].get<double>());
  EXPECT_LE(b["ready_ms"].get<double>(), b["forwarded_ms"].get<double>());
  EXPECT_LE(b["forwarded_ms"].get<double>(), b["first_byte_ms"].get<double>());
  // The model server's own start-up times (KH_STARTUP_FILE) split spawn -> ready.
  ASSERT_TRUE(b["process_started_ms"].is_number()) << b.dump();
  ASSERT_TRUE(b["model_loaded_ms"].is_number()) << b.dump();
  // Strictly: without the file they would fall back to the spawn and readiness times.
  EXPECT_LT(b["pod_spawned_ms"].get<double>(), b["process_started_ms"].get<double>()) << b.dump();
  EXPECT_LT(b["process_started_ms"].get<double>(), b["model_loaded_ms"].get<double>()) << b.dump();
  EXPECT_LT(b["model_loaded_ms"].get<double>(), b["ready_ms"].get<double>()) << b.dump();
  EXPECT_EQ(wire["pod"].get<std::string>().rfind("iris-zero-predictor-00001-pod-", 0), 0u) << wire.dump();
}

TEST_F(RefstackServerless, AGrpcCallAtZeroPodsIsHeldByTheActivatorColdStartsAndShowsInItsStats) {
  // The model takes 1.5 s to load, so a call can give up while the activator holds it.
  ASSERT_TRUE(stack_->apply(zeroManifest("iris-grpc", "", "    minReplicas: 0\n",
                                         "      args: [\"--load_delay_ms=1500\"]\n"),
                            "zero")
                  .ok());
  ASSERT_TRUE(waitRoutable("iris-grpc-predictor-00001", 1));
  double since = now();
  ASSERT_GT(secondsUntilZero("iris-grpc-predictor-00001", since), 0);
  int64_t seq = stack_->events(0).back().seq;

  grpc::ChannelArguments args;
  args.SetString(GRPC_ARG_DEFAULT_AUTHORITY, "iris-grpc-default.example.com");
  auto stub = ::inference::GRPCInferenceService::NewStub(grpc::CreateCustomChannel(
      "127.0.0.1:" + std::to_string(stack_->grpcIngressPort()), grpc::InsecureChannelCredentials(), args));
  ::inference::ModelInferRequest request = testing::irisGrpcRequest("iris-grpc");
  ::inference::ModelInferResponse response;
  http::Client admin("127.0.0.1", stack_->adminPort(), 5s);
  std::string last_stats;
  auto heldNow = [&]() -> int {
    auto res = admin.request("GET", "/activator/stats");
    last_stats = res.ok() ? res->body() : std::string(common::toStd(res.status().message()));
    if (!res.ok()) return -1;
    json stats = json::parse(res->body());
    for (const auto& r : stats["revisions"]) {
      if (r["revision"] == "iris-grpc-predictor-00001") return r["held"].get<int>();
    }
    return -1;
  };
  {
    // A client that gives up while its call is held: the activator lets it go at once (not when
    // the pod is ready, 1.5 s later).
    grpc::ClientContext impatient;
    impatient.set_deadline(std::chrono::system_clock::now() + 200ms);
    auto gave_up = stub->ModelInfer(&impatient, request, &response);
    EXPECT_EQ(gave_up.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << gave_up.error_message();
    int held = -1;
    for (auto until = std::chrono::steady_clock::now() + 700ms; std::chrono::steady_clock::now() < until;) {
      if ((held = heldNow()) == 0) break;
      std::this_thread::sleep_for(20ms);  // polling pace, not synchronisation
    }
    EXPECT_EQ(held, 0) << "a cancelled call stayed in the activator's queue: " << last_stats;
  }
  // The next call waits for the pod (about 1.5 s); meanwhile the activator's own stats, one
  // report per second, show it.
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 30s);
  std::atomic<bool> answered{false};
  grpc::Status status;
  std::thread caller([&] {
    status = stub->ModelInfer(&ctx, request, &response);
    answered = true;
  });
  json revisions;
  bool seen_arrival = false, seen_held = false, seen = false;
  std::optional<std::chrono::steady_clock::time_point> until;
  while (!seen && (!until || std::chrono::steady_clock::now() < *until)) {
    if (answered && !until) until = std::chrono::steady_clock::now() + 2s;  // the last report too
    auto res = admin.request("GET", "/activator/stats");
    if (res.ok() && res->result_int() == 200) {
      json stats = json::parse(res->body());
      revisions = stats["revisions"];
      for (const auto& r : revisions) {
        if (r["revision"] != "iris-grpc-predictor-00001") continue;
        // The arrival and the time held may fall in different 1 s periods.
        seen_arrival = seen_arrival || r["request_count"].get<double>() >= 1;
        seen_held = seen_held || r["average_concurrent_requests"].get<double>() > 0.5;
      }
      seen = seen_arrival && seen_held;
    }
    if (!seen) std::this_thread::sleep_for(50ms);  // polling pace, not synchronisation
  }
  caller.join();
  EXPECT_TRUE(seen) << "the activator's stats never showed the held call: " << revisions.dump(1);
  ASSERT_TRUE(status.ok()) << status.error_message();
  auto revision = ctx.GetServerInitialMetadata().find("kh-revision");
  ASSERT_NE(revision, ctx.GetServerInitialMetadata().end());
  EXPECT_EQ(std::string(revision->second.data(), revision->second.size()), "iris-grpc-predictor-00001");

  auto activation = stack_->waitForEvent(seq, testing::eventWhere<events::ScaleDecided>(
      [](const auto& s) { return s.reason.find("activation") != std::string::npos; }), 1s);
  EXPECT_TRUE(activation.has_value()) << testing::dumpEvents(stack_->events(seq));
  auto cold = stack_->waitForEvent(seq, testing::eventOf<events::ColdStart>(), 10s);
  ASSERT_TRUE(cold.has_value()) << testing::dumpEvents(stack_->events(seq));
  const auto& c = *cold->as<events::ColdStart>();
  EXPECT_EQ(c.revision, "iris-grpc-predictor-00001");
  // The impatient call's abandoned record did not block this one; it waited for the slow load.
  ASSERT_TRUE(c.breakdown.model_loaded_ms.has_value());
  EXPECT_GT(*c.breakdown.model_loaded_ms, 500) << events::toJson(*cold).dump();
}

TEST_F(RefstackServerless, ScalesToZeroAfterTheGracePeriodWhenTheActivatorIsOutOfThePath) {
  ASSERT_TRUE(stack_->apply(zeroManifest("iris-tbc0", "    autoscaling.knative.dev/target-burst-capacity: \"0\"\n",
                                         "    minReplicas: 0\n"), "tbc0").ok());
  ASSERT_TRUE(waitRoutable("iris-tbc0-predictor-00001", 1));
  ASSERT_EQ(predict("iris-tbc0").result_int(), 200u);
  double last_request = now();
  double seconds = secondsUntilZero("iris-tbc0-predictor-00001", last_request);
  EXPECT_GE(seconds, kWindowS + kGraceS - 1) << "scaled to zero before the grace period";
  EXPECT_LE(seconds, kWindowS + kGraceS + 2 * 1.0 + kDrainS + 1) << "scaled to zero too late";
}

TEST_F(RefstackServerless, ContainerConcurrencyOneShedsTheExcessWith503AndNothingHangs) {
  ASSERT_TRUE(stack_->apply(zeroManifest("iris-cc1", "", "    minReplicas: 1\n    maxReplicas: 1\n    containerConcurrency: 1\n",
                                         "      args: [--infer_delay_ms=300]\n"), "cc1").ok());
  ASSERT_TRUE(waitRoutable("iris-cc1-predictor-00001", 1));
  // 1 in flight + 10 queued at the queue-proxy (Knative's 10 x CC); 20 at once: 9 are refused.
  constexpr int kClients = 20;
  std::vector<int> codes(kClients, 0);
  std::vector<std::string> bodies(kClients);
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back([&, i] {
      auto r = predict("iris-cc1", 30s);
      codes[static_cast<size_t>(i)] = static_cast<int>(r.result_int());
      bodies[static_cast<size_t>(i)] = r.body();
    });
  }
  for (auto& t : clients) t.join();
  int ok = 0, shed = 0;
  for (int i = 0; i < kClients; ++i) {
    if (codes[static_cast<size_t>(i)] == 200) ++ok;
    if (codes[static_cast<size_t>(i)] == 503) {
      ++shed;
      EXPECT_NE(bodies[static_cast<size_t>(i)].find("pending request queue full"), std::string::npos)
          << bodies[static_cast<size_t>(i)];
    }
  }
  EXPECT_EQ(ok + shed, kClients) << "every request answered with 200 or 503";
  EXPECT_EQ(ok, 11);
  EXPECT_EQ(shed, 9);
}

TEST_F(RefstackServerless, ABurstEntersPanicAndScalesUpWithinTwoTicksWithoutFailures) {
  ASSERT_TRUE(stack_->apply(zeroManifest("iris-burst",
                                         "    autoscaling.knative.dev/target: \"1\"\n"
                                         "    autoscaling.knative.dev/target-utilization-percentage: \"100\"\n",
                                         "    minReplicas: 1\n    maxReplicas: 3\n", "      args: [--infer_delay_ms=100]\n"),
                            "burst").ok());
  ASSERT_TRUE(waitRoutable("iris-burst-predictor-00001", 1));
  int64_t seq = stack_->events(0).back().seq;
  double burst_start = now();
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0}, done{0};
  std::vector<std::thread> clients;
  // However the test leaves (a failed ASSERT returns at once), the clients stop and are joined:
  // a joinable std::thread destroyed would end the whole test binary instead of failing one test.
  absl::Cleanup join_clients = [&] {
    stop = true;
    for (auto& t : clients) t.join();
  };
  for (int i = 0; i < 6; ++i) {
    clients.emplace_back([&] {
      while (!stop) {
        auto r = predict("iris-burst", 30s);
        if (r.result_int() != 200) ++failures;
        ++done;
      }
    });
  }
  auto panic = stack_->waitForEvent(seq, testing::eventWhere<events::ScaleDecided>([](const auto& s) { return s.panic && s.desired >= 2; }), 20s);
  ASSERT_TRUE(panic.has_value()) << testing::dumpEvents(stack_->events(seq));
  // The stats of the first second reach the decider at the next tick: within two ticks (plus
  // a scrape period) of the burst.
  EXPECT_LE(panic->time - burst_start, 2 * 1.0 + 0.5 + 0.5) << events::toJson(*panic).dump();
  EXPECT_TRUE(waitRoutable("iris-burst-predictor-00001", 3, 30s)) << testing::dumpEvents(stack_->events(seq));
  // Scale-down under load: most clients stop, one goes on; pods drain away without a failure.
  int64_t before_down = stack_->events(0).back().seq;
  stop = true;
  for (auto& t : clients) t.join();
  clients.clear();
  stop = false;
  clients.emplace_back([&] {
    while (!stop) {
      auto r = predict("iris-burst", 30s);
      if (r.result_int() != 200) ++failures;
      ++done;
    }
  });
  auto stopped = stack_->waitForEvent(before_down, testing::eventWhere<events::PodPhaseChanged>(
      [](const auto& p) { return p.phase == "Stopped" && p.revision == "iris-burst-predictor-00001"; }), 30s);
  EXPECT_TRUE(stopped.has_value()) << testing::dumpEvents(stack_->events(before_down));
  std::move(join_clients).Invoke();
  EXPECT_EQ(failures.load(), 0) << "of " << done.load();
}

TEST_F(RefstackServerless, AKilledPodUnderLoadIsReplacedAndEveryRequestIsAnswered) {
  ASSERT_TRUE(stack_->apply(zeroManifest("iris-kill", "", "    minReplicas: 1\n    maxReplicas: 1\n"), "kill").ok());
  ASSERT_TRUE(waitRoutable("iris-kill-predictor-00001", 1));
  int pid = 0;
  for (const auto& e : stack_->events(0)) {
    const auto* p = e.as<events::PodPhaseChanged>();
    if (p && p->message.rfind("started pid ", 0) == 0) pid = std::stoi(p->message.substr(12));
  }
  ASSERT_GT(pid, 0);
  int64_t seq = stack_->events(0).back().seq;
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, explicit_errors{0}, unanswered{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < 4; ++i) {
    clients.emplace_back([&] {
      while (!stop) {
        http::Client c("127.0.0.1", stack_->ingressPort(), 30s);
        http::Request req{bhttp::verb::post, "/v1/models/iris-kill:predict", 11};
        req.set(bhttp::field::host, "iris-kill-default.example.com");
        req.body() = R"({"instances":[[6.8,2.8,4.8,1.4]]})";
        auto r = c.send(std::move(req));
        if (!r.ok()) ++unanswered;
        else if (r->result_int() == 200) ++ok;
        else ++explicit_errors;  // 502/503 with a JSON error: answered, not lost
      }
    });
  }
  auto warm = std::chrono::steady_clock::now() + 30s;  // bounded: a broken pod must not hang the test
  while (ok.load() < 50 && std::chrono::steady_clock::now() < warm) std::this_thread::yield();
  if (ok.load() < 50) {
    stop = true;
    for (auto& t : clients) t.join();
    FAIL() << "only " << ok.load() << " requests served before the kill";
  }
  ::kill(pid, SIGKILL);
  // The pod restarts whole (queue-proxy and model server) and serves again.
  auto ready = stack_->waitForEvent(seq, testing::eventWhere<events::PodPhaseChanged>([](const auto& p) { return p.phase == "Ready" && p.restarts >= 1; }), 30s);
  EXPECT_TRUE(ready.has_value()) << testing::dumpEvents(stack_->events(seq));
  int ok_before = ok.load();
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (ok.load() < ok_before + 50 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  stop = true;
  for (auto& t : clients) t.join();
  EXPECT_EQ(unanswered.load(), 0);
  EXPECT_GE(ok.load(), ok_before + 50) << "served again after the restart";
}

}  // namespace
}  // namespace kh::refstack
