// Fuzz target: KV checkpoints read back during state transfer (kvstore::read_checkpoint).
// Properties: a read either fails with a Status or visits entries within the limits; what it
// visited, written again by CheckpointWriter, reads back to the same header and entries; a
// visitor error stops the read with that error.
#include <string>
#include <vector>

#include "common/crc32c.hpp"
#include "fuzz/fuzz_util.hpp"
#include "kvstore/checkpoint.hpp"

namespace {

using namespace squall;
using namespace squall::kvstore;

struct Entry {
  std::uint32_t pool = 0;
  Version version = 0;
  HlcTimestamp timestamp = 0;
  std::string key;
  Bytes value;
  bool operator==(const Entry&) const = default;
};

CheckpointLimits limits() {
  CheckpointLimits result;
  result.max_key_bytes = 64;
  result.max_value_bytes = 1024;
  result.chunk_bytes = 256;
  result.max_checkpoint_bytes = 1 << 20;
  return result;
}

Result<CheckpointHeader> read_all(std::span<const std::byte> bytes, std::vector<Entry>& out) {
  out.clear();
  return read_checkpoint(bytes, limits(), [&out](const CheckpointEntry& entry) {
    out.push_back({entry.pool, entry.version, entry.timestamp, std::string(entry.key),
                   Bytes(entry.value.begin(), entry.value.end())});
    return Status::ok();
  });
}

// Rewrites every CRC (and the trailer's counts) of the chunks it can frame.
void fix_up(std::span<std::byte> bytes) {
  if (bytes.size() < kCheckpointHeaderBytes) return;
  fuzz::store_u32(bytes, 32, crc32c(bytes.first(32)));
  std::size_t at = kCheckpointHeaderBytes;
  std::uint32_t chunks = 0;
  std::uint64_t entries = 0;
  while (bytes.size() - at >= kCheckpointTrailerBytes) {
    if (bytes[at] == std::byte{kCheckpointChunkEnd}) {
      fuzz::store_u32(bytes, at + 1, chunks);
      fuzz::store_u32(bytes, at + 5, static_cast<std::uint32_t>(entries));
      fuzz::store_u32(bytes, at + 9, static_cast<std::uint32_t>(entries >> 32));
      fuzz::store_u32(bytes, at + 13, crc32c(bytes.subspan(at, 13)));
      return;
    }
    const std::size_t body_bytes = fuzz::load_u32(bytes, at + 9);
    if (body_bytes > bytes.size() - at - kCheckpointChunkHeadBytes) return;
    std::uint32_t crc = crc32c(bytes.subspan(at, 13));
    crc = crc32c_extend(crc, bytes.subspan(at + kCheckpointChunkHeadBytes, body_bytes));
    fuzz::store_u32(bytes, at + 13, crc);
    ++chunks;
    entries += fuzz::load_u32(bytes, at + 5);
    at += kCheckpointChunkHeadBytes + body_bytes;
  }
}

void check_rewrite(const CheckpointHeader& header, const std::vector<Entry>& entries) {
  CheckpointWriter writer(header, limits());
  for (const Entry& entry : entries) {
    Status added = writer.add({entry.pool, entry.version, entry.timestamp, entry.key,
                               entry.value});
    FUZZ_CHECK(added.is_ok(), "an entry read back cannot be written: {}", added.message());
  }
  const Bytes rewritten = writer.finish();
  std::vector<Entry> again;
  auto reread = read_all(rewritten, again);
  FUZZ_CHECK(reread.is_ok(), "a rewritten checkpoint does not read: {}",
             reread.status().message());
  FUZZ_CHECK(reread.value().version == header.version &&
                 reread.value().timestamp == header.timestamp &&
                 reread.value().pools == header.pools, "header changed by a rewrite");
  FUZZ_CHECK(again == entries, "entries changed by a rewrite");
}

}  // namespace

// Input: a mode byte (bit 0: fix CRCs up first), then a checkpoint.
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  auto input = fuzz::input_bytes(data + 1, size - 1);
  Bytes bytes(input.begin(), input.end());
  if ((data[0] & 1) != 0) fix_up(bytes);
  std::vector<Entry> entries;
  auto header = read_all(bytes, entries);
  if (!header.is_ok()) {
    FUZZ_CHECK(header.status().code() == Code::corruption, "not corruption: {}",
               header.status().message());
    return 0;
  }
  for (const Entry& entry : entries) {
    FUZZ_CHECK(entry.pool < header.value().pools, "entry of an unknown pool");
    FUZZ_CHECK(!entry.key.empty() && entry.key.size() <= limits().max_key_bytes &&
                   entry.value.size() <= limits().max_value_bytes, "entry over the limits");
    FUZZ_CHECK(entry.version > 0 && entry.version <= header.value().version, "entry version");
  }
  check_rewrite(header.value(), entries);
  if (!entries.empty()) {  // a visitor error ends the read with it
    auto stopped = read_checkpoint(bytes, limits(), [](const CheckpointEntry&) {
      return Status(Code::aborted, "stop");
    });
    FUZZ_CHECK(!stopped.is_ok() && stopped.status().code() == Code::aborted, "visitor error");
  }
  return 0;
}
