// SimNetwork: crashes, restarts, pauses, partitions, and connection failure.
#include <algorithm>
#include <utility>

#include <fmt/format.h>

#include "common/log.hpp"
#include "fabric/sim_network.hpp"

namespace squall::fabric {

using sim_detail::PeerStateKind;
using sim_detail::TaskKind;

namespace {

bool active(const sim_detail::PeerState& state) {
  return state.state == PeerStateKind::connecting || state.state == PeerStateKind::connected;
}

}  // namespace

// Fails `node`'s connection to `peer` exactly once: outstanding signalled writes complete with
// `reason`, then one peer_failed. Undelivered data between the two (both directions) is
// dropped, so nothing of the dead connection can reach a later one.
void SimNetwork::fail_connection(std::uint32_t node, std::uint32_t peer, const Status& reason) {
  SimTransport& local = at(node);
  sim_detail::PeerState& state = local.peers_[peer];
  SQUALL_ASSERT(active(state), "failing a connection that is not up");
  SQUALL_ASSERT(!reason.is_ok(), "failure without a reason");
  const NodeId peer_id = at(peer).self();
  for (const std::uint64_t context : state.outstanding) {
    Event completion;
    completion.kind = EventKind::write_completed;
    completion.peer = peer_id;
    completion.context = context;
    completion.status = reason;
    local.push_event(std::move(completion));
  }
  state.outstanding.clear();
  state.state = PeerStateKind::failed;
  state.remote_regions.clear();
  Event failed;
  failed.kind = EventKind::peer_failed;
  failed.peer = peer_id;
  failed.status = reason;
  local.push_event(std::move(failed));
  ++stats_.peer_failures;
  drop_data(link(node, peer));
  drop_data(link(peer, node));
  trace_mix(0xfa11);
  trace_mix(static_cast<std::uint64_t>(node) << 32 | peer);
  if (trace_wants_text()) {
    trace_line(fmt::format("{} peer_failed at {} peer {}: {}", elapsed_us(), local.self(),
                           peer_id, reason.to_string()));
  }
}

void SimNetwork::schedule_detection(std::uint32_t observer, std::uint32_t failed) {
  const std::uint32_t index = allocate_task();
  sim_detail::Task& task = tasks_[index];
  task.kind = TaskKind::detect_failure;
  task.first = observer;
  task.second = failed;
  task.epoch = at(failed).incarnation_;
  const std::uint64_t delay_us = random_.between(options_.detect_min_us, options_.detect_max_us);
  schedule_task(index, now_us() + delay_us);
}

void SimNetwork::crash(NodeId id, CrashDetection detection) {
  const std::uint32_t index = index_of(id);
  SimTransport& victim = at(index);
  if (victim.crashed_) return;
  logger("fabric")->debug("sim: crash node {} at {} us", id, elapsed_us());
  if (trace_wants_text()) trace_line(fmt::format("{} crash {}", elapsed_us(), id));
  trace_mix(0xc4a5);
  trace_mix(id.value);
  const bool was_paused = victim.paused_;
  victim.crashed_ = true;
  victim.paused_ = false;
  victim.crash_silent_ = detection == CrashDetection::silent;
  victim.inbox_.clear();
  victim.activity_ = false;
  for (const auto& [task_index, generation] : victim.held_timers_) {
    if (tasks_[task_index].live && tasks_[task_index].generation == generation) {
      free_task(task_index);
    }
  }
  victim.held_timers_.clear();
  for (std::uint32_t other = 0; other < nodes_.size(); ++other) {
    if (other == index) continue;
    purge(link(other, index));
    // Bytes already on the wire: a random prefix of what the victim had queued still lands.
    Link& outgoing = link(index, other);
    keep_prefix(outgoing, random_.below(outgoing.queue.size() + 1));
    if (was_paused && !blocked(outgoing)) retime_after_hold(outgoing);
    ensure_wakeup(outgoing);
    SimTransport& survivor = at(other);
    sim_detail::PeerState& state = survivor.peers_[index];
    state.hello_stored = false;
    if (detection == CrashDetection::reset && !survivor.crashed_ && active(state)) {
      schedule_detection(other, index);
    }
  }
}

void SimNetwork::restart(NodeId id) {
  SimTransport& node_ref = at(index_of(id));
  SQUALL_ASSERT(node_ref.crashed_, "restart of node {} that is not crashed", id);
  node_ref.reset_after_crash();
  node_ref.crashed_ = false;
  node_ref.crash_silent_ = false;
  ++node_ref.incarnation_;
  logger("fabric")->debug("sim: restart node {} at {} us", id, elapsed_us());
  if (trace_wants_text()) {
    trace_line(fmt::format("{} restart {} inc {}", elapsed_us(), id, node_ref.incarnation_));
  }
  trace_mix(0x4e57);
  trace_mix(id.value);
}

void SimNetwork::pause(NodeId id) {
  SimTransport& node_ref = at(index_of(id));
  if (node_ref.crashed_ || node_ref.paused_) return;
  node_ref.paused_ = true;
  if (trace_wants_text()) trace_line(fmt::format("{} pause {}", elapsed_us(), id));
  trace_mix(0x9a05);
  trace_mix(id.value);
}

void SimNetwork::resume(NodeId id) {
  const std::uint32_t index = index_of(id);
  SimTransport& node_ref = at(index);
  if (!node_ref.paused_) return;
  node_ref.paused_ = false;
  if (trace_wants_text()) trace_line(fmt::format("{} resume {}", elapsed_us(), id));
  trace_mix(0x4e5a);
  trace_mix(id.value);
  release_links_of(index);
  for (const auto& [task_index, generation] : node_ref.held_timers_) {
    if (tasks_[task_index].live && tasks_[task_index].generation == generation) {
      schedule_task(task_index, now_us());
    }
  }
  node_ref.held_timers_.clear();
}

void SimNetwork::release_links_of(std::uint32_t index) {
  for (std::uint32_t other = 0; other < nodes_.size(); ++other) {
    if (other == index) continue;
    for (Link* released : {&link(index, other), &link(other, index)}) {
      if (blocked(*released)) continue;
      retime_after_hold(*released);
      ensure_wakeup(*released);
    }
  }
}

// Held packets whose time has passed depart again with a fresh delay; the queue stays FIFO
// (due times non-decreasing).
void SimNetwork::retime_after_hold(Link& held) {
  std::uint64_t previous_us = now_us();
  for (Packet& packet : held.queue) {
    if (packet.due_us <= now_us()) packet.due_us = now_us() + draw_delay_us(packet.length);
    packet.due_us = std::max(packet.due_us, previous_us);
    previous_us = packet.due_us;
  }
  held.last_due_us = std::max(held.last_due_us, previous_us);
}

void SimNetwork::set_cut(std::uint32_t first, std::uint32_t second, bool cut) {
  SQUALL_ASSERT(first != second, "partition of a node from itself");
  // The lower index's link carries the pair's cut epoch.
  const std::uint32_t a = std::min(first, second);
  const std::uint32_t b = std::max(first, second);
  Link& forward = link(a, b);
  Link& backward = link(b, a);
  if (forward.cut == cut) return;
  forward.cut = cut;
  backward.cut = cut;
  if (trace_wants_text()) {
    trace_line(fmt::format("{} {} {}-{}", elapsed_us(), cut ? "partition" : "heal",
                           at(a).self(), at(b).self()));
  }
  trace_mix(cut ? 0xc07 : 0x4ea1);
  trace_mix(static_cast<std::uint64_t>(a) << 32 | b);
  if (!cut) {
    for (Link* healed : {&forward, &backward}) {
      if (blocked(*healed)) continue;
      retime_after_hold(*healed);
      ensure_wakeup(*healed);
    }
    return;
  }
  ++forward.cut_epoch;
  if (options_.partition_timeout_us == 0) return;
  const std::uint32_t index = allocate_task();
  sim_detail::Task& task = tasks_[index];
  task.kind = TaskKind::partition_timeout;
  task.first = a;
  task.second = b;
  task.epoch = forward.cut_epoch;
  schedule_task(index, now_us() + options_.partition_timeout_us);
}

void SimNetwork::partition(NodeId a, NodeId b) { set_cut(index_of(a), index_of(b), true); }

void SimNetwork::heal(NodeId a, NodeId b) { set_cut(index_of(a), index_of(b), false); }

void SimNetwork::partition_groups(std::span<const std::vector<NodeId>> groups) {
  constexpr std::size_t kUngrouped = static_cast<std::size_t>(-1);
  std::vector<std::size_t> group_of(nodes_.size(), kUngrouped);
  for (std::size_t group = 0; group < groups.size(); ++group) {
    for (const NodeId id : groups[group]) group_of[index_of(id)] = group;
  }
  for (std::uint32_t a = 0; a < nodes_.size(); ++a) {
    for (std::uint32_t b = a + 1; b < nodes_.size(); ++b) {
      if (group_of[a] == kUngrouped || group_of[b] == kUngrouped) continue;
      if (group_of[a] != group_of[b]) set_cut(a, b, true);
    }
  }
}

void SimNetwork::isolate(NodeId id) {
  const std::uint32_t index = index_of(id);
  for (std::uint32_t other = 0; other < nodes_.size(); ++other) {
    if (other != index) set_cut(index, other, true);
  }
}

void SimNetwork::heal_all() {
  for (std::uint32_t a = 0; a < nodes_.size(); ++a) {
    for (std::uint32_t b = a + 1; b < nodes_.size(); ++b) set_cut(a, b, false);
  }
}

bool SimNetwork::is_crashed(NodeId id) const { return nodes_[index_of(id)]->crashed_; }
bool SimNetwork::is_paused(NodeId id) const { return nodes_[index_of(id)]->paused_; }
bool SimNetwork::is_running(NodeId id) const { return nodes_[index_of(id)]->running(); }

bool SimNetwork::is_partitioned(NodeId a, NodeId b) const {
  const std::uint32_t source = index_of(a);
  const std::uint32_t target = index_of(b);
  if (source == target) return false;
  return links_[link_index_[source][target]].cut;
}

}  // namespace squall::fabric
