#include "kh/queueproxy/breaker.h"

namespace kh::queueproxy {

Breaker::Breaker(int queue_depth, int max_concurrency)
    : total_slots_(queue_depth + max_concurrency), max_concurrency_(max_concurrency) {}

Breaker::Admission Breaker::enter(absl::AnyInvocable<void()> on_granted, uint64_t* ticket) {
  absl::MutexLock lock(&mu_);
  if (in_flight_ + static_cast<int>(waiters_.size()) >= total_slots_) return Admission::kRejected;
  // FIFO: capacity goes to a newcomer only when nobody is waiting for it.
  if (in_flight_ < max_concurrency_ && waiters_.empty()) {
    ++in_flight_;
    return Admission::kAcquired;
  }
  *ticket = next_ticket_++;
  waiters_.emplace_back(*ticket, std::move(on_granted));
  return Admission::kQueued;
}

bool Breaker::cancel(uint64_t ticket) {
  absl::MutexLock lock(&mu_);
  // The queue is at most 10*CC long and cancellation (a timeout) is rare: a scan is fine.
  for (auto it = waiters_.begin(); it != waiters_.end(); ++it) {
    if (it->first == ticket) {
      waiters_.erase(it);
      return true;
    }
  }
  return false;
}

void Breaker::release() {
  absl::AnyInvocable<void()> next;
  {
    absl::MutexLock lock(&mu_);
    if (waiters_.empty()) {
      --in_flight_;
      return;
    }
    // The slot passes straight to the oldest waiter: in_flight_ stays the same.
    next = std::move(waiters_.front().second);
    waiters_.pop_front();
  }
  next();
}

int Breaker::inFlight() const {
  absl::MutexLock lock(&mu_);
  return in_flight_;
}

int Breaker::queued() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(waiters_.size());
}

}  // namespace kh::queueproxy
