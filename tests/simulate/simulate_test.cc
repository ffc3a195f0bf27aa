// The simulator on cases whose answers are known by hand (Knative's KPA with its defaults: a
// 60 s stable window and a 30 s grace, the activator's fast path taking an idle revision to zero
// about a stable window after its last request), determinism, the sweep's front, and workloads.

#include "kh/simulate/simulate.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>

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
  EXPECT_NE(html.find("Cold starts: added latency by percentile"), std::string::npos);
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
    // The same results with less work: the skipped time is really skipped.
    auto fast_ticks = fast["total"]["kpa_ticks"].get<int64_t>();
    auto exact_ticks = exact["total"]["kpa_ticks"].get<int64_t>();
    EXPECT_LT(fast_ticks, exact_ticks) << workload;
    for (auto* j : {&fast, &exact}) {
      (*j)["total"].erase("kpa_ticks");
      for (auto& s : (*j)["services"]) s.erase("kpa_ticks");
    }
    EXPECT_EQ(fast, exact) << workload;
  }
  // Mostly idle (4 h with two short bursts): most of the time is skipped.
  settings.skip_idle = true;
  auto idle = run(one("0@1000s,5@60s,0@2000s,1@600s", settings.duration_s, 3), model, settings);
  EXPECT_LT(idle.total.kpa_ticks, settings.duration_s / 2 / 4) << "ticks every 2 s for a quarter of the time at most";
}

// A re-check the KPA asks for at an instant between two nanoseconds of virtual time fell
// 1 ns early when seconds became time points by truncation, and the loop asked again at the
// same instant forever (this fleet, with the RPS metric, hung). It must finish.
TEST(Simulate, ReChecksAtOddInstantsAreDueWhenAsked) {
  FleetSpec fleet{50, 5, 1.2, 3600, 1};
  const auto rates = fleetRates(fleet);
  ServiceModel model;
  model.annotations = {{"autoscaling.knative.dev/metric", "rps"}, {"autoscaling.knative.dev/target", "3"}};
  SimulationSettings settings;
  settings.duration_s = fleet.duration_s;
  auto r = simulate(fleet.count, [&](size_t i) { return fleetService(fleet, rates, i); }, model, settings);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_GT(r->total.requests, 0);
  EXPECT_GT(r->total.pod_seconds, 0);
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

TEST(Simulate, DiurnalAndOnOffWorkloads) {
  // diurnal: mean 5/s over two 1 h periods: 36,000 expected (5 sd: 949).
  auto diurnal = arrivalsFrom("diurnal:5:0.5:1h", 7200, 1);
  ASSERT_TRUE(diurnal.ok()) << diurnal.status();
  EXPECT_NEAR(static_cast<double>(diurnal->size()), 36000, 949);
  EXPECT_EQ(*diurnal, *arrivalsFrom("diurnal:5:0.5:3600", 7200, 1));  // a period in seconds is the same
  EXPECT_TRUE(arrivalsFrom("diurnal:0.01:1", 3600, 1).ok());          // the period defaults to 24h
  // onoff: 5/s for 2 minutes of every 30: nothing outside [0, 120) and [1800, 1920).
  auto onoff = arrivalsFrom("onoff:5:2m:28m", 3600, 2);
  ASSERT_TRUE(onoff.ok()) << onoff.status();
  EXPECT_NEAR(static_cast<double>(onoff->size()), 1200, 5 * std::sqrt(1200.0));
  for (double t : *onoff) EXPECT_TRUE(t < 120 || (t >= 1800 && t < 1920)) << t;
  // Bad values are refused, naming the problem.
  auto message = [](const std::string& schedule) {
    auto r = arrivalsFrom(schedule, 3600, 1);
    EXPECT_FALSE(r.ok()) << schedule;
    return r.ok() ? std::string() : std::string(common::toStd(r.status().message()));
  };
  EXPECT_NE(message("diurnal:5:1.5").find("amplitude"), std::string::npos);
  EXPECT_NE(message("diurnal:5:0.5:0s").find("period"), std::string::npos);
  EXPECT_NE(message("diurnal:5:0.5:soon").find("not a duration"), std::string::npos);
  EXPECT_NE(message("diurnal:5").find("diurnal:MEAN_RATE:AMPLITUDE"), std::string::npos);
  EXPECT_NE(message("diurnal:-5:0.5").find("not a positive number"), std::string::npos);
  EXPECT_NE(message("onoff:5:2m").find("onoff:RATE:ON:OFF"), std::string::npos);
  EXPECT_NE(message("onoff:5:0s:1m").find("ON period"), std::string::npos);
  EXPECT_NE(message("onoff:5:2m:later").find("OFF period"), std::string::npos);
  EXPECT_NE(message("onoff:x:2m:1m").find("not a positive number"), std::string::npos);
  EXPECT_FALSE(arrivalsFrom("onoff:5:2m:28m", 0, 1).ok());  // a generator needs a duration
  // Spans a count of int64 nanoseconds cannot hold are refused, not overflowed (undefined).
  EXPECT_NE(message("diurnal:5:0.5:1e300").find("not a duration"), std::string::npos);
  EXPECT_NE(message("onoff:5:nan:1m").find("ON period"), std::string::npos);
  ASSERT_TRUE(parseSpanSeconds("1m30s").ok());
  EXPECT_EQ(*parseSpanSeconds("1m30s"), 90);
  ASSERT_TRUE(parseSpanSeconds("1.5").ok());
  EXPECT_EQ(*parseSpanSeconds("1.5"), 1.5);
  for (const char* bad : {"1e300", "inf", "nan", "-1", "-5s", "", "soon"}) EXPECT_FALSE(parseSpanSeconds(bad).ok()) << bad;
}

// A directory of the running test's own: CTest runs each test as its own process, in parallel.
std::filesystem::path testDir() {
  const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
  auto dir = std::filesystem::path(::testing::TempDir()) / (std::string("simulate_test-") + test->name());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

// An Azure Functions trace row: the ids, then 1440 counts (`counts` by minute from 1, 0 elsewhere).
std::string azureRow(const std::string& function, const std::string& trigger, const std::map<int, std::string>& counts,
                     const char* eol = "\n") {
  std::string row = "owner1,app1," + function + "," + trigger;
  for (int k = 1; k <= 1440; ++k) row += "," + (counts.count(k) ? counts.at(k) : std::string("0"));
  return row + eol;
}

std::string azureHeader(const char* eol = "\n") {
  std::string header = "HashOwner,HashApp,HashFunction,Trigger";
  for (int k = 1; k <= 1440; ++k) header += "," + std::to_string(k);
  return header + eol;
}

TEST(Simulate, AzureTraceSpreadsEachMinutesCountWithinThatMinute) {
  const std::string path = (testDir() / "invocations.csv").string();
  {
    std::ofstream f(path, std::ios::binary);  // CRLF lines, as the public files may have
    f << azureHeader("\r\n")
      << azureRow("0123456789abcdef0123", "http", {{1, "3"}, {700, "100"}, {1440, "5"}}, "\r\n")
      << azureRow("ffffffffffffffff", "timer", {}, "\r\n")  // never invoked: left out by default
      << azureRow("0123456789abcdef9999", "http", {{2, "1"}}, "\r\n")  // the same short name
      << azureRow("aaaaaaaaaaaaaaaa", "queue", {{60, "2"}}, "\r\n");
  }
  auto trace = readAzureFunctionsTrace(path, {});
  ASSERT_TRUE(trace.ok()) << trace.status();
  EXPECT_EQ(trace->minutes, 1440u);
  ASSERT_EQ(trace->functions.size(), 3u);
  EXPECT_EQ(trace->functions[0].name, "0123456789ab-http");
  EXPECT_EQ(trace->functions[1].name, "0123456789ab-http-r3");  // unique
  EXPECT_EQ(trace->functions[2].name, "aaaaaaaaaaaa-queue");
  EXPECT_EQ(trace->functions[0].invocations, 108u);
  // Minute k's n invocations: n times in [60(k-1), 60k), sorted.
  const AzureFunction& busy = trace->functions[0];
  ServiceWorkload w = azureService(busy);
  EXPECT_EQ(w.name, busy.name);
  ASSERT_EQ(w.arrivals_s.size(), 108u);
  EXPECT_TRUE(std::is_sorted(w.arrivals_s.begin(), w.arrivals_s.end()));
  std::map<int, int> per_minute;
  double offset_sum = 0;
  for (double t : w.arrivals_s) {
    int minute = static_cast<int>(std::floor(t / 60)) + 1;
    ++per_minute[minute];
    EXPECT_GE(t, 60.0 * (minute - 1));
    EXPECT_LT(t, 60.0 * minute);
    if (minute == 700) offset_sum += t - 60.0 * 699;
  }
  EXPECT_EQ(per_minute, (std::map<int, int>{{1, 3}, {700, 100}, {1440, 5}}));
  // Uniform within the minute: 100 offsets average 30 s (sd of the mean 60/sqrt(12)/10 = 1.7 s).
  EXPECT_NEAR(offset_sum / 100, 30, 5 * 1.74);
  // Seeded: the same function gives the same times; another seed other ones.
  EXPECT_EQ(azureService(busy).arrivals_s, w.arrivals_s);
  AzureTraceOptions other;
  other.seed = 2;
  auto reseeded = readAzureFunctionsTrace(path, other);
  ASSERT_TRUE(reseeded.ok());
  EXPECT_NE(azureService(reseeded->functions[0]).arrivals_s, w.arrivals_s);
  // A duration keeps what comes before it.
  EXPECT_EQ(azureService(busy, 60).arrivals_s, std::vector<double>(w.arrivals_s.begin(), w.arrivals_s.begin() + 3));
  // Options: idle functions kept, a limit.
  AzureTraceOptions all;
  all.skip_idle_functions = false;
  auto with_idle = readAzureFunctionsTrace(path, all);
  ASSERT_TRUE(with_idle.ok());
  ASSERT_EQ(with_idle->functions.size(), 4u);
  EXPECT_EQ(with_idle->functions[1].invocations, 0u);
  EXPECT_TRUE(azureService(with_idle->functions[1]).arrivals_s.empty());
  AzureTraceOptions first;
  first.limit = 1;
  auto limited = readAzureFunctionsTrace(path, first);
  ASSERT_TRUE(limited.ok());
  EXPECT_EQ(limited->functions.size(), 1u);
  // Simulated one at a time: every invocation is a request.
  SimulationSettings settings;
  settings.duration_s = 86400;
  auto result = simulate(
      trace->functions.size(), [&](size_t i) { return azureService(trace->functions[i], settings.duration_s); }, {},
      settings);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->total.requests, 108 + 1 + 2);
}

TEST(Simulate, AzureTraceRefusesMalformedLinesWithTheirNumbers) {
  const auto dir = testDir();
  auto refusal = [&](const std::string& name, const std::string& content) {
    const std::string path = (dir / name).string();
    std::ofstream(path, std::ios::binary) << content;
    auto r = readAzureFunctionsTrace(path, {});
    EXPECT_FALSE(r.ok()) << name;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
    return r.ok() ? std::string() : std::string(common::toStd(r.status().message()));
  };
  const std::string good = azureRow("f1", "http", {{1, "1"}});
  // The header: the four ids and the minutes 1, 2, ... in order.
  std::string no_trigger = "HashOwner,HashApp,HashFunction";
  for (int k = 1; k <= 1440; ++k) no_trigger += "," + std::to_string(k);
  EXPECT_NE(refusal("no-trigger.csv", no_trigger + "\n" + good).find("no-trigger.csv:1: "), std::string::npos);
  std::string shuffled = azureHeader();
  shuffled.replace(shuffled.find(",2,3,"), 5, ",3,2,");
  EXPECT_NE(refusal("shuffled.csv", shuffled + good).find(":1: minute column 2"), std::string::npos);
  EXPECT_NE(refusal("empty.csv", "").find("empty.csv:1: "), std::string::npos);
  // Rows: the wrong number of fields, a negative count, a fraction, a word; each with its line.
  std::string short_row = good.substr(0, good.rfind(',')) + "\n";
  EXPECT_NE(refusal("short.csv", azureHeader() + good + short_row).find("short.csv:3: 1443 fields, want 1444"),
            std::string::npos);
  EXPECT_NE(refusal("negative.csv", azureHeader() + good + good + azureRow("f2", "http", {{9, "-1"}}))
                .find("negative.csv:4: minute 9"),
            std::string::npos);
  EXPECT_NE(refusal("fraction.csv", azureHeader() + azureRow("f2", "http", {{5, "1.5"}}))
                .find("fraction.csv:2: minute 5"),
            std::string::npos);
  EXPECT_NE(refusal("word.csv", azureHeader() + "\n" + azureRow("f2", "http", {{1440, "many"}}))
                .find("word.csv:3: minute 1440"),
            std::string::npos);  // an empty line is skipped but counted
  // A shorter day is read when the header and every row agree.
  const std::string path = (dir / "short-day.csv").string();
  std::ofstream(path) << "HashOwner,HashApp,HashFunction,Trigger,1,2,3\no,a,f,http,0,4,0\n";
  auto short_day = readAzureFunctionsTrace(path, {});
  ASSERT_TRUE(short_day.ok()) << short_day.status();
  EXPECT_EQ(short_day->minutes, 3u);
  ASSERT_EQ(short_day->functions.size(), 1u);
  for (double t : azureService(short_day->functions[0]).arrivals_s) {
    EXPECT_GE(t, 60);
    EXPECT_LT(t, 120);
  }
  EXPECT_EQ(readAzureFunctionsTrace((dir / "missing.csv").string(), {}).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace kh::simulate

namespace kh::simulate {
namespace {

TEST(Simulate, MeasuredTimesOfOneValueGiveTheConstantsResults) {
  SimulationSettings settings;
  settings.duration_s = 3600;
  settings.keep_series = true;
  ServiceModel constant;
  constant.service_time_s = 0.2;
  constant.pod_startup_s = 3;
  ServiceModel measured = constant;
  measured.service_time_samples = {0.2};
  measured.pod_startup_samples = {3};
  for (const char* workload : {"poisson:0.02", "0@600s,20@60s,0@600s"}) {
    EXPECT_EQ(toJson(run(one(workload, 3600, 5), constant, settings)),
              toJson(run(one(workload, 3600, 5), measured, settings)))
        << workload;
  }
}

TEST(Simulate, StartUpsAreDrawnFromTheMeasuredOnes) {
  // A request every 90 s finds zero pods each time (window 60 s): each waits for a new pod, whose
  // start-up is one of the measured values, so the waits are exactly those values, each drawn.
  SimulationSettings settings;
  settings.duration_s = 90 * 200;
  ServiceModel model;
  model.pod_startup_samples = {1, 4};
  auto a = run(one("every:90", settings.duration_s), model, settings).services.at(0);
  EXPECT_EQ(a.cold_start_requests, a.requests);
  EXPECT_NEAR(a.added_latency_max_ms, 4000, 1);
  EXPECT_NEAR(a.added_latency_p50_ms, a.added_latency_p50_ms < 2000 ? 1000 : 4000, 1);
  // Both values are drawn (200 draws of a fair coin): the cost lies between all-1 s and all-4 s.
  ServiceModel fast, slow;
  fast.pod_startup_s = 1;
  slow.pod_startup_s = 4;
  EXPECT_GT(a.pod_seconds, run(one("every:90", settings.duration_s), fast, settings).services.at(0).pod_seconds + 100);
  EXPECT_LT(a.pod_seconds, run(one("every:90", settings.duration_s), slow, settings).services.at(0).pod_seconds - 100);
  // The same seed draws the same; another seed draws otherwise.
  auto again = run(one("every:90", settings.duration_s), model, settings).services.at(0);
  EXPECT_EQ(toJson(a), toJson(again));
  settings.seed = 99;
  auto other = run(one("every:90", settings.duration_s), model, settings).services.at(0);
  EXPECT_NE(a.pod_seconds, other.pod_seconds);
}

TEST(Simulate, ServiceTimesComeFromALoadResultsCurve) {
  // p0 1 ms, p50 10 ms, p90 20 ms, p99 100 ms, max 200 ms.
  nlohmann::json run = {{"service_percentile_curve", {{0, 1}, {50, 10}, {90, 20}, {99, 100}, {99.9, 200}}}};
  auto samples = serviceTimesFromLoadResult(run);
  ASSERT_TRUE(samples.ok()) << samples.status();
  ASSERT_EQ(samples->size(), 1000u);
  EXPECT_TRUE(std::is_sorted(samples->begin(), samples->end()));
  EXPECT_NEAR((*samples)[499], 0.010, 0.0005);
  EXPECT_NEAR((*samples)[899], 0.020, 0.0005);
  EXPECT_NEAR((*samples)[989], 0.100, 0.002);
  EXPECT_NEAR(samples->back(), 0.200, 1e-9);
  EXPECT_GE(samples->front(), 0.001);
  // Not a load result.
  EXPECT_FALSE(serviceTimesFromLoadResult(nlohmann::json{{"x", 1}}).ok());
  EXPECT_FALSE(serviceTimesFromLoadResult(nlohmann::json{{"percentile_curve", {{1, "a"}}}}).ok());
}

TEST(Simulate, StartUpsComeFromAReportsColdStarts) {
  // refstack's coldstart events give the time to a ready pod; a kube run's cold_start samples
  // give the time to the first byte.
  nlohmann::json embedded = {
      {"observations",
       {{"events",
         {{{"type", "coldstart"}, {"breakdown", {{"ready_ms", 800}}}},
          {{"type", "scale"}},
          {{"type", "coldstart"}, {"breakdown", {{"ready_ms", 1200}}}}}}}},
      {"assertions", {{{"data", {{"kind", "coldstart"}, {"samples", {{{"total_ms", 9999}}}}}}}}}};
  nlohmann::json kube = {
      {"observations", {{"events", nlohmann::json::array()}}},
      {"assertions", {{{"data", {{"kind", "coldstart"}, {"samples", {{{"total_ms", 2500}}, {{"total_ms", 3500}}}}}}}}}};
  auto both = podStartupsFromReport(nlohmann::json{{"scenarios", {embedded, kube}}});
  ASSERT_TRUE(both.ok()) << both.status();
  EXPECT_EQ(*both, (std::vector<double>{0.8, 1.2, 2.5, 3.5}));
  EXPECT_FALSE(podStartupsFromReport(nlohmann::json{{"scenarios", {kube["observations"]}}}).ok());
  EXPECT_FALSE(podStartupsFromReport(nlohmann::json::array()).ok());
  // Fields of the wrong type are an error value, not an exception.
  EXPECT_FALSE(podStartupsFromReport(nlohmann::json{
                   {"scenarios", {{{"observations", nlohmann::json::array()}, {"assertions", 5}}, "not a scenario"}}})
                   .ok());
}

}  // namespace
}  // namespace kh::simulate
