// The ViewManager's joins, leaves and state transfer (core/view_change.hpp, docs/core.md,
// "Joins, leaves and state transfer").
#include <algorithm>

#include <fmt/format.h>

#include "common/assert.hpp"
#include "common/log.hpp"
#include "core/view_change.hpp"

namespace squall::core {

Status ViewManager::request_join(const Member& joiner) {
  if (state_ == ViewManagerState::stopped) return unavailable("this node stopped");
  const Membership& membership = *current_->membership;
  if (membership.leader_rank() != *view().rank_of(options_.self) ||
      membership.state() == MembershipState::stopped) {
    return unavailable("not the leader");
  }
  SQUALL_TRY(validate_joiner(joiner));
  if (view().contains(joiner.id)) {
    return Status(Code::already_exists,
                  fmt::format("node {} is a member of view {}", joiner.id, view().id()));
  }
  for (const Member& queued : join_queue_) {
    if (queued.id == joiner.id) return Status::ok();
  }
  if (join_queue_.size() >= kMaxChangesPerView ||
      view().size() + join_queue_.size() >= kMaxViewMembers) {
    return unavailable(fmt::format("{} joiners already wait; retry later", join_queue_.size()));
  }
  logger("core")->info("view {}: leader {} queues joiner {}", view().id(), options_.self,
                       joiner.id);
  join_queue_.push_back(joiner);
  current_->membership->propose_joins(join_queue_);
  return Status::ok();
}

void ViewManager::request_removal(NodeId member, const std::string& reason) {
  if (state_ == ViewManagerState::stopped) return;
  current_->membership->request_removal(member, reason);
}

void ViewManager::requeue_joins(const ViewChangeDecision& decision) {
  std::erase_if(join_queue_, [&decision](const Member& queued) {
    return std::any_of(decision.joined.begin(), decision.joined.end(),
                       [&queued](const Member& joined) { return joined.id == queued.id; });
  });
}

bool ViewManager::shard_ready(ShardId shard) const {
  for (std::size_t i = 0; i < current_->shards.size(); ++i) {
    if (current_->shards[i] == shard) return current_->starts[i].synced;
  }
  return false;
}

void ViewManager::start_transfers(Epoch& epoch, const View* previous_view) {
  // requeue_joins ran before: what is still queued goes into this view's first change.
  if (epoch.view->leader() == options_.self && !join_queue_.empty()) {
    epoch.membership->propose_joins(join_queue_);
  } else if (epoch.view->leader() != options_.self) {
    join_queue_.clear();
  }
  for (std::size_t i = 0; i < epoch.shards.size(); ++i) {
    if (epoch.starts[i].synced) continue;
    ShardId shard = epoch.shards[i];
    // Sources: the shard's members in this view that served it in the previous one, in
    // shard order (a source without the state itself answers not_ready).
    std::vector<NodeId> sources;
    auto restart = options_.restart_sources.find(shard);
    if (views_installed_ == 0 && restart != options_.restart_sources.end()) {
      // The restart view: only the longest log has every update; the others are prefixes.
      sources.push_back(restart->second);
    }
    for (NodeId member : epoch.view->shard_members(shard)) {
      if (!sources.empty()) break;
      if (member == options_.self || previous_view == nullptr) continue;
      if (previous_view->shard_rank(shard, member)) sources.push_back(member);
    }
    logger("core")->info("view {}: node {} pulls shard {} from {} source(s)", epoch.view->id(),
                         options_.self, shard, sources.size());
    epoch.transfer->receive(shard, std::move(sources), host_.state_machine(shard));
  }
}

ShardStart ViewManager::restart_start(ShardId shard, StateMachine& machine) const {
  // The first view of a total restart: the source continues from its own log, its timestamps
  // after the last one it holds; the others wait for its suffix (and take its timestamp).
  // The persistence floor starts at 0: nothing is known durable everywhere yet.
  ShardStart start;
  start.version = machine.applied_version();
  start.synced = options_.restart_sources.at(shard) == options_.self;
  if (!start.synced || start.version == 0) return start;
  Result<std::vector<LoggedUpdate>> last = machine.read_log(start.version - 1, 1);
  if (last && !last->empty() && last->front().version == start.version) {
    start.last_timestamp = last->front().timestamp;
  } else {
    Result<Checkpoint> checkpoint = machine.make_checkpoint();
    if (checkpoint) start.last_timestamp = checkpoint->timestamp;
  }
  return start;
}

void ViewManager::route_transfer(Epoch& epoch, const fabric::Event& event) {
  Status status = epoch.transfer->handle(event.peer, event.payload);
  if (!status.is_ok()) {
    epoch.membership->suspect(event.peer, "state transfer: " + status.to_string());
  }
}

void ViewManager::flush_transfer(Epoch& epoch) {
  auto& outbox = epoch.transfer->outbox();
  for (auto& message : outbox) epoch.unsent.push_back(std::move(message));
  outbox.clear();
  std::erase_if(epoch.unsent, [&epoch](std::pair<NodeId, Bytes>& message) {
    if (std::find(epoch.connected.begin(), epoch.connected.end(), message.first) ==
        epoch.connected.end()) {
      return false;  // sends may start once the peer is connected
    }
    Status sent = epoch.transport->send(message.first, message.second);
    if (!sent.is_ok()) {
      // The peer failed: its failure changes the view, which restarts the transfer.
      logger("core")->warn("view {}: state transfer message to node {} not sent: {}",
                           epoch.view->id(), message.first, sent.to_string());
    }
    return true;
  });
}

void ViewManager::finish_transfers(Epoch& epoch) {
  auto& done = epoch.transfer->completed();
  transfer_bytes_ = epoch.transfer->bytes_received();
  if (epoch.transfer_frozen) return;
  for (const TransferDone& transfer : done) {
    auto at = std::find(epoch.shards.begin(), epoch.shards.end(), transfer.shard);
    SQUALL_ASSERT(at != epoch.shards.end(), "transfer of shard {} not served", transfer.shard);
    auto index = static_cast<std::size_t>(at - epoch.shards.begin());
    epoch.groups[index]->release_delivery(transfer.last_timestamp, transfer.persisted_floor);
    // Synced now: it may serve later requests of this view from the same starting point.
    ShardStart start{true, transfer.version, transfer.last_timestamp, transfer.persisted_floor};
    epoch.starts[index] = start;
    epoch.transfer->serve(transfer.shard, start, host_.state_machine(transfer.shard));
    ++transfers_completed_;
    if (transfer.lost) lost_shards_.insert(transfer.shard.value);
    logger("core")->info("view {}: node {} has the state of shard {} ({:#x}{})",
                         epoch.view->id(), options_.self, transfer.shard, transfer.version,
                         transfer.lost ? ", no source had it" : "");
  }
  done.clear();
}

}  // namespace squall::core
