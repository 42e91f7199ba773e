#include "common/hlc.hpp"

#include <algorithm>

#include "common/assert.hpp"

namespace squall {

HlcTimestamp HybridLogicalClock::advance_to(std::uint64_t physical_us, HlcTimestamp floor) {
  // The candidate is the wall reading with logical 0; if it does not beat the floor, we tick
  // the logical counter of the floor instead (carrying into the physical part if it is full,
  // which keeps the order total at the cost of running slightly ahead of the wall clock).
  HlcTimestamp candidate = hlc_make(physical_us, 0);
  HlcTimestamp next = candidate > floor ? candidate : floor + 1;
  SQUALL_ASSERT(next > last_, "HLC went backwards: {} after {}", next, last_);
  last_ = next;
  return next;
}

HlcTimestamp HybridLogicalClock::now() { return advance_to(clock_.wall_us(), last_); }

HlcTimestamp HybridLogicalClock::update(HlcTimestamp received) {
  return advance_to(clock_.wall_us(), std::max(last_, received));
}

}  // namespace squall
