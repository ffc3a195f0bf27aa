#pragma once
// Shared by the kubectl and Python client tests: an ApiHandler over the refstack catalog (with a
// small admission hook: an InferenceService needs spec.predictor) on a real HttpServer on port 0,
// a temporary HOME with a kubeconfig carrying a bearer token, and child-process helpers.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "kh/http/server.h"
#include "kh/kubeapi/api_handler.h"
#include "kh/kubeapi/errors.h"
#include "kh/kubeapi/kubeconfig.h"
#include "kh/kubeapi/store.h"
#include "kh/process/subprocess.h"

namespace kh::kubeapi::testing {

/** Whether `program` (no '/') is an executable on PATH. */
inline bool onPath(const std::string& program) {
  const char* path = std::getenv("PATH");
  if (path == nullptr) return false;
  std::string_view rest(path);
  while (!rest.empty()) {
    auto colon = rest.find(':');
    std::filesystem::path dir(std::string(rest.substr(0, colon)));
    std::error_code ec;
    auto candidate = dir / program;
    if (std::filesystem::is_regular_file(candidate, ec) && ::access(candidate.c_str(), X_OK) == 0) {
      return true;
    }
    if (colon == std::string_view::npos) break;
    rest.remove_prefix(colon + 1);
  }
  return false;
}

struct RunResult {
  int rc = -1;
  std::string output;  // stdout and stderr, interleaved as written
};

/** Reads a child's output to its end and reaps it, within `timeout`. */
inline RunResult finish(process::Subprocess& child, std::chrono::milliseconds timeout,
                        std::string output = {}) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    auto line = child.readLine(left);
    if (!line.ok()) break;  // end of output, or timed out
    output += *line + "\n";
  }
  RunResult r;
  r.output = std::move(output);
  auto status = child.wait(std::chrono::milliseconds(5000));
  if (status && status->exited) r.rc = status->code;
  return r;
}

class KubeClientFixture : public ::testing::Test {
 protected:
  static constexpr const char* kToken = "kh-test-token";

  /**
   * Whether the API requires kToken (and the kubeconfig carries it). kubectl (client-go's
   * clientcmd) only applies a kubeconfig's credentials when the transport is TLS, so against this
   * plain-HTTP server it never sends the token; the Python client does.
   */
  explicit KubeClientFixture(bool use_token) : use_token_(use_token) {}

  void SetUp() override {
    dir_ =
        std::filesystem::path(::testing::TempDir()) /
        ("kubeapi-" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) +
         "-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_ / "home");
    StoreOptions so;
    so.kinds = refstackKinds();
    so.seed = 1;
    findKind(so.kinds, "InferenceService")->admission = [](const nlohmann::json& obj,
                                                           const nlohmann::json*) {
      if (!obj.contains("spec") || !obj["spec"].contains("predictor")) {
        return invalidError({requiredField("spec.predictor")});
      }
      return absl::OkStatus();
    };
    store_ = std::make_unique<ObjectStore>(so, time_);
    ApiHandlerOptions ho;
    if (use_token_) ho.bearer_token = kToken;
    handler_ = std::make_unique<ApiHandler>(*store_, ho);
    http::ServerOptions server_options;
    server_options.workers = 2;
    auto server = http::HttpServer::create(server_options, *handler_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    server_->start();
    url_ = "http://127.0.0.1:" + std::to_string(server_->port());
    KubeconfigOptions ko;
    ko.server = url_;
    if (use_token_) ko.token = kToken;
    write("kubeconfig", renderKubeconfig(ko));
  }

  void TearDown() override {
    handler_->closeWatches();
    server_.reset();
    handler_.reset();
    store_.reset();
    std::error_code ec;
    if (!HasFailure()) std::filesystem::remove_all(dir_, ec);
  }

  std::string write(const std::string& name, const std::string& content) {
    auto path = dir_ / name;
    std::ofstream(path) << content;
    return path.string();
  }

  std::map<std::string, std::string> env() const {
    return {{"HOME", (dir_ / "home").string()},
            {"KUBECONFIG", (dir_ / "kubeconfig").string()},
            {"NO_PROXY", "127.0.0.1"},
            {"no_proxy", "127.0.0.1"}};
  }

  std::unique_ptr<process::Subprocess> spawn(std::vector<std::string> argv) {
    process::SpawnOptions o;
    o.argv = std::move(argv);
    o.env = env();
    o.working_dir = dir_.string();
    auto child = process::Subprocess::spawn(o);
    EXPECT_TRUE(child.ok()) << child.status();
    return child.ok() ? std::move(*child) : nullptr;
  }

  const bool use_token_;
  common::SimulatedTimeSource time_;
  std::filesystem::path dir_;
  std::unique_ptr<ObjectStore> store_;
  std::unique_ptr<ApiHandler> handler_;
  std::unique_ptr<http::HttpServer> server_;
  std::string url_;
};

}  // namespace kh::kubeapi::testing
