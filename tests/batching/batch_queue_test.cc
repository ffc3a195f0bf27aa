// BatchQueue's rules on a virtual clock: size limit, delay limit, preferred sizes, overload and
// cancellation. Payloads are ints so a batch reads as the list of request numbers it holds.

#include "kh/batching/batch_queue.h"

#include <gtest/gtest.h>

#include <memory>

namespace kh::batching {
namespace {

using std::chrono::microseconds;
using Queue = BatchQueue<int>;

BatchingConfig config(int max, int64_t delay_us, std::vector<int> preferred = {},
                      int max_queue = 1024) {
  BatchingConfig c;
  c.max_batch_size = max;
  c.max_queue_delay = microseconds(delay_us);
  c.preferred_batch_sizes = std::move(preferred);
  c.max_queue_size = max_queue;
  return c;
}

std::vector<int> ids(const std::optional<std::vector<Queue::Item>>& batch) {
  std::vector<int> out;
  if (batch) {
    for (const auto& item : *batch) out.push_back(item.payload);
  }
  return out;
}

class BatchQueueTest : public ::testing::Test {
 protected:
  common::SimulatedTimeSource clock_;
  common::MonotonicTime now() const { return clock_.monotonicTime(); }
};

TEST_F(BatchQueueTest, WaitsForTheDelayThenSendsWhatItHas) {
  Queue q(config(8, 1000));
  ASSERT_TRUE(q.push(1, 1, now()));
  clock_.advance(microseconds(400));
  ASSERT_TRUE(q.push(2, 2, now()));
  EXPECT_FALSE(q.take(now()).has_value()) << "3 of 8 rows and 400 of 1000 us waited";
  ASSERT_TRUE(q.wakeAt().has_value());
  EXPECT_EQ(*q.wakeAt() - now(), microseconds(600)) << "woken when the oldest has waited 1 ms";
  clock_.advance(microseconds(599));
  EXPECT_FALSE(q.take(now()).has_value());
  clock_.advance(microseconds(1));
  EXPECT_EQ(ids(q.take(now())), (std::vector<int>{1, 2}));
  EXPECT_TRUE(q.empty());
  EXPECT_FALSE(q.wakeAt().has_value());
}

TEST_F(BatchQueueTest, SendsAtOnceWhenTheSizeLimitIsReached) {
  Queue q(config(4, 1'000'000));
  for (int i = 1; i <= 3; ++i) ASSERT_TRUE(q.push(i, 1, now()));
  EXPECT_FALSE(q.take(now()).has_value());
  ASSERT_TRUE(q.push(4, 1, now()));
  EXPECT_EQ(ids(q.take(now())), (std::vector<int>{1, 2, 3, 4})) << "4 rows = max: no waiting";
}

TEST_F(BatchQueueTest, SendsAtOnceWhenTheNextRequestWouldNotFit) {
  Queue q(config(8, 1'000'000));
  ASSERT_TRUE(q.push(1, 5, now()));
  ASSERT_TRUE(q.push(2, 2, now()));
  EXPECT_FALSE(q.take(now()).has_value()) << "7 of 8 rows";
  ASSERT_TRUE(q.push(3, 4, now()));
  EXPECT_EQ(ids(q.take(now())), (std::vector<int>{1, 2})) << "request 3 would make 11 rows";
  EXPECT_EQ(q.size(), 1u);
  EXPECT_FALSE(q.take(now()).has_value()) << "request 3 waits for its own delay";
}

TEST_F(BatchQueueTest, NoDelaySendsWhateverIsQueued) {
  Queue q(config(8, 0));
  ASSERT_TRUE(q.push(1, 1, now()));
  EXPECT_EQ(ids(q.take(now())), (std::vector<int>{1}));
  for (int i = 2; i <= 11; ++i) ASSERT_TRUE(q.push(i, 1, now()));
  EXPECT_EQ(ids(q.take(now())), (std::vector<int>{2, 3, 4, 5, 6, 7, 8, 9})) << "at most 8 rows";
  EXPECT_EQ(ids(q.take(now())), (std::vector<int>{10, 11}));
}

TEST_F(BatchQueueTest, PreferredSizeGoesAtOnce) {
  Queue q(config(16, 1'000'000, {4, 8}));
  for (int i = 1; i <= 3; ++i) ASSERT_TRUE(q.push(i, 1, now()));
  EXPECT_FALSE(q.take(now()).has_value());
  ASSERT_TRUE(q.push(4, 1, now()));
  EXPECT_EQ(ids(q.take(now())), (std::vector<int>{1, 2, 3, 4})) << "4 is preferred";
}

TEST_F(BatchQueueTest, AfterTheDelayTheLongestPreferredPrefixGoes) {
  Queue q(config(16, 100, {2, 4}));
  for (int i = 1; i <= 5; ++i) ASSERT_TRUE(q.push(i, 1, now()));
  clock_.advance(microseconds(100));
  EXPECT_EQ(ids(q.take(now())), (std::vector<int>{1, 2, 3, 4})) << "5 rows: the preferred 4 go";
  // Request 5 waited as long: it goes alone (no prefix of a preferred size), not held back.
  EXPECT_EQ(ids(q.take(now())), (std::vector<int>{5}));
}

TEST_F(BatchQueueTest, AFullQueueRefusesAndKeepsWhatItHas) {
  Queue q(config(8, 1000, {}, 3));
  for (int i = 1; i <= 3; ++i) ASSERT_TRUE(q.push(i, 1, now()));
  EXPECT_FALSE(q.push(4, 1, now())) << "3 requests wait at most";
  BatchQueue<std::unique_ptr<int>> owning(config(8, 1000, {}, 1));
  ASSERT_TRUE(owning.push(std::make_unique<int>(1), 1, now()));
  auto refused = std::make_unique<int>(2);
  EXPECT_FALSE(owning.push(std::move(refused), 1, now()));
  ASSERT_NE(refused, nullptr) << "a refused request stays with the caller, to be answered";
  EXPECT_EQ(q.size(), 3u);
  clock_.advance(microseconds(1000));
  EXPECT_EQ(ids(q.take(now())), (std::vector<int>{1, 2, 3}));
  EXPECT_TRUE(q.push(5, 1, now())) << "room again once a batch went";
}

TEST_F(BatchQueueTest, CancelledRequestsLeaveTheBatch) {
  Queue q(config(4, 1000));
  for (int i = 1; i <= 4; ++i) ASSERT_TRUE(q.push(i, 1, now()));
  // Taking would send all four; 2 and 3 are cancelled first.
  auto gone = q.removeIf([](int id) { return id == 2 || id == 3; });
  ASSERT_EQ(gone.size(), 2u);
  EXPECT_EQ(gone[0].payload, 2);
  EXPECT_EQ(gone[1].payload, 3);
  EXPECT_FALSE(q.take(now()).has_value()) << "2 of 4 rows left: waits again";
  clock_.advance(microseconds(1000));
  EXPECT_EQ(ids(q.take(now())), (std::vector<int>{1, 4}));
}

TEST_F(BatchQueueTest, RemovingNothingKeepsEveryPayload) {
  // Move-only payloads, as the batcher queues: a removal pass that finds nothing must leave the
  // queued requests intact.
  BatchQueue<std::unique_ptr<int>> q(config(4, 0));
  ASSERT_TRUE(q.push(std::make_unique<int>(1), 1, now()));
  ASSERT_TRUE(q.push(std::make_unique<int>(2), 1, now()));
  EXPECT_TRUE(q.removeIf([](const std::unique_ptr<int>&) { return false; }).empty());
  auto batch = q.take(now());
  ASSERT_TRUE(batch.has_value());
  ASSERT_EQ(batch->size(), 2u);
  ASSERT_NE((*batch)[0].payload, nullptr);
  ASSERT_NE((*batch)[1].payload, nullptr);
  EXPECT_EQ(*(*batch)[1].payload, 2);
}

TEST_F(BatchQueueTest, TheDelayCountsFromTheOldestRequest) {
  Queue q(config(8, 1000));
  ASSERT_TRUE(q.push(1, 1, now()));
  clock_.advance(microseconds(900));
  ASSERT_TRUE(q.push(2, 1, now()));
  clock_.advance(microseconds(100));
  EXPECT_EQ(ids(q.take(now())), (std::vector<int>{1, 2})) << "request 2 waited only 100 us";
}

TEST(BatchingConfigTest, ParsesTritonNames) {
  auto c = parseBatchingJson(
      R"({"max_batch_size": 64, "max_queue_delay_microseconds": 500,
          "preferred_batch_size": [16, 32], "max_queue_size": 100, "instance_count": 2})",
      "config.json");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->max_batch_size, 64);
  EXPECT_EQ(c->max_queue_delay, microseconds(500));
  EXPECT_EQ(c->preferred_batch_sizes, (std::vector<int>{16, 32}));
  EXPECT_EQ(c->max_queue_size, 100);
  EXPECT_EQ(c->instances, 2);
  EXPECT_TRUE(c->enabled());
}

TEST(BatchingConfigTest, RefusesWhatWouldSilentlyMisbehave) {
  struct Case {
    const char* json;
    const char* message_part;
  };
  for (const Case& c : std::initializer_list<Case>{
           {R"({"max_batch_size": 8, "max_queue_delay": 5})", "no setting 'max_queue_delay'"},
           {R"({"max_batch_size": 8, "preferred_batch_size": [16]})", "preferred_batch_size"},
           {R"({"max_batch_size": -1})", "max_batch_size"},
           {R"({"max_batch_size": 8, "max_queue_size": 0})", "max_queue_size"},
           {R"({"max_batch_size": "8"})", "must be an integer"},
           {R"([1])", "must be an object"},
       }) {
    auto parsed = parseBatchingJson(c.json, "m/config.json");
    ASSERT_FALSE(parsed.ok()) << c.json;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(parsed.status().message().find(c.message_part), std::string::npos)
        << parsed.status();
    EXPECT_NE(parsed.status().message().find("m/config.json"), std::string::npos)
        << parsed.status();
  }
}

TEST(BatchingConfigTest, AModelWithoutTheSectionIsNotBatched) {
  auto c = readBatchingConfig(std::string(KH_TEST_SOURCE_DIR) + "/reference-impl/models/xgboost-iris");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(c->enabled());
}

}  // namespace
}  // namespace kh::batching
