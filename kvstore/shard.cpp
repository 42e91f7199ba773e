#include "kvstore/shard.hpp"

namespace squall::kvstore {

// Pinned values: if one of these fails to compile, the hash changed and data would move.
static_assert(fnv1a_64("") == 0xcbf29ce484222325ULL);
static_assert(fnv1a_64("a") == 0xaf63dc4c8601ec8cULL);
static_assert(fnv1a_64("foobar") == 0x85944171f73967e8ULL);

ShardId shard_for_key(const config::LayoutConfig& layout, std::string_view key) {
  SQUALL_ASSERT(layout.shards >= 1, "a layout has at least one shard");
  const config::PoolConfig& pool = config::pool_for_key(layout, key);
  return shard_of_hash(key_hash(config::affinity_key(pool, key)), layout.shards);
}

}  // namespace squall::kvstore
