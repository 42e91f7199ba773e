// PoolSet: the key-prefix pools of a layout, indexed, with each pool's store settings.
//
// A key belongs to the pool with the longest prefix of it (the default pool "" always
// exists, so every key has one). The index of a pool is its position in the layout's pool
// list; a shard replica keeps one Store per stored pool, found by that index.
#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "kvstore/store.hpp"

namespace squall::kvstore {

class PoolSet {
 public:
  // REQUIRES: `pools` validated (config/), in particular it contains the prefix "".
  explicit PoolSet(std::vector<config::PoolConfig> pools);

  // The index of the pool of `key` (longest prefix).
  std::size_t pool_index(std::string_view key) const;
  const config::PoolConfig& pool_of(std::string_view key) const {
    return pools_[pool_index(key)];
  }
  const config::PoolConfig& pool(std::size_t index) const { return pools_.at(index); }
  std::size_t size() const { return pools_.size(); }
  const std::vector<config::PoolConfig>& pools() const { return pools_; }

 private:
  std::vector<config::PoolConfig> pools_;
};

// The retention policy of a pool in the store's terms (seconds -> microseconds, saturating).
RetentionPolicy retention_policy(const config::RetentionConfig& retention);

}  // namespace squall::kvstore
