// The runner must be able to fail: a server that answers everything with 200 {} fails the MUST
// cases, and an unreachable target is reported as such.

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
