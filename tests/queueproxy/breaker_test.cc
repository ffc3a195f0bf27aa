// The breaker's admission arithmetic (10*CC queued + CC in flight), FIFO hand-over and
// cancellation, without threads or sockets.

#include "kh/queueproxy/breaker.h"

#include <vector>

#include "gtest/gtest.h"

namespace kh::queueproxy {
namespace {

TEST(Breaker, AdmitsCcAtOnceQueuesTenTimesCcAndRejectsTheRest) {
  const int cc = 2;
  Breaker breaker(10 * cc, cc);
  int acquired = 0, queued = 0, rejected = 0;
  uint64_t ticket = 0;
  for (int i = 0; i < 30; ++i) {
    switch (breaker.enter([] {}, &ticket)) {
      case Breaker::Admission::kAcquired: ++acquired; break;
      case Breaker::Admission::kQueued: ++queued; break;
      case Breaker::Admission::kRejected: ++rejected; break;
    }
  }
  EXPECT_EQ(acquired, 2);
  EXPECT_EQ(queued, 20);
  EXPECT_EQ(rejected, 8);
  EXPECT_EQ(breaker.inFlight(), 2);
  EXPECT_EQ(breaker.queued(), 20);
}

TEST(Breaker, ReleaseHandsTheSlotToTheOldestWaiter) {
  Breaker breaker(10, 1);
  uint64_t ticket = 0;
  std::vector<int> order;
  ASSERT_EQ(breaker.enter([] {}, &ticket), Breaker::Admission::kAcquired);
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(breaker.enter([&order, i] { order.push_back(i); }, &ticket),
              Breaker::Admission::kQueued);
  }
  breaker.release();
  EXPECT_EQ(order, std::vector<int>({0}));
  EXPECT_EQ(breaker.inFlight(), 1);  // passed on, not freed
  breaker.release();
  breaker.release();
  EXPECT_EQ(order, std::vector<int>({0, 1, 2}));
  breaker.release();
  EXPECT_EQ(breaker.inFlight(), 0);
  EXPECT_EQ(breaker.enter([] {}, &ticket), Breaker::Admission::kAcquired);
}

TEST(Breaker, ANewcomerDoesNotOvertakeWaiters) {
  Breaker breaker(10, 1);
  uint64_t ticket = 0;
  bool first_waiter_granted = false;
  ASSERT_EQ(breaker.enter([] {}, &ticket), Breaker::Admission::kAcquired);
  ASSERT_EQ(breaker.enter([&] { first_waiter_granted = true; }, &ticket),
            Breaker::Admission::kQueued);
  breaker.release();
  EXPECT_TRUE(first_waiter_granted);
  EXPECT_EQ(breaker.enter([] {}, &ticket), Breaker::Admission::kQueued);
}

TEST(Breaker, CancelledWaiterFreesItsQueueSlotAndIsNeverGranted) {
  Breaker breaker(1, 1);
  uint64_t ticket = 0, waiter = 0;
  bool granted = false;
  ASSERT_EQ(breaker.enter([] {}, &ticket), Breaker::Admission::kAcquired);
  ASSERT_EQ(breaker.enter([&] { granted = true; }, &waiter), Breaker::Admission::kQueued);
  EXPECT_EQ(breaker.enter([] {}, &ticket), Breaker::Admission::kRejected);
  EXPECT_TRUE(breaker.cancel(waiter));
  EXPECT_FALSE(breaker.cancel(waiter));
  EXPECT_EQ(breaker.queued(), 0);
  breaker.release();
  EXPECT_FALSE(granted);
  EXPECT_EQ(breaker.inFlight(), 0);
}

TEST(Breaker, CancelAfterTheGrantReportsTheSlotIsHeld) {
  Breaker breaker(1, 1);
  uint64_t ticket = 0, waiter = 0;
  ASSERT_EQ(breaker.enter([] {}, &ticket), Breaker::Admission::kAcquired);
  ASSERT_EQ(breaker.enter([] {}, &waiter), Breaker::Admission::kQueued);
  breaker.release();
  EXPECT_FALSE(breaker.cancel(waiter));  // the waiter owns a slot and must release it
  EXPECT_EQ(breaker.inFlight(), 1);
}

}  // namespace
}  // namespace kh::queueproxy
