#pragma once
// Knative's queue-proxy: the sidecar in front of one user container (a model server) in a pod.
// It proxies every request to the container over per-worker keep-alive connection pools,
// enforces containerConcurrency with a breaker (10*CC queued + CC in flight, 503 "pending
// request queue full" beyond), times requests out at the revision timeout (504 "request
// timeout"), measures time-weighted concurrency for the autoscaler, answers the activator's and
// kubelet's probes once the container is ready, and drains on shutdown.
//
// Ports: `http` serves the traffic and the network probes; `grpc` (when the user container has a
// gRPC port) proxies gRPC calls (unary and streaming) through the same breaker, timeout and stats (Knative serves
// h2c on its traffic port; here it is a port of its own); `admin` serves GET /stats (the last
// reporting period as JSON), GET /ready (kubelet readiness) and GET /wait-for-drain (blocks
// until the drain's quiet period is over, for the user container's preStop hook).

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "kh/common/time_source.h"
#include "kh/queueproxy/request_stats.h"

namespace kh::queueproxy {

struct QueueProxyOptions {
  /** Address both listeners bind. */
  std::string host = "127.0.0.1";
  /** Traffic port (Knative 8012); 0 picks a free one. */
  uint16_t http_port = 0;
  /** Admin/metrics port (Knative 8022/9090 folded into one); 0 picks a free one. */
  uint16_t admin_port = 0;
  /** The user container, on loopback. */
  std::string user_host = "127.0.0.1";
  uint16_t user_port = 8080;
  /** The user container's gRPC port; 0: no gRPC proxying. */
  uint16_t user_grpc_port = 0;
  /** gRPC traffic port (used only with user_grpc_port); 0 picks a free one. */
  uint16_t grpc_port = 0;
  /** containerConcurrency; 0 means no breaker. */
  int container_concurrency = 0;
  /** The revision's timeoutSeconds: from arrival, queueing included, to the response. */
  std::chrono::milliseconds revision_timeout{300'000};
  /** On shutdown, how long no request may arrive before the drain proceeds. */
  std::chrono::milliseconds drain_quiet_period{30'000};
  /** The user container's readiness path (a V2 model server's by default). */
  std::string user_readiness_path = "/v2/health/ready";
  /** Aggressive readiness probing until the first success (Knative: 50ms / 100ms per try). */
  std::chrono::milliseconds readiness_retry_interval{50};
  std::chrono::milliseconds readiness_probe_timeout{100};
  /** Stats reporting period (Knative: 1s). */
  std::chrono::nanoseconds reporting_period = std::chrono::seconds(1);
  /** Traffic worker threads; each keeps its own pool of connections to the user container. */
  int workers = 1;
  /** Reported as pod_name in the stats. */
  std::string pod_name = "queue-proxy";
  size_t max_body_bytes = 32u << 20;
};

class QueueProxy {
 public:
  /**
   * Binds both ports (so the port accessors are valid on return) but serves nothing until
   * start(). `time` must outlive the proxy; it drives the stats periods and uptime.
   * @return Unavailable when a port cannot be bound, InvalidArgument for bad options.
   */
  static absl::StatusOr<std::unique_ptr<QueueProxy>> create(const QueueProxyOptions& options,
                                                            const common::TimeSource& time);
  /** Stops at once if shutdown() was not called (in-flight requests are cut). */
  ~QueueProxy();
  QueueProxy(const QueueProxy&) = delete;
  QueueProxy& operator=(const QueueProxy&) = delete;

  /** Starts serving and probing the user container. Logs "user container ready" once it is. */
  void start();

  uint16_t httpPort() const;
  /** The gRPC traffic port; 0 without gRPC. */
  uint16_t grpcPort() const;
  uint16_t adminPort() const;
  /** Whether the last readiness check of the user container passed. */
  bool userReady() const;
  /** The last completed reporting period, as GET /stats reports it. */
  StatsReport lastStats() const;

  /**
   * SIGTERM: probes start failing (503 "shutting down") while traffic is still served; once
   * drain_quiet_period has passed with no request arriving, stops accepting, lets the requests
   * in flight finish (up to revision_timeout) and stops. Blocks until then; call once, from a
   * thread that is not a worker.
   */
  void shutdown();

  struct Impl;

 private:
  explicit QueueProxy(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kh::queueproxy
