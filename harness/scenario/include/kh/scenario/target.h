#pragma once
// Where a scenario runs. Three targets share one interface:
//  - embedded: kh::refstack::Refstack in this process (temporary state dir, free ports), with the
//    scenario's config-autoscaler overrides; its event log is the observation source.
//  - endpoint: a URL of a model server; no control plane (steps that need one are skipped).
//  - kube: kubectl with a context; apply/delete/get InferenceServices and InferenceGraphs, pods
//    and Knative PodAutoscalers as JSON, traffic through a given ingress host:port with the
//    ISVC's (or graph's) Host.

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kh/common/strings.h"
#include "kh/common/time_source.h"
#include "kh/events/events.h"
#include "kh/scenario/kube_watch.h"
#include "kh/scenario/scenario.h"
#include "nlohmann/json.hpp"

namespace kh::scenario {

/** Where requests for one host go. */
struct Endpoint {
  std::string host;  // address to connect to
  uint16_t http_port = 0;
  uint16_t grpc_port = 0;  // 0: no gRPC
  /** Host header / gRPC :authority (empty when talking to a server directly). */
  std::string authority;
};

struct PodCount {
  int ready = 0;
  int total = 0;
};

/**
 * The autoscaler settings in effect where a scenario runs: timing bounds come from these, never
 * from what refstack would use, so that they hold on a cluster with its own settings.
 */
struct EffectiveAutoscaler {
  std::map<std::string, std::string> config;  // config-autoscaler keys as set (defaults absent)
  double tick_s = 2.0;                        // how often the autoscaler decides
  std::string source;                         // where they were read, for reports
};

/** What a scenario asks of its target when it begins. */
struct TargetSettings {
  std::map<std::string, std::string> autoscaler;  // config-autoscaler overrides
  double autoscaler_tick_s = 0;                   // 0 = the target's default
  std::filesystem::path base_dir;                 // relative storageUri paths resolve here
  StackSettings stack;                            // only where lacks("stack-settings") is empty
};

class Target {
 public:
  virtual ~Target() = default;

  /** "embedded", "endpoint" or "kube". */
  virtual std::string kind() const = 0;
  /** One line for reports, e.g. "embedded refstack (ingress 127.0.0.1:41234)". */
  virtual std::string describe() const = 0;

  /**
   * Why the target cannot do `capability` ("control-plane", "serverless", "events", "pod-signals",
   * "stack-settings", ...), or empty when it can. Valid after begin().
   */
  virtual std::string lacks(const std::string& capability) const = 0;

  /** Starts (embedded) or checks (kube) the target for one scenario. */
  virtual absl::Status begin(const TargetSettings& settings) = 0;
  /** Stops what begin() started; deletes nothing on a cluster but what the scenario applied. */
  virtual void end() = 0;

  /** Applies a (multi-document) manifest. */
  virtual absl::Status apply(const std::string& yaml, const std::string& source) = 0;
  /** Deletes an InferenceService. */
  virtual absl::Status remove(const std::string& ns, const std::string& name) = 0;
  /** Changes an InferenceService by a JSON merge patch (RFC 7386), as `kubectl patch --type=merge`. */
  virtual absl::Status patch(const std::string& ns, const std::string& name, const nlohmann::json& merge_patch) = 0;
  /** An InferenceService with its status (KServe's shape). */
  virtual absl::StatusOr<nlohmann::json> get(const std::string& ns, const std::string& name) = 0;
  /** An InferenceGraph with its status (KServe's shape: conditions, url). */
  virtual absl::StatusOr<nlohmann::json> getGraph(const std::string& ns, const std::string& name) = 0;
  /** Pods of an InferenceService by revision. */
  virtual absl::StatusOr<std::map<std::string, PodCount>> pods(const std::string& ns,
                                                               const std::string& name) = 0;
  /**
   * Events since the previous call, oldest first. The kube target makes ScaleDecided events
   * from PodAutoscaler changes.
   */
  virtual std::vector<events::Event> pollEvents() = 0;
  /**
   * Sends `signal` to the model container of every running pod of the InferenceService (the
   * fault steps: SIGKILL a pod, SIGSTOP one as a hung upstream, SIGCONT it again).
   * @return how many processes were signalled; Unimplemented where the target cannot (see
   *   lacks("pod-signals")).
   */
  virtual absl::StatusOr<int> signalPods(const std::string& ns, const std::string& isvc, int signal) {
    return absl::UnimplementedError(common::strCat(kind(), " target cannot signal pods"));
  }
  /**
   * Requests a per-request load sent to an InferenceService. A target that cannot see its
   * activator (kube) finds cold starts in them: a request that met no Ready pod.
   */
  virtual void requestsSent(const std::string& ns, const std::string& isvc, const std::vector<SentRequest>& requests) {}
  /** The autoscaler settings in effect (after begin()); Unimplemented without a control plane. */
  virtual absl::StatusOr<EffectiveAutoscaler> effectiveAutoscaler() = 0;
  /**
   * Why `ns`/`isvc` cannot be reached over gRPC through this target, or "" when it can. Knative
   * routes one port per revision, HTTP/1 unless the container's port is named h2c.
   */
  virtual std::string lacksGrpc(const std::string& ns, const std::string& isvc) { return ""; }
  /**
   * Where to send requests for an InferenceService; `host` is "" (the service's host), a tag
   * ("latest", "prev") or a full Host name.
   */
  virtual absl::StatusOr<Endpoint> endpoint(const std::string& ns, const std::string& isvc,
                                            const std::string& host) = 0;
  /** Where to send requests for an InferenceGraph (its status.url's host through the ingress). */
  virtual absl::StatusOr<Endpoint> graphEndpoint(const std::string& ns, const std::string& graph) = 0;
};

struct EmbeddedOptions {
  /** Directory of the built binaries (modelserver, queue-proxy, passthrough-transformer). */
  std::filesystem::path bin_dir;
  /** Built-in ClusterServingRuntimes (reference-impl/controller/runtimes). */
  std::filesystem::path runtimes_dir;
  /** Parent of the temporary state directories (default: the system temp dir). */
  std::filesystem::path temp_root;
  /** Keep the state directory (pod logs) after the run, e.g. under a report. */
  std::filesystem::path keep_logs_in;
};

std::unique_ptr<Target> makeEmbeddedTarget(EmbeddedOptions options, const common::TimeSource& time);

/**
 * A model server at `url` (http://host:port), gRPC at `grpc` (host:port, optional), serving
 * `model`.
 */
absl::StatusOr<std::unique_ptr<Target>> makeEndpointTarget(const std::string& url,
                                                           const std::string& grpc);

struct KubeOptions {
  std::string kubectl = "kubectl";  // the program
  std::string context;
  /** --kubeconfig for every kubectl call ("" : kubectl's own, $KUBECONFIG or ~/.kube/config). */
  std::string kubeconfig;
  /**
   * Write each scenario's config-autoscaler overrides (and nothing else: an apply resets what the
   * previous scenario set) into the knative-serving/config-autoscaler ConfigMap when it begins,
   * as a cluster takes them. Off: the cluster's own settings stay, and the report says so.
   */
  bool apply_autoscaler_config = false;
  /** The ingress gateway as host:port (e.g. a port-forward of istio-ingressgateway). */
  std::string ingress = "127.0.0.1:8080";
  /** Its gRPC port when different (0 = same as HTTP). */
  uint16_t grpc_port = 0;
  /**
   * Where the cluster keeps the demo models (e.g. pvc://kh-models, which kind-cluster/up.sh
   * fills): a manifest's storageUri file://reference-impl/models/DIR becomes STORE/DIR when
   * applied. Empty: such a storageUri is refused with this hint (a cluster cannot read our files).
   */
  std::string model_store;
};

/** The ingress for the kube target when none is given: $KSERVE_INGRESS_HOST_PORT (KServe's e2e
 *  convention), else 127.0.0.1:8080 (kind-cluster's port mapping). */
std::string defaultKubeIngress();

/**
 * Rewrites, in place, the storageUri of every InferenceService among a manifest's `docs` that
 * points into the repository's reference-impl/models/ (file://reference-impl/models/DIR) to
 * `store`/DIR, as the kube target applies them.
 * @return whether any changed; FailedPrecondition, naming the storageUri, when one points there
 *   and `store` is empty.
 */
absl::StatusOr<bool> rewriteModelStore(std::vector<nlohmann::json>& docs, const std::string& store);

std::unique_ptr<Target> makeKubeTarget(KubeOptions options, const common::TimeSource& time);

/** Whether the embedded stack was built with the serverless data plane (Config::autoscaler). */
bool embeddedHasServerless();

/** Parses an InferenceService's Ready condition (status.conditions[type=Ready].status == "True"). */
bool isReady(const nlohmann::json& isvc);

/** The host of status.url ("http://a-b.example.com" -> "a-b.example.com"). */
std::string urlHost(const std::string& url);

}  // namespace kh::scenario
