// Fix-ups for fuzzed log segment images (kvstore/record.hpp has the format): random mutation
// almost never produces a matching CRC32C, so a target that asks for it gets every record it
// can frame (and the segment header) with correct CRCs and value lengths, and the scanner's
// later checks (order, lengths, recovery rules) are reached.
#pragma once

#include <cstdint>
#include <span>

#include "common/crc32c.hpp"
#include "fuzz/fuzz_util.hpp"
#include "kvstore/record.hpp"

namespace squall::fuzz {

// Walks records from `offset` while each one's magic is right and its length fits the image,
// rewriting its value length (the "mid") and CRC to agree with its head. Stops at the first
// record it cannot frame, so a torn tail stays torn.
inline void fix_record_crcs(std::span<std::byte> image, std::size_t offset) {
  using namespace kvstore;
  while (image.size() - offset >= kRecordHeadBytes) {
    auto record = image.subspan(offset);
    if (load_u32(record, 0) != kRecordMagic) return;
    const std::uint64_t length = load_u32(record, 4);
    const std::uint64_t key_length = load_u32(record, 29);
    const std::uint64_t total = 12 + length;
    if (length < kRecordLengthBase + key_length || total > record.size()) return;
    store_u32(record, kRecordHeadBytes + key_length,
              static_cast<std::uint32_t>(length - kRecordLengthBase - key_length));
    std::uint32_t crc = crc32c(record.subspan(4, 4));
    crc = crc32c_extend(crc, record.subspan(12, static_cast<std::size_t>(total) - 12));
    store_u32(record, 8, crc);
    offset += static_cast<std::size_t>(total);
  }
}

// Rewrites the CRC of a segment header at the start of `image` (if it is long enough).
inline void fix_segment_header_crc(std::span<std::byte> image) {
  if (image.size() < kvstore::kSegmentHeaderBytes) return;
  store_u32(image, 20, crc32c(image.first(20)));
}

}  // namespace squall::fuzz
