// Store: one shard replica's versioned key-value state: the index over a value backend (the
// segment log, or memory in volatile mode), with retention and compaction.
//
// Writes arrive in the shard's total order (apply), each with the version and HLC timestamp
// the group assigned; versions strictly increase and timestamps never decrease. A write is
// readable as soon as apply() returns and durable once sync() reports its version. Reads are
// by key at the latest version, at a version, or at a time; history and prefix listings are
// paginated. Deleted keys are tombstones: a version of their own, absent for reads.
//
// Threads: apply() from one writer thread; sync() from one thread (may differ from the
// writer, to overlap fsync with appends); reads from any threads; apply_retention() and
// compact() from one maintenance thread. Readers share a lock with each other; the writer
// holds it exclusively only to insert a batch into the index, retention for one sweep batch,
// and compaction for one batch of moved records: those bound every pause (StoreStats).
#pragma once

#include <array>
#include <atomic>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/clock.hpp"
#include "kvstore/file.hpp"
#include "kvstore/segment_log.hpp"
#include "kvstore/value_backend.hpp"
#include "kvstore/version_index.hpp"

namespace squall::kvstore {

enum class StorageMode : std::uint8_t {
  persistent,  // versioned and logged to disk
  in_memory,   // versioned, memory only ("volatile" pools); lost on restart
};

struct StoreOptions {
  StorageMode mode = StorageMode::persistent;
  LogOptions log;
  RetentionPolicy retention;
  std::size_t max_key_bytes = 4096;
  std::size_t max_value_bytes = 16ULL << 20;
  std::size_t max_page_items = 10000;     // largest history/list page
  std::size_t list_scan_keys = 100000;    // keys one list call may examine
  std::size_t change_scan_keys = 4096;     // keys changes() visits per shared lock hold
  std::size_t retention_batch_keys = 4096;        // keys per exclusive lock hold in a sweep
  std::size_t compaction_batch_records = 1024;    // moved records per exclusive lock hold
  double compaction_garbage_ratio = 0.5;  // rewrite a sealed segment once this much is garbage

  Status validate() const;
};

// One write in the shard's order. `value` is empty for Op::del.
struct Update {
  Version version = 0;
  HlcTimestamp timestamp = 0;
  Op op = Op::put;
  std::string_view key;
  std::span<const std::byte> value;
};

struct ReadResult {
  Entry entry;
  Bytes value;
};

// One put or tombstone of a key, as Store::changes() lists it.
struct Change {
  std::string key;
  Entry entry;
};

// The writes under a prefix in version order (Store::changes()).
struct ChangePage {
  std::vector<Change> changes;  // ascending versions
  // The page covers (after, through]: every put and tombstone under the prefix with a version
  // in that range is in `changes`. through == upto once the range is exhausted.
  Version through = 0;
};

struct RetentionStats {
  std::size_t keys_visited = 0;
  std::size_t versions_discarded = 0;
  std::size_t keys_dropped = 0;
};

struct CompactionStats {
  std::size_t segments_rewritten = 0;
  std::size_t segments_removed = 0;
  std::size_t records_moved = 0;
  std::uint64_t bytes_before = 0;
  std::uint64_t bytes_after = 0;
};

struct StoreStats {
  std::size_t keys = 0;
  std::uint64_t versions = 0;  // index slots, history-gap markers included
  std::uint64_t log_bytes = 0;
  std::size_t segments = 0;
  Version last_version = 0;
  Version durable_version = 0;
  bool failed = false;
  std::uint64_t max_exclusive_hold_us = 0;  // longest exclusive index lock hold so far
  // Exclusive index lock holds by duration: bucket 0 counts holds under 1 us, bucket i >= 1
  // those of [2^(i-1), 2^i) us (the last bucket: anything longer).
  std::array<std::uint64_t, 24> exclusive_holds_log2_us{};
};

class Store {
 public:
  // Opens a store. Persistent mode recovers the log in `directory` (which must outlive the
  // store) and applies the retention policy; in-memory mode ignores `directory` (may be null).
  // `clock` gives the wall time for the age limit.
  static Result<std::unique_ptr<Store>> open(Directory* directory, StoreOptions options,
                                             const Clock& clock);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Appends a batch in order; readable on return, durable after sync(). All or nothing.
  // Errors: invalid_argument (bad batch, nothing changed), no_space (nothing changed, retry
  // later), io_error (the log failed: the store accepts no more writes).
  Status apply(std::span<const Update> updates);
  Status put(Version version, HlcTimestamp timestamp, std::string_view key,
             std::span<const std::byte> value);
  Status remove(Version version, HlcTimestamp timestamp, std::string_view key);

  // One fdatasync for everything applied so far; returns the highest durable version.
  Result<Version> sync();
  Version durable_version() const;
  Version last_version() const { return last_version_.load(); }

  // The raw lookup: the version at `at` (a put or a tombstone), absent, or gone.
  FindResult lookup(std::string_view key, ReadPoint at) const;
  // The value at `at`. not_found: absent or deleted there; out_of_range: history discarded.
  Result<ReadResult> get(std::string_view key, ReadPoint at = ReadPoint::latest()) const;
  // Versions newest first, older than `before` (exclusive). limit in [1, max_page_items].
  Result<HistoryPage> history(std::string_view key, std::optional<Version> before,
                              std::size_t limit) const;
  // Existing keys with `prefix` after `start_after` at `at`. limit in [1, max_page_items].
  Result<ListPage> list(std::string_view prefix, std::string_view start_after,
                        std::size_t limit, ReadPoint at = ReadPoint::latest()) const;

  // The log of the keys under `prefix`: every put and tombstone with a version in
  // (after, upto], ascending, at most `max_items` in [1, max_page_items] (the smallest
  // versions; the page says how far it covers). out_of_range ("gone") when a version above
  // `after` of a key under the prefix may have been discarded: a key's newest discarded
  // version (its history-gap marker) is above `after`, or the floor is (keys dropped entirely,
  // history before start_history_after()). Exact per key; dropped keys count for every prefix.
  // REQUIRES: every write up to `upto` has been applied (none at or below it arrives later).
  // Cost (docs/storage.md, "Changes under a prefix"): every key under the prefix is visited
  // (a binary search in its versions), change_scan_keys per shared lock hold; memory is
  // O(max_items) whatever the range.
  Result<ChangePage> changes(std::string_view prefix, Version after, Version upto,
                             std::size_t max_items) const;
  // The lowest `after` changes(prefix, ...) accepts now: the newest version discarded under the
  // prefix, or the floor if higher (0: nothing was ever discarded). Costs one changes() scan.
  Version changes_horizon(std::string_view prefix) const;
  // The value of put `version` of `key`. out_of_range: that version is no longer retained;
  // invalid_argument: it is a tombstone.
  Result<Bytes> read_version(std::string_view key, Version version) const;
  // Declares that this store's history starts after `version`: versions up to it may be
  // missing (the store was filled from a checkpoint, which holds only each key's latest
  // version; or it starts empty in place of history lost in a restart). Raises the floor to
  // (version, timestamp), durably in persistent mode, so that reads and changes() below it are
  // gone rather than wrong. From the maintenance side (not concurrently with compact()).
  Status start_history_after(Version version, HlcTimestamp timestamp);

  // Runs the retention policy over every key, in batches of retention_batch_keys per lock
  // hold. Only durable versions justify a discard (VersionIndex::sweep), so call it after
  // sync() to trim what the last writes superseded.
  Result<RetentionStats> apply_retention();
  // Rewrites sealed segments whose garbage reached the ratio (persistent mode; no-op else).
  Result<CompactionStats> compact();

  StoreStats stats() const;
  const StoreOptions& options() const { return options_; }

 private:
  Store(Directory* directory, StoreOptions options, const Clock& clock);
  Status recover();
  Status validate_batch(std::span<const Update> updates) const;
  void release(std::string_view key, const Entry& entry, bool as_gap);
  Status read_value(std::string_view key, const Entry& entry, Bytes& value) const;
  Status load_floor();
  Status persist_floor();
  Result<CompactionStats> compact_segment(const SegmentInfo& segment);
  Status relocate_moved(const std::vector<Moved>& moved);
  void note_hold(std::uint64_t start_us);
  // Visits every key under `prefix` (store_changes.cpp), offering `take` its versions in
  // (after, upto]; returns the horizon: max(newest version discarded under it, floor).
  Version scan_changes(std::string_view prefix, Version after, Version upto,
                       const ChangeFn& take) const;
  // Retention may discard a version only for the sake of versions up to this one.
  Version retention_horizon() const;

  Directory* directory_;
  const StoreOptions options_;
  const Clock& clock_;
  std::unique_ptr<SegmentLog> log_;          // persistent mode only
  std::unique_ptr<ValueBackend> backend_;

  mutable std::shared_mutex index_mutex_;
  VersionIndex index_;                       // GUARDED_BY(index_mutex_)
  // During recovery the log's segment table is not built yet: garbage is counted here first.
  std::unordered_map<std::uint32_t, std::uint64_t> recovery_garbage_;

  std::atomic<Version> last_version_{0};
  HlcTimestamp last_timestamp_ = 0;          // writer thread only
  std::vector<RecordFields> records_;        // writer scratch
  std::vector<Location> locations_;          // writer scratch
  std::mutex maintenance_mutex_;             // one retention/compaction at a time
  Version persisted_floor_version_ = 0;      // GUARDED_BY(maintenance_mutex_)
  HlcTimestamp persisted_floor_time_ = 0;    // GUARDED_BY(maintenance_mutex_)
  std::atomic<std::uint64_t> max_hold_us_{0};
  std::array<std::atomic<std::uint64_t>, 24> holds_log2_us_{};
};

// The HLC read point covering every write whose physical time is at or before `timestamp_us`.
inline ReadPoint at_time_us(std::uint64_t timestamp_us) {
  return ReadPoint::at_time(hlc_make(timestamp_us, (1U << kHlcLogicalBits) - 1));
}

}  // namespace squall::kvstore
