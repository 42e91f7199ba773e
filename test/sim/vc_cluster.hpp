// VcCluster: whole clusters with view changes in one thread — N nodes, each running a
// core::ViewManager over the simulated fabric, a LogStateMachine per shard, a steady random
// workload, and faults (crashes of nodes, partitions) at chosen times.
//
// Each node gets a fresh endpoint per view (endpoint id = view * 100 + node) behind an
// EpochTransport that shows peers by their node ids, so groups and memberships see the same
// NodeIds in every view. Crashing a node crashes all its endpoints (and any created later);
// a partition cuts every endpoint pair across the sides (also those created later).
// check() verifies the invariants of docs/core.md, "View change" (simulation).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/hlc.hpp"
#include "core/restart.hpp"
#include "core/view_change.hpp"
#include "fabric/sim_network.hpp"
#include "log_state_machine.hpp"

namespace squall::sim {

struct VcOptions {
  std::size_t nodes = 5;    // members of the first view (ids 1..nodes)
  std::size_t joiners = 0;  // further nodes (ids nodes+1..), outside until request_join()
  core::ShardLayout layout{.shards = 1, .replicas_per_shard = 5};
  std::uint32_t window = 4;
  std::uint64_t smc_payload_bytes = 128;
  std::uint64_t heartbeat_ms = 1;
  std::uint64_t failure_timeout_ms = 30;
  std::uint64_t tick_us = 50;
  std::uint64_t persist_max_us = 500;
  std::uint32_t send_percent = 20;  // chance per tick and shard that a node sends an update
  bool majority_rule = true;
  // Set: updates larger than a slot travel by RDMC (region 2·shard + 2, group id = shard);
  // large_percent of the updates are large.
  std::optional<core::LargeMessageOptions> large;
  std::uint32_t large_percent = 0;
  std::size_t compact_keep = 0;  // > 0: replicas keep only this many log entries
};

class VcCluster;

// A view's endpoint of one node, showing peers by node id.
class EpochTransport final : public fabric::Transport {
 public:
  EpochTransport(VcCluster& cluster, fabric::SimTransport& base, std::uint32_t view)
      : cluster_(cluster), base_(base), view_(view) {}
  NodeId self() const override;
  Status register_region(fabric::RegionId id, std::span<std::byte> memory) override {
    return base_.register_region(id, memory);
  }
  Status add_peer(NodeId peer, const fabric::PeerAddress& address) override;
  void remove_peer(NodeId peer) override;
  Status write(const fabric::WriteRequest& request) override;
  Status send(NodeId peer, std::span<const std::byte> message) override;
  std::size_t poll(std::vector<fabric::Event>& out, std::size_t max_events) override;
  std::size_t max_message_bytes() const override { return base_.max_message_bytes(); }

 private:
  VcCluster& cluster_;
  fabric::SimTransport& base_;
  std::uint32_t view_;
};

// One delivered update as the checker compares it.
struct VcDelivery {
  Version version = 0;
  HlcTimestamp timestamp = 0;
  NodeId sender;
  std::uint64_t sender_index = 0;
  std::uint64_t payload_hash = 0;
  bool operator==(const VcDelivery&) const = default;
};

class VcNode final : public core::ViewHost {
 public:
  VcNode(VcCluster& cluster, NodeId id);

  Result<fabric::Transport*> transport_for(const core::View& view) override;
  core::StateMachine& state_machine(ShardId shard) override;
  void configure(core::OrderedGroupOptions& options) override;
  void installed(const core::View& view) override;
  void retire(ViewId view) override;
  void stopped(const std::string& reason) override;
  void persisted(ShardId shard, Version frontier) override;

  void tick();
  void try_join();
  LogStateMachine& machine(ShardId shard);
  core::Member member() const;

  VcCluster& cluster;
  NodeId id;
  HybridLogicalClock hlc;
  core::MemoryViewLog log;
  std::unique_ptr<core::ViewManager> manager;
  std::map<std::uint32_t, std::unique_ptr<LogStateMachine>> machines;  // by shard
  std::map<std::uint32_t, std::unique_ptr<EpochTransport>> transports;  // by view id
  // (view id, members) of every view installed, in order.
  std::vector<std::pair<std::uint32_t, std::vector<NodeId>>> installed_views;
  // By shard: the first view in which this node served it (1 = an original replica; later =
  // a replacement, which starts empty: state transfer is later work).
  std::map<std::uint32_t, std::uint32_t> first_view_of_shard;
  std::map<std::uint32_t, Version> frontier;  // by shard: highest reported
  std::map<std::uint32_t, Version> acked_upto;  // by shard: log versions already marked
  std::optional<std::string> stop_reason;
  bool wants_join = false;            // asked to join (and not admitted yet)
  bool rejoin_when_stopped = false;   // a stopped incarnation restarts and joins again
  std::uint64_t next_join_try_us = 0;
  std::uint32_t incarnations = 0;
  bool crashed = false;
  bool paused = false;
  std::uint64_t sent = 0;
  std::uint64_t large_sent = 0;  // accepted updates larger than a slot
};

class VcCluster {
 public:
  VcCluster(fabric::SimOptions sim, VcOptions options);

  // The endpoint of `node` for `view`, created on first use (crashed if the node is).
  fabric::SimTransport& endpoint(NodeId node, std::uint32_t view);
  // After a total restart the views restart from an id some node left down may have used for
  // a view nobody else saw: each restart gets its own range of endpoint ids.
  NodeId endpoint_id(NodeId node, std::uint32_t view) const {
    return NodeId{(view + restarts_ * 100'000) * 100 + node.value};
  }
  static NodeId node_of(NodeId endpoint) { return NodeId{endpoint.value % 100}; }

  void crash(NodeId node, fabric::CrashDetection detection);
  // SIGSTOP / SIGCONT of a node: its endpoints (also those created meanwhile) hold their
  // traffic and it does not tick.
  void pause(NodeId node);
  void resume(NodeId node);
  // Cuts every link between the two sides (now and for endpoints created later).
  void partition(const std::vector<NodeId>& side_a, const std::vector<NodeId>& side_b);
  void run_for(std::uint64_t duration_us) { network.run_for(duration_us); }
  void stop_workload() { workload_on_ = false; }
  bool workload_on() const { return workload_on_; }

  // Asks for `node` (not a member) to join, through whichever node leads; retried until a view
  // admits it. With `rejoin`, an incarnation of it that stops later joins again.
  void request_join(NodeId node, bool rejoin = true);
  // The leader's answer to a joiner: the view that admits it and the one before (simulating
  // the membership service's TCP reply, `delay_us` later; lost if the leader crashed).
  void admit(NodeId joiner, NodeId leader, const core::View& view, const core::View& previous);
  void note(std::string problem) { problems_.push_back(std::move(problem)); }

  // Total restart (docs/core.md, "Total restart"): crash_all() crashes every node (silently);
  // restart_from_disks(back) restarts those nodes from what their disks hold (the durable
  // prefix of each replica log, the whole view log), lets the one with the lowest rank in the
  // newest logged view plan (core::plan_restart, its reports: every node in `back`) and starts
  // every member of the restart view with the plan. The plan's status when it cannot.
  void crash_all();
  Result<core::RestartPlan> restart_from_disks(const std::vector<NodeId>& back);
  std::optional<std::uint32_t> restarted_from;  // the last view of the latest total restart

  // Nodes in the group now: neither crashed nor stopped, with a view.
  std::vector<VcNode*> survivors();
  // Breaks of the invariants (empty when all hold). `final_check`: the run is quiescent, so
  // survivors' logs must be equal in full.
  std::vector<std::string> check(bool final_check);

  fabric::SimNetwork network;
  VcOptions options;
  std::optional<core::View> first_view;
  std::vector<std::unique_ptr<VcNode>> nodes;
  // Acknowledged updates (persisted on all members of their shard), by shard: payload hash ->
  // (version, bit mask of the shard's members in the view it was acknowledged in).
  std::map<std::uint32_t, std::map<std::uint64_t, std::pair<Version, std::uint64_t>>> acked;
  std::set<std::uint32_t> join_requested;  // node ids
  core::ViewManagerOptions manager_options;

 private:
  void arm(std::size_t index);
  void check_views(std::vector<std::string>& problems);
  void check_logs(bool final_check, std::vector<std::string>& problems);
  void check_shard(ShardId shard, bool final_check, std::vector<std::string>& problems);

  std::map<std::uint32_t, std::vector<NodeId>> endpoints_;  // node -> its endpoints
  std::set<std::pair<std::uint32_t, std::uint32_t>> cuts_;  // node pairs, both orders
  bool workload_on_ = true;
  std::uint32_t restarts_ = 0;
  std::vector<std::string> problems_;  // found during the run (checked by check())
  void restart_incarnation(VcNode& node);
};

}  // namespace squall::sim
