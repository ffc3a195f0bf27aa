#include "kh/common/random.h"

namespace kh::common {

uint64_t SeededRandom::next() {
  // splitmix64 (Steele, Lea, Flood 2014) of seed + i: a full-period, well-mixed sequence.
  uint64_t z = seed_ + 0x9e3779b97f4a7c15ULL * (counter_.fetch_add(1, std::memory_order_relaxed) + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace kh::common
