#include "kvstore/record.hpp"

#include <cstring>

#include "common/bytes.hpp"
#include "common/crc32c.hpp"

namespace squall::kvstore {
namespace {

template <typename T>
void store_le(std::byte* out, T value) {
  for (std::size_t i = 0; i < sizeof(T); ++i) {
    out[i] = static_cast<std::byte>(static_cast<std::uint64_t>(value) >> (8 * i));
  }
}

template <typename T>
T load_le(const std::byte* in) {
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i) {
    value |= static_cast<std::uint64_t>(in[i]) << (8 * i);
  }
  return static_cast<T>(value);
}

// Byte offsets inside the head.
constexpr std::size_t kMagicAt = 0;
constexpr std::size_t kLengthAt = 4;
constexpr std::size_t kCrcAt = 8;
constexpr std::size_t kVersionAt = 12;
constexpr std::size_t kTimestampAt = 20;
constexpr std::size_t kOpAt = 28;
constexpr std::size_t kKeyLengthAt = 29;

// CRC over the length field and the head bytes after the CRC field.
std::uint32_t head_crc(std::span<const std::byte> head) {
  std::uint32_t crc = crc32c(head.subspan(kLengthAt, 4));
  return crc32c_extend(crc, head.subspan(kVersionAt, kRecordHeadBytes - kVersionAt));
}

}  // namespace

void encode_record(const RecordFields& fields, EncodedRecord& out) {
  std::uint64_t length = kRecordLengthBase + fields.key.size() + fields.value.size();
  SQUALL_ASSERT(length <= 0xffff'ffffULL, "record of {} bytes does not fit u32", length);
  std::byte* head = out.head.data();
  store_le<std::uint32_t>(head + kMagicAt, kRecordMagic);
  store_le<std::uint32_t>(head + kLengthAt, static_cast<std::uint32_t>(length));
  store_le<std::uint64_t>(head + kVersionAt, fields.version);
  store_le<std::uint64_t>(head + kTimestampAt, fields.timestamp);
  head[kOpAt] = static_cast<std::byte>(fields.op);
  store_le<std::uint32_t>(head + kKeyLengthAt, static_cast<std::uint32_t>(fields.key.size()));
  store_le<std::uint32_t>(out.mid.data(), static_cast<std::uint32_t>(fields.value.size()));
  std::uint32_t crc = head_crc(out.head);
  crc = crc32c_extend(crc, squall::as_bytes(fields.key));
  crc = crc32c_extend(crc, out.mid);
  crc = crc32c_extend(crc, fields.value);
  store_le<std::uint32_t>(head + kCrcAt, crc);
}

Result<RecordHead> decode_record_head(std::span<const std::byte, kRecordHeadBytes> bytes,
                                      std::uint64_t max_record_bytes) {
  const std::byte* in = bytes.data();
  if (load_le<std::uint32_t>(in + kMagicAt) != kRecordMagic) return corruption("bad magic");
  RecordHead head;
  head.length = load_le<std::uint32_t>(in + kLengthAt);
  head.crc = load_le<std::uint32_t>(in + kCrcAt);
  head.version = load_le<std::uint64_t>(in + kVersionAt);
  head.timestamp = load_le<std::uint64_t>(in + kTimestampAt);
  auto raw_op = static_cast<std::uint8_t>(in[kOpAt]);
  head.key_length = load_le<std::uint32_t>(in + kKeyLengthAt);
  if (!op_is_valid(raw_op)) return corruption(fmt::format("unknown op {}", raw_op));
  head.op = static_cast<Op>(raw_op);
  if (head.length < kRecordLengthBase + static_cast<std::uint64_t>(head.key_length)) {
    return corruption(fmt::format("length {} too small for key of {} bytes", head.length,
                                  head.key_length));
  }
  if (head.total_bytes() > max_record_bytes) {
    return corruption(fmt::format("record of {} bytes over the limit of {}",
                                  head.total_bytes(), max_record_bytes));
  }
  return head;
}

bool record_crc_matches(std::span<const std::byte> head_bytes,
                        std::span<const std::span<const std::byte>> rest,
                        std::uint32_t expected_crc) {
  std::uint32_t crc = head_crc(head_bytes);
  for (const auto& part : rest) crc = crc32c_extend(crc, part);
  return crc == expected_crc;
}

bool record_mid_matches(const RecordHead& head,
                        std::span<const std::byte, kRecordMidBytes> mid) {
  return load_le<std::uint32_t>(mid.data()) == head.value_length();
}

std::array<std::byte, kSegmentHeaderBytes> encode_segment_header(Version first_version) {
  std::array<std::byte, kSegmentHeaderBytes> out{};
  std::memcpy(out.data(), kSegmentMagic.data(), kSegmentMagic.size());
  store_le<std::uint32_t>(out.data() + 8, kSegmentFormat);
  store_le<std::uint64_t>(out.data() + 12, first_version);
  store_le<std::uint32_t>(out.data() + 20, crc32c(std::span(out).first(20)));
  return out;
}

Result<Version> decode_segment_header(std::span<const std::byte, kSegmentHeaderBytes> bytes) {
  if (crc32c(bytes.first(20)) != load_le<std::uint32_t>(bytes.data() + 20)) {
    return corruption("segment header CRC mismatch");
  }
  if (std::memcmp(bytes.data(), kSegmentMagic.data(), kSegmentMagic.size()) != 0) {
    return corruption("not a segment file (bad magic)");
  }
  auto format = load_le<std::uint32_t>(bytes.data() + 8);
  if (format != kSegmentFormat) {
    return corruption(fmt::format("segment format {} is not supported (expected {})", format,
                                  kSegmentFormat));
  }
  return load_le<std::uint64_t>(bytes.data() + 12);
}

}  // namespace squall::kvstore
