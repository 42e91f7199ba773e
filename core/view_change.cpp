#include "core/view_change.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "common/assert.hpp"
#include "common/log.hpp"

namespace squall::core {

namespace {

Status check_restart(const View& first, const ViewManagerOptions& options) {
  if (options.restart_sources.empty()) return Status::ok();
  if (!options.previous) return invalid_argument("restart sources without a previous view");
  for (const Member& member : first.members()) {
    if (!options.previous->contains(member.id)) {
      return invalid_argument(fmt::format("restart view {} has node {}, not in view {}",
                                          first.id(), member.id, options.previous->id()));
    }
  }
  for (ShardId shard : first.shards_of(options.self)) {
    auto source = options.restart_sources.find(shard);
    if (source == options.restart_sources.end() ||
        !first.shard_rank(shard, source->second)) {
      return invalid_argument(fmt::format("restart view {}: shard {} has no source serving it",
                                          first.id(), shard));
    }
  }
  return Status::ok();
}

}  // namespace

Result<std::unique_ptr<ViewManager>> ViewManager::create(const View& first,
                                                         ViewManagerOptions options,
                                                         ViewHost& host,
                                                         HybridLogicalClock& clock,
                                                         ViewLog& log) {
  if (!first.contains(options.self)) {
    return invalid_argument(fmt::format("node {} is not in view {}", options.self, first.id()));
  }
  if (options.previous && options.previous->id() >= first.id()) {
    return invalid_argument(fmt::format("view {} cannot follow view {}", first.id(),
                                        options.previous->id()));
  }
  SQUALL_TRY(check_restart(first, options));
  std::optional<ViewRecord> last = log.last_view();
  if (options.previous && (!last || last->id < options.previous->id())) {
    SQUALL_TRY(log.append(ViewRecord::of(*options.previous)));
  }
  if (!last || last->id != first.id()) SQUALL_TRY(log.append(ViewRecord::of(first)));
  std::unique_ptr<ViewManager> manager(new ViewManager(std::move(options), host, clock, log));
  if (manager->options_.previous) {
    manager->previous_view_ = std::make_unique<View>(*manager->options_.previous);
  }
  Result<std::unique_ptr<Epoch>> epoch =
      manager->build(first, nullptr, manager->previous_view_.get());
  if (!epoch) return epoch.status();
  manager->current_ = std::move(*epoch);
  SQUALL_TRY(manager->connect(*manager->current_));
  manager->start_transfers(*manager->current_, manager->previous_view_.get());
  ++manager->views_installed_;
  host.installed(manager->view());
  return manager;
}

ViewManager::ViewManager(ViewManagerOptions options, ViewHost& host, HybridLogicalClock& clock,
                         ViewLog& log)
    : options_(std::move(options)), host_(host), clock_(clock), log_(log) {}

ViewManager::~ViewManager() = default;

OrderedGroup* ViewManager::group(ShardId shard) {
  for (std::size_t i = 0; i < current_->shards.size(); ++i) {
    if (current_->shards[i] == shard) return current_->groups[i].get();
  }
  return nullptr;
}

Result<std::unique_ptr<ViewManager::Epoch>> ViewManager::build(const View& view,
                                                               const Epoch* previous,
                                                               const View* previous_view) {
  auto epoch = std::make_unique<Epoch>();
  epoch->view = std::make_unique<View>(view);
  Result<fabric::Transport*> transport = host_.transport_for(view);
  if (!transport) return transport.status();
  epoch->transport = *transport;
  StateTransferOptions transfer = options_.transfer;
  transfer.max_message_bytes =
      std::min(transfer.max_message_bytes, epoch->transport->max_message_bytes());
  epoch->transfer = std::make_unique<StateTransfer>(view.id(), options_.self, transfer);
  // Suspicions are not carried over: a member the old view suspected after its decision may
  // only have retired the old view's table; a dead one is suspected again by its silence.
  MembershipOptions membership_options = options_.membership;
  membership_options.joiners.clear();
  if (previous_view != nullptr) {
    for (const Member& member : view.members()) {
      if (!previous_view->contains(member.id)) membership_options.joiners.push_back(member.id);
    }
  }
  Result<std::unique_ptr<Membership>> membership = Membership::create(
      *epoch->view, options_.self, std::move(membership_options), *epoch->transport, log_);
  if (!membership) return membership.status();
  epoch->membership = std::move(*membership);
  for (ShardId shard : view.shards_of(options_.self)) {
    SQUALL_TRY(add_group(*epoch, shard, previous, previous_view));
  }
  return epoch;
}

Status ViewManager::add_group(Epoch& epoch, ShardId shard, const Epoch* previous,
                              const View* previous_view) {
  const View& view = *epoch.view;
  OrderedGroupOptions group_options = shard_group_options(view, shard, options_.self);
  group_options.heartbeat_ms = options_.heartbeat_ms;
  group_options.failure_timeout_ms = options_.failure_timeout_ms;
  group_options.first_heartbeat_timeout_ms = options_.first_heartbeat_timeout_ms;
  // Synced: this replica held the shard's state through the previous view (or this is the
  // first view). Otherwise its state arrives by state transfer and delivery waits for it.
  bool synced = previous == nullptr && previous_view == nullptr;
  StateMachine& machine = host_.state_machine(shard);
  std::optional<ShardStart> restarted;
  if (previous == nullptr && !options_.restart_sources.empty()) {
    restarted = restart_start(shard, machine);
    synced = restarted->synced;
    group_options.last_timestamp = restarted->last_timestamp;
  }
  if (previous != nullptr) {
    auto at = std::find(previous->shards.begin(), previous->shards.end(), shard);
    if (at != previous->shards.end()) {
      auto index = static_cast<std::size_t>(at - previous->shards.begin());
      const OrderedGroup& old = *previous->groups[index];
      synced = previous->starts[index].synced;
      if (synced) {
        group_options.last_timestamp = old.delivered_timestamp();
        group_options.persisted_floor = old.persisted_frontier();
      }
    }
  }
  group_options.hold_delivery = !synced;
  host_.configure(group_options);
  Membership* members = epoch.membership.get();
  OrderedGroupCallbacks callbacks;
  callbacks.suspected = [members](NodeId node, const std::string& reason) {
    members->suspect(node, "shard group: " + reason);
  };
  callbacks.failed = [this](const Status& reason) {
    stop("the state machine refused an update: " + reason.to_string());
  };
  callbacks.persisted = [this, shard](Version frontier) { host_.persisted(shard, frontier); };
  Result<std::unique_ptr<OrderedGroup>> group =
      OrderedGroup::create(group_options, *epoch.transport, machine, clock_, callbacks);
  if (!group) return group.status();
  ShardStart start{synced, machine.applied_version(), group_options.last_timestamp,
                   group_options.persisted_floor};
  epoch.transfer->serve(shard, start, machine);
  epoch.shards.push_back(shard);
  epoch.groups.push_back(std::move(*group));
  epoch.starts.push_back(start);
  return Status::ok();
}

Status ViewManager::connect(Epoch& epoch) {
  for (const Member& member : epoch.view->members()) {
    if (member.id == options_.self) continue;
    SQUALL_TRY(epoch.transport->add_peer(member.id, member.address));
  }
  return Status::ok();
}

void ViewManager::poll(Epoch& epoch) {
  events_.clear();
  epoch.transport->poll(events_, options_.max_events_per_step);
  for (const fabric::Event& event : events_) {
    if (event.kind == fabric::EventKind::peer_connected) epoch.connected.push_back(event.peer);
    if (event.kind == fabric::EventKind::message && is_transfer_message(event.payload)) {
      route_transfer(epoch, event);
      continue;
    }
    if (epoch.membership->handle(event)) continue;
    for (auto& group : epoch.groups) {
      if (group->handle(event)) break;
    }
  }
}

void ViewManager::step_epoch(Epoch& epoch, std::uint64_t now_us) {
  poll(epoch);
  finish_transfers(epoch);
  for (auto& group : epoch.groups) group->step(now_us);
  epoch.membership->step(now_us);
  flush_transfer(epoch);
}

void ViewManager::step(std::uint64_t now_us) {
  if (state_ == ViewManagerState::stopped) return;
  for (auto& epoch : retiring_) step_epoch(*epoch, now_us);
  step_epoch(*current_, now_us);
  retire_spread();
  advance_change();
}

void ViewManager::advance_change() {
  Epoch& epoch = *current_;
  Membership& membership = *epoch.membership;
  if (state_ == ViewManagerState::stopped) return;
  if (membership.state() == MembershipState::stopped) {
    stop(membership.stop_reason());
    return;
  }
  bool any_wedged = std::any_of(epoch.groups.begin(), epoch.groups.end(),
                                [](const auto& group) { return group->wedged(); });
  if (membership.state() == MembershipState::running && !any_wedged) return;
  state_ = ViewManagerState::changing;
  if (!membership.reported_wedged()) {
    // Wedging freezes each group's received counts: what we report is final.
    std::vector<std::vector<std::uint64_t>> received;
    for (auto& group : epoch.groups) {
      group->wedge();
      received.push_back(group->received_slots());
    }
    membership.report_wedged(received);
  }
  if (membership.state() != MembershipState::decided) return;
  if (!epoch.trimmed) {
    const ViewChangeDecision& decision = *membership.decision();
    epoch.transfer_frozen = true;  // a replica still without state stays without it
    for (std::size_t i = 0; i < epoch.groups.size(); ++i) {
      if (!epoch.starts[i].synced) continue;  // held: it has no state to deliver onto
      Result<std::size_t> delivered =
          epoch.groups[i]->deliver_trim(decision.trims[epoch.shards[i].value]);
      if (!delivered) {
        stop(fmt::format("ragged trim of shard {}: {}", epoch.shards[i],
                         delivered.status().to_string()));
        return;
      }
    }
    epoch.trimmed = true;
  }
  if (trimmed_and_persisted()) install_next();
}

bool ViewManager::trimmed_and_persisted() {
  for (std::size_t i = 0; i < current_->groups.size(); ++i) {
    if (!current_->starts[i].synced) continue;
    Version persisted = host_.state_machine(current_->shards[i]).persisted_version();
    if (persisted < current_->groups[i]->delivered_version()) return false;
  }
  return true;
}

void ViewManager::install_next() {
  const View& old_view = *current_->view;
  const ViewChangeDecision& decision = *current_->membership->decision();
  Result<View> next = View::make(ViewId{old_view.id().value + 1}, decision.next_members,
                                 old_view.layout(), &old_view);
  if (!next) {
    stop("cannot make the next view: " + next.status().to_string());
    return;
  }
  Status logged = log_.append(ViewRecord::of(*next));
  if (!logged.is_ok()) {
    stop("cannot log the next view: " + logged.to_string());
    return;
  }
  Result<std::unique_ptr<Epoch>> epoch = build(*next, current_.get(), &old_view);
  if (!epoch) {
    stop("cannot build the next view: " + epoch.status().to_string());
    return;
  }
  // Whatever a waiter waits for was either delivered by the trim (and is carried in the next
  // view's floor) or discarded; the owner re-sends what was not delivered.
  for (auto& group : current_->groups) {
    group->abort_waiters(unavailable("view change: re-send if the update was not delivered"));
  }
  previous_view_ = std::make_unique<View>(old_view);
  requeue_joins(decision);
  retiring_.push_back(std::move(current_));
  current_ = std::move(*epoch);
  Status connected = connect(*current_);
  if (!connected.is_ok()) {
    stop("cannot connect the next view: " + connected.to_string());
    return;
  }
  start_transfers(*current_, previous_view_.get());
  ++views_installed_;
  state_ = ViewManagerState::running;
  logger("core")->info("node {}: installed view {} with {} members", options_.self,
                       current_->view->id(), current_->view->size());
  host_.installed(*current_->view);
}

void ViewManager::retire_spread() {
  for (auto it = retiring_.begin(); it != retiring_.end();) {
    const Membership& membership = *(*it)->membership;
    if (membership.decision_spread() || membership.state() == MembershipState::stopped) {
      ViewId id = (*it)->view->id();
      it = retiring_.erase(it);
      host_.retire(id);
    } else {
      ++it;
    }
  }
}

void ViewManager::stop(std::string reason) {
  if (state_ == ViewManagerState::stopped) return;
  state_ = ViewManagerState::stopped;
  stop_reason_ = std::move(reason);
  for (auto& group : current_->groups) group->wedge();
  logger("core")->warn("node {}: stopped: {}", options_.self, stop_reason_);
  host_.stopped(stop_reason_);
}

}  // namespace squall::core
