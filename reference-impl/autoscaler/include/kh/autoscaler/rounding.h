#pragma once

// std::round, std::ceil and std::floor, exactly (the same double, bit for bit, signed zeros
// and NaN included), without the libm call or the long SSE2 sequence GCC emits for them on the
// baseline x86-64 target: the window averages and the decider use them every tick of every
// revision a simulation runs. Below 2^52 the conversion to an integer and back is exact, and so
// is the fraction x - trunc(x); every larger double is whole already.

#include <cmath>
#include <cstdint>

namespace kh::autoscaler {

namespace rounding_internal {
inline constexpr double kWhole = 4503599627370496.0;  // 2^52
inline double truncated(double x) { return static_cast<double>(static_cast<int64_t>(x)); }
// A zero result keeps the sign of x, as the libm functions' do.
inline double signedZero(double r, double x) { return r == 0 ? std::copysign(0.0, x) : r; }
}  // namespace rounding_internal

/** std::round: half away from zero. */
inline double roundHalfAway(double x) {
  using namespace rounding_internal;
  if (!(std::fabs(x) < kWhole)) return x;  // whole already, or NaN/inf
  double t = truncated(x);
  const double fraction = x - t;
  if (fraction >= 0.5) {
    t += 1;
  } else if (fraction <= -0.5) {
    t -= 1;
  }
  return signedZero(t, x);
}

/** std::ceil. */
inline double ceilExact(double x) {
  using namespace rounding_internal;
  if (!(std::fabs(x) < kWhole)) return x;
  const double t = truncated(x);
  return signedZero(t < x ? t + 1 : t, x);
}

/** std::floor. */
inline double floorExact(double x) {
  using namespace rounding_internal;
  if (!(std::fabs(x) < kWhole)) return x;
  const double t = truncated(x);
  return signedZero(t > x ? t - 1 : t, x);
}

}  // namespace kh::autoscaler
