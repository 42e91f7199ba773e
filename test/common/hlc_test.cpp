#include <random>

#include <catch2/catch.hpp>

#include "common/hlc.hpp"

using namespace squall;

TEST_CASE("HLC strictly increases when the wall clock stands still") {
  ManualClock clock;
  HybridLogicalClock hlc(clock);
  HlcTimestamp previous = hlc.now();
  for (int i = 0; i < 1000; ++i) {
    HlcTimestamp next = hlc.now();
    CHECK(next > previous);
    CHECK(hlc_physical_us(next) == clock.wall_us());
    previous = next;
  }
}

TEST_CASE("HLC never goes back when the wall clock steps backwards") {
  ManualClock clock;
  HybridLogicalClock hlc(clock);
  HlcTimestamp before = hlc.now();
  clock.set_wall_offset_us(-5'000'000);
  HlcTimestamp after = hlc.now();
  CHECK(after > before);
  CHECK(hlc_physical_us(after) == hlc_physical_us(before));
  clock.set_wall_offset_us(0);
  clock.advance_us(10);
  CHECK(hlc_physical_us(hlc.now()) == clock.wall_us());
}

TEST_CASE("HLC update exceeds a received timestamp from a node ahead of us") {
  ManualClock clock;
  HybridLogicalClock hlc(clock);
  HlcTimestamp remote = hlc_make(clock.wall_us() + 2'000'000, 5);
  HlcTimestamp merged = hlc.update(remote);
  CHECK(merged > remote);
  CHECK(hlc.now() > merged);
}

TEST_CASE("HLC property: random interleavings of now, update and clock moves stay monotonic") {
  for (std::uint32_t seed = 1; seed <= 50; ++seed) {
    std::mt19937_64 random(seed);
    ManualClock clock;
    HybridLogicalClock hlc(clock);
    HlcTimestamp last = 0;
    for (int step = 0; step < 2000; ++step) {
      switch (random() % 4) {
        case 0: clock.advance_us(random() % 100); break;
        case 1: clock.set_wall_offset_us(static_cast<std::int64_t>(random() % 2000) - 1000); break;
        case 2: {
          HlcTimestamp remote = hlc_make(clock.wall_us() + random() % 3000 - 1500, 0);
          HlcTimestamp merged = hlc.update(remote);
          REQUIRE(merged > remote);
          REQUIRE(merged > last);
          last = merged;
          break;
        }
        default: {
          HlcTimestamp t = hlc.now();
          REQUIRE(t > last);
          last = t;
        }
      }
    }
  }
}
