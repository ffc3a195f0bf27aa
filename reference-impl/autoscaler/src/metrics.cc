#include "kh/autoscaler/metrics.h"

#include <cmath>

namespace kh::autoscaler {
namespace {

// 1.96² · 100 / 5²: the sample size for an unbounded population.
constexpr double kUnboundedSampleSize = 1.96 * 1.96 * 100.0 / (5.0 * 5.0);
constexpr std::string_view kNoDataMessage = "no data available";

}  // namespace

int sampleSize(int population) {
  if (population <= 3) return population < 0 ? 0 : population;
  const double n = population;
  return static_cast<int>(std::ceil(n * kUnboundedSampleSize / (n + kUnboundedSampleSize - 1)));
}

Stat aggregateScrapedStats(const std::vector<Stat>& samples, int readyPods) {
  Stat out;
  out.pod_name = std::string(kScraperPodName);
  if (samples.empty()) return out;
  for (const Stat& s : samples) {
    out.average_concurrent_requests += s.average_concurrent_requests;
    out.average_proxied_concurrent_requests += s.average_proxied_concurrent_requests;
    out.request_count += s.request_count;
    out.proxied_request_count += s.proxied_request_count;
  }
  const double sample = static_cast<double>(samples.size());
  const double total = readyPods;
  out.average_concurrent_requests = out.average_concurrent_requests / sample * total;
  out.average_proxied_concurrent_requests =
      out.average_proxied_concurrent_requests / sample * total;
  out.request_count = out.request_count / sample * total;
  out.proxied_request_count = out.proxied_request_count / sample * total;
  return out;
}

absl::Status noDataError() {
  // Made once and shared: a status with a message is a heap object, and the decider asks for
  // metrics every tick of every revision (copies only count references).
  static const absl::Status* const kNoData = new absl::Status(
      absl::UnavailableError(absl::string_view(kNoDataMessage.data(), kNoDataMessage.size())));
  return *kNoData;
}

bool isNoData(const absl::Status& status) {
  return status.code() == absl::StatusCode::kUnavailable &&
         status.message() == absl::string_view(kNoDataMessage.data(), kNoDataMessage.size());
}

MetricSpec makeMetricSpec(const RevisionScaling& scaling) {
  MetricSpec spec;
  spec.stable_window = scaling.stable_window;
  spec.panic_window = scaling.panic_window;
  spec.aggregation = scaling.aggregation;
  spec.has_scrape_target = scaling.target_burst_capacity != -1;
  return spec;
}

MetricCollector::MetricCollector(const MetricSpec& spec)
    : spec_(spec),
      concurrency_stable_(makeBuckets(spec.stable_window)),
      concurrency_panic_(makeBuckets(spec.panic_window)),
      rps_stable_(makeBuckets(spec.stable_window)),
      rps_panic_(makeBuckets(spec.panic_window)) {}

std::unique_ptr<WindowAverager> MetricCollector::makeBuckets(Duration window) const {
  if (spec_.aggregation == AggregationAlgorithm::kWeightedExponential) {
    return std::make_unique<WeightedFloat64Buckets>(window, kBucketSize);
  }
  return std::make_unique<TimedFloat64Buckets>(window, kBucketSize);
}

void MetricCollector::record(TimePoint now, const Stat& stat) {
  if (spec_.only_metric != ScalingMetric::kRps) {
    const double concurrency =
        stat.average_concurrent_requests - stat.average_proxied_concurrent_requests;
    concurrency_stable_->record(now, concurrency);
    concurrency_panic_->record(now, concurrency);
  }
  if (spec_.only_metric != ScalingMetric::kConcurrency) {
    const double rps = stat.request_count - stat.proxied_request_count;
    rps_stable_->record(now, rps);
    rps_panic_->record(now, rps);
  }
}

void MetricCollector::update(TimePoint now, const MetricSpec& spec) {
  const bool algorithm_changed = spec.aggregation != spec_.aggregation;
  spec_ = spec;
  if (algorithm_changed) {
    // Knative builds the buckets once per collection; a new algorithm needs new buckets.
    concurrency_stable_ = makeBuckets(spec.stable_window);
    concurrency_panic_ = makeBuckets(spec.panic_window);
    rps_stable_ = makeBuckets(spec.stable_window);
    rps_panic_ = makeBuckets(spec.panic_window);
    return;
  }
  concurrency_stable_->resizeWindow(now, spec.stable_window);
  concurrency_panic_->resizeWindow(now, spec.panic_window);
  rps_stable_->resizeWindow(now, spec.stable_window);
  rps_panic_->resizeWindow(now, spec.panic_window);
}

absl::StatusOr<StableAndPanic> MetricCollector::stableAndPanicConcurrency(TimePoint now) const {
  if (concurrency_stable_->isEmpty(now) && spec_.has_scrape_target) return noDataError();
  return StableAndPanic{concurrency_stable_->windowAverage(now),
                        concurrency_panic_->windowAverage(now)};
}

absl::StatusOr<StableAndPanic> MetricCollector::stableAndPanicRps(TimePoint now) const {
  if (rps_stable_->isEmpty(now) && spec_.has_scrape_target) return noDataError();
  return StableAndPanic{rps_stable_->windowAverage(now), rps_panic_->windowAverage(now)};
}

}  // namespace kh::autoscaler
