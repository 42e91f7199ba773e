// Checker: the invariants of the ordered multicast, checked on every delivery and step of a
// simulated cluster, as the run goes.
//
// Safety, per shard:
// - every replica delivers the same sequence: the k-th delivery of each replica has the same
//   version, timestamp, sender, sender_index and payload as the first replica's k-th;
// - versions and timestamps strictly increase at each replica;
// - each sender's messages are delivered in the order sent, each exactly once, with the
//   payload that was sent;
// - the persistence frontier never moves back and never passes the delivered version; each
//   `persisted` callback reports a higher frontier than the one before, equal to the group's.
// Final (after quiescence): every accepted message was delivered at every replica of its
// shard, the frontier equals the last version everywhere, and the replicas' checksums agree.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cluster.hpp"

namespace squall::sim {

class Checker {
 public:
  // Hooks itself into the cluster's state machines and steps.
  explicit Checker(Cluster& cluster);

  // Shards in `crashed_shards` lost `crashed_node` and ended by a ragged trim: there the
  // survivors must agree with each other (not deliver everything sent).
  void check_final(const std::vector<ShardId>& crashed_shards = {},
                   std::optional<std::size_t> crashed_node = std::nullopt);
  std::uint64_t deliveries() const { return deliveries_; }

 private:
  struct Record {
    Version version = 0;
    HlcTimestamp timestamp = 0;
    NodeId sender;
    std::uint64_t sender_index = 0;
    std::uint64_t payload_hash = 0;
  };
  struct ReplicaState {
    std::size_t delivered = 0;
    Version last_version = 0;
    HlcTimestamp last_timestamp = 0;
    Version last_frontier = 0;
    Version last_reported = 0;  // by the persisted callback
    std::vector<std::uint64_t> next_index;  // per sender rank
  };

  void on_apply(std::size_t index, const core::DeliveredUpdate& update);
  void after_step(std::size_t index);
  void on_persisted(std::size_t index, Version frontier);
  std::size_t index_of(const Replica& replica) const;

  Cluster& cluster_;
  std::vector<std::vector<Record>> reference_;  // per shard
  std::vector<ReplicaState> states_;            // per replica index
  std::uint64_t deliveries_ = 0;
};

}  // namespace squall::sim
