#pragma once
// The event log of a running stack: events numbered from 1 in the order they happen, stamped
// with wall-clock time from an injected TimeSource, the newest `capacity` kept. Components emit
// through the narrow EventSink; readers take what came after a sequence number, wait for one
// that matches, or subscribe to each as it is logged.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "kh/common/time_source.h"
#include "kh/events/events.h"

namespace kh::events {

/** Where a component reports what it did. Implementations are thread-safe. */
class EventSink {
 public:
  virtual ~EventSink() = default;
  /** Logs one event; returns at once (never blocks on I/O). */
  virtual void emit(Payload payload) = 0;
};

/** An EventSink that keeps the events. Thread-safe. */
class EventLog final : public EventSink {
 public:
  /** A subscriber; see subscribe(). */
  using Subscriber = std::function<void(const Event&)>;

  explicit EventLog(const common::TimeSource& time, size_t capacity = 10'000);

  // EventSink
  void emit(Payload payload) override;

  /** Events with seq > `since`, oldest first (only those still kept). */
  std::vector<Event> after(int64_t since) const;

  /**
   * Waits until an event with seq > `since` satisfies `match`, or `timeout` passes. `match` runs
   * with the log locked: it must not emit or call back into the log.
   * @return the first matching event, or nullopt on timeout.
   */
  std::optional<Event> waitFor(int64_t since, const std::function<bool(const Event&)>& match,
                               std::chrono::milliseconds timeout) const;

  /**
   * Calls `subscriber` for every event logged from now on, in order, with the log locked (so it
   * must only queue work: e.g. a non-blocking StreamWriter::write). It is first called for every
   * kept event with seq > `replay_since` (none when negative). @return an id for unsubscribe().
   */
  int64_t subscribe(Subscriber subscriber, int64_t replay_since = -1);
  void unsubscribe(int64_t id);
  /** Drops every subscriber (before they go away). */
  void unsubscribeAll();

  /** The sequence number of the newest event (0 when none). */
  int64_t lastSeq() const;

 private:
  const common::TimeSource& time_;
  const size_t capacity_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::deque<Event> events_ ABSL_GUARDED_BY(mu_);
  int64_t next_seq_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<int64_t, Subscriber> subscribers_ ABSL_GUARDED_BY(mu_);
  int64_t next_subscriber_ ABSL_GUARDED_BY(mu_) = 1;
};

}  // namespace kh::events
