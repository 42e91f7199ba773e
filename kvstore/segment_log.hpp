// SegmentLog: one shard replica's append-only log of records in segment files.
//
// The folder holds segments named by the version of their first record
// ("00000000004294967296.log", 20 decimal digits so names sort like versions). Records go to
// the last ("active") segment; a batch that would push it past `segment_size_bytes` first
// seals it (fdatasync) and starts a new one, so only the active segment ever holds unsynced
// bytes and a sealed segment is immutable until compaction replaces it.
//
// Durability (group commit): append() writes each batch with one pwritev straight from the
// caller's key and value spans (no copy) and returns once the bytes are in the page cache;
// sync() issues one fdatasync covering every record appended before it started and reports
// the highest durable version. If an fdatasync ever fails the log is *failed*: every later
// append and sync returns io_error and durable_version() never moves again, because after a
// failed fsync Linux may drop the dirty pages and let a later fsync "succeed" without them.
// ENOSPC (Code::no_space) is not fatal: the batch is cut off the file again, nothing of it
// counts, and a later append may succeed once space is freed.
//
// Recovery (open): segments are scanned in order, every record's CRC verified. A defect in
// the last segment with no valid record after it is a torn tail: the file is truncated there.
// Any other defect is Code::corruption naming the file and the byte offset; nothing is
// skipped silently.
//
// Threads: append() from one writer thread; sync() from one thread (possibly another, to
// overlap fsync with appends); read() and the getters from any thread; compaction
// (rewrite_segment/retire_segment) from one thread at a time.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/bytes.hpp"
#include "kvstore/file.hpp"
#include "kvstore/record.hpp"

namespace squall::kvstore {

class SegmentScanner;

// Where a record lives: segment ordinal (high 24 bits, assigned in memory at open, rotation
// and compaction) and byte offset in that segment (low 40 bits). Never stored on disk.
using Location = std::uint64_t;
constexpr int kLocationOffsetBits = 40;
constexpr Location make_location(std::uint32_t ordinal, std::uint64_t offset) {
  return (static_cast<Location>(ordinal) << kLocationOffsetBits) | offset;
}
constexpr std::uint32_t location_ordinal(Location location) {
  return static_cast<std::uint32_t>(location >> kLocationOffsetBits);
}
constexpr std::uint64_t location_offset(Location location) {
  return location & ((Location{1} << kLocationOffsetBits) - 1);
}

struct LogOptions {
  // A batch that would grow the active segment past this starts a new segment first.
  std::uint64_t segment_size_bytes = 64ULL << 20;
  // Largest record (head + key + value) accepted; bigger on disk is corruption.
  std::uint64_t max_record_bytes = (64ULL << 20) + (64ULL << 10);
  // Most records in one append() call.
  std::size_t max_batch_records = 4096;

  Status validate() const;
};

// What recovery hands to its visitor for each valid record, in version order.
struct RecoveredRecord {
  const RecordHead& head;
  std::string_view key;
  Location location;
};
using RecordVisitor = std::function<Status(const RecoveredRecord&)>;

// What read() needs to find and check a record (all known to the index).
struct RecordRef {
  Location location = 0;
  Version version = 0;
  std::string_view key;
  std::uint32_t value_bytes = 0;
};

// A sealed segment, as compaction sees it.
struct SegmentInfo {
  std::uint32_t ordinal = 0;
  std::string name;
  Version first_version = 0;
  std::uint64_t size_bytes = 0;
  std::uint64_t garbage_bytes = 0;  // bytes of records the index no longer references
};

// Compaction's decision for one record of a segment it rewrites.
enum class Keep : std::uint8_t { drop, record, as_history_gap };

// One record moved by compaction.
struct Moved {
  std::string key;
  Version version = 0;
  Location from = 0;
  Location to = 0;
  std::uint64_t record_bytes = 0;  // size at `to`
  bool gap_record = false;         // written as a history-gap record
};

class SegmentLog {
 public:
  // Opens the log in `directory` (empty: a new log), recovering it as described above and
  // calling `visit` for every valid record in version order. A visitor error aborts the open.
  static Result<std::unique_ptr<SegmentLog>> open(Directory& directory, LogOptions options,
                                                  const RecordVisitor& visit);
  ~SegmentLog();
  SegmentLog(const SegmentLog&) = delete;
  SegmentLog& operator=(const SegmentLog&) = delete;

  // Appends `records` (versions strictly increasing, above last_version()) and writes where
  // each went into `locations`. All or nothing. Errors: invalid_argument (bad batch; the log
  // is unchanged), no_space (nothing counted; retry later), io_error (failed; see above).
  Status append(std::span<const RecordFields> records, std::span<Location> locations);

  // Makes every record appended before the call durable; returns the highest durable version.
  Result<Version> sync();

  // Reads the value of a record into `value` (resized), verifying its CRC and that it is the
  // record `ref` describes; a mismatch is corruption naming file and offset. Code::aborted:
  // the segment was retired by compaction (the caller looks the record up again).
  Status read(const RecordRef& ref, Bytes& value) const;

  Version durable_version() const { return durable_version_.load(); }
  Version last_version() const { return last_version_.load(); }
  bool failed() const { return failed_.load(); }
  std::uint64_t bytes_total() const;
  std::size_t segment_count() const;

  // The index no longer references `record_bytes` at `location` (garbage for compaction).
  void release(Location location, std::uint64_t record_bytes);
  // Sealed segments, oldest first.
  std::vector<SegmentInfo> sealed_segments() const;

  // Rewrites sealed segment `ordinal` keeping what `decide` says, into a new file that
  // atomically replaces it (written, synced, renamed, folder synced). The old segment stays
  // readable until retire_segment(); `moved` receives every kept record's new location.
  using KeepDecider = std::function<Keep(const RecordHead&, std::string_view key, Location)>;
  Status rewrite_segment(std::uint32_t ordinal, const KeepDecider& decide,
                         std::vector<Moved>& moved);
  // Forgets a segment after the index stopped pointing into it (readers already holding it
  // finish their reads first: the file closes with the last reference).
  void retire_segment(std::uint32_t ordinal);

  struct Segment;

 private:
  SegmentLog(Directory& directory, LogOptions options);

  Status recover(const RecordVisitor& visit);
  Result<bool> recover_segment(const std::string& name, bool last, const RecordVisitor& visit);
  Result<std::optional<Version>> read_segment_header(const File& file, std::uint64_t size,
                                                     bool last, const std::string& where);
  Result<std::uint64_t> scan_segment(File& file, std::uint64_t size, std::uint32_t ordinal,
                                     Version first_version, bool last, const std::string& where,
                                     const RecordVisitor& visit);
  Status handle_defect(File& file, std::uint64_t size, const SegmentScanner& scanner, bool last,
                       const std::string& where);
  Status validate_batch(std::span<const RecordFields> records) const;
  Status start_segment(Version first_version);
  Status write_batch(std::span<const RecordFields> records, std::uint64_t offset);
  Status copy_kept_records(const Segment& old, std::uint32_t old_ordinal,
                           std::uint64_t old_size, File& file, std::uint32_t new_ordinal,
                           const KeepDecider& decide, std::vector<Moved>& moved);
  Status install_rewritten(const std::shared_ptr<Segment>& old, std::shared_ptr<File> file,
                           const std::string& temporary, std::uint32_t new_ordinal,
                           bool kept_any);
  Status fail(Status status);
  void advance_durable(Version version);
  std::shared_ptr<Segment> find_segment(std::uint32_t ordinal) const;
  std::shared_ptr<Segment> active_segment() const;

  Directory& directory_;
  const LogOptions options_;

  mutable std::mutex table_mutex_;
  std::map<std::uint32_t, std::shared_ptr<Segment>> segments_;  // GUARDED_BY(table_mutex_)
  std::uint32_t next_ordinal_ = 0;                              // GUARDED_BY(table_mutex_)

  // Writer state, published under table_mutex_ so sync() sees a consistent pair.
  std::uint32_t active_ordinal_ = 0;  // valid when has_active_
  bool has_active_ = false;
  std::uint64_t active_end_ = 0;      // bytes of the active segment that hold records

  std::mutex sync_mutex_;             // one sync() at a time
  std::atomic<Version> last_version_{0};
  std::atomic<Version> durable_version_{0};
  std::atomic<bool> failed_{false};

  // Reused by append(): encoded heads and the iovec list of one batch.
  std::vector<EncodedRecord> encoded_;
  std::vector<ConstBuffer> parts_;
};

// "00000000004294967296.log" for version 4294967296.
std::string segment_file_name(Version first_version);

}  // namespace squall::kvstore
