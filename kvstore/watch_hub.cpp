// WatchHub: shards, durable gating, fan-out and subscription. The consumer side (poll,
// replay, cursors) is in watch_watcher.cpp.
#include "kvstore/watch_hub.hpp"

#include <algorithm>
#include <limits>

#include "common/log.hpp"
#include "kvstore/watch_history.hpp"
#include "kvstore/watch_internal.hpp"

namespace squall::kvstore {

namespace {
// skip_through of a shard a watcher does not take: every event of it is skipped.
constexpr Version kNoVersion = std::numeric_limits<Version>::max();
}  // namespace

Status WatchHubOptions::validate() const {
  if (max_watchers == 0 || max_buffer_events == 0 || max_buffer_bytes == 0 ||
      max_topic_bytes == 0 || journal_events == 0 || journal_bytes == 0 ||
      pending_events == 0 || pending_bytes == 0 || replay_scan_events == 0) {
    return invalid_argument("watch hub limits must be >= 1");
  }
  if (max_shards == 0 || max_shards > WatchCursor::kMaxShards) {
    return invalid_argument(fmt::format("max_shards {} outside [1, {}]", max_shards,
                                        WatchCursor::kMaxShards));
  }
  return Status::ok();
}

Result<std::unique_ptr<WatchHub>> WatchHub::create(WatchHubOptions options) {
  SQUALL_TRY(options.validate());
  return std::unique_ptr<WatchHub>(new WatchHub(std::move(options)));
}

WatchHub::WatchHub(WatchHubOptions options)
    : options_(std::move(options)), shards_(options_.max_shards) {}

WatchHub::~WatchHub() {
  SQUALL_ASSERT(handles_.load() == 0, "{} watchers outlive their hub", handles_.load());
}

Status WatchHub::add_shard(ShardId shard, Version position, const WatchHistory* history) {
  std::lock_guard lock(mutex_);
  if (slots_.contains(shard)) {
    return Status(Code::already_exists, fmt::format("shard {} already served", shard));
  }
  std::size_t slot = shard_count();
  if (slot >= options_.max_shards) {
    return Status(Code::no_space, fmt::format("at most {} shards", options_.max_shards));
  }
  shards_[slot] = std::make_unique<WatchShard>(shard, slot, position, history);
  slots_.emplace(shard, slot);
  shard_count_.store(slot + 1, std::memory_order_release);
  return Status::ok();
}

WatchShard& WatchHub::shard_locked(ShardId shard) {
  auto it = slots_.find(shard);
  SQUALL_ASSERT(it != slots_.end(), "shard {} was never added to the watch hub", shard);
  return *shards_[it->second];
}

std::optional<std::size_t> WatchHub::slot_of(ShardId shard) const {
  std::size_t count = shard_count();
  for (std::size_t slot = 0; slot < count; ++slot) {
    if (shards_[slot]->id == shard) return slot;
  }
  return std::nullopt;
}

void WatchHub::publish(ShardId shard, Version version, HlcTimestamp timestamp, WatchOp op,
                       std::string_view key, std::span<const std::byte> value) {
  // Built before taking the lock: the allocation and copies stay out of the critical section.
  auto event = std::make_shared<WatchEvent>();
  event->shard = shard;
  event->version = version;
  event->timestamp = timestamp;
  event->op = op;
  event->key.assign(key);
  if (op == WatchOp::put) event->value.assign(value.begin(), value.end());
  std::uint64_t size = event->size_bytes();

  std::lock_guard lock(mutex_);
  WatchShard& s = shard_locked(shard);
  SQUALL_ASSERT(version > s.last_published && version > s.frontier,
                "shard {}: published version {} after version {} / frontier {}", shard,
                version, s.last_published, s.frontier);
  s.last_published = version;
  ++counters_.published;
  if (s.pending.size() >= options_.pending_events ||
      s.pending_bytes + size > options_.pending_bytes) {
    // The frontier stalls far behind delivery. Forget what is pending (bounded memory beats
    // completeness here); when the frontier passes `version`, every watcher is dropped and
    // resumes through the history (handle_loss).
    logger("watch")->warn("shard {}: {} events ({} bytes) wait for the persistence frontier "
                          "{}; forgetting them through version {}", shard, s.pending.size(),
                          s.pending_bytes, s.frontier, version);
    s.lost_through = version;
    s.pending.clear();
    s.pending_bytes = 0;
    ++counters_.pending_overflows;
    return;
  }
  s.pending_bytes += size;
  s.pending.push_back(std::move(event));
}

void WatchHub::frontier(ShardId shard, Version version) {
  StateList ready;
  {
    std::lock_guard lock(mutex_);
    WatchShard& s = shard_locked(shard);
    if (version <= s.frontier) return;
    s.frontier = version;
    if (s.lost_through != 0 && version >= s.lost_through) handle_loss(s);
    while (!s.pending.empty() && s.pending.front()->version <= version) {
      WatchEventPtr event = std::move(s.pending.front());
      s.pending.pop_front();
      s.pending_bytes -= event->size_bytes();
      emit(s, event);
    }
    // Only now: a consumer that reads this position finds every event at or below it queued.
    s.position.store(version, std::memory_order_release);
    ready.swap(ready_);
  }
  notify(ready);
}

// REQUIRES: mutex_ held.
void WatchHub::emit(WatchShard& shard, const WatchEventPtr& event) {
  {
    WatchJournal& journal = shard.journal;
    std::lock_guard lock(journal.mutex);
    journal.events.push_back(event);
    journal.bytes += event->size_bytes();
    while (!journal.events.empty() && (journal.events.size() > options_.journal_events ||
                                       journal.bytes > options_.journal_bytes)) {
      const WatchEventPtr& oldest = journal.events.front();
      journal.base = oldest->version;
      journal.bytes -= oldest->size_bytes();
      journal.events.pop_front();
    }
  }
  ++counters_.emitted;
  index_.for_each_match(event->key, [&](TopicEntry& entry) {
    for (TopicMember* member : entry.members) {
      deliver(static_cast<WatcherState&>(*member), event, shard.slot);
    }
  });
  for (WatcherState* state : dropped_) unindex_locked(*state);
  dropped_.clear();
}

// REQUIRES: mutex_ held. A full queue drops the watcher instead of waiting or growing.
void WatchHub::deliver(WatcherState& state, const WatchEventPtr& event, std::size_t slot) {
  if (slot < state.skip_through.size() && event->version <= state.skip_through[slot]) return;
  std::uint64_t size = event->size_bytes();
  std::lock_guard lock(state.mutex);
  SQUALL_ASSERT(!state.closed, "a closed watcher is still indexed");
  if (state.queue.size() >= state.buffer_events ||
      state.queued_bytes + size > state.buffer_bytes) {
    state.close(Status(Code::would_block,
                       fmt::format("too slow: {} events ({} bytes) buffered, limits {} / {}",
                                   state.queue.size(), state.queued_bytes,
                                   state.buffer_events, state.buffer_bytes)));
    dropped_.push_back(&state);
    ++counters_.dropped_slow;
  } else {
    state.queue.push(event);
    state.queued_bytes += size;
    ++counters_.deliveries;
  }
  if (state.armed) {
    state.armed = false;
    ready_.push_back(state.shared_from_this());
  }
}

// REQUIRES: mutex_ held. Events up to lost_through were forgotten before reaching any
// watcher: no open stream may continue past them, and the journal cannot replay across them.
void WatchHub::handle_loss(WatchShard& shard) {
  {
    std::lock_guard lock(shard.journal.mutex);
    shard.journal.events.clear();
    shard.journal.bytes = 0;
    shard.journal.base = shard.lost_through;
  }
  Status why(Code::unavailable,
             fmt::format("watch hub lost events of shard {} up to version {}; resume from "
                         "the cursor", shard.id, shard.lost_through));
  index_.for_each_entry([&](TopicEntry& entry) {
    for (TopicMember* member : entry.members) {
      auto& state = static_cast<WatcherState&>(*member);
      std::lock_guard lock(state.mutex);
      state.close(why);
      dropped_.push_back(&state);
      if (state.armed) {
        state.armed = false;
        ready_.push_back(state.shared_from_this());
      }
    }
  });
  counters_.dropped_overflow += dropped_.size();
  logger("watch")->warn("{}: dropping {} watchers", why.message(), dropped_.size());
  for (WatcherState* state : dropped_) unindex_locked(*state);
  dropped_.clear();
  shard.lost_through = 0;
}

Status WatchHub::reset_shard(ShardId shard, Version version) {
  StateList ready;
  std::size_t dropped = 0;
  {
    std::lock_guard lock(mutex_);
    auto it = slots_.find(shard);
    if (it == slots_.end()) {
      return Status(Code::not_found, fmt::format("shard {} is not served here", shard));
    }
    WatchShard& s = *shards_[it->second];
    Status why(Code::unavailable,
               fmt::format("shard {} installed state through version {}; resume from the "
                           "cursor", shard, version));
    dropped = drop_shard_watchers(s, why);
    {
      // A consumer may still be replaying a range of the old window (up to the old position)
      // from the journal: with the base at or above that position, such a range is either
      // empty or read from the history, never skipped over an emptied journal.
      std::lock_guard journal_lock(s.journal.mutex);
      s.journal.events.clear();
      s.journal.bytes = 0;
      s.journal.base = std::max(version, s.position.load(std::memory_order_relaxed));
    }
    s.pending.clear();
    s.pending_bytes = 0;
    s.lost_through = 0;
    s.frontier = version;
    s.last_published = version;
    s.position.store(version, std::memory_order_release);
    ++counters_.resets;
    counters_.dropped_reset += dropped;
    ready.swap(ready_);
  }
  logger("watch")->info("shard {}: restarted at version {} after a state install; {} watchers "
                        "dropped to resume", shard, version, dropped);
  notify(ready);
  return Status::ok();
}

Status WatchHub::set_serving(ShardId shard, bool serving) {
  StateList ready;
  std::size_t dropped = 0;
  {
    std::lock_guard lock(mutex_);
    auto it = slots_.find(shard);
    if (it == slots_.end()) {
      return Status(Code::not_found, fmt::format("shard {} is not served here", shard));
    }
    WatchShard& s = *shards_[it->second];
    if (s.serving == serving) return Status::ok();
    s.serving = serving;
    if (!serving) {
      dropped = drop_shard_watchers(
          s, Status(Code::unavailable, fmt::format("this node no longer serves shard {}; "
                                                   "resume from the cursor", shard)));
      counters_.dropped_reset += dropped;
    }
    ready.swap(ready_);
  }
  logger("watch")->info("shard {}: {} here{}", shard, serving ? "served" : "no longer served",
                        dropped == 0 ? "" : fmt::format(", {} watchers dropped", dropped));
  notify(ready);
  return Status::ok();
}

// REQUIRES: mutex_ held. Closes and unindexes every open watcher that takes `shard`; their
// on_ready calls are queued in ready_. Returns how many were closed.
std::size_t WatchHub::drop_shard_watchers(const WatchShard& shard, const Status& why) {
  index_.for_each_entry([&](TopicEntry& entry) {
    for (TopicMember* member : entry.members) {
      auto& state = static_cast<WatcherState&>(*member);
      if (!wanted(state, shard.id)) continue;
      std::lock_guard lock(state.mutex);
      if (!state.closed) state.close(why);
      dropped_.push_back(&state);
      if (state.armed) {
        state.armed = false;
        ready_.push_back(state.shared_from_this());
      }
    }
  });
  std::size_t count = dropped_.size();
  for (WatcherState* state : dropped_) unindex_locked(*state);
  dropped_.clear();
  return count;
}

// REQUIRES: mutex_ held.
void WatchHub::unindex_locked(WatcherState& state) {
  if (!state.indexed) return;
  index_.remove(state.topic, state);
  state.indexed = false;
}

void WatchHub::close_watcher(WatcherState& state, Status why) {
  std::lock_guard lock(mutex_);
  unindex_locked(state);
  std::lock_guard state_lock(state.mutex);
  if (!state.closed) state.close(std::move(why));
}

void WatchHub::notify(StateList& ready) {
  for (const std::shared_ptr<WatcherState>& state : ready) {
    std::lock_guard lock(state->callback_mutex);
    if (state->on_ready) state->on_ready();
  }
  ready.clear();
}

Status WatchHub::validate_subscription(const Topic& topic, const WatchStart& start,
                                       const WatchOptions& options) const {
  if (topic.text.size() > options_.max_topic_bytes) {
    return invalid_argument(fmt::format("topic of {} bytes, limit {}", topic.text.size(),
                                        options_.max_topic_bytes));
  }
  if (!topic.is_prefix() && topic.text.empty()) return invalid_argument("empty key topic");
  if (options.buffer_events == 0 || options.buffer_events > options_.max_buffer_events ||
      options.buffer_bytes == 0 || options.buffer_bytes > options_.max_buffer_bytes) {
    return invalid_argument(fmt::format("buffer of {} events / {} bytes outside [1, {}] / "
                                        "[1, {}]", options.buffer_events, options.buffer_bytes,
                                        options_.max_buffer_events,
                                        options_.max_buffer_bytes));
  }
  if (start.kind != WatchStart::Kind::cursor) return Status::ok();
  if (start.cursor.empty()) return invalid_argument("cursor without positions");
  for (const WatchCursor::Position& position : start.cursor.positions()) {
    if (!slot_of(position.shard)) {
      return invalid_argument(fmt::format("cursor names shard {}, which is not served here",
                                          position.shard));
    }
  }
  return Status::ok();
}

Result<std::unique_ptr<Watcher>> WatchHub::subscribe(const Topic& topic,
                                                     const WatchStart& start,
                                                     WatchOptions options) {
  SQUALL_TRY(validate_subscription(topic, start, options));
  auto state = std::make_shared<WatcherState>(topic, std::move(options));
  SQUALL_TRY(register_watcher(*state, start));
  // From here the handle owns the subscription: returning an error destroys it (unsubscribes).
  std::unique_ptr<Watcher> watcher(new Watcher(*this, state));
  SQUALL_TRY(resolve_start(*state, start));
  return watcher;
}

// Registers the watcher at the hub's current positions, atomically with respect to fan-out:
// every event at or below a position is in the journal (or older), every later one will be
// queued live. The replay covers (start, position] per shard.
Status WatchHub::register_watcher(WatcherState& state, const WatchStart& start) {
  std::lock_guard lock(mutex_);
  if (shard_count() == 0) return unavailable("no shard is served yet");
  if (index_.member_count() >= options_.max_watchers) {
    return unavailable(fmt::format("{} watchers open, the limit", options_.max_watchers));
  }
  std::size_t count = shard_count();
  for (std::size_t slot = 0; slot < count; ++slot) {
    // Only explicit shard lists are refused: a watcher of every shard takes the ones the
    // topic lives in, which its caller checked are served here (server/watch_stream.cpp).
    if (!shard_at(slot).serving && !state.shards.empty() && wanted(state, shard_at(slot).id)) {
      return unavailable(fmt::format("shard {} is not served here now",
                                     shard_at(slot).id));
    }
  }
  state.replay.resize(count);
  state.consumed.resize(count);
  for (std::size_t slot = 0; slot < count; ++slot) {
    Version position = shard_at(slot).position.load(std::memory_order_relaxed);
    Version from = position;
    if (!wanted(state, shard_at(slot).id)) {
      // Never queued (skip everything), nothing to replay, the cursor stays at the start.
      state.skip_through.resize(count, 0);
      state.skip_through[slot] = kNoVersion;
      if (start.kind == WatchStart::Kind::cursor) {
        from = start.cursor.get(shard_at(slot).id).value_or(position);
      }
      state.replay[slot] = ReplayRange{from, from};
      state.consumed[slot] = from;
      continue;
    }
    if (start.kind == WatchStart::Kind::cursor) {
      from = start.cursor.get(shard_at(slot).id).value_or(0);
      if (from > position) {  // a cursor from a node further ahead: skip what it has seen
        state.skip_through.resize(count, 0);
        state.skip_through[slot] = from;
      }
    }
    state.replay[slot] = ReplayRange{from, position};
    state.consumed[slot] = from;
  }
  index_.add(state.topic, state);
  state.indexed = true;
  return Status::ok();
}

bool WatchHub::wanted(const WatcherState& state, ShardId shard) {
  return state.shards.empty() ||
         std::find(state.shards.begin(), state.shards.end(), shard) != state.shards.end();
}

// Outside the hub mutex (the history may read the store): fixes `oldest` starts and checks
// that every replay range can be served.
Status WatchHub::resolve_start(WatcherState& state, const WatchStart& start) {
  for (std::size_t slot = 0; slot < state.replay.size(); ++slot) {
    const WatchShard& shard = shard_at(slot);
    ReplayRange& range = state.replay[slot];
    if (!wanted(state, shard.id)) continue;
    if (start.kind == WatchStart::Kind::oldest) {
      range.from = std::min(range.to, oldest_position(shard, state.topic));
      state.consumed[slot] = range.from;
    }
    if (range.from >= range.to) continue;
    Result<bool> ok = covered(shard, state.topic, range.from);
    if (!ok) return ok.status();
    if (!*ok) {
      return Status(Code::out_of_range,
                    fmt::format("shard {}: position {} is older than retained history (oldest "
                                "for this topic: {})", shard.id, range.from,
                                oldest_position(shard, state.topic)));
    }
  }
  // Nothing to replay (a start `now`, or at the positions): go live at once, holding no
  // replay state. The subscribing thread still owns the watcher's consumer side here.
  bool nothing = std::all_of(state.replay.begin(), state.replay.end(),
                             [](const ReplayRange& r) { return r.from >= r.to; });
  if (nothing) {
    state.replay = {};
    state.replay_done = true;
  }
  return Status::ok();
}

Result<bool> WatchHub::covered(const WatchShard& shard, const Topic& topic, Version from) const {
  {
    std::lock_guard lock(shard.journal.mutex);
    if (from >= shard.journal.base) return true;
  }
  if (shard.history == nullptr) return false;
  return shard.history->covers(topic, from);
}

Version WatchHub::oldest_position(const WatchShard& shard, const Topic& topic) const {
  Version base = 0;
  {
    std::lock_guard lock(shard.journal.mutex);
    base = shard.journal.base;
  }
  if (shard.history != nullptr) {
    std::optional<Version> older = shard.history->oldest(topic);
    if (older && *older < base) return *older;
  }
  return base;
}

WatchCursor WatchHub::position() const {
  WatchCursor cursor;
  std::size_t count = shard_count();
  for (std::size_t slot = 0; slot < count; ++slot) {
    cursor.set(shard_at(slot).id, shard_at(slot).position.load(std::memory_order_acquire));
  }
  return cursor;
}

WatchHubStats WatchHub::stats() const {
  std::lock_guard lock(mutex_);
  WatchHubStats stats = counters_;
  stats.watchers = index_.member_count();
  stats.topics = index_.topic_count();
  std::size_t count = shard_count();
  for (std::size_t slot = 0; slot < count; ++slot) {
    const WatchShard& shard = shard_at(slot);
    stats.pending_events += shard.pending.size();
    std::lock_guard journal_lock(shard.journal.mutex);
    stats.journal_events += shard.journal.events.size();
    stats.journal_bytes += shard.journal.bytes;
  }
  return stats;
}

}  // namespace squall::kvstore
