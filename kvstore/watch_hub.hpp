// WatchHub: ordered, resumable, bounded pub-sub on keys and key prefixes (docs/watch.md).
//
// The node's delivery thread feeds the hub with every delivered update of each shard
// (publish, in version order; stateless pools too) and with each shard's persistence
// frontier (frontier). An event is *emitted* once the frontier has passed it: it enters the
// shard's journal (the newest emitted events, bounded) and the queue of every watcher whose
// topic matches, in version order per shard. Nothing below the frontier is ever shown.
//
// A watcher starts `now`, at the `oldest` position that can be replayed, or after a cursor.
// Events between its start and the position of registration are *replayed* (from the journal,
// or from the shard's WatchHistory when older than the journal), then live events follow: the
// watcher is registered atomically at the hub's position, so the switch has no gap and no
// duplicate. A start older than what can be replayed is out_of_range ("gone") before any event.
//
// Bounds: per watcher `buffer_events` / `buffer_bytes`; a watcher whose buffer is full is
// dropped (closed with would_block, "too slow") — publish never waits for a consumer — and
// its cursor() is the resume point: resuming from it yields exactly the events it missed.
// Per shard, the journal and the not-yet-durable events are bounded; if the latter overflow
// (the frontier stalls far behind delivery), those events are forgotten and, when the frontier
// passes them, every watcher is dropped (unavailable) to resume through the history.
//
// Threads and locks (one mutex per hub, one per shard journal, two per watcher):
// - publish/frontier/add_shard/reset_shard come from one delivery thread; subscribe and
//   Watcher::close from any thread. They serialize on the hub mutex; frontier holds it while
//   it fans out.
// - Each Watcher is consumed by one thread at a time (poll, cursor, close, destruction); its
//   replay state belongs to that thread, its live queue is guarded by the watcher's mutex.
//   poll() never takes the hub mutex: replay reads the journal under the journal's mutex and
//   the history with no lock held.
// - Lock order: hub -> journal, hub -> watcher. on_ready callbacks run with no hub, journal or
//   queue lock held, under the watcher's callback mutex (so none runs after close() returns).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.hpp"
#include "kvstore/watch_cursor.hpp"
#include "kvstore/watch_event.hpp"
#include "kvstore/watch_index.hpp"

namespace squall::kvstore {

class WatchHistory;
class Watcher;
class WatcherState;
struct WatchShard;

struct WatchHubOptions {
  std::size_t max_watchers = 100000;          // open subscriptions; more: unavailable
  std::size_t max_buffer_events = 1'000'000;  // largest buffer_events a subscription may ask
  std::uint64_t max_buffer_bytes = 256ULL << 20;  // largest buffer_bytes likewise
  std::size_t max_shards = WatchCursor::kMaxShards;  // shards add_shard() accepts
  std::size_t max_topic_bytes = 4096;         // longest key or prefix of a topic
  std::size_t journal_events = 65536;         // per shard: newest emitted events kept
  std::uint64_t journal_bytes = 64ULL << 20;  // per shard, by WatchEvent::size_bytes()
  std::size_t pending_events = 65536;         // per shard: published, not yet durable
  std::uint64_t pending_bytes = 64ULL << 20;  // per shard
  std::size_t replay_scan_events = 4096;      // journal entries one poll() examines at most

  Status validate() const;
};

// How one subscription behaves.
struct WatchOptions {
  std::size_t buffer_events = 1024;           // live events queued before the watcher is dropped
  std::uint64_t buffer_bytes = 4ULL << 20;    // likewise by WatchEvent::size_bytes()
  bool values = true;                         // false: items never carry values
  // Only events of these shards (empty: every shard served here). The others are neither
  // replayed nor queued, and their entries of a start cursor are ignored (as are their
  // entries of cursor()). Lets a node take some shards of a topic from its hub
  // and others from other nodes (server/watch_stream.hpp).
  std::vector<ShardId> shards;
  // Called when poll() would find something new after it last returned PollState::idle
  // (events, or the watcher closed). Runs on the delivery thread or the closing thread: it
  // must be short, must not block, and must not call back into the hub or destroy the
  // watcher (post to the consumer's executor instead).
  std::function<void()> on_ready;
};

// Where a subscription starts.
struct WatchStart {
  enum class Kind : std::uint8_t { now, oldest, cursor };
  Kind kind = Kind::now;
  WatchCursor cursor;  // Kind::cursor only

  static WatchStart now() { return {}; }
  static WatchStart oldest() { return {Kind::oldest, {}}; }
  static WatchStart after(WatchCursor cursor) { return {Kind::cursor, std::move(cursor)}; }
};

// What Watcher::poll() found.
enum class PollState : std::uint8_t {
  more,    // more events may be ready now: poll again
  idle,    // nothing more now; on_ready will be called when there is
  closed,  // closed: status() says why, cursor() is where to resume
};

struct WatchHubStats {
  std::size_t watchers = 0;             // open subscriptions (indexed)
  std::size_t topics = 0;               // distinct topics among them
  std::uint64_t published = 0;          // events published
  std::uint64_t emitted = 0;            // events that passed the frontier
  std::uint64_t deliveries = 0;         // events put into watcher queues
  std::uint64_t dropped_slow = 0;       // watchers dropped for a full buffer
  std::uint64_t dropped_overflow = 0;   // watchers dropped because the hub lost events
  std::uint64_t dropped_reset = 0;      // watchers dropped by reset_shard() / set_serving()
  std::uint64_t resets = 0;             // reset_shard() calls
  std::uint64_t pending_overflows = 0;  // times a shard's not-yet-durable buffer overflowed
  std::size_t pending_events = 0;       // all shards
  std::size_t journal_events = 0;       // all shards
  std::uint64_t journal_bytes = 0;      // all shards
};

class WatchHub {
 public:
  static Result<std::unique_ptr<WatchHub>> create(WatchHubOptions options);
  // REQUIRES: every Watcher of this hub destroyed.
  ~WatchHub();
  WatchHub(const WatchHub&) = delete;
  WatchHub& operator=(const WatchHub&) = delete;

  // Starts serving `shard` from `position`: every event at or below it is history (replayed
  // from `history`, which may be null and must outlive the hub), every later one will be
  // published here. already_exists / no_space (over max_shards).
  Status add_shard(ShardId shard, Version position, const WatchHistory* history);

  // A delivered update of `shard`. REQUIRES: the shard was added; versions strictly increase
  // per shard and are above every frontier reported so far (an update is published before the
  // frontier can pass it). Stored in the shard's bounded pending buffer until durable.
  void publish(ShardId shard, Version version, HlcTimestamp timestamp, WatchOp op,
               std::string_view key, std::span<const std::byte> value);
  // The persistence frontier of `shard` reached `version`: emits every pending event at or
  // below it, in order, and moves the shard's position there. Lower values are ignored.
  void frontier(ShardId shard, Version version);
  // The shard's state was replaced (a replica installed a checkpoint or a log suffix): the
  // versions between the hub's position and `version` were never published here. Closes
  // every open watcher that takes the shard (unavailable; cursor() is where to resume, from
  // the history), forgets the pending events and the journal, and restarts the shard at
  // `version` as add_shard() would: every event at or below it is history. Same thread as
  // publish(). not_found: the shard was never added.
  Status reset_shard(ShardId shard, Version version);
  // Whether this node serves `shard` now (true from add_shard). A shard no longer served gets
  // no more events here: turning it off closes every open watcher that takes it
  // (unavailable, so its stream ends with its cursor and resumes at a member of the shard)
  // — those of every shard too — and subscriptions whose WatchOptions::shards name it are
  // unavailable until it is served again. Same thread as publish(). not_found: the shard was
  // never added.
  Status set_serving(ShardId shard, bool serving);

  // Opens a watcher. invalid_argument: bad topic, options, or a cursor naming a shard not
  // served here; out_of_range: the start is older than what can be replayed; unavailable:
  // max_watchers open, no shard added yet, or WatchOptions::shards names a shard turned off
  // by set_serving(). A cursor that omits a served shard starts
  // that shard at version 0.
  Result<std::unique_ptr<Watcher>> subscribe(const Topic& topic, const WatchStart& start,
                                             WatchOptions options);

  // Every served shard's position (the highest frontier seen).
  WatchCursor position() const;
  WatchHubStats stats() const;
  const WatchHubOptions& options() const { return options_; }

 private:
  friend class Watcher;
  using StateList = std::vector<std::shared_ptr<WatcherState>>;

  explicit WatchHub(WatchHubOptions options);
  WatchShard& shard_locked(ShardId shard);
  std::size_t shard_count() const { return shard_count_.load(std::memory_order_acquire); }
  WatchShard& shard_at(std::size_t slot) const { return *shards_[slot]; }
  std::optional<std::size_t> slot_of(ShardId shard) const;
  Status validate_subscription(const Topic& topic, const WatchStart& start,
                               const WatchOptions& options) const;
  Status register_watcher(WatcherState& state, const WatchStart& start);
  Status resolve_start(WatcherState& state, const WatchStart& start);
  static bool wanted(const WatcherState& state, ShardId shard);
  Result<bool> covered(const WatchShard& shard, const Topic& topic, Version from) const;
  Version oldest_position(const WatchShard& shard, const Topic& topic) const;
  void emit(WatchShard& shard, const WatchEventPtr& event);
  void deliver(WatcherState& state, const WatchEventPtr& event, std::size_t slot);
  void handle_loss(WatchShard& shard);
  std::size_t drop_shard_watchers(const WatchShard& shard, const Status& why);
  void unindex_locked(WatcherState& state);
  void close_watcher(WatcherState& state, Status why);
  void notify(StateList& ready);

  // Consumer side (the watcher's thread; no hub lock).
  bool replay_step(WatcherState& state, std::vector<WatchItem>& out, std::size_t max_events);
  Status replay_slot(WatcherState& state, std::size_t slot, std::vector<WatchItem>& out,
                     std::size_t max_events, std::size_t& budget);
  WatchCursor cursor_of(const WatcherState& state) const;

  const WatchHubOptions options_;
  // Fixed at construction (max_shards entries) so consumer threads can read the first
  // shard_count_ entries without the hub mutex while add_shard() appends.
  std::vector<std::unique_ptr<WatchShard>> shards_;
  std::atomic<std::size_t> shard_count_{0};

  mutable std::mutex mutex_;
  std::unordered_map<ShardId, std::size_t> slots_;  // GUARDED_BY(mutex_)
  TopicIndex index_;                                // GUARDED_BY(mutex_)
  std::vector<WatcherState*> dropped_;              // GUARDED_BY(mutex_), fan-out scratch
  StateList ready_;                                 // GUARDED_BY(mutex_), fan-out scratch
  WatchHubStats counters_;                          // GUARDED_BY(mutex_), counter fields
  std::atomic<std::size_t> handles_{0};             // Watcher objects alive
};

// One subscription. Consumed by one thread at a time; destroying it unsubscribes.
class Watcher {
 public:
  ~Watcher();
  Watcher(const Watcher&) = delete;
  Watcher& operator=(const Watcher&) = delete;

  // Replaces `out` with up to `max_events` (>= 1) events, in order per shard: first the
  // replay, then live events. Returns whether to poll again now, wait for on_ready, or stop.
  PollState poll(std::vector<WatchItem>& out, std::size_t max_events);

  // The resume point after the events poll() has returned so far: per shard, the last of
  // them — or further, when nothing of the topic is pending (a quiet topic's cursor follows
  // the frontier, so it stays replayable).
  WatchCursor cursor() const;
  // ok while open; once closed: would_block (too slow), out_of_range (history needed for the
  // replay was discarded), unavailable (the hub lost events), aborted (closed by the owner).
  Status status() const;
  const Topic& topic() const;
  // Unsubscribes now (idempotent). After it returns on_ready is never called again.
  void close();

 private:
  friend class WatchHub;
  Watcher(WatchHub& hub, std::shared_ptr<WatcherState> state);

  WatchHub& hub_;
  std::shared_ptr<WatcherState> state_;
};

}  // namespace squall::kvstore
