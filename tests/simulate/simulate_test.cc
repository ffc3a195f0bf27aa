// The simulator on cases whose answers are known by hand (Knative's KPA with its defaults: a
// 60 s stable window and a 30 s grace, the activator's fast path taking an idle revision to zero
// about a stable window after its last request), determinism, the sweep's front, and workloads.

#include "kh/simulate/simulate.h"

#include <cstdio>
#include <fstream>

#include "gtest/gtest.h"
#include "kh/common/strings.h"

namespace kh::simulate {
namespace {

std::vector<ServiceWorkload> one(const std::string& schedule, double duration_s, uint64_t seed = 1) {
  auto arrivals = arrivalsFrom(schedule, duration_s, seed);
  EXPECT_TRUE(arrivals.ok()) << arrivals.status();
  return {{"svc", arrivals.ok() ? *arrivals : std::vector<double>{}}};
}

SimulationResult run(const std::vector<ServiceWorkload>& w, ServiceModel model, SimulationSettings settings) {
  auto r = simulate(w, model, settings);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : SimulationResult{};
}

TEST(Simulate, ARequestEvery90sFindsZeroPodsEveryTime) {
  // Window 60 s, grace 30 s: the revision is at zero about 60 s after each request, so each of
  // the next ones (90 s later) is a cold start.
  SimulationSettings settings;
  settings.duration_s = 900;
  ServiceModel model;
  model.pod_startup_s = 2;
  auto r = run(one("every:90", 900), model, settings).services.at(0);
  EXPECT_EQ(r.requests, 10);
  EXPECT_EQ(r.cold_start_requests, 10);
  EXPECT_EQ(r.scale_to_zero_events, 10);
  // Each cold start waits for a pod's start-up.
  EXPECT_NEAR(r.added_latency_p50_ms, 2000, 1);
  // Each request keeps a pod for about a stable window plus its start-up: 10 x (60..92) s.
  EXPECT_GT(r.pod_seconds, 10 * 60.0);
  EXPECT_LT(r.pod_seconds, 10 * 92.0);
  EXPECT_GT(r.zero_seconds, 900 - 10 * 92.0);
}

TEST(Simulate, ARequestEvery30sKeepsItsPod) {
  SimulationSettings settings;
  settings.duration_s = 900;
  auto r = run(one("every:30", 900), {}, settings).services.at(0);
  EXPECT_EQ(r.requests, 30);
  EXPECT_EQ(r.cold_start_requests, 1);  // the first, while the revision's first pod starts
  EXPECT_EQ(r.scale_to_zero_events, 0);
  EXPECT_EQ(r.max_pods, 1);
  EXPECT_NEAR(r.pod_seconds, 900, 1);
}

TEST(Simulate, MinScaleOneNeverGoesToZero) {
  SimulationSettings settings;
  settings.duration_s = 900;
  ServiceModel model;
  model.annotations["autoscaling.knative.dev/min-scale"] = "1";
  auto r = run(one("every:90", 900), model, settings).services.at(0);
  EXPECT_EQ(r.cold_start_requests, 1);
  EXPECT_EQ(r.zero_seconds, 0);
  EXPECT_EQ(r.scale_to_zero_events, 0);
}

TEST(Simulate, ABurstPanicsAndScalesOut) {
  // 100 requests/s of 200 ms each with containerConcurrency 1: about 20 pods' worth.
  SimulationSettings settings;
  settings.duration_s = 120;
  ServiceModel model;
  model.service_time_s = 0.2;
  model.container_concurrency = 1;
  auto r = run(one("0@30s,100@30s,0@60s", 120), model, settings).services.at(0);
  EXPECT_GE(r.panic_episodes, 1);
  EXPECT_GE(r.max_pods, 15);
  EXPECT_NEAR(static_cast<double>(r.requests), 3000, 200);  // a profile's gaps are Poisson with the seed
}

TEST(Simulate, ADrainCostsPodTimeAtEveryScaleDown) {
  SimulationSettings settings;
  settings.duration_s = 900;
  ServiceModel model;
  auto without = run(one("every:90", 900), model, settings).services.at(0);
  model.pod_drain_s = 10;
  auto with = run(one("every:90", 900), model, settings).services.at(0);
  EXPECT_EQ(with.scale_to_zero_events, without.scale_to_zero_events);
  EXPECT_NEAR(with.pod_seconds - without.pod_seconds, 10.0 * static_cast<double>(without.scale_to_zero_events), 1e-6);
  // Every request but the first (which meets the revision's first pod starting) woke it from zero.
  EXPECT_EQ(without.cold_starts, 9);
}

TEST(Simulate, TheReportShowsTheTableThePodsAndTheFront) {
  SimulationSettings settings;
  settings.duration_s = 600;
  settings.keep_series = true;
  auto w = one("every:90", 600);
  auto r = simulate(w, {}, settings);
  ASSERT_TRUE(r.ok());
  auto axis = parseSweepAxis("stable-window=10s,60s");
  ASSERT_TRUE(axis.ok());
  auto points = sweep(w, {}, settings, {*axis});
  ASSERT_TRUE(points.ok());
  nlohmann::json out = toJson(*r);
  out["sweep"] = toJson(*points);
  std::string html = reportHtml(out);
  EXPECT_NE(html.find("Pods over time"), std::string::npos);
  EXPECT_NE(html.find("Cost against cold starts"), std::string::npos);
  EXPECT_NE(html.find("<td>stable-window=10s</td>"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);  // self-contained
}

TEST(Simulate, SkippingIdleTimeChangesNothing) {
  SimulationSettings settings;
  settings.duration_s = 4 * 3600;
  settings.keep_series = true;
  ServiceModel model;
  model.pod_drain_s = 2;
  for (const char* workload : {"poisson:0.01", "every:75", "0@1000s,5@60s,0@2000s,1@600s"}) {
    settings.skip_idle = true;
    auto fast = toJson(run(one(workload, settings.duration_s, 3), model, settings));
    settings.skip_idle = false;
    auto exact = toJson(run(one(workload, settings.duration_s, 3), model, settings));
    EXPECT_EQ(fast, exact) << workload;
  }
}

TEST(Simulate, TheSameSeedGivesTheSameResult) {
  SimulationSettings settings;
  settings.duration_s = 600;
  auto a = toJson(run(one("poisson:0.05", 600, 7), {}, settings));
  auto b = toJson(run(one("poisson:0.05", 600, 7), {}, settings));
  EXPECT_EQ(a, b);
  auto c = toJson(run(one("poisson:0.05", 600, 8), {}, settings));
  EXPECT_NE(a, c);
}

TEST(Simulate, SweepMarksTheFrontAndTheCurrentSettings) {
  SimulationSettings settings;
  settings.duration_s = 900;
  settings.autoscaler["stable-window"] = "60s";
  auto axis = parseSweepAxis("stable-window=6s,60s,120s");
  ASSERT_TRUE(axis.ok()) << axis.status();
  auto points = sweep(one("every:30", 900), {}, settings, {*axis});
  ASSERT_TRUE(points.ok()) << points.status();
  ASSERT_EQ(points->size(), 3u);
  const SweepPoint& short_window = (*points)[0];
  const SweepPoint& current = (*points)[1];
  const SweepPoint& long_window = (*points)[2];
  // A 6 s window goes to zero between requests: cheaper, with a cold start each time.
  EXPECT_LT(short_window.pod_seconds, current.pod_seconds);
  EXPECT_GT(short_window.cold_start_share, current.cold_start_share);
  EXPECT_TRUE(short_window.pareto);
  EXPECT_TRUE(current.pareto);
  EXPECT_TRUE(current.current);
  // 120 s costs as much as 60 s here (the pod never goes) with the same cold starts: on the
  // front only by a tie, never better than the current.
  EXPECT_GE(long_window.pod_seconds, current.pod_seconds - 1);
  EXPECT_FALSE(parseSweepAxis("stable-windw=6s").ok());
  EXPECT_FALSE(parseSweepAxis("stable-window=").ok());
}

TEST(Simulate, WorkloadsAndTheirErrors) {
  auto every = arrivalsFrom("every:10", 30, 1);
  ASSERT_TRUE(every.ok());
  EXPECT_EQ(*every, (std::vector<double>{0, 10, 20}));  // the end is excluded
  auto poisson = arrivalsFrom("poisson:10", 100, 3);
  ASSERT_TRUE(poisson.ok());
  EXPECT_NEAR(static_cast<double>(poisson->size()), 1000, 150);  // mean 1000, sd 32
  EXPECT_FALSE(arrivalsFrom("poisson:x", 10, 1).ok());
  EXPECT_FALSE(arrivalsFrom("poisson:5", 0, 1).ok());  // a generator needs a duration
  auto unknown = arrivalsFrom("gaussian:5", 10, 1);
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(std::string(common::toStd(unknown.status().message())).find("trace:FILE, poisson:RATE"), std::string::npos);
  // A trace's bad line is refused with its number (the reader `harness load --trace` uses).
  std::string path = ::testing::TempDir() + "/sim-trace.txt";
  {
    std::ofstream f(path);
    f << "# offsets\n0.5\n1.0\nsoon\n";
  }
  auto bad = arrivalsFrom("trace:" + path, 0, 1);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(std::string(common::toStd(bad.status().message())).find(":4"), std::string::npos) << bad.status();
  {
    std::ofstream f(path);
    f << "0.5\n1.0\n2.5\n";
  }
  auto good = arrivalsFrom("trace:" + path, 0, 1);
  ASSERT_TRUE(good.ok()) << good.status();
  EXPECT_EQ(*good, (std::vector<double>{0.5, 1.0, 2.5}));
  // Bad settings are Knative's errors.
  SimulationSettings settings;
  settings.autoscaler["stable-window"] = "1s";
  EXPECT_FALSE(simulate(one("every:10", 30), {}, settings).ok());
}

}  // namespace
}  // namespace kh::simulate
