// The activator on a simulated clock with seeded draws: one hold queue for every protocol (park,
// release on ready, expiry at the revision timeout from arrival, cancel, one limit), the
// time-weighted stats, Knative's balancing policy and the cold-start record.

#include "kh/activator/activator.h"

#include <set>

#include "gtest/gtest.h"
#include "prometheus/registry.h"
#include "prometheus/text_serializer.h"

namespace kh::activator {
namespace {

using namespace std::chrono_literals;

// What happened to the held requests, in order.
struct Outcomes {
  std::vector<std::string> log;
  std::vector<Release> releases;
};

// A held request of some protocol: records what it was told.
class FakeHeld final : public HeldRequest {
 public:
  FakeHeld(Outcomes& out, std::string name) : out_(out), name_(std::move(name)) {}
  void release(Release&& r) override {
    out_.log.push_back(name_ + " -> " + r.endpoint->pod);
    out_.releases.push_back(std::move(r));
  }
  void reject(Rejection why, const std::string& message) override {
    out_.log.push_back(name_ + " " + rejectionName(why) + ": " + message);
  }

 private:
  Outcomes& out_;
  std::string name_;
};

EndpointListPtr pods(std::initializer_list<const char*> names) {
  auto list = std::make_shared<EndpointList>();
  uint16_t port = 9000;
  for (const char* n : names) {
    Endpoint e;
    e.pod = n;
    e.port = port++;
    list->push_back(e);
  }
  return list;
}

class ActivatorTest : public ::testing::Test {
 protected:
  ActivatorTest() : random_(42), log_(time_) {
    Activator::Options o;
    o.time = &time_;
    o.random = &random_;
    o.events = &log_;
    o.on_activation = [this](const std::string& rev) { activations_.push_back(rev); };
    o.metrics = &registry_;
    activator_ = std::make_unique<Activator>(o);
  }

  std::shared_ptr<Revision> revision(const std::string& name, size_t limit = 3) {
    RevisionSettings s;
    s.isvc = "default/iris";
    s.container_concurrency = 0;
    s.timeout = 10s;
    s.queue_limit = limit;
    return activator_->addRevision(name, s);
  }

  uint64_t hold(const std::shared_ptr<Revision>& r, const std::string& name) {
    return activator_->hold(r, std::make_unique<FakeHeld>(out_, name));
  }

  common::SimulatedTimeSource time_;
  SeededRandom random_;
  events::EventLog log_;
  prometheus::Registry registry_;
  std::vector<std::string> activations_;
  Outcomes out_;
  std::unique_ptr<Activator> activator_;
};

TEST_F(ActivatorTest, HoldsUntilAPodIsReadyThenReleasesEveryProtocolInOrder) {
  auto r = revision("iris-predictor-00001");
  EXPECT_NE(hold(r, "http-1"), 0u);
  EXPECT_NE(hold(r, "grpc-1"), 0u);
  EXPECT_TRUE(out_.log.empty());
  EXPECT_EQ(activations_, (std::vector<std::string>{"iris-predictor-00001", "iris-predictor-00001"}));
  activator_->setEndpoints("iris-predictor-00001", std::make_shared<EndpointList>());  // still none
  EXPECT_TRUE(out_.log.empty());
  activator_->setEndpoints("iris-predictor-00001", pods({"pod-1"}));
  EXPECT_EQ(out_.log, (std::vector<std::string>{"http-1 -> pod-1", "grpc-1 -> pod-1"}));
  // Released requests keep their endpoint list alive and stay counted until answered.
  ASSERT_EQ(out_.releases.size(), 2u);
  EXPECT_EQ(out_.releases[0].endpoint, &(*out_.releases[0].endpoints)[0]);
  EXPECT_TRUE(out_.releases[0].visit);
  EXPECT_EQ(activator_->stats()[0].concurrency, 2);
  EXPECT_EQ(activator_->stats()[0].held, 0u);
}

TEST_F(ActivatorTest, ARequestArrivingAfterThePodIsReadyGoesAtOnce) {
  // The ingress's snapshot said zero pods, but the activator has seen newer endpoints.
  auto r = revision("rev");
  activator_->setEndpoints("rev", pods({"pod-1"}));
  EXPECT_EQ(hold(r, "late"), 0u);
  EXPECT_EQ(out_.log, (std::vector<std::string>{"late -> pod-1"}));
  EXPECT_TRUE(activations_.empty());
  EXPECT_FALSE(out_.releases[0].cold_start);  // no cold start: a pod was there
}

TEST_F(ActivatorTest, OneLimitOverAllProtocols) {
  auto r = revision("rev", 2);
  hold(r, "http");
  hold(r, "grpc");
  EXPECT_EQ(hold(r, "http-2"), 0u);
  ASSERT_EQ(out_.log.size(), 1u);
  EXPECT_EQ(out_.log[0], "http-2 QueueFull: activator queue for revision rev is full (2 requests wait for pods)");
  EXPECT_EQ(activator_->stats()[0].held, 2u);
}

TEST_F(ActivatorTest, TheRevisionTimeoutCountsFromArrival) {
  auto r = revision("rev");
  hold(r, "first");
  time_.advance(6s);
  hold(r, "second");
  time_.advance(3999ms);
  activator_->expire(time_.monotonicTime());
  EXPECT_TRUE(out_.log.empty());
  time_.advance(1ms);  // first: 10 s after arrival
  activator_->expire(time_.monotonicTime());
  EXPECT_EQ(out_.log, (std::vector<std::string>{"first Timeout: activator request timeout"}));
  time_.advance(6s);
  activator_->expire(time_.monotonicTime());
  EXPECT_EQ(out_.log.size(), 2u);
  EXPECT_EQ(activator_->stats()[0].concurrency, 0);  // rejected requests leave the stats
}

TEST_F(ActivatorTest, ACancelledRequestLeavesTheQueueAtOnce) {
  auto r = revision("rev", 1);
  uint64_t ticket = hold(r, "impatient");
  EXPECT_TRUE(activator_->cancel(r, ticket));
  EXPECT_FALSE(activator_->cancel(r, ticket));  // only once
  EXPECT_EQ(out_.log, (std::vector<std::string>{"impatient Cancelled: cancelled while held by the activator"}));
  EXPECT_NE(hold(r, "next"), 0u);  // its place is free
  activator_->setEndpoints("rev", pods({"pod-1"}));
  EXPECT_FALSE(activator_->cancel(r, 0));
  EXPECT_EQ(out_.log.back(), "next -> pod-1");
}

TEST_F(ActivatorTest, RemovedRevisionsAndStoppingRejectWhatIsHeld) {
  auto a = revision("a");
  auto b = revision("b");
  hold(a, "a-1");
  hold(b, "b-1");
  activator_->removeRevision("a");
  EXPECT_EQ(out_.log, (std::vector<std::string>{"a-1 RevisionGone: revision a went away while the request waited"}));
  EXPECT_EQ(activator_->find("a"), nullptr);
  hold(a, "a-2");  // a handle kept by an old routing snapshot
  EXPECT_EQ(out_.log.back(), "a-2 RevisionGone: revision a no longer takes traffic");
  activator_->stop();
  EXPECT_EQ(out_.log.back(), "b-1 Stopping: refstack is stopping");
  hold(b, "b-2");
  EXPECT_EQ(out_.log.back(), "b-2 Stopping: refstack is stopping");
}

TEST_F(ActivatorTest, StatsAreTimeWeightedPerSecond) {
  auto r = revision("rev");
  activator_->setInPath("rev", true);
  time_.advance(1s);  // the first period ends empty
  Visit a = r->visit();
  time_.advance(500ms);
  Visit b = r->visit();
  time_.advance(500ms);  // 1.5 request-seconds over 1 s, two arrivals
  a.end();
  auto report = activator_->lastReport("rev");
  EXPECT_DOUBLE_EQ(report.average_concurrency, 1.5);
  EXPECT_DOUBLE_EQ(report.request_count, 2);
  EXPECT_EQ(activator_->stats()[0].concurrency, 1);
  EXPECT_TRUE(activator_->stats()[0].in_path);
  activator_->setInPath("rev", false);
  EXPECT_FALSE(r->inPath());
}

TEST_F(ActivatorTest, TheFirstHeldRequestRecordsTheColdStart) {
  auto r = revision("iris-predictor-00001");
  hold(r, "first");
  time_.advance(1ms);
  hold(r, "second");
  auto t0 = time_.monotonicTime() - 1ms;  // the first one's arrival
  activator_->markColdStart("iris-predictor-00001", ColdStartStep::kPodSpawned, t0 + 1ms);
  PodStartup startup{"pod-1", t0 + 5ms, t0 + 9ms};
  activator_->markColdStart("iris-predictor-00001", ColdStartStep::kReady, t0 + 10ms, startup);
  time_.advance(10ms);
  activator_->setEndpoints("iris-predictor-00001", pods({"pod-1"}));
  ASSERT_EQ(out_.releases.size(), 2u);
  EXPECT_TRUE(out_.releases[0].cold_start);
  EXPECT_FALSE(out_.releases[1].cold_start);  // the others wait along
  time_.advance(2ms);
  out_.releases[0].cold_start.firstByte();
  auto cold = log_.waitFor(0, [](const events::Event& e) { return e.as<events::ColdStart>() != nullptr; }, 0ms);
  ASSERT_TRUE(cold.has_value());
  const auto& c = *cold->as<events::ColdStart>();
  EXPECT_EQ(c.isvc, "default/iris");
  EXPECT_EQ(c.pod, "pod-1");
  EXPECT_DOUBLE_EQ(c.total_ms, 13);
  EXPECT_DOUBLE_EQ(*c.breakdown.buffered_ms, 0);
  EXPECT_DOUBLE_EQ(*c.breakdown.pod_spawned_ms, 1);
  EXPECT_DOUBLE_EQ(*c.breakdown.process_started_ms, 5);
  EXPECT_DOUBLE_EQ(*c.breakdown.model_loaded_ms, 9);
  EXPECT_DOUBLE_EQ(*c.breakdown.ready_ms, 10);
  EXPECT_DOUBLE_EQ(*c.breakdown.forwarded_ms, 11);
  EXPECT_DOUBLE_EQ(*c.breakdown.first_byte_ms, 13);
  prometheus::TextSerializer text;
  EXPECT_NE(text.Serialize(registry_.Collect()).find("kh_cold_start_seconds_count{revision=\"iris-predictor-00001\"} 1"),
            std::string::npos);
}

TEST_F(ActivatorTest, AnAbandonedColdStartLetsTheNextRequestStartOne) {
  auto r = revision("rev", 5);
  uint64_t first = hold(r, "first");
  activator_->cancel(r, first);  // the tracking request went away unforwarded
  hold(r, "second");
  activator_->setEndpoints("rev", pods({"pod-1"}));
  ASSERT_EQ(out_.releases.size(), 1u);
  EXPECT_TRUE(out_.releases[0].cold_start);  // the second one records it now
  out_.releases.clear();  // dropped before the first byte: abandoned again
  activator_->setEndpoints("rev", std::make_shared<EndpointList>());
  hold(r, "third");
  activator_->setEndpoints("rev", pods({"pod-2"}));
  EXPECT_TRUE(out_.releases[0].cold_start);
}

TEST(Balancing, PolicyFollowsContainerConcurrency) {
  SeededRandom random(7);
  std::atomic<size_t> rr{0};
  EndpointList eps(3);
  for (size_t i = 0; i < eps.size(); ++i) eps[i].pod = "pod-" + std::to_string(i);
  eps[0].in_flight->store(1);
  eps[1].in_flight->store(0);
  eps[2].in_flight->store(5);
  // CC 1-3: the first pod with a free slot.
  EXPECT_EQ(chooseEndpoint(eps, 1, random, rr)->pod, "pod-1");
  EXPECT_EQ(chooseEndpoint(eps, 2, random, rr)->pod, "pod-0");
  eps[1].in_flight->store(1);
  EXPECT_EQ(chooseEndpoint(eps, 1, random, rr)->pod, "pod-0");  // all full: the least loaded
  // CC 0: the less loaded of two random pods, never the busiest of three.
  std::set<std::string> chosen;
  for (int i = 0; i < 50; ++i) chosen.insert(chooseEndpoint(eps, 0, random, rr)->pod);
  EXPECT_EQ(chosen, (std::set<std::string>{"pod-0", "pod-1"}));
  // CC > 3: round robin that skips full pods.
  eps[2].in_flight->store(10);
  for (int i = 0; i < 20; ++i) EXPECT_NE(chooseEndpoint(eps, 10, random, rr)->pod, "pod-2");
  EXPECT_EQ(chooseEndpoint({}, 1, random, rr), nullptr);
}

TEST(SeededRandom, TheSameSeedGivesTheSameDraws) {
  SeededRandom a(1), b(1), c(2);
  std::vector<uint64_t> da, db, dc;
  for (int i = 0; i < 100; ++i) {
    da.push_back(a.next());
    db.push_back(b.next());
    dc.push_back(c.next());
  }
  EXPECT_EQ(da, db);
  EXPECT_NE(da, dc);
  // uniform() is in [0, 1) and spread out.
  double sum = 0;
  for (int i = 0; i < 10000; ++i) {
    double u = a.uniform();
    ASSERT_GE(u, 0);
    ASSERT_LT(u, 1);
    sum += u;
  }
  EXPECT_NEAR(sum / 10000, 0.5, 0.02);
}

}  // namespace
}  // namespace kh::activator
