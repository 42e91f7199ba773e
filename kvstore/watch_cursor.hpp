// WatchCursor: where a watch stream stands, per shard; and its text form (docs/watch.md,
// "Cursor format").
//
// For each shard, a version: every event of the watcher's topic in that shard with a version
// at or below it has been delivered, and none above it. Resuming from a cursor streams exactly
// the events above those versions. Clients see only the text form and treat it as opaque;
// decode() accepts exactly what encode() produces (canonical form) and refuses anything else
// with invalid_argument, never reading out of bounds.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/ids.hpp"
#include "common/status.hpp"
#include "common/version.hpp"

namespace squall::kvstore {

class WatchCursor {
 public:
  // Most shards one cursor names.
  static constexpr std::size_t kMaxShards = 1024;
  // Longest byte form: format, count (2-byte varint), per shard up to 5 + 10 varint bytes,
  // check. The text is base64url without padding of those bytes.
  static constexpr std::size_t kMaxBytes = 1 + 2 + kMaxShards * 15 + 4;
  static constexpr std::size_t kMaxTextBytes = (kMaxBytes * 4 + 2) / 3;
  // The byte form's format byte. Part of what clients store: never reuse a value.
  static constexpr std::uint8_t kFormat = 1;

  struct Position {
    ShardId shard;
    Version version = 0;
    friend bool operator==(const Position&, const Position&) = default;
  };

  WatchCursor() = default;

  // Sets `shard`'s version, adding the shard if absent. REQUIRES: fewer than kMaxShards
  // shards, or `shard` present.
  void set(ShardId shard, Version version);
  // Raises `shard`'s version to `version` if that is higher (adds the shard if absent).
  void advance(ShardId shard, Version version);
  std::optional<Version> get(ShardId shard) const;
  // Positions sorted by shard, one per shard.
  const std::vector<Position>& positions() const { return positions_; }
  bool empty() const { return positions_.empty(); }

  // The text form. REQUIRES: !empty().
  std::string encode() const;
  // Parses a text form. invalid_argument for anything encode() would not produce: wrong
  // alphabet or length, bad check, unknown format, no shards, shards not increasing,
  // overlong or overflowing varints, trailing bytes.
  static Result<WatchCursor> decode(std::string_view text);

  friend bool operator==(const WatchCursor&, const WatchCursor&) = default;

 private:
  std::vector<Position> positions_;  // sorted by shard, unique
};

}  // namespace squall::kvstore
