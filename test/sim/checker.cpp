#include "checker.hpp"

#include <fmt/format.h>

namespace squall::sim {

Checker::Checker(Cluster& cluster) : cluster_(cluster), reference_(cluster.shards()) {
  states_.resize(cluster.replicas.size());
  for (std::size_t index = 0; index < cluster.replicas.size(); ++index) {
    Replica& replica = *cluster.replicas[index];
    states_[index].next_index.assign(cluster.shard_size(replica.shard), 0);
    replica.machine->on_apply = [this, index](const core::DeliveredUpdate& update) {
      on_apply(index, update);
    };
  }
  cluster.after_step = [this](Replica& replica) { after_step(index_of(replica)); };
  cluster.on_persisted = [this](Replica& replica, Version frontier) {
    on_persisted(index_of(replica), frontier);
  };
}

void Checker::on_persisted(std::size_t index, Version frontier) {
  Replica& replica = *cluster_.replicas[index];
  ReplicaState& state = states_[index];
  if (frontier <= state.last_reported || frontier != replica.group->persisted_frontier()) {
    cluster_.violation(fmt::format("shard {} replica {}: persisted callback with {:#x} after "
                                   "{:#x} (frontier {:#x})", replica.shard, replica.rank,
                                   frontier, state.last_reported,
                                   replica.group->persisted_frontier()));
  }
  state.last_reported = frontier;
}

std::size_t Checker::index_of(const Replica& replica) const {
  for (std::size_t index = 0; index < cluster_.replicas.size(); ++index) {
    if (cluster_.replicas[index].get() == &replica) return index;
  }
  SQUALL_UNREACHABLE("unknown replica");
}

void Checker::on_apply(std::size_t index, const core::DeliveredUpdate& update) {
  ++deliveries_;
  Replica& replica = *cluster_.replicas[index];
  ReplicaState& state = states_[index];
  std::string where = fmt::format("shard {} replica {} (node {}) delivery #{}", replica.shard,
                                  replica.rank, replica.node, state.delivered);
  if (update.version <= state.last_version) {
    cluster_.violation(fmt::format("{}: version {:#x} after {:#x}", where, update.version,
                                   state.last_version));
  }
  if (update.timestamp <= state.last_timestamp) {
    cluster_.violation(fmt::format("{}: timestamp {} after {}", where, update.timestamp,
                                   state.last_timestamp));
  }
  // Versions are dense: the view's delivered-data counter counts updates (packed slots
  // included), 1, 2, 3, ...
  Version dense = state.last_version != 0 &&
                          version_view(state.last_version) == version_view(update.version)
                      ? state.last_version + 1
                      : make_version(version_view(update.version), 1);
  if (update.version != dense) {
    cluster_.violation(fmt::format("{}: version {:#x}, expected {:#x} (versions are dense)",
                                   where, update.version, dense));
  }
  state.last_version = update.version;
  state.last_timestamp = update.timestamp;

  const auto& members = replica.group->options().members;
  auto sender = static_cast<std::size_t>(
      std::find(members.begin(), members.end(), update.sender) - members.begin());
  std::uint64_t payload_hash = hash_bytes(update.payload);
  if (sender >= members.size()) {
    cluster_.violation(fmt::format("{}: unknown sender {}", where, update.sender));
  } else {
    Replica& origin = cluster_.replica(replica.shard, sender);
    if (update.sender_index != state.next_index[sender]) {
      cluster_.violation(fmt::format("{}: sender {} index {} but {} expected", where, sender,
                                     update.sender_index, state.next_index[sender]));
    } else if (update.sender_index >= origin.sent_hashes.size() ||
               origin.sent_hashes[update.sender_index] != payload_hash) {
      cluster_.violation(fmt::format("{}: payload of sender {} index {} is not what was sent",
                                     where, sender, update.sender_index));
    }
    state.next_index[sender] = update.sender_index + 1;
  }

  Record record{update.version, update.timestamp, update.sender, update.sender_index,
                payload_hash};
  std::vector<Record>& reference = reference_[replica.shard.value];
  if (state.delivered == reference.size()) {
    reference.push_back(record);
  } else {
    const Record& expected = reference[state.delivered];
    if (expected.version != record.version || expected.timestamp != record.timestamp ||
        expected.sender != record.sender || expected.sender_index != record.sender_index ||
        expected.payload_hash != record.payload_hash) {
      cluster_.violation(fmt::format(
          "{}: delivered (v {:#x}, t {}, sender {}, index {}) where another replica delivered "
          "(v {:#x}, t {}, sender {}, index {})", where, record.version, record.timestamp,
          record.sender, record.sender_index, expected.version, expected.timestamp,
          expected.sender, expected.sender_index));
    }
  }
  ++state.delivered;
}

void Checker::after_step(std::size_t index) {
  Replica& replica = *cluster_.replicas[index];
  ReplicaState& state = states_[index];
  Version frontier = replica.group->persisted_frontier();
  if (frontier < state.last_frontier) {
    cluster_.violation(fmt::format("shard {} replica {}: frontier moved back from {:#x} to {:#x}",
                                   replica.shard, replica.rank, state.last_frontier, frontier));
  }
  if (frontier > replica.group->delivered_version()) {
    cluster_.violation(fmt::format("shard {} replica {}: frontier {:#x} passed delivered {:#x}",
                                   replica.shard, replica.rank, frontier,
                                   replica.group->delivered_version()));
  }
  state.last_frontier = frontier;
}

void Checker::check_final(const std::vector<ShardId>& crashed_shards,
                          std::optional<std::size_t> crashed_node) {
  for (std::uint32_t shard_index = 0; shard_index < cluster_.shards(); ++shard_index) {
    ShardId shard{shard_index};
    bool crashed = std::find(crashed_shards.begin(), crashed_shards.end(), shard) !=
                   crashed_shards.end();
    std::size_t sent = 0;
    const Replica* first = nullptr;
    for (std::size_t index : cluster_.shard_replicas[shard_index]) {
      const Replica& replica = *cluster_.replicas[index];
      sent += replica.sent_hashes.size();
      if (first == nullptr && replica.node != crashed_node) first = &replica;
    }
    for (std::size_t index : cluster_.shard_replicas[shard_index]) {
      const Replica& replica = *cluster_.replicas[index];
      if (replica.node == crashed_node) continue;
      std::string where = fmt::format("shard {} replica {}", shard, replica.rank);
      std::size_t expected = crashed ? states_[index_of(*first)].delivered : sent;
      if (states_[index].delivered != expected) {
        cluster_.violation(fmt::format("{}: delivered {} messages, {} expected", where,
                                       states_[index].delivered, expected));
      }
      if (replica.group->persisted_frontier() != replica.group->delivered_version()) {
        cluster_.violation(fmt::format("{}: idle, but frontier {:#x} != last version {:#x}",
                                       where, replica.group->persisted_frontier(),
                                       replica.group->delivered_version()));
      }
      if (states_[index].last_reported != replica.group->persisted_frontier()) {
        cluster_.violation(fmt::format("{}: last persisted callback {:#x}, frontier {:#x}",
                                       where, states_[index].last_reported,
                                       replica.group->persisted_frontier()));
      }
      if (replica.machine->checksum() != first->machine->checksum()) {
        cluster_.violation(fmt::format("{}: checksum differs from replica {}", where,
                                       first->rank));
      }
    }
  }
}

}  // namespace squall::sim
