// `harness conform`, `load`, `compare` and `report` run as processes against a real modelserver.

#include <filesystem>
#include <fstream>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "support/modelserver_process.h"

namespace kh::testing {
namespace {

using namespace std::chrono_literals;

struct Run {
  int code = -1;
  std::string output;
};

Run harness(std::vector<std::string> args) {
  process::SpawnOptions opts;
  opts.argv = {binDir() + "/harness"};
  for (auto& a : args) opts.argv.push_back(std::move(a));
  auto child = process::Subprocess::spawn(opts);
  Run r;
  if (!child.ok()) return r;
  while (true) {
    auto line = (*child)->readLine(120s);
    if (!line.ok()) break;
    r.output += *line + "\n";
  }
  auto status = (*child)->wait(60s);
  r.code = status && status->exited ? status->code : -1;
  return r;
}

nlohmann::json readJson(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in, nullptr, false);
}

class HarnessCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto s = startModelServer("iris", modelDir("xgboost-iris"));
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = new ModelServerProcess(std::move(*s));
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  std::string target() const { return "http://127.0.0.1:" + std::to_string(server_->http_port); }
  static ModelServerProcess* server_;
};
ModelServerProcess* HarnessCli::server_ = nullptr;

TEST_F(HarnessCli, ConformPassesAndWritesJunitAndJson) {
  std::string junit = ::testing::TempDir() + "/conform.xml";
  std::string json = ::testing::TempDir() + "/conform.json";
  auto r = harness({"conform", "--target", target(), "--grpc", server_->grpcTarget(), "--model",
                    "iris", "--junit", junit, "--json", json, "-q"});
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find(" passed, 0 failed, 0 skipped"), std::string::npos) << r.output;
  EXPECT_EQ(readJson(json)["summary"]["conformant"], true);
  std::ifstream xml(junit);
  std::string text((std::istreambuf_iterator<char>(xml)), {});
  EXPECT_NE(text.find("<testsuite name=\"v2_grpc\""), std::string::npos);
}

TEST_F(HarnessCli, ConformExitCodesForUnreachableAndMissingModel) {
  EXPECT_EQ(harness({"conform", "--target", "http://127.0.0.1:1", "--model", "iris"}).code, 2);
  auto r = harness({"conform", "--target", target(), "--model", "no-such-model", "-q"});
  EXPECT_EQ(r.code, 1) << r.output;
}

TEST_F(HarnessCli, LoadWritesEveryOutputAndCompareFlagsRegressions) {
  std::string dir = ::testing::TempDir();
  auto a = harness({"load", "--target", target(), "--model", "iris", "-c", "2", "-n", "300",
                    "--warmup", "0s", "-o", dir + "/a.json", "--csv", dir + "/a.csv",
                    "--hdr-log", dir + "/a.hlog", "--html", dir + "/a.html", "--label", "fast", "-q"});
  ASSERT_EQ(a.code, 0) << a.output;
  auto doc = readJson(dir + "/a.json");
  EXPECT_EQ(doc["schema"], "kserve-harness/load-run/v1");
  EXPECT_EQ(doc["summary"]["completed"], 300);
  EXPECT_EQ(doc["summary"]["errors"], 0);
  for (const char* f : {"/a.csv", "/a.hlog", "/a.html"}) {
    std::ifstream in(dir + f);
    EXPECT_TRUE(in.good()) << f;
  }
  // A second run of a different protocol, then a comparison with a threshold that must trip.
  auto b = harness({"load", "--grpc", server_->grpcTarget(), "--protocol", "grpc", "--model",
                    "iris", "-c", "2", "-n", "300", "--warmup", "0s", "-o", dir + "/b.json",
                    "--label", "grpc", "-q"});
  ASSERT_EQ(b.code, 0) << b.output;
  auto same = harness({"compare", dir + "/a.json", dir + "/a.json", "-o", dir + "/cmp-same"});
  EXPECT_EQ(same.code, 0) << same.output;
  auto strict = harness({"compare", dir + "/a.json", dir + "/b.json", "-o", dir + "/cmp",
                         "--threshold", "throughput=-0%,throughput=+0%"});
  EXPECT_EQ(strict.code, 1) << strict.output;
  std::ifstream index(dir + "/cmp/index.html");
  EXPECT_TRUE(index.good());
  auto report = harness({"report", dir + "/a.json", dir + "/b.json", "-o", dir + "/r.html"});
  EXPECT_EQ(report.code, 0) << report.output;
  // Files that are not load results are bad input (exit 2), not a crash: an array's value() threw.
  for (const char* text : {"[1, 2]", "{\"schema\": 5}", "not json"}) {
    std::ofstream(dir + "/not-a-run.json") << text;
    auto bad = harness({"compare", dir + "/a.json", dir + "/not-a-run.json", "-o", dir + "/cmp-bad"});
    EXPECT_EQ(bad.code, 2) << text << ": " << bad.output;
    EXPECT_NE(bad.output.find("is not a `harness load -o` result"), std::string::npos) << bad.output;
  }
}

TEST_F(HarnessCli, LoadExportsEveryRequestAndTheHttpPhases) {
  std::string file = ::testing::TempDir() + "/requests.jsonl";
  std::string json = ::testing::TempDir() + "/requests.json";
  auto r = harness({"load", "--target", target(), "--model", "iris", "-c", "2", "-n", "200", "--warmup", "0s",
                    "--export-requests", file, "--export-header", "content-type", "-o", json, "--html",
                    json + ".html", "-q"});
  ASSERT_EQ(r.code, 0) << r.output;
  // Where the time went: two connections made (no warm-up), every request's send, wait and
  // receive; the wait is where a model server's time is.
  auto phases = readJson(json)["http_phases"];
  EXPECT_EQ(phases["connect"]["count"], 2) << phases;
  for (const char* p : {"send", "wait", "receive"}) EXPECT_EQ(phases[p]["count"], 200) << p;
  EXPECT_GT(phases["wait"]["p50_ms"].get<double>(), 0) << phases;
  EXPECT_NE(r.output.find("phases"), std::string::npos) << r.output;
  std::ifstream html(json + ".html");
  EXPECT_NE(std::string(std::istreambuf_iterator<char>(html), {}).find("<h2>HTTP phases</h2>"), std::string::npos);
  std::ifstream in(file);
  std::string line;
  int n = 0;
  double last_intended = 0;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    ++n;
    EXPECT_GT(j["intended"].get<double>(), 1.7e9) << line;  // Unix seconds
    EXPECT_GE(j["intended"].get<double>(), last_intended) << line;
    last_intended = j["intended"].get<double>();
    EXPECT_LE(j["intended"].get<double>(), j["sent"].get<double>() + 1e-6) << line;
    EXPECT_LE(j["sent"].get<double>(), j["first_byte"].get<double>() + 1e-6) << line;
    EXPECT_LE(j["first_byte"].get<double>(), j["done"].get<double>() + 1e-6) << line;
    EXPECT_GE(j["latency_ms"].get<double>(), j["service_ms"].get<double>()) << line;
    EXPECT_GT(j["service_ms"].get<double>(), 0) << line;
    EXPECT_EQ(j["status"], 200) << line;
    EXPECT_EQ(j["error"], "none") << line;
    EXPECT_EQ(j["header"], "application/json") << line;
  }
  EXPECT_EQ(n, 200);
  // One run only: a search makes many.
  EXPECT_EQ(harness({"load", "--target", target(), "--model", "iris", "--search", "max-throughput",
                     "--export-requests", file, "-q"})
                .code,
            2);
}

TEST_F(HarnessCli, ComparesTheXgboostAndDenseRuntimes) {
  auto dense = startModelServer("dense", modelDir("dense-iris"));
  ASSERT_TRUE(dense.ok()) << dense.status();
  std::string dir = ::testing::TempDir();
  std::string dense_target = "http://127.0.0.1:" + std::to_string(dense->http_port);
  ASSERT_EQ(harness({"load", "--target", target(), "--model", "iris", "-c", "2", "-n", "500",
                     "--warmup", "0s", "--label", "xgboost", "-o", dir + "/xgb.json", "-q"}).code, 0);
  ASSERT_EQ(harness({"load", "--target", dense_target, "--model", "dense", "-c", "2", "-n", "500",
                     "--warmup", "0s", "--label", "dense", "-o", dir + "/dense.json", "-q"}).code, 0);
  auto r = harness({"compare", dir + "/xgb.json", dir + "/dense.json", "-o", dir + "/runtimes"});
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("| xgboost |"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("| dense |"), std::string::npos) << r.output;
  auto comparison = readJson(dir + "/runtimes/comparison.json");
  EXPECT_EQ(comparison["rows"].size(), 2u);
}

TEST_F(HarnessCli, ScrapesServerMetricsPerWindowAndChecksValidity) {
  std::string out = ::testing::TempDir() + "/scraped.json";
  auto r = harness({"load", "--target", target(), "--model", "iris", "-c", "2", "-d", "2s",
                    "--warmup", "0s", "--window", "500ms", "--scrape", target() + "/metrics",
                    "-o", out, "-q"});
  ASSERT_EQ(r.code, 0) << r.output;
  auto doc = readJson(out);
  bool counted = false;
  for (const auto& [series, delta] : doc["server_metrics_delta"].items()) {
    if (series.find("kh_modelserver_requests_total") != std::string::npos &&
        series.find("code=\"200\",endpoint=\"infer\"") != std::string::npos) {
      counted = delta.get<double>() >= doc["summary"]["completed"].get<double>();
    }
  }
  EXPECT_TRUE(counted) << doc["server_metrics_delta"].dump();
  ASSERT_GE(doc["windows"].size(), 2u);
  EXPECT_FALSE(doc["windows"][0]["server_metrics_delta"].empty()) << doc["windows"].dump();
  EXPECT_EQ(doc["valid"], true);

  auto small = harness({"load", "--target", target(), "--model", "iris", "-n", "10",
                        "--warmup", "0s", "--min-requests", "1000", "-q"});
  EXPECT_EQ(small.code, 1) << small.output;
  EXPECT_NE(small.output.find("INVALID"), std::string::npos) << small.output;
}

TEST_F(HarnessCli, LoadExitCodes) {
  // Unreachable target.
  EXPECT_EQ(harness({"load", "--target", "http://127.0.0.1:1", "--model", "iris", "-n", "5",
                     "--input", sourceDir() + "/protocols/conformance/README.md", "-q"}).code, 2);
  EXPECT_EQ(harness({"load", "--target", "http://127.0.0.1:1", "--model", "iris", "-n", "5", "-q"}).code, 2);
  // An SLO that cannot be met fails the run.
  auto slo = harness({"load", "--target", target(), "--model", "iris", "-c", "1", "-n", "100",
                      "--warmup", "0s", "--slo", "p99=1us", "-q"});
  EXPECT_EQ(slo.code, 1) << slo.output;
  EXPECT_NE(slo.output.find("not established"), std::string::npos) << slo.output;
  // Bad arguments.
  EXPECT_EQ(harness({"load", "--model", "iris", "--protocol", "v9"}).code, 2);
  EXPECT_EQ(harness({"load", "--model", "iris", "--profile", "oops"}).code, 2);
}

}  // namespace
}  // namespace kh::testing

namespace kh::testing {
namespace {

TEST_F(HarnessCli, SimulateDrawsServiceAndStartUpTimesFromMeasuredRuns) {
  // A directory of this test's own: CTest runs the tests of this file as parallel processes.
  std::string dir = ::testing::TempDir() + "/simulate-measured";
  std::filesystem::create_directories(dir);
  auto load = harness({"load", "--target", target(), "--model", "iris", "-c", "2", "-n", "200", "--warmup", "0s",
                       "-o", dir + "/load.json", "-q"});
  ASSERT_EQ(load.code, 0) << load.output;
  {
    // A report's cold starts, as refstack's coldstart events carry them.
    std::ofstream report(dir + "/report.json");
    report << nlohmann::json{{"scenarios",
                              {{{"observations",
                                 {{"events",
                                   {{{"type", "coldstart"}, {"breakdown", {{"ready_ms", 2000}}}},
                                    {{"type", "coldstart"}, {"breakdown", {{"ready_ms", 3000}}}}}}}}}}}};
  }
  auto sim = harness({"simulate", "--workload", "a=every:90", "--duration", "1h", "--service-time-from",
                      dir + "/load.json", "--pod-startup-from", dir + "/report.json", "-o", dir + "/sim.json"});
  ASSERT_EQ(sim.code, 0) << sim.output;
  EXPECT_NE(sim.output.find("service time: 1000 measured value(s)"), std::string::npos) << sim.output;
  EXPECT_NE(sim.output.find("pod start-up: 2 measured value(s)"), std::string::npos) << sim.output;
  auto result = readJson(dir + "/sim.json");
  // Every request finds zero pods and waits 2 s or 3 s for one.
  const auto& total = result["total"];
  EXPECT_EQ(total["cold_start_requests"], total["requests"]);
  EXPECT_GE(total["added_latency_ms"]["max"].get<double>(), 1999.0);
  EXPECT_LE(total["added_latency_ms"]["max"].get<double>(), 3004.0);
  // Not a load result, not a report: exit 2 with the reason.
  auto bad = harness({"simulate", "--workload", "a=every:90", "--duration", "1h", "--service-time-from",
                      dir + "/report.json"});
  EXPECT_EQ(bad.code, 2) << bad.output;
  EXPECT_NE(bad.output.find("not a harness load result"), std::string::npos) << bad.output;
  auto bad_report = harness({"simulate", "--workload", "a=every:90", "--duration", "1h", "--pod-startup-from",
                             dir + "/load.json"});
  EXPECT_EQ(bad_report.code, 2) << bad_report.output;
}

}  // namespace
}  // namespace kh::testing
