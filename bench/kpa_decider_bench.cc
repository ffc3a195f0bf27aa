// KPA decision cost per revision (goal <= 1 us): record one second's stat and decide, as the
// autoscaler does for every revision on every tick.

#include <benchmark/benchmark.h>

#include "serverless.h"

namespace {

using namespace std::chrono_literals;

void BM_RecordAndDecide(benchmark::State& state) {
  kh::refstack::ScalingSettings settings;  // Knative defaults: 60 s window, 6 s panic window
  auto t = kh::common::MonotonicTime() + 1000s;
  kh::refstack::RevisionDecider decider(settings, t);
  for (int i = 0; i < 60; ++i) decider.record(t + std::chrono::seconds(i), 40 + i % 7);
  t += 60s;
  int64_t ready = 3;
  for (auto _ : state) {
    decider.record(t, 40 + static_cast<double>(ready % 7));
    auto d = decider.decide(t, static_cast<int>(ready));
    benchmark::DoNotOptimize(d);
    t += 1s;
    ++ready;
    if (ready > 10) ready = 3;
  }
}
BENCHMARK(BM_RecordAndDecide);

}  // namespace

BENCHMARK_MAIN();
