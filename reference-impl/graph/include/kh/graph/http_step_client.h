#pragma once
// The router's StepClient over HTTP/1.1: one per server worker, bound to that worker's executor,
// with a kh::http::UpstreamPool per upstream (no locks on the request path). A step URL whose host
// is an IP address (or localhost) is called directly; any other host (an InferenceService's
// cluster-local address, {isvc}.{ns}.svc.cluster.local) is reached through the ingress with that
// Host, as a pod reaches a Kubernetes Service, so a step at zero pods is held by the activator.

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "boost/asio/any_io_executor.hpp"
#include "kh/graph/router.h"
#include "kh/http/upstream_pool.h"

namespace kh::graph {

struct HostPort {
  std::string host;
  uint16_t port = 0;
};

class HttpStepClient final : public StepClient {
 public:
  /** @param ingress where non-IP hosts are sent (KH_INGRESS_ADDRESS); none: they fail. */
  HttpStepClient(boost::asio::any_io_executor executor, std::optional<HostPort> ingress);
  ~HttpStepClient() override;

  /** Must be called on the executor's thread; `done` runs there too. */
  void call(StepRequest request, Callback done) override;

 private:
  absl::StatusOr<http::UpstreamPool*> poolFor(const HostPort& upstream);

  boost::asio::any_io_executor executor_;
  std::optional<HostPort> ingress_;
  std::map<std::string, std::unique_ptr<http::UpstreamPool>> pools_;  // "host:port" -> pool
};

}  // namespace kh::graph
