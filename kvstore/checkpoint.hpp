// The KV checkpoint format (docs/formats.md, "KV checkpoint"): the latest value of every
// existing key of every stored pool, as of one applied version, in CRC-checked chunks.
//
//   checkpoint = header chunk* trailer
//   header     = "SqKvCkpt" | format u32 (=1) | pools u32 | version u64 | timestamp u64 |
//                crc32c u32 (over the 32 bytes before it)
//   chunk      = kind u8 (=1) | pool u32 | entries u32 | body_bytes u32 | crc32c u32 | body
//                (the crc covers the 13 bytes before it and the body)
//   body       = entry{entries}
//   entry      = op u8 (=1 put) | version u64 | timestamp u64 | key_length u32 | key |
//                value_length u32 | value
//   trailer    = kind u8 (=2) | chunks u32 | entries u64 | crc32c u32 (over the 13 bytes
//                before it); nothing may follow it
//
// Reading is bounded (every length checked against the limits before use) and total: a
// damaged or truncated checkpoint is Code::corruption, never a crash.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string_view>

#include "common/bytes.hpp"
#include "common/hlc.hpp"
#include "common/status.hpp"
#include "common/version.hpp"

namespace squall::kvstore {

constexpr std::string_view kCheckpointMagic = "SqKvCkpt";
constexpr std::uint32_t kCheckpointFormat = 1;
constexpr std::size_t kCheckpointHeaderBytes = 36;
constexpr std::size_t kCheckpointChunkHeadBytes = 17;
constexpr std::size_t kCheckpointTrailerBytes = 17;
constexpr std::size_t kCheckpointEntryFixedBytes = 25;
// Chunk kinds and entry ops are stored: never renumber.
constexpr std::uint8_t kCheckpointChunkEntries = 1;
constexpr std::uint8_t kCheckpointChunkEnd = 2;
constexpr std::uint8_t kCheckpointEntryPut = 1;

struct CheckpointHeader {
  Version version = 0;
  HlcTimestamp timestamp = 0;
  std::uint32_t pools = 0;
};

// One key's latest value. Spans point into the caller's (writer) or the checkpoint's
// (reader) bytes.
struct CheckpointEntry {
  std::uint32_t pool = 0;
  Version version = 0;
  HlcTimestamp timestamp = 0;
  std::string_view key;
  std::span<const std::byte> value;
};

struct CheckpointLimits {
  std::size_t max_key_bytes = 4096;
  std::size_t max_value_bytes = 16ULL << 20;
  // Entries are gathered into chunks of about this many body bytes (one entry may exceed it).
  std::size_t chunk_bytes = 1 << 20;
  std::uint64_t max_checkpoint_bytes = 1ULL << 30;
  // The largest chunk body a reader accepts.
  std::size_t max_chunk_body_bytes() const {
    return std::max(chunk_bytes, kCheckpointEntryFixedBytes + max_key_bytes + max_value_bytes);
  }
};

class CheckpointWriter {
 public:
  CheckpointWriter(const CheckpointHeader& header, const CheckpointLimits& limits);
  // Appends an entry (chunks are cut by size and by pool). no_space when the checkpoint would
  // exceed max_checkpoint_bytes; invalid_argument for a bad pool, key or value.
  Status add(const CheckpointEntry& entry);
  // Closes the last chunk, appends the trailer and returns the bytes.
  Bytes finish();

 private:
  void flush_chunk();

  CheckpointHeader header_;
  CheckpointLimits limits_;
  Bytes out_;
  Bytes body_;
  std::uint32_t body_pool_ = 0;
  std::uint32_t body_entries_ = 0;
  std::uint32_t chunks_ = 0;
  std::uint64_t entries_ = 0;
};

using CheckpointVisitor = std::function<Status(const CheckpointEntry&)>;

// Checks the whole checkpoint and calls `visit` for each entry (in stored order; a visitor
// error stops the read). Entries of a chunk are visited only after its CRC was checked, but
// a later chunk may still turn out damaged: callers that must be all-or-nothing read twice
// or collect first.
Result<CheckpointHeader> read_checkpoint(std::span<const std::byte> bytes,
                                         const CheckpointLimits& limits,
                                         const CheckpointVisitor& visit);

}  // namespace squall::kvstore
