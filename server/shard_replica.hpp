// ShardReplica: this node's replica of one shard as the daemon runs it — the KV state machine
// (kvstore::KvStateMachine) that the group drives, plus what the daemon needs around it:
//  - every update's outcome goes to `results` (the backend answers its clients from it);
//  - every delivered write (a put or a tombstone that took effect, stateless pools included)
//    is published to the node's watch hub, in version order;
//  - local reads (get, list, history) for the backend, after it decided they may be served;
//  - the watch hub's history of the shard (watch_history()): replays older than the hub's
//    window read the current stores, and install() restarts the hub's window of the shard.
//
// The hub's view of the shard stays exact across state transfer: it is given a frontier never
// above the version applied here (a replica catching up below the group's frontier publishes
// what it applies), and install() — which jumps past versions the hub never saw — calls
// WatchHub::reset_shard, which drops the shard's watchers to resume through the history.
// Threads: the StateMachine methods on the node's progress thread (the contract);
// delivered_version() from any thread; get/list/history and the watch history from any
// thread, concurrently with apply() (the stores allow readers beside their writer) —
// install(), which replaces the stores, excludes them with `stores_mutex_`.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "core/state_machine.hpp"
#include "kvstore/kv_state_machine.hpp"
#include "kvstore/watch_hub.hpp"
#include "server/kv_backend.hpp"

namespace squall::server {

class ShardReplica final : public core::StateMachine {
 public:
  // `hub` may be null (no watch publication); it must outlive the replica.
  ShardReplica(ShardId shard, std::unique_ptr<kvstore::KvStateMachine> machine,
               kvstore::WatchHub* hub);
  ~ShardReplica() override;

  // Every update's outcome (on the progress thread, during apply()).
  std::function<void(ShardId shard, const kvstore::KvResult& result)> results;

  // core::StateMachine, forwarded to the KV state machine.
  Status apply(const core::DeliveredUpdate& update) override;
  Version persisted_version() override { return machine_->persisted_version(); }
  Version applied_version() const override { return machine_->applied_version(); }
  Result<core::Checkpoint> make_checkpoint() override { return machine_->make_checkpoint(); }
  Result<std::vector<core::LoggedUpdate>> read_log(Version after,
                                                   std::size_t max_bytes) override {
    return machine_->read_log(after, max_bytes);
  }
  Status install(const core::Checkpoint& checkpoint,
                 std::span<const core::LoggedUpdate> suffix) override;

  // The shard's persistence frontier moved (progress thread): passed on to the watch hub,
  // capped at the version applied here (the rest follows as apply() reaches it).
  void frontier(Version frontier);

  // The shard's events from the current stores, for WatchHub::add_shard: thread-safe, valid
  // while the replica lives. Stateless pools have no history (topics touching them: gone).
  const kvstore::WatchHistory* watch_history() const;

  ShardId shard() const { return shard_; }
  kvstore::KvStateMachine& machine() { return *machine_; }
  // Timestamp of the last update applied here (0 before the first).
  HlcTimestamp delivered_timestamp() const { return delivered_timestamp_; }
  Version delivered_version() const { return delivered_version_.load(); }

  // Local reads. `at` with Kind::time carries microseconds (KvBackend's convention).
  // not_found: absent or deleted there (or a stateless pool); out_of_range: history gone.
  Result<GetResult> get(const std::string& key, ReadPoint at) const;
  // Keys with the prefix after start_after, merged over the shard's pools (every key in
  // `result` belongs to this shard). `more`: the page stopped before the end of the shard.
  Result<ListResult> list(const ListRequest& request, ReadPoint at) const;
  Result<HistoryResult> history(const HistoryRequest& request) const;

 private:
  class History;
  void publish(const core::DeliveredUpdate& update);
  void advance_hub_frontier();

  const ShardId shard_;
  std::unique_ptr<kvstore::KvStateMachine> machine_;
  kvstore::WatchHub* hub_;
  mutable std::shared_mutex stores_mutex_;  // shared: reads; exclusive: install()
  // The result of the update being applied (set by the machine's on_result).
  std::optional<kvstore::KvResult> last_result_;
  HlcTimestamp delivered_timestamp_ = 0;
  Version reported_frontier_ = 0;  // the highest frontier reported by the group
  Version hub_frontier_ = 0;       // the highest frontier given to the hub (<= applied)
  std::unique_ptr<History> history_;
  std::atomic<Version> delivered_version_{0};
};

// kvstore's read point for a KvBackend one (time in microseconds -> HLC).
kvstore::ReadPoint store_read_point(ReadPoint at);

}  // namespace squall::server
