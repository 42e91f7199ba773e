// ValueBackend: where the records behind the index live. Two kinds:
// - LogBackend: the persistent mode; records in the SegmentLog, values read back with pread.
// - MemoryBackend: the volatile mode; values kept in memory, nothing on disk, sync() free.
// The index stores each version's Location and never looks inside it.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "common/bytes.hpp"
#include "kvstore/segment_log.hpp"

namespace squall::kvstore {

// What the index stopped needing of a record.
enum class Release : std::uint8_t {
  record,      // the whole record (a discarded version)
  value_only,  // its value: the version became the key's history-gap marker
  gap_record,  // a history-gap marker (its value was released before)
};

class ValueBackend {
 public:
  virtual ~ValueBackend() = default;
  // Stores `records` in order (all or nothing) and writes their locations.
  virtual Status append(std::span<const RecordFields> records, std::span<Location> locations) = 0;
  // Makes everything appended durable; returns the highest durable version.
  virtual Result<Version> sync() = 0;
  virtual Version durable_version() const = 0;
  // Reads the value of a record. Code::aborted: the record moved (compaction); look it up again.
  virtual Status read(const RecordRef& ref, Bytes& value) const = 0;
  // The index stopped needing (part of) the record at `location`; `freed_bytes` of the log
  // became garbage.
  virtual void release(Location location, std::uint64_t freed_bytes, Release what) = 0;
};

// The persistent backend: a thin adapter over SegmentLog (which the Store also uses directly
// for recovery and compaction).
class LogBackend final : public ValueBackend {
 public:
  explicit LogBackend(SegmentLog& log) : log_(log) {}
  Status append(std::span<const RecordFields> records, std::span<Location> locations) override {
    return log_.append(records, locations);
  }
  Result<Version> sync() override { return log_.sync(); }
  Version durable_version() const override { return log_.durable_version(); }
  Status read(const RecordRef& ref, Bytes& value) const override { return log_.read(ref, value); }
  void release(Location location, std::uint64_t freed_bytes, Release what) override;

 private:
  SegmentLog& log_;
};

// The volatile backend: one heap buffer per live value, slots reused through a free list.
// Thread-safe (own mutex), so reads need no lock of the caller's.
class MemoryBackend final : public ValueBackend {
 public:
  Status append(std::span<const RecordFields> records, std::span<Location> locations) override;
  Result<Version> sync() override;
  Version durable_version() const override;
  Status read(const RecordRef& ref, Bytes& value) const override;
  void release(Location location, std::uint64_t freed_bytes, Release what) override;

  std::uint64_t value_bytes() const;

 private:
  mutable std::mutex mutex_;
  std::vector<Bytes> values_;          // GUARDED_BY(mutex_)
  std::vector<Location> free_slots_;   // GUARDED_BY(mutex_)
  std::uint64_t value_bytes_ = 0;      // GUARDED_BY(mutex_)
  Version last_version_ = 0;           // GUARDED_BY(mutex_)
};

}  // namespace squall::kvstore
