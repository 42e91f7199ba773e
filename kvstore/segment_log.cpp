// SegmentLog: append, group-commit sync, reads, and segment bookkeeping.
// Recovery is in log_recovery.cpp, segment rewriting in log_compaction.cpp.
#include "kvstore/segment_log.hpp"

#include "common/log.hpp"
#include "kvstore/segment_log_internal.hpp"

namespace squall::kvstore {

std::string segment_file_name(Version first_version) {
  return fmt::format("{:020}.log", first_version);
}

Status LogOptions::validate() const {
  if (segment_size_bytes < 4096 || segment_size_bytes >= (1ULL << kLocationOffsetBits) / 2) {
    return invalid_argument(fmt::format("segment_size_bytes {} outside [4096, 2^39)",
                                        segment_size_bytes));
  }
  if (max_record_bytes < kRecordOverheadBytes + 1 || max_record_bytes > (1ULL << 31)) {
    return invalid_argument(fmt::format("max_record_bytes {} outside [{}, 2^31]",
                                        max_record_bytes, kRecordOverheadBytes + 1));
  }
  if (max_batch_records == 0 || max_batch_records > 1'000'000) {
    return invalid_argument(fmt::format("max_batch_records {} outside [1, 1000000]",
                                        max_batch_records));
  }
  return Status::ok();
}

SegmentLog::SegmentLog(Directory& directory, LogOptions options)
    : directory_(directory), options_(options) {}

SegmentLog::~SegmentLog() = default;

Result<std::unique_ptr<SegmentLog>> SegmentLog::open(Directory& directory, LogOptions options,
                                                     const RecordVisitor& visit) {
  SQUALL_TRY(options.validate());
  std::unique_ptr<SegmentLog> log(new SegmentLog(directory, options));
  SQUALL_TRY(log->recover(visit));
  return log;
}

Status SegmentLog::fail(Status status) {
  if (!failed_.exchange(true)) {
    logger("kvstore")->error("log {} failed, no more writes accepted: {}", directory_.path(),
                             status.to_string());
  }
  return Status(Code::io_error, status.message()).with_context("log failed");
}

std::shared_ptr<SegmentLog::Segment> SegmentLog::find_segment(std::uint32_t ordinal) const {
  std::lock_guard lock(table_mutex_);
  auto found = segments_.find(ordinal);
  return found == segments_.end() ? nullptr : found->second;
}

std::shared_ptr<SegmentLog::Segment> SegmentLog::active_segment() const {
  std::lock_guard lock(table_mutex_);
  return has_active_ ? segments_.at(active_ordinal_) : nullptr;
}

void SegmentLog::advance_durable(Version version) {
  Version current = durable_version_.load();
  while (version > current && !durable_version_.compare_exchange_weak(current, version)) {
  }
}

Status SegmentLog::validate_batch(std::span<const RecordFields> records) const {
  if (records.size() > options_.max_batch_records) {
    return invalid_argument(fmt::format("batch of {} records over the limit of {}",
                                        records.size(), options_.max_batch_records));
  }
  Version previous = last_version_.load();
  for (const auto& record : records) {
    if (record.version <= previous) {
      return invalid_argument(fmt::format("version {} not above {}", record.version, previous));
    }
    auto bytes = record_size_bytes(record.key.size(), record.value.size());
    if (bytes > options_.max_record_bytes) {
      return invalid_argument(fmt::format("record of {} bytes over the limit of {}", bytes,
                                          options_.max_record_bytes));
    }
    if (!op_is_valid(static_cast<std::uint8_t>(record.op))) {
      return invalid_argument("record with an unknown op");
    }
    previous = record.version;
  }
  return Status::ok();
}

// Seals the active segment (fdatasync) and starts a new one named after `first_version`:
// header written and synced, then the folder synced, so a crash never leaves a named segment
// without its header, and a sealed segment never holds unsynced bytes.
Status SegmentLog::start_segment(Version first_version) {
  if (auto active = active_segment()) {
    if (auto synced = active->file->sync(); !synced) return fail(synced);
    advance_durable(last_version_.load());
  }
  std::string name = segment_file_name(first_version);
  auto opened = directory_.open(name, OpenMode::create_new);
  if (!opened.is_ok()) {
    if (opened.status().code() == Code::no_space) return opened.status();
    return fail(opened.status());
  }
  std::shared_ptr<File> file = std::move(opened.value());
  auto header = encode_segment_header(first_version);
  ConstBuffer header_part(header);
  Status written = write_fully(*file, 0, std::span<const ConstBuffer>(&header_part, 1));
  if (!written) {
    Status removed = directory_.remove(name);
    if (written.code() == Code::no_space && removed) return written;
    return fail(written);
  }
  if (auto synced = file->sync(); !synced) return fail(synced);
  if (auto synced = directory_.sync(); !synced) return fail(synced);
  auto segment = std::make_shared<Segment>(name, first_version, std::move(file));
  segment->size_bytes = kSegmentHeaderBytes;
  std::lock_guard lock(table_mutex_);
  if (has_active_) segments_.at(active_ordinal_)->sealed = true;
  active_ordinal_ = next_ordinal_++;
  SQUALL_ASSERT(active_ordinal_ < (1U << 24), "segment ordinals exhausted");
  segments_[active_ordinal_] = std::move(segment);
  has_active_ = true;
  active_end_ = kSegmentHeaderBytes;
  return Status::ok();
}

Status SegmentLog::write_batch(std::span<const RecordFields> records, std::uint64_t offset) {
  auto active = active_segment();
  encoded_.resize(records.size());
  parts_.clear();
  for (std::size_t i = 0; i < records.size(); ++i) {
    encode_record(records[i], encoded_[i]);
    parts_.emplace_back(encoded_[i].head);
    if (!records[i].key.empty()) parts_.push_back(squall::as_bytes(records[i].key));
    parts_.emplace_back(encoded_[i].mid);
    if (!records[i].value.empty()) parts_.push_back(records[i].value);
  }
  return write_fully(*active->file, offset, parts_);
}

Status SegmentLog::append(std::span<const RecordFields> records, std::span<Location> locations) {
  SQUALL_ASSERT(records.size() == locations.size(), "{} records but {} locations",
                records.size(), locations.size());
  if (failed_) return io_error("log failed earlier; no more writes accepted");
  SQUALL_TRY(validate_batch(records));
  if (records.empty()) return Status::ok();
  std::uint64_t batch_bytes = 0;
  for (const auto& record : records) {
    batch_bytes += record_size_bytes(record.key.size(), record.value.size());
  }
  if (batch_bytes >= (1ULL << kLocationOffsetBits) / 2) {  // offsets must fit a Location
    return invalid_argument(fmt::format("batch of {} bytes is too large", batch_bytes));
  }
  bool active_has_records = has_active_ && active_end_ > kSegmentHeaderBytes;
  if (!has_active_ ||
      (active_has_records && active_end_ + batch_bytes > options_.segment_size_bytes)) {
    SQUALL_TRY(start_segment(records.front().version));
  }
  std::uint64_t offset = active_end_;
  if (Status written = write_batch(records, offset); !written) {
    // Cut the partial batch off again so nothing of it can ever be read back as records.
    Status cut = active_segment()->file->truncate(offset);
    if (written.code() == Code::no_space && cut) return written;
    return fail(cut ? written : cut);
  }
  for (std::size_t i = 0; i < records.size(); ++i) {
    locations[i] = make_location(active_ordinal_, offset);
    offset += record_size_bytes(records[i].key.size(), records[i].value.size());
  }
  std::lock_guard lock(table_mutex_);
  active_end_ = offset;
  segments_.at(active_ordinal_)->size_bytes = offset;
  last_version_ = records.back().version;
  return Status::ok();
}

Result<Version> SegmentLog::sync() {
  std::lock_guard sync_lock(sync_mutex_);
  if (failed_) return io_error("log failed earlier; nothing more becomes durable");
  std::shared_ptr<Segment> active;
  Version covered = 0;
  {
    std::lock_guard lock(table_mutex_);
    covered = last_version_.load();
    if (has_active_) active = segments_.at(active_ordinal_);
  }
  if (covered == durable_version_.load() || !active) return durable_version_.load();
  if (Status synced = active->file->sync(); !synced) return fail(synced);
  // A failure elsewhere (a rotation's seal) may have raced with us: never report past it.
  if (failed_) return io_error("log failed earlier; nothing more becomes durable");
  advance_durable(covered);
  return durable_version_.load();
}

Status SegmentLog::read(const RecordRef& ref, Bytes& value) const {
  auto segment = find_segment(location_ordinal(ref.location));
  if (!segment) {  // compaction moved the record since the caller looked it up
    return Status(Code::aborted, fmt::format("segment ordinal {} was retired",
                                             location_ordinal(ref.location)));
  }
  std::uint64_t offset = location_offset(ref.location);
  std::array<std::byte, kRecordHeadBytes> head_bytes{};
  std::string key(ref.key.size(), '\0');
  std::array<std::byte, kRecordMidBytes> mid{};
  value.resize(ref.value_bytes);
  auto* key_data = reinterpret_cast<std::byte*>(key.data());
  MutableBuffer parts[] = {head_bytes, {key_data, key.size()}, mid, value};
  auto where = [&] {
    return fmt::format("{}/{} offset {}", directory_.path(), segment->name, offset);
  };
  if (Status read = read_fully(*segment->file, offset, parts); !read) {
    return read.with_context(where());
  }
  auto head = decode_record_head(head_bytes, options_.max_record_bytes);
  if (!head.is_ok()) return head.status().with_context(where());
  if (head.value().version != ref.version || head.value().key_length != ref.key.size() ||
      head.value().value_length() != ref.value_bytes || key != ref.key ||
      !record_mid_matches(head.value(), mid)) {
    return corruption(fmt::format("{}: record is not version {} of the key", where(),
                                  ref.version));
  }
  std::span<const std::byte> rest[] = {{key_data, key.size()}, mid, value};
  if (!record_crc_matches(head_bytes, rest, head.value().crc)) {
    return corruption(fmt::format("{}: CRC mismatch", where()));
  }
  return Status::ok();
}

std::uint64_t SegmentLog::bytes_total() const {
  std::lock_guard lock(table_mutex_);
  std::uint64_t total = 0;
  for (const auto& [ordinal, segment] : segments_) total += segment->size_bytes;
  return total;
}

std::size_t SegmentLog::segment_count() const {
  std::lock_guard lock(table_mutex_);
  return segments_.size();
}

void SegmentLog::release(Location location, std::uint64_t record_bytes) {
  if (auto segment = find_segment(location_ordinal(location))) {
    segment->garbage_bytes += record_bytes;
  }
}

std::vector<SegmentInfo> SegmentLog::sealed_segments() const {
  std::lock_guard lock(table_mutex_);
  std::vector<SegmentInfo> out;
  for (const auto& [ordinal, segment] : segments_) {
    if (!segment->sealed) continue;
    out.push_back({ordinal, segment->name, segment->first_version, segment->size_bytes,
                   segment->garbage_bytes.load()});
  }
  std::sort(out.begin(), out.end(), [](const SegmentInfo& a, const SegmentInfo& b) {
    return a.first_version < b.first_version;
  });
  return out;
}

}  // namespace squall::kvstore
