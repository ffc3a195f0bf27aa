// The `refstack` CLI as a new user runs it: up, apply, get (table, yaml, runtimes), events -w,
// an invalid manifest, down, and up again with the same state directory.

#include <filesystem>
#include <fstream>
#include <regex>

#include <signal.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "absl/cleanup/cleanup.h"
#include "gtest/gtest.h"
#include "kh/http/client.h"
#include "kh/process/subprocess.h"
#include "support/modelserver_process.h"
#include "support/process_exit.h"
#include "support/refstack_process.h"

namespace kh::refstack {
namespace {

using namespace std::chrono_literals;

struct CliRun {
  int code = -1;
  std::string output;
};

class RefstackCli : public ::testing::Test {
 protected:
  void SetUp() override {
    // A directory of the test's own: CTest runs the tests of this fixture in parallel.
    state_ = std::filesystem::path(::testing::TempDir()) /
             (std::string("refstack-cli-") + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(state_);
  }
  void TearDown() override {
    if (daemon_ && daemon_->running()) {
      daemon_->signalGroup(SIGTERM);
      daemon_->wait(30s);
    }
  }

  // Starts `refstack up` on free ports and reads the admin address from its first line.
  void up() {
    auto started = testing::startRefstackProcess(state_);
    ASSERT_TRUE(started.ok()) << started.status();
    daemon_ = std::move(started->process);
    admin_ = started->admin;
    ingress_port_ = started->ingress_port;
  }

  // Follows `refstack events -w` until a line contains `needle`.
  void awaitEvent(const std::string& needle) {
    process::SpawnOptions o;
    o.argv = {testing::binDir() + "/refstack", "--admin", admin_, "events", "-w"};
    auto watch = process::Subprocess::spawn(o);
    ASSERT_TRUE(watch.ok()) << watch.status();
    auto line = (*watch)->waitForLine(needle, 60s);
    (*watch)->signalGroup(SIGTERM);
    (*watch)->wait(10s);
    ASSERT_TRUE(line.ok()) << needle << ": " << line.status();
  }

  // The processes of every pod, from the pid files refstack keeps ("pid start-time" lines).
  std::vector<pid_t> podPids() {
    std::vector<pid_t> pids;
    std::error_code ec;
    for (const auto& f : std::filesystem::directory_iterator(state_ / "pods", ec)) {
      if (f.path().extension() != ".pid") continue;
      std::ifstream in(f.path());
      pid_t pid = 0;
      std::string start;
      while (in >> pid >> start) pids.push_back(pid);
    }
    return pids;
  }

  CliRun cli(std::vector<std::string> args) {
    process::SpawnOptions opts;
    opts.argv = {testing::binDir() + "/refstack", "--admin", admin_};
    for (auto& a : args) opts.argv.push_back(std::move(a));
    opts.working_dir = testing::sourceDir();
    auto child = process::Subprocess::spawn(opts);
    CliRun r;
    if (!child.ok()) return r;
    while (true) {
      auto line = (*child)->readLine(60s);
      if (!line.ok()) break;
      r.output += *line + "\n";
    }
    auto status = (*child)->wait(30s);
    r.code = status && status->exited ? status->code : -1;
    return r;
  }

  std::filesystem::path state_;
  std::string admin_;
  uint16_t ingress_port_ = 0;
  std::unique_ptr<process::Subprocess> daemon_;
};

TEST_F(RefstackCli, UpApplyGetWatchDownAndUpAgain) {
  ASSERT_NO_FATAL_FAILURE(up());
  // Follow the event stream from the start, as `refstack events -w` in another terminal.
  process::SpawnOptions watch_opts;
  watch_opts.argv = {testing::binDir() + "/refstack", "--admin", admin_, "events", "-w"};
  auto watch = process::Subprocess::spawn(watch_opts);
  ASSERT_TRUE(watch.ok());

  auto applied = cli({"apply", "-f", "reference-impl/manifests/xgboost-iris.yaml"});
  EXPECT_EQ(applied.code, 0) << applied.output;
  EXPECT_NE(applied.output.find("InferenceService/xgboost-iris applied"), std::string::npos) << applied.output;
  auto ready = (*watch)->waitForLine(R"("ready":true)", 60s);
  ASSERT_TRUE(ready.ok()) << ready.status();
  (*watch)->signalGroup(SIGTERM);
  (*watch)->wait(10s);

  auto table = cli({"get", "isvc"});
  EXPECT_EQ(table.code, 0);
  EXPECT_TRUE(std::regex_search(table.output, std::regex(R"(xgboost-iris +http://xgboost-iris-default.example.com +True)")))
      << table.output;
  auto yaml = cli({"get", "isvc", "xgboost-iris", "-o", "yaml"});
  EXPECT_NE(yaml.output.find("url: http://xgboost-iris-default.example.com"), std::string::npos) << yaml.output;
  auto wide = cli({"get", "isvc", "-o", "wide"});
  EXPECT_NE(wide.output.find("xgboost-iris-predictor-00001=1/1"), std::string::npos) << wide.output;
  auto runtimes = cli({"get", "clusterservingruntimes"});
  EXPECT_NE(runtimes.output.find("kh-xgboost"), std::string::npos) << runtimes.output;

  std::string bad = (std::filesystem::path(::testing::TempDir()) / "bad-isvc.yaml").string();
  std::ofstream(bad) << "apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\n"
                        "metadata: {name: Bad_Name}\nspec: {predictor: {model: {modelFormat: {name: xgboost}}}}\n";
  auto refused = cli({"apply", "-f", bad});
  EXPECT_EQ(refused.code, 1);
  EXPECT_NE(refused.output.find("Bad_Name"), std::string::npos) << refused.output;
  auto missing = cli({"get", "isvc", "nobody"});
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.output.find("not found"), std::string::npos) << missing.output;

  auto down = cli({"down"});
  EXPECT_EQ(down.code, 0) << down.output;
  auto stopped = daemon_->waitForLine("refstack: stopped", 30s);
  EXPECT_TRUE(stopped.ok()) << stopped.status();
  auto exit = daemon_->wait(10s);
  ASSERT_TRUE(exit.has_value());
  EXPECT_TRUE(exit->exited && exit->code == 0) << exit->describe();

  // Up again on the same state directory: the InferenceService is back and becomes ready.
  ASSERT_NO_FATAL_FAILURE(up());
  process::SpawnOptions again_opts = watch_opts;
  again_opts.argv[2] = admin_;
  auto again = process::Subprocess::spawn(again_opts);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE((*again)->waitForLine(R"("ready":true)", 60s).ok());
  (*again)->signalGroup(SIGTERM);
  (*again)->wait(10s);
  auto restored = cli({"get", "isvc", "xgboost-iris"});
  EXPECT_EQ(restored.code, 0) << restored.output;
  EXPECT_NE(restored.output.find("True"), std::string::npos) << restored.output;
}

// An --admin that is not host:port is a usage error (exit 2) before any request; std::stoi threw.
TEST_F(RefstackCli, AnAdminAddressThatIsNotHostPortIsAUsageError) {
  for (const char* address : {"myhost", "127.0.0.1:x", "127.0.0.1:70000"}) {
    admin_ = address;
    auto r = cli({"get", "isvc"});
    EXPECT_EQ(r.code, 2) << address << ": " << r.output;
    EXPECT_NE(r.output.find("must be host:port"), std::string::npos) << r.output;
  }
}

TEST_F(RefstackCli, SigkillUnderLoadLeavesNoPodAndUpRestoresEverything) {
  ASSERT_NO_FATAL_FAILURE(up());
  auto applied = cli({"apply", "-f", "reference-impl/manifests/xgboost-iris.yaml"});
  ASSERT_EQ(applied.code, 0) << applied.output;
  ASSERT_NO_FATAL_FAILURE(awaitEvent(R"("ready":true)"));
  std::vector<pid_t> pods = podPids();
  ASSERT_GE(pods.size(), 2u) << "a pod is a model server and its queue-proxy";

  // Load through the ingress; refstack is killed once requests are being answered.
  std::mutex mu;
  std::condition_variable cv;
  int answered = 0;
  std::atomic<bool> stop{false};
  std::vector<std::thread> clients;
  // However the test leaves (a failed ASSERT returns at once), the clients stop and are joined.
  absl::Cleanup join_clients = [&] {
    stop = true;
    for (auto& t : clients) t.join();
  };
  for (int i = 0; i < 2; ++i) {
    clients.emplace_back([&] {
      while (!stop) {
        http::Client c("127.0.0.1", ingress_port_, 5s);
        http::Request req{boost::beast::http::verb::post, "/v1/models/xgboost-iris:predict", 11};
        req.set(boost::beast::http::field::host, "xgboost-iris-default.example.com");
        req.set(boost::beast::http::field::content_type, "application/json");
        req.body() = R"({"instances":[[6.8,2.8,4.8,1.4]]})";
        auto res = c.send(std::move(req));
        if (res.ok() && res->result_int() == 200) {
          std::lock_guard lock(mu);
          ++answered;
          cv.notify_all();
        }
      }
    });
  }
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, 30s, [&] { return answered >= 50; })) << answered << " answered";
  }
  ::kill(daemon_->pid(), SIGKILL);
  auto deadline = std::chrono::steady_clock::now() + 2s;
  for (pid_t pid : pods) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    EXPECT_TRUE(testing::awaitProcessExit(pid, std::max(left, 0ms))) << "pod process " << pid << " outlived refstack";
  }
  std::move(join_clients).Invoke();
  daemon_->wait(10s);

  // Up again on the same state directory: everything is back and serves.
  ASSERT_NO_FATAL_FAILURE(up());
  ASSERT_NO_FATAL_FAILURE(awaitEvent(R"("ready":true)"));
  auto restored = cli({"get", "isvc", "xgboost-iris"});
  EXPECT_EQ(restored.code, 0) << restored.output;
  EXPECT_NE(restored.output.find("True"), std::string::npos) << restored.output;
  http::Client c("127.0.0.1", ingress_port_, 10s);
  http::Request req{boost::beast::http::verb::post, "/v1/models/xgboost-iris:predict", 11};
  req.set(boost::beast::http::field::host, "xgboost-iris-default.example.com");
  req.body() = R"({"instances":[[6.8,2.8,4.8,1.4]]})";
  auto res = c.send(std::move(req));
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(res->result_int(), 200u) << res->body();
  EXPECT_EQ(res->body(), R"({"predictions":[1]})");
}

}  // namespace
}  // namespace kh::refstack
