// The vocabulary of the watch hub (watch_hub.hpp): events, topics and delivered items.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/bytes.hpp"
#include "common/hlc.hpp"
#include "common/ids.hpp"
#include "common/version.hpp"

namespace squall::kvstore {

// The kind of change an event reports. Reaches clients only by name (watch_op_name).
enum class WatchOp : std::uint8_t {
  put,  // the key now holds `value`
  del,  // the key was deleted (a tombstone version)
};

// "put" or "delete", the names the watch API uses.
std::string_view watch_op_name(WatchOp op);

// One change of a key at its place in the shard's total order. Immutable once published:
// the hub's journal and every watcher that holds it share one copy.
struct WatchEvent {
  ShardId shard;
  Version version = 0;
  HlcTimestamp timestamp = 0;
  WatchOp op = WatchOp::put;
  std::string key;
  Bytes value;  // empty for WatchOp::del

  // What the event counts for against the hub's byte limits: key and value plus a fixed
  // allowance for the event's own memory.
  std::uint64_t size_bytes() const;
};
using WatchEventPtr = std::shared_ptr<const WatchEvent>;

// Fixed memory allowance per event (the shared block, string and buffer headers).
constexpr std::uint64_t kWatchEventOverheadBytes = 128;

// What a watcher follows: one key, or every key that starts with a prefix.
struct Topic {
  enum class Kind : std::uint8_t { key, prefix };
  Kind kind = Kind::key;
  std::string text;

  static Topic for_key(std::string key) { return {Kind::key, std::move(key)}; }
  static Topic for_prefix(std::string prefix) { return {Kind::prefix, std::move(prefix)}; }

  bool is_prefix() const { return kind == Kind::prefix; }
  bool matches(std::string_view key) const {
    return is_prefix() ? key.starts_with(text) : key == text;
  }
  friend bool operator==(const Topic&, const Topic&) = default;
};

// An event as one watcher receives it.
struct WatchItem {
  WatchEventPtr event;
  // Whether the watcher gets the value: false for deletes and for watchers that asked for
  // no values (the event may still carry one for other watchers; do not send it).
  bool has_value = false;
};

}  // namespace squall::kvstore
