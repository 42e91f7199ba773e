// Internals of the watch hub shared by watch_hub.cpp and watch_watcher.cpp: per-shard state
// with its journal, the bounded event ring, and a watcher's state. Not for other modules.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "common/assert.hpp"
#include "common/status.hpp"
#include "kvstore/watch_event.hpp"
#include "kvstore/watch_hub.hpp"
#include "kvstore/watch_index.hpp"

namespace squall::kvstore {

// The newest emitted events of a shard: every event with a version in (base, newest] of the
// shard, in order. Eviction from the front raises `base`.
struct WatchJournal {
  mutable std::mutex mutex;
  std::deque<WatchEventPtr> events;  // GUARDED_BY(mutex)
  Version base = 0;                  // GUARDED_BY(mutex)
  std::uint64_t bytes = 0;           // GUARDED_BY(mutex)
};

struct WatchShard {
  WatchShard(ShardId shard_id, std::size_t shard_slot, Version start,
             const WatchHistory* shard_history)
      : id(shard_id), slot(shard_slot), registered(start), history(shard_history),
        frontier(start), last_published(start), position(start) {
    journal.base = start;
  }

  const ShardId id;
  const std::size_t slot;
  const Version registered;  // position at add_shard()
  const WatchHistory* const history;

  // GUARDED_BY(hub mutex):
  Version frontier;                     // highest frontier reported
  Version last_published;               // highest version published (or the start)
  Version lost_through = 0;             // pending overflow: events up to this were forgotten
  bool serving = true;                  // WatchHub::set_serving
  std::deque<WatchEventPtr> pending;    // published, above the frontier, in order
  std::uint64_t pending_bytes = 0;

  // Every event at or below `position` has been emitted (journal + fan-out). Written under the
  // hub mutex after the fan-out; read by consumers without it.
  std::atomic<Version> position;
  WatchJournal journal;
};

// A bounded FIFO of events that allocates only as it fills (an idle watcher holds no buffer)
// and gives its memory back when drained.
class EventRing {
 public:
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  void push(WatchEventPtr event);
  WatchEventPtr pop();
  void clear();

 private:
  std::vector<WatchEventPtr> slots_;  // capacity = slots_.size(), a power of two (or 0)
  std::size_t head_ = 0;
  std::size_t size_ = 0;
};

// What replaying one shard still has to do: the events of the topic in (from, to].
struct ReplayRange {
  Version from = 0;
  Version to = 0;
};

class WatcherState : public TopicMember, public std::enable_shared_from_this<WatcherState> {
 public:
  WatcherState(Topic watch_topic, WatchOptions watch_options)
      : topic(std::move(watch_topic)), buffer_events(watch_options.buffer_events),
        buffer_bytes(watch_options.buffer_bytes), values(watch_options.values),
        shards(std::move(watch_options.shards)), on_ready(std::move(watch_options.on_ready)) {}

  // Immutable after subscribe().
  const Topic topic;
  const std::size_t buffer_events;
  const std::uint64_t buffer_bytes;
  const bool values;
  const std::vector<ShardId> shards;  // WatchOptions::shards
  // Per shard slot: live events at or below this version are not queued (a cursor ahead of
  // the hub's position). Written before the watcher is indexed, read under the hub mutex.
  std::vector<Version> skip_through;

  // GUARDED_BY(hub mutex):
  bool indexed = false;

  // GUARDED_BY(mutex): the live queue, shared by the delivery thread and the consumer.
  mutable std::mutex mutex;
  EventRing queue;
  std::uint64_t queued_bytes = 0;
  bool closed = false;
  Status close_status;
  bool armed = false;  // the consumer saw nothing and waits for on_ready

  // Closes the watcher and frees its queue. REQUIRES: mutex held, not closed.
  void close(Status why) {
    SQUALL_ASSERT(!closed && !why.is_ok(), "closing a closed watcher or without a reason");
    closed = true;
    close_status = std::move(why);
    queue.clear();
    queued_bytes = 0;
  }

  // Consumer thread only.
  std::vector<ReplayRange> replay;  // per shard slot; cleared when the replay is done
  std::size_t replay_next = 0;      // first slot still replaying
  bool replay_done = false;
  std::vector<Version> consumed;    // per shard slot: the cursor after what poll() returned

  // on_ready, guarded so that close() can wait out a running call.
  std::mutex callback_mutex;
  std::function<void()> on_ready;   // GUARDED_BY(callback_mutex)
};

}  // namespace squall::kvstore
