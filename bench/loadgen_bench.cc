// The load generator's own per-request cost without any transport ("null transport"): taking
// the next intended time from the schedule and recording the three latencies a request yields
// (corrected, service, slip) plus its window histogram.

#include "benchmark/benchmark.h"
#include "kh/loadgen/hdr_histogram.h"
#include "kh/loadgen/schedule.h"

namespace kh::loadgen {
namespace {

void BM_NullTransportConstant(benchmark::State& state) {
  auto schedule = makeConstantSchedule(1e9, std::chrono::hours(1000));
  HdrHistogram corrected, service, slip, window(1, 60'000'000'000, 2);
  int64_t fake_latency = 1000;
  for (auto _ : state) {
    auto t = schedule->next();
    int64_t intended = t->count();
    fake_latency = (fake_latency * 1103515245 + 12345) & 0xfffff;
    corrected.record(fake_latency + 100);
    service.record(fake_latency);
    slip.record(100);
    window.record(fake_latency + 100);
    benchmark::DoNotOptimize(intended);
  }
}
BENCHMARK(BM_NullTransportConstant);

void BM_NullTransportPoisson(benchmark::State& state) {
  auto schedule = makePoissonSchedule(1e9, std::chrono::hours(1000), 7);
  HdrHistogram corrected, service, slip, window(1, 60'000'000'000, 2);
  int64_t fake_latency = 1000;
  for (auto _ : state) {
    auto t = schedule->next();
    fake_latency = (fake_latency * 1103515245 + 12345) & 0xfffff;
    corrected.record(fake_latency + 100);
    service.record(fake_latency);
    slip.record(100);
    window.record(fake_latency + 100);
    benchmark::DoNotOptimize(t);
  }
}
BENCHMARK(BM_NullTransportPoisson);

void BM_HdrRecord(benchmark::State& state) {
  HdrHistogram h;
  int64_t v = 1;
  for (auto _ : state) {
    v = (v * 6364136223846793005ll + 1442695040888963407ll) & 0xffffffffll;
    h.record(v);
  }
}
BENCHMARK(BM_HdrRecord);

}  // namespace
}  // namespace kh::loadgen

BENCHMARK_MAIN();
