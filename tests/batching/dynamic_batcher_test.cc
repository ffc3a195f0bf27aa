// The batcher's threads: requests submitted at once share batches, each gets its own rows,
// overload is refused at once, cancelled requests never run, and shutdown runs what is queued.

#include "kh/batching/dynamic_batcher.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>

namespace kh::batching {
namespace {

using protocols::DataType;
using protocols::Tensor;

// A "model" that doubles every value, records the batch sizes it saw, and can be held at a
// gate so that requests pile up behind a running batch.
struct Doubler {
  std::mutex mu;
  std::vector<int> batch_rows;
  std::promise<void> gate_open;
  std::shared_future<void> gate = gate_open.get_future().share();
  std::atomic<int> entered{0};

  Outputs run(std::span<const Tensor> inputs) {
    entered.fetch_add(1);
    gate.wait();
    const Tensor& in = inputs[0];
    std::vector<float> out(static_cast<size_t>(in.heldElements()));
    for (size_t i = 0; i < out.size(); ++i) out[i] = 2 * in.at<float>(i);
    {
      std::lock_guard lock(mu);
      batch_rows.push_back(static_cast<int>(in.shape[0]));
    }
    std::vector<Tensor> result;
    result.push_back(Tensor::fromValues<float>("y", DataType::kFp32, in.shape, out));
    return result;
  }
};

std::vector<Tensor> request(float value, int rows = 1) {
  std::vector<float> v(static_cast<size_t>(rows) * 2, value);
  std::vector<Tensor> inputs;
  inputs.push_back(Tensor::fromValues<float>("x", DataType::kFp32, {rows, 2}, v));
  return inputs;
}

class RecordingObserver : public BatchObserver {
 public:
  void onQueued(std::chrono::nanoseconds) override { queued.fetch_add(1); }
  void onBatch(const BatchRecord& b) override {
    std::lock_guard lock(mu);
    batches.push_back(b);
  }
  void onRefused() override { refused.fetch_add(1); }
  std::mutex mu;
  std::vector<BatchRecord> batches;
  std::atomic<int> queued{0}, refused{0};
};

BatchingConfig config(int max, int64_t delay_us, int max_queue = 1024) {
  BatchingConfig c;
  c.max_batch_size = max;
  c.max_queue_delay = std::chrono::microseconds(delay_us);
  c.max_queue_size = max_queue;
  return c;
}

TEST(DynamicBatcherTest, RequestsQueuedBehindABatchShareTheNextAndGetTheirOwnRows) {
  common::RealTimeSource time;
  Doubler model;
  RecordingObserver observer;
  DynamicBatcher batcher("m", config(16, 0), [&](auto in) { return model.run(in); }, time,
                         &observer);
  // The first request runs alone and is held; ten more queue behind it.
  std::vector<std::promise<Outputs>> results(11);
  batcher.submit(request(0), [&](Outputs o) { results[0].set_value(std::move(o)); });
  while (model.entered.load() == 0) std::this_thread::yield();
  for (int i = 1; i <= 10; ++i) {
    batcher.submit(request(static_cast<float>(i), i % 3 + 1),
                   [&, i](Outputs o) { results[static_cast<size_t>(i)].set_value(std::move(o)); });
  }
  model.gate_open.set_value();
  for (int i = 0; i <= 10; ++i) {
    Outputs o = results[static_cast<size_t>(i)].get_future().get();
    ASSERT_TRUE(o.ok()) << o.status();
    const Tensor& y = (*o)[0];
    int rows = i == 0 ? 1 : i % 3 + 1;
    ASSERT_EQ(y.shape, (protocols::Shape{rows, 2})) << "request " << i;
    for (int64_t k = 0; k < y.heldElements(); ++k) {
      EXPECT_EQ(y.at<float>(static_cast<size_t>(k)), 2.0f * static_cast<float>(i)) << "request " << i;
    }
  }
  std::lock_guard lock(model.mu);
  int total = 0;
  for (int r : model.batch_rows) total += r;
  EXPECT_EQ(total, 1 + 20) << "every row computed once";
  EXPECT_GT(*std::max_element(model.batch_rows.begin(), model.batch_rows.end()), 3)
      << "the queued requests were joined";
  EXPECT_EQ(observer.queued.load(), 11);
}

// A simulated clock that counts its readings by threads other than the test's (the batcher's).
class WatchedClock final : public common::TimeSource {
 public:
  common::MonotonicTime monotonicTime() const override {
    if (std::this_thread::get_id() != test_thread_) reads_by_batcher.fetch_add(1);
    return simulated.monotonicTime();
  }
  common::SystemTime systemTime() const override { return simulated.systemTime(); }
  common::SimulatedTimeSource simulated;
  mutable std::atomic<int> reads_by_batcher{0};

 private:
  std::thread::id test_thread_ = std::this_thread::get_id();
};

// The delay is the injected clock's: on a simulated clock the batch goes once the clock has moved
// past it. (The batcher handed the simulated time point to a condition variable's wait_until,
// which waits on the real clock: a million seconds ahead, it slept for days.)
TEST(DynamicBatcherTest, TheQueueDelayRunsOnTheInjectedClock) {
  WatchedClock time;
  Doubler model;
  model.gate_open.set_value();
  RecordingObserver observer;
  std::vector<std::promise<Outputs>> results(3);  // before the batcher, which may answer as it stops
  DynamicBatcher batcher("m", config(8, /*delay_us=*/10'000'000), [&](auto in) { return model.run(in); }, time,
                         &observer);
  for (int i = 0; i < 3; ++i) {
    batcher.submit(request(static_cast<float>(i)), [&, i](Outputs o) { results[static_cast<size_t>(i)].set_value(std::move(o)); });
  }
  // Under the size limit, the three wait for the 10 s delay. Once the batcher has looked at the
  // clock again since they were queued, it has seen that the delay has not passed.
  int seen = time.reads_by_batcher.load();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (time.reads_by_batcher.load() == seen && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  EXPECT_EQ(model.entered.load(), 0);
  // Nor does it spin meanwhile (where the real clock is past the simulated one, wait_until
  // returned at once): it reads the clock every 10 ms, so about 10 times in 100 ms, not 1000.
  int before = time.reads_by_batcher.load();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // a window to count in, not a wait for an event
  EXPECT_LT(time.reads_by_batcher.load() - before, 1000) << "the batcher spins on the clock";
  time.simulated.advance(std::chrono::seconds(10));
  auto first = results[0].get_future();
  ASSERT_EQ(first.wait_for(std::chrono::seconds(5)), std::future_status::ready)
      << "the batch did not go once the simulated clock passed its delay";
  EXPECT_TRUE(first.get().ok());
  for (int i = 1; i < 3; ++i) EXPECT_TRUE(results[static_cast<size_t>(i)].get_future().get().ok());
  std::lock_guard lock(observer.mu);
  ASSERT_EQ(observer.batches.size(), 1u);
  EXPECT_EQ(observer.batches[0].requests, 3);
}

TEST(DynamicBatcherTest, AFullQueueIsRefusedAtOnceAsUnavailable) {
  common::RealTimeSource time;
  Doubler model;
  RecordingObserver observer;
  auto batcher = std::make_unique<DynamicBatcher>(
      "m", config(1, 0, 2), [&](auto in) { return model.run(in); }, time, &observer);
  std::vector<std::promise<Outputs>> results(3);
  batcher->submit(request(1), [&](Outputs o) { results[0].set_value(std::move(o)); });
  while (model.entered.load() == 0) std::this_thread::yield();
  batcher->submit(request(2), [&](Outputs o) { results[1].set_value(std::move(o)); });
  batcher->submit(request(3), [&](Outputs o) { results[2].set_value(std::move(o)); });
  std::promise<Outputs> refused;
  batcher->submit(request(4), [&](Outputs o) { refused.set_value(std::move(o)); });
  auto refusal = refused.get_future();
  ASSERT_EQ(refusal.wait_for(std::chrono::seconds(0)), std::future_status::ready)
      << "answered inline, not queued";
  Outputs o = refusal.get();
  EXPECT_EQ(o.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(o.status().message().find("queue is full"), std::string_view::npos) << o.status();
  EXPECT_EQ(observer.refused.load(), 1);
  model.gate_open.set_value();
  for (auto& r : results) EXPECT_TRUE(r.get_future().get().ok());
}

TEST(DynamicBatcherTest, TooManyRowsIsRefusedAsTritonDoes) {
  common::RealTimeSource time;
  Doubler model;
  model.gate_open.set_value();
  DynamicBatcher batcher("m", config(4, 0), [&](auto in) { return model.run(in); }, time, nullptr);
  std::promise<Outputs> result;
  batcher.submit(request(1, 5), [&](Outputs o) { result.set_value(std::move(o)); });
  Outputs o = result.get_future().get();
  EXPECT_EQ(o.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(o.status().message(), "inference request batch-size must be <= 4 for 'm'");
}

TEST(DynamicBatcherTest, CancelledRequestsLeaveTheQueueUnrun) {
  common::RealTimeSource time;
  Doubler model;
  DynamicBatcher batcher("m", config(16, 0), [&](auto in) { return model.run(in); }, time, nullptr);
  std::promise<Outputs> first, kept, cancelled;
  batcher.submit(request(1), [&](Outputs o) { first.set_value(std::move(o)); });
  while (model.entered.load() == 0) std::this_thread::yield();
  std::atomic<bool> gone{false};
  batcher.submit(request(2), [&](Outputs o) { cancelled.set_value(std::move(o)); },
                 [&] { return gone.load(); });
  batcher.submit(request(3), [&](Outputs o) { kept.set_value(std::move(o)); });
  gone.store(true);
  model.gate_open.set_value();
  EXPECT_TRUE(first.get_future().get().ok());
  Outputs c = cancelled.get_future().get();
  EXPECT_EQ(c.status().code(), absl::StatusCode::kCancelled);
  Outputs k = kept.get_future().get();
  ASSERT_TRUE(k.ok()) << k.status();
  EXPECT_EQ((*k)[0].at<float>(0), 6.0f);
  std::lock_guard lock(model.mu);
  EXPECT_EQ(model.batch_rows, (std::vector<int>{1, 1})) << "request 2 was never computed";
}

TEST(DynamicBatcherTest, ShutdownRunsWhatIsQueuedAndRefusesNewWork) {
  common::RealTimeSource time;
  Doubler model;
  model.gate_open.set_value();
  std::atomic<int> answered{0};
  {
    // A long delay: nothing would go for a minute, but destruction sends it all now.
    DynamicBatcher batcher("m", config(64, 60'000'000), [&](auto in) { return model.run(in); },
                           time, nullptr);
    for (int i = 0; i < 5; ++i) {
      batcher.submit(request(1), [&](Outputs o) {
        EXPECT_TRUE(o.ok()) << o.status();
        answered.fetch_add(1);
      });
    }
  }
  EXPECT_EQ(answered.load(), 5);
}

TEST(DynamicBatcherTest, AModelErrorReachesEveryRequestOfTheBatch) {
  common::RealTimeSource time;
  std::atomic<int> entered{0};
  std::promise<void> go;
  auto gate = go.get_future().share();
  DynamicBatcher batcher(
      "m", config(8, 0),
      [&](std::span<const Tensor>) -> Outputs {
        entered.fetch_add(1);
        gate.wait();
        return absl::InternalError("boom");
      },
      time, nullptr);
  std::vector<std::promise<Outputs>> results(3);
  batcher.submit(request(1), [&](Outputs o) { results[0].set_value(std::move(o)); });
  while (entered.load() == 0) std::this_thread::yield();
  batcher.submit(request(2), [&](Outputs o) { results[1].set_value(std::move(o)); });
  batcher.submit(request(3), [&](Outputs o) { results[2].set_value(std::move(o)); });
  go.set_value();
  for (auto& r : results) {
    Outputs o = r.get_future().get();
    EXPECT_EQ(o.status().code(), absl::StatusCode::kInternal);
    EXPECT_EQ(o.status().message(), "boom");
  }
}

}  // namespace
}  // namespace kh::batching
