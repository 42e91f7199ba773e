#include "cluster.hpp"

#include <set>

#include <catch2/catch.hpp>

namespace squall::sim {

Cluster::Cluster(fabric::SimOptions sim_options, ClusterOptions cluster_options)
    : network(sim_options), options(cluster_options), paused_(options.nodes, false) {
  std::vector<core::Member> members;
  for (std::size_t node = 0; node < options.nodes; ++node) {
    NodeId id{static_cast<std::uint32_t>(node + 1)};
    members.push_back({id, {}});
    std::int64_t offset_us = 0;
    if (options.max_clock_skew_us > 0) {
      offset_us = static_cast<std::int64_t>(
                      network.random().below(2 * options.max_clock_skew_us + 1)) -
                  static_cast<std::int64_t>(options.max_clock_skew_us);
    }
    nodes.push_back(
        std::make_unique<SimNode>(id, network.add_node(id), network.clock(), offset_us));
  }
  auto made = core::View::make(ViewId{1}, members, options.layout);
  REQUIRE(made.is_ok());
  view.emplace(std::move(made).value());
  shard_replicas.resize(options.layout.shards);
  // Every group registers its regions before any node connects (Transport's rule).
  for (std::uint32_t shard = 0; shard < options.layout.shards; ++shard) {
    const std::vector<NodeId>& shard_members = view->shard_members(ShardId{shard});
    for (NodeId node : shard_members) {
      build_replica(node.value - 1, ShardId{shard}, shard_members);
    }
  }
  for (std::size_t node = 0; node < options.nodes; ++node) connect(node);
  for (std::size_t node = 0; node < options.nodes; ++node) arm_tick(node);
}

void Cluster::build_replica(std::size_t node, ShardId shard,
                            const std::vector<NodeId>& members) {
  auto replica = std::make_unique<Replica>();
  replica->node = node;
  replica->shard = shard;
  replica->endpoint = nodes[node]->id;
  replica->rank = static_cast<std::size_t>(
      std::find(members.begin(), members.end(), replica->endpoint) - members.begin());
  replica->machine = std::make_unique<LogStateMachine>(&network.random(), options.persist_min_us,
                                                       options.persist_max_us);
  core::OrderedGroupOptions group_options =
      core::shard_group_options(*view, shard, replica->endpoint);
  group_options.sst_region = 2 * shard.value + 1;
  group_options.window = options.window;
  group_options.smc_payload_bytes = options.smc_payload_bytes;
  group_options.delivery_window_slots = options.delivery_window_slots;
  group_options.send_queue_messages = options.send_queue_messages;
  group_options.max_data_per_sender = options.max_data_per_sender;
  group_options.heartbeat_ms = options.heartbeat_ms;
  group_options.failure_timeout_ms = options.failure_timeout_ms;
  if (options.large) {
    group_options.large = *options.large;
    group_options.large->region = 2 * shard.value + 2;
    group_options.large->group_id = shard.value;
  }
  Replica* raw = replica.get();
  core::OrderedGroupCallbacks callbacks;
  callbacks.suspected = [this, raw](NodeId member, const std::string& reason) {
    if (on_trouble) on_trouble(*raw, member, fmt::format("suspects {}: {}", member, reason));
  };
  callbacks.persisted = [this, raw](Version frontier) {
    if (on_persisted) on_persisted(*raw, frontier);
  };
  callbacks.failed = [this, raw](const Status& reason) {
    if (on_trouble) on_trouble(*raw, std::nullopt, "failed: " + reason.to_string());
  };
  auto group = core::OrderedGroup::create(group_options, *nodes[node]->transport,
                                          *replica->machine, nodes[node]->hlc, callbacks);
  REQUIRE(group.is_ok());
  replica->group = std::move(group).value();
  nodes[node]->replicas.push_back(replicas.size());
  shard_replicas[shard.value].push_back(replicas.size());
  replicas.push_back(std::move(replica));
}

void Cluster::connect(std::size_t node) {
  // Each node connects once to every node it shares a shard with.
  std::set<NodeId> peers;
  for (std::size_t index : nodes[node]->replicas) {
    for (NodeId peer : replicas[index]->group->options().members) peers.insert(peer);
  }
  peers.erase(nodes[node]->id);
  for (NodeId peer : peers) REQUIRE(nodes[node]->transport->add_peer(peer, {}).is_ok());
}

void Cluster::feed(Replica& replica) {
  if (on_tick) on_tick(replica);
  while (!replica.backlog.empty()) {
    Result<std::uint64_t> sent = replica.group->send(replica.backlog.front());
    if (!sent) {
      ++replica.would_block;
      break;
    }
    if (*sent != replica.sent_hashes.size()) {
      violation(fmt::format("send() of node {} shard {} returned index {}, expected {}",
                            replica.node, replica.shard, *sent, replica.sent_hashes.size()));
    }
    replica.sent_hashes.push_back(hash_bytes(replica.backlog.front()));
    replica.backlog.pop_front();
  }
}

void Cluster::tick(std::size_t node_index) {
  SimNode& node = *nodes[node_index];
  ++node.ticks;
  std::vector<fabric::Event> events;
  node.transport->poll(events, 4096);
  for (const fabric::Event& event : events) {
    bool claimed = false;
    for (std::size_t index : node.replicas) {
      if (replicas[index]->group->handle(event)) {
        claimed = true;
        break;
      }
    }
    if (!claimed && event.kind == fabric::EventKind::write_completed) ++node.unclaimed_events;
  }
  std::uint64_t now_us = network.now_us();
  for (std::size_t index : node.replicas) {
    Replica& replica = *replicas[index];
    replica.machine->set_now(now_us);
    feed(replica);
    replica.group->step(now_us);
    if (after_step) after_step(replica);
  }
}

void Cluster::violation(std::string what) {
  constexpr std::size_t kKept = 20;
  if (violations_.size() < kKept) violations_.push_back(std::move(what));
}

void Cluster::arm_tick(std::size_t node) {
  network.schedule_after(
      options.tick_us,
      [this, node] {
        tick(node);
        arm_tick(node);
      },
      nodes[node]->id);
}

void Cluster::pause(std::size_t node) {
  paused_.at(node) = true;
  network.pause(nodes[node]->id);
}

void Cluster::resume(std::size_t node) {
  paused_.at(node) = false;
  network.resume(nodes[node]->id);
}

bool Cluster::quiescent(const std::vector<ShardId>& skip) const {
  for (std::size_t shard = 0; shard < shard_replicas.size(); ++shard) {
    if (std::find(skip.begin(), skip.end(), ShardId{static_cast<std::uint32_t>(shard)}) !=
        skip.end()) {
      continue;
    }
    std::size_t sent = 0;
    for (std::size_t index : shard_replicas[shard]) {
      const Replica& replica = *replicas[index];
      if (!replica.backlog.empty() || replica.group->send_queue_size() != 0) return false;
      sent += replica.sent_hashes.size();
    }
    for (std::size_t index : shard_replicas[shard]) {
      const Replica& replica = *replicas[index];
      if (replica.machine->log().size() != sent) return false;
      if (replica.group->persisted_frontier() != replica.group->delivered_version()) {
        return false;
      }
    }
  }
  return true;
}

}  // namespace squall::sim
