#include "vc_cluster.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace squall::sim {

// ---- EpochTransport ----

NodeId EpochTransport::self() const { return VcCluster::node_of(base_.self()); }

Status EpochTransport::add_peer(NodeId peer, const fabric::PeerAddress& address) {
  fabric::SimTransport& endpoint = cluster_.endpoint(peer, view_);
  return base_.add_peer(endpoint.self(), address);
}

void EpochTransport::remove_peer(NodeId peer) {
  base_.remove_peer(cluster_.endpoint_id(peer, view_));
}

Status EpochTransport::write(const fabric::WriteRequest& request) {
  fabric::WriteRequest mapped = request;
  mapped.peer = cluster_.endpoint_id(request.peer, view_);
  return base_.write(mapped);
}

Status EpochTransport::send(NodeId peer, std::span<const std::byte> message) {
  return base_.send(cluster_.endpoint_id(peer, view_), message);
}

std::size_t EpochTransport::poll(std::vector<fabric::Event>& out, std::size_t max_events) {
  std::size_t before = out.size();
  std::size_t got = base_.poll(out, max_events);
  for (std::size_t i = before; i < out.size(); ++i) out[i].peer = VcCluster::node_of(out[i].peer);
  return got;
}

// ---- VcNode ----

VcNode::VcNode(VcCluster& owner, NodeId node_id)
    : cluster(owner), id(node_id), hlc(owner.network.clock()) {}

Result<fabric::Transport*> VcNode::transport_for(const core::View& view) {
  auto transport = std::make_unique<EpochTransport>(
      cluster, cluster.endpoint(id, view.id().value), view.id().value);
  fabric::Transport* raw = transport.get();
  transports[view.id().value] = std::move(transport);
  return raw;
}

LogStateMachine& VcNode::machine(ShardId shard) {
  auto& slot = machines[shard.value];
  if (!slot) {
    slot = std::make_unique<LogStateMachine>(&cluster.network.random(), 0,
                                             cluster.options.persist_max_us);
    slot->on_apply = [this, shard](const core::DeliveredUpdate& update) {
      if (manager && !manager->shard_ready(shard)) {
        cluster.note(fmt::format("node {} shard {}: version {:#x} delivered before its state "
                                 "was installed", id, shard, update.version));
      }
    };
  }
  return *slot;
}

core::StateMachine& VcNode::state_machine(ShardId shard) { return machine(shard); }

void VcNode::configure(core::OrderedGroupOptions& options) {
  options.sst_region = 2 * options.shard.value + 1;
  options.window = cluster.options.window;
  options.smc_payload_bytes = cluster.options.smc_payload_bytes;
  options.send_queue_messages = 16;
  if (cluster.options.large) {
    options.large = cluster.options.large;
    options.large->region = 2 * options.shard.value + 2;
    options.large->group_id = options.shard.value;
  }
}

void VcNode::installed(const core::View& view) {
  std::vector<NodeId> members;
  for (const auto& member : view.members()) {
    members.push_back(member.id);
    if (member.id.value > cluster.options.nodes &&
        !cluster.join_requested.contains(member.id.value)) {
      cluster.note(fmt::format("view {} has node {}, which never asked to join", view.id(),
                               member.id));
    }
  }
  installed_views.emplace_back(view.id().value, members);
  for (ShardId shard : view.shards_of(id)) {
    first_view_of_shard.emplace(shard.value, view.id().value);
  }
  wants_join = false;
  // The leader answers the joiners this view admits (the membership service's reply).
  const core::View* previous = manager ? manager->previous_view() : nullptr;
  if (view.leader() != id || previous == nullptr) return;
  for (const auto& member : view.members()) {
    if (previous->contains(member.id)) continue;
    core::View admitted = view;
    core::View before = *previous;
    NodeId joiner = member.id;
    NodeId leader = id;
    cluster.network.schedule_after(cluster.network.random().between(50, 500),
                                   [this, joiner, leader, admitted, before] {
                                     cluster.admit(joiner, leader, admitted, before);
                                   });
  }
}

core::Member VcNode::member() const {
  return {id, {fmt::format("10.0.0.{}", id.value), static_cast<std::uint16_t>(7000 + id.value)},
          static_cast<std::uint16_t>(8000 + id.value),
          {fmt::format("10.0.1.{}", id.value), static_cast<std::uint16_t>(9000 + id.value)}};
}

void VcNode::try_join() {
  std::uint64_t now_us = cluster.network.now_us();
  if (now_us < next_join_try_us) return;
  next_join_try_us = now_us + 2'000;
  // The contact redirects to the leader: ask each node in the group until one accepts.
  for (VcNode* other : cluster.survivors()) {
    if (other == this || other->paused) continue;
    Status status = other->manager->request_join(member());
    if (status.is_ok()) return;
  }
}

void VcNode::retire(ViewId view) {
  // The old view's endpoint goes away like a closed process would: silently.
  cluster.network.crash(cluster.endpoint_id(id, view.value), fabric::CrashDetection::silent);
}

void VcNode::stopped(const std::string& reason) { stop_reason = reason; }

void VcNode::persisted(ShardId shard, Version value) {
  Version& highest = frontier[shard.value];
  highest = std::max(highest, value);
  const auto& entries = machine(shard).log();
  Version& upto = acked_upto[shard.value];
  std::uint64_t members = 0;
  for (NodeId member : manager->view().shard_members(shard)) members |= 1ULL << member.value;
  auto it = std::upper_bound(entries.begin(), entries.end(), upto,
                             [](Version v, const auto& entry) { return v < entry.version; });
  for (; it != entries.end() && it->version <= highest; ++it) {
    cluster.acked[shard.value].emplace(it->payload_hash, std::pair{it->version, members});
  }
  upto = std::max(upto, highest);
}

void VcNode::tick() {
  for (auto& [shard, machine_ptr] : machines) {
    machine_ptr->set_now(cluster.network.now_us());
    if (cluster.options.compact_keep > 0) machine_ptr->compact(cluster.options.compact_keep);
  }
  if (!manager) {
    if (wants_join) try_join();
    return;
  }
  if (cluster.workload_on() && manager->state() == core::ViewManagerState::running) {
    for (ShardId shard : manager->view().shards_of(id)) {
      if (cluster.network.random().below(100) >= cluster.options.send_percent) continue;
      core::OrderedGroup* group = manager->group(shard);
      fabric::SimRandom& random = cluster.network.random();
      std::size_t small = group->options().max_small_payload_bytes();
      std::size_t size = 8 + random.below(small - 7);
      if (group->options().large && random.below(100) < cluster.options.large_percent) {
        size = random.between(small + 1, group->options().max_payload_bytes());
      }
      Bytes payload(size, std::byte{0x5A});
      std::uint64_t tag = (std::uint64_t{id.value} << 48) | (std::uint64_t{shard.value} << 40) |
                          sent;
      for (std::size_t i = 0; i < 8; ++i) {
        payload[i] = static_cast<std::byte>(tag >> (8 * i));
      }
      if (group->send(payload).is_ok()) {
        ++sent;
        large_sent += size > small ? 1 : 0;
      }
    }
  }
  manager->step(cluster.network.now_us());
}

// ---- VcCluster ----

VcCluster::VcCluster(fabric::SimOptions sim, VcOptions cluster_options)
    : network(sim), options(cluster_options) {
  for (std::size_t i = 0; i < options.nodes + options.joiners; ++i) {
    nodes.push_back(std::make_unique<VcNode>(*this, NodeId{static_cast<std::uint32_t>(i + 1)}));
  }
  std::vector<core::Member> members;
  for (std::size_t i = 0; i < options.nodes; ++i) members.push_back(nodes[i]->member());
  first_view.emplace(core::View::make(ViewId{1}, members, options.layout).value());
  manager_options.membership.region = 1000;
  manager_options.membership.heartbeat_ms = options.heartbeat_ms;
  manager_options.membership.failure_timeout_ms = options.failure_timeout_ms;
  manager_options.membership.majority_rule = options.majority_rule;
  manager_options.heartbeat_ms = options.heartbeat_ms;
  manager_options.failure_timeout_ms = options.failure_timeout_ms;
  manager_options.transfer.batch_bytes = 2'000;  // several batches even for small logs
  manager_options.transfer.max_buffered_bytes = 5'000;
  for (std::size_t i = 0; i < options.nodes; ++i) {
    VcNode& node = *nodes[i];
    manager_options.self = node.id;
    node.incarnations = 1;
    node.manager =
        core::ViewManager::create(*first_view, manager_options, node, node.hlc, node.log)
            .value();
  }
  for (std::size_t i = 0; i < nodes.size(); ++i) arm(i);
}

void VcCluster::arm(std::size_t index) {
  network.schedule_after(options.tick_us, [this, index] {
    VcNode& node = *nodes[index];
    if (node.crashed) return;
    if (node.stop_reason && node.rejoin_when_stopped && !node.paused) restart_incarnation(node);
    if (!node.stop_reason && !node.paused) node.tick();
    arm(index);
  });
}

void VcCluster::restart_incarnation(VcNode& node) {
  // The stopped process restarts with its disk (state machines and view log) and asks to
  // join again; its old endpoints close.
  for (auto& [view, transport] : node.transports) {
    NodeId endpoint = endpoint_id(node.id, view);
    if (!network.is_crashed(endpoint)) network.crash(endpoint, fabric::CrashDetection::silent);
  }
  node.manager.reset();
  node.stop_reason.reset();
  node.wants_join = true;
  node.next_join_try_us = network.now_us() + 5'000;
}

void VcCluster::request_join(NodeId node, bool rejoin) {
  VcNode& joiner = *nodes.at(node.value - 1);
  join_requested.insert(node.value);
  joiner.wants_join = true;
  joiner.rejoin_when_stopped = rejoin;
}

void VcCluster::admit(NodeId joiner, NodeId leader, const core::View& view,
                      const core::View& previous) {
  VcNode& node = *nodes.at(joiner.value - 1);
  if (nodes.at(leader.value - 1)->crashed || node.crashed || node.manager) return;
  core::ViewManagerOptions joiner_options = manager_options;
  joiner_options.self = joiner;
  joiner_options.previous = previous;
  ++node.incarnations;
  auto manager = core::ViewManager::create(view, joiner_options, node, node.hlc, node.log);
  if (!manager) {
    note(fmt::format("node {} cannot start in view {}: {}", joiner, view.id(),
                     manager.status().to_string()));
    return;
  }
  node.manager = std::move(*manager);
}

fabric::SimTransport& VcCluster::endpoint(NodeId node, std::uint32_t view) {
  NodeId id = endpoint_id(node, view);
  if (network.has_node(id)) return network.node(id);
  fabric::SimTransport& created = network.add_node(id);
  endpoints_[node.value].push_back(id);
  if (nodes.at(node.value - 1)->crashed) network.crash(id, fabric::CrashDetection::reset);
  if (nodes.at(node.value - 1)->paused) network.pause(id);
  for (const auto& [a, b] : cuts_) {
    if (a != node.value) continue;
    for (NodeId other : endpoints_[b]) network.partition(id, other);
  }
  return created;
}

void VcCluster::crash(NodeId node, fabric::CrashDetection detection) {
  nodes.at(node.value - 1)->crashed = true;
  for (NodeId id : endpoints_[node.value]) {
    if (!network.is_crashed(id)) network.crash(id, detection);
  }
}

void VcCluster::pause(NodeId node) {
  nodes.at(node.value - 1)->paused = true;
  for (NodeId id : endpoints_[node.value]) {
    if (network.is_running(id)) network.pause(id);
  }
}

void VcCluster::resume(NodeId node) {
  nodes.at(node.value - 1)->paused = false;
  for (NodeId id : endpoints_[node.value]) {
    if (network.is_paused(id)) network.resume(id);
  }
}

void VcCluster::partition(const std::vector<NodeId>& side_a, const std::vector<NodeId>& side_b) {
  for (NodeId a : side_a) {
    for (NodeId b : side_b) {
      cuts_.insert({a.value, b.value});
      cuts_.insert({b.value, a.value});
      for (NodeId x : endpoints_[a.value]) {
        for (NodeId y : endpoints_[b.value]) network.partition(x, y);
      }
    }
  }
}

std::vector<VcNode*> VcCluster::survivors() {
  std::vector<VcNode*> out;
  for (auto& node : nodes) {
    if (!node->crashed && !node->stop_reason && node->manager) out.push_back(node.get());
  }
  return out;
}

std::vector<std::string> VcCluster::check(bool final_check) {
  std::vector<std::string> problems = problems_;
  check_views(problems);
  check_logs(final_check, problems);
  if (final_check) {
    for (auto& node : nodes) {
      if (!node->crashed && node->wants_join) {
        problems.push_back(fmt::format("node {} asked to join and was never admitted",
                                       node->id));
      }
    }
    for (VcNode* node : survivors()) {
      if (node->manager->state() != core::ViewManagerState::running) {
        problems.push_back(fmt::format("node {} still changing views at the end", node->id));
      }
      const auto& last = node->installed_views.back();
      std::vector<NodeId> alive;
      for (VcNode* other : survivors()) alive.push_back(other->id);
      std::vector<NodeId> members = last.second;
      std::sort(members.begin(), members.end());
      if (members != alive) {
        problems.push_back(fmt::format("node {}: final view {} has {} members, {} survive",
                                       node->id, last.first, last.second.size(),
                                       alive.size()));
      }
    }
  }
  return problems;
}

void VcCluster::check_views(std::vector<std::string>& problems) {
  // The same view id has the same members everywhere (crashed and stopped nodes included);
  // survivors agree on their last view; a node's views increase.
  std::map<std::uint32_t, std::vector<NodeId>> by_id;
  for (auto& node : nodes) {
    std::uint32_t previous = 0;
    for (const auto& [id, members] : node->installed_views) {
      // A node left down by a total restart may have logged a view after the one the restart
      // continued from, which nobody used: the restart view reuses its id.
      if (restarted_from && node->crashed && id > *restarted_from) continue;
      auto [at, fresh] = by_id.emplace(id, members);
      if (!fresh && at->second != members) {
        problems.push_back(fmt::format("view {}: node {} installed other members", id,
                                       node->id));
      }
      if (id <= previous) {
        problems.push_back(fmt::format("node {}: view {} after view {}", node->id, id,
                                       previous));
      }
      previous = id;
    }
  }
}

}  // namespace squall::sim
