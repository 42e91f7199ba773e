// A simulated Squall cluster for the deterministic simulation suite: N nodes on one
// SimNetwork, a view with a shard layout, and one OrderedGroup + LogStateMachine per
// (node, shard) replica. Each node has one endpoint shared by all its shard groups (SST
// region 2·shard + 1, RDMC region 2·shard + 2, transport tag and RDMC group id = shard) and
// one HLC on its own, optionally skewed, wall clock. A periodic tick owned by the node's
// endpoint (so it stops while the node is paused) polls the endpoint, offers each event to
// the node's groups, and steps each group — the progress loop of a real node.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "common/clock.hpp"
#include "common/hlc.hpp"
#include "core/ordered_group.hpp"
#include "core/view.hpp"
#include "fabric/sim_network.hpp"
#include "log_state_machine.hpp"

namespace squall::sim {

struct ClusterOptions {
  std::size_t nodes = 3;
  core::ShardLayout layout{.shards = 1, .replicas_per_shard = 3};
  std::uint32_t window = 4;
  std::uint64_t smc_payload_bytes = 128;
  std::uint32_t delivery_window_slots = 0;
  std::size_t send_queue_messages = 16;
  std::uint64_t max_data_per_sender = 0;
  std::uint64_t heartbeat_ms = 1;
  std::uint64_t failure_timeout_ms = 100;
  std::uint64_t tick_us = 50;
  std::uint64_t persist_min_us = 0;
  std::uint64_t persist_max_us = 300;
  std::uint64_t max_clock_skew_us = 0;  // each node's wall clock is offset by up to this
  // Set: updates larger than a slot travel by RDMC (its region is 2, group id = shard).
  std::optional<core::LargeMessageOptions> large;
};

// A wall clock offset from the simulation's clock (a node whose NTP is off).
class OffsetClock final : public Clock {
 public:
  OffsetClock(const Clock& base, std::int64_t offset_us) : base_(base), offset_us_(offset_us) {}
  std::uint64_t wall_us() const override {
    return static_cast<std::uint64_t>(static_cast<std::int64_t>(base_.wall_us()) + offset_us_);
  }
  std::uint64_t monotonic_us() const override { return base_.monotonic_us(); }

 private:
  const Clock& base_;
  std::int64_t offset_us_;
};

struct SimNode {
  SimNode(NodeId node_id, fabric::SimTransport& endpoint, const Clock& base,
          std::int64_t offset_us)
      : id(node_id), transport(&endpoint), clock(base, offset_us), hlc(clock) {}
  NodeId id;
  fabric::SimTransport* transport;
  OffsetClock clock;
  HybridLogicalClock hlc;
  std::vector<std::size_t> replicas;  // indices into Cluster::replicas
  std::uint64_t ticks = 0;
  std::uint64_t unclaimed_events = 0;  // write completions no group recognised
};

struct Replica {
  std::size_t node = 0;
  ShardId shard;
  std::size_t rank = 0;  // sender rank in the shard
  NodeId endpoint;       // the node's id (its endpoint is shared by its shard groups)
  std::unique_ptr<LogStateMachine> machine;
  std::unique_ptr<core::OrderedGroup> group;
  // Workload messages the group has not accepted yet (send() said would_block).
  std::deque<Bytes> backlog;
  // Hash of each accepted message, by sender_index.
  std::vector<std::uint64_t> sent_hashes;
  std::uint64_t would_block = 0;
};

class Cluster {
 public:
  Cluster(fabric::SimOptions sim_options, ClusterOptions options);

  void run_for(std::uint64_t duration_us) { network.run_for(duration_us); }
  // Pauses / resumes every endpoint of a node (SIGSTOP / SIGCONT of the process).
  void pause(std::size_t node);
  void resume(std::size_t node);
  bool paused(std::size_t node) const { return paused_.at(node); }

  std::size_t shards() const { return shard_replicas.size(); }
  Replica& replica(ShardId shard, std::size_t rank) {
    return *replicas[shard_replicas[shard.value][rank]];
  }
  std::size_t shard_size(ShardId shard) const { return shard_replicas[shard.value].size(); }
  // Every accepted message delivered by every replica of its shard, frontier at the last
  // version. Shards in `skip` are left out.
  bool quiescent(const std::vector<ShardId>& skip = {}) const;

  fabric::SimNetwork network;
  ClusterOptions options;
  std::optional<core::View> view;
  std::vector<std::unique_ptr<SimNode>> nodes;
  std::vector<std::unique_ptr<Replica>> replicas;
  std::vector<std::vector<std::size_t>> shard_replicas;  // shard -> replica index by rank
  // Called on every tick of a replica, before its step (workloads feed backlogs here).
  std::function<void(Replica&)> on_tick;
  // Called after every step of a replica (invariant checks).
  std::function<void(Replica&)> after_step;
  // Called when a replica's persistence frontier moves (OrderedGroupCallbacks::persisted).
  std::function<void(Replica&, Version)> on_persisted;
  // Called when a group reports a suspicion (`suspect` set) or a local failure.
  std::function<void(Replica&, std::optional<NodeId> suspect, const std::string&)> on_trouble;

  // Broken invariants found by the harness or a checker, in order (the first few only), so a
  // run is checked without a test assertion per event.
  void violation(std::string what);
  const std::vector<std::string>& violations() const { return violations_; }

 private:
  void build_replica(std::size_t node, ShardId shard, const std::vector<NodeId>& members);
  void connect(std::size_t node);
  void tick(std::size_t node);
  void feed(Replica& replica);
  void arm_tick(std::size_t node);

  std::vector<bool> paused_;
  std::vector<std::string> violations_;
};

}  // namespace squall::sim
