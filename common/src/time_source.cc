#include "kh/common/time_source.h"

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace kh::common {

SimulatedTimeSource::SimulatedTimeSource()
    // A fixed, arbitrary origin keeps tests reproducible.
    : mono_base_(std::chrono::seconds(1'000'000)),
      system_base_(std::chrono::seconds(1'800'000'000)) {}

MonotonicTime SimulatedTimeSource::monotonicTime() const {
  return mono_base_ + std::chrono::nanoseconds(offset_ns_.load(std::memory_order_acquire));
}

SystemTime SimulatedTimeSource::systemTime() const {
  return system_base_ + std::chrono::duration_cast<SystemTime::duration>(
                            std::chrono::nanoseconds(offset_ns_.load(std::memory_order_acquire)));
}

void SimulatedTimeSource::advance(std::chrono::nanoseconds d) {
  if (d.count() > 0) offset_ns_.fetch_add(d.count(), std::memory_order_acq_rel);
}

std::string formatRfc3339(SystemTime t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromChrono(t), absl::UTCTimeZone());
}

}  // namespace kh::common
