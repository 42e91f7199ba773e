// The update payload: the bytes one client write travels as through a shard's total order
// (docs/formats.md, "KV update payload").
//
//   format u8 (=1) | op u8 | condition u8 | reserved u8 (=0) | origin u32 | sequence u64 |
//   expected_version u64 | key_length u32 | key | value_length u32 | value
//
// Little-endian; 32 bytes of fixed fields plus key and value. The originator (the node that
// took the client request) numbers its requests; (origin, sequence) lets it match the result
// that apply() reports on every replica. Decoding is bounded and total: any malformed input
// is a Status (corruption), never a crash or an out-of-bounds read.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "common/bytes.hpp"
#include "common/ids.hpp"
#include "common/status.hpp"
#include "common/version.hpp"

namespace squall::kvstore {

// The operation of an update. On the wire: never renumber, only append.
enum class KvOp : std::uint8_t {
  put = 1,
  del = 2,
  // A read barrier (docs/consistency.md): consumes a version in the shard's order and writes
  // nothing. No key, no value, no condition.
  barrier = 3,
};

// The precondition of a write, evaluated at apply time. On the wire: never renumber.
enum class KvCondition : std::uint8_t {
  none = 0,
  if_version = 1,  // the key exists and its current version is expected_version
  if_exists = 2,   // the key exists (its latest version is a put)
  if_absent = 3,   // the key does not exist (never written, or deleted)
};

// Identifies one client request: the node that took it and that node's request counter.
struct RequestId {
  NodeId origin;
  std::uint64_t sequence = 0;
  bool operator==(const RequestId&) const = default;
};

// A decoded (or to-be-encoded) update. Spans point into the payload (decode) or the caller's
// buffers (encode); nothing is copied.
struct KvUpdate {
  KvOp op = KvOp::put;
  KvCondition condition = KvCondition::none;
  Version expected_version = 0;  // if_version only; 0 otherwise
  RequestId request;
  std::string_view key;
  std::span<const std::byte> value;  // empty for del
};

constexpr std::uint8_t kKvUpdateFormat = 1;
constexpr std::size_t kKvUpdateFixedBytes = 32;

// Limits decode() enforces (and encode() asserts).
struct KvCodecLimits {
  std::size_t max_key_bytes = 4096;
  std::size_t max_value_bytes = 16ULL << 20;
};

// Bytes of the encoded update.
constexpr std::size_t kv_update_size_bytes(std::size_t key_bytes, std::size_t value_bytes) {
  return kKvUpdateFixedBytes + key_bytes + value_bytes;
}

// Checks an update before it is sent: key 1..max_key_bytes, value within max_value_bytes,
// no value on a delete, expected_version set exactly for if_version, if_absent only on put;
// a barrier has no key, no value and no condition.
Status validate_update(const KvUpdate& update, const KvCodecLimits& limits);

// Appends the encoding of `update` to `out`. REQUIRES: validate_update(update) is ok.
void encode_update(const KvUpdate& update, const KvCodecLimits& limits, Bytes& out);
Bytes encode_update(const KvUpdate& update, const KvCodecLimits& limits);

// Parses a payload. corruption (with the reason) if it is not exactly one valid update.
Result<KvUpdate> decode_update(std::span<const std::byte> payload, const KvCodecLimits& limits);

std::string_view name(KvOp op);
std::string_view name(KvCondition condition);

}  // namespace squall::kvstore
