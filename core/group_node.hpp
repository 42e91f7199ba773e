// GroupNode: this node's part in the Squall group on a real fabric — everything of core/ a
// daemon needs behind one object (docs/core.md, "Running a node").
//
// It owns the progress thread, the durable view log (<data_dir>/views.log), one
// LibfabricTransport per view (all sharing the node's fabric port, told apart by channel), the
// ViewManager, and the TCP membership service on ports.membership, which
//  - answers join requests: the leader queues joiners and admits them in batches with the
//    next view change; any other member redirects the joiner to the leader;
//  - answers graceful leaves (the leader proposes the leaver's removal).
// Start-up: with an empty view log and contact == this node, the node founds the group (a
// first view with itself alone); otherwise it joins through the contact, or through the
// members of the last view in its log, retrying until timeouts.join_timeout_ms.
// State transfer for shards a joiner (or a restarted node) must serve runs inside the new
// view (core/state_transfer.hpp): only the missing log suffix when the node has a log.
//
// Threads: start(), post(), status(), leave() and stop() are thread-safe. The callbacks and
// every function given to post() run on the progress thread, where ViewManager, groups and
// state machines live; group() and view() may only be called there.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/hlc.hpp"
#include "common/ids.hpp"
#include "common/status.hpp"
#include "common/version.hpp"
#include "config/config.hpp"
#include "core/ordered_group.hpp"
#include "core/state_machine.hpp"
#include "core/view.hpp"

namespace squall::core {

// The replicated state machine of `shard` on this node: created on first use, then the same
// object for the node's lifetime. Called on the progress thread.
using StateMachineFactory = std::function<StateMachine&(ShardId shard)>;

struct GroupNodeCallbacks {
  // `view` is installed; its groups accept send().
  std::function<void(const View& view)> installed;
  // The persistence frontier of `shard` moved to `frontier`.
  std::function<void(ShardId shard, Version frontier)> persisted;
  // This node left the group for good (removed, minority side, local failure, leave()).
  std::function<void(const std::string& reason)> stopped;
};

enum class GroupPhase : std::uint8_t {
  joining,   // no view installed yet (founding, joining, or waiting for a state transfer)
  running,   // in a view, serving
  changing,  // in a view, a view change is under way (writes wait)
  stopped,   // out of the group for good
};

std::string_view name(GroupPhase phase);

struct GroupMemberStatus {
  Member member;
  bool suspected = false;  // this node suspects it
};

struct GroupShardStatus {
  ShardId shard;
  std::vector<NodeId> members;
  Version delivered_version = 0;  // this node's, if it serves the shard
  Version persisted_version = 0;  // the shard's persistence frontier, if it serves the shard
};

// A consistent snapshot taken on the progress thread after every step.
struct GroupStatus {
  std::string cluster;
  NodeId self;
  GroupPhase phase = GroupPhase::joining;
  ViewId view;  // 0 before the first view
  NodeId leader;
  std::vector<GroupMemberStatus> members;  // rank order
  std::vector<GroupShardStatus> shards;    // every shard of the layout
  std::vector<ShardId> under_replicated;
  std::vector<ShardId> own_shards;         // served by this node
  bool majority = false;  // in a view and not on a minority side
  // Whose majority counts in this view (core/membership.hpp): 2 (`all`) once every member
  // has heard every joiner; before, losing the members carried over can stop the group.
  std::uint8_t voter_stage = 0;
  std::string stop_reason;
  std::uint64_t views_installed = 0;
};

class GroupNode {
 public:
  // Opens the view log, binds the fabric and membership ports, starts the progress thread
  // and begins founding or joining (asynchronously: status().phase says how far it got).
  // Errors: the config's transport does not open here, a port is taken, the view log is
  // unreadable — each with the reason.
  static Result<std::unique_ptr<GroupNode>> start(const config::Config& config,
                                                  StateMachineFactory machines,
                                                  GroupNodeCallbacks callbacks);
  // stop().
  ~GroupNode();
  GroupNode(const GroupNode&) = delete;
  GroupNode& operator=(const GroupNode&) = delete;

  // Runs `task` on the progress thread at its next step. Thread-safe; unavailable after
  // stop().
  Status post(std::function<void()> task);

  // Progress thread only. The current view (nullptr before the first); this node's group of
  // `shard` in it (nullptr when it does not serve the shard, or is changing views).
  const View* view() const;
  OrderedGroup* group(ShardId shard);
  HybridLogicalClock& clock();

  GroupStatus status() const;

  // Graceful leave: asks the leader to remove this node and waits until a view without it is
  // installed (or `timeout` passes: timed_out). Afterwards the node is stopped.
  Status leave(std::chrono::milliseconds timeout);
  // Stops the progress thread and closes every transport and socket. Idempotent.
  void stop();

  struct Impl;

 private:
  explicit GroupNode(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace squall::core
