// Node: one squalld — the KV state machine of every shard (persistent pools under
// <data_dir>/shard-<n>/), the watch hub, the group (core::GroupNode), the replicated KvBackend
// and the REST service, wired together and shut down in order (docs/consistency.md).
//
// Threads: start(), shutdown() and the accessors from the daemon's main thread. The group's
// progress thread drives the state machines and the backend; REST threads call the backend.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "config/config.hpp"
#include "core/group_node.hpp"
#include "kvstore/file.hpp"
#include "kvstore/watch_hub.hpp"
#include "server/forwarder.hpp"
#include "server/metrics.hpp"
#include "server/replicated_backend.hpp"
#include "server/rest_service.hpp"
#include "server/shard_replica.hpp"
#include "server/watch_backend.hpp"

namespace squall::server {

struct NodeOptions {
  std::uint32_t rest_threads = 4;
  // Bound on the graceful leave at shutdown, and on waiting for requests in flight.
  std::chrono::milliseconds leave_timeout{5000};
  std::chrono::milliseconds drain_timeout{5000};
};

class GroupNodePort;

class Node {
 public:
  // Opens every shard's state machine (recovering its logs), starts the group (founding or
  // joining, asynchronously), the forwarder, the backend and the REST service.
  static Result<std::unique_ptr<Node>> start(const config::Config& config, NodeOptions options);
  ~Node();  // shutdown()
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // In a view with a majority and serving (GET /readyz).
  bool ready() const;
  // Set once the group stopped by itself (removed from the view, minority side, failure).
  std::optional<std::string> stopped_reason() const;
  // Graceful stop: refuse new requests, wait for those in flight (bounded), leave the group
  // (bounded), stop it, answer whatever is left with 503, stop REST, flush the logs.
  // Idempotent.
  void shutdown();

  std::uint16_t rest_port() const { return rest_->port(); }
  MetricsRegistry& metrics() { return metrics_; }
  kvstore::WatchHub& watch_hub() { return *hub_; }

 private:
  Node(const config::Config& config, NodeOptions options);
  Status open_replicas();
  Result<std::unique_ptr<ShardReplica>> open_replica(ShardId shard);
  Status start_group();
  Result<ClusterInfo> cluster_info() const;
  // Which shards of `topic` this node serves, and members of the others (watch streams).
  WatchPlacement watch_placement(const kvstore::Topic& topic) const;
  // Progress thread, on each installed view: the snapshot watch_placement() reads.
  void record_placement(const core::View& view);
  void register_gauges();

  const config::Config config_;
  const NodeOptions options_;
  MetricsRegistry metrics_;
  std::unique_ptr<kvstore::WatchHub> hub_;
  std::unique_ptr<HubWatchBackend> watch_;  // GET /v1/watch over hub_
  // Directories of persistent pools, by (shard, pool index); outlive the replicas.
  std::map<std::pair<std::uint32_t, std::size_t>, std::unique_ptr<kvstore::Directory>> dirs_;
  std::map<ShardId, std::unique_ptr<ShardReplica>> replicas_;
  std::unique_ptr<GroupNodePort> port_;
  std::unique_ptr<Forwarder> forwarder_;
  std::unique_ptr<ReplicatedBackend> backend_;
  std::unique_ptr<core::GroupNode> group_;
  std::unique_ptr<RestService> rest_;

  mutable std::mutex mutex_;
  std::optional<std::string> stopped_reason_;  // GUARDED_BY(mutex_)
  std::atomic<bool> leaving_{false};
  bool shut_down_ = false;
  std::atomic<std::uint32_t> view_id_{0};
  std::atomic<std::size_t> view_members_{0};
  // Per shard, the persistence frontier last reported (entries made before the group starts).
  std::map<ShardId, std::atomic<Version>> persisted_;
  // Per shard: none when served here, else its members' REST addresses (empty before a view).
  mutable std::mutex placement_mutex_;
  std::vector<std::optional<RemoteShard>> placement_;  // GUARDED_BY(placement_mutex_)
};

}  // namespace squall::server
