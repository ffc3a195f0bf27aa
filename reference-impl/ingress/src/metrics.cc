#include "kh/ingress/metrics.h"

#include <atomic>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "kh/ingress/routing.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace kh::ingress {
namespace {

const prometheus::Histogram::BucketBoundaries kLatencyBuckets = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

// Never reused, so a cache entry of a destroyed IngressMetrics is never found again.
std::atomic<uint64_t> next_instance{1};

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

struct Series {
  prometheus::Counter* requests = nullptr;
  prometheus::Histogram* seconds = nullptr;  // null for a refusal's series
};

// Family::Add() builds a label map, hashes it and takes the family's mutex: per request that
// was a seventh of the ingress's instructions. Each thread keeps the series it has used, keyed
// by the instance and the label values, so a request finds its counter without a lock or an
// allocation. The series live as long as their family (the ingress never removes one).
struct SeriesCache {
  std::unordered_map<std::string, Series, StringHash, std::equal_to<>> series;
  std::string key;
};
thread_local SeriesCache cache;

std::string_view seriesKey(uint64_t instance, const Route& route, std::string_view revision, int code,
                           const char* protocol) {
  std::string& key = cache.key;
  key.clear();
  key.append(reinterpret_cast<const char*>(&instance), sizeof instance);
  for (std::string_view part : {std::string_view(route.isvc), std::string_view(route.namespace_name), revision,
                                std::string_view(protocol)}) {
    key.append(part);
    key.push_back('\0');
  }
  key.append(reinterpret_cast<const char*>(&code), sizeof code);
  return key;
}

}  // namespace

IngressMetrics::IngressMetrics(prometheus::Registry& registry)
    : requests_(prometheus::BuildCounter()
                    .Name("kh_ingress_requests_total")
                    .Help("Requests through the ingress by InferenceService, revision and code")
                    .Register(registry)),
      seconds_(prometheus::BuildHistogram()
                   .Name("kh_ingress_request_seconds")
                   .Help("Latency through the ingress, by InferenceService and protocol")
                   .Register(registry)),
      instance_(next_instance.fetch_add(1, std::memory_order_relaxed)) {}

void IngressMetrics::refused(const Route& route, std::string_view revision, int code, const char* protocol) {
  record(route, revision, code, protocol, nullptr);
}

void IngressMetrics::answered(const Route& route, std::string_view revision, int code, const char* protocol,
                              double seconds) {
  record(route, revision, code, protocol, &seconds);
}

void IngressMetrics::record(const Route& route, std::string_view revision, int code, const char* protocol,
                            const double* seconds) {
  std::string_view key = seriesKey(instance_, route, revision, code, protocol);
  auto it = cache.series.find(key);
  if (it == cache.series.end()) {
    Series series;
    series.requests = &requests_.Add({{"isvc", route.isvc},
                                      {"namespace", route.namespace_name},
                                      {"revision", std::string(revision)},
                                      {"code", std::to_string(code)},
                                      {"protocol", protocol}});
    it = cache.series.emplace(std::string(key), series).first;
  }
  it->second.requests->Increment();
  if (seconds == nullptr) return;
  if (it->second.seconds == nullptr) {
    it->second.seconds =
        &seconds_.Add({{"isvc", route.isvc}, {"namespace", route.namespace_name}, {"protocol", protocol}},
                      kLatencyBuckets);
  }
  it->second.seconds->Observe(*seconds);
}

}  // namespace kh::ingress
