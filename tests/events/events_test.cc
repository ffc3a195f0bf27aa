// The typed events' JSON codec (the GET /events contract) and the event log.

#include "kh/events/events.h"

#include <thread>

#include "gtest/gtest.h"
#include "kh/events/event_log.h"

namespace kh::events {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

Event roundTrip(const Event& e) {
  auto back = fromJson(toJson(e));
  EXPECT_TRUE(back.ok()) << back.status();
  return back.ok() ? *back : Event{};
}

TEST(EventCodec, EveryTypeRoundTrips) {
  ScaleDecided scale{"default/iris", "iris-predictor-00001", 2, 1, 1, true, true, -111, 3.5,
                     std::nullopt, "panic window"};
  ColdStart cold{"default/iris", "iris-predictor-00001", "iris-predictor-00001-pod-1", 16.4, {}};
  cold.breakdown.buffered_ms = 0.01;
  cold.breakdown.first_byte_ms = 16.4;
  std::vector<Payload> payloads = {
      ResourceApplied{"InferenceService", "default", "iris"},
      ResourceDeleted{"ClusterServingRuntime", "", "kserve-xgbserver"},
      ResourceRestored{"default/iris"},
      OrphansEnded{3},
      RevisionCreated{"default/iris", "iris-predictor-00002", "predictor"},
      PodPhaseChanged{"p-1", "iris-predictor-00001", "Ready", 1, "ready"},
      StatusChanged{"default/iris", true, {{"iris-predictor-00001", 80}, {"iris-predictor-00002", 20}}},
      RoutesChanged{{{"iris-predictor-00001", 2}}},
      scale,
      cold,
      StackError{"disk full"}};
  int64_t seq = 1;
  for (const auto& p : payloads) {
    Event e{seq++, 1.7e9, p};
    Event back = roundTrip(e);
    EXPECT_EQ(back.seq, e.seq);
    EXPECT_DOUBLE_EQ(back.time, e.time);
    EXPECT_EQ(back.payload.index(), e.payload.index()) << typeName(p);
    EXPECT_EQ(toJson(back), toJson(e)) << typeName(p);
  }
  Event scale_back = roundTrip(Event{1, 0, scale});
  const auto* s = scale_back.as<ScaleDecided>();
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->excess_burst_capacity, -111);
  EXPECT_TRUE(s->panic);
  Event cold_back = roundTrip(Event{1, 0, cold});
  const auto* c = cold_back.as<ColdStart>();
  ASSERT_NE(c, nullptr);
  EXPECT_FALSE(c->breakdown.ready_ms.has_value());
  EXPECT_DOUBLE_EQ(*c->breakdown.buffered_ms, 0.01);
}

TEST(EventCodec, WireNamesAreTheDocumentedOnes) {
  json j = toJson(Event{7, 2.5, StatusChanged{"ns/a", true, {{"a-predictor-00001", 100}}}});
  EXPECT_EQ(j["type"], "status");
  EXPECT_EQ(j["seq"], 7);
  EXPECT_EQ(j["isvc"], "ns/a");
  EXPECT_EQ(j["traffic"][0]["percent"], 100);
  json applied = toJson(Event{1, 0, ResourceApplied{"InferenceService", "ns", "a"}});
  EXPECT_EQ(applied["isvc"], "ns/a");  // the key the other InferenceService events use
  json scale = toJson(Event{1, 0, ScaleDecided{}});
  EXPECT_TRUE(scale.contains("activatorInPath"));
  EXPECT_FALSE(scale.contains("active"));
  json cold = toJson(Event{1, 0, ColdStart{}});
  EXPECT_TRUE(cold["breakdown"]["ready_ms"].is_null());
}

TEST(EventCodec, OlderResourceEventsWithOnlyTheKeyDecode) {
  auto e = fromJson(json{{"seq", 1}, {"time", 0}, {"type", "applied"}, {"kind", "InferenceService"},
                         {"isvc", "default/iris"}});
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->as<ResourceApplied>()->namespace_name, "default");
  EXPECT_EQ(e->as<ResourceApplied>()->name, "iris");
  EXPECT_EQ(isvcOf(e->payload), "default/iris");
}

TEST(EventCodec, BadInputNamesTheProblem) {
  auto unknown = fromJson(json{{"type", "nope"}});
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(std::string(unknown.status().message()).find("unknown event type 'nope'"), std::string::npos);
  auto bad = fromJson(json{{"type", "scale"}, {"desired", "two"}});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(std::string(bad.status().message()).find("'desired'"), std::string::npos) << bad.status();
  EXPECT_FALSE(fromJson(json::array()).ok());
  EXPECT_FALSE(fromJson(json{{"seq", 1}}).ok());
}

TEST(EventLog, NumbersStampsAndKeepsTheNewest) {
  common::SimulatedTimeSource time;
  EventLog log(time, 3);
  for (int i = 0; i < 5; ++i) {
    log.emit(OrphansEnded{i});
    time.advance(1s);
  }
  auto kept = log.after(0);
  ASSERT_EQ(kept.size(), 3u);
  EXPECT_EQ(kept.front().seq, 3);
  EXPECT_EQ(kept.back().seq, 5);
  EXPECT_DOUBLE_EQ(kept.back().time - kept.front().time, 2.0);
  EXPECT_EQ(log.after(4).size(), 1u);
  EXPECT_EQ(log.lastSeq(), 5);
}

TEST(EventLog, WaitForSeesAnEventLoggedLater) {
  common::RealTimeSource time;
  EventLog log(time);
  log.emit(StatusChanged{"default/a", false, {}});
  std::thread emitter([&] { log.emit(StatusChanged{"default/a", true, {}}); });
  auto ready = log.waitFor(
      0, [](const Event& e) { return e.as<StatusChanged>() && e.as<StatusChanged>()->ready; }, 10s);
  emitter.join();
  ASSERT_TRUE(ready.has_value());
  EXPECT_EQ(ready->seq, 2);
  EXPECT_FALSE(log.waitFor(2, [](const Event&) { return true; }, 10ms).has_value());
}

TEST(EventLog, SubscribersGetTheReplayThenEachNewEventInOrder) {
  common::SimulatedTimeSource time;
  EventLog log(time);
  log.emit(OrphansEnded{1});
  log.emit(OrphansEnded{2});
  std::vector<int64_t> seen;
  int64_t id = log.subscribe([&](const Event& e) { seen.push_back(e.seq); }, 1);
  log.emit(OrphansEnded{3});
  log.unsubscribe(id);
  log.emit(OrphansEnded{4});
  EXPECT_EQ(seen, (std::vector<int64_t>{2, 3}));
}

}  // namespace
}  // namespace kh::events
