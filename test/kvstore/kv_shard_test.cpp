// Pools (longest prefix) and sharding: the hash is pinned, spreads keys evenly, and keeps
// affinity groups together.
#include <map>
#include <vector>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "kvstore/pool.hpp"
#include "kvstore/shard.hpp"

using namespace squall;
using namespace squall::kvstore;

namespace {

config::LayoutConfig layout_with(std::uint32_t shards) {
  config::LayoutConfig layout;
  layout.shards = shards;
  config::PoolConfig users;
  users.prefix = "users/";
  users.affinity = config::AffinityConfig{"/"};
  config::PoolConfig cache;
  cache.prefix = "cache/";
  cache.storage = config::Storage::volatile_;
  config::PoolConfig events;
  events.prefix = "cache/events/";
  events.storage = config::Storage::stateless;
  layout.pools = {config::PoolConfig{}, users, cache, events};
  return layout;
}

}  // namespace

TEST_CASE("The sharding hash is pinned to fixed values") {
  // These values decide where data lives: they must never change.
  CHECK(fnv1a_64("") == 0xcbf29ce484222325ULL);
  CHECK(fnv1a_64("a") == 0xaf63dc4c8601ec8cULL);
  CHECK(key_hash("") == mix_64(0xcbf29ce484222325ULL));
  CHECK(key_hash("users/42") == 0x3c4e7c73f0f168c5ULL);
  CHECK(key_hash("a") == 0x82a2a958a9bece5bULL);
  CHECK(key_hash("") == 0xefd01f60ba992926ULL);
  config::LayoutConfig layout = layout_with(7);
  CHECK(shard_for_key(layout, "users/42/name").value == key_hash("users/42") % 7);
}

TEST_CASE("Keys spread evenly over shards") {
  for (std::uint32_t shards : {2U, 3U, 7U, 16U}) {
    config::LayoutConfig layout = layout_with(shards);
    std::vector<std::size_t> counts(shards, 0);
    constexpr std::size_t kKeys = 70000;
    for (std::size_t i = 0; i < kKeys; ++i) {
      ++counts[shard_for_key(layout, fmt::format("key-{}", i)).value];
    }
    double expected = static_cast<double>(kKeys) / shards;
    for (std::size_t count : counts) {
      INFO("shards " << shards << " count " << count);
      CHECK(static_cast<double>(count) > expected * 0.95);
      CHECK(static_cast<double>(count) < expected * 1.05);
    }
  }
}

TEST_CASE("Affinity keys land on the same shard and spread as groups") {
  config::LayoutConfig layout = layout_with(5);
  std::map<std::uint32_t, std::size_t> groups_per_shard;
  for (int user = 0; user < 1000; ++user) {
    ShardId first = shard_for_key(layout, fmt::format("users/{}/name", user));
    CHECK(shard_for_key(layout, fmt::format("users/{}/mail", user)) == first);
    CHECK(shard_for_key(layout, fmt::format("users/{}/a/b/c", user)) == first);
    CHECK(shard_for_key(layout, fmt::format("users/{}", user)) == first);
    ++groups_per_shard[first.value];
  }
  CHECK(groups_per_shard.size() == 5);
  for (auto [shard, count] : groups_per_shard) CHECK(count > 120);
}

TEST_CASE("A key belongs to the pool with the longest prefix") {
  config::LayoutConfig layout = layout_with(3);
  PoolSet pools(layout.pools);
  CHECK(pools.pool_index("x") == 0);
  CHECK(pools.pool_index("users") == 0);
  CHECK(pools.pool_index("users/1") == 1);
  CHECK(pools.pool_index("cache/a") == 2);
  CHECK(pools.pool_index("cache/events/1") == 3);
  CHECK(pools.pool_of("cache/events/1").storage == config::Storage::stateless);
  for (const char* key : {"x", "users/1", "cache/a", "cache/events/1", "cache/"}) {
    CHECK(&pools.pool_of(key) - pools.pools().data() ==
          &config::pool_for_key(layout, key) - layout.pools.data());
  }
}

TEST_CASE("Pool retention maps to the store's policy") {
  config::RetentionConfig retention{.max_versions = 5, .max_age_s = 60};
  RetentionPolicy policy = retention_policy(retention);
  CHECK(policy.keep_versions == 5);
  CHECK(policy.max_age_us == 60'000'000);
  CHECK(retention_policy({.max_versions = 0, .max_age_s = ~0ULL}).max_age_us == ~0ULL);
}
