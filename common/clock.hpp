// Clock: the only way protocol and storage code reads time, so the simulator can replace it.
#pragma once

#include <cstdint>

namespace squall {

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall-clock microseconds since the Unix epoch (may jump; HLC smooths that).
  virtual std::uint64_t wall_us() const = 0;
  // Monotonic microseconds from an arbitrary origin; for timeouts.
  virtual std::uint64_t monotonic_us() const = 0;
};

// The operating system's clocks.
class SystemClock final : public Clock {
 public:
  std::uint64_t wall_us() const override;
  std::uint64_t monotonic_us() const override;
  static SystemClock& instance();
};

// A clock moved only by its owner: the simulator and tests.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(std::uint64_t start_us = 1'700'000'000'000'000ULL) : now_us_(start_us) {}
  std::uint64_t wall_us() const override { return now_us_ + wall_offset_us_; }
  std::uint64_t monotonic_us() const override { return now_us_; }
  void advance_us(std::uint64_t delta_us) { now_us_ += delta_us; }
  void set_us(std::uint64_t now_us) { now_us_ = now_us; }
  // Simulates a wall clock stepping backwards or forwards (NTP), monotonic unaffected.
  void set_wall_offset_us(std::int64_t offset_us) { wall_offset_us_ = offset_us; }

 private:
  std::uint64_t now_us_;
  std::int64_t wall_offset_us_ = 0;
};

}  // namespace squall
