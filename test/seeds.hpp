// How many seeds a seeded simulation test runs.
//
// Tests name their full count; SQUALL_SEED_PERCENT (1..100000, default 100) scales it, so the
// sanitizer build (ten times slower) can run a tenth of the seeds, and a soak run can run
// many more: SQUALL_SEED_PERCENT=1000 ./test_sst. Every failure prints its seed either way.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <string>

namespace squall::testing {

inline std::uint64_t seed_count(std::uint64_t full) {
  const char* text = std::getenv("SQUALL_SEED_PERCENT");
  std::uint64_t percent = 100;
  if (text != nullptr) {
    try {
      percent = std::stoull(text);
    } catch (...) {
      percent = 100;
    }
    if (percent < 1 || percent > 100'000) percent = 100;
  }
  std::uint64_t scaled = full * percent / 100;
  return scaled == 0 ? 1 : scaled;
}

}  // namespace squall::testing
