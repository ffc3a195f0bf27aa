#include "kh/events/event_log.h"

namespace kh::events {

EventLog::EventLog(const common::TimeSource& time, size_t capacity)
    : time_(time), capacity_(std::max<size_t>(1, capacity)) {}

void EventLog::emit(Payload payload) {
  double now = std::chrono::duration<double>(time_.systemTime().time_since_epoch()).count();
  std::lock_guard lock(mu_);
  events_.push_back(Event{next_seq_++, now, std::move(payload)});
  if (events_.size() > capacity_) events_.pop_front();
  for (auto& [id, s] : subscribers_) s(events_.back());
  cv_.notify_all();
}

std::vector<Event> EventLog::after(int64_t since) const {
  std::lock_guard lock(mu_);
  std::vector<Event> out;
  for (const auto& e : events_) {
    if (e.seq > since) out.push_back(e);
  }
  return out;
}

std::optional<Event> EventLog::waitFor(int64_t since, const std::function<bool(const Event&)>& match,
                                       std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mu_);
  std::optional<Event> found;
  // Each wake-up looks only at events it has not seen yet.
  int64_t seen = since;
  cv_.wait_for(lock, timeout, [&] {
    for (const auto& e : events_) {
      if (e.seq <= seen) continue;
      seen = e.seq;
      if (match(e)) {
        found = e;
        return true;
      }
    }
    return false;
  });
  return found;
}

int64_t EventLog::subscribe(Subscriber subscriber, int64_t replay_since) {
  std::lock_guard lock(mu_);
  if (replay_since >= 0) {
    for (const auto& e : events_) {
      if (e.seq > replay_since) subscriber(e);
    }
  }
  int64_t id = next_subscriber_++;
  subscribers_.emplace(id, std::move(subscriber));
  return id;
}

void EventLog::unsubscribe(int64_t id) {
  std::lock_guard lock(mu_);
  subscribers_.erase(id);
}

void EventLog::unsubscribeAll() {
  std::lock_guard lock(mu_);
  subscribers_.clear();
}

int64_t EventLog::lastSeq() const {
  std::lock_guard lock(mu_);
  return next_seq_ - 1;
}

}  // namespace kh::events
