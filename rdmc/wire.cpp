#include "rdmc/wire.hpp"

#include "common/assert.hpp"

namespace squall::rdmc {

// Control message layout (little-endian):
//   u8 tag (0xD3) | u8 kind | u16 group_id | u16 sender | u16 reserved (0) | u64 seq
//   announce only: | u64 size_bytes
Bytes encode_control(const ControlMessage& message) {
  Bytes out;
  out.reserve(kAnnounceBytes);
  ByteWriter writer(out);
  writer.put(kModuleTag);
  writer.put(static_cast<std::uint8_t>(message.kind));
  writer.put(message.group_id);
  writer.put(message.sender);
  writer.put(std::uint16_t{0});
  writer.put(message.seq);
  if (message.kind == ControlKind::announce) writer.put(message.size_bytes);
  return out;
}

bool is_control_message(std::span<const std::byte> payload) {
  return !payload.empty() && static_cast<std::uint8_t>(payload[0]) == kModuleTag;
}

std::optional<ControlMessage> decode_control(std::span<const std::byte> payload) {
  ByteReader reader(payload);
  std::uint8_t tag = 0;
  std::uint8_t kind = 0;
  std::uint16_t reserved = 0;
  ControlMessage message;
  if (!reader.get(tag) || !reader.get(kind) || !reader.get(message.group_id) ||
      !reader.get(message.sender) || !reader.get(reserved) || !reader.get(message.seq)) {
    return std::nullopt;
  }
  if (tag != kModuleTag || reserved != 0) return std::nullopt;
  if (kind == static_cast<std::uint8_t>(ControlKind::announce)) {
    message.kind = ControlKind::announce;
    if (!reader.get(message.size_bytes)) return std::nullopt;
  } else if (kind == static_cast<std::uint8_t>(ControlKind::ready)) {
    message.kind = ControlKind::ready;
  } else {
    return std::nullopt;
  }
  if (reader.remaining() != 0) return std::nullopt;
  return message;
}

// Immediate: bits 63..48 sender, 47..24 seq_low, 23..0 block.
std::uint64_t encode_immediate(const BlockTag& tag) {
  SQUALL_ASSERT(tag.seq_low <= kSeqMask && tag.block <= kSeqMask, "block tag out of range");
  return (std::uint64_t{tag.sender} << 48) | (std::uint64_t{tag.seq_low} << kSeqBits) |
         tag.block;
}

BlockTag decode_immediate(std::uint64_t immediate) {
  BlockTag tag;
  tag.sender = static_cast<std::uint16_t>(immediate >> 48);
  tag.seq_low = static_cast<std::uint32_t>((immediate >> kSeqBits) & kSeqMask);
  tag.block = static_cast<std::uint32_t>(immediate & kSeqMask);
  return tag;
}

// Context: bits 63..56 tag (0xD3), 55..40 group_id, 39..24 sender, 23..0 seq_low.
std::uint64_t encode_context(const WriteContext& context) {
  SQUALL_ASSERT(context.seq_low <= kSeqMask, "context seq out of range");
  return (std::uint64_t{kModuleTag} << 56) | (std::uint64_t{context.group_id} << 40) |
         (std::uint64_t{context.sender} << 24) | context.seq_low;
}

std::optional<WriteContext> decode_context(std::uint64_t context) {
  if ((context >> 56) != kModuleTag) return std::nullopt;
  WriteContext decoded;
  decoded.group_id = static_cast<std::uint16_t>(context >> 40);
  decoded.sender = static_cast<std::uint16_t>(context >> 24);
  decoded.seq_low = static_cast<std::uint32_t>(context & kSeqMask);
  return decoded;
}

}  // namespace squall::rdmc
