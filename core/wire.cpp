#include "core/wire.hpp"

#include <fmt/format.h>

namespace squall::core {
namespace {

void put_header(Bytes& out, MessageKind kind, HlcTimestamp timestamp) {
  out.clear();
  ByteWriter writer(out);
  writer.put(static_cast<std::uint8_t>(kind));
  for (int i = 0; i < 7; ++i) writer.put(std::uint8_t{0});
  writer.put(timestamp);
}

Status check_fixed_body(const ByteReader& reader, MessageKind kind) {
  if (reader.remaining() != 0) {
    return corruption(fmt::format("message of kind {} has {} trailing bytes",
                                  static_cast<int>(kind), reader.remaining()));
  }
  return Status::ok();
}

}  // namespace

void encode_data(Bytes& out, HlcTimestamp timestamp, std::span<const std::byte> payload) {
  out.reserve(kMessageHeaderBytes + payload.size());
  put_header(out, MessageKind::data, timestamp);
  ByteWriter(out).put_bytes(payload);
}

void encode_nulls(Bytes& out, HlcTimestamp timestamp, std::uint64_t count) {
  SQUALL_ASSERT(count > 0, "a null batch skips at least one slot");
  put_header(out, MessageKind::nulls, timestamp);
  ByteWriter(out).put(count);
}

void encode_large(Bytes& out, HlcTimestamp timestamp, std::uint64_t rdmc_index,
                  std::uint64_t size_bytes) {
  SQUALL_ASSERT(size_bytes > 0, "a large message has a payload");
  put_header(out, MessageKind::large, timestamp);
  ByteWriter writer(out);
  writer.put(rdmc_index);
  writer.put(size_bytes);
}

void begin_packed(Bytes& out, HlcTimestamp timestamp, std::uint32_t count) {
  SQUALL_ASSERT(count >= 2, "a packed message carries at least two updates");
  put_header(out, MessageKind::packed, timestamp);
  ByteWriter(out).put(count);
}

void add_packed(Bytes& out, std::span<const std::byte> payload) {
  ByteWriter writer(out);
  writer.put(static_cast<std::uint32_t>(payload.size()));
  writer.put_bytes(payload);
}

namespace {

Status check_packed(ByteReader& reader, DecodedMessage& decoded) {
  if (!reader.get(decoded.packed_count)) return corruption("truncated packed message");
  if (decoded.packed_count < 2) {
    return corruption(fmt::format("packed message of {} updates", decoded.packed_count));
  }
  std::span<const std::byte> records;
  (void)reader.get_bytes(reader.remaining(), records);
  ByteReader walk(records);
  for (std::uint32_t i = 0; i < decoded.packed_count; ++i) {
    std::uint32_t length = 0;
    std::span<const std::byte> payload;
    if (!walk.get(length) || !walk.get_bytes(length, payload)) {
      return corruption(fmt::format("packed record {} of {} runs past the message", i,
                                    decoded.packed_count));
    }
  }
  if (walk.remaining() != 0) {
    return corruption(fmt::format("packed message has {} trailing bytes", walk.remaining()));
  }
  decoded.payload = records;
  return Status::ok();
}

}  // namespace

Result<DecodedMessage> decode_message(std::span<const std::byte> message) {
  ByteReader reader(message);
  std::uint8_t kind = 0;
  DecodedMessage decoded;
  if (!reader.get(kind)) return corruption("empty multicast message");
  for (int i = 0; i < 7; ++i) {
    std::uint8_t reserved = 0;
    if (!reader.get(reserved)) return corruption("truncated multicast header");
    if (reserved != 0) return corruption("reserved header byte is not zero");
  }
  if (!reader.get(decoded.timestamp)) return corruption("truncated multicast header");
  decoded.kind = static_cast<MessageKind>(kind);
  switch (decoded.kind) {
    case MessageKind::data:
      (void)reader.get_bytes(reader.remaining(), decoded.payload);
      return decoded;
    case MessageKind::nulls:
      if (!reader.get(decoded.null_count)) return corruption("truncated null batch");
      if (decoded.null_count == 0) return corruption("null batch of zero slots");
      SQUALL_TRY(check_fixed_body(reader, decoded.kind));
      return decoded;
    case MessageKind::large:
      if (!reader.get(decoded.rdmc_index) || !reader.get(decoded.size_bytes)) {
        return corruption("truncated large-message descriptor");
      }
      if (decoded.size_bytes == 0) return corruption("large message of zero bytes");
      SQUALL_TRY(check_fixed_body(reader, decoded.kind));
      return decoded;
    case MessageKind::packed:
      SQUALL_TRY(check_packed(reader, decoded));
      return decoded;
  }
  return corruption(fmt::format("unknown multicast message kind {}", kind));
}

}  // namespace squall::core
