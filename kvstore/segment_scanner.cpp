#include "kvstore/segment_scanner.hpp"

#include <algorithm>
#include <array>
#include <cstring>

namespace squall::kvstore {
namespace {

// Reads ahead this much so small records cost no system call each.
constexpr std::size_t kReadAheadBytes = 1 << 20;

std::array<std::byte, 4> magic_bytes() {
  std::array<std::byte, 4> out{};
  for (std::size_t i = 0; i < 4; ++i) out[i] = static_cast<std::byte>(kRecordMagic >> (8 * i));
  return out;
}

// Checks the record that starts at `record` (which extends to the end of the span at most).
bool is_valid_record(std::span<const std::byte> bytes, std::uint64_t max_record_bytes) {
  if (bytes.size() < kRecordHeadBytes) return false;
  auto head = decode_record_head(bytes.first<kRecordHeadBytes>(), max_record_bytes);
  if (!head.is_ok() || head.value().total_bytes() > bytes.size()) return false;
  auto body = bytes.subspan(kRecordHeadBytes, head.value().total_bytes() - kRecordHeadBytes);
  std::span<const std::byte> rest[] = {body};
  if (!record_crc_matches(bytes.first(kRecordHeadBytes), rest, head.value().crc)) return false;
  auto mid = body.subspan(head.value().key_length, kRecordMidBytes);
  return record_mid_matches(head.value(), mid.first<kRecordMidBytes>());
}

}  // namespace

SegmentScanner::SegmentScanner(const File& file, std::uint64_t file_size_bytes,
                               std::uint64_t start_offset, std::uint64_t max_record_bytes)
    : file_(file), file_size_(file_size_bytes), max_record_bytes_(max_record_bytes),
      offset_(start_offset) {}

std::string_view SegmentScanner::key() const {
  auto bytes = record_bytes().subspan(kRecordHeadBytes, head_.key_length);
  return as_string_view(bytes);
}

std::span<const std::byte> SegmentScanner::record_bytes() const {
  SQUALL_ASSERT(offset_ >= buffer_start_ && offset_ + record_total_ <= buffer_start_ + buffer_size_,
                "record {} not in the scan buffer", offset_);
  return std::span<const std::byte>(buffer_).subspan(offset_ - buffer_start_, record_total_);
}

Result<std::span<const std::byte>> SegmentScanner::fetch(std::uint64_t offset,
                                                          std::size_t count) {
  SQUALL_ASSERT(offset + count <= file_size_, "fetch past the end of the segment");
  if (offset < buffer_start_ || offset + count > buffer_start_ + buffer_size_) {
    std::size_t want = std::max(count, kReadAheadBytes);
    want = static_cast<std::size_t>(std::min<std::uint64_t>(want, file_size_ - offset));
    if (buffer_.size() < want) buffer_.resize(want);
    MutableBuffer target(buffer_.data(), want);
    SQUALL_TRY(read_fully(file_, offset, std::span<const MutableBuffer>(&target, 1)));
    buffer_start_ = offset;
    buffer_size_ = want;
  }
  return std::span<const std::byte>(buffer_).subspan(offset - buffer_start_, count);
}

SegmentScanner::Step SegmentScanner::defect(std::string reason) {
  reason_ = std::move(reason);
  record_total_ = 0;
  return Step::defect;
}

Result<SegmentScanner::Step> SegmentScanner::next() {
  offset_ += record_total_;
  record_total_ = 0;
  if (offset_ == file_size_) return Step::end;
  if (file_size_ - offset_ < kRecordHeadBytes) return defect("truncated record head");
  auto head_bytes = fetch(offset_, kRecordHeadBytes);
  if (!head_bytes.is_ok()) return head_bytes.status();
  auto head = decode_record_head(head_bytes.value().first<kRecordHeadBytes>(), max_record_bytes_);
  if (!head.is_ok()) return defect(head.status().message());
  std::uint64_t total = head.value().total_bytes();
  if (total > file_size_ - offset_) return defect("record extends past the end of the file");
  auto whole = fetch(offset_, static_cast<std::size_t>(total));
  if (!whole.is_ok()) return whole.status();
  auto body = whole.value().subspan(kRecordHeadBytes);
  std::span<const std::byte> rest[] = {body};
  if (!record_crc_matches(whole.value().first(kRecordHeadBytes), rest, head.value().crc)) {
    return defect("CRC mismatch");
  }
  auto mid = body.subspan(head.value().key_length, kRecordMidBytes);
  if (!record_mid_matches(head.value(), mid.first<kRecordMidBytes>())) {
    return defect("value length disagrees with record length");
  }
  head_ = head.value();
  record_total_ = total;
  return Step::record;
}

namespace {

// Whether a complete record with a valid CRC starts at `offset` (reads only that record).
Result<bool> valid_record_at(const File& file, std::uint64_t offset,
                             std::uint64_t file_size_bytes, std::uint64_t max_record_bytes) {
  if (file_size_bytes - offset < kRecordHeadBytes) return false;
  std::array<std::byte, kRecordHeadBytes> head_bytes{};
  MutableBuffer head_target(head_bytes);
  SQUALL_TRY(read_fully(file, offset, std::span<const MutableBuffer>(&head_target, 1)));
  auto head = decode_record_head(head_bytes, max_record_bytes);
  if (!head.is_ok() || head.value().total_bytes() > file_size_bytes - offset) return false;
  Bytes record(static_cast<std::size_t>(head.value().total_bytes()));
  MutableBuffer target(record);
  SQUALL_TRY(read_fully(file, offset, std::span<const MutableBuffer>(&target, 1)));
  return is_valid_record(record, max_record_bytes);
}

}  // namespace

// Searches [from, end) for the magic a chunk at a time (chunks overlap by 3 bytes so a magic
// split between two chunks is found) and checks each candidate record on its own, so memory
// stays bounded by one chunk plus one record.
Result<bool> valid_record_after(const File& file, std::uint64_t from,
                                std::uint64_t file_size_bytes, std::uint64_t max_record_bytes) {
  const auto magic = magic_bytes();
  Bytes chunk;
  for (std::uint64_t start = from; start < file_size_bytes;) {
    auto size = static_cast<std::size_t>(
        std::min<std::uint64_t>(kReadAheadBytes, file_size_bytes - start));
    if (size < magic.size()) return false;
    chunk.resize(size);
    MutableBuffer target(chunk);
    SQUALL_TRY(read_fully(file, start, std::span<const MutableBuffer>(&target, 1)));
    for (auto position = chunk.begin();;) {
      position = std::search(position, chunk.end(), magic.begin(), magic.end());
      if (position == chunk.end()) break;
      std::uint64_t candidate = start + static_cast<std::uint64_t>(position - chunk.begin());
      auto valid = valid_record_at(file, candidate, file_size_bytes, max_record_bytes);
      if (!valid.is_ok()) return valid.status();
      if (valid.value()) return true;
      ++position;
    }
    if (start + size >= file_size_bytes) break;
    start += size - (magic.size() - 1);
  }
  return false;
}

}  // namespace squall::kvstore
