#pragma once
// The HTTP ingress: routes each request by Host and the traffic split to a ready pod of the chosen
// revision without a lock (RoutingState), and forwards it asynchronously on the server worker's
// own keep-alive pool to that pod. It sets the forwarding headers an ingress and Knative set
// (X-Forwarded-*, X-Request-Id, Knative-Serving-*), keeps the original Host, and names the
// revision that served in the Kh-Revision response header. A revision at zero pods has its
// requests held by the activator, which releases them to a pod once one is ready. Large and
// chunked bodies are relayed piece by piece (kh::http::relayStreamed), not buffered.

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "kh/activator/activator.h"
#include "kh/common/time_source.h"
#include "kh/http/server.h"
#include "kh/ingress/metrics.h"
#include "kh/ingress/snapshot.h"

namespace kh::ingress {

/** What the ingress works with; each must outlive it. */
struct IngressDeps {
  const RoutingState* routing = nullptr;
  activator::Activator* activator = nullptr;
  const common::TimeSource* time = nullptr;
  /** Draws traffic splits, balancing and request ids (seeded from the stack's config). */
  activator::RandomSource* random = nullptr;
  IngressMetrics* metrics = nullptr;
  /** The stack's metrics text, answered for GET /metrics on a Host that names no service. */
  std::function<std::string()> metrics_text;
};

struct HttpIngressOptions {
  /** A request through the ingress is answered 504 this long after it arrived. */
  std::chrono::milliseconds request_timeout{300'000};
};

class HttpIngress final : public http::Handler {
 public:
  HttpIngress(IngressDeps deps, HttpIngressOptions options);
  ~HttpIngress() override;

  /** Binds the ingress to the server whose workers run it; call before the server starts. */
  void attach(http::HttpServer& server);
  /** Drops the connection pools; call once the server's workers have stopped. */
  void stop();

  // http::Handler
  void handle(http::Request&, http::Response&) override {}
  bool isAsync() const override { return true; }
  void handleAsync(http::Request&& request, http::Responder responder) override;
  bool streamsBody(const http::RequestHeader&) override { return true; }
  void handleStreamed(http::StreamedRequestPtr request) override;

  /** The implementation (named here so that its file's helpers can hold it). */
  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace kh::ingress
