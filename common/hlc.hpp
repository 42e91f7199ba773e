// Hybrid logical clock (Kulkarni et al.): physical microseconds plus a logical counter.
//
// A timestamp packs (physical_us << 10 | logical) in a u64 so it compares as one integer and
// reads, shifted, as microseconds. Guarantees: now() strictly increases on each call, never
// goes back even when the wall clock does, and after update(received) every later now() is
// greater than `received`. Not thread-safe: owned by one thread (the node's progress loop).
#pragma once

#include <cstdint>

#include "common/clock.hpp"

namespace squall {

using HlcTimestamp = std::uint64_t;

// 10 logical bits leave 54 bits of microseconds: enough until the year 2540.
constexpr int kHlcLogicalBits = 10;
constexpr std::uint64_t hlc_physical_us(HlcTimestamp t) { return t >> kHlcLogicalBits; }
constexpr std::uint32_t hlc_logical(HlcTimestamp t) {
  return static_cast<std::uint32_t>(t & ((1U << kHlcLogicalBits) - 1));
}
constexpr HlcTimestamp hlc_make(std::uint64_t physical_us, std::uint32_t logical) {
  return (physical_us << kHlcLogicalBits) | logical;
}

class HybridLogicalClock {
 public:
  explicit HybridLogicalClock(const Clock& clock) : clock_(clock) {}

  // A timestamp for a local event, greater than every earlier one.
  HlcTimestamp now();
  // Merges a timestamp received from another node; returns a timestamp greater than both.
  HlcTimestamp update(HlcTimestamp received);
  // The last timestamp handed out (0 before the first).
  HlcTimestamp last() const { return last_; }

 private:
  HlcTimestamp advance_to(std::uint64_t physical_us, HlcTimestamp floor);

  const Clock& clock_;
  HlcTimestamp last_ = 0;
};

}  // namespace squall
