// ViewManager: one node's sequence of views — the shard groups of the current view, its
// Membership, and the steps from a suspicion to the next installed view (docs/core.md, "View
// change").
//
// Driven by the node's progress loop: step(now_us) polls the transports of the current view
// (and of views being retired), routes their events, steps every group and the membership,
// and moves the change along:
//   suspicion (membership or any group) -> wedge every group -> report the final received
//   counts -> [leader decides] -> deliver the ragged trim of each shard -> wait until the
//   local state machines persisted what was delivered -> log the next view durably ->
//   install it (new membership and groups on the host's transport for that view).
// The previous view's membership and groups keep running (wedged, heartbeating) until every
// survivor has copied the decision, so no slow member is stranded without it; then they are
// destroyed and the host may close that view's transport.
//
// Why a transport per view: regions are fixed for a transport's lifetime (registered before
// its first add_peer(), fabric/transport.hpp), and a member that has not yet noticed a failure
// may still write into the old view's regions (docs/rdmc.md, "Reusing the region"). A new
// view therefore never reuses an old view's memory: the host provides a fresh endpoint per
// view, and stray writes of the old view land in memory nobody reads any more.
//
// Not thread-safe: the node's progress thread calls everything.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/hlc.hpp"
#include "common/ids.hpp"
#include "common/status.hpp"
#include "core/membership.hpp"
#include "core/ordered_group.hpp"
#include "core/state_machine.hpp"
#include "core/state_transfer.hpp"
#include "core/view.hpp"
#include "core/view_log.hpp"
#include "fabric/transport.hpp"

namespace squall::core {

// What the node provides to its ViewManager.
class ViewHost {
 public:
  virtual ~ViewHost() = default;
  // The transport on which `view`'s membership and groups run: fresh for each view (see
  // above), owned by the host, alive until retire(view.id()). The manager registers regions
  // and then adds every other member of the view as a peer.
  virtual Result<fabric::Transport*> transport_for(const View& view) = 0;
  // The replicated state machine of `shard` on this node (the same object across views).
  virtual StateMachine& state_machine(ShardId shard) = 0;
  // Per-group settings the host chooses (regions unique per transport, window, slot size,
  // RDMC); view, shard, members, self, transport_tag, last_timestamp and persisted_floor are
  // already filled in.
  virtual void configure(OrderedGroupOptions& options) = 0;
  // `view` is installed: its groups exist and accept send() (a group whose state is still
  // being transferred holds delivery until the transfer completes). previous_view() is the
  // view before it (to answer waiting joiners).
  virtual void installed(const View& view) { (void)view; }
  // The view `view` is no longer used by this node; its transport may be closed.
  virtual void retire(ViewId view) { (void)view; }
  // This node stopped for good (removed, minority side, local failure).
  virtual void stopped(const std::string& reason) { (void)reason; }
  // The persistence frontier of `shard` moved (OrderedGroupCallbacks::persisted).
  virtual void persisted(ShardId shard, Version frontier) {
    (void)shard;
    (void)frontier;
  }
};

struct ViewManagerOptions {
  NodeId self;
  MembershipOptions membership;  // region, tag, timeouts, majority rule
  // The shard groups use these detector settings too.
  std::uint64_t heartbeat_ms = 100;
  std::uint64_t failure_timeout_ms = 1000;
  // The groups' wait for a member's first heartbeat in a new view (0 = failure_timeout_ms;
  // set membership.first_heartbeat_timeout_ms too).
  std::uint64_t first_heartbeat_timeout_ms = 0;
  std::size_t max_events_per_step = 4096;
  // The view before the first one given to create(), for a joiner (the view that admits it
  // comes with it from the leader): shards it serves are then pulled by state transfer from
  // their members of this view. Unset for the founding view and for members of the first
  // view. For a total restart (core/restart.hpp): the last view V every member logged; the
  // first view is the restart view R.
  std::optional<View> previous;
  // Total restart only (with `previous`): per shard, the member whose log of the shard is the
  // longest (RestartPlan::sources). In the first view every other member of the shard pulls
  // the missing suffix from it by state transfer before delivering, even if it served the
  // shard in `previous`; the source delivers at once. Every shard this node serves must be
  // listed.
  std::map<ShardId, NodeId> restart_sources;
  // max_message_bytes is the view transport's (capped at the value here).
  StateTransferOptions transfer;
};

enum class ViewManagerState : std::uint8_t { running, changing, stopped };

class ViewManager {
 public:
  // Installs `first` (logged durably unless the log's last view is already it; a previous
  // view given in the options is logged before it unless the log has it, so that a later
  // total restart knows which members `first` carried over). A joiner passes the view that
  // admits it with options.previous set; a total restart the restart view with
  // options.previous and options.restart_sources (invalid_argument if a shard this node
  // serves has no source, or `first` has a member that is not in `previous`).
  static Result<std::unique_ptr<ViewManager>> create(const View& first,
                                                     ViewManagerOptions options,
                                                     ViewHost& host, HybridLogicalClock& clock,
                                                     ViewLog& log);
  ~ViewManager();
  ViewManager(const ViewManager&) = delete;
  ViewManager& operator=(const ViewManager&) = delete;

  void step(std::uint64_t now_us);

  // On the leader: queues `joiner`; queued joiners are admitted together by the next view
  // change (at most kMaxJoinsPerView per change; the rest by the one after). Errors:
  // unavailable "not the leader" (also when stopped, or the queue is full: retry later);
  // already_exists if its id is a member of the current view (the caller suspects the old
  // incarnation and the joiner retries later); invalid_argument (validate_joiner()). Queued
  // joiners are lost if this leader fails: joiners retry until admitted. Re-queuing a queued
  // id is ok (the first record stays).
  Status request_join(const Member& joiner);
  // Graceful leave or administrative removal: proposed like a suspicion
  // (Membership::request_removal). This node itself: it stops once its removal is proposed.
  void request_removal(NodeId member, const std::string& reason);
  std::size_t queued_joins() const { return join_queue_.size(); }

  ViewManagerState state() const { return state_; }
  const std::string& stop_reason() const { return stop_reason_; }
  const View& view() const { return *current_->view; }
  // The view before view() (nullptr for the founding view and members of the first view).
  const View* previous_view() const { return previous_view_.get(); }
  // Whether this node's replica of `shard` holds the shard's state in the current view (false
  // while a state transfer is under way, or when it does not serve the shard).
  bool shard_ready(ShardId shard) const;
  std::uint64_t transfers_completed() const { return transfers_completed_; }
  // Whether this node once found no source with the state of `shard` (every replica that had
  // it was gone): its replica continued from its own state, the shard's history is lost.
  bool history_lost(ShardId shard) const { return lost_shards_.contains(shard.value); }
  std::uint64_t transfer_bytes() const { return transfer_bytes_; }
  // The current view's group of `shard`, nullptr if this node does not serve it.
  OrderedGroup* group(ShardId shard);
  const Membership& membership() const { return *current_->membership; }
  std::uint64_t views_installed() const { return views_installed_; }
  std::size_t retiring_views() const { return retiring_.size(); }

 private:
  struct Epoch {
    std::unique_ptr<View> view;  // stable address: the membership keeps a reference
    fabric::Transport* transport = nullptr;
    std::unique_ptr<Membership> membership;
    std::vector<ShardId> shards;  // served by this node, ascending
    std::vector<std::unique_ptr<OrderedGroup>> groups;  // same order
    std::vector<ShardStart> starts;                      // same order
    std::unique_ptr<StateTransfer> transfer;
    std::vector<std::pair<NodeId, Bytes>> unsent;  // transfer messages to unconnected peers
    std::vector<NodeId> connected;
    bool transfer_frozen = false;  // the trim is delivered: no more transfers complete
    bool trimmed = false;
  };

  ViewManager(ViewManagerOptions options, ViewHost& host, HybridLogicalClock& clock,
              ViewLog& log);
  Result<std::unique_ptr<Epoch>> build(const View& view, const Epoch* previous,
                                       const View* previous_view);
  Status add_group(Epoch& epoch, ShardId shard, const Epoch* previous,
                   const View* previous_view);
  void start_transfers(Epoch& epoch, const View* previous_view);
  ShardStart restart_start(ShardId shard, StateMachine& machine) const;
  void route_transfer(Epoch& epoch, const fabric::Event& event);
  void flush_transfer(Epoch& epoch);
  void finish_transfers(Epoch& epoch);
  void requeue_joins(const ViewChangeDecision& decision);
  Status connect(Epoch& epoch);
  void poll(Epoch& epoch);
  void step_epoch(Epoch& epoch, std::uint64_t now_us);
  void advance_change();
  bool trimmed_and_persisted();
  void install_next();
  void retire_spread();
  void stop(std::string reason);

  ViewManagerOptions options_;
  ViewHost& host_;
  HybridLogicalClock& clock_;
  ViewLog& log_;
  std::unique_ptr<Epoch> current_;
  std::deque<std::unique_ptr<Epoch>> retiring_;
  ViewManagerState state_ = ViewManagerState::running;
  std::string stop_reason_;
  std::uint64_t views_installed_ = 0;
  std::uint64_t transfers_completed_ = 0;
  std::uint64_t transfer_bytes_ = 0;
  std::vector<fabric::Event> events_;
  std::unique_ptr<View> previous_view_;
  std::vector<Member> join_queue_;
  std::set<std::uint32_t> lost_shards_;
};

}  // namespace squall::core
