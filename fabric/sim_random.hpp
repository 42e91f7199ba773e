// SimRandom: the one seeded pseudo-random generator of a simulation run.
//
// xoshiro256** seeded through splitmix64. Every operation is defined on fixed-width unsigned
// integers only (no <random> distributions, whose output differs between standard libraries),
// so a seed gives the same sequence on every platform and compiler. Ranges are derived by
// Lemire's multiply-and-reject method, which is unbiased.
//
// Not thread-safe; a simulation is single-threaded.
#pragma once

#include <cstdint>

#include "common/assert.hpp"

namespace squall::fabric {

__extension__ typedef unsigned __int128 SimUint128;

// One step of splitmix64: a bijective 64-bit mixer, also used for hashing traces.
constexpr std::uint64_t splitmix64_next(std::uint64_t& state) {
  state += 0x9e37'79b9'7f4a'7c15ULL;
  std::uint64_t z = state;
  z = (z ^ (z >> 30)) * 0xbf58'476d'1ce4'e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d0'49bb'1331'11ebULL;
  return z ^ (z >> 31);
}

class SimRandom {
 public:
  explicit SimRandom(std::uint64_t seed) { reseed(seed); }

  void reseed(std::uint64_t seed) {
    std::uint64_t state = seed;
    for (auto& word : state_) word = splitmix64_next(state);
  }

  // A uniformly distributed 64-bit value.
  std::uint64_t next_u64() {
    const std::uint64_t result = rotate_left(state_[1] * 5, 7) * 9;
    const std::uint64_t shifted = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= shifted;
    state_[3] = rotate_left(state_[3], 45);
    return result;
  }

  // Uniform in [0, bound). REQUIRES: bound > 0.
  std::uint64_t below(std::uint64_t bound) {
    SQUALL_ASSERT(bound > 0, "below(0)");
    SimUint128 product = static_cast<SimUint128>(next_u64()) * bound;
    auto low = static_cast<std::uint64_t>(product);
    if (low < bound) {
      const std::uint64_t threshold = (0 - bound) % bound;
      while (low < threshold) {
        product = static_cast<SimUint128>(next_u64()) * bound;
        low = static_cast<std::uint64_t>(product);
      }
    }
    return static_cast<std::uint64_t>(product >> 64);
  }

  // Uniform in [low, high] (both inclusive). REQUIRES: low <= high.
  std::uint64_t between(std::uint64_t low, std::uint64_t high) {
    SQUALL_ASSERT(low <= high, "between({}, {})", low, high);
    const std::uint64_t span = high - low;
    if (span == UINT64_MAX) return next_u64();
    return low + below(span + 1);
  }

  // True with probability per_million / 1,000,000. Draws nothing when per_million is 0, so
  // disabled faults do not shift the sequence seen by everything else.
  bool chance_per_million(std::uint32_t per_million) {
    if (per_million == 0) return false;
    if (per_million >= 1'000'000) return true;
    return below(1'000'000) < per_million;
  }

 private:
  static constexpr std::uint64_t rotate_left(std::uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
  }

  std::uint64_t state_[4] = {};
};

}  // namespace squall::fabric
