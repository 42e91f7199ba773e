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
// Decoding never reads past its input; a malformed message is an error, never a crash.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "common/bytes.hpp"
#include "common/hlc.hpp"
#include "common/status.hpp"

namespace squall::core {

// On the wire: never renumber.
enum class MessageKind : std::uint8_t {
  data = 1,
  nulls = 2,
  large = 3,
};

inline constexpr std::size_t kMessageHeaderBytes = 16;
inline constexpr std::size_t kNullsBodyBytes = 8;
inline constexpr std::size_t kLargeBodyBytes = 16;

struct DecodedMessage {
  MessageKind kind = MessageKind::data;
  HlcTimestamp timestamp = 0;
  std::span<const std::byte> payload;  // data: the payload (a view into the input)
  std::uint64_t null_count = 0;        // nulls
  std::uint64_t rdmc_index = 0;        // large
  std::uint64_t size_bytes = 0;        // large
};

// Each encoder replaces the contents of `out`.
void encode_data(Bytes& out, HlcTimestamp timestamp, std::span<const std::byte> payload);
void encode_nulls(Bytes& out, HlcTimestamp timestamp, std::uint64_t count);
void encode_large(Bytes& out, HlcTimestamp timestamp, std::uint64_t rdmc_index,
                  std::uint64_t size_bytes);

// corruption if the input is truncated, has an unknown kind, non-zero reserved bytes, a null
// count of 0, trailing bytes after a fixed-size body, or a large message of 0 bytes.
Result<DecodedMessage> decode_message(std::span<const std::byte> message);

}  // namespace squall::core
