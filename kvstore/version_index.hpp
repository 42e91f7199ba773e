// VersionIndex: every key's retained versions, in memory, keys in byte order.
//
// Per key, a sorted array of versions (version, HLC timestamp, op, value size, location of the
// record). Versions of the whole store strictly increase and timestamps never decrease, so
// each key's array is sorted by both and every read at a version or a time is a binary
// search: O(log keys + log versions). Values are not here; `location` says where the value
// backend keeps them (the log, or memory in volatile mode).
//
// Retention discards old versions. Where a key lost history, its array starts with a
// *history gap* slot (the newest discarded version, op history_gap): a read that would need
// anything at or before it is Lookup::gone, never a wrong answer. Keys dropped entirely (a
// tombstone older than the age limit) raise the *floor*: reads of absent keys below it are
// gone too, since a dropped key may have existed there.
//
// Not thread-safe: the owner (Store) serializes writers against readers.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/hlc.hpp"
#include "common/status.hpp"
#include "common/version.hpp"
#include "kvstore/record.hpp"
#include "kvstore/segment_log.hpp"

namespace squall::kvstore {

// A version as callers see it.
struct Entry {
  Version version = 0;
  HlcTimestamp timestamp = 0;
  Op op = Op::put;
  std::uint32_t value_bytes = 0;
  Location location = 0;

  friend bool operator==(const Entry&, const Entry&) = default;
};

// Largest value the index can describe (30 bits of size).
constexpr std::uint32_t kMaxIndexedValueBytes = (1U << 30) - 1;

// Where in history to read.
struct ReadPoint {
  enum class Kind : std::uint8_t { latest, version, time };
  Kind kind = Kind::latest;
  std::uint64_t value = 0;  // the version, or the HLC timestamp

  static ReadPoint latest() { return {}; }
  static ReadPoint at_version(Version version) { return {Kind::version, version}; }
  static ReadPoint at_time(HlcTimestamp timestamp) { return {Kind::time, timestamp}; }
};

enum class Lookup : std::uint8_t {
  found,   // `entry` is the key's version at the read point (a put or a tombstone)
  absent,  // the key had no version at the read point
  gone,    // retention discarded what the answer needs
};

struct FindResult {
  Lookup outcome = Lookup::absent;
  Entry entry;
};

// Versions of one key, newest first.
struct HistoryPage {
  std::vector<Entry> versions;
  std::optional<Version> next;  // pass as `before` for the next page; none: nothing older
  bool truncated = false;       // retention discarded versions older than the last returned
};

struct ListItem {
  std::string key;
  Entry entry;
};

struct ListPage {
  std::vector<ListItem> items;
  std::optional<std::string> next;  // pass as `start_after`; none: no key follows
};

struct RetentionPolicy {
  // Keep this many newest durable versions per key (and any newer, not yet durable); 0: all.
  std::uint32_t keep_versions = 0;
  // Discard versions superseded (by a durable version) longer ago than this; 0: forever.
  std::uint64_t max_age_us = 0;
  bool enabled() const { return keep_versions != 0 || max_age_us != 0; }
};

// Called for each version the index stops holding. `as_gap`: the slot stays as the key's
// history-gap marker (the record is still referenced, its value no longer needed).
using ReleaseFn = std::function<void(std::string_view key, const Entry& entry, bool as_gap)>;

// "Every version is durable": the horizon for the in-memory mode and for recovery.
constexpr Version kAllDurable = ~Version{0};

// Called for each version a change scan offers (VersionIndex::scan_changes); returns false to
// skip the key's remaining versions.
using ChangeFn = std::function<bool(std::string_view key, const Entry& entry)>;

// One step of a change scan.
struct ChangeScanStep {
  std::optional<std::string> next_key;  // where the next step starts; none: the prefix is done
  // The newest version retention discarded among the keys visited (their gap markers); 0: none.
  Version discarded = 0;
};

struct SweepResult {
  std::optional<std::string> next_key;  // where the next sweep step starts; none: done
  std::size_t keys_visited = 0;
  std::size_t versions_discarded = 0;
  std::size_t keys_dropped = 0;
};

class VersionIndex {
 public:
  explicit VersionIndex(RetentionPolicy policy = {});
  ~VersionIndex();
  VersionIndex(const VersionIndex&) = delete;
  VersionIndex& operator=(const VersionIndex&) = delete;

  // Adds a version. REQUIRES: entry.version above every version inserted before, timestamp not
  // below theirs. A history_gap entry discards the key's older versions (recovery of a
  // compacted log). The count limit applies at once, counting only versions up to
  // `durable_through` (see sweep()).
  void insert(std::string_view key, const Entry& entry, const ReleaseFn& release,
              Version durable_through = kAllDurable);

  FindResult find(std::string_view key, ReadPoint at) const;

  // Versions of `key` older than `before` (exclusive; none: from the newest), newest first,
  // at most `limit` (>= 1). History gaps are not listed; they end the history.
  HistoryPage history(std::string_view key, std::optional<Version> before,
                      std::size_t limit) const;

  // Keys with `prefix`, after `start_after`, in byte order, that exist (latest op put) at
  // `at`; at most `limit` (>= 1) items; examines at most `scan_limit` keys, then returns a
  // shorter page whose `next` continues the scan. out_of_range when retention discarded what
  // the listing needs.
  Result<ListPage> list(std::string_view prefix, std::string_view start_after,
                        std::size_t limit, ReadPoint at, std::size_t scan_limit) const;

  // Visits the keys with `prefix` from `from_key` on (inclusive), in byte order, at most
  // `max_keys`: notes the newest version each lost to retention and offers `take` the key's
  // versions in (after, upto], ascending (puts and tombstones; gap markers never). The scan
  // behind Store::changes(): versions of many keys merged by the caller.
  ChangeScanStep scan_changes(std::string_view prefix, std::string_view from_key,
                              std::size_t max_keys, Version after, Version upto,
                              const ChangeFn& take) const;

  // Applies the policy with versions superseded at or before `cutoff` (an HLC timestamp) out
  // of the age limit, to at most `max_keys` keys from `from_key` on.
  //
  // Only durable versions (those up to `durable_through`) count toward the count limit or
  // supersede a version for the age limit: a crash may take the newer ones away again, and a
  // version discarded for their sake (then removed by compaction) would be lost from the
  // recovered state. Until they are durable, a key keeps its newest versions in addition.
  SweepResult sweep(HlcTimestamp cutoff, std::string_view from_key, std::size_t max_keys,
                    const ReleaseFn& release, Version durable_through = kAllDurable);

  // Points `version` of `key` at `to` if it is still at `from` (compaction moved the record);
  // `to_gap_record`: the record at `to` is a history-gap record.
  bool relocate(std::string_view key, Version version, Location from, Location to,
                bool to_gap_record);

  // Whether `key` lost history, and whether its gap marker's record on disk is a gap record
  // yet (compaction uses this to keep the loss visible after a restart).
  enum class GapState : std::uint8_t { key_absent, no_gap, gap_in_memory, gap_on_disk };
  GapState gap_state(std::string_view key) const;
  // The location of `version` of `key` if the index still holds it (gap markers included).
  std::optional<Entry> exact(std::string_view key, Version version) const;

  // Drops keys whose only slot is a history gap (possible after recovery of a compacted log,
  // when the key's tombstone was compacted away), raising the floor to cover them.
  void drop_gap_only_keys(const ReleaseFn& release);

  void set_policy(RetentionPolicy policy) { policy_ = policy; }
  const RetentionPolicy& policy() const { return policy_; }
  void raise_floor(Version version, HlcTimestamp timestamp);
  Version floor_version() const { return floor_version_; }
  HlcTimestamp floor_time() const { return floor_time_; }

  std::size_t key_count() const { return keys_.size(); }
  std::uint64_t slot_count() const { return slot_count_; }

  struct Slot;
  class KeyEntry;
  struct KeyLess {
    using is_transparent = void;
    bool operator()(const KeyEntry& a, const KeyEntry& b) const;
    bool operator()(const KeyEntry& a, std::string_view b) const;
    bool operator()(std::string_view a, const KeyEntry& b) const;
  };

 private:
  using KeySet = std::set<KeyEntry, KeyLess>;

  FindResult find_in(const KeyEntry& entry, ReadPoint at) const;
  FindResult before_history(const KeyEntry& entry, ReadPoint at) const;
  bool below_floor(ReadPoint at) const;
  void discard_oldest(const KeyEntry& entry, std::size_t count, const ReleaseFn& release);
  void enforce_count(const KeyEntry& entry, const ReleaseFn& release, Version durable_through);
  // Returns true when the key must be dropped entirely.
  bool enforce_age(const KeyEntry& entry, HlcTimestamp cutoff, const ReleaseFn& release,
                   Version durable_through, std::size_t& discarded);
  void drop_key(KeySet::iterator it, const ReleaseFn& release);

  RetentionPolicy policy_;
  KeySet keys_;
  std::uint64_t slot_count_ = 0;
  Version floor_version_ = 0;
  HlcTimestamp floor_time_ = 0;
};

}  // namespace squall::kvstore
