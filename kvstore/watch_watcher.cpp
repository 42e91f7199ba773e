// The consumer side of the watch hub: Watcher::poll (replay, then the live queue), cursors,
// closing; and the bounded event ring.
#include <algorithm>

#include "kvstore/watch_history.hpp"
#include "kvstore/watch_hub.hpp"
#include "kvstore/watch_internal.hpp"

namespace squall::kvstore {
namespace {

// A drained ring above this capacity gives its memory back (bursty watchers stay cheap).
constexpr std::size_t kRingKeepSlots = 256;
constexpr std::size_t kRingFirstSlots = 4;

WatchItem make_item(const WatcherState& state, WatchEventPtr event) {
  bool has_value = state.values && event->op == WatchOp::put;
  return WatchItem{std::move(event), has_value};
}

}  // namespace

void EventRing::push(WatchEventPtr event) {
  if (size_ == slots_.size()) {
    std::vector<WatchEventPtr> grown(std::max(kRingFirstSlots, slots_.size() * 2));
    for (std::size_t i = 0; i < size_; ++i) {
      grown[i] = std::move(slots_[(head_ + i) & (slots_.size() - 1)]);
    }
    slots_ = std::move(grown);
    head_ = 0;
  }
  slots_[(head_ + size_) & (slots_.size() - 1)] = std::move(event);
  ++size_;
}

WatchEventPtr EventRing::pop() {
  SQUALL_ASSERT(size_ > 0, "pop from an empty event ring");
  WatchEventPtr event = std::move(slots_[head_]);
  head_ = (head_ + 1) & (slots_.size() - 1);
  if (--size_ == 0) {
    head_ = 0;
    if (slots_.size() > kRingKeepSlots) slots_ = {};
  }
  return event;
}

void EventRing::clear() {
  slots_ = {};
  head_ = 0;
  size_ = 0;
}

Watcher::Watcher(WatchHub& hub, std::shared_ptr<WatcherState> state)
    : hub_(hub), state_(std::move(state)) {
  hub_.handles_.fetch_add(1);
}

Watcher::~Watcher() {
  close();
  hub_.handles_.fetch_sub(1);
}

void Watcher::close() {
  hub_.close_watcher(*state_, Status(Code::aborted, "watcher closed by its owner"));
  std::lock_guard lock(state_->callback_mutex);  // waits out a running on_ready
  state_->on_ready = nullptr;
}

Status Watcher::status() const {
  std::lock_guard lock(state_->mutex);
  return state_->closed ? state_->close_status : Status::ok();
}

const Topic& Watcher::topic() const { return state_->topic; }

WatchCursor Watcher::cursor() const { return hub_.cursor_of(*state_); }

PollState Watcher::poll(std::vector<WatchItem>& out, std::size_t max_events) {
  SQUALL_ASSERT(max_events >= 1, "poll for 0 events");
  out.clear();
  WatcherState& state = *state_;
  if (!state.replay_done) {
    bool open = hub_.replay_step(state, out, max_events);
    if (!open) return out.empty() ? PollState::closed : PollState::more;
    if (!state.replay_done || out.size() == max_events) return PollState::more;
  }
  std::lock_guard lock(state.mutex);
  if (state.closed) return out.empty() ? PollState::closed : PollState::more;
  while (out.size() < max_events && !state.queue.empty()) {
    WatchEventPtr event = state.queue.pop();
    state.queued_bytes -= event->size_bytes();
    std::optional<std::size_t> slot = hub_.slot_of(event->shard);
    SQUALL_ASSERT(slot.has_value(), "event of unknown shard {}", event->shard);
    // A shard added after the subscription starts at its registration position.
    for (std::size_t s = state.consumed.size(); s <= *slot; ++s) {
      state.consumed.push_back(hub_.shard_at(s).registered);
    }
    state.consumed[*slot] = event->version;
    out.push_back(make_item(state, std::move(event)));
  }
  if (!state.queue.empty()) return PollState::more;
  state.armed = true;
  return PollState::idle;
}

// Replays shard after shard until `out` is full or the scan budget is spent. Returns false
// when the watcher is closed (by the delivery thread, or here when its history is gone).
bool WatchHub::replay_step(WatcherState& state, std::vector<WatchItem>& out,
                           std::size_t max_events) {
  std::size_t budget = options_.replay_scan_events;
  while (state.replay_next < state.replay.size()) {
    if (out.size() >= max_events || budget == 0) return true;
    {
      std::lock_guard lock(state.mutex);
      if (state.closed) return false;
    }
    std::size_t slot = state.replay_next;
    ReplayRange& range = state.replay[slot];
    if (range.from >= range.to) {
      ++state.replay_next;
      continue;
    }
    Status status = replay_slot(state, slot, out, max_events, budget);
    if (!status) {
      close_watcher(state, std::move(status));
      return false;
    }
  }
  state.replay_done = true;
  state.replay = {};
  return true;
}

// One step of one shard's replay: from the journal when it still holds the range's start,
// else from the shard's history up to the journal's base.
Status WatchHub::replay_slot(WatcherState& state, std::size_t slot, std::vector<WatchItem>& out,
                             std::size_t max_events, std::size_t& budget) {
  const WatchShard& shard = shard_at(slot);
  ReplayRange& range = state.replay[slot];
  Version base = 0;
  {
    std::lock_guard lock(shard.journal.mutex);
    const std::deque<WatchEventPtr>& events = shard.journal.events;
    base = shard.journal.base;
    if (range.from >= base) {
      auto it = std::upper_bound(events.begin(), events.end(), range.from,
                                 [](Version v, const WatchEventPtr& e) { return v < e->version; });
      for (; it != events.end() && budget > 0 && out.size() < max_events; ++it) {
        if ((*it)->version > range.to) break;
        --budget;
        if (state.topic.matches((*it)->key)) out.push_back(make_item(state, *it));
        range.from = (*it)->version;
      }
      if (it == events.end() || (*it)->version > range.to) range.from = range.to;
      state.consumed[slot] = range.from;
      return Status::ok();
    }
  }
  if (shard.history == nullptr) {
    return Status(Code::out_of_range,
                  fmt::format("shard {}: position {} fell out of the watch journal (now from "
                              "{}) and the shard has no history", shard.id, range.from, base));
  }
  Version upto = std::min(range.to, base);
  Result<WatchHistoryPage> page = shard.history->read(state.topic, range.from, upto,
                                                      max_events - out.size(), state.values);
  if (!page) return page.status();
  SQUALL_ASSERT(page->through > range.from && page->through <= upto,
                "history page through {} outside ({}, {}]", page->through, range.from, upto);
  for (WatchEventPtr& event : page->events) {
    SQUALL_ASSERT(event->version > range.from && event->version <= page->through,
                  "history event {} outside ({}, {}]", event->version, range.from,
                  page->through);
    range.from = event->version;
    out.push_back(make_item(state, std::move(event)));
  }
  range.from = page->through;
  state.consumed[slot] = range.from;
  budget -= std::min(budget, std::max<std::size_t>(1, page->events.size()));
  return Status::ok();
}

// Consumer thread. The positions are read before the queue is checked: fan-out queues every
// event at or below a position before publishing it, so an empty queue afterwards means the
// watcher has been given everything up to those positions.
WatchCursor WatchHub::cursor_of(const WatcherState& state) const {
  std::size_t count = shard_count();
  std::vector<Version> live(count, 0);
  bool drained = false;
  if (state.replay_done) {
    for (std::size_t slot = 0; slot < count; ++slot) {
      live[slot] = shard_at(slot).position.load(std::memory_order_acquire);
    }
    std::lock_guard lock(state.mutex);
    drained = !state.closed && state.queue.empty();
  }
  WatchCursor cursor;
  for (std::size_t slot = 0; slot < count; ++slot) {
    const WatchShard& shard = shard_at(slot);
    Version version = slot < state.consumed.size() ? state.consumed[slot] : shard.registered;
    if (drained) version = std::max(version, live[slot]);
    cursor.set(shard.id, version);
  }
  return cursor;
}

}  // namespace squall::kvstore
