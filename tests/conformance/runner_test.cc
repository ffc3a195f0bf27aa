// The runner must be able to fail: a server that answers everything with 200 {} fails the MUST
// cases, and an unreachable target is reported as such.

#include <filesystem>
#include <fstream>
#include <map>

#include "gtest/gtest.h"
#include "kh/conformance/conformance.h"
#include "kh/http/server.h"

namespace kh::conformance {
namespace {

class AlwaysOk final : public http::Handler {
 public:
  void handle(http::Request&, http::Response& res) override {
    res.result(200);
    res.set("Content-Type", "application/json");
    res.body() = "{}";
  }
};

TEST(Runner, AServerThatAnswersEverythingWithOkFailsMustCases) {
  AlwaysOk handler;
  auto server = http::HttpServer::create({}, handler);
  ASSERT_TRUE(server.ok());
  (*server)->start();
  auto cases = loadCases(KH_TEST_SOURCE_DIR "/protocols/conformance");
  ASSERT_TRUE(cases.ok());
  RunOptions options;
  options.http_host = "127.0.0.1";
  options.http_port = (*server)->port();
  options.model = "iris";
  // The metadata cannot be read from this server, so give the sample explicitly.
  options.sample_file = ::testing::TempDir() + "/sample.json";
  {
    FILE* f = std::fopen(options.sample_file->c_str(), "w");
    std::fputs(R"({"inputs":[{"name":"input-0","shape":[2,4],"datatype":"FP32",)"
               R"("data":[[6.8,2.8,4.8,1.4],[6.0,3.4,4.5,1.6]]}]})",
               f);
    std::fclose(f);
  }
  auto summary = runCases(*cases, options, {});
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_GT(summary->must_failed, 30);
  // Health checks with no body requirement pass even here.
  bool live_passed = false;
  for (const auto& r : summary->results) {
    if (r.test->id == "V2-SERVER-LIVE") live_passed = r.outcome == Outcome::kPass;
  }
  EXPECT_TRUE(live_passed);
  // gRPC cases are skipped without a gRPC target.
  EXPECT_GT(summary->skipped, 20);
  (*server)->drain(std::chrono::milliseconds(1000));
}

// Answers like KServe's router for the graph seq-soft-recover (the Host says which graph is
// asked), and 404 for any other host.
class OneGraph final : public http::Handler {
 public:
  void handle(http::Request& req, http::Response& res) override {
    res.set("Content-Type", "application/json");
    if (req[boost::beast::http::field::host] == "seq-soft-recover-team.example.com") {
      res.result(200);
      res.body() = R"({"predictions":[{"message":"SUCCESS"}]})";
    } else {
      res.result(404);
      res.body() = R"({"error":"no such host"})";
    }
  }
};

TEST(Runner, GraphCasesGoToTheGraphsHostAndLeaveModelCasesOut) {
  OneGraph handler;
  auto server = http::HttpServer::create({}, handler);
  ASSERT_TRUE(server.ok());
  (*server)->start();
  auto cases = loadCases(KH_TEST_SOURCE_DIR "/protocols/conformance");
  ASSERT_TRUE(cases.ok());
  RunOptions options;
  options.http_host = "127.0.0.1";
  options.http_port = (*server)->port();
  options.graphs = {"seq-soft-recover", "seq-hard"};
  options.graph_host = "{graph}-team.example.com";
  auto summary = runCases(*cases, options, {});
  ASSERT_TRUE(summary.ok()) << summary.status();
  std::map<std::string, Outcome> outcomes;
  for (const auto& r : summary->results) {
    EXPECT_EQ(r.test->protocol, "graph") << r.test->id;
    outcomes[r.test->id] = r.outcome;
  }
  EXPECT_EQ(outcomes["GRAPH-SEQ-SOFT-FAILURE-CONTINUES"], Outcome::kPass);
  EXPECT_EQ(outcomes["GRAPH-SEQ-ANY-PATH"], Outcome::kPass);
  // seq-hard's host is not served: its case runs and fails.
  EXPECT_EQ(outcomes["GRAPH-SEQ-HARD-FAILURE-STOPS"], Outcome::kFail);
  EXPECT_EQ(outcomes.count("GRAPH-SWITCH-NO-MATCH-404"), 0u);  // another graph's case
  EXPECT_EQ(summary->must_failed, 1);
  (*server)->drain(std::chrono::milliseconds(1000));
}

TEST(Runner, AGraphNamedLikeTheHostPlaceholderStillGetsItsRequest) {
  // A case file's graph name is input: "{graph}" in it must not make the Host loop forever.
  auto cases = parseSuite("protocol: graph\ncases:\n  - id: G\n    section: '5'\n    tag: REF\n    level: MUST\n"
                          "    graph: 'x{graph}'\n    request: {method: POST, path: /}\n    expect: {status: 404}\n",
                          "g.yaml");
  ASSERT_TRUE(cases.ok()) << cases.status();
  OneGraph handler;  // 404 for any host but seq-soft-recover's
  auto server = http::HttpServer::create({}, handler);
  ASSERT_TRUE(server.ok());
  (*server)->start();
  RunOptions options;
  options.http_host = "127.0.0.1";
  options.http_port = (*server)->port();
  options.graphs = {"all"};
  options.graph_host = "{graph}-{graph}.example.com";
  auto summary = runCases(*cases, options, {});
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->passed, 1);
  (*server)->drain(std::chrono::milliseconds(1000));
}

TEST(Runner, UnreachableTargetIsUnavailable) {
  auto cases = loadCases(KH_TEST_SOURCE_DIR "/protocols/conformance");
  ASSERT_TRUE(cases.ok());
  RunOptions options;
  options.http_host = "127.0.0.1";
  options.http_port = 1;  // nothing listens on port 1
  options.model = "iris";
  options.timeout = std::chrono::milliseconds(2000);
  auto summary = runCases(*cases, options, {});
  EXPECT_EQ(summary.status().code(), absl::StatusCode::kUnavailable);
}

TEST(Runner, JunitAndJsonDescribeEveryCase) {
  Case c;
  c.id = "X-1";
  c.title = "a <title> & more";
  c.section = "2.1";
  c.tag = "SPEC";
  c.level = "MUST";
  c.protocol = "v2";
  c.suite = "v2_rest";
  Summary s;
  s.failed = 1;
  s.must_failed = 1;
  s.results.push_back({&c, Outcome::kFail, "expected 200, got 500 \"x\"", 0.5});
  RunOptions options;
  options.model = "m";
  std::string xml = junitXml(s, options);
  EXPECT_NE(xml.find("<testcase classname=\"v2_rest\" name=\"X-1\""), std::string::npos) << xml;
  EXPECT_NE(xml.find("<failure message=\"expected 200, got 500 &quot;x&quot;\""), std::string::npos);
  auto json = resultsJson(s, options);
  EXPECT_EQ(json["summary"]["must_failed"], 1);
  EXPECT_EQ(json["summary"]["conformant"], false);
  EXPECT_EQ(json["cases"][0]["result"], "FAIL");
  EXPECT_NE(formatResult(s.results[0]).find("FAIL  X-1  [SPEC MUST 2.1 v2]"), std::string::npos);
}

}  // namespace
}  // namespace kh::conformance

namespace kh::conformance {
namespace {

// Answers as KServe's own Python servers do: the model's metadata lists no inputs or outputs
// ("inputs": []), health routes answer, inference answers 200 with one output.
class NoInputsDescribed final : public http::Handler {
 public:
  void handle(http::Request& req, http::Response& res) override {
    res.result(200);
    res.set("Content-Type", "application/json");
    const std::string target(req.target());
    if (target.rfind("/v2/models/", 0) == 0 && req.method() == boost::beast::http::verb::get &&
        target.find("/ready") == std::string::npos) {
      res.body() = R"({"name":"model","versions":[],"platform":"","inputs":[],"outputs":[]})";
      return;
    }
    res.body() = R"({"model_name":"model","outputs":[{"name":"output-0","shape":[2],"datatype":"INT64","data":[1,1]}]})";
  }
};

struct NoInputsRun {
  Summary summary;
  std::vector<std::string> notices;
  bool notice_before_results = true;
};

// The shipped cases, loaded once: results point at their case, so the cases outlive every run.
const std::vector<Case>& shippedCases() {
  static const std::vector<Case>* const kCases = [] {
    auto cases = loadCases(KH_TEST_SOURCE_DIR "/protocols/conformance");
    EXPECT_TRUE(cases.ok()) << cases.status();
    return new std::vector<Case>(cases.ok() ? std::move(*cases) : std::vector<Case>{});
  }();
  return *kCases;
}

NoInputsRun runAgainstNoInputs(const std::string& model, const std::string& samples_dir) {
  NoInputsRun out;
  NoInputsDescribed handler;
  auto server = http::HttpServer::create({}, handler);
  EXPECT_TRUE(server.ok());
  if (!server.ok()) return out;
  (*server)->start();
  const std::vector<Case>& cases = shippedCases();
  RunOptions options;
  options.http_host = "127.0.0.1";
  options.http_port = (*server)->port();
  options.model = model;
  options.protocols = "v2";
  options.samples_dir = samples_dir;
  int results = 0;
  options.on_notice = [&](const std::string& notice) {
    out.notices.push_back(notice);
    out.notice_before_results = results == 0;
  };
  auto summary = runCases(cases, options, [&](const CaseResult&) { ++results; });
  EXPECT_TRUE(summary.ok()) << summary.status();
  if (summary.ok()) out.summary = std::move(*summary);
  (*server)->drain(std::chrono::milliseconds(1000));
  return out;
}

TEST(Runner, AModelWithoutDescribedInputsSkipsTheCasesThatNeedASampleAndSaysWhy) {
  NoInputsRun run = runAgainstNoInputs("custom-model", KH_TEST_SOURCE_DIR "/protocols/conformance/samples");
  // One line, before any result, saying what is missing and what to pass.
  ASSERT_EQ(run.notices.size(), 1u);
  EXPECT_TRUE(run.notice_before_results);
  EXPECT_NE(run.notices[0].find("metadata lists no inputs"), std::string::npos) << run.notices[0];
  EXPECT_NE(run.notices[0].find("--sample"), std::string::npos) << run.notices[0];
  EXPECT_EQ(run.summary.notice, run.notices[0]);
  int sample_skips = 0, ran = 0;
  for (const auto& r : run.summary.results) {
    // Nothing fails for want of a variable: those cases are skipped, each with the reason.
    EXPECT_EQ(r.detail.find("is not known"), std::string::npos) << r.test->id << ": " << r.detail;
    if (r.outcome == Outcome::kSkip && r.detail.find("needs a sample input") != std::string::npos) {
      EXPECT_NE(r.detail.find("pass --sample"), std::string::npos) << r.detail;
      ++sample_skips;
    }
    if (r.outcome != Outcome::kSkip) ++ran;
  }
  EXPECT_GT(sample_skips, 10);
  // The rest still ran (health, metadata, malformed requests).
  EXPECT_GT(ran, 5);
  // Skips are not failures: a MUST case fails only when it ran and failed.
  int must_ran_failed = 0;
  for (const auto& r : run.summary.results) {
    if (r.outcome == Outcome::kFail && r.test->level == "MUST") ++must_ran_failed;
  }
  EXPECT_EQ(run.summary.must_failed, must_ran_failed);
}

TEST(Runner, AWellKnownDemoModelGetsItsDemoSample) {
  // "sklearn-iris" ends in "-iris": samples/iris.json is its sample, so inference cases run.
  NoInputsRun run = runAgainstNoInputs("sklearn-iris", KH_TEST_SOURCE_DIR "/protocols/conformance/samples");
  ASSERT_EQ(run.notices.size(), 1u);
  EXPECT_NE(run.notices[0].find("iris.json"), std::string::npos) << run.notices[0];
  bool infer_ran = false;
  for (const auto& r : run.summary.results) {
    EXPECT_EQ(r.detail.find("needs a sample input"), std::string::npos) << r.test->id;
    if (r.test->id.rfind("V2-INFER", 0) == 0) {
      infer_ran = infer_ran || r.outcome != Outcome::kSkip;
    }
  }
  EXPECT_TRUE(infer_ran);
  // Without the samples folder, the same model is treated as any other.
  NoInputsRun bare = runAgainstNoInputs("sklearn-iris", "");
  ASSERT_EQ(bare.notices.size(), 1u);
  EXPECT_EQ(bare.notices[0].find("iris.json"), std::string::npos);
}

TEST(Runner, TheDemoSampleWithTheClosestNameWins) {
  // Several samples apply to "team-sklearn-iris": the exact name beats any suffix, and a longer
  // suffix beats a shorter one, whatever order the directory lists them in.
  const std::filesystem::path dir = std::filesystem::path(::testing::TempDir()) / "closest-samples";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::filesystem::path iris = KH_TEST_SOURCE_DIR "/protocols/conformance/samples/iris.json";
  auto pick = [&](const std::string& model) {
    NoInputsRun run = runAgainstNoInputs(model, dir.string());
    return run.notices.empty() ? std::string() : run.notices[0];
  };
  for (const char* name : {"iris.json", "sklearn-iris.json", "team-sklearn-iris.json"}) {
    std::filesystem::copy_file(iris, dir / name);
  }
  std::string notice = pick("team-sklearn-iris");
  EXPECT_NE(notice.find("/team-sklearn-iris.json"), std::string::npos) << notice;
  notice = pick("other-sklearn-iris");
  EXPECT_NE(notice.find("/sklearn-iris.json"), std::string::npos) << notice;
  // A sample that applies but is not a request with inputs is passed over for the next closest.
  {
    std::ofstream broken(dir / "sklearn-iris.json", std::ios::trunc);
    broken << "{\"inputs\": []}";
  }
  notice = pick("other-sklearn-iris");
  EXPECT_NE(notice.find("/iris.json"), std::string::npos) << notice;
  EXPECT_EQ(notice.find("sklearn-iris.json"), std::string::npos) << notice;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace kh::conformance
