#include "bench/loadgen/histogram.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

#include "common/assert.hpp"

namespace squall::loadgen {

namespace {
// Values below 2 x kSubBuckets are their own bucket (exponent rows 0 and 1 are linear);
// above, row r >= 1 covers [2^(r + bits - 1), 2^(r + bits)) in kSubBuckets steps.
constexpr std::size_t kRows = LatencyHistogram::kMaxExponent - LatencyHistogram::kSubBucketBits + 1;
}  // namespace

LatencyHistogram::LatencyHistogram() : counts_((kRows + 1) * kSubBuckets, 0) {}

std::size_t LatencyHistogram::index_of(std::uint64_t value_ns) {
  if (value_ns < 2 * kSubBuckets) return static_cast<std::size_t>(value_ns);
  const int top_bit = std::bit_width(value_ns) - 1;  // >= kSubBucketBits + 1
  const int row = top_bit - kSubBucketBits;          // >= 1
  const int shift = row;
  const auto sub = static_cast<std::size_t>((value_ns >> shift) - kSubBuckets);  // 0..63
  return static_cast<std::size_t>(row + 1) * kSubBuckets + sub;
}

std::uint64_t LatencyHistogram::upper_bound_ns(std::size_t index) {
  if (index < 2 * kSubBuckets) return index;
  const std::size_t row = index / kSubBuckets - 1;
  const std::size_t sub = index % kSubBuckets;
  const std::uint64_t low = (kSubBuckets + sub) << row;
  return low + (std::uint64_t{1} << row) - 1;
}

void LatencyHistogram::record(std::uint64_t value_ns) {
  if (value_ns > kMaxValueNs) {
    value_ns = kMaxValueNs;
    ++clamped_;
  }
  const std::size_t index = index_of(value_ns);
  SQUALL_ASSERT(index < counts_.size(), "histogram index {} for {} ns", index, value_ns);
  ++counts_[index];
  min_ns_ = count_ == 0 ? value_ns : std::min(min_ns_, value_ns);
  max_ns_ = std::max(max_ns_, value_ns);
  sum_ns_ += static_cast<long double>(value_ns);
  ++count_;
}

void LatencyHistogram::merge(const LatencyHistogram& other) {
  if (other.count_ == 0) return;
  for (std::size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
  min_ns_ = count_ == 0 ? other.min_ns_ : std::min(min_ns_, other.min_ns_);
  max_ns_ = std::max(max_ns_, other.max_ns_);
  sum_ns_ += other.sum_ns_;
  count_ += other.count_;
  clamped_ += other.clamped_;
}

void LatencyHistogram::clear() { *this = LatencyHistogram(); }

double LatencyHistogram::mean_ns() const {
  return count_ == 0 ? 0.0 : static_cast<double>(sum_ns_ / static_cast<long double>(count_));
}

std::uint64_t LatencyHistogram::quantile_ns(double quantile) const {
  if (count_ == 0) return 0;
  quantile = std::clamp(quantile, 0.0, 1.0);
  auto rank = static_cast<std::uint64_t>(std::ceil(quantile * static_cast<double>(count_)));
  rank = std::max<std::uint64_t>(rank, 1);
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::min(upper_bound_ns(i), max_ns_);
  }
  return max_ns_;
}

}  // namespace squall::loadgen
