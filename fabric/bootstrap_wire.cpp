#include "fabric/bootstrap_wire.hpp"

#include <set>

#include <fmt/format.h>

#include "common/crc32c.hpp"
#include "common/hmac.hpp"

namespace squall::fabric {
namespace {

void put_region(ByteWriter& writer, const RegionDescriptor& region) {
  writer.put(region.id);
  writer.put(region.length);
  writer.put(region.key);
  writer.put(region.address);
}

bool get_region(ByteReader& reader, RegionDescriptor& region) {
  return reader.get(region.id) && reader.get(region.length) && reader.get(region.key) &&
         reader.get(region.address);
}

Status refuse(std::string_view what) { return invalid_argument(fmt::format("hello: {}", what)); }

// Reads the variable-length strings of the body; each is capped before it is copied.
Status get_names(ByteReader& reader, Hello& hello) {
  std::uint8_t provider_length = 0;
  std::span<const std::byte> provider;
  if (!reader.get(provider_length) || provider_length > kProviderNameMaxBytes ||
      !reader.get_bytes(provider_length, provider)) {
    return refuse("provider name truncated or too long");
  }
  hello.provider.assign(as_string_view(provider));
  std::uint16_t name_length = 0;
  std::span<const std::byte> name;
  if (!reader.get(name_length) || name_length == 0 || name_length > kEndpointNameMaxBytes ||
      !reader.get_bytes(name_length, name)) {
    return refuse("endpoint name truncated, empty or too long");
  }
  hello.endpoint_name.assign(name.begin(), name.end());
  return Status::ok();
}

Status get_regions(ByteReader& reader, Hello& hello) {
  if (!get_region(reader, hello.control)) return refuse("control region truncated");
  std::uint32_t count = 0;
  if (!reader.get(count)) return refuse("region count truncated");
  if (count > kHelloRegionsMax) {
    return refuse(fmt::format("{} regions exceed the limit of {}", count, kHelloRegionsMax));
  }
  std::set<std::uint32_t> seen;
  hello.regions.resize(count);
  for (RegionDescriptor& region : hello.regions) {
    if (!get_region(reader, region)) return refuse("region truncated");
    if (region.length == 0) return refuse(fmt::format("region {} is empty", region.id));
    if (!seen.insert(region.id).second) {
      return refuse(fmt::format("region {} listed twice", region.id));
    }
  }
  return Status::ok();
}

}  // namespace

Bytes encode_hello(const Hello& hello, std::string_view secret) {
  SQUALL_ASSERT(hello.provider.size() <= kProviderNameMaxBytes, "provider name too long");
  SQUALL_ASSERT(!hello.endpoint_name.empty() &&
                    hello.endpoint_name.size() <= kEndpointNameMaxBytes,
                "endpoint name of {} bytes", hello.endpoint_name.size());
  SQUALL_ASSERT(hello.regions.size() <= kHelloRegionsMax, "too many regions");
  Bytes body;
  ByteWriter writer(body);
  writer.put(hello.from.value);
  writer.put(hello.to.value);
  writer.put(hello.channel);
  writer.put(hello.nonce);
  writer.put(hello.rx_depth);
  writer.put(hello.max_message_bytes);
  writer.put(static_cast<std::uint8_t>(hello.provider.size()));
  writer.put_bytes(as_bytes(hello.provider));
  writer.put(static_cast<std::uint16_t>(hello.endpoint_name.size()));
  writer.put_bytes(hello.endpoint_name);
  put_region(writer, hello.control);
  writer.put(static_cast<std::uint32_t>(hello.regions.size()));
  for (const RegionDescriptor& region : hello.regions) put_region(writer, region);
  Hmac mac = hmac_sha256(secret, body);
  writer.put_bytes(mac);
  SQUALL_ASSERT(body.size() <= kHelloBodyMaxBytes, "hello body of {} bytes", body.size());

  Bytes frame;
  ByteWriter header(frame);
  header.put(kHelloMagic);
  header.put(kHelloVersion);
  header.put(kHelloKind);
  header.put(static_cast<std::uint32_t>(body.size()));
  header.put(crc32c(body));
  SQUALL_ASSERT(frame.size() == kHelloHeaderBytes, "header of {} bytes", frame.size());
  header.put_bytes(body);
  return frame;
}

Result<HelloHeader> decode_hello_header(std::span<const std::byte> bytes) {
  if (bytes.size() != kHelloHeaderBytes) return refuse("header truncated");
  ByteReader reader(bytes);
  std::uint32_t magic = 0;
  std::uint16_t version = 0;
  std::uint16_t kind = 0;
  HelloHeader header;
  SQUALL_ASSERT(reader.get(magic) && reader.get(version) && reader.get(kind) &&
                    reader.get(header.body_length) && reader.get(header.body_crc32c),
                "fixed-size header");
  if (magic != kHelloMagic) return refuse(fmt::format("bad magic {:#010x}", magic));
  if (version == 1) {
    return refuse(fmt::format("unsupported version 1 (it predates channels; this node speaks "
                              "{}): the peer runs an older Squall",
                              kHelloVersion));
  }
  if (version != kHelloVersion) {
    return refuse(fmt::format("unsupported version {} (this node speaks {})", version,
                              kHelloVersion));
  }
  if (kind != kHelloKind) return refuse(fmt::format("unknown kind {}", kind));
  if (header.body_length == 0 || header.body_length > kHelloBodyMaxBytes) {
    return refuse(fmt::format("body length {} outside 1..{}", header.body_length,
                              kHelloBodyMaxBytes));
  }
  return header;
}

Result<Hello> decode_hello_body(const HelloHeader& header, std::span<const std::byte> body,
                                std::string_view secret) {
  if (body.size() != header.body_length) return refuse("body length mismatch");
  if (crc32c(body) != header.body_crc32c) {
    return Status(Code::corruption, "hello: body checksum mismatch");
  }
  if (body.size() < kHmacBytes) return refuse("no room for the MAC");
  std::span<const std::byte> fields = body.first(body.size() - kHmacBytes);
  if (!hmac_equal(hmac_sha256(secret, fields), body.subspan(fields.size()))) {
    return Status(Code::corruption,
                  "hello authentication failed (another cluster secret, or a secret "
                  "configured on one side only)");
  }
  body = fields;
  ByteReader reader(body);
  Hello hello;
  if (!reader.get(hello.from.value) || !reader.get(hello.to.value) ||
      !reader.get(hello.channel) || !reader.get(hello.nonce) || !reader.get(hello.rx_depth) ||
      !reader.get(hello.max_message_bytes)) {
    return refuse("fixed fields truncated");
  }
  if (hello.rx_depth == 0 || hello.rx_depth > kRxDepthMax) {
    return refuse(fmt::format("rx_depth {} outside 1..{}", hello.rx_depth, kRxDepthMax));
  }
  if (hello.max_message_bytes == 0 || hello.max_message_bytes > kMaxMessageBytesMax) {
    return refuse(fmt::format("max_message_bytes {} outside 1..{}", hello.max_message_bytes,
                              kMaxMessageBytesMax));
  }
  SQUALL_TRY(get_names(reader, hello));
  SQUALL_TRY(get_regions(reader, hello));
  if (reader.remaining() != 0) {
    return refuse(fmt::format("{} trailing bytes", reader.remaining()));
  }
  return hello;
}

Result<Hello> decode_hello(std::span<const std::byte> frame, std::string_view secret) {
  if (frame.size() < kHelloHeaderBytes) return refuse("header truncated");
  auto header = decode_hello_header(frame.first(kHelloHeaderBytes));
  if (!header) return header.status();
  return decode_hello_body(*header, frame.subspan(kHelloHeaderBytes), secret);
}

}  // namespace squall::fabric
