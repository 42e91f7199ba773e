// The bootstrap hello: what two LibfabricTransports tell each other over TCP before their
// fabric endpoints connect. Pure encoding and bounded, validated decoding; no I/O.
//
// Byte layout (docs/fabric.md has the grammar); all integers little-endian:
//   header = magic:u32 version:u16 kind:u16 body_length:u32 body_crc32c:u32     (16 bytes)
//   body   = from:u32 to:u32 channel:u32 nonce:u64 rx_depth:u32 max_message_bytes:u32
//            provider:str8 endpoint_name:bytes16 control:region regions:u32 region*
//   region = id:u32 length:u64 key:u64 address:u64
// A decoder refuses (invalid_argument / corruption, with the reason) anything that is not
// exactly one well-formed hello within the limits below; it never reads out of bounds.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/bytes.hpp"
#include "common/ids.hpp"
#include "common/status.hpp"

namespace squall::fabric {

// Wire constants. Never renumber or reuse.
inline constexpr std::uint32_t kHelloMagic = 0x48425153;  // "SQBH" read as little-endian
// Version 2 added `channel` (several transports behind one port, docs/fabric.md "Channels");
// version 1 is refused.
inline constexpr std::uint16_t kHelloVersion = 2;
inline constexpr std::uint16_t kHelloKind = 1;
inline constexpr std::size_t kHelloHeaderBytes = 16;

// Limits: a hello that exceeds any of them is refused.
inline constexpr std::size_t kHelloBodyMaxBytes = 64 * 1024;
inline constexpr std::size_t kEndpointNameMaxBytes = 256;
inline constexpr std::size_t kProviderNameMaxBytes = 32;
inline constexpr std::size_t kHelloRegionsMax = 1024;
inline constexpr std::uint32_t kRxDepthMax = 1U << 16;
inline constexpr std::uint32_t kMaxMessageBytesMax = 16U << 20;

// A memory region as its owner publishes it. `address` is what the writer adds the byte
// offset to: the region's virtual address when the provider wants virtual addresses
// (FI_MR_VIRT_ADDR), 0 when it wants offsets. `key` is the remote protection key.
struct RegionDescriptor {
  std::uint32_t id = 0;
  std::uint64_t length = 0;
  std::uint64_t key = 0;
  std::uint64_t address = 0;
  bool operator==(const RegionDescriptor&) const = default;
};

struct Hello {
  NodeId from;
  NodeId to;
  std::uint32_t channel = 0;           // the transport of `from` and `to` this hello is for
  std::uint64_t nonce = 0;             // chosen by `from` per connection attempt
  std::uint32_t rx_depth = 0;          // receive buffers `from` keeps posted for `to`
  std::uint32_t max_message_bytes = 0; // largest payload `from` accepts
  std::string provider;                // both sides must run the same provider
  Bytes endpoint_name;                 // fi_getname() of `from`'s passive endpoint
  RegionDescriptor control;            // `from`'s per-peer credit block (id unused, 0)
  std::vector<RegionDescriptor> regions;
  bool operator==(const Hello&) const = default;
};

struct HelloHeader {
  std::uint32_t body_length = 0;
  std::uint32_t body_crc32c = 0;
};

// The whole frame: header followed by body. The body ends with an HMAC-SHA256 of the body
// before it under the cluster secret (`secret`, empty when none is configured), so only
// members that hold the secret can connect (docs/security.md).
Bytes encode_hello(const Hello& hello, std::string_view secret = {});

// Validates the 16 header bytes (magic, version, kind, body length cap).
Result<HelloHeader> decode_hello_header(std::span<const std::byte> header);

// Validates the body against its header (length, CRC) and its MAC under `secret`, and
// decodes it. corruption "hello authentication failed" for another (or a missing) secret.
Result<Hello> decode_hello_body(const HelloHeader& header, std::span<const std::byte> body,
                                std::string_view secret = {});

// Convenience for tests: header + body in one buffer; refuses trailing bytes.
Result<Hello> decode_hello(std::span<const std::byte> frame, std::string_view secret = {});

}  // namespace squall::fabric
