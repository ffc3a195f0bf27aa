#pragma once
// Injected time. Anything with windows, timeouts or grace periods takes a TimeSource so that its
// logic can be tested on a SimulatedTimeSource and the live stack can run short windows.

#include <atomic>
#include <chrono>
#include <string>

namespace kh::common {

using MonotonicTime = std::chrono::steady_clock::time_point;
using SystemTime = std::chrono::system_clock::time_point;

/**
 * A source of monotonic and wall-clock time. Implementations must be thread-safe.
 */
class TimeSource {
 public:
  virtual ~TimeSource() = default;
  /** @return the current monotonic time; never goes backwards. */
  virtual MonotonicTime monotonicTime() const = 0;
  /** @return the current wall-clock time, for timestamps shown to people. */
  virtual SystemTime systemTime() const = 0;
};

/** The real clocks. Stateless, so one instance may be shared by every component. */
class RealTimeSource final : public TimeSource {
 public:
  MonotonicTime monotonicTime() const override { return std::chrono::steady_clock::now(); }
  SystemTime systemTime() const override { return std::chrono::system_clock::now(); }
};

/**
 * A clock that only moves when told to; both readings advance together. Thread-safe.
 */
class SimulatedTimeSource final : public TimeSource {
 public:
  SimulatedTimeSource();
  MonotonicTime monotonicTime() const override;
  SystemTime systemTime() const override;
  /** Moves both clocks forward by `d` (which must not be negative). */
  void advance(std::chrono::nanoseconds d);

 private:
  MonotonicTime mono_base_;
  SystemTime system_base_;
  std::atomic<int64_t> offset_ns_{0};
};

/** `t` as Kubernetes writes timestamps: RFC 3339 in UTC, whole seconds ("2026-12-02T15:31:38Z"). */
std::string formatRfc3339(SystemTime t);

}  // namespace kh::common
