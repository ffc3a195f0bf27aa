#pragma once
// "Pods" of the reference stack: process groups started cold on a free loopback port, probed for
// readiness over HTTP, restarted with exponential back-off when they crash, and stopped
// gracefully (SIGTERM, a grace period, then SIGKILL). Every transition is reported as an event.

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kh/common/time_source.h"

namespace kh::pods {

/**
 * What a pod's container gets of refstack's own environment: only these (its locale, paths, the
 * GPU and sanitizer settings a user may need to pass on). Everything else a container sees is its
 * spec's `env` (the manifest's, the runtime's, refstack's KH_* wiring) and PORT / GRPC_PORT, as a
 * Kubernetes pod sees only what its spec gives it; refstack's settings never leak into a user's
 * container. The queue-proxy beside it is ours and inherits everything.
 */
inline constexpr const char* kInheritedEnvironment[] = {
    "PATH", "HOME", "TMPDIR", "LANG", "LC_ALL", "TZ", "LD_LIBRARY_PATH", "CUDA_VISIBLE_DEVICES",
    "NVIDIA_VISIBLE_DEVICES", "KH_DENSE_CUDA_PLUGIN", "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS",
    "TSAN_OPTIONS"};

struct PodSpec {
  std::string name;
  /**
   * argv; "{{.Port}}" in any argument becomes the pod's HTTP port (also in $PORT), and
   * "{{.GrpcPort}}" a second port for gRPC (also in $GRPC_PORT), allocated only when used.
   */
  std::vector<std::string> argv;
  std::map<std::string, std::string> env;
  /** Output of the pod's processes is appended here. */
  std::string log_file;
  /**
   * While the pod's process runs, its process-group id and start time are kept in this file
   * (when set), so a refstack that was killed can end the pods it left behind
   * (killOrphanedPods).
   */
  std::string pid_file;
  /**
   * Optional proxy in front of the main container, as Knative's queue-proxy: started after the
   * main container, stopped before it (so it can drain), and the pod's traffic port and
   * readiness are its. In its argv "{{.Port}}" is the pod's traffic port, "{{.UserPort}}" the
   * main container's port and "{{.AdminPort}}" a third port (stats, probes); in the main
   * container's argv "{{.Port}}" is then the user port. When the proxy's argv names
   * "{{.UserGrpcPort}}", it proxies gRPC too: its "{{.GrpcPort}}" is the pod's gRPC port and
   * "{{.UserGrpcPort}}" the main container's (its "{{.GrpcPort}}"); both are 0 when the main
   * container asks for no gRPC port. Either process ending restarts the pod.
   */
  std::vector<std::string> proxy_argv;
  /** Readiness of a pod with a proxy: this path on the proxy's admin port. */
  std::string proxy_readiness_path = "/ready";
  /** HTTP path answering 200 once the pod can take traffic. */
  std::string readiness_path = "/v2/health/ready";
  /** Readiness probing while the pod starts (fast: it bounds cold start) ... */
  std::chrono::milliseconds probe_period{50};
  /** ... and once it is ready (losing readiness is noticed this late). */
  std::chrono::milliseconds ready_probe_period{500};
  std::chrono::milliseconds grace_period{30'000};
  std::chrono::milliseconds initial_backoff{100};
  std::chrono::milliseconds max_backoff{10'000};
};

enum class PodPhase { kStarting, kReady, kBackOff, kStopping, kStopped };
const char* podPhaseName(PodPhase phase);

struct PodEvent {
  common::SystemTime time;
  std::string pod;
  PodPhase phase;
  int restarts = 0;
  std::string message;
  uint16_t port = 0;
  uint16_t grpc_port = 0;
  uint16_t admin_port = 0;
};

struct PodStatus {
  std::string name;
  PodPhase phase = PodPhase::kStarting;
  uint16_t port = 0;       // where traffic goes (the proxy's port when there is one)
  uint16_t grpc_port = 0;  // 0 unless the argv asks for {{.GrpcPort}}; the proxy's when it takes gRPC
  uint16_t user_grpc_port = 0;  // the main container's gRPC port (== grpc_port unless proxied)
  uint16_t user_port = 0;  // the main container's port (== port without a proxy)
  uint16_t admin_port = 0; // the proxy's admin port (0 without a proxy)
  int pid = 0;             // the main container's process (group)
  int proxy_pid = 0;
  int restarts = 0;
  std::string last_exit;  // how the last process ended
};

/**
 * Ends (SIGKILL to the process group) every pod recorded by a pid file in `dir` whose process
 * still runs with the recorded start time, and removes the files. @return how many were ended.
 */
int killOrphanedPods(const std::string& dir);

/**
 * Runs pods. Thread-safe; a supervision thread probes and reaps children. Events are delivered
 * on that thread and must not call back into the manager.
 */
class PodManager {
 public:
  /**
   * `time` stamps events and times back-off and probe periods: under a simulated clock a pod
   * is probed and restarted only as the clock is moved.
   */
  PodManager(const common::TimeSource& time, std::function<void(const PodEvent&)> on_event);
  ~PodManager();  // stops every pod (SIGKILL after a short grace)

  /** Starts a pod; its port is chosen now. @return InvalidArgument for a duplicate name. */
  absl::StatusOr<PodStatus> start(PodSpec spec);
  /** Stops a pod: SIGTERM, then SIGKILL after its grace period; blocks until it is gone. */
  absl::Status stop(const std::string& name);
  absl::StatusOr<PodStatus> status(const std::string& name) const;
  std::vector<PodStatus> list() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kh::pods
