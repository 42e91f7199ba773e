// SimNetwork: posting packets onto links and delivering them at the far end.
#include <algorithm>
#include <cstring>
#include <utility>

#include <fmt/format.h>

#include "fabric/sim_network.hpp"

namespace squall::fabric {

using sim_detail::PacketKind;
using sim_detail::PeerStateKind;

namespace {

// Arena bytes already consumed are compacted away once they exceed this and half the arena.
constexpr std::uint64_t kArenaCompactBytes = 64 * 1024;

bool counts_as_operation(PacketKind kind) {
  return kind == PacketKind::write || kind == PacketKind::message;
}

std::string_view kind_name(PacketKind kind) {
  switch (kind) {
    case PacketKind::hello: return "hello";
    case PacketKind::close: return "close";
    case PacketKind::write: return "write";
    case PacketKind::message: return "message";
    case PacketKind::ack: return "ack";
  }
  return "?";
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Posting

std::uint64_t SimNetwork::draw_delay_us(std::uint64_t payload_bytes) {
  std::uint64_t delay_us = random_.between(options_.min_delay_us, options_.max_delay_us);
  if (random_.chance_per_million(options_.delay_spike_per_million)) {
    delay_us += options_.delay_spike_us;
  }
  if (options_.bytes_per_us != 0) {
    delay_us += (payload_bytes + options_.bytes_per_us - 1) / options_.bytes_per_us;
  }
  return delay_us;
}

void SimNetwork::enqueue(Link& target_link, Packet packet, std::span<const std::byte> payload) {
  packet.payload_position = target_link.arena_base + target_link.arena.size();
  target_link.arena.insert(target_link.arena.end(), payload.begin(), payload.end());
  if (counts_as_operation(packet.kind)) ++target_link.operations_in_flight;
  packet.due_us = std::max(target_link.last_due_us, now_us() + draw_delay_us(payload.size()));
  target_link.last_due_us = packet.due_us;
  target_link.queue.push_back(packet);
  ensure_wakeup(target_link);
}

void SimNetwork::post_hello(std::uint32_t source, std::uint32_t target) {
  Packet packet;
  packet.kind = PacketKind::hello;
  packet.source_incarnation = at(source).incarnation_;
  enqueue(link(source, target), packet, {});
}

void SimNetwork::post_close(std::uint32_t source, std::uint32_t target,
                            std::uint32_t target_incarnation) {
  Packet packet;
  packet.kind = PacketKind::close;
  packet.source_incarnation = at(source).incarnation_;
  packet.target_incarnation = target_incarnation;
  enqueue(link(source, target), packet, {});
}

void SimNetwork::post_write(std::uint32_t source, std::uint32_t target,
                            const WriteRequest& request, std::uint32_t target_incarnation,
                            std::span<const std::byte> bytes) {
  Packet packet;
  packet.kind = PacketKind::write;
  packet.source_incarnation = at(source).incarnation_;
  packet.target_incarnation = target_incarnation;
  packet.region = request.remote_region;
  packet.offset = request.remote_offset;
  packet.length = request.length;
  packet.context = request.context;
  packet.has_immediate = request.immediate.has_value();
  packet.immediate = request.immediate.value_or(0);
  decide_torn(packet);
  Link& outgoing = link(source, target);
  if (outgoing.late_reads || random_.chance_per_million(options_.late_read_per_million)) {
    packet.late_source = bytes.data();
    outgoing.late_reads = true;
  }
  enqueue(outgoing, packet, bytes);  // the snapshot is taken here, at post time
}

void SimNetwork::post_message(std::uint32_t source, std::uint32_t target,
                              std::uint32_t target_incarnation,
                              std::span<const std::byte> bytes) {
  Packet packet;
  packet.kind = PacketKind::message;
  packet.source_incarnation = at(source).incarnation_;
  packet.target_incarnation = target_incarnation;
  packet.length = bytes.size();
  enqueue(link(source, target), packet, bytes);
}

void SimNetwork::post_ack(std::uint32_t source, std::uint32_t target,
                          std::uint32_t target_incarnation, std::uint64_t context) {
  Packet packet;
  packet.kind = PacketKind::ack;
  packet.source_incarnation = at(source).incarnation_;
  packet.target_incarnation = target_incarnation;
  packet.context = context;
  enqueue(link(source, target), packet, {});
}

// A torn write splits at an 8-byte-aligned region offset strictly inside the write, so no
// aligned word is ever split.
void SimNetwork::decide_torn(Packet& packet) {
  if (packet.length < 16 || !random_.chance_per_million(options_.torn_write_per_million)) return;
  const std::uint64_t first = (packet.offset / 8 + 1) * 8;
  const std::uint64_t last = ((packet.offset + packet.length - 1) / 8) * 8;
  if (first > last) return;
  const std::uint64_t choices = (last - first) / 8 + 1;
  packet.torn_split = first + 8 * random_.below(choices) - packet.offset;
  packet.torn_low_first = random_.below(2) == 0;
}

// ---------------------------------------------------------------------------------------------
// Delivery

std::span<const std::byte> SimNetwork::payload_of(const Link& source_link,
                                                  const Packet& packet) const {
  SQUALL_ASSERT(packet.payload_position >= source_link.arena_base, "payload compacted away");
  const std::uint64_t start = packet.payload_position - source_link.arena_base;
  SQUALL_ASSERT(start + packet.length <= source_link.arena.size(), "payload outside arena");
  return std::span<const std::byte>(source_link.arena).subspan(start, packet.length);
}

std::span<const std::byte> SimNetwork::write_source(const Link& source_link,
                                                    const Packet& packet) const {
  const SimTransport& writer = *nodes_[source_link.source];
  const bool source_alive =
      !writer.crashed_ && writer.incarnation_ == packet.source_incarnation;
  if (packet.late_source != nullptr && source_alive) return {packet.late_source, packet.length};
  return payload_of(source_link, packet);
}

bool SimNetwork::accepts(std::uint32_t target, std::uint32_t source,
                         const Packet& packet) const {
  const SimTransport& receiver = *nodes_[target];
  if (receiver.crashed_ || packet.target_incarnation != receiver.incarnation_) return false;
  const sim_detail::PeerState& state = receiver.peers_[source];
  return state.state == PeerStateKind::connected &&
         state.remote_incarnation == packet.source_incarnation;
}

void SimNetwork::reset_arena_if_empty(Link& target_link) {
  if (!target_link.queue.empty()) return;
  target_link.late_reads = false;
  target_link.arena_base += target_link.arena.size();
  target_link.arena.clear();
}

void SimNetwork::pop_head(Link& source_link) {
  if (counts_as_operation(source_link.queue.front().kind)) {
    SQUALL_ASSERT(source_link.operations_in_flight > 0, "operation count underflow");
    --source_link.operations_in_flight;
  }
  source_link.queue.pop_front();
  if (source_link.queue.empty()) {
    reset_arena_if_empty(source_link);
    return;
  }
  const std::uint64_t consumed =
      source_link.queue.front().payload_position - source_link.arena_base;
  if (consumed >= kArenaCompactBytes && consumed * 2 >= source_link.arena.size()) {
    source_link.arena.erase(source_link.arena.begin(),
                            source_link.arena.begin() + static_cast<std::ptrdiff_t>(consumed));
    source_link.arena_base += consumed;
  }
}

bool SimNetwork::deliver_head(std::uint32_t link_index) {
  Link& source_link = links_[link_index];
  Packet& packet = source_link.queue.front();
  trace_mix(static_cast<std::uint64_t>(packet.kind) << 48 |
            static_cast<std::uint64_t>(source_link.source) << 24 | source_link.target);
  switch (packet.kind) {
    case PacketKind::hello: deliver_hello(source_link, packet); break;
    case PacketKind::close: deliver_close(source_link, packet); break;
    case PacketKind::message: deliver_message(source_link, packet); break;
    case PacketKind::ack: deliver_ack(source_link, packet); break;
    case PacketKind::write:
      if (!deliver_write(source_link, packet)) {
        ensure_wakeup(source_link);  // first piece of a torn write: the head stays
        return true;
      }
      break;
  }
  pop_head(source_link);
  ensure_wakeup(source_link);
  return true;
}

// Takes the packet by value: failing the old connection rewrites this link's queue.
void SimNetwork::deliver_hello(Link& source_link, const Packet packet) {
  SimTransport& receiver = at(source_link.target);
  const NodeId sender = at(source_link.source).self();
  if (trace_wants_text()) {
    trace_line(fmt::format("{} hello {}->{} inc {}", elapsed_us(), sender, receiver.self(),
                           packet.source_incarnation));
  }
  trace_mix(packet.source_incarnation);
  if (receiver.crashed_) {
    ++stats_.packets_dropped;
    // Connection refused by a dead host: the dialer finds out like a peer of a crash would.
    if (!receiver.crash_silent_) schedule_detection(source_link.source, source_link.target);
    return;
  }
  sim_detail::PeerState& state = receiver.peers_[source_link.source];
  if (state.state == PeerStateKind::connected) {
    // The peer dialled again, so the old connection is dead; it must be re-added.
    fail_connection(source_link.target, source_link.source,
                    unavailable("peer reconnected: old connection reset"));
  }
  if (state.state != PeerStateKind::connecting) {
    state.hello_stored = true;
    state.stored_incarnation = packet.source_incarnation;
    return;
  }
  state.state = PeerStateKind::connected;
  state.remote_incarnation = packet.source_incarnation;
  state.remote_regions.clear();
  for (const auto& region : at(source_link.source).regions_) {
    state.remote_regions.emplace_back(region.id, region.memory.size());
  }
  Event event;
  event.kind = EventKind::peer_connected;
  event.peer = sender;
  receiver.push_event(std::move(event));
}

void SimNetwork::deliver_close(Link& source_link, const Packet packet) {
  SimTransport& receiver = at(source_link.target);
  if (trace_wants_text()) {
    trace_line(fmt::format("{} close {}->{}", elapsed_us(), at(source_link.source).self(),
                           receiver.self()));
  }
  const bool addressed_here = packet.target_incarnation == sim_detail::kAnyIncarnation ||
                              packet.target_incarnation == receiver.incarnation_;
  if (receiver.crashed_ || !addressed_here) {
    ++stats_.packets_dropped;
    return;
  }
  sim_detail::PeerState& state = receiver.peers_[source_link.source];
  state.hello_stored = false;
  const bool stale = state.state == PeerStateKind::connected &&
                     state.remote_incarnation != packet.source_incarnation;
  if (stale) return;
  if (state.state == PeerStateKind::connecting || state.state == PeerStateKind::connected) {
    fail_connection(source_link.target, source_link.source,
                    unavailable("connection closed by peer"));
  }
}

// Returns false when only the first piece of a torn write was applied.
bool SimNetwork::deliver_write(Link& source_link, Packet& packet) {
  const std::uint32_t source = source_link.source;
  const std::uint32_t target = source_link.target;
  trace_mix(packet.offset << 32 ^ packet.length);
  if (!accepts(target, source, packet)) {
    trace_drop(packet, source, target);
    return true;
  }
  SimTransport& receiver = at(target);
  const SimTransport::Region* region = receiver.find_region(packet.region);
  SQUALL_ASSERT(region != nullptr && packet.offset + packet.length <= region->memory.size(),
                "write outside region {} (validated at post time)", packet.region);
  const std::span<const std::byte> bytes = write_source(source_link, packet);
  std::byte* destination = region->memory.data() + packet.offset;
  receiver.activity_ = true;
  const std::uint64_t split = packet.torn_split;
  if (split == 0) {
    if (packet.length != 0) std::memcpy(destination, bytes.data(), packet.length);
    finish_write(source_link, packet, bytes);
    return true;
  }
  // Torn: the first piece now, the other at a later step.
  const bool low_now = packet.torn_low_first == (packet.torn_stage == 0);
  const std::uint64_t begin = low_now ? 0 : split;
  const std::uint64_t end = low_now ? split : packet.length;
  std::memcpy(destination + begin, bytes.data() + begin, end - begin);
  if (packet.torn_stage == 1) {
    finish_write(source_link, packet, bytes);
    return true;
  }
  packet.torn_stage = 1;
  const std::uint64_t gap_us =
      random_.between(1, std::max<std::uint64_t>(1, options_.min_delay_us));
  packet.due_us = now_us() + gap_us;
  source_link.last_due_us = std::max(source_link.last_due_us, packet.due_us);
  if (trace_wants_text()) {
    trace_line(fmt::format("{} write-piece {}->{} r{}+{} [{}, {})", elapsed_us(),
                           at(source).self(), receiver.self(), packet.region, packet.offset,
                           begin, end));
  }
  return false;
}

// The write is wholly visible: count it, trace it, raise remote_write, send the ack.
void SimNetwork::finish_write(Link& source_link, const Packet& packet,
                              std::span<const std::byte> bytes) {
  const std::uint32_t source = source_link.source;
  const std::uint32_t target = source_link.target;
  SimTransport& receiver = at(target);
  ++stats_.writes_delivered;
  stats_.bytes_delivered += packet.length;
  trace_bytes(bytes);
  trace_mix(packet.immediate ^ packet.context << 1 ^ (packet.has_immediate ? 1 : 0));
  if (trace_wants_text()) {
    trace_line(fmt::format("{} write {}->{} r{}+{} len {}{}{}", elapsed_us(), at(source).self(),
                           receiver.self(), packet.region, packet.offset, packet.length,
                           packet.has_immediate ? fmt::format(" imm {}", packet.immediate) : "",
                           packet.context != 0 ? fmt::format(" ctx {}", packet.context) : ""));
  }
  if (packet.has_immediate) {
    Event event;
    event.kind = EventKind::remote_write;
    event.peer = at(source).self();
    event.region = packet.region;
    event.offset = packet.offset;
    event.length = packet.length;
    event.immediate = packet.immediate;
    receiver.push_event(std::move(event));
  }
  if (packet.context != 0) post_ack(target, source, packet.source_incarnation, packet.context);
}

void SimNetwork::deliver_message(Link& source_link, const Packet& packet) {
  const std::uint32_t source = source_link.source;
  const std::uint32_t target = source_link.target;
  if (!accepts(target, source, packet)) {
    trace_drop(packet, source, target);
    return;
  }
  const std::span<const std::byte> bytes = payload_of(source_link, packet);
  ++stats_.messages_delivered;
  stats_.bytes_delivered += packet.length;
  trace_bytes(bytes);
  if (trace_wants_text()) {
    trace_line(fmt::format("{} message {}->{} len {}", elapsed_us(), at(source).self(),
                           at(target).self(), packet.length));
  }
  Event event;
  event.kind = EventKind::message;
  event.peer = at(source).self();
  event.payload.assign(bytes.begin(), bytes.end());
  at(target).push_event(std::move(event));
}

void SimNetwork::deliver_ack(Link& source_link, const Packet& packet) {
  // An ack travels from the write's target back to its source (the receiver here).
  const std::uint32_t source = source_link.source;
  const std::uint32_t target = source_link.target;
  trace_mix(packet.context);
  if (!accepts(target, source, packet)) {
    trace_drop(packet, source, target);
    return;
  }
  SimTransport& receiver = at(target);
  sim_detail::PeerState& state = receiver.peers_[source];
  SQUALL_ASSERT(!state.outstanding.empty() && state.outstanding.front() == packet.context,
                "ack {} out of order at node {}", packet.context, receiver.self());
  state.outstanding.pop_front();
  ++stats_.completions_delivered;
  if (trace_wants_text()) {
    trace_line(fmt::format("{} completion {} ctx {} (peer {})", elapsed_us(), receiver.self(),
                           packet.context, at(source).self()));
  }
  Event event;
  event.kind = EventKind::write_completed;
  event.peer = at(source).self();
  event.context = packet.context;
  receiver.push_event(std::move(event));
}

void SimNetwork::trace_drop(const Packet& packet, std::uint32_t source, std::uint32_t target) {
  ++stats_.packets_dropped;
  trace_mix(0xd509);
  if (trace_wants_text()) {
    trace_line(fmt::format("{} drop {} {}->{}", elapsed_us(), kind_name(packet.kind),
                           at(source).self(), at(target).self()));
  }
}

// Keeps connection set-up and tear-down packets (hello, close), which must survive for the
// handshake to stay symmetric, and drops data: it belongs to a connection that has failed.
void SimNetwork::drop_data(Link& target_link) {
  if (target_link.queue.empty()) return;
  std::deque<Packet> kept;
  for (const Packet& packet : target_link.queue) {
    if (packet.kind == PacketKind::hello || packet.kind == PacketKind::close) {
      kept.push_back(packet);
    } else {
      ++stats_.packets_dropped;
    }
  }
  target_link.queue.swap(kept);
  target_link.operations_in_flight = 0;
  reset_arena_if_empty(target_link);
}

void SimNetwork::purge(Link& target_link) {
  stats_.packets_dropped += target_link.queue.size();
  target_link.queue.clear();
  target_link.operations_in_flight = 0;
  target_link.scheduled_sequence = 0;
  reset_arena_if_empty(target_link);
}

void SimNetwork::keep_prefix(Link& target_link, std::size_t keep) {
  if (keep >= target_link.queue.size()) return;
  stats_.packets_dropped += target_link.queue.size() - keep;
  target_link.queue.resize(keep);
  std::uint32_t operations = 0;
  for (const Packet& packet : target_link.queue) {
    if (counts_as_operation(packet.kind)) ++operations;
  }
  target_link.operations_in_flight = operations;
  if (target_link.queue.empty()) target_link.scheduled_sequence = 0;
  reset_arena_if_empty(target_link);
}

}  // namespace squall::fabric
