// LatencyHistogram: an HDR-style histogram of durations in nanoseconds with log-linear
// buckets — every power of two is split into 64 linear sub-buckets, so a recorded value is
// reported within 1/64 (1.6%) of itself, from 1 ns up to 2^40 ns (~18 min; larger values
// are clamped and counted). Fixed size (41 x 64 counters), no allocation after construction;
// not thread-safe: each load thread keeps its own and they are merged at the end.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

namespace squall::loadgen {

class LatencyHistogram {
 public:
  static constexpr int kSubBucketBits = 6;
  static constexpr int kSubBuckets = 1 << kSubBucketBits;
  static constexpr int kMaxExponent = 40;
  static constexpr std::uint64_t kMaxValueNs = (std::uint64_t{1} << kMaxExponent) - 1;

  LatencyHistogram();

  void record(std::uint64_t value_ns);
  void merge(const LatencyHistogram& other);
  void clear();

  std::uint64_t count() const { return count_; }
  std::uint64_t min_ns() const { return count_ == 0 ? 0 : min_ns_; }
  std::uint64_t max_ns() const { return max_ns_; }
  // Values above kMaxValueNs recorded (as kMaxValueNs).
  std::uint64_t clamped() const { return clamped_; }
  double mean_ns() const;
  // The smallest bucket upper bound below which at least `quantile` (0..1) of the values lie
  // (never above max_ns()); 0 when empty.
  std::uint64_t quantile_ns(double quantile) const;

  // Bucket index of a value, and the largest value a bucket holds (exposed for tests).
  static std::size_t index_of(std::uint64_t value_ns);
  static std::uint64_t upper_bound_ns(std::size_t index);

 private:
  std::vector<std::uint64_t> counts_;
  std::uint64_t count_ = 0;
  std::uint64_t min_ns_ = 0;
  std::uint64_t max_ns_ = 0;
  std::uint64_t clamped_ = 0;
  long double sum_ns_ = 0;
};

}  // namespace squall::loadgen
