#pragma once
// refstack: the reference serving stack in one daemon. The admin port serves a Kubernetes API
// (unmodified kubectl and the kubernetes client drive it, with the kubeconfig written into the
// state directory) and refstack's own routes (apply, the event log, metrics). The controller
// turns each InferenceService into revisions of pods (modelserver processes, or any custom
// container command) and a traffic table; the ingress (HTTP and gRPC) routes requests by Host /
// :authority / host metadata to the revisions' ready pods, through the activator at zero pods,
// splitting canary traffic and answering tag hosts; the KPA scales the predictor. State (the
// resources and revisions) persists in the state directory and is restored on start.

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kh/common/time_source.h"
#include "kh/events/events.h"
#include "nlohmann/json.hpp"

namespace kh::refstack {

struct Config {
  /** Pod logs, pid files, downloads and state.json live here. */
  std::filesystem::path state_dir = "/tmp/refstack";
  std::string address = "127.0.0.1";
  uint16_t admin_port = 8090;
  uint16_t ingress_port = 8080;
  uint16_t grpc_ingress_port = 8081;
  /** When set, every admin request must carry "Authorization: Bearer <token>". */
  std::string admin_token;
  std::string domain = "example.com";
  /** Image (without tag) -> command; the container's args follow. */
  std::map<std::string, std::vector<std::string>> images;
  /** Directory of built-in ClusterServingRuntime YAML files. */
  std::filesystem::path runtimes_dir;
  /** Relative storageUri paths resolve here. */
  std::filesystem::path base_dir = std::filesystem::current_path();
  /** pvc://NAME/PATH maps to pvc_root/NAME/PATH (default <state_dir>/pvc). */
  std::filesystem::path pvc_root;
  /** Extra CA (PEM) trusted for https:// storage URIs, beside the system's. */
  std::filesystem::path storage_ca_file;
  /** Ingress worker threads (each with its own io_context and keep-alive pools to pods). */
  int ingress_workers = 2;
  std::chrono::milliseconds revision_timeout{300'000};
  std::chrono::milliseconds pod_grace_period{10'000};
  /**
   * The queue-proxy command put in front of every pod (empty: pods take traffic directly and
   * the autoscaler has no stats; refstack's CLI sets the built binary).
   */
  std::vector<std::string> queue_proxy;
  /** queue-proxy's drain quiet period when a pod stops (Knative: 30 s). */
  std::chrono::milliseconds drain_quiet_period{1'000};
  /** Knative's config-autoscaler keys ("stable-window": "6s", ...), over Knative's defaults. */
  std::map<std::string, std::string> autoscaler;
  /** How often the KPA decides (Knative: 2 s); stats are scraped every tick / 2. */
  std::chrono::milliseconds autoscaler_tick{2'000};
  /** Requests the activator holds per revision while it scales from zero; more get 503. */
  size_t activator_queue_limit = 1000;
  /**
   * Seeds every random draw of the stack (canary splits, load balancing, request ids), so a run
   * can be repeated exactly.
   */
  uint64_t random_seed = 1;
};

/**
 * The images refstack runs out of the box, as commands in `bin_dir` (where refstack's own
 * executable is): KServe-harness's model server and transformer, KServe's InferenceGraph router
 * (kserve/router) and the two helper images of KServe's graph e2e tests
 * (kserve/success-200-isvc, kserve/error-404-isvc), so that their manifests run unchanged.
 */
std::map<std::string, std::vector<std::string>> builtinImages(const std::filesystem::path& bin_dir);

/**
 * Reads refstack's YAML config file (see reference-impl/refstack/README.md) over `base`.
 * @return InvalidArgument "file:line:col: ..." or naming the bad key.
 */
absl::StatusOr<Config> loadConfigFile(const std::filesystem::path& path, Config base);

struct StackImpl;

class Refstack {
 public:
  static absl::StatusOr<std::unique_ptr<Refstack>> start(const Config& config,
                                                          const common::TimeSource& time);
  ~Refstack();

  uint16_t adminPort() const;
  uint16_t ingressPort() const;
  uint16_t grpcIngressPort() const;

  /** Applies a multi-document manifest; nothing changes when any document is invalid. */
  absl::StatusOr<nlohmann::json> apply(const std::string& yaml, const std::string& source);
  /**
   * Deletes a resource. `kind`: InferenceService (isvc), ServingRuntime or ClusterServingRuntime
   * (`ns` is ignored for the latter). @return NotFound, or InvalidArgument for another kind.
   */
  absl::Status remove(const std::string& kind, const std::string& ns, const std::string& name);
  /**
   * Changes a resource by a JSON merge patch (RFC 7386), as `kubectl patch --type=merge`; its
   * admission (KServe's validation) applies. @return NotFound, or the refusal.
   */
  absl::Status patch(const std::string& kind, const std::string& ns, const std::string& name,
                     const nlohmann::json& merge_patch);
  /** Any object the Kubernetes API serves, by kind ("InferenceGraph", ...); `ns` "" when cluster-scoped. */
  absl::StatusOr<nlohmann::json> getObject(const std::string& kind, const std::string& ns,
                                           const std::string& name) const;
  /** An InferenceService with its status (the object the Kubernetes API serves). */
  absl::StatusOr<nlohmann::json> get(const std::string& ns, const std::string& name) const;
  /** Every InferenceService, as a list object. */
  nlohmann::json list() const;
  /**
   * The objects of a kind the Kubernetes API serves (e.g. "Pod", "PodAutoscaler") in `ns` ("" for
   * all), filtered by a label selector ("k=v,..."; "" for all), as the API's list object.
   */
  nlohmann::json listObjects(const std::string& kind, const std::string& ns, const std::string& label_selector) const;
  /** The kubeconfig refstack wrote for kubectl and the kubernetes client (STATE/kubeconfig). */
  std::filesystem::path kubeconfigPath() const;
  /** Events after sequence number `since`, oldest first. */
  std::vector<::kh::events::Event> events(int64_t since) const;
  /**
   * Waits until an event after `since` satisfies `match`, or `timeout` passes. `match` runs
   * with the event log locked: it must not call back into the Refstack.
   * @return the matching event, or nullopt.
   */
  std::optional<::kh::events::Event> waitForEvent(int64_t since,
                                                 const std::function<bool(const ::kh::events::Event&)>& match,
                                                 std::chrono::milliseconds timeout) const;

  /** Blocks until the daemon is asked to stop (POST /shutdown or requestShutdown()). */
  void waitForShutdown();
  void requestShutdown();

 private:
  explicit Refstack(std::unique_ptr<StackImpl> impl);
  std::unique_ptr<StackImpl> impl_;
};

}  // namespace kh::refstack
