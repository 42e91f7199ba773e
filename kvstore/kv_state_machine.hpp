// KvStateMachine: the KV service of one shard replica — core::StateMachine over one Store per
// stored pool (docs/kv.md).
//
// apply() decodes an update (kvstore/kv_codec.hpp), evaluates its condition against the
// store's state at apply time — the same on every replica, since every replica applies the
// same updates in the same order — and either writes (a put, or a tombstone, with the
// delivered version and timestamp) or records the outcome without writing (a failed
// precondition, a delete of an absent key). Every update consumes its version in the shard's
// order, whether it wrote or not. The outcome goes to `on_result` on every replica; the node
// that took the request (RequestId::origin) answers its client once the persistence frontier
// passes the version.
//
// A barrier update (KvOp::barrier) writes nothing and reports an `ok` result: it only marks a
// place in the order, for linearizable reads (docs/consistency.md).
//
// Pools: each key belongs to a pool (longest prefix). persistent pools have a logged Store on
// the pool's Directory, volatile pools an in-memory Store, stateless pools none (their
// updates only produce results, for the watch hub later).
//
// Persistence (group commit): Store::apply only reaches the page cache; a sync makes
// everything applied before it durable, and persisted_version() then reports the applied
// version captured just before that sync started — which covers updates that wrote nothing,
// so the frontier moves across failed preconditions too. With `sync_thread`, syncs run on a
// thread of their own, back to back while anything is pending, so the progress thread never
// waits for an fsync; without it, persisted_version() syncs inline (tests, simulations).
//
// Threads: every public method from the node's progress thread (the StateMachine contract);
// the sync thread only calls Store::sync().
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "common/clock.hpp"
#include "core/state_machine.hpp"
#include "kvstore/kv_codec.hpp"
#include "kvstore/pool.hpp"
#include "kvstore/store.hpp"

namespace squall::kvstore {

// What became of one update. Maps to the API: ok 200, created 201, precondition_failed 412,
// not_found 404.
enum class KvOutcome : std::uint8_t {
  ok,                   // written; the key existed before (put) or was deleted (delete)
  created,              // written; a put to a key that was absent or deleted
  precondition_failed,  // nothing written; current_version says what the key is at
  not_found,            // a delete of an absent or deleted key: nothing written
};

std::string_view name(KvOutcome outcome);

struct KvResult {
  RequestId request;
  KvOp op = KvOp::put;
  KvOutcome outcome = KvOutcome::ok;
  Version version = 0;          // the update's version (consumed even when nothing was written)
  HlcTimestamp timestamp = 0;   // the update's timestamp
  // precondition_failed: the key's current version; none when it is absent or deleted.
  std::optional<Version> current_version;
  bool operator==(const KvResult&) const = default;
};

struct KvStateMachineOptions {
  // The layout's pools; must contain the default pool "" (config validation ensures it).
  std::vector<config::PoolConfig> pools = {config::PoolConfig{}};
  KvCodecLimits limits;
  // Settings of every pool's Store; mode and retention are set per pool.
  StoreOptions store;
  // Group commit: a sync starts once this many updates are pending (inline mode also syncs
  // when asked with request_sync(), or when a poll finds the order quiet since the last one).
  std::uint64_t sync_every_updates = 256;
  bool sync_thread = true;
  // Writes read_log() asks of each store per call (<= store.max_page_items).
  std::size_t log_page_changes = 1024;
  // Largest checkpoint make_checkpoint() builds (no_space beyond).
  std::uint64_t max_checkpoint_bytes = 1ULL << 30;

  Status validate() const;
};

// The Directory of a persistent pool (by index in options.pools); it must outlive the machine.
using DirectoryProvider =
    std::function<Result<Directory*>(std::size_t pool_index, const config::PoolConfig& pool)>;

struct KvStats {
  std::uint64_t applied = 0;
  std::uint64_t written = 0;
  std::uint64_t precondition_failed = 0;
  std::uint64_t not_found = 0;
  std::uint64_t malformed = 0;  // undecodable payloads, skipped as no-ops
  std::uint64_t already_stored = 0;  // replayed updates a store held already
  std::uint64_t syncs = 0;
};

class KvStateMachine final : public core::StateMachine {
 public:
  // Opens (recovering) every persistent pool's store and creates the in-memory ones.
  static Result<std::unique_ptr<KvStateMachine>> open(KvStateMachineOptions options,
                                                      DirectoryProvider directories,
                                                      const Clock& clock);
  ~KvStateMachine() override;

  // Called from apply() (and never from install()) with every update's outcome.
  std::function<void(const KvResult&)> on_result;

  Status apply(const core::DeliveredUpdate& update) override;
  Version persisted_version() override;
  Version applied_version() const override { return applied_version_; }
  Result<core::Checkpoint> make_checkpoint() override;
  // Served from the stores, not from a copy of the delivered updates: every put and tombstone
  // above `after` re-encoded as an unconditional update (sender and request id unknown: 0),
  // plus a payload-less "filler" at applied_version() when that version wrote nothing. No-op
  // updates in between are not carried. install() or replay() of the suffix reproduces every
  // key's history and the applied version (docs/storage.md, "The update log for state
  // transfer"). out_of_range when a store no longer holds everything above `after`.
  Result<std::vector<core::LoggedUpdate>> read_log(Version after,
                                                   std::size_t max_bytes) override;
  Status install(const core::Checkpoint& checkpoint,
                 std::span<const core::LoggedUpdate> suffix) override;

  // Applies logged updates (ascending) above applied_version() without reporting results:
  // the catch-up of a replica that restarted with its stores (after open(), a suffix from
  // recovered_version()). Updates a store already holds are skipped.
  Status replay(std::span<const core::LoggedUpdate> suffix);
  // After open(): every update up to this version is in the recovered stores, so state
  // transfer needs only the suffix after it (open() starts applied_version() here).
  Version recovered_version() const;

  // Asks for a sync of everything applied so far at the next poll (a client waits).
  void request_sync() { sync_requested_ = true; }
  // Makes everything applied so far durable before it returns (shutdown, tests): blocks for
  // a sync. The error of a failed sync.
  Status flush();

  const PoolSet& pools() const { return pools_; }
  // The store of pool `index`; null for stateless pools.
  Store* store(std::size_t index) const { return stores_.at(index).get(); }
  Store* store_for_key(std::string_view key) const { return store(pools_.pool_index(key)); }
  KvStats stats() const {
    KvStats stats = stats_;
    stats.syncs = syncs_.load();
    return stats;
  }
  const KvStateMachineOptions& options() const { return options_; }

 private:
  KvStateMachine(KvStateMachineOptions options, DirectoryProvider directories,
                 const Clock& clock);
  Status open_stores();
  Result<std::unique_ptr<Store>> open_store(std::size_t index, bool wipe);
  // Applies one update; `report`: call on_result.
  Status apply_update(const core::DeliveredUpdate& update, bool report);
  Result<KvResult> execute(const KvUpdate& update, Version version, HlcTimestamp timestamp);
  bool has_persistent_store() const;
  // Sync (kv_sync.cpp).
  Status sync_stores();
  void start_sync_thread();
  void stop_sync_thread();
  void sync_loop(Version done);  // `done`: the version already durable at start
  bool sync_due();
  // Checkpoints (kv_transfer.cpp).
  Status install_entries(const core::Checkpoint& checkpoint);

  KvStateMachineOptions options_;
  DirectoryProvider directories_;
  const Clock& clock_;
  PoolSet pools_;
  std::vector<std::unique_ptr<Store>> stores_;  // by pool index; null: stateless
  KvStats stats_;

  Version applied_version_ = 0;
  HlcTimestamp applied_timestamp_ = 0;
  std::uint64_t pending_updates_ = 0;     // applied since the last sync started
  bool applied_since_poll_ = false;
  bool sync_requested_ = false;
  Version persisted_inline_ = 0;          // inline mode

  // Sync thread.
  std::thread sync_thread_;
  std::mutex sync_mutex_;
  std::condition_variable sync_wake_;
  std::condition_variable sync_done_;     // a sync completed (or failed)
  Status sync_failure_;                   // GUARDED_BY(sync_mutex_); ok until a sync fails
  Version sync_target_ = 0;               // GUARDED_BY(sync_mutex_)
  bool sync_stop_ = false;                // GUARDED_BY(sync_mutex_)
  std::atomic<Version> persisted_{0};
  std::atomic<std::uint64_t> syncs_{0};
};

}  // namespace squall::kvstore
