// Scenarios end to end on the embedded stack: the canary scenario (split, tags, promote,
// rollback) runs green; serverless scenarios skip with a reason when the stack lacks it; the
// endpoint target skips what needs a control plane.

#include "gtest/gtest.h"
#include "kh/scenario/runner.h"
#include "kh/scenario/scenario.h"
#include "kh/scenario/target.h"

namespace kh::scenario {
namespace {

const std::filesystem::path kScenarios = std::filesystem::path(KH_TEST_SOURCE_DIR) / "scenarios";

std::unique_ptr<Target> embedded(const common::TimeSource& time) {
  EmbeddedOptions o;
  o.bin_dir = KH_TEST_BIN_DIR;
  o.runtimes_dir = std::filesystem::path(KH_TEST_SOURCE_DIR) / "reference-impl/controller/runtimes";
  o.temp_root = ::testing::TempDir();
  return makeEmbeddedTarget(o, time);
}

std::string describe(const ScenarioResult& r) { return resultToJson(r).dump(1).substr(0, 20000); }

TEST(EmbeddedScenario, CanaryRolloutRunsGreen) {
  auto s = loadScenarioFile(kScenarios / "canary-rollout.yaml");
  ASSERT_TRUE(s.ok()) << s.status();
  common::RealTimeSource time;
  auto target = embedded(time);
  RunOptions options;
  auto r = runScenario(*s, *target, options, time);
  EXPECT_EQ(r.verdict, Verdict::kPass) << r.error << "\n" << describe(r);
  ASSERT_EQ(r.assertions.size(), 5u);
  for (const auto& a : r.assertions) {
    EXPECT_EQ(a.verdict, Verdict::kPass) << a.name << ": expected " << a.expected << "; measured " << a.measured << "; " << a.why;
  }
  // The split's figures are there for the report's plot.
  EXPECT_EQ(r.assertions[0].data["n"], 2000);
  EXPECT_FALSE(r.observations["samples"].empty());
  EXPECT_FALSE(r.observations["events"].empty());
}

TEST(EmbeddedScenario, ServerlessScenariosSkipWithoutTheDataPlane) {
  if (embeddedHasServerless()) GTEST_SKIP() << "this build has the serverless data plane";
  auto s = loadScenarioFile(kScenarios / "scale-to-zero.yaml");
  ASSERT_TRUE(s.ok()) << s.status();
  common::RealTimeSource time;
  auto target = embedded(time);
  auto r = runScenario(*s, *target, RunOptions{}, time);
  EXPECT_EQ(r.verdict, Verdict::kSkip);
  EXPECT_NE(r.skip_reason.find("serverless"), std::string::npos) << r.skip_reason;
}

TEST(EndpointScenario, SkipsWhatNeedsAControlPlane) {
  auto s = loadScenarioFile(kScenarios / "canary-rollout.yaml");
  ASSERT_TRUE(s.ok());
  common::RealTimeSource time;
  auto target = makeEndpointTarget("http://127.0.0.1:1", "");
  ASSERT_TRUE(target.ok());
  auto r = runScenario(*s, **target, RunOptions{}, time);
  EXPECT_EQ(r.verdict, Verdict::kSkip);
  EXPECT_NE(r.skip_reason.find("control-plane"), std::string::npos) << r.skip_reason;
}

}  // namespace
}  // namespace kh::scenario
