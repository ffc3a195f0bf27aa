#pragma once
// The gRPC ingress: any method (unary or streaming) is routed exactly as the HTTP ingress routes by
// Host: by the call's :authority, or, when that names no InferenceService, by a `host` metadata
// entry (KServe's own e2e clients call an IP :authority and send the service's host that way). It
// forwards as raw bytes (kh::grpcproxy) to the chosen pod's gRPC port (its queue-proxy's, which
// applies the breaker and counts the call for the autoscaler) with the caller's metadata and a
// deadline of the request timeout from arrival; the initial metadata names the revision that
// served (kh-revision). A call for a revision at zero pods is held by the activator like an HTTP
// request. A stream is routed when its first message arrives.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "kh/ingress/http_ingress.h"

namespace kh::ingress {

struct GrpcIngressOptions {
  std::string address = "127.0.0.1";
  uint16_t port = 0;  // 0 picks a free port
  std::chrono::milliseconds request_timeout{300'000};
};

class GrpcIngress {
 public:
  /** Listens and serves at once. @return Unavailable when the address cannot be bound. */
  static absl::StatusOr<std::unique_ptr<GrpcIngress>> start(IngressDeps deps, GrpcIngressOptions options);
  ~GrpcIngress();

  uint16_t port() const;
  /**
   * Stops serving: calls in progress get 2 s to finish. Stop the activator first, so that held
   * calls are answered instead of waited for.
   */
  void stop();

 private:
  struct Impl;
  explicit GrpcIngress(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kh::ingress
