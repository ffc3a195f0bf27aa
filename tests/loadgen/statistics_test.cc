// Stopping rules: LoadGen's early-stopping numbers and perf_analyzer's stability rule.

#include "kh/loadgen/statistics.h"

#include <vector>

#include "gtest/gtest.h"

namespace kh::loadgen {
namespace {

TEST(EarlyStopping, ReproducesLoadGenNumbersAtP99) {
  EXPECT_EQ(earlyStoppingMinQueries(0.99, 0), 459);
  EXPECT_EQ(earlyStoppingMinQueries(0.99, 1), 662);
  EXPECT_EQ(earlyStoppingMinQueries(0.99, 2), 838);
  EXPECT_EQ(earlyStoppingMinQueries(0.99, 5), 1307);
  EXPECT_EQ(earlyStoppingMinQueries(0.99, 10), 2010);
}

TEST(EarlyStopping, ReproducesLoadGenNumbersAtP90) {
  EXPECT_EQ(earlyStoppingMinQueries(0.90, 0), 44);
  EXPECT_EQ(earlyStoppingMinQueries(0.90, 1), 64);
  EXPECT_EQ(earlyStoppingMinQueries(0.90, 2), 81);
  EXPECT_EQ(earlyStoppingMinQueries(0.90, 5), 127);
  EXPECT_EQ(earlyStoppingMinQueries(0.90, 10), 197);
}

TEST(EarlyStopping, Verdict) {
  auto v = earlyStopping(500, 0, 0.99, 0.99, 50);
  EXPECT_TRUE(v.passed);
  EXPECT_EQ(v.min_queries, 459);
  v = earlyStopping(500, 1, 0.99, 0.99, 50);
  EXPECT_FALSE(v.passed);
  EXPECT_NE(v.describe().find("needs 662"), std::string::npos) << v.describe();
}

TEST(Stability, ThreeWindowsWithinTenPercent) {
  std::vector<WindowFigures> w = {{100, 10}, {1000, 5}, {1050, 5.2}, {1000, 5.1}};
  EXPECT_TRUE(isStable(w));
  w.push_back({1200, 5.1});  // throughput now 20% above the minimum of the last three
  EXPECT_FALSE(isStable(w));
  EXPECT_FALSE(isStable(std::vector<WindowFigures>{{1000, 5}, {1000, 5}}));  // too few
  EXPECT_FALSE(isStable(std::vector<WindowFigures>{{0, 5}, {0, 5}, {0, 5}}));  // no throughput
  EXPECT_FALSE(isStable(std::vector<WindowFigures>{{1000, 5}, {1000, 6}, {1000, 5}}));
  EXPECT_TRUE(isStable(std::vector<WindowFigures>{{1000, 5}, {1000, 6}, {1000, 5}}, 3, 0.25));
}

}  // namespace
}  // namespace kh::loadgen
