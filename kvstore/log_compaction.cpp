// SegmentLog compaction primitives: rewrite a sealed segment keeping only what the index
// still references, atomically replace it, and forget the old file once unreferenced.
#include "common/log.hpp"
#include "kvstore/segment_log.hpp"
#include "kvstore/segment_log_internal.hpp"
#include "kvstore/segment_scanner.hpp"

namespace squall::kvstore {
namespace {

// Output is staged and written in chunks of this size (compaction copies: it is background).
constexpr std::size_t kFlushBytes = 1 << 20;

// Appends a history-gap record (same version, timestamp and key; no value) to `out`.
void append_gap_record(const RecordHead& head, std::string_view key, Bytes& out) {
  RecordFields fields{head.version, head.timestamp, Op::history_gap, key, {}};
  EncodedRecord encoded;
  encode_record(fields, encoded);
  out.insert(out.end(), encoded.head.begin(), encoded.head.end());
  auto key_bytes = squall::as_bytes(key);
  out.insert(out.end(), key_bytes.begin(), key_bytes.end());
  out.insert(out.end(), encoded.mid.begin(), encoded.mid.end());
}

// Writes new segment content in chunks.
class ChunkWriter {
 public:
  explicit ChunkWriter(File& file) : file_(file) {}
  Bytes& staging() { return staging_; }
  std::uint64_t end() const { return written_ + staging_.size(); }
  Status flush_if_full() { return staging_.size() >= kFlushBytes ? flush() : Status::ok(); }
  Status flush() {
    ConstBuffer part(staging_);
    SQUALL_TRY(write_fully(file_, written_, std::span<const ConstBuffer>(&part, 1)));
    written_ += staging_.size();
    staging_.clear();
    return Status::ok();
  }

 private:
  File& file_;
  Bytes staging_;
  std::uint64_t written_ = 0;
};

}  // namespace

Status SegmentLog::rewrite_segment(std::uint32_t ordinal, const KeepDecider& decide,
                                   std::vector<Moved>& moved) {
  if (failed_) return io_error("log failed earlier; no compaction");
  auto old = find_segment(ordinal);
  if (!old) return not_found(fmt::format("no segment with ordinal {}", ordinal));
  std::uint64_t old_size = 0;
  std::uint32_t new_ordinal = 0;
  {
    std::lock_guard lock(table_mutex_);
    SQUALL_ASSERT(old->sealed, "compaction of the active segment {}", old->name);
    old_size = old->size_bytes;
    new_ordinal = next_ordinal_++;
    SQUALL_ASSERT(new_ordinal < (1U << 24), "segment ordinals exhausted");
  }
  std::string temporary = old->name + ".compact";
  auto opened = directory_.open(temporary, OpenMode::create_new);
  if (!opened.is_ok()) return opened.status();
  std::shared_ptr<File> file = std::move(opened.value());
  std::size_t first_moved = moved.size();
  Status copied = copy_kept_records(*old, ordinal, old_size, *file, new_ordinal, decide, moved);
  if (!copied) {
    moved.resize(first_moved);
    (void)directory_.remove(temporary);  // best effort: recovery removes leftovers anyway
    return copied;
  }
  return install_rewritten(old, std::move(file), temporary, new_ordinal,
                           moved.size() > first_moved);
}

// Scans the old segment and writes header plus kept records into `file` (then syncs it).
Status SegmentLog::copy_kept_records(const Segment& old, std::uint32_t old_ordinal,
                                     std::uint64_t old_size, File& file,
                                     std::uint32_t new_ordinal, const KeepDecider& decide,
                                     std::vector<Moved>& moved) {
  std::string where = fmt::format("{}/{}", directory_.path(), old.name);
  ChunkWriter writer(file);
  auto header = encode_segment_header(old.first_version);
  writer.staging().assign(header.begin(), header.end());
  SegmentScanner scanner(*old.file, old_size, kSegmentHeaderBytes, options_.max_record_bytes);
  while (true) {
    auto step = scanner.next();
    if (!step.is_ok()) return step.status().with_context(where);
    if (step.value() == SegmentScanner::Step::end) break;
    if (step.value() == SegmentScanner::Step::defect) {
      return corruption(fmt::format("{} offset {}: {}", where, scanner.offset(),
                                    scanner.reason()));
    }
    Location from = make_location(old_ordinal, scanner.offset());
    Keep keep = decide(scanner.head(), scanner.key(), from);
    if (keep == Keep::drop) continue;
    std::uint64_t start = writer.end();
    Location to = make_location(new_ordinal, start);
    if (keep == Keep::record) {
      auto bytes = scanner.record_bytes();
      writer.staging().insert(writer.staging().end(), bytes.begin(), bytes.end());
    } else {
      append_gap_record(scanner.head(), scanner.key(), writer.staging());
    }
    moved.push_back({std::string(scanner.key()), scanner.head().version, from, to,
                     writer.end() - start, keep == Keep::as_history_gap});
    SQUALL_TRY(writer.flush_if_full());
  }
  SQUALL_TRY(writer.flush());
  return file.sync();
}

// Puts the rewritten file in place of the old one (or removes the old one when nothing was
// kept) and makes that durable; the new segment is readable under `new_ordinal` afterwards.
Status SegmentLog::install_rewritten(const std::shared_ptr<Segment>& old,
                                     std::shared_ptr<File> file, const std::string& temporary,
                                     std::uint32_t new_ordinal, bool kept_any) {
  if (kept_any) {
    SQUALL_TRY(directory_.rename(temporary, old->name));
  } else {
    SQUALL_TRY(directory_.remove(temporary));
    SQUALL_TRY(directory_.remove(old->name));
  }
  // The folder sync orders the replacement before anything that depends on it.
  if (Status synced = directory_.sync(); !synced) return fail(synced);
  if (!kept_any) return Status::ok();
  auto size = file->size();
  if (!size.is_ok()) return size.status();
  auto segment = std::make_shared<Segment>(old->name, old->first_version, std::move(file));
  segment->size_bytes = size.value();
  segment->sealed = true;
  std::lock_guard lock(table_mutex_);
  segments_[new_ordinal] = std::move(segment);
  return Status::ok();
}

void SegmentLog::retire_segment(std::uint32_t ordinal) {
  std::lock_guard lock(table_mutex_);
  SQUALL_ASSERT(!has_active_ || ordinal != active_ordinal_, "retiring the active segment");
  segments_.erase(ordinal);
}

}  // namespace squall::kvstore
