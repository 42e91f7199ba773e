// Sharding: which shard a key belongs to.
//
// shard = key_hash(affinity part of the key) mod shards, where the affinity part is the whole
// key, or with a pool affinity delimiter the key up to the first delimiter after the pool
// prefix (config::affinity_key). key_hash is 64-bit FNV-1a followed by the MurmurHash3 64-bit
// finalizer (docs/kv.md, "Sharding"). Its output decides where data lives: it must never
// change, on any platform, in any version.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "common/ids.hpp"
#include "config/config.hpp"

namespace squall::kvstore {

// FNV-1a, 64 bits: offset basis 0xcbf29ce484222325, prime 0x100000001b3, byte by byte.
constexpr std::uint64_t fnv1a_64(std::string_view bytes) {
  std::uint64_t hash = 0xcbf29ce484222325ULL;
  for (char c : bytes) {
    hash ^= static_cast<std::uint8_t>(c);
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

// MurmurHash3's fmix64: spreads every input bit over the low bits that `mod` looks at.
constexpr std::uint64_t mix_64(std::uint64_t hash) {
  hash ^= hash >> 33;
  hash *= 0xff51afd7ed558ccdULL;
  hash ^= hash >> 33;
  hash *= 0xc4ceb9fe1a85ec53ULL;
  hash ^= hash >> 33;
  return hash;
}

// The sharding hash. Stable forever (see above).
constexpr std::uint64_t key_hash(std::string_view bytes) { return mix_64(fnv1a_64(bytes)); }

// The shard of a hashed key part among `shards` (>= 1).
constexpr ShardId shard_of_hash(std::uint64_t hash, std::uint32_t shards) {
  return ShardId{static_cast<std::uint32_t>(hash % shards)};
}

// The shard of `key` under `layout` (pool by longest prefix, then its affinity rule).
// REQUIRES: layout validated.
ShardId shard_for_key(const config::LayoutConfig& layout, std::string_view key);

}  // namespace squall::kvstore
