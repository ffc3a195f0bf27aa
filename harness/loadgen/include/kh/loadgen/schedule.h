#pragma once
// The schedule engine: every request of an open-loop run gets an intended send time, from which
// its coordinated-omission-correct latency is measured. Constant rate, Poisson arrivals (seeded),
// step/ramp profiles and trace replay all produce the same thing: a monotone sequence of offsets
// from the start of the run. Closed-loop runs have no schedule (each request goes when a
// connection is free).

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace kh::loadgen {

using Nanos = std::chrono::nanoseconds;

/** A source of intended send times, as offsets from the run's start. Not thread-safe. */
class Schedule {
 public:
  virtual ~Schedule() = default;
  /** @return the next intended offset, or nullopt when the schedule is over. */
  virtual std::optional<Nanos> next() = 0;
  /** One line describing the schedule for reports (e.g. "poisson 2000/s seed 7"). */
  virtual std::string describe() const = 0;
};

/**
 * Parses a duration: "500us", "250ms", "10s", "2m", "1h", or a number of seconds ("1.5"). The one
 * parser of the harness's durations (load flags, scenario files).
 * @return InvalidArgument for what is not a duration (negative, NaN and infinite included),
 *         OutOfRange for one past int64 nanoseconds (about 292 years).
 */
absl::StatusOr<Nanos> parseDuration(std::string_view text);

/** `rate` requests per second, evenly spaced, until `duration`. */
std::unique_ptr<Schedule> makeConstantSchedule(double rate, Nanos duration);

/** Exponential gaps at `rate` per second (std::mt19937_64 seeded with `seed`) until `duration`. */
std::unique_ptr<Schedule> makePoissonSchedule(double rate, Nanos duration, uint64_t seed);

/**
 * A day's rhythm: a non-homogeneous Poisson process whose rate is
 * mean_rate * (1 + amplitude * sin(2 pi (t - phase) / period)) per second, until `duration`.
 * Exact (Lewis-Shedler thinning: Poisson candidates at the peak rate mean_rate * (1 + amplitude),
 * each kept with probability rate(t) / peak), std::mt19937_64 seeded with `seed`. With phase 0
 * the rate rises from the mean at the start, peaks at period/4 and bottoms at 3 period/4.
 * @return InvalidArgument for a rate that is negative or not finite, an amplitude outside [0, 1]
 * or a period <= 0.
 */
absl::StatusOr<std::unique_ptr<Schedule>> makeDiurnalSchedule(double mean_rate, double amplitude, Nanos duration,
                                                              uint64_t seed,
                                                              Nanos period = std::chrono::hours(24),
                                                              Nanos phase = Nanos(0));

/**
 * Bursts: Poisson arrivals at `rate` per second during ON periods of length `on`, none during the
 * OFF periods of length `off` between them, repeating from an ON period at 0, until `duration`.
 * The periods have fixed lengths (not exponential ones); within the ON time the process is one
 * Poisson process (seeded std::mt19937_64), so a gap can span an OFF period.
 * @return InvalidArgument for a rate that is negative or not finite, `on` <= 0 or a negative `off`.
 */
absl::StatusOr<std::unique_ptr<Schedule>> makeOnOffSchedule(double rate, Nanos on, Nanos off, Nanos duration,
                                                            uint64_t seed);

/** One stage of a profile: `rate` per second for `duration`; with `ramp`, the rate moves linearly
 *  from the previous stage's rate (0 for the first) to `rate` over the stage. */
struct Stage {
  double rate = 0;
  Nanos duration{0};
  bool ramp = false;
};

/**
 * Parses "1000@30s,2000@30s" (steps) and "ramp:0-2000@60s" stages, comma-separated; durations
 * take ms, s or m. @return InvalidArgument naming the bad stage.
 */
absl::StatusOr<std::vector<Stage>> parseProfile(const std::string& text);

/** Evenly spaced requests at each stage's (possibly ramping) rate; Poisson gaps if `seed` set. */
std::unique_ptr<Schedule> makeProfileSchedule(std::vector<Stage> stages,
                                              std::optional<uint64_t> seed = std::nullopt);

/**
 * Replays offsets read from a file: one per line, in seconds (fractions allowed) from the start,
 * non-decreasing; blank lines and '#' comments ignored. @return InvalidArgument with the line.
 */
absl::StatusOr<std::unique_ptr<Schedule>> makeTraceSchedule(const std::string& path);
/** The same from offsets already in memory. */
std::unique_ptr<Schedule> makeTraceSchedule(std::vector<Nanos> offsets, std::string name);

}  // namespace kh::loadgen
