#pragma once
// Injected randomness: every draw the stack takes (traffic splits, load balancing, a graph's
// Splitter) comes from a RandomSource, so runs are reproducible from a seed and tests are exact.

#include <atomic>
#include <cstdint>

namespace kh::common {

/** Random draws. Implementations are thread-safe and lock-free; tests inject fixed sequences. */
class RandomSource {
 public:
  virtual ~RandomSource() = default;
  /** A uniformly distributed 64-bit value. */
  virtual uint64_t next() = 0;
  /** A uniform double in [0, 1). */
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  /** A uniform integer in [0, n) (n > 0), by Lemire's multiply-shift (bias below 2^-64 * n). */
  uint64_t below(uint64_t n) { return static_cast<uint64_t>((static_cast<unsigned __int128>(next()) * n) >> 64); }
};

/**
 * Draws from a seed: draw i is splitmix64(seed + i), i counted atomically across threads, so a run
 * is reproducible from its seed (in the order draws are taken) with no lock and no allocation.
 */
class SeededRandom final : public RandomSource {
 public:
  explicit SeededRandom(uint64_t seed) : seed_(seed) {}
  uint64_t next() override;

 private:
  const uint64_t seed_;
  std::atomic<uint64_t> counter_{0};
};

}  // namespace kh::common
