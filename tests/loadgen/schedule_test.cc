// The schedule engine on a virtual timeline: exact intended times, Poisson statistics.

#include "kh/loadgen/schedule.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <numbers>

#include "gtest/gtest.h"

namespace kh::loadgen {
namespace {

using namespace std::chrono_literals;

std::vector<Nanos> drain(Schedule& s) {
  std::vector<Nanos> out;
  while (auto t = s.next()) out.push_back(*t);
  return out;
}

TEST(Schedule, ConstantRateGivesExactIntendedTimes) {
  auto s = makeConstantSchedule(1000, 1s);
  auto times = drain(*s);
  ASSERT_EQ(times.size(), 1000u);
  for (size_t i = 0; i < times.size(); ++i) EXPECT_EQ(times[i], Nanos(static_cast<int64_t>(i) * 1'000'000));
  auto thirds = drain(*makeConstantSchedule(3, 1s));
  ASSERT_EQ(thirds.size(), 3u);
  EXPECT_EQ(thirds[1], Nanos(333'333'333));
  EXPECT_EQ(thirds[2], Nanos(666'666'667));  // from the index: no accumulated rounding
}

TEST(Schedule, PoissonMeanAndVarianceWithinBoundsForAFixedSeed) {
  const double rate = 2000;
  auto s = makePoissonSchedule(rate, 100s, 7);
  auto times = drain(*s);
  // Count per 1 s window: Poisson(2000) has mean and variance 2000.
  std::vector<double> counts(100, 0);
  for (auto t : times) counts[static_cast<size_t>(t.count() / 1'000'000'000)] += 1;
  double mean = 0, var = 0;
  for (double c : counts) mean += c / 100;
  for (double c : counts) var += (c - mean) * (c - mean) / 99;
  // Mean over 100 windows: sd of the mean is sqrt(2000/100) ~ 4.5, so +-5 sd is +-23.
  EXPECT_NEAR(mean, rate, 23);
  // Sample variance of 100 Poisson counts: sd ~ 2000*sqrt(2/99) ~ 284; allow +-4 sd.
  EXPECT_NEAR(var, rate, 1140);
  // Gaps are exponential: mean 1/rate, coefficient of variation 1.
  double gap_mean = 0, gap_var = 0;
  for (size_t i = 1; i < times.size(); ++i) gap_mean += static_cast<double>((times[i] - times[i - 1]).count());
  gap_mean /= static_cast<double>(times.size() - 1);
  for (size_t i = 1; i < times.size(); ++i) {
    double d = static_cast<double>((times[i] - times[i - 1]).count()) - gap_mean;
    gap_var += d * d;
  }
  gap_var /= static_cast<double>(times.size() - 2);
  EXPECT_NEAR(gap_mean, 1e9 / rate, 1e9 / rate * 0.02);
  EXPECT_NEAR(std::sqrt(gap_var) / gap_mean, 1.0, 0.03);
  // The same seed gives the same schedule; another seed does not.
  EXPECT_EQ(drain(*makePoissonSchedule(rate, 1s, 7)), drain(*makePoissonSchedule(rate, 1s, 7)));
  EXPECT_NE(drain(*makePoissonSchedule(rate, 1s, 7)), drain(*makePoissonSchedule(rate, 1s, 8)));
}

TEST(Schedule, DiurnalFollowsItsSineWithPoissonCounts) {
  // Mean 20/s, amplitude 0.8, ten periods of 1000 s. Over a period's rising half (phase 0: the
  // sine's positive half) the expected count is mean * (P/2 + a P/pi), over the other half
  // mean * (P/2 - a P/pi); each count is Poisson, so 5 sd is 5 sqrt(expected).
  const double mean = 20, amplitude = 0.8, period = 1000, periods = 10;
  auto s = makeDiurnalSchedule(mean, amplitude, Nanos(static_cast<int64_t>(period * periods * 1e9)), 7,
                               Nanos(static_cast<int64_t>(period * 1e9)));
  ASSERT_TRUE(s.ok()) << s.status();
  auto times = drain(**s);
  double peak_half = 0, trough_half = 0;
  for (auto t : times) {
    double within = std::fmod(static_cast<double>(t.count()) / 1e9, period);
    (within < period / 2 ? peak_half : trough_half) += 1;
  }
  const double total = mean * period * periods;
  const double expected_peak = mean * (period / 2 + amplitude * period / std::numbers::pi) * periods;
  const double expected_trough = total - expected_peak;
  EXPECT_NEAR(static_cast<double>(times.size()), total, 5 * std::sqrt(total));
  EXPECT_NEAR(peak_half, expected_peak, 5 * std::sqrt(expected_peak));
  EXPECT_NEAR(trough_half, expected_trough, 5 * std::sqrt(expected_trough));
  EXPECT_TRUE(std::is_sorted(times.begin(), times.end()));
  // Around the peak (36/s at 250 s) there are many, around the trough (4/s at 750 s) few: the
  // 100 s around each, over ten periods, expect about 35,700 and 4,300.
  double near_peak = 0, near_trough = 0;
  for (auto t : times) {
    double within = std::fmod(static_cast<double>(t.count()) / 1e9, period);
    near_peak += within >= 200 && within < 300;
    near_trough += within >= 700 && within < 800;
  }
  EXPECT_GT(near_peak, 5 * near_trough);
  // Amplitude 0 is a plain Poisson process at the mean.
  auto flat = makeDiurnalSchedule(mean, 0, 1000s, 3, 1000s);
  ASSERT_TRUE(flat.ok());
  EXPECT_NEAR(static_cast<double>(drain(**flat).size()), 20000, 5 * std::sqrt(20000.0));
  // Seeded: the same seed repeats, another differs.
  auto again = [](uint64_t seed) { return drain(**makeDiurnalSchedule(5, 0.5, 600s, seed, 300s)); };
  EXPECT_EQ(again(11), again(11));
  EXPECT_NE(again(11), again(12));
  // The default period is a day: the first 6 hours rise towards the peak at 6 h.
  auto day = makeDiurnalSchedule(1, 1, 24h, 5);
  ASSERT_TRUE(day.ok());
  double first_half_day = 0, all = 0;
  for (auto t : drain(**day)) {
    first_half_day += t < 12h;
    all += 1;
  }
  EXPECT_NEAR(all, 86400, 5 * std::sqrt(86400.0));
  EXPECT_NEAR(first_half_day, 43200 + 86400 / std::numbers::pi, 5 * std::sqrt(70702.0));
  // Bad values are refused.
  EXPECT_FALSE(makeDiurnalSchedule(5, 1.5, 1s, 1).ok());
  EXPECT_FALSE(makeDiurnalSchedule(5, -0.1, 1s, 1).ok());
  EXPECT_FALSE(makeDiurnalSchedule(-5, 0.5, 1s, 1).ok());
  EXPECT_FALSE(makeDiurnalSchedule(5, 0.5, 1s, 1, 0s).ok());
  EXPECT_FALSE(makeDiurnalSchedule(INFINITY, 0.5, 1s, 1).ok());
}

TEST(Schedule, OnOffSendsOnlyDuringItsOnPeriods) {
  // 50/s for 2 s of every 10 s, for 1000 s: 100 ON periods, 10,000 expected (sd 100).
  auto s = makeOnOffSchedule(50, 2s, 8s, 1000s, 9);
  ASSERT_TRUE(s.ok()) << s.status();
  auto times = drain(**s);
  EXPECT_NEAR(static_cast<double>(times.size()), 10000, 500);
  EXPECT_TRUE(std::is_sorted(times.begin(), times.end()));
  std::vector<int> per_burst(100, 0);
  for (auto t : times) {
    EXPECT_LT(t % Nanos(10s), Nanos(2s)) << "an arrival in an OFF period at " << t.count() << " ns";
    ++per_burst[static_cast<size_t>(t / Nanos(10s))];
  }
  // Every burst is Poisson(100): none anywhere near empty or double.
  for (int n : per_burst) {
    EXPECT_GT(n, 50);
    EXPECT_LT(n, 150);
  }
  // OFF 0 is a plain Poisson process; the end is respected.
  auto plain = makeOnOffSchedule(10, 1s, 0s, 100s, 4);
  ASSERT_TRUE(plain.ok());
  auto plain_times = drain(**plain);
  EXPECT_NEAR(static_cast<double>(plain_times.size()), 1000, 5 * std::sqrt(1000.0));
  EXPECT_LT(plain_times.back(), Nanos(100s));
  // Seeded.
  auto again = [](uint64_t seed) { return drain(**makeOnOffSchedule(5, 2min, 28min, 1h, seed)); };
  EXPECT_EQ(again(3), again(3));
  EXPECT_NE(again(3), again(4));
  // Bad values are refused.
  EXPECT_FALSE(makeOnOffSchedule(5, 0s, 1s, 10s, 1).ok());
  EXPECT_FALSE(makeOnOffSchedule(5, 1s, -1s, 10s, 1).ok());
  EXPECT_FALSE(makeOnOffSchedule(-1, 1s, 1s, 10s, 1).ok());
  EXPECT_FALSE(makeOnOffSchedule(INFINITY, 1s, 1s, 10s, 1).ok());  // it would never advance
}

TEST(Schedule, StepProfile) {
  auto stages = parseProfile("1000@1s,2000@500ms");
  ASSERT_TRUE(stages.ok()) << stages.status();
  auto times = drain(*makeProfileSchedule(*stages));
  size_t first = 0, second = 0;
  for (auto t : times) (t < 1s ? first : second)++;
  EXPECT_NEAR(static_cast<double>(first), 1000, 1);
  EXPECT_NEAR(static_cast<double>(second), 1000, 1);
  EXPECT_LT(times.back(), 1500ms);
}

TEST(Schedule, RampProfileRisesLinearly) {
  auto stages = parseProfile("ramp:0-1000@2s");
  ASSERT_TRUE(stages.ok()) << stages.status();
  auto times = drain(*makeProfileSchedule(*stages));
  // Integral of a 0 -> 1000/s ramp over 2 s is 1000 requests, a quarter in the first half.
  EXPECT_NEAR(static_cast<double>(times.size()), 1000, 10);
  size_t first_half = 0;
  for (auto t : times) first_half += t < 1s;
  EXPECT_NEAR(static_cast<double>(first_half), 250, 10);
}

TEST(Schedule, ProfileErrorsNameTheStage) {
  EXPECT_FALSE(parseProfile("1000").ok());
  EXPECT_FALSE(parseProfile("abc@1s").ok());
  EXPECT_FALSE(parseProfile("100@xs").ok());
  EXPECT_FALSE(parseProfile("").ok());
  auto bad = parseProfile("100@1s,oops");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(std::string(bad.status().message()).find("oops"), std::string::npos);
}

TEST(Schedule, DurationsAndRatesANanosCannotHoldAreRefusedNotOverflowed) {
  // Converting these to int64 nanoseconds was undefined behaviour (found by the scenario fuzzer).
  for (const char* text : {"5444444444444444444s", "1e300s", "inf", "nan", "-1s", "300000000m", "NaNms"}) {
    EXPECT_FALSE(parseDuration(text).ok()) << text;
  }
  EXPECT_EQ(*parseDuration("9000000000s"), Nanos(9'000'000'000'000'000'000));  // 285 years: still held
  for (const char* profile : {"nan@1s", "inf@1s", "100@1e300s", "ramp:nan-10@1s", "ramp:x-10@1s", "ramp:-5-10@1s"}) {
    EXPECT_FALSE(parseProfile(profile).ok()) << profile;
  }
  std::string path = ::testing::TempDir() + "/huge-trace.txt";
  for (const char* offset : {"1e300", "nan", "inf"}) {
    std::ofstream(path) << "0\n" << offset << "\n";
    auto trace = makeTraceSchedule(path);
    ASSERT_FALSE(trace.ok()) << offset;
    EXPECT_NE(std::string(trace.status().message()).find(":2:"), std::string::npos) << trace.status();
  }
}

TEST(Schedule, TraceReplay) {
  std::string path = ::testing::TempDir() + "/trace.txt";
  {
    std::ofstream f(path);
    f << "# offsets in seconds\n0\n0.5\n\n0.5  # two at once\n1.25\n";
  }
  auto s = makeTraceSchedule(path);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(drain(**s), (std::vector<Nanos>{0ns, 500ms, 500ms, 1250ms}));
  {
    std::ofstream f(path);
    f << "1\n0.5\n";
  }
  auto bad = makeTraceSchedule(path);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(std::string(bad.status().message()).find(":2:"), std::string::npos);
}

}  // namespace
}  // namespace kh::loadgen
