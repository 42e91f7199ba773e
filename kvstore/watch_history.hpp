// WatchHistory: where the watch hub replays events older than its in-memory journal; and
// StoreWatchHistory, the implementation over one shard's Store.
//
// The hub keeps the newest durable events of each shard in a bounded journal (watch_hub.hpp).
// A watcher resuming from an older position asks the shard's WatchHistory for the events in
// between. A history must answer completely or not at all: every event of the topic in the
// range, in version order, or out_of_range ("gone") — never a stream with holes.
//
// Implementations are called from the watchers' consumer threads, concurrently: they must be
// thread-safe.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <vector>

#include "common/status.hpp"
#include "kvstore/store.hpp"
#include "kvstore/watch_event.hpp"

namespace squall::kvstore {

struct WatchHistoryPage {
  std::vector<WatchEventPtr> events;  // oldest first
  // The page covers (after, through]: every event of the topic in that range is in `events`.
  // through > after, and through == upto once the range is exhausted.
  Version through = 0;
};

class WatchHistory {
 public:
  virtual ~WatchHistory() = default;

  // Whether read() can replay `topic` completely from position `after` (every event of the
  // topic above `after` is still retained). Errors are the history's own read failures.
  virtual Result<bool> covers(const Topic& topic, Version after) const = 0;
  // The lowest position `topic` can be replayed from completely; none: the history cannot
  // replay this topic at all.
  virtual std::optional<Version> oldest(const Topic& topic) const = 0;
  // The events of `topic` with versions in (after, upto], oldest first, at most `max_events`
  // (>= 1); without values when `values` is false. REQUIRES: after < upto, and every event up
  // to `upto` is durable. out_of_range: part of the range is no longer retained.
  virtual Result<WatchHistoryPage> read(const Topic& topic, Version after, Version upto,
                                        std::size_t max_events, bool values) const = 0;
};

struct StoreWatchHistoryOptions {
  // Versions asked of Store::history() per call, and the most events of one prefix page
  // (Store::changes); <= the store's max_page_items.
  std::size_t page_versions = 1024;
  // Most versions one call walks (newest to oldest) to find a range's start; a key with more
  // versions than this above a position cannot be replayed from there (out_of_range).
  std::size_t max_walk_versions = 1 << 20;
  // Whether every event of a topic is in the store (false for keys of stateless pools, whose
  // events are never stored, and for prefixes with such keys under them). Unset: every topic.
  std::function<bool(const Topic&)> stored;

  Status validate() const;
};

// Replays topics from a Store.
//
// Key topics walk the key's versions (Store::history) from `upto` down to `after`: the cost of
// one read is the number of versions in that range (bounded by max_walk_versions).
//
// Prefix topics read the writes under the prefix in version order (Store::changes): every key
// under the prefix is visited per page, tombstones included, so deletes of keys are replayed
// too. A prefix can be replayed from `after` exactly when no version above `after` of a key
// under it was discarded (Store::changes_horizon). `stored` must answer for the whole prefix:
// true only when every key under it is stored here (no stateless pool below the prefix).
class StoreWatchHistory final : public WatchHistory {
 public:
  // `store` must outlive this object and hold shard `shard`.
  StoreWatchHistory(const Store& store, ShardId shard, StoreWatchHistoryOptions options = {});

  Result<bool> covers(const Topic& topic, Version after) const override;
  std::optional<Version> oldest(const Topic& topic) const override;
  Result<WatchHistoryPage> read(const Topic& topic, Version after, Version upto,
                                std::size_t max_events, bool values) const override;

 private:
  struct Walk;
  bool replayable(const Topic& topic) const;
  Result<WatchHistoryPage> read_prefix(const Topic& topic, Version after, Version upto,
                                       std::size_t max_events, bool values) const;
  Result<Walk> walk(const std::string& key, Version after, std::optional<Version> upto,
                    std::size_t keep) const;
  Result<bool> complete(const std::string& key, Version after, const Walk& walk) const;
  Result<WatchEventPtr> make_event(const std::string& key, const Entry& entry,
                                   bool values) const;

  const Store& store_;
  const ShardId shard_;
  const StoreWatchHistoryOptions options_;
};

}  // namespace squall::kvstore
