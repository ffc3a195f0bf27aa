#pragma once
// The KPA decision (knative.md §2.2): pkg/autoscaler/scaling/autoscaler.go `Scale`, plus the
// per-decider bookkeeping of multiscaler.go (initial status, publish-on-change, poke).

#include <cstdint>
#include <optional>

#include "kh/autoscaler/buckets.h"
#include "kh/autoscaler/config.h"
#include "kh/autoscaler/metrics.h"

namespace kh::autoscaler {

/** The decider's inputs (`scaling.DeciderSpec`). */
struct DeciderSpec {
  double max_scale_up_rate = 1000;
  double max_scale_down_rate = 2;
  ScalingMetric scaling_metric = ScalingMetric::kConcurrency;
  /** Per-pod target of the scaling metric. */
  double target_value = 70;
  /** Per-pod capacity (for the excess burst capacity). */
  double total_value = 100;
  /** -1: unlimited (activator always in path); 0: never in path because of bursts. */
  double target_burst_capacity = 211;
  double activator_capacity = 100;
  /** A factor: panic when desiredPanic/ready ≥ this (2.0 by default). */
  double panic_threshold = 2.0;
  Duration stable_window = std::chrono::seconds(60);
  /** > 0 enables the max-over-window delay of scale-downs. */
  Duration scale_down_delay{0};
  int32_t initial_scale = 1;
  /** False while the revision receives no traffic from a route (PA Unreachable). */
  bool reachable = true;
  /** activation-scale; only values > 1 have an effect. */
  int32_t activation_scale = 0;
};

/** The decider spec of a revision (`MakeDecider`). */
DeciderSpec makeDeciderSpec(const RevisionScaling& scaling, bool reachable);

/** The outcome of one Scale() (`scaling.ScaleResult`). */
struct ScaleResult {
  int32_t desired_pod_count = 0;
  int32_t excess_burst_capacity = 0;
  /** False when there was nothing to decide on (no data): keep the last decision. */
  bool valid = false;

  bool operator==(const ScaleResult&) const = default;
};

/** What the decider last published (`scaling.DeciderStatus`). */
struct DeciderStatus {
  /** -1 until the first valid tick. */
  int32_t desired_scale = -1;
  int32_t excess_burst_capacity = 0;
};

/**
 * The EBC a new decider starts with: TBC when TBC ∈ {-1, 0}, otherwise
 * int32(InitialScale·TotalValue − TBC) (−111 with the defaults, so the activator starts in
 * the path).
 */
int32_t initialExcessBurstCapacity(const DeciderSpec& spec);

/**
 * Decider: the KPA autoscaler of one revision.
 *
 * The owner calls tick() every kTickInterval (2s), and at once when shouldPoke() says so for
 * a stat it just recorded. Not thread-safe; the MetricClient must outlive the decider.
 */
class Decider {
 public:
  /**
   * @param metrics where observed values come from (not owned).
   * @param readyCount the revision's ready pods now (0 when unknown). A decider created with
   *        more than one ready pod starts in panic mode with maxPanicPods = readyCount, so an
   *        autoscaler restart, which loses the metric history, cannot scale the revision down.
   * @param now the creation time (the start of that panic).
   */
  Decider(DeciderSpec spec, const MetricClient& metrics, int readyCount, TimePoint now);

  /**
   * Scale(): reads the stable/panic values of the spec's metric from the MetricClient and
   * decides. @param readyCount ready endpoints (NotFound ⇒ 0; a count that cannot be read
   * should not be ticked at all). @return valid=false when the client has no data.
   */
  ScaleResult scale(TimePoint now, int readyCount);

  /**
   * The decision itself on given observations (what scale() does after reading the metrics):
   *   readyF = max(1, ready); maxUp = ceil(MSUR·readyF); maxDown = reachable ?
   *   floor(readyF/MSDR) : 0; dspc = ceil(stable/target), dppc = ceil(panic/target);
   *   desired{Stable,Panic} = clamp(d, maxDown, maxUp); activation-scale lifts non-zero
   *   desires; panic starts/extends when dppc/readyF ≥ threshold and ends a stable window after
   *   the last time it was over; while panicking the desire never drops (maxPanicPods); with a
   *   scale-down delay the max over the delay is taken;
   *   EBC = -1 | 0 | floor(ready·total − TBC − panic).
   */
  ScaleResult scaleObserved(TimePoint now, int readyCount, double stable, double panic);

  /**
   * One tick as the multiscaler runs it: scale(), and when valid store the result in
   * status(). @return true when the result must be published (the PA re-reconciled): the
   * desired scale changed or the EBC changed sign.
   */
  bool tick(TimePoint now, int readyCount);

  /**
   * Poke: when a stat arrives while the last desired scale is 0 and the stat shows
   * concurrency (AverageConcurrentRequests != 0), the owner must tick() at once instead of
   * waiting for the next 2s tick. This is how a request held by the activator scales a
   * revision up from zero within milliseconds.
   */
  bool shouldPoke(const Stat& stat) const {
    return status_.desired_scale == 0 && stat.average_concurrent_requests != 0;
  }

  /**
   * Replaces the spec (a changed annotation or ConfigMap). Panic state and status are kept.
   * Knative keeps the delay window created at construction; we rebuild it when
   * scale_down_delay changes (dropping its history), so a changed delay takes effect.
   */
  void update(DeciderSpec spec);

  const DeciderSpec& spec() const { return spec_; }
  const DeciderStatus& status() const { return status_; }
  bool inPanic() const { return panic_time_.has_value(); }
  std::optional<TimePoint> panicTime() const { return panic_time_; }
  int32_t maxPanicPods() const { return max_panic_pods_; }
  /** The window averages scale() last read; nullopt when it found no data (or never ran). */
  const std::optional<StableAndPanic>& lastObserved() const { return last_observed_; }

  /** Sets the panic state directly (Go tests poke `panicTime`/`maxPanicPods`). */
  void setPanicStateForTest(std::optional<TimePoint> panicTime, int32_t maxPanicPods) {
    panic_time_ = panicTime;
    max_panic_pods_ = maxPanicPods;
  }

 private:
  DeciderSpec spec_;
  const MetricClient& metrics_;
  DeciderStatus status_;
  std::optional<TimePoint> panic_time_;
  int32_t max_panic_pods_ = 0;
  std::optional<MaxTimeWindow> delay_window_;
  std::optional<StableAndPanic> last_observed_;
};

}  // namespace kh::autoscaler
