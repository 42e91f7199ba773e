// The on-disk log format: segment file header and records (docs/formats.md, "Log segments").
//
// Everything is little-endian. A record is
//   magic u32 | length u32 | crc32c u32 | version u64 | timestamp u64 | op u8 |
//   key_length u32 | key | value_length u32 | value
// where `length` counts the bytes after the CRC field (25 + key_length + value_length) and
// the CRC covers the length field and every byte after the CRC field. The fixed part before
// the key is the "head" (33 bytes); the value length sits between key and value (the "mid").
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "common/hlc.hpp"
#include "common/status.hpp"
#include "common/version.hpp"

namespace squall::kvstore {

// The kind of a record. Stored on disk: never renumber, only append.
enum class Op : std::uint8_t {
  put = 1,          // key = value
  del = 2,          // tombstone: the key does not exist from this version on
  history_gap = 3,  // retention discarded this version and every older one of the key
                    // (written by compaction in place of the discarded record; empty value)
};

constexpr bool op_is_valid(std::uint8_t raw) { return raw >= 1 && raw <= 3; }

// File header of a segment: "SqLogSeg" | format u32 | first_version u64 | crc32c u32 over
// the 20 bytes before it.
constexpr std::size_t kSegmentHeaderBytes = 24;
constexpr std::uint32_t kSegmentFormat = 1;
constexpr std::string_view kSegmentMagic = "SqLogSeg";

constexpr std::uint32_t kRecordMagic = 0x63527153;  // bytes "SqRc"
constexpr std::size_t kRecordHeadBytes = 33;        // magic .. key_length
constexpr std::size_t kRecordMidBytes = 4;          // value_length
constexpr std::size_t kRecordOverheadBytes = kRecordHeadBytes + kRecordMidBytes;
// `length` = kRecordLengthBase + key_length + value_length.
constexpr std::size_t kRecordLengthBase = kRecordOverheadBytes - 12;

constexpr std::uint64_t record_size_bytes(std::size_t key_bytes, std::size_t value_bytes) {
  return kRecordOverheadBytes + key_bytes + value_bytes;
}

// The fields of a record (key and value are separate spans so they are never copied).
struct RecordFields {
  Version version = 0;
  HlcTimestamp timestamp = 0;
  Op op = Op::put;
  std::string_view key;
  std::span<const std::byte> value;
};

// The head and mid of one encoded record, ready for pwritev as
// {head, key, mid, value}; `crc` already covers key and value.
struct EncodedRecord {
  std::array<std::byte, kRecordHeadBytes> head{};
  std::array<std::byte, kRecordMidBytes> mid{};
};

// Encodes the fixed parts of `fields` and computes the CRC over all of it.
void encode_record(const RecordFields& fields, EncodedRecord& out);

// The parsed fixed part of a record.
struct RecordHead {
  std::uint32_t length = 0;
  std::uint32_t crc = 0;
  Version version = 0;
  HlcTimestamp timestamp = 0;
  Op op = Op::put;
  std::uint32_t key_length = 0;

  std::uint64_t value_length() const { return length - kRecordLengthBase - key_length; }
  std::uint64_t total_bytes() const { return 12 + static_cast<std::uint64_t>(length); }
};

// Parses and checks the head (magic, op, lengths within `max_record_bytes`). Does not check
// the CRC; corruption status carries only the reason (the caller adds file and offset).
Result<RecordHead> decode_record_head(std::span<const std::byte, kRecordHeadBytes> bytes,
                                      std::uint64_t max_record_bytes);

// Checks a whole record's CRC: `head_bytes` are the 33 head bytes, `rest` the bytes after
// them (key, mid, value) in order.
bool record_crc_matches(std::span<const std::byte> head_bytes,
                        std::span<const std::span<const std::byte>> rest,
                        std::uint32_t expected_crc);

// The value length stored in the mid must agree with the head's length field.
bool record_mid_matches(const RecordHead& head, std::span<const std::byte, kRecordMidBytes> mid);

std::array<std::byte, kSegmentHeaderBytes> encode_segment_header(Version first_version);
// Returns the first version named in the header, or corruption.
Result<Version> decode_segment_header(std::span<const std::byte, kSegmentHeaderBytes> bytes);

}  // namespace squall::kvstore
