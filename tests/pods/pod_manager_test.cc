// Pods: cold start to ready, crash and restart with back-off, graceful stop, crash loops.

#include "kh/pods/pod_manager.h"

#include <signal.h>

#include <unistd.h>

#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>

#include "gtest/gtest.h"
#include "kh/http/client.h"
#include "support/modelserver_process.h"

namespace kh::pods {
namespace {

using namespace std::chrono_literals;

// Collects events and lets the test wait for one (no sleeping).
class Events {
 public:
  void add(const PodEvent& e) {
    std::lock_guard lock(mu_);
    events_.push_back(e);
    cv_.notify_all();
  }
  bool waitFor(PodPhase phase, int min_restarts, std::chrono::seconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] {
      for (const auto& e : events_) {
        if (e.phase == phase && e.restarts >= min_restarts) return true;
      }
      return false;
    });
  }
  std::string dump() {
    std::lock_guard lock(mu_);
    std::string out;
    for (const auto& e : events_) out += std::string(podPhaseName(e.phase)) + " " + e.message + "\n";
    return out;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<PodEvent> events_;
};

PodSpec modelserverPod(const std::string& name) {
  PodSpec spec;
  spec.name = name;
  spec.argv = {testing::binDir() + "/modelserver", "--model_name", "iris", "--model_dir",
               testing::modelDir("xgboost-iris"), "--http_port", "{{.Port}}", "--grpc_port", "0"};
  spec.log_file = ::testing::TempDir() + "/" + name + ".log";
  spec.grace_period = 5s;
  return spec;
}

TEST(PodManager, StartsCrashesRestartsAndStops) {
  common::RealTimeSource time;
  Events events;
  PodManager pods(time, [&](const PodEvent& e) { events.add(e); });
  auto started = pods.start(modelserverPod("iris-predictor-00001-pod-1"));
  ASSERT_TRUE(started.ok()) << started.status();
  ASSERT_TRUE(events.waitFor(PodPhase::kReady, 0, 30s)) << events.dump();
  http::Client client("127.0.0.1", started->port);
  auto res = client.request("GET", "/v2/health/ready");
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(res->result_int(), 200u);

  // Kill the process: the pod is restarted after a back-off and becomes ready again.
  auto before = pods.status("iris-predictor-00001-pod-1");
  ASSERT_TRUE(before.ok());
  ::kill(before->pid, SIGKILL);
  ASSERT_TRUE(events.waitFor(PodPhase::kBackOff, 1, 10s)) << events.dump();
  ASSERT_TRUE(events.waitFor(PodPhase::kReady, 1, 30s)) << events.dump();
  auto after = pods.status("iris-predictor-00001-pod-1");
  EXPECT_EQ(after->restarts, 1);
  EXPECT_NE(after->pid, before->pid);
  EXPECT_NE(after->last_exit.find("signal 9"), std::string::npos) << after->last_exit;

  ASSERT_TRUE(pods.stop("iris-predictor-00001-pod-1").ok());
  EXPECT_TRUE(events.waitFor(PodPhase::kStopped, 0, 1s)) << events.dump();
  EXPECT_NE(events.dump().find("stopped (exit code 0)"), std::string::npos) << events.dump();
  EXPECT_FALSE(pods.status("iris-predictor-00001-pod-1").ok());
  EXPECT_FALSE(pods.stop("iris-predictor-00001-pod-1").ok());
}

// A pod whose process exits at once, every time.
PodSpec crashLooping(const std::string& name, std::chrono::milliseconds initial_backoff,
                     std::chrono::milliseconds max_backoff) {
  PodSpec spec;
  spec.name = name;
  spec.argv = {"false"};
  spec.initial_backoff = initial_backoff;
  spec.max_backoff = max_backoff;
  return spec;
}

TEST(PodManager, CrashLoopBacksOffExponentially) {
  common::RealTimeSource time;
  Events events;
  PodManager pods(time, [&](const PodEvent& e) { events.add(e); });
  PodSpec spec = crashLooping("broken", 20ms, 80ms);
  ASSERT_TRUE(pods.start(spec).ok());
  ASSERT_TRUE(events.waitFor(PodPhase::kBackOff, 4, 20s)) << events.dump();
  std::string log = events.dump();
  EXPECT_NE(log.find("restarting in 20 ms"), std::string::npos) << log;
  EXPECT_NE(log.find("restarting in 40 ms"), std::string::npos) << log;
  EXPECT_NE(log.find("restarting in 80 ms"), std::string::npos) << log;
  EXPECT_EQ(log.find("restarting in 160 ms"), std::string::npos) << log;  // capped
  EXPECT_FALSE(pods.start(spec).ok());  // duplicate name
}

// The back-off is the injected clock's: an hour of it passes when a simulated clock moves an hour,
// not in real time. (The supervisor once read the real clock, so no test could see the wait.)
TEST(PodManager, BackOffRunsOnTheInjectedClock) {
  common::SimulatedTimeSource time;
  Events events;
  PodManager pods(time, [&](const PodEvent& e) { events.add(e); });
  ASSERT_TRUE(pods.start(crashLooping("broken-on-a-simulated-clock", 1h, 1h)).ok());
  ASSERT_TRUE(events.waitFor(PodPhase::kBackOff, 1, 20s)) << events.dump();
  time.advance(1h);
  EXPECT_TRUE(events.waitFor(PodPhase::kStarting, 1, 20s)) << "no restart after the back-off passed on the clock\n"
                                                           << events.dump();
}

TEST(PodManager, AContainerGetsOnlyItsSpecsEnvironmentAndTheDocumentedVariables) {
  // As a Kubernetes pod sees only what its spec gives it: the stack's own settings (here a
  // variable of the test process) never reach a user's container.
  ::setenv("KH_TEST_STACK_SECRET", "must-not-leak", 1);
  common::RealTimeSource time;
  Events events;
  PodManager pods(time, [&](const PodEvent& e) { events.add(e); });
  PodSpec spec;
  spec.name = "env-printer";
  spec.argv = {"env"};  // prints its environment to the pod's log, then exits
  spec.env = {{"STORAGE_URI", "/mnt/models"}, {"OMP_NUM_THREADS", "1"}};
  spec.log_file = ::testing::TempDir() + "/env-printer.log";
  spec.initial_backoff = 10s;  // one run is enough
  std::filesystem::remove(spec.log_file);
  ASSERT_TRUE(pods.start(spec).ok());
  ASSERT_TRUE(events.waitFor(PodPhase::kBackOff, 0, 20s)) << events.dump();  // it ran and exited
  std::ifstream in(spec.log_file);
  std::set<std::string> names;
  std::string line, text;
  while (std::getline(in, line)) {
    text += line + "\n";
    if (auto eq = line.find('='); eq != std::string::npos) names.insert(line.substr(0, eq));
  }
  EXPECT_EQ(text.find("must-not-leak"), std::string::npos) << text;
  EXPECT_TRUE(names.count("STORAGE_URI") && names.count("OMP_NUM_THREADS") && names.count("PORT")) << text;
  EXPECT_TRUE(names.count("PATH")) << text;
  for (const auto& n : names) {
    bool documented = n == "STORAGE_URI" || n == "OMP_NUM_THREADS" || n == "PORT" ||
                      std::find(std::begin(kInheritedEnvironment), std::end(kInheritedEnvironment), n) !=
                          std::end(kInheritedEnvironment);
    EXPECT_TRUE(documented) << n << " reached the container:\n" << text;
  }
  ::unsetenv("KH_TEST_STACK_SECRET");
}

TEST(PodManager, PidFilesLetALaterRunEndOrphanedPods) {
  namespace fs = std::filesystem;
  fs::path dir = fs::path(::testing::TempDir()) / "pods-pidfiles";
  fs::path orphans = fs::path(::testing::TempDir()) / "pods-orphans";
  fs::remove_all(dir);
  fs::remove_all(orphans);
  fs::create_directories(orphans);
  common::RealTimeSource time;
  Events events;
  PodManager pods(time, [&](const PodEvent& e) { events.add(e); });
  PodSpec spec;
  spec.name = "sleeper";
  spec.argv = {"sleep", "1000"};
  spec.pid_file = (dir / "sleeper.pid").string();
  auto started = pods.start(spec);
  ASSERT_TRUE(started.ok()) << started.status();
  ASSERT_TRUE(fs::exists(spec.pid_file));
  // A copy stands for the file a killed refstack would have left behind.
  fs::copy_file(spec.pid_file, orphans / "sleeper.pid");
  // A file whose pid runs with another start time (a recycled pid) is not acted on.
  {
    std::ofstream stale(orphans / "stale.pid");
    stale << ::getpid() << " 1\n";
  }
  EXPECT_EQ(killOrphanedPods(orphans.string()), 1);
  EXPECT_TRUE(fs::is_empty(orphans));
  // No pods directory yet (a first start): nothing to kill, and no error.
  EXPECT_EQ(killOrphanedPods((orphans / "missing").string()), 0);
  ASSERT_TRUE(events.waitFor(PodPhase::kBackOff, 1, 10s)) << events.dump();
  EXPECT_NE(events.dump().find("signal 9"), std::string::npos) << events.dump();
  ASSERT_TRUE(pods.stop("sleeper").ok());
  EXPECT_FALSE(fs::exists(spec.pid_file));
}

TEST(PodManager, APodWithAProxyServesThroughItAndRestartsWhole) {
  common::RealTimeSource time;
  Events events;
  PodManager pods(time, [&](const PodEvent& e) { events.add(e); });
  PodSpec spec = modelserverPod("proxied");
  spec.proxy_argv = {testing::binDir() + "/queue-proxy", "--http_port", "{{.Port}}", "--admin_port",
                     "{{.AdminPort}}", "--user_port", "{{.UserPort}}", "--drain_quiet_period_ms", "0",
                     "--pod_name", "proxied"};
  auto started = pods.start(spec);
  ASSERT_TRUE(started.ok()) << started.status();
  EXPECT_NE(started->port, started->user_port);
  EXPECT_NE(started->admin_port, 0);
  ASSERT_TRUE(events.waitFor(PodPhase::kReady, 0, 30s)) << events.dump();
  http::Client through("127.0.0.1", started->port);
  auto res = through.request("POST", "/v1/models/iris:predict", R"({"instances":[[6.8,2.8,4.8,1.4]]})");
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(res->body(), R"({"predictions":[1]})");
  http::Client admin("127.0.0.1", started->admin_port);
  auto stats = admin.request("GET", "/stats");
  ASSERT_TRUE(stats.ok());
  EXPECT_NE(stats->body().find("\"pod_name\":\"proxied\""), std::string::npos) << stats->body();

  // The proxy dying takes the pod down: both processes start again.
  auto before = pods.status("proxied");
  ASSERT_TRUE(before.ok());
  ::kill(before->proxy_pid, SIGKILL);
  ASSERT_TRUE(events.waitFor(PodPhase::kBackOff, 1, 10s)) << events.dump();
  ASSERT_TRUE(events.waitFor(PodPhase::kReady, 1, 30s)) << events.dump();
  auto after = pods.status("proxied");
  EXPECT_NE(after->pid, before->pid);
  EXPECT_NE(after->proxy_pid, before->proxy_pid);
  EXPECT_NE(events.dump().find("crashed (proxy killed by signal 9"), std::string::npos) << events.dump();
  ASSERT_TRUE(pods.stop("proxied").ok());
  EXPECT_NE(events.dump().find("stopped (exit code 0; proxy exit code 0)"), std::string::npos) << events.dump();
}

}  // namespace
}  // namespace kh::pods
