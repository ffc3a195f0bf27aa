#pragma once
// refstack: the reference serving stack in one daemon. An admin API takes KServe manifests; a
// reconciler turns each InferenceService into revisions of pods (modelserver processes, or any
// custom container command) and a traffic table; the ingress routes requests by Host to the
// revisions' ready pods, splitting canary traffic and answering tag hosts.
//
// Status: first vertical slice. Not yet here: the watch stream as chunked HTTP (events are
// polled), state restore after a restart, gRPC ingress, streaming proxy with connection pools
// (the proxy buffers bodies on a thread pool), Prometheus metrics of the admin API and ingress.

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kh/common/time_source.h"
#include "nlohmann/json.hpp"

namespace kh::refstack {

struct Config {
  std::filesystem::path state_dir = "/tmp/refstack";
  std::string address = "127.0.0.1";
  uint16_t admin_port = 8090;
  uint16_t ingress_port = 8080;
  std::string domain = "example.com";
  /** Image (without tag) -> command; args of the runtime's container follow. */
  std::map<std::string, std::vector<std::string>> images;
  /** Directory of built-in ClusterServingRuntime YAML files. */
  std::filesystem::path runtimes_dir;
  /** Relative storageUri paths resolve here. */
  std::filesystem::path base_dir = std::filesystem::current_path();
  int proxy_threads = 8;
};

class Refstack {
 public:
  static absl::StatusOr<std::unique_ptr<Refstack>> start(const Config& config,
                                                          const common::TimeSource& time);
  ~Refstack();

  uint16_t adminPort() const;
  uint16_t ingressPort() const;

  /** Applies a multi-document manifest; nothing changes when any document is invalid. */
  absl::StatusOr<nlohmann::json> apply(const std::string& yaml, const std::string& source);
  absl::Status remove(const std::string& kind, const std::string& ns, const std::string& name);
  absl::StatusOr<nlohmann::json> get(const std::string& ns, const std::string& name) const;
  nlohmann::json list() const;
  /** Events after sequence number `since` (JSON objects with "seq", "time", "type", ...). */
  std::vector<nlohmann::json> events(int64_t since) const;
  /**
   * Waits until an event after `since` satisfies `match`, or `timeout` passes. `match` runs
   * with the event log locked: it must not call back into the Refstack.
   * @return the matching event, or nullopt.
   */
  std::optional<nlohmann::json> waitForEvent(int64_t since,
                                             const std::function<bool(const nlohmann::json&)>& match,
                                             std::chrono::milliseconds timeout) const;

  /** Blocks until the daemon is asked to stop (POST /shutdown or a signal elsewhere). */
  void waitForShutdown();
  void requestShutdown();

 private:
  struct Impl;
  explicit Refstack(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kh::refstack
