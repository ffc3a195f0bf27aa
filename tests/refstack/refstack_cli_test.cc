// The `refstack` CLI as a new user runs it: up, apply, get (table, yaml, runtimes), events -w,
// an invalid manifest, down, and up again with the same state directory.

#include <filesystem>
#include <fstream>
#include <regex>

#include "gtest/gtest.h"
#include "kh/process/subprocess.h"
#include "support/modelserver_process.h"

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
    state_ = std::filesystem::path(::testing::TempDir()) / "refstack-cli";
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
    process::SpawnOptions opts;
    opts.argv = {testing::binDir() + "/refstack", "up", "--state-dir", state_.string(), "--admin-port", "0",
                 "--ingress-port", "0", "--grpc-port", "0"};
    opts.working_dir = testing::sourceDir();
    auto child = process::Subprocess::spawn(opts);
    ASSERT_TRUE(child.ok()) << child.status();
    daemon_ = std::move(*child);
    auto line = daemon_->waitForLine("refstack up:", 30s);
    ASSERT_TRUE(line.ok()) << line.status();
    std::smatch m;
    ASSERT_TRUE(std::regex_search(*line, m, std::regex(R"(admin http://([0-9.]+:[0-9]+))"))) << *line;
    admin_ = m[1];
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

}  // namespace
}  // namespace kh::refstack
