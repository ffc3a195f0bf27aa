#pragma once
// Test support for refstack end-to-end tests: a Config on free loopback ports with a state dir
// of the test's own, the built executables as images, and (serverless) a queue-proxy per pod
// with short autoscaler windows; the shipped example manifests.

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <initializer_list>
#include <string>

#include <functional>
#include <vector>

#include "gtest/gtest.h"
#include "kh/events/events.h"
#include "kh/refstack/refstack.h"
#include "support/modelserver_process.h"

namespace kh::testing {

/** The text of a shipped example manifest (reference-impl/manifests/NAME). */
inline std::string manifest(const std::string& name) {
  std::ifstream in(sourceDir() + "/reference-impl/manifests/" + name);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

/** `prefix` names the state dir (with the running test's name). */
inline refstack::Config refstackTestConfig(const std::string& prefix, bool serverless) {
  using namespace std::chrono_literals;
  refstack::Config config;
  config.state_dir = std::string(::testing::TempDir()) + "/" + prefix + "-" +
                     ::testing::UnitTest::GetInstance()->current_test_info()->name();
  std::filesystem::remove_all(config.state_dir);
  config.admin_port = 0;
  config.ingress_port = 0;
  config.grpc_ingress_port = 0;
  config.images = refstack::builtinImages(binDir());
  config.runtimes_dir = sourceDir() + "/reference-impl/controller/runtimes";
  config.base_dir = sourceDir();
  config.pod_grace_period = 5s;
  if (serverless) {
    config.queue_proxy = {binDir() + "/queue-proxy"};
    config.autoscaler = {{"scale-to-zero-grace-period", "1s"}};
    config.autoscaler_tick = 1s;
    config.drain_quiet_period = 200ms;
  }
  return config;
}

/**
 * A waitForEvent predicate: events of type T for which `match` holds, e.g.
 * `eventWhere<events::StatusChanged>([](const auto& s) { return s.ready; })`.
 */
template <typename T, typename F>
std::function<bool(const events::Event&)> eventWhere(F match) {
  return [match](const events::Event& e) {
    const T* p = e.as<T>();
    return p != nullptr && match(*p);
  };
}
template <typename T>
std::function<bool(const events::Event&)> eventOf() {
  return [](const events::Event& e) { return e.as<T>() != nullptr; };
}

/** Events as GET /events shows them, for failure messages. */
inline std::string dumpEvents(const std::vector<events::Event>& list) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& e : list) out.push_back(events::toJson(e));
  return out.dump(1);
}

}  // namespace kh::testing
