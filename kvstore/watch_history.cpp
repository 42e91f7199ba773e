// StoreWatchHistory: replay of key topics from a Store's per-key history, of prefix topics
// from the Store's changes under the prefix.
#include "kvstore/watch_history.hpp"

#include <algorithm>
#include <deque>
#include <limits>

namespace squall::kvstore {

std::string_view watch_op_name(WatchOp op) {
  switch (op) {
    case WatchOp::put:
      return "put";
    case WatchOp::del:
      return "delete";
  }
  SQUALL_UNREACHABLE("watch op {}", static_cast<int>(op));
}

std::uint64_t WatchEvent::size_bytes() const {
  return kWatchEventOverheadBytes + key.size() + value.size();
}

Status StoreWatchHistoryOptions::validate() const {
  if (page_versions == 0 || max_walk_versions == 0) {
    return invalid_argument("page_versions and max_walk_versions must be >= 1");
  }
  return Status::ok();
}

// What walking a key's versions from the newest down to a position found.
struct StoreWatchHistory::Walk {
  std::deque<Entry> window;         // the oldest `keep` versions above the position, oldest first
  bool reached_after = false;       // a retained version at or below the position exists
  bool truncated = false;           // retention discarded versions older than `oldest_seen`
  std::optional<Version> oldest_seen;
};

StoreWatchHistory::StoreWatchHistory(const Store& store, ShardId shard,
                                     StoreWatchHistoryOptions options)
    : store_(store), shard_(shard), options_(std::move(options)) {
  Status valid = options_.validate();
  SQUALL_ASSERT(valid.is_ok(), "StoreWatchHistoryOptions: {}", valid.to_string());
}

bool StoreWatchHistory::replayable(const Topic& topic) const {
  return !options_.stored || options_.stored(topic);
}

Result<StoreWatchHistory::Walk> StoreWatchHistory::walk(const std::string& key, Version after,
                                                        std::optional<Version> upto,
                                                        std::size_t keep) const {
  Walk walk;
  std::optional<Version> before;  // exclusive; none: from the newest
  if (upto && *upto != std::numeric_limits<Version>::max()) before = *upto + 1;
  std::size_t walked = 0;
  for (;;) {
    Result<HistoryPage> page = store_.history(key, before, options_.page_versions);
    if (!page) return page.status();
    for (const Entry& entry : page->versions) {
      walk.oldest_seen = entry.version;
      if (entry.version <= after) {
        walk.reached_after = true;
        return walk;
      }
      if (++walked > options_.max_walk_versions) {
        return Status(Code::out_of_range,
                      fmt::format("key '{}' has more than {} versions above position {}", key,
                                  options_.max_walk_versions, after));
      }
      if (keep == 0) continue;
      walk.window.push_front(entry);
      if (walk.window.size() > keep) walk.window.pop_back();
    }
    if (!page->next) {
      walk.truncated = page->truncated;
      return walk;
    }
    before = page->next;
  }
}

// Retention discards a key's oldest versions first, and a key dropped entirely is older than
// any later incarnation: so the history above `after` is complete when a version at or below
// `after` is still retained, or when `after` is just below the oldest retained version. With
// nothing retained at or below `after` and no truncation, the store's floor decides (a key
// dropped above `after` makes the lookup at `after` gone).
Result<bool> StoreWatchHistory::complete(const std::string& key, Version after,
                                         const Walk& walk) const {
  if (walk.reached_after) return true;
  if (walk.oldest_seen && after >= *walk.oldest_seen - 1) return true;
  if (walk.truncated) return false;
  return store_.lookup(key, ReadPoint::at_version(after)).outcome != Lookup::gone;
}

Result<bool> StoreWatchHistory::covers(const Topic& topic, Version after) const {
  if (!replayable(topic)) return false;
  if (topic.is_prefix()) return store_.changes_horizon(topic.text) <= after;
  Result<Walk> walked = walk(topic.text, after, std::nullopt, 0);
  if (!walked) {
    if (walked.status().code() == Code::out_of_range) return false;
    return walked.status();
  }
  return complete(topic.text, after, *walked);
}

std::optional<Version> StoreWatchHistory::oldest(const Topic& topic) const {
  if (!replayable(topic)) return std::nullopt;
  if (topic.is_prefix()) return store_.changes_horizon(topic.text);
  Result<Walk> walked = walk(topic.text, 0, std::nullopt, 0);
  if (!walked || !walked->oldest_seen) return std::nullopt;
  return *walked->oldest_seen - 1;
}

Result<WatchEventPtr> StoreWatchHistory::make_event(const std::string& key, const Entry& entry,
                                                    bool values) const {
  SQUALL_ASSERT(entry.op == Op::put || entry.op == Op::del, "history lists op {}",
                static_cast<int>(entry.op));
  auto event = std::make_shared<WatchEvent>();
  event->shard = shard_;
  event->version = entry.version;
  event->timestamp = entry.timestamp;
  event->op = entry.op == Op::put ? WatchOp::put : WatchOp::del;
  event->key = key;
  if (values && entry.op == Op::put) {
    Result<Bytes> value = store_.read_version(key, entry.version);
    if (!value) return value.status();
    event->value = std::move(*value);
  }
  return WatchEventPtr(std::move(event));
}

Result<WatchHistoryPage> StoreWatchHistory::read(const Topic& topic, Version after,
                                                 Version upto, std::size_t max_events,
                                                 bool values) const {
  SQUALL_ASSERT(after < upto && max_events >= 1, "history read ({}, {}] max {}", after, upto,
                max_events);
  if (!replayable(topic)) {
    return Status(Code::out_of_range, fmt::format("topic '{}' cannot be replayed from the "
                                                  "store", topic.text));
  }
  if (topic.is_prefix()) return read_prefix(topic, after, upto, max_events, values);
  Result<Walk> walked = walk(topic.text, after, upto, max_events);
  if (!walked) return walked.status();
  Result<bool> whole = complete(topic.text, after, *walked);
  if (!whole) return whole.status();
  if (!*whole) {
    return Status(Code::out_of_range, fmt::format("history of key '{}' above version {} was "
                                                  "discarded", topic.text, after));
  }
  WatchHistoryPage page;
  for (const Entry& entry : walked->window) {
    Result<WatchEventPtr> event = make_event(topic.text, entry, values);
    if (!event) return event.status();
    page.events.push_back(std::move(*event));
  }
  page.through = page.events.size() < max_events ? upto : page.events.back()->version;
  return page;
}

// Pages of at most page_versions events: Store::changes keeps the page's smallest versions in
// memory, so the page size bounds the memory of one step whatever the range.
Result<WatchHistoryPage> StoreWatchHistory::read_prefix(const Topic& topic, Version after,
                                                        Version upto, std::size_t max_events,
                                                        bool values) const {
  std::size_t limit = std::min({max_events, options_.page_versions,
                                store_.options().max_page_items});
  Result<ChangePage> changes = store_.changes(topic.text, after, upto, limit);
  if (!changes) return changes.status();
  WatchHistoryPage page;
  page.events.reserve(changes->changes.size());
  for (const Change& change : changes->changes) {
    Result<WatchEventPtr> event = make_event(change.key, change.entry, values);
    if (!event) return event.status();
    page.events.push_back(std::move(*event));
  }
  page.through = changes->through;
  return page;
}

}  // namespace squall::kvstore
