#include "kvstore/pool.hpp"

#include <limits>

namespace squall::kvstore {

PoolSet::PoolSet(std::vector<config::PoolConfig> pools) : pools_(std::move(pools)) {
  bool has_default = false;
  for (const config::PoolConfig& pool : pools_) has_default = has_default || pool.prefix.empty();
  SQUALL_ASSERT(has_default, "a pool set needs the default pool \"\"");
}

std::size_t PoolSet::pool_index(std::string_view key) const {
  std::size_t best = pools_.size();
  std::size_t best_length = 0;
  for (std::size_t i = 0; i < pools_.size(); ++i) {
    const std::string& prefix = pools_[i].prefix;
    if (!key.starts_with(prefix)) continue;
    if (best == pools_.size() || prefix.size() > best_length) {
      best = i;
      best_length = prefix.size();
    }
  }
  SQUALL_ASSERT(best < pools_.size(), "no pool for a key (the default pool is missing)");
  return best;
}

RetentionPolicy retention_policy(const config::RetentionConfig& retention) {
  constexpr std::uint64_t kMicrosPerSecond = 1'000'000;
  constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();
  RetentionPolicy policy;
  policy.keep_versions = static_cast<std::uint32_t>(
      std::min<std::uint64_t>(retention.max_versions, std::numeric_limits<std::uint32_t>::max()));
  policy.max_age_us = retention.max_age_s > kMax / kMicrosPerSecond
                          ? kMax
                          : retention.max_age_s * kMicrosPerSecond;
  return policy;
}

}  // namespace squall::kvstore
