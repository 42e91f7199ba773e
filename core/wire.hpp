// The header every ordered-multicast message carries inside its SMC slot.
//
// Byte layout (little-endian; docs/core.md, "Message format"):
//   u8  kind        MessageKind below
//   u8  reserved[7] zero
//   u64 timestamp   the sender's HLC reading when it put the message in its slot
//   body:
//     data   payload bytes (the rest of the slot)
//     nulls  u64 count (>= 1): the sender skips that many slots of the round-robin order
//     large  u64 rdmc_index, u64 size_bytes: the payload travels by RDMC as the sender's
//            message rdmc_index of this view; this slot fixes its place in the order
//     packed u32 count (>= 2), then count times { u32 length, length payload bytes }: that
//            many consecutive updates of the sender in one slot, in send order
// Decoding never reads past its input; a malformed message is an error, never a crash.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "common/assert.hpp"
#include "common/bytes.hpp"
#include "common/hlc.hpp"
#include "common/status.hpp"

namespace squall::core {

// On the wire: never renumber.
enum class MessageKind : std::uint8_t {
  data = 1,
  nulls = 2,
  large = 3,
  packed = 4,
};

inline constexpr std::size_t kMessageHeaderBytes = 16;
inline constexpr std::size_t kNullsBodyBytes = 8;
inline constexpr std::size_t kLargeBodyBytes = 16;
inline constexpr std::size_t kPackedCountBytes = 4;
inline constexpr std::size_t kPackedLengthBytes = 4;

struct DecodedMessage {
  MessageKind kind = MessageKind::data;
  HlcTimestamp timestamp = 0;
  // data: the payload; packed: the records after the count (both views into the input)
  std::span<const std::byte> payload;
  std::uint32_t packed_count = 0;      // packed
  std::uint64_t null_count = 0;        // nulls
  std::uint64_t rdmc_index = 0;        // large
  std::uint64_t size_bytes = 0;        // large
};

// Each encoder replaces the contents of `out`.
void encode_data(Bytes& out, HlcTimestamp timestamp, std::span<const std::byte> payload);
void encode_nulls(Bytes& out, HlcTimestamp timestamp, std::uint64_t count);
void encode_large(Bytes& out, HlcTimestamp timestamp, std::uint64_t rdmc_index,
                  std::uint64_t size_bytes);

// A packed message: begin_packed() writes the header and the count, then add_packed() appends
// each of the `count` payloads. packed_size_bytes(): the whole message for payloads totalling
// `payload_bytes` bytes.
void begin_packed(Bytes& out, HlcTimestamp timestamp, std::uint32_t count);
void add_packed(Bytes& out, std::span<const std::byte> payload);
constexpr std::size_t packed_size_bytes(std::size_t count, std::size_t payload_bytes) {
  return kMessageHeaderBytes + kPackedCountBytes + count * kPackedLengthBytes + payload_bytes;
}

// corruption if the input is truncated, has an unknown kind, non-zero reserved bytes, a null
// count of 0, trailing bytes after a fixed-size body, a large message of 0 bytes, or a packed
// message with fewer than 2 records, records running past its end, or bytes after them.
Result<DecodedMessage> decode_message(std::span<const std::byte> message);

// Walks the records of a packed message that decode_message() accepted: calls
// `take(payload)` for each, in order.
template <typename Take>
void for_each_packed(std::span<const std::byte> records, std::uint32_t count, Take&& take) {
  ByteReader reader(records);
  for (std::uint32_t i = 0; i < count; ++i) {
    std::uint32_t length = 0;
    std::span<const std::byte> payload;
    bool ok = reader.get(length) && reader.get_bytes(length, payload);
    SQUALL_ASSERT(ok, "packed record {} of {} runs past the message", i, count);
    take(payload);
  }
}

}  // namespace squall::core
