// Choosing a destination from a routing snapshot with injected draws: the split, pods by round
// robin or (activator in the path) by the activator's policy, zero pods for the activator to hold,
// :explain to the explainer.

#include "kh/ingress/snapshot.h"

#include <deque>
#include <map>

#include "gtest/gtest.h"
#include "kh/events/event_log.h"

namespace kh::ingress {
namespace {

// Draws given in advance (each a fraction of 2^64).
class FixedRandom final : public activator::RandomSource {
 public:
  explicit FixedRandom(std::deque<double> fractions) : fractions_(std::move(fractions)) {}
  uint64_t next() override {
    double f = fractions_.empty() ? 0 : fractions_.front();
    if (!fractions_.empty()) fractions_.pop_front();
    return static_cast<uint64_t>(f * 18446744073709551615.0);
  }

 private:
  std::deque<double> fractions_;
};

activator::EndpointListPtr pods(std::initializer_list<const char*> names) {
  auto list = std::make_shared<activator::EndpointList>();
  for (const char* n : names) {
    activator::Endpoint e;
    e.pod = n;
    list->push_back(e);
  }
  return list;
}

RoutingSnapshot canarySnapshot() {
  RoutingSnapshot s;
  s.table.add({"iris", "default", {{"predictor", {{"iris-predictor-00002", 20}, {"iris-predictor-00001", 80}}, {}}}});
  s.revisions["iris-predictor-00001"].endpoints = pods({"a-1", "a-2"});
  s.revisions["iris-predictor-00002"].endpoints = pods({"b-1"});
  return s;
}

TEST(PickDestination, TheDrawDecidesTheSplitAndPodsGoRoundRobin) {
  RoutingSnapshot s = canarySnapshot();
  FixedRandom random({0.10, 0.50, 0.199, 0.21});
  std::atomic<size_t> rr{0};
  std::vector<std::string> got;
  for (int i = 0; i < 4; ++i) {
    Destination d = pickDestination(s, "iris-default.example.com", "/v1/models/iris:predict", random, rr);
    ASSERT_EQ(d.error_status, 0) << d.error;
    got.push_back(std::string(d.revision) + "/" + d.endpoint->pod);
  }
  // 10% and 19.9% fall in the first 20%; one round-robin counter takes turns over the pods.
  EXPECT_EQ(got, (std::vector<std::string>{"iris-predictor-00002/b-1", "iris-predictor-00001/a-2",
                                           "iris-predictor-00002/b-1", "iris-predictor-00001/a-2"}));
}

TEST(PickDestination, UnknownHostsAndZeroPodsSayWhy) {
  RoutingSnapshot s = canarySnapshot();
  s.revisions["iris-predictor-00001"].endpoints = std::make_shared<activator::EndpointList>();
  FixedRandom random({0.9});
  std::atomic<size_t> rr{0};
  Destination unknown = pickDestination(s, "nope-default.example.com", "/", random, rr);
  EXPECT_EQ(unknown.error_status, 404);
  EXPECT_EQ(unknown.error, "no InferenceService serves host 'nope-default.example.com'");
  Destination zero = pickDestination(s, "iris-default.example.com", "/", random, rr);
  EXPECT_EQ(zero.error_status, 503);
  EXPECT_EQ(zero.revision, "iris-predictor-00001");
  ASSERT_NE(zero.target, nullptr);  // the caller holds it when the target has an activator
  EXPECT_EQ(zero.error, "revision iris-predictor-00001 has no ready pod");
}

TEST(PickDestination, WithTheActivatorInThePathItsPolicyChoosesThePod) {
  common::SimulatedTimeSource time;
  activator::SeededRandom seeded(3);
  activator::Activator::Options o;
  o.time = &time;
  o.random = &seeded;
  activator::Activator act(o);
  activator::RevisionSettings settings;
  settings.container_concurrency = 1;  // firstAvailable: the first pod with a free slot
  RoutingSnapshot s = canarySnapshot();
  auto& target = s.revisions["iris-predictor-00001"];
  target.activator = act.addRevision("iris-predictor-00001", settings);
  (*target.endpoints)[0].in_flight->store(1);
  FixedRandom random({0.9, 0.9});
  std::atomic<size_t> rr{0};
  EXPECT_EQ(pickDestination(s, "iris-default.example.com", "/", random, rr).endpoint->pod, "a-2");
  act.setInPath("iris-predictor-00001", false);  // out of the path: round robin
  EXPECT_EQ(pickDestination(s, "iris-default.example.com", "/", random, rr).endpoint->pod, "a-1");
}

TEST(PickDestination, ExplainGoesToTheExplainerOfTheServiceHost) {
  RoutingSnapshot s;
  s.table.add({"e", "ns", {{"predictor", {{"e-predictor-00001", 100}}, {}}, {"explainer", {{"e-explainer-00001", 100}}, {}}}});
  s.revisions["e-predictor-00001"].endpoints = pods({"p"});
  s.revisions["e-explainer-00001"].endpoints = pods({"x"});
  FixedRandom random({0, 0, 0});
  std::atomic<size_t> rr{0};
  EXPECT_EQ(pickDestination(s, "e-ns.example.com", "/v1/models/e:explain", random, rr).endpoint->pod, "x");
  EXPECT_EQ(pickDestination(s, "e-ns.example.com", "/v1/models/e:predict", random, rr).endpoint->pod, "p");
  // The explainer's own call to the predictor is taken as named.
  EXPECT_EQ(pickDestination(s, "e-predictor-ns.example.com", "/v1/models/e:explain", random, rr).endpoint->pod, "p");
}

}  // namespace
}  // namespace kh::ingress
