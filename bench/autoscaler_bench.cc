// Micro-benchmarks of the KPA decision path, per revision: what the autoscaler spends on one
// revision per reported stat and per 2s tick.
//
//   ./build/release/bench/autoscaler_bench --benchmark_min_time=0.2
//
// BM_RecordAndScale is the figure of merit (goal ≤ 1 µs): one stat recorded into the four
// windows of a MetricCollector plus one Decider::tick() reading the stable and panic averages,
// with simulated time advancing 1s per iteration so buckets roll over as in production. The
// variants isolate record(), the windowed reads, and the weighted-exponential aggregation.

#include <chrono>

#include "benchmark/benchmark.h"
#include "kh/autoscaler/config.h"
#include "kh/autoscaler/decider.h"
#include "kh/autoscaler/metrics.h"

namespace {

using kh::autoscaler::AggregationAlgorithm;
using kh::autoscaler::Decider;
using kh::autoscaler::MetricCollector;
using kh::autoscaler::RevisionScaling;
using kh::autoscaler::Stat;
using kh::autoscaler::TimePoint;

RevisionScaling defaultScaling(AggregationAlgorithm algorithm) {
  auto cfg = kh::autoscaler::parseAutoscalerConfig({});
  kh::autoscaler::Annotations annotations;
  if (algorithm == AggregationAlgorithm::kWeightedExponential) {
    annotations["autoscaling.knative.dev/metric-aggregation-algorithm"] = "weighted-exponential";
  }
  return *kh::autoscaler::resolveRevisionScaling(*cfg, annotations, 0);
}

Stat statAt(int64_t i) {
  Stat s;
  s.pod_name = "service-scraper";
  // A wavy load around 3 pods' worth, with some activator-proxied traffic.
  s.average_concurrent_requests = 150.0 + static_cast<double>(i % 17) * 9.0;
  s.average_proxied_concurrent_requests = static_cast<double>(i % 5);
  s.request_count = 1500.0 + static_cast<double>(i % 13) * 20.0;
  s.proxied_request_count = static_cast<double>(i % 7);
  return s;
}

void runRecordAndScale(benchmark::State& state, AggregationAlgorithm algorithm) {
  const RevisionScaling scaling = defaultScaling(algorithm);
  MetricCollector collector(kh::autoscaler::makeMetricSpec(scaling));
  TimePoint now{std::chrono::seconds(1'000'000)};
  Decider decider(kh::autoscaler::makeDeciderSpec(scaling, true), collector, 3, now);
  // Fill the stable window first so the reads see a full ring.
  for (int64_t i = 0; i < 120; ++i) {
    now += std::chrono::seconds(1);
    collector.record(now, statAt(i));
  }
  int64_t i = 120;
  int64_t published = 0;
  for (auto _ : state) {
    now += std::chrono::seconds(1);
    collector.record(now, statAt(i++));
    published += decider.tick(now, 3) ? 1 : 0;
    benchmark::DoNotOptimize(decider.status());
  }
  benchmark::DoNotOptimize(published);
  state.SetItemsProcessed(state.iterations());
}

void BM_RecordAndScale(benchmark::State& state) {
  runRecordAndScale(state, AggregationAlgorithm::kLinear);
}
BENCHMARK(BM_RecordAndScale);

void BM_RecordAndScaleWeighted(benchmark::State& state) {
  runRecordAndScale(state, AggregationAlgorithm::kWeightedExponential);
}
BENCHMARK(BM_RecordAndScaleWeighted);

// Several stats per second (the scraper plus activators) and one tick every 2s, as deployed.
void BM_RealisticSecond(benchmark::State& state) {
  const RevisionScaling scaling = defaultScaling(AggregationAlgorithm::kLinear);
  MetricCollector collector(kh::autoscaler::makeMetricSpec(scaling));
  TimePoint now{std::chrono::seconds(1'000'000)};
  Decider decider(kh::autoscaler::makeDeciderSpec(scaling, true), collector, 3, now);
  int64_t i = 0;
  for (auto _ : state) {
    now += std::chrono::seconds(1);
    collector.record(now, statAt(i));       // scraper
    collector.record(now, statAt(i + 1));   // activator 1
    collector.record(now, statAt(i + 2));   // activator 2
    if (i % 2 == 0) benchmark::DoNotOptimize(decider.tick(now, 3));
    ++i;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RealisticSecond);

void BM_RecordOnly(benchmark::State& state) {
  const RevisionScaling scaling = defaultScaling(AggregationAlgorithm::kLinear);
  MetricCollector collector(kh::autoscaler::makeMetricSpec(scaling));
  TimePoint now{std::chrono::seconds(1'000'000)};
  int64_t i = 0;
  for (auto _ : state) {
    now += std::chrono::seconds(1);
    collector.record(now, statAt(i++));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RecordOnly);

// Scale() on a window whose last write is 30s old: the linear average walks the stale tail.
void BM_ScaleStaleTail(benchmark::State& state) {
  const RevisionScaling scaling = defaultScaling(AggregationAlgorithm::kLinear);
  MetricCollector collector(kh::autoscaler::makeMetricSpec(scaling));
  TimePoint now{std::chrono::seconds(1'000'000)};
  Decider decider(kh::autoscaler::makeDeciderSpec(scaling, true), collector, 3, now);
  for (int64_t i = 0; i < 60; ++i) {
    now += std::chrono::seconds(1);
    collector.record(now, statAt(i));
  }
  const TimePoint read_at = now + std::chrono::seconds(30);
  for (auto _ : state) {
    benchmark::DoNotOptimize(decider.scale(read_at, 3));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ScaleStaleTail);

}  // namespace

BENCHMARK_MAIN();
