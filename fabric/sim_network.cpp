// SimNetwork: nodes, the event queue, timers, running, and the trace.
// Posting and delivery live in sim_network_deliver.cpp, faults in sim_network_faults.cpp.
#include "fabric/sim_network.hpp"

#include <algorithm>
#include <utility>

#include <fmt/format.h>

namespace squall::fabric {

using sim_detail::Entry;
using sim_detail::EntryKind;
using sim_detail::EntryLater;
using sim_detail::kNoNode;
using sim_detail::Task;
using sim_detail::TaskKind;

Status SimOptions::validate() const {
  if (min_delay_us > max_delay_us) {
    return invalid_argument(
        fmt::format("min_delay_us {} > max_delay_us {}", min_delay_us, max_delay_us));
  }
  if (detect_min_us > detect_max_us) {
    return invalid_argument(
        fmt::format("detect_min_us {} > detect_max_us {}", detect_min_us, detect_max_us));
  }
  if (delay_spike_per_million > 1'000'000 || torn_write_per_million > 1'000'000 ||
      late_read_per_million > 1'000'000) {
    return invalid_argument("probabilities are per million: at most 1000000");
  }
  if (max_message_bytes == 0) return invalid_argument("max_message_bytes must be > 0");
  if (send_queue_depth == 0) return invalid_argument("send_queue_depth must be > 0");
  // Keeps every due time far from overflow even after many spikes.
  constexpr std::uint64_t kMaxDelayUs = 1ULL << 40;
  if (max_delay_us > kMaxDelayUs || delay_spike_us > kMaxDelayUs ||
      detect_max_us > kMaxDelayUs || partition_timeout_us > kMaxDelayUs) {
    return invalid_argument("delays must be below 2^40 us");
  }
  return Status::ok();
}

SimNetwork::SimNetwork(SimOptions options)
    : options_(options), random_(options.seed), clock_(options.start_us) {
  const Status status = options_.validate();
  SQUALL_ASSERT(status.is_ok(), "invalid SimOptions: {}", status.to_string());
  if (options_.record_trace) {
    trace_line(fmt::format("seed {}", options_.seed));
  }
  trace_mix(options_.seed);
}

SimNetwork::~SimNetwork() = default;

// ---------------------------------------------------------------------------------------------
// Nodes

SimTransport& SimNetwork::add_node(NodeId id) {
  SQUALL_ASSERT(!has_node(id), "node {} added twice", id);
  const auto index = static_cast<std::uint32_t>(nodes_.size());
  nodes_.push_back(std::make_unique<SimTransport>(*this, id, index));
  index_by_id_.emplace(id, index);
  for (auto& row : link_index_) row.push_back(kNoNode);
  link_index_.emplace_back(nodes_.size(), kNoNode);
  for (std::uint32_t other = 0; other < index; ++other) {
    for (auto [source, target] : {std::pair{other, index}, std::pair{index, other}}) {
      link_index_[source][target] = static_cast<std::uint32_t>(links_.size());
      Link created;
      created.source = source;
      created.target = target;
      links_.push_back(std::move(created));
    }
  }
  for (auto& node_ptr : nodes_) node_ptr->peers_.resize(nodes_.size());
  if (options_.record_trace) trace_line(fmt::format("{} add node {}", elapsed_us(), id));
  trace_mix(0xadd);
  trace_mix(id.value);
  return *nodes_.back();
}

SimTransport& SimNetwork::node(NodeId id) { return at(index_of(id)); }

bool SimNetwork::has_node(NodeId id) const { return index_by_id_.contains(id); }

std::vector<NodeId> SimNetwork::nodes() const {
  std::vector<NodeId> ids;
  ids.reserve(nodes_.size());
  for (const auto& node_ptr : nodes_) ids.push_back(node_ptr->self());
  return ids;
}

std::uint32_t SimNetwork::index_of(NodeId id) const {
  const auto found = index_by_id_.find(id);
  SQUALL_ASSERT(found != index_by_id_.end(), "unknown node {}", id);
  return found->second;
}

bool SimNetwork::blocked(const Link& link) const {
  return link.cut || nodes_[link.source]->paused_ || nodes_[link.target]->paused_;
}

// ---------------------------------------------------------------------------------------------
// Event queue

void SimNetwork::push_entry(std::uint64_t time_us, EntryKind kind, std::uint32_t index,
                            std::uint32_t generation) {
  Entry entry;
  entry.time_us = std::max(time_us, now_us());
  entry.sequence = next_sequence_++;
  entry.index = index;
  entry.generation = generation;
  entry.kind = kind;
  heap_.push_back(entry);
  std::push_heap(heap_.begin(), heap_.end(), EntryLater{});
}

void SimNetwork::ensure_wakeup(Link& link) {
  if (link.scheduled_sequence != 0 || link.queue.empty() || blocked(link)) return;
  const auto index = link_index_[link.source][link.target];
  link.scheduled_sequence = next_sequence_;
  push_entry(link.queue.front().due_us, EntryKind::link, index, 0);
}

// Whether `entry` still does something; fixes up link entries that are stale or early.
// Never moves the clock.
bool SimNetwork::entry_live(const Entry& entry) {
  if (entry.kind == EntryKind::task) {
    const Task& task = tasks_[entry.index];
    return task.live && task.generation == entry.generation;
  }
  Link& target_link = links_[entry.index];
  if (target_link.scheduled_sequence != entry.sequence) return false;
  target_link.scheduled_sequence = 0;
  if (target_link.queue.empty() || blocked(target_link)) return false;
  if (target_link.queue.front().due_us > entry.time_us) {
    ensure_wakeup(target_link);  // the head was re-timed later: wake up then instead
    return false;
  }
  return true;
}

bool SimNetwork::execute(const Entry& entry) {
  if (entry.kind == EntryKind::task) return run_task(entry.index);
  return deliver_head(entry.index);
}

bool SimNetwork::step() { return step_before(UINT64_MAX); }

// Executes the next event at or before `limit_us`. Entries that turn out to do nothing (a
// failure already reported, a timer of a crashed owner) are consumed on the way.
bool SimNetwork::step_before(std::uint64_t limit_us) {
  while (!heap_.empty()) {
    if (heap_.front().time_us > limit_us) return false;
    std::pop_heap(heap_.begin(), heap_.end(), EntryLater{});
    const Entry entry = heap_.back();
    heap_.pop_back();
    if (!entry_live(entry)) continue;
    if (entry.time_us > now_us()) clock_.set_us(entry.time_us);
    if (execute(entry)) {
      ++stats_.steps;
      trace_mix(now_us());
      return true;
    }
  }
  return false;
}

std::optional<std::uint64_t> SimNetwork::next_event_us() {
  while (!heap_.empty()) {
    const Entry& top = heap_.front();
    bool live = false;
    if (top.kind == EntryKind::task) {
      const Task& task = tasks_[top.index];
      live = task.live && task.generation == top.generation;
    } else {
      const Link& top_link = links_[top.index];
      live = top_link.scheduled_sequence == top.sequence && !top_link.queue.empty() &&
             !blocked(top_link) && top_link.queue.front().due_us <= top.time_us;
    }
    if (live) return std::max(top.time_us, now_us());
    // Not live: let entry_live() discard or re-arm it.
    std::pop_heap(heap_.begin(), heap_.end(), EntryLater{});
    const Entry entry = heap_.back();
    heap_.pop_back();
    const bool revived = entry_live(entry);
    SQUALL_ASSERT(!revived, "entry judged dead became live");
  }
  return std::nullopt;
}

std::uint64_t SimNetwork::run_until(std::uint64_t time_us) {
  std::uint64_t executed = 0;
  for (;;) {
    if (!step_before(time_us)) break;
    ++executed;
  }
  if (time_us > now_us()) clock_.set_us(time_us);
  return executed;
}

bool SimNetwork::run_until_idle(std::uint64_t max_steps) {
  for (std::uint64_t executed = 0; executed < max_steps; ++executed) {
    if (!step()) return true;
  }
  return !next_event_us().has_value();
}

// ---------------------------------------------------------------------------------------------
// Tasks and timers

std::uint32_t SimNetwork::allocate_task() {
  std::uint32_t index = 0;
  if (!free_tasks_.empty()) {
    index = free_tasks_.back();
    free_tasks_.pop_back();
  } else {
    index = static_cast<std::uint32_t>(tasks_.size());
    tasks_.emplace_back();
  }
  Task& task = tasks_[index];
  SQUALL_ASSERT(!task.live, "allocated a live task");
  task.live = true;
  task.owner = kNoNode;
  task.callback = nullptr;
  return index;
}

void SimNetwork::free_task(std::uint32_t index) {
  Task& task = tasks_[index];
  SQUALL_ASSERT(task.live, "freeing a dead task");
  task.live = false;
  ++task.generation;  // every heap entry and TimerId naming the old use becomes stale
  task.callback = nullptr;
  free_tasks_.push_back(index);
}

void SimNetwork::schedule_task(std::uint32_t index, std::uint64_t time_us) {
  push_entry(time_us, EntryKind::task, index, tasks_[index].generation);
}

TimerId SimNetwork::schedule_at(std::uint64_t time_us, TimerCallback callback,
                                std::optional<NodeId> owner) {
  SQUALL_ASSERT(callback != nullptr, "empty timer callback");
  const std::uint32_t index = allocate_task();
  Task& task = tasks_[index];
  task.kind = TaskKind::timer;
  task.callback = std::move(callback);
  if (owner) {
    task.owner = index_of(*owner);
    task.owner_incarnation = nodes_[task.owner]->incarnation_;
  }
  schedule_task(index, time_us);
  return (static_cast<TimerId>(task.generation) << 32 | index) + 1;
}

TimerId SimNetwork::schedule_after(std::uint64_t delay_us, TimerCallback callback,
                                   std::optional<NodeId> owner) {
  return schedule_at(now_us() + delay_us, std::move(callback), owner);
}

bool SimNetwork::cancel(TimerId timer) {
  if (timer == 0) return false;
  const std::uint64_t raw = timer - 1;
  const auto index = static_cast<std::uint32_t>(raw & 0xffff'ffffULL);
  const auto generation = static_cast<std::uint32_t>(raw >> 32);
  if (index >= tasks_.size()) return false;
  const Task& task = tasks_[index];
  if (!task.live || task.generation != generation || task.kind != TaskKind::timer) return false;
  free_task(index);
  return true;
}

bool SimNetwork::run_task(std::uint32_t index) {
  Task& task = tasks_[index];
  switch (task.kind) {
    case TaskKind::timer:
      return run_timer(index);
    case TaskKind::detect_failure: {
      const std::uint32_t observer = task.first;
      const std::uint32_t failed = task.second;
      const std::uint64_t incarnation = task.epoch;
      free_task(index);
      SimTransport& node_ref = at(observer);
      if (node_ref.crashed_) return false;
      const sim_detail::PeerState& state = node_ref.peers_[failed];
      const bool matches =
          state.state == sim_detail::PeerStateKind::connecting ||
          (state.state == sim_detail::PeerStateKind::connected &&
           state.remote_incarnation == incarnation);
      if (!matches) return false;
      fail_connection(observer, failed, unavailable("connection reset: peer crashed"));
      return true;
    }
    case TaskKind::partition_timeout: {
      const std::uint32_t a = task.first;
      const std::uint32_t b = task.second;
      const std::uint64_t epoch = task.epoch;
      free_task(index);
      Link& forward = link(a, b);
      if (!forward.cut || forward.cut_epoch != epoch) return false;
      if (trace_wants_text()) {
        trace_line(fmt::format("{} partition timeout {}-{}", elapsed_us(), at(a).self(),
                               at(b).self()));
      }
      trace_mix(0x9a27);
      purge(forward);
      purge(link(b, a));
      const Status reason(Code::timed_out, "link partitioned past the timeout");
      for (auto [node_index, peer_index] : {std::pair{a, b}, std::pair{b, a}}) {
        const auto state = at(node_index).peers_[peer_index].state;
        const bool up = state == sim_detail::PeerStateKind::connecting ||
                        state == sim_detail::PeerStateKind::connected;
        if (!at(node_index).crashed_ && up) fail_connection(node_index, peer_index, reason);
      }
      return true;
    }
  }
  SQUALL_UNREACHABLE("task kind {}", static_cast<int>(task.kind));
}

bool SimNetwork::run_timer(std::uint32_t index) {
  Task& task = tasks_[index];
  if (task.owner != kNoNode) {
    SimTransport& owner = at(task.owner);
    if (owner.crashed_ || owner.incarnation_ != task.owner_incarnation) {
      free_task(index);
      return false;
    }
    if (owner.paused_) {
      owner.held_timers_.emplace_back(index, task.generation);
      return false;
    }
  }
  TimerCallback callback = std::move(task.callback);
  const TimerId id = (static_cast<TimerId>(task.generation) << 32 | index) + 1;
  free_task(index);
  ++stats_.timers_fired;
  if (trace_wants_text()) trace_line(fmt::format("{} timer {:x}", elapsed_us(), id));
  trace_mix(0x713e);
  trace_mix(id);
  callback();
  return true;
}

// ---------------------------------------------------------------------------------------------
// Trace

void SimNetwork::trace_mix(std::uint64_t value) {
  std::uint64_t state = trace_hash_ ^ value;
  trace_hash_ = splitmix64_next(state);
}

void SimNetwork::trace_bytes(std::span<const std::byte> bytes) {
  std::uint64_t word = 0;
  std::size_t filled = 0;
  for (std::byte b : bytes) {
    word |= static_cast<std::uint64_t>(b) << (8 * filled);
    if (++filled == 8) {
      trace_mix(word);
      word = 0;
      filled = 0;
    }
  }
  trace_mix(word ^ (static_cast<std::uint64_t>(bytes.size()) << 56));
}

bool SimNetwork::trace_wants_text() const {
  return options_.record_trace && trace_lines_.size() < options_.max_trace_lines;
}

void SimNetwork::trace_line(std::string line) {
  if (trace_lines_.size() < options_.max_trace_lines) trace_lines_.push_back(std::move(line));
}

std::string SimNetwork::trace_text() const {
  std::string text;
  for (const std::string& line : trace_lines_) {
    text += line;
    text += '\n';
  }
  return text;
}

void SimNetwork::trace_note(std::string_view note) {
  if (options_.record_trace) trace_line(fmt::format("{} note {}", elapsed_us(), note));
  trace_mix(0x4e07);
  trace_bytes(as_bytes(note));
}

}  // namespace squall::fabric
