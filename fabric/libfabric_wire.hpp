// Formats LibfabricTransport puts on its fabric endpoints, and the completion-context encoding.
// Pure functions; no libfabric types. docs/fabric.md has the grammar.
//
// Every two-sided message on an endpoint is a frame:
//   frame   = kind:u8 reserved:u8[3] payload_length:u32 payload
//   kind 1  = user message: payload is the caller's bytes
//   kind 2  = write notice: payload = region:u32 reserved:u32 offset:u64 length:u64
//             immediate:u64 (emulated immediate data, posted right after its RMA write)
// Connection request private data (fi_connect param), 24 bytes:
//   connreq = magic:u32 version:u16 reserved:u16 from:u32 to:u32 nonce:u64
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "common/ids.hpp"
#include "common/status.hpp"

namespace squall::fabric::wire {

// Never renumber or reuse.
enum class FrameKind : std::uint8_t { message = 1, write_notice = 2 };

inline constexpr std::size_t kFrameHeaderBytes = 8;
inline constexpr std::size_t kNoticePayloadBytes = 32;
inline constexpr std::size_t kNoticeFrameBytes = kFrameHeaderBytes + kNoticePayloadBytes;

struct WriteNotice {
  std::uint32_t region = 0;
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
  std::uint64_t immediate = 0;
  bool operator==(const WriteNotice&) const = default;
};

// Writes a frame header for `payload_bytes` into out[0..8).
void put_frame_header(std::span<std::byte> out, FrameKind kind, std::uint32_t payload_bytes);
// Writes a complete notice frame into out[0..kNoticeFrameBytes).
void put_notice_frame(std::span<std::byte> out, const WriteNotice& notice);

struct Frame {
  FrameKind kind = FrameKind::message;
  std::span<const std::byte> payload;
};
// Parses a received frame (the received length, not the buffer size). corruption on any
// malformation: unknown kind, length mismatch, non-zero reserved bytes.
Result<Frame> parse_frame(std::span<const std::byte> received);
Result<WriteNotice> parse_notice(std::span<const std::byte> payload);

inline constexpr std::uint32_t kConnreqMagic = 0x43425153;  // "SQBC"
inline constexpr std::uint16_t kConnreqVersion = 1;
inline constexpr std::size_t kConnreqBytes = 24;

struct ConnectRequest {
  NodeId from;
  NodeId to;
  std::uint64_t nonce = 0;  // the accepting node's hello nonce, echoed back
  bool operator==(const ConnectRequest&) const = default;
};
void put_connect_request(std::span<std::byte> out, const ConnectRequest& request);
Result<ConnectRequest> parse_connect_request(std::span<const std::byte> data);

// Completion contexts are integers, not pointers: a completion that arrives after its peer
// was torn down names a retired incarnation and is dropped without touching freed memory.
enum class OpKind : std::uint8_t { recv = 1, write = 2, send = 3, notice = 4, credit = 5 };

struct OpContext {
  std::uint32_t incarnation = 0;  // the peer connection this operation belongs to (never 0)
  OpKind kind = OpKind::recv;
  std::uint32_t slot = 0;         // < 2^24: index of the rx buffer or tx slot
  bool operator==(const OpContext&) const = default;
};
inline constexpr std::uint32_t kSlotLimit = 1U << 24;

std::uint64_t encode_context(const OpContext& context);
std::optional<OpContext> decode_context(std::uint64_t value);

}  // namespace squall::fabric::wire
