#include "fabric/sim_transport.hpp"

#include <algorithm>
#include <utility>

#include <fmt/format.h>

#include "fabric/sim_network.hpp"

namespace squall::fabric {

using sim_detail::PeerStateKind;

namespace {

bool range_fits(std::uint64_t size, std::uint64_t offset, std::uint64_t length) {
  return offset <= size && length <= size - offset;
}

}  // namespace

SimTransport::SimTransport(SimNetwork& network, NodeId id, std::uint32_t index)
    : network_(network), id_(id), index_(index) {}

Status SimTransport::register_region(RegionId id, std::span<std::byte> memory) {
  if (crashed_) return unavailable("node is crashed");
  if (peers_added_) {
    return invalid_argument("regions must be registered before the first add_peer()");
  }
  if (memory.empty()) return invalid_argument(fmt::format("region {} is empty", id));
  if (find_region(id) != nullptr) {
    return invalid_argument(fmt::format("region {} is already registered", id));
  }
  regions_.push_back(Region{id, memory});
  return Status::ok();
}

Status SimTransport::add_peer(NodeId peer, const PeerAddress& /*address*/) {
  if (!running()) return unavailable("node is not running");
  if (!network_.has_node(peer)) return not_found(fmt::format("no node {} in the network", peer));
  if (peer == id_) return invalid_argument("add_peer(self)");
  const std::uint32_t peer_index = network_.index_of(peer);
  sim_detail::PeerState& state = peers_[peer_index];
  if (state.state == PeerStateKind::connecting || state.state == PeerStateKind::connected) {
    return Status(Code::already_exists, fmt::format("peer {} already added", peer));
  }
  peers_added_ = true;
  state.state = PeerStateKind::connecting;
  state.outstanding.clear();
  network_.post_hello(index_, peer_index);
  if (state.hello_stored) {
    // The peer asked first; our hello (just queued) completes its side.
    state.hello_stored = false;
    state.state = PeerStateKind::connected;
    state.remote_incarnation = state.stored_incarnation;
    state.remote_regions.clear();
    for (const Region& region : network_.at(peer_index).regions_) {
      state.remote_regions.emplace_back(region.id, region.memory.size());
    }
    Event event;
    event.kind = EventKind::peer_connected;
    event.peer = peer;
    push_event(std::move(event));
  }
  return Status::ok();
}

void SimTransport::remove_peer(NodeId peer) {
  if (crashed_ || !network_.has_node(peer)) return;
  const std::uint32_t peer_index = network_.index_of(peer);
  sim_detail::PeerState& state = peers_[peer_index];
  const bool active =
      state.state == PeerStateKind::connecting || state.state == PeerStateKind::connected;
  if (!active && !state.hello_stored) return;
  const std::uint32_t target_incarnation = state.state == PeerStateKind::connected
                                               ? state.remote_incarnation
                                               : sim_detail::kAnyIncarnation;
  state.hello_stored = false;
  if (active) {
    network_.fail_connection(index_, peer_index,
                             Status(Code::aborted, "peer removed by local request"));
  }
  network_.post_close(index_, peer_index, target_incarnation);
}

Status SimTransport::check_sendable(NodeId peer, std::uint32_t& peer_index) const {
  if (!running()) return unavailable("node is not running");
  if (!network_.has_node(peer)) return invalid_argument(fmt::format("unknown peer {}", peer));
  peer_index = network_.index_of(peer);
  if (peers_[peer_index].state != PeerStateKind::connected) {
    return unavailable("peer not connected");
  }
  const sim_detail::Link& link = network_.link(index_, peer_index);
  if (link.operations_in_flight >= network_.options().send_queue_depth) {
    return Status(Code::would_block, "queue full");
  }
  return Status::ok();
}

Status SimTransport::write(const WriteRequest& request) {
  std::uint32_t peer_index = 0;
  Status status = check_sendable(request.peer, peer_index);
  // Range errors are reported even when the queue is full: they are the caller's bug.
  if (!status.is_ok() && status.code() != Code::would_block) return status;
  SQUALL_TRY(check_local_range(request.local_region, request.local_offset, request.length));
  sim_detail::PeerState& state = peers_[peer_index];
  const auto remote = std::find_if(state.remote_regions.begin(), state.remote_regions.end(),
                                   [&](const auto& entry) {
                                     return entry.first == request.remote_region;
                                   });
  if (remote == state.remote_regions.end()) {
    return invalid_argument(fmt::format("peer {} has no region {}", request.peer,
                                        request.remote_region));
  }
  if (!range_fits(remote->second, request.remote_offset, request.length)) {
    return invalid_argument(fmt::format("remote range [{}, +{}) outside region {} of {} bytes",
                                        request.remote_offset, request.length,
                                        request.remote_region, remote->second));
  }
  if (!status.is_ok()) return status;
  const Region* local = find_region(request.local_region);
  network_.post_write(index_, peer_index, request, state.remote_incarnation,
                      local->memory.subspan(request.local_offset, request.length));
  if (request.context != 0) state.outstanding.push_back(request.context);
  return Status::ok();
}

Status SimTransport::send(NodeId peer, std::span<const std::byte> message) {
  if (message.size() > max_message_bytes()) {
    return invalid_argument(fmt::format("message of {} bytes exceeds the maximum of {}",
                                        message.size(), max_message_bytes()));
  }
  std::uint32_t peer_index = 0;
  SQUALL_TRY(check_sendable(peer, peer_index));
  network_.post_message(index_, peer_index, peers_[peer_index].remote_incarnation, message);
  return Status::ok();
}

std::size_t SimTransport::poll(std::vector<Event>& out, std::size_t max_events) {
  if (!running()) return 0;
  std::size_t count = 0;
  while (count < max_events && !inbox_.empty()) {
    out.push_back(std::move(inbox_.front()));
    inbox_.pop_front();
    ++count;
  }
  return count;
}

std::size_t SimTransport::max_message_bytes() const {
  return network_.options().max_message_bytes;
}

bool SimTransport::take_activity() { return std::exchange(activity_, false); }

bool SimTransport::connected(NodeId peer) const {
  if (!network_.has_node(peer)) return false;
  return peers_[network_.index_of(peer)].state == PeerStateKind::connected;
}

std::size_t SimTransport::outstanding_writes(NodeId peer) const {
  if (!network_.has_node(peer)) return 0;
  return peers_[network_.index_of(peer)].outstanding.size();
}

const SimTransport::Region* SimTransport::find_region(RegionId id) const {
  for (const Region& region : regions_) {
    if (region.id == id) return &region;
  }
  return nullptr;
}

Status SimTransport::check_local_range(RegionId id, std::uint64_t offset,
                                       std::uint64_t length) const {
  const Region* region = find_region(id);
  if (region == nullptr) return invalid_argument(fmt::format("no local region {}", id));
  if (!range_fits(region->memory.size(), offset, length)) {
    return invalid_argument(fmt::format("local range [{}, +{}) outside region {} of {} bytes",
                                        offset, length, id, region->memory.size()));
  }
  return Status::ok();
}

void SimTransport::push_event(Event&& event) {
  SQUALL_ASSERT(!crashed_, "event for crashed node {}", id_);
  inbox_.push_back(std::move(event));
  activity_ = true;
}

void SimTransport::reset_after_crash() {
  regions_.clear();
  for (sim_detail::PeerState& peer : peers_) peer = sim_detail::PeerState{};
  inbox_.clear();
  held_timers_.clear();
  peers_added_ = false;
  activity_ = false;
  paused_ = false;
}

}  // namespace squall::fabric
