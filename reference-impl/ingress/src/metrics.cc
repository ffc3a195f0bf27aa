#include "kh/ingress/metrics.h"

#include <string>

#include "kh/ingress/routing.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace kh::ingress {
namespace {

const prometheus::Histogram::BucketBoundaries kLatencyBuckets = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

}  // namespace

IngressMetrics::IngressMetrics(prometheus::Registry& registry)
    : requests_(prometheus::BuildCounter()
                    .Name("kh_ingress_requests_total")
                    .Help("Requests through the ingress by InferenceService, revision and code")
                    .Register(registry)),
      seconds_(prometheus::BuildHistogram()
                   .Name("kh_ingress_request_seconds")
                   .Help("Latency through the ingress, by InferenceService and protocol")
                   .Register(registry)) {}

void IngressMetrics::refused(const Route& route, std::string_view revision, int code, const char* protocol) {
  requests_
      .Add({{"isvc", route.isvc},
            {"namespace", route.namespace_name},
            {"revision", std::string(revision)},
            {"code", std::to_string(code)},
            {"protocol", protocol}})
      .Increment();
}

void IngressMetrics::answered(const Route& route, std::string_view revision, int code, const char* protocol,
                              double seconds) {
  refused(route, revision, code, protocol);
  seconds_.Add({{"isvc", route.isvc}, {"namespace", route.namespace_name}, {"protocol", protocol}}, kLatencyBuckets)
      .Observe(seconds);
}

}  // namespace kh::ingress
