// The schedule engine on a virtual timeline: exact intended times, Poisson statistics.

#include "kh/loadgen/schedule.h"

#include <cmath>
#include <fstream>

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
