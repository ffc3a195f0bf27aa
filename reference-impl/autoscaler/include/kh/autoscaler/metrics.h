#pragma once
// The metric side of the KPA (knative.md §2.1, §4): the Stat that queue-proxy and the activator
// report, the per-revision collection of windowed averages (pkg/autoscaler/metrics/
// collector.go), and the scraper's sample size (sample_size.go). No network here: the caller
// scrapes (or receives activator stats) and records them with the time it got them.

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kh/autoscaler/buckets.h"
#include "kh/autoscaler/config.h"

namespace kh::autoscaler {

/**
 * One report (`metrics.Stat`, stat.proto). From queue-proxy it is one pod's 1s report; from
 * the scraper it is already revision-wide (sum over the sample × total/sample, pod name
 * "service-scraper"); from the activator it covers the requests it proxied.
 */
struct Stat {
  std::string pod_name;
  /** Time-weighted mean of in-flight requests over the reporting period. */
  double average_concurrent_requests = 0;
  /** The part of the above that came through the activator (K-Proxy-Request: activator). */
  double average_proxied_concurrent_requests = 0;
  /** Requests per second seen over the period. */
  double request_count = 0;
  double proxied_request_count = 0;
  double process_uptime = 0;
};

/** Pod name the scraper gives its revision-wide stat. */
inline constexpr std::string_view kScraperPodName = "service-scraper";

/**
 * populationMeanSampleSize()
 *
 * How many of `population` pods the scraper samples: N when N ≤ 3, else ceil(N·X/(N+X−1))
 * with X = 1.96²·100/5² = 15.3664 (95% confidence, margin 5, variance 100). Population
 * 0,1,2,5,10,100,1000 → 0,1,2,4,7,14,16. Negative populations give 0.
 */
int sampleSize(int population);

/**
 * Sums the sampled pods' stats and scales the sum to the whole revision (`add` then
 * `average(sample, total)`): each field becomes sum/len(samples)·readyPods, pod name
 * kScraperPodName. Empty samples give an all-zero stat.
 */
Stat aggregateScrapedStats(const std::vector<Stat>& samples, int readyPods);

/** A stable-window and a panic-window average of one metric. */
struct StableAndPanic {
  double stable = 0;
  double panic = 0;
};

/**
 * The error the collector returns while it has no data for the stable window (Go's
 * `ErrNoData`): the decider then reports an invalid result and the last decision stands.
 * It is an Unavailable status with the message "no data available".
 */
absl::Status noDataError();
/** @return true for the status made by noDataError(). */
bool isNoData(const absl::Status& status);

/** Where the decider reads its inputs (`metrics.MetricClient`). */
class MetricClient {
 public:
  virtual ~MetricClient() = default;
  /** Observed concurrency (revision total) over the stable and panic windows as of `now`. */
  virtual absl::StatusOr<StableAndPanic> stableAndPanicConcurrency(TimePoint now) const = 0;
  /** Observed requests per second over the stable and panic windows as of `now`. */
  virtual absl::StatusOr<StableAndPanic> stableAndPanicRps(TimePoint now) const = 0;
};

/** What a collection is built from (`autoscalingv1alpha1.Metric` spec). */
struct MetricSpec {
  Duration stable_window = std::chrono::seconds(60);
  Duration panic_window = std::chrono::seconds(6);
  AggregationAlgorithm aggregation = AggregationAlgorithm::kLinear;
  /**
   * Whether pods are scraped (Go: ScrapeTarget != ""). False when TBC = -1: the activator
   * sees every request, so its stats suffice and an empty window is a real zero, not ErrNoData.
   */
  bool has_scrape_target = true;
  /**
   * Keep only this metric's windows (not Knative's: it always records both). For an owner whose
   * settings never change during the collector's life, as in a simulation, where the other
   * pair is never read and recording it is half the work of a stat. Unset: both.
   */
  std::optional<ScalingMetric> only_metric;
};

/** The metric spec of a revision (`MakeMetric` + `resolveScrapeTarget`). */
MetricSpec makeMetricSpec(const RevisionScaling& scaling);

/**
 * MetricCollector: the four bucket sets of one revision (concurrency and RPS, each over the
 * stable and the panic window; linear or weighted per the spec). `record` stores
 * concurrency = AverageConcurrentRequests − AverageProxiedConcurrentRequests and
 * rps = RequestCount − ProxiedRequestCount, so a request seen by both the activator and
 * queue-proxy counts once; stats landing in the same 1s bucket are summed.
 *
 * Not thread-safe: the owner serializes record/read (the decider's tick and the stat feed run
 * on one loop in our stack).
 */
class MetricCollector final : public MetricClient {
 public:
  explicit MetricCollector(const MetricSpec& spec);

  /** Records a stat received (or scraped) at `now`. */
  void record(TimePoint now, const Stat& stat);
  /** Applies a new spec: windows are resized in place (history kept), the algorithm and
   *  scrape target replaced. Changing the algorithm starts the buckets afresh. */
  void update(TimePoint now, const MetricSpec& spec);
  const MetricSpec& spec() const { return spec_; }

  // kh::autoscaler::MetricClient
  /** @return noDataError() when the stable window is empty and pods are scraped. */
  absl::StatusOr<StableAndPanic> stableAndPanicConcurrency(TimePoint now) const override;
  absl::StatusOr<StableAndPanic> stableAndPanicRps(TimePoint now) const override;

 private:
  std::unique_ptr<WindowAverager> makeBuckets(Duration window) const;

  MetricSpec spec_;
  std::unique_ptr<WindowAverager> concurrency_stable_;
  std::unique_ptr<WindowAverager> concurrency_panic_;
  std::unique_ptr<WindowAverager> rps_stable_;
  std::unique_ptr<WindowAverager> rps_panic_;
};

}  // namespace kh::autoscaler
