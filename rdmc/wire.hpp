// RDMC's wire formats: two-sided control messages, the immediate data of block writes, and
// the contexts of signalled writes. Byte layouts are in docs/rdmc.md ("Wire formats").
//
// Every value is little-endian. The numbers of ControlKind travel on the wire: do not
// renumber them.
#pragma once

#include <cstdint>
#include <optional>
#include <span>

#include "common/bytes.hpp"

namespace squall::rdmc {

// First byte of every RDMC control message and top byte of every RDMC write context, so the
// owner of a transport can route events to the right module.
inline constexpr std::uint8_t kModuleTag = 0xD3;

// Bounds of the fields packed into 64-bit immediates and contexts.
inline constexpr std::uint32_t kMaxGroupId = 0xFFFF;
inline constexpr std::uint32_t kSeqBits = 24;  // low bits of a sequence number carried along
inline constexpr std::uint64_t kSeqMask = (std::uint64_t{1} << kSeqBits) - 1;

enum class ControlKind : std::uint8_t {
  announce = 1,  // sender -> every member: message `seq` of `size_bytes` bytes is coming
  ready = 2,     // receiver -> each member it receives blocks from: my slot for it is free
};

struct ControlMessage {
  ControlKind kind = ControlKind::announce;
  std::uint16_t group_id = 0;
  std::uint16_t sender = 0;  // member index (in the group's member list) of the message's sender
  std::uint64_t seq = 0;     // the sender's message number in this group, from 0
  std::uint64_t size_bytes = 0;  // announce only
};

inline constexpr std::size_t kAnnounceBytes = 24;
inline constexpr std::size_t kReadyBytes = 16;

Bytes encode_control(const ControlMessage& message);

// True when `payload` starts with RDMC's tag (it may still be malformed).
bool is_control_message(std::span<const std::byte> payload);

// Parses a control message; nullopt when malformed (wrong tag, kind, length or reserved bits).
std::optional<ControlMessage> decode_control(std::span<const std::byte> payload);

// Immediate data of a block write: which message (sender index, low seq bits) and block.
struct BlockTag {
  std::uint16_t sender = 0;
  std::uint32_t seq_low = 0;  // seq & kSeqMask
  std::uint32_t block = 0;    // < 2^24
};

std::uint64_t encode_immediate(const BlockTag& tag);
BlockTag decode_immediate(std::uint64_t immediate);

// Context of a signalled block write: group, sender index and low seq bits of the message.
struct WriteContext {
  std::uint16_t group_id = 0;
  std::uint16_t sender = 0;
  std::uint32_t seq_low = 0;
};

std::uint64_t encode_context(const WriteContext& context);
// nullopt when the context is not an RDMC one (top byte is not kModuleTag).
std::optional<WriteContext> decode_context(std::uint64_t context);

}  // namespace squall::rdmc
