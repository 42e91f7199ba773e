#include "fabric/libfabric_wire.hpp"

#include <fmt/format.h>

#include "common/bytes.hpp"

namespace squall::fabric::wire {
namespace {

// Little-endian stores into a fixed span, bounds asserted by the callers' sizes.
template <typename T>
void store(std::span<std::byte> out, std::size_t at, T value) {
  SQUALL_ASSERT(at + sizeof(T) <= out.size(), "store past the end");
  for (std::size_t i = 0; i < sizeof(T); ++i) {
    out[at + i] = static_cast<std::byte>(static_cast<std::uint64_t>(value) >> (8 * i));
  }
}

Status malformed(std::string_view what) {
  return corruption(fmt::format("malformed frame: {}", what));
}

}  // namespace

void put_frame_header(std::span<std::byte> out, FrameKind kind, std::uint32_t payload_bytes) {
  store(out, 0, static_cast<std::uint8_t>(kind));
  store(out, 1, std::uint8_t{0});
  store(out, 2, std::uint16_t{0});
  store(out, 4, payload_bytes);
}

void put_notice_frame(std::span<std::byte> out, const WriteNotice& notice) {
  put_frame_header(out, FrameKind::write_notice, kNoticePayloadBytes);
  store(out, 8, notice.region);
  store(out, 12, std::uint32_t{0});
  store(out, 16, notice.offset);
  store(out, 24, notice.length);
  store(out, 32, notice.immediate);
}

Result<Frame> parse_frame(std::span<const std::byte> received) {
  ByteReader reader(received);
  std::uint8_t kind = 0;
  std::uint8_t reserved8 = 0;
  std::uint16_t reserved16 = 0;
  std::uint32_t payload_bytes = 0;
  if (!reader.get(kind) || !reader.get(reserved8) || !reader.get(reserved16) ||
      !reader.get(payload_bytes)) {
    return malformed(fmt::format("{} bytes is shorter than a header", received.size()));
  }
  if (reserved8 != 0 || reserved16 != 0) return malformed("reserved bytes set");
  if (payload_bytes != reader.remaining()) {
    return malformed(fmt::format("header says {} payload bytes, {} arrived", payload_bytes,
                                 reader.remaining()));
  }
  if (kind != static_cast<std::uint8_t>(FrameKind::message) &&
      kind != static_cast<std::uint8_t>(FrameKind::write_notice)) {
    return malformed(fmt::format("unknown kind {}", kind));
  }
  return Frame{static_cast<FrameKind>(kind), received.subspan(kFrameHeaderBytes)};
}

Result<WriteNotice> parse_notice(std::span<const std::byte> payload) {
  if (payload.size() != kNoticePayloadBytes) {
    return malformed(fmt::format("write notice of {} bytes", payload.size()));
  }
  ByteReader reader(payload);
  WriteNotice notice;
  std::uint32_t reserved = 0;
  SQUALL_ASSERT(reader.get(notice.region) && reader.get(reserved) &&
                    reader.get(notice.offset) && reader.get(notice.length) &&
                    reader.get(notice.immediate),
                "fixed-size notice");
  if (reserved != 0) return malformed("reserved notice bytes set");
  return notice;
}

void put_connect_request(std::span<std::byte> out, const ConnectRequest& request) {
  SQUALL_ASSERT(out.size() >= kConnreqBytes, "connreq buffer of {} bytes", out.size());
  store(out, 0, kConnreqMagic);
  store(out, 4, kConnreqVersion);
  store(out, 6, std::uint16_t{0});
  store(out, 8, request.from.value);
  store(out, 12, request.to.value);
  store(out, 16, request.nonce);
}

Result<ConnectRequest> parse_connect_request(std::span<const std::byte> data) {
  // Providers may pad private data (rdmacm rounds it up), so only a minimum length is checked.
  if (data.size() < kConnreqBytes) {
    return invalid_argument(fmt::format("connection request data of {} bytes", data.size()));
  }
  ByteReader reader(data.first(kConnreqBytes));
  std::uint32_t magic = 0;
  std::uint16_t version = 0;
  std::uint16_t reserved = 0;
  ConnectRequest request;
  SQUALL_ASSERT(reader.get(magic) && reader.get(version) && reader.get(reserved) &&
                    reader.get(request.from.value) && reader.get(request.to.value) &&
                    reader.get(request.nonce),
                "fixed-size connreq");
  if (magic != kConnreqMagic || version != kConnreqVersion || reserved != 0) {
    return invalid_argument(fmt::format(
        "connection request with magic {:#010x} version {}", magic, version));
  }
  return request;
}

std::uint64_t encode_context(const OpContext& context) {
  SQUALL_ASSERT(context.incarnation != 0, "incarnation 0 is reserved");
  SQUALL_ASSERT(context.slot < kSlotLimit, "slot {} too large", context.slot);
  return (static_cast<std::uint64_t>(context.incarnation) << 32) |
         (static_cast<std::uint64_t>(context.kind) << 24) | context.slot;
}

std::optional<OpContext> decode_context(std::uint64_t value) {
  OpContext context;
  context.incarnation = static_cast<std::uint32_t>(value >> 32);
  auto kind = static_cast<std::uint8_t>((value >> 24) & 0xFF);
  context.slot = static_cast<std::uint32_t>(value & (kSlotLimit - 1));
  if (context.incarnation == 0 || kind < static_cast<std::uint8_t>(OpKind::recv) ||
      kind > static_cast<std::uint8_t>(OpKind::credit)) {
    return std::nullopt;
  }
  context.kind = static_cast<OpKind>(kind);
  return context;
}

}  // namespace squall::fabric::wire
