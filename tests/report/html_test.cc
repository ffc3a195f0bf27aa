// Reports: SVG plots, run pages and comparisons with thresholds.

#include "kh/report/html.h"

#include "gtest/gtest.h"

namespace kh::report {
namespace {

using nlohmann::json;

json run(const std::string& label, double throughput, double p99) {
  json latency = {{"count", 100}, {"min_ms", 0.1}, {"mean_ms", 0.5}, {"stddev_ms", 0.1},
                  {"p50_ms", 0.4}, {"p75_ms", 0.5}, {"p90_ms", 0.6}, {"p95_ms", 0.7},
                  {"p99_ms", p99}, {"p999_ms", p99 * 1.5}, {"p9999_ms", p99 * 2}, {"max_ms", p99 * 3}};
  return {{"schema", "kserve-harness/load-run/v1"},
          {"label", label},
          {"config", {{"schedule", "closed loop, concurrency 4"}, {"mode", "closed"}}},
          {"summary", {{"throughput", throughput}, {"errors", 0}, {"error_rate", 0.0}, {"delayed", 0}}},
          {"latency", latency},
          {"service_time", latency},
          {"percentile_curve", {{0, 0.1}, {50, 0.4}, {99, p99}, {100, p99 * 3}}},
          {"service_percentile_curve", {{0, 0.1}, {50, 0.4}}},
          {"windows", {{{"start_s", 0}, {"completed", 50}, {"errors", 0}, {"throughput", throughput},
                        {"p50_ms", 0.4}, {"p90_ms", 0.6}, {"p99_ms", p99}, {"max_ms", 1.0}, {"mean_ms", 0.5}}}},
          {"stability", {{"stable", true}}}};
}

TEST(Svg, LinePlotHasOnePolylinePerSeriesAndEscapesText) {
  std::string svg = svgLinePlot({{"a<b", {{0, 1}, {1, 2}}, false}, {"c", {{0, 2}, {1, 1}}, true}},
                                {"t & u", "x", "y", false, true, {{0.5, "scale 0->1"}}});
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  size_t count = 0;
  for (size_t pos = 0; (pos = svg.find("class=\"series\"", pos)) != std::string::npos; ++pos) ++count;
  EXPECT_EQ(count, 2u);
  EXPECT_NE(svg.find("a&lt;b"), std::string::npos);
  EXPECT_NE(svg.find("t &amp; u"), std::string::npos);
  EXPECT_NE(svg.find("scale 0-&gt;1"), std::string::npos);
  EXPECT_NE(svgLinePlot({}, {"empty"}).find("no data"), std::string::npos);
}

TEST(RunReport, SummaryAndPlots) {
  std::string html = runReportHtml({run("xgboost", 1000, 1.0)}, "t");
  EXPECT_NE(html.find("<td class=l>xgboost</td>"), std::string::npos);
  EXPECT_NE(html.find("Latency percentile distribution"), std::string::npos);
  EXPECT_NE(html.find("99.9%"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);  // self-contained, no scripts
}

TEST(Compare, ThresholdsFlagRegressions) {
  auto thresholds = parseThresholds("p99=+10%,throughput=-5%");
  ASSERT_TRUE(thresholds.ok());
  auto same = compareRuns({run("a", 1000, 1.0), run("b", 990, 1.05)}, *thresholds);
  EXPECT_TRUE(same["regressions"].empty());
  auto worse = compareRuns({run("a", 1000, 1.0), run("b", 900, 1.2)}, *thresholds);
  ASSERT_EQ(worse["regressions"].size(), 2u);
  EXPECT_EQ(worse["regressions"][0]["metric"], "p99");
  EXPECT_NEAR(worse["regressions"][0]["change_percent"].get<double>(), 20.0, 1e-9);
  std::string md = compareMarkdown(worse);
  EXPECT_NE(md.find("| b | 900.0 (-10.0%)"), std::string::npos) << md;
  EXPECT_NE(md.find("Regressions against `a`"), std::string::npos);
  EXPECT_NE(compareHtml({run("a", 1000, 1.0), run("b", 900, 1.2)}, worse).find("class=bad"),
            std::string::npos);
}

TEST(Compare, ThresholdSyntaxErrors) {
  EXPECT_FALSE(parseThresholds("p99").ok());
  EXPECT_FALSE(parseThresholds("p99=10").ok());
  EXPECT_FALSE(parseThresholds("latency=+10%").ok());
  EXPECT_FALSE(parseThresholds("p99=+x%").ok());
  EXPECT_TRUE(parseThresholds("").ok());
}

}  // namespace
}  // namespace kh::report
