// The report: every file written, the SVG plots present, and the page rendered by headless
// Chromium into a screenshot that is not blank (skipped when chromium is not installed).

#include "kh/scenario/report.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "gtest/gtest.h"
#include "kh/common/strings.h"

namespace kh::scenario {
namespace {

using nlohmann::json;

// A run as the runner writes it: pods and rate over time, scale events, a cold start, a canary.
json sampleReport() {
  json samples = json::array();
  for (int i = 0; i < 60; ++i) {
    int pods = i < 10 ? 1 : i < 40 ? 3 : 0;
    samples.push_back({{"t", i * 0.5}, {"isvc", "iris"}, {"ready", pods}, {"total", pods}, {"revisions", json::object()}});
  }
  json events = {{{"type", "scale"}, {"t", 5.0}, {"isvc", "default/iris"}, {"revision", "iris-predictor-00001"}, {"desired", 3}, {"panic", true}},
                 {{"type", "scale"}, {"t", 20.0}, {"isvc", "default/iris"}, {"revision", "iris-predictor-00001"}, {"desired", 0}, {"panic", false}}};
  json rate = json::array(), curve = json::array();
  for (int i = 0; i < 20; ++i) rate.push_back({i + 0.5, 100.0 + i * 10});
  for (double p : {0.0, 50.0, 90.0, 99.0, 99.9}) curve.push_back({p, 1 + p / 20});
  json loads = {{{"name", "burst"}, {"engine", "loadgen"}, {"rate_series", rate}, {"percentile_curve", curve},
                 {"succeeded", 2000}, {"failed", 0}, {"latency", {{"p50_ms", 1.2}, {"p99_ms", 4.5}}}}};
  json cold = {{"kind", "coldstart"},
               {"samples", {{{"total_ms", 820.0}, {"breakdown", {{"buffered_ms", 1.0}, {"pod_spawned_ms", 20.0}, {"process_started_ms", 40.0},
                                                                {"model_loaded_ms", 600.0}, {"ready_ms", 700.0}, {"forwarded_ms", 760.0},
                                                                {"first_byte_ms", 820.0}}}},
                            {{"total_ms", 640.0}, {"breakdown", {{"buffered_ms", 1.0}, {"pod_spawned_ms", 15.0}, {"ready_ms", 600.0},
                                                                {"first_byte_ms", 640.0}}}}}}};
  json canary = {{"kind", "canary"}, {"revision", "iris-predictor-00002"}, {"k", 397}, {"n", 2000}, {"expected_percent", 20.0},
                 {"ci_low", 17.1}, {"ci_high", 22.9}, {"confidence", 0.999}};
  json scenario = {{"name", "demo"}, {"description", "all plots"}, {"verdict", "failed"}, {"duration_s", 30.0},
                   {"skip_reason", ""}, {"error", ""}, {"target", "embedded refstack"},
                   {"assertions", {{{"name", "cold_start p95 (iris)"}, {"verdict", "passed"}, {"expected", "<= 5000 ms"}, {"measured", "820 ms"}, {"why", "ok"}, {"data", cold}},
                                   {{"name", "canary_split (load split)"}, {"verdict", "passed"}, {"expected", "20%"}, {"measured", "19.85%"}, {"why", "p = 0.87"}, {"data", canary}},
                                   {{"name", "no_errors (burst)"}, {"verdict", "failed"}, {"expected", "0 failed requests"}, {"measured", "3 of 2000 failed (status 503: 3)"}, {"why", "requests <failed>"}, {"data", json::object()}}}},
                   {"observations", {{"samples", samples}, {"events", events}, {"loads", loads}, {"steps", json::array()}}}};
  json skipped = {{"name", "later"}, {"description", "needs more"}, {"verdict", "skipped"}, {"skip_reason", "needs serverless: not here"},
                  {"error", ""}, {"assertions", json::array()}, {"observations", json::object()}};
  return reportJson({scenario, skipped}, "embedded refstack", "20250101T000000Z", 42.0);
}

std::string readFile(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

size_t count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1)) ++n;
  return n;
}

TEST(Report, WritesEveryFileWithThePlots) {
  auto dir = std::filesystem::path(::testing::TempDir()) / "scenario-report";
  std::filesystem::remove_all(dir);
  json r = sampleReport();
  ASSERT_TRUE(writeReport(dir, r).ok());
  std::string html = readFile(dir / "index.html");
  EXPECT_EQ(count(html, "<svg"), 5u);  // pods, rate, latency curve, cold start, canary
  EXPECT_NE(html.find("Pods over time"), std::string::npos);
  EXPECT_NE(html.find("Request rate over time"), std::string::npos);
  EXPECT_NE(html.find("Latency by percentile"), std::string::npos);
  EXPECT_NE(html.find("class=\"coldstart\""), std::string::npos);
  EXPECT_NE(html.find("class=\"split\""), std::string::npos);
  EXPECT_NE(html.find("class=results"), std::string::npos);
  EXPECT_NE(html.find("requests &lt;failed&gt;"), std::string::npos);  // escaped
  EXPECT_EQ(html.find("<script"), std::string::npos);                // self-contained, no scripts
  EXPECT_EQ(html.find("http://"), html.find("http://www.w3.org/2000/svg"));
  std::string md = readFile(dir / "summary.md");
  EXPECT_NE(md.find("| demo | no_errors (burst) | failed |"), std::string::npos) << md;
  EXPECT_NE(md.find("| later | (scenario) | skipped |"), std::string::npos) << md;
  std::string junit = readFile(dir / "junit.xml");
  EXPECT_NE(junit.find("tests=\"4\" failures=\"1\" skipped=\"1\""), std::string::npos) << junit;
  auto parsed = json::parse(readFile(dir / "results.json"));
  EXPECT_EQ(parsed["schema"], "kserve-harness/scenario-report/v1");
  EXPECT_EQ(parsed["failed"], 1);
  EXPECT_EQ(parsed["skipped"], 1);
}

TEST(Report, ShowsAGraphsBreakdownAndSplit) {
  json breakdown = {{"kind", "graph_breakdown"}, {"graph", "chain"}, {"graph_p50_ms", 2.5}, {"graph_p99_ms", 6.0},
                    {"steps", {{{"node", "root"}, {"step", "classify"}, {"target", "http://iris.default/v1"}, {"calls", 500},
                                {"start_p50_ms", 0.1}, {"p50_ms", 0.9}, {"p99_ms", 2.0}, {"statuses", {{"200", 500}}}},
                               {{"node", "root"}, {"step", "finish"}, {"target", "http://fixed.default/v1"}, {"calls", 500},
                                {"start_p50_ms", 1.1}, {"p50_ms", 0.7}, {"p99_ms", 1.5}, {"statuses", {{"200", 500}}}}}}};
  json split = {{"kind", "graph_split"}, {"graph", "split"}, {"node", "root"}, {"confidence", 0.999},
                {"steps", {{{"step", "thirty"}, {"k", 590}, {"n", 2000}, {"expected_percent", 30.0}, {"ci_low", 26.5}, {"ci_high", 32.6}},
                           {{"step", "seventy"}, {"k", 1410}, {"n", 2000}, {"expected_percent", 70.0}, {"ci_low", 67.4}, {"ci_high", 73.5}}}}};
  json scenario = {{"name", "graphs"}, {"description", "graph plots"}, {"verdict", "passed"}, {"duration_s", 3.0},
                   {"skip_reason", ""}, {"error", ""},
                   {"assertions", {{{"name", "graph_breakdown (load chain, chain)"}, {"verdict", "passed"}, {"data", breakdown}},
                                   {{"name", "graph_split (load split)"}, {"verdict", "passed"}, {"data", split}}}},
                   {"observations", json::object()}};
  auto dir = std::filesystem::path(::testing::TempDir()) / "scenario-report-graph";
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(writeReport(dir, reportJson({scenario}, "embedded", "20250101T000000Z", 3.0)).ok());
  std::string html = readFile(dir / "index.html");
  EXPECT_EQ(count(html, "class=\"graph\""), 1u);
  EXPECT_EQ(count(html, "class=\"split\""), 2u);  // one interval per Splitter step
  EXPECT_NE(html.find("root/classify"), std::string::npos);
  EXPECT_NE(html.find("<td>finish</td>"), std::string::npos);
  EXPECT_NE(html.find("share of step seventy"), std::string::npos);
  std::string md = readFile(dir / "summary.md");
  EXPECT_NE(md.find("### graphs: InferenceGraph chain (graph p50 2.50 ms, p99 6.00 ms)"), std::string::npos) << md;
  EXPECT_NE(md.find("| root | finish | http://fixed.default/v1 | 500 | 1.10 | 0.70 | 1.50 |"), std::string::npos) << md;
}

TEST(Report, RendersInHeadlessChromium) {
  if (std::system("command -v chromium >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "chromium is not installed (apt-get install chromium)";
  }
  auto dir = std::filesystem::path(::testing::TempDir()) / "scenario-report-chromium";
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(writeReport(dir, sampleReport()).ok());
  std::ofstream(dir / "blank.html") << "<!DOCTYPE html><html><body></body></html>";
  auto shoot = [&](const std::string& page, const std::string& png) {
    std::string cmd = common::strCat("cd ", dir.string(), " && HOME=", dir.string(),
                                     " timeout 90 chromium --headless --disable-gpu --no-sandbox --hide-scrollbars "
                                     "--user-data-dir=", (dir / "profile").string(), " --screenshot=", (dir / png).string(),
                                     " --window-size=1200,2400 file://", (dir / page).string(), " >", (dir / (png + ".log")).string(),
                                     " 2>&1");
    return std::system(cmd.c_str());
  };
  ASSERT_EQ(shoot("index.html", "report.png"), 0) << readFile(dir / "report.png.log");
  ASSERT_EQ(shoot("blank.html", "blank.png"), 0) << readFile(dir / "blank.png.log");
  ASSERT_TRUE(std::filesystem::exists(dir / "report.png"));
  std::string png = readFile(dir / "report.png");
  ASSERT_GT(png.size(), 8u);
  EXPECT_EQ(png.substr(1, 3), "PNG");
  // A page of text, tables and plots compresses far worse than a blank page of the same size.
  auto report_size = std::filesystem::file_size(dir / "report.png");
  auto blank_size = std::filesystem::file_size(dir / "blank.png");
  EXPECT_GT(report_size, 20'000u);
  EXPECT_GT(report_size, 3 * blank_size) << "report " << report_size << " bytes, blank " << blank_size;
}

}  // namespace
}  // namespace kh::scenario
