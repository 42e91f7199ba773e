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
  base_.remove_peer(VcCluster::endpoint_id(peer, view_));
}

Status EpochTransport::write(const fabric::WriteRequest& request) {
  fabric::WriteRequest mapped = request;
  mapped.peer = VcCluster::endpoint_id(request.peer, view_);
  return base_.write(mapped);
}

Status EpochTransport::send(NodeId peer, std::span<const std::byte> message) {
  return base_.send(VcCluster::endpoint_id(peer, view_), message);
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
  for (const auto& member : view.members()) members.push_back(member.id);
  installed_views.emplace_back(view.id().value, members);
  for (ShardId shard : view.shards_of(id)) {
    first_view_of_shard.emplace(shard.value, view.id().value);
  }
}

void VcNode::retire(ViewId view) {
  // The old view's endpoint goes away like a closed process would: silently.
  cluster.network.crash(VcCluster::endpoint_id(id, view.value), fabric::CrashDetection::silent);
}

void VcNode::stopped(const std::string& reason) { stop_reason = reason; }

void VcNode::persisted(ShardId shard, Version value) {
  Version& highest = frontier[shard.value];
  highest = std::max(highest, value);
  const auto& entries = machine(shard).log();
  std::size_t& scanned = acked_scan[shard.value];
  while (scanned < entries.size() && entries[scanned].version <= highest) {
    cluster.acked[shard.value].insert(entries[scanned].payload_hash);
    ++scanned;
  }
}

void VcNode::tick() {
  for (auto& [shard, machine_ptr] : machines) machine_ptr->set_now(cluster.network.now_us());
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
  std::vector<core::Member> members;
  for (std::size_t i = 0; i < options.nodes; ++i) {
    members.push_back({NodeId{static_cast<std::uint32_t>(i + 1)}, {"sim", 0}});
  }
  first_view.emplace(core::View::make(ViewId{1}, members, options.layout).value());
  core::ViewManagerOptions manager_options;
  manager_options.membership.region = 1000;
  manager_options.membership.heartbeat_ms = options.heartbeat_ms;
  manager_options.membership.failure_timeout_ms = options.failure_timeout_ms;
  manager_options.membership.majority_rule = options.majority_rule;
  manager_options.heartbeat_ms = options.heartbeat_ms;
  manager_options.failure_timeout_ms = options.failure_timeout_ms;
  for (const auto& member : members) {
    nodes.push_back(std::make_unique<VcNode>(*this, member.id));
  }
  for (auto& node : nodes) {
    manager_options.self = node->id;
    node->manager =
        core::ViewManager::create(*first_view, manager_options, *node, node->hlc, node->log)
            .value();
  }
  for (std::size_t i = 0; i < nodes.size(); ++i) arm(i);
}

void VcCluster::arm(std::size_t index) {
  network.schedule_after(options.tick_us, [this, index] {
    VcNode& node = *nodes[index];
    if (node.crashed || node.stop_reason) return;
    if (!node.paused) node.tick();
    arm(index);
  });
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
    if (!node->crashed && !node->stop_reason) out.push_back(node.get());
  }
  return out;
}

std::vector<std::string> VcCluster::check(bool final_check) {
  std::vector<std::string> problems;
  check_views(problems);
  check_logs(final_check, problems);
  if (final_check) {
    for (VcNode* node : survivors()) {
      if (node->manager->state() != core::ViewManagerState::running) {
        problems.push_back(fmt::format("node {} still changing views at the end", node->id));
      }
      const auto& last = node->installed_views.back();
      std::vector<NodeId> alive;
      for (VcNode* other : survivors()) alive.push_back(other->id);
      if (last.second != alive) {
        problems.push_back(fmt::format("node {}: final view {} has {} members, {} survive",
                                       node->id, last.first, last.second.size(),
                                       alive.size()));
      }
    }
  }
  return problems;
}

void VcCluster::check_views(std::vector<std::string>& problems) {
  std::vector<VcNode*> alive = survivors();
  if (alive.empty()) return;
  const auto& reference = alive.front()->installed_views;
  for (auto& node : nodes) {
    if (node->crashed) continue;
    const auto& views = node->installed_views;
    bool prefix = views.size() <= reference.size() &&
                  std::equal(views.begin(), views.end(), reference.begin());
    bool same = views == reference;
    if ((node->stop_reason && !prefix) || (!node->stop_reason && !same)) {
      problems.push_back(fmt::format("node {} installed {} views, node {} {} (or different)",
                                     node->id, views.size(), alive.front()->id,
                                     reference.size()));
    }
  }
}

}  // namespace squall::sim
