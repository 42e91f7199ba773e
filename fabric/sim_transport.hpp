// SimTransport: one node's endpoint on a SimNetwork (fabric/sim_network.hpp).
//
// Implements the Transport contract in one thread and simulated time: posting an operation
// only queues it on the simulated link; bytes land, messages arrive and events appear only
// while SimNetwork::step() runs. poll() merely drains events already delivered to this node.
// A SimTransport is created and owned by its SimNetwork and lives as long as it; a crashed and
// restarted node keeps the same SimTransport object (with fresh state), so references stay
// valid.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <span>
#include <vector>

#include "fabric/sim_detail.hpp"
#include "fabric/transport.hpp"

namespace squall::fabric {

class SimNetwork;

class SimTransport final : public Transport {
 public:
  SimTransport(SimNetwork& network, NodeId id, std::uint32_t index);

  // ---- Transport ----
  NodeId self() const override { return id_; }
  // Errors: invalid_argument (empty, duplicate id, or after the first add_peer()),
  // unavailable (node crashed).
  Status register_region(RegionId id, std::span<std::byte> memory) override;
  // `address` is ignored: peers are found by NodeId. Errors: not_found (no such node in the
  // network), invalid_argument (self), already_exists (connecting or connected), unavailable
  // (this node is crashed or paused).
  Status add_peer(NodeId peer, const PeerAddress& address) override;
  void remove_peer(NodeId peer) override;
  Status write(const WriteRequest& request) override;
  Status send(NodeId peer, std::span<const std::byte> message) override;
  // Returns 0 while this node is crashed or paused (a stopped process polls nothing).
  std::size_t poll(std::vector<Event>& out, std::size_t max_events) override;
  std::size_t max_message_bytes() const override;

  // ---- Simulation only ----
  SimNetwork& network() { return network_; }
  // Events delivered and not yet polled.
  std::size_t pending_events() const { return inbox_.size(); }
  // True when bytes landed in a region or an event was queued since the last call; clears the
  // flag. Lets a harness run only the nodes that something happened to (silent writes change
  // memory without producing an event).
  bool take_activity();
  bool crashed() const { return crashed_; }
  bool paused() const { return paused_; }
  bool running() const { return !crashed_ && !paused_; }
  // Starts at 0; incremented by every SimNetwork::restart() of this node.
  std::uint32_t incarnation() const { return incarnation_; }
  bool connected(NodeId peer) const;
  // Signalled writes to `peer` posted and not yet completed.
  std::size_t outstanding_writes(NodeId peer) const;

 private:
  friend class SimNetwork;

  struct Region {
    RegionId id = 0;
    std::span<std::byte> memory;
  };

  const Region* find_region(RegionId id) const;
  // Range check of [offset, offset + length) inside region `id` (overflow-safe).
  Status check_local_range(RegionId id, std::uint64_t offset, std::uint64_t length) const;
  Status check_sendable(NodeId peer, std::uint32_t& peer_index) const;
  void push_event(Event&& event);
  void reset_after_crash();

  SimNetwork& network_;
  NodeId id_;
  std::uint32_t index_;
  std::uint32_t incarnation_ = 0;
  bool crashed_ = false;
  bool paused_ = false;
  bool activity_ = false;
  bool peers_added_ = false;
  bool crash_silent_ = false;  // the current crash is a black hole (CrashDetection::silent)
  std::vector<Region> regions_;
  std::vector<sim_detail::PeerState> peers_;  // indexed by node index in the network
  std::deque<Event> inbox_;
  // Timers (task index, generation) that came due while this node was paused.
  std::vector<std::pair<std::uint32_t, std::uint32_t>> held_timers_;
};

}  // namespace squall::fabric
