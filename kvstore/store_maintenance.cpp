// Store maintenance: the retention sweep, segment compaction and the persisted retention floor.
#include <array>
#include <mutex>
#include <unordered_set>

#include "common/bytes.hpp"
#include "common/crc32c.hpp"
#include "common/log.hpp"
#include "kvstore/store.hpp"

namespace squall::kvstore {
namespace {

// "retention.floor": "SqFloor1" | floor version u64 | floor timestamp u64 | crc32c u32 of the
// 24 bytes before it (docs/formats.md).
constexpr std::string_view kFloorFile = "retention.floor";
constexpr std::string_view kFloorTemporary = "retention.floor.tmp";
constexpr std::string_view kFloorMagic = "SqFloor1";
constexpr std::size_t kFloorBytes = 28;

Bytes encode_floor(Version version, HlcTimestamp timestamp) {
  Bytes out;
  ByteWriter writer(out);
  writer.put_bytes(squall::as_bytes(kFloorMagic));
  writer.put(version);
  writer.put(timestamp);
  writer.put(crc32c(out));
  return out;
}

}  // namespace

Status Store::load_floor() {
  (void)directory_->remove(std::string(kFloorTemporary));  // an unfinished update, if any
  auto file = directory_->open(std::string(kFloorFile), OpenMode::read_only);
  if (!file.is_ok()) {
    return file.status().code() == Code::not_found ? Status::ok() : file.status();
  }
  std::array<std::byte, kFloorBytes> bytes{};
  MutableBuffer target(bytes);
  std::string where = fmt::format("{}/{}", directory_->path(), kFloorFile);
  SQUALL_TRY(read_fully(*file.value(), 0, std::span<const MutableBuffer>(&target, 1))
                 .with_context(where));
  ByteReader reader(bytes);
  std::span<const std::byte> magic;
  Version version = 0;
  HlcTimestamp timestamp = 0;
  std::uint32_t crc = 0;
  bool parsed = reader.get_bytes(kFloorMagic.size(), magic) && reader.get(version) &&
                reader.get(timestamp) && reader.get(crc);
  if (!parsed || as_string_view(magic) != kFloorMagic ||
      crc != crc32c(std::span(bytes).first(kFloorBytes - 4))) {
    return corruption(fmt::format("{}: bad retention floor file", where));
  }
  index_.raise_floor(version, timestamp);
  persisted_floor_version_ = version;
  persisted_floor_time_ = timestamp;
  return Status::ok();
}

// Makes the floor durable before compaction may remove the tombstones it stands for.
// REQUIRES: maintenance_mutex_ held.
Status Store::persist_floor() {
  Version version = 0;
  HlcTimestamp timestamp = 0;
  {
    std::shared_lock lock(index_mutex_);
    version = index_.floor_version();
    timestamp = index_.floor_time();
  }
  if (version == persisted_floor_version_ && timestamp == persisted_floor_time_) {
    return Status::ok();
  }
  Bytes content = encode_floor(version, timestamp);
  (void)directory_->remove(std::string(kFloorTemporary));
  auto file = directory_->open(std::string(kFloorTemporary), OpenMode::create_new);
  if (!file.is_ok()) return file.status();
  ConstBuffer part(content);
  SQUALL_TRY(write_fully(*file.value(), 0, std::span<const ConstBuffer>(&part, 1)));
  SQUALL_TRY(file.value()->sync());
  SQUALL_TRY(directory_->rename(std::string(kFloorTemporary), std::string(kFloorFile)));
  SQUALL_TRY(directory_->sync());
  persisted_floor_version_ = version;
  persisted_floor_time_ = timestamp;
  return Status::ok();
}

Result<RetentionStats> Store::apply_retention() {
  RetentionStats total;
  const RetentionPolicy& policy = options_.retention;
  if (!policy.enabled()) return total;
  std::lock_guard maintenance(maintenance_mutex_);
  std::uint64_t now_us = clock_.wall_us();
  HlcTimestamp cutoff = 0;
  if (policy.max_age_us != 0 && now_us > policy.max_age_us) {
    cutoff = hlc_make(now_us - policy.max_age_us, 0);
  }
  auto release_fn = [this](std::string_view key, const Entry& e, bool gap) {
    release(key, e, gap);
  };
  std::string from;
  while (true) {
    SweepResult step;
    {
      std::uint64_t start_us = clock_.monotonic_us();
      std::unique_lock lock(index_mutex_);
      step = index_.sweep(cutoff, from, options_.retention_batch_keys, release_fn,
                          retention_horizon());
      note_hold(start_us);
    }
    total.keys_visited += step.keys_visited;
    total.versions_discarded += step.versions_discarded;
    total.keys_dropped += step.keys_dropped;
    if (!step.next_key) break;
    from = std::move(*step.next_key);
  }
  return total;
}

Result<CompactionStats> Store::compact() {
  CompactionStats total;
  if (!log_) return total;
  std::lock_guard maintenance(maintenance_mutex_);
  SQUALL_TRY(persist_floor());
  total.bytes_before = log_->bytes_total();
  for (const SegmentInfo& segment : log_->sealed_segments()) {
    std::uint64_t records_bytes = segment.size_bytes - kSegmentHeaderBytes;
    if (records_bytes == 0) continue;
    double ratio = static_cast<double>(segment.garbage_bytes) /
                   static_cast<double>(records_bytes);
    if (ratio < options_.compaction_garbage_ratio) continue;
    auto done = compact_segment(segment);
    if (!done.is_ok()) return done.status().with_context("compaction of " + segment.name);
    total.segments_rewritten += done.value().segments_rewritten;
    total.segments_removed += done.value().segments_removed;
    total.records_moved += done.value().records_moved;
  }
  total.bytes_after = log_->bytes_total();
  if (total.segments_rewritten + total.segments_removed > 0) {
    logger("kvstore")->info("compaction: {} segments rewritten, {} removed, {} -> {} bytes",
                            total.segments_rewritten, total.segments_removed,
                            total.bytes_before, total.bytes_after);
  }
  return total;
}

// Rewrites one segment: the index decides what is still referenced; then the moved records'
// locations are switched in bounded batches, then the old segment is forgotten.
//
// A record the index no longer references is dropped, with one exception: when its key lost
// history and the key's gap marker still points at a put or delete record (not yet rewritten
// as a gap record), the first such record of the key in this segment is kept as a gap record
// (a "cover"). Without it, a reopen could see the marker's record as the key's first version
// and answer not_found for reads that must be gone.
Result<CompactionStats> Store::compact_segment(const SegmentInfo& segment) {
  std::unordered_set<std::string> covered;
  auto decide = [&](const RecordHead& head, std::string_view key, Location at) {
    std::shared_lock lock(index_mutex_);
    auto entry = index_.exact(key, head.version);
    if (entry && entry->location == at) {
      return entry->op == Op::history_gap ? Keep::as_history_gap : Keep::record;
    }
    if (index_.gap_state(key) != VersionIndex::GapState::gap_in_memory) return Keep::drop;
    return covered.emplace(key).second ? Keep::as_history_gap : Keep::drop;
  };
  std::vector<Moved> moved;
  SQUALL_TRY(log_->rewrite_segment(segment.ordinal, decide, moved));
  SQUALL_TRY(relocate_moved(moved));
  log_->retire_segment(segment.ordinal);
  CompactionStats stats;
  stats.records_moved = moved.size();
  (moved.empty() ? stats.segments_removed : stats.segments_rewritten) = 1;
  return stats;
}

Status Store::relocate_moved(const std::vector<Moved>& moved) {
  std::size_t batch = options_.compaction_batch_records;
  for (std::size_t first = 0; first < moved.size(); first += batch) {
    std::size_t last = std::min(moved.size(), first + batch);
    std::uint64_t start_us = clock_.monotonic_us();
    std::unique_lock lock(index_mutex_);
    for (std::size_t i = first; i < last; ++i) {
      const Moved& record = moved[i];
      if (index_.relocate(record.key, record.version, record.from, record.to,
                          record.gap_record)) {
        continue;
      }
      // Retention discarded it since it was copied: the copy is garbage. Gap records that
      // are not markers are covers (see compact_segment) and stay until a later pass.
      if (!record.gap_record) log_->release(record.to, record.record_bytes);
    }
    note_hold(start_us);
  }
  return Status::ok();
}

}  // namespace squall::kvstore
