// The bootstrap hello codec and the endpoint frame formats: round trips, and refusal of
// every kind of malformed input without reading out of bounds.
#include <catch2/catch.hpp>

#include <array>
#include <random>

#include "common/crc32c.hpp"
#include "common/hmac.hpp"
#include "fabric/bootstrap_wire.hpp"
#include "fabric/libfabric_wire.hpp"

namespace squall::fabric {
namespace {

Hello sample_hello() {
  Hello hello;
  hello.from = NodeId(3);
  hello.to = NodeId(9);
  hello.channel = 0x0BADF00D;
  hello.nonce = 0x0123456789ABCDEFULL;
  hello.rx_depth = 128;
  hello.max_message_bytes = 8192;
  hello.provider = "tcp";
  hello.endpoint_name = Bytes(16, std::byte{0x7F});
  hello.control = {0, 128, 42, 0};
  hello.regions = {{1, 4096, 7, 0x7000'0000'1000ULL}, {2, 1 << 20, 8, 0}};
  return hello;
}

void put_u32(Bytes& frame, std::size_t at, std::uint32_t value) {
  for (std::size_t i = 0; i < 4; ++i) {
    frame[at + i] = static_cast<std::byte>(value >> (8 * i));
  }
}

// After a body edit: fixes length and CRC in the header so the body validation is reached.
// Recomputes the MAC (empty secret), the body length and the CRC of an edited frame.
void reseal(Bytes& frame) {
  if (frame.size() >= kHelloHeaderBytes + kHmacBytes) {
    std::span<const std::byte> fields(frame.data() + kHelloHeaderBytes,
                                      frame.size() - kHelloHeaderBytes - kHmacBytes);
    Hmac mac = hmac_sha256({}, fields);
    std::copy(mac.begin(), mac.end(), frame.end() - static_cast<std::ptrdiff_t>(kHmacBytes));
  }
  std::span<const std::byte> body(frame.data() + kHelloHeaderBytes,
                                  frame.size() - kHelloHeaderBytes);
  put_u32(frame, 8, static_cast<std::uint32_t>(body.size()));
  put_u32(frame, 12, crc32c(body));
}

// Offsets into the encoded sample body (see the layout in bootstrap_wire.hpp).
constexpr std::size_t kChannelAt = kHelloHeaderBytes + 8;
constexpr std::size_t kRxDepthAt = kHelloHeaderBytes + 20;
constexpr std::size_t kProviderLengthAt = kHelloHeaderBytes + 28;
constexpr std::size_t kNameLengthAt = kProviderLengthAt + 1 + 3;
constexpr std::size_t kRegionCountAt = kNameLengthAt + 2 + 16 + 28;

}  // namespace

TEST_CASE("hello: round trip") {
  Hello hello = sample_hello();
  Bytes frame = encode_hello(hello);
  auto decoded = decode_hello(frame);
  REQUIRE(decoded.is_ok());
  REQUIRE(*decoded == hello);
  REQUIRE(frame.size() == kHelloHeaderBytes + 28 + 4 + 18 + 28 + 4 + 2 * 28 + kHmacBytes);
  // The channel sits right after `to`, little-endian.
  REQUIRE(frame[kChannelAt] == std::byte{0x0D});
  REQUIRE(frame[kChannelAt + 3] == std::byte{0x0B});
}

TEST_CASE("hello: header refusals") {
  Bytes frame = encode_hello(sample_hello());
  std::span<const std::byte> header(frame.data(), kHelloHeaderBytes);
  REQUIRE(decode_hello_header(header).is_ok());
  REQUIRE_FALSE(decode_hello_header(header.first(15)).is_ok());

  Bytes bad = frame;
  bad[0] = std::byte{'X'};
  REQUIRE(decode_hello(bad).status().message().find("magic") != std::string::npos);
  bad = frame;
  bad[4] = std::byte{3};
  REQUIRE(decode_hello(bad).status().message().find("version") != std::string::npos);
  // Version 1 (before channels) is refused with a reason that names it.
  bad = frame;
  bad[4] = std::byte{1};
  Status old = decode_hello(bad).status();
  REQUIRE(old.code() == Code::invalid_argument);
  REQUIRE(old.message().find("version 1") != std::string::npos);
  REQUIRE(old.message().find("channels") != std::string::npos);
  bad = frame;
  bad[6] = std::byte{9};
  REQUIRE(decode_hello(bad).status().message().find("kind") != std::string::npos);
  bad = frame;
  put_u32(bad, 8, kHelloBodyMaxBytes + 1);
  REQUIRE(decode_hello(bad).status().message().find("body length") != std::string::npos);
  bad = frame;
  put_u32(bad, 8, 0);
  REQUIRE_FALSE(decode_hello(bad).is_ok());
}

TEST_CASE("hello: authenticated with the cluster secret") {
  const std::string secret = "shared-cluster-secret";
  Bytes frame = encode_hello(sample_hello(), secret);
  REQUIRE(decode_hello(frame, secret).is_ok());
  for (std::string_view other : {std::string_view{}, std::string_view{"shared-cluster-secreT"}}) {
    Status refused = decode_hello(frame, other).status();
    REQUIRE(refused.code() == Code::corruption);
    REQUIRE(refused.message().find("authentication failed") != std::string::npos);
  }
  REQUIRE_FALSE(decode_hello(encode_hello(sample_hello()), secret).is_ok());
}

TEST_CASE("hello: body refusals") {
  Bytes frame = encode_hello(sample_hello());
  Bytes bad = frame;
  bad.back() ^= std::byte{1};
  REQUIRE(decode_hello(bad).status().code() == Code::corruption);

  bad = frame;
  put_u32(bad, kRxDepthAt, 0);
  reseal(bad);
  REQUIRE(decode_hello(bad).status().message().find("rx_depth") != std::string::npos);

  bad = frame;
  bad[kProviderLengthAt] = std::byte{200};
  reseal(bad);
  REQUIRE(decode_hello(bad).status().message().find("provider") != std::string::npos);

  bad = frame;
  bad[kNameLengthAt] = std::byte{0};
  reseal(bad);
  REQUIRE(decode_hello(bad).status().message().find("endpoint name") != std::string::npos);

  bad = frame;
  put_u32(bad, kRegionCountAt, kHelloRegionsMax + 1);
  reseal(bad);
  REQUIRE(decode_hello(bad).status().message().find("exceed") != std::string::npos);

  bad = frame;
  put_u32(bad, kRegionCountAt, 3);  // claims a region that is not there
  reseal(bad);
  REQUIRE(decode_hello(bad).status().message().find("truncated") != std::string::npos);

  Hello twice = sample_hello();
  twice.regions[1].id = twice.regions[0].id;
  REQUIRE(decode_hello(encode_hello(twice)).status().message().find("twice") !=
          std::string::npos);

  bad = frame;
  bad.push_back(std::byte{0});
  reseal(bad);
  REQUIRE(decode_hello(bad).status().message().find("trailing") != std::string::npos);
}

TEST_CASE("hello: every truncation and random corruption is refused or decoded safely") {
  Bytes frame = encode_hello(sample_hello());
  for (std::size_t length = 0; length < frame.size(); ++length) {
    Bytes cut(frame.begin(), frame.begin() + static_cast<std::ptrdiff_t>(length));
    REQUIRE_FALSE(decode_hello(cut).is_ok());
    if (length > kHelloHeaderBytes) {
      reseal(cut);
      REQUIRE_FALSE(decode_hello(cut).is_ok());
    }
  }
  std::mt19937_64 random(12345);
  std::size_t refused = 0;
  for (int round = 0; round < 20000; ++round) {
    Bytes mutated = frame;
    int flips = 1 + static_cast<int>(random() % 4);
    for (int i = 0; i < flips; ++i) {
      mutated[random() % mutated.size()] ^= static_cast<std::byte>(1 + random() % 255);
    }
    if (round % 2 == 0) reseal(mutated);
    auto decoded = decode_hello(mutated);
    if (!decoded) {
      ++refused;
      continue;
    }
    // Whatever decodes must satisfy every documented limit.
    REQUIRE(decoded->endpoint_name.size() <= kEndpointNameMaxBytes);
    REQUIRE(decoded->regions.size() <= kHelloRegionsMax);
    REQUIRE(decoded->rx_depth >= 1);
  }
  REQUIRE(refused > 10000);
}

TEST_CASE("frames: messages and write notices") {
  std::array<std::byte, 64> buffer{};
  wire::put_frame_header(buffer, wire::FrameKind::message, 5);
  auto frame = wire::parse_frame(std::span(buffer).first(13));
  REQUIRE(frame.is_ok());
  REQUIRE(frame->kind == wire::FrameKind::message);
  REQUIRE(frame->payload.size() == 5);
  REQUIRE(wire::parse_frame(std::span(buffer).first(12)).status().code() == Code::corruption);
  REQUIRE(wire::parse_frame(std::span(buffer).first(7)).status().code() == Code::corruption);

  wire::WriteNotice notice{4, 1 << 20, 4096, 0xFFFF'FFFF'FFFF'FFFFULL};
  wire::put_notice_frame(buffer, notice);
  frame = wire::parse_frame(std::span(buffer).first(wire::kNoticeFrameBytes));
  REQUIRE(frame.is_ok());
  REQUIRE(frame->kind == wire::FrameKind::write_notice);
  auto parsed = wire::parse_notice(frame->payload);
  REQUIRE(parsed.is_ok());
  REQUIRE(*parsed == notice);
  REQUIRE_FALSE(wire::parse_notice(frame->payload.first(31)).is_ok());

  buffer[0] = std::byte{9};
  REQUIRE(wire::parse_frame(std::span(buffer).first(wire::kNoticeFrameBytes))
              .status()
              .message()
              .find("unknown kind") != std::string::npos);
  buffer[0] = std::byte{1};
  buffer[2] = std::byte{1};
  REQUIRE(wire::parse_frame(std::span(buffer).first(wire::kNoticeFrameBytes))
              .status()
              .message()
              .find("reserved") != std::string::npos);
}

TEST_CASE("frames: connection requests and completion contexts") {
  std::array<std::byte, 40> data{};
  wire::ConnectRequest request{NodeId(1), NodeId(2), 99};
  wire::put_connect_request(data, request);
  auto parsed = wire::parse_connect_request(data);  // padded private data is accepted
  REQUIRE(parsed.is_ok());
  REQUIRE(*parsed == request);
  REQUIRE_FALSE(wire::parse_connect_request(std::span(data).first(23)).is_ok());
  data[0] ^= std::byte{1};
  REQUIRE_FALSE(wire::parse_connect_request(data).is_ok());

  wire::OpContext context{0xFFFF'FFFFU, wire::OpKind::credit, wire::kSlotLimit - 1};
  auto decoded = wire::decode_context(wire::encode_context(context));
  REQUIRE(decoded.has_value());
  REQUIRE(*decoded == context);
  REQUIRE_FALSE(wire::decode_context(0).has_value());  // e.g. a NULL op_context
  REQUIRE_FALSE(wire::decode_context((1ULL << 32) | (9ULL << 24)).has_value());
}

}  // namespace squall::fabric
