#pragma once
// The ingress's Prometheus metrics: requests by InferenceService, revision, code and protocol, and
// their latency through the ingress.

#include <cstdint>
#include <string_view>

namespace prometheus {
class Registry;
class Counter;
class Histogram;
template <typename T>
class Family;
}  // namespace prometheus

namespace kh::ingress {

struct Route;

/**
 * Registered once on the stack's registry. Thread-safe; each thread caches the series it used,
 * so a request takes no lock and allocates nothing once its series exists.
 */
class IngressMetrics {
 public:
  explicit IngressMetrics(prometheus::Registry& registry);

  /**
   * One request answered through the ingress. `code` is the HTTP status or the gRPC status code;
   * `protocol` is "http" or "grpc".
   */
  void answered(const Route& route, std::string_view revision, int code, const char* protocol, double seconds);
  /** One request refused before it reached a pod (no pod could take it); not timed. */
  void refused(const Route& route, std::string_view revision, int code, const char* protocol);

 private:
  void record(const Route& route, std::string_view revision, int code, const char* protocol, const double* seconds);

  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& seconds_;
  // Tells this instance's cached series from those of one destroyed before (never reused).
  const uint64_t instance_;
};

}  // namespace kh::ingress
