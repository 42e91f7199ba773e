// Fuzz target: the scanner recovery and compaction run over a segment file's records
// (kvstore/segment_scanner.hpp), on a fuzzed image held in memory. Properties: the scanner
// ends (end or defect) within one step per record; every record it accepts lies inside the
// image, re-encodes to its own bytes, and is found by valid_record_after; after `end` the
// offset is the image size.
#include <cstring>

#include "fuzz/fuzz_util.hpp"
#include "fuzz/memory_directory.hpp"
#include "fuzz/segment_image.hpp"
#include "kvstore/segment_scanner.hpp"

namespace {

using namespace squall;
using namespace squall::kvstore;

constexpr std::uint64_t kMaxRecordBytes = 64 << 10;

void check_accepted(SegmentScanner& scanner, const File& file, std::uint64_t size_bytes) {
  const RecordHead& head = scanner.head();
  auto bytes = scanner.record_bytes();
  FUZZ_CHECK(bytes.size() == head.total_bytes(), "record bytes disagree with its head");
  FUZZ_CHECK(scanner.offset() + bytes.size() <= size_bytes, "record past the end");
  FUZZ_CHECK(head.total_bytes() <= kMaxRecordBytes, "record over the limit");
  FUZZ_CHECK(scanner.key().size() == head.key_length, "key length");
  RecordFields fields{head.version, head.timestamp, head.op, scanner.key(),
                      bytes.subspan(kRecordOverheadBytes + head.key_length)};
  EncodedRecord encoded;
  encode_record(fields, encoded);
  FUZZ_CHECK(fuzz::same_bytes(encoded.head, bytes.first(kRecordHeadBytes)) &&
                 fuzz::same_bytes(encoded.mid,
                                  bytes.subspan(kRecordHeadBytes + head.key_length,
                                                kRecordMidBytes)),
             "accepted record at {} re-encodes differently", scanner.offset());
  auto found = valid_record_after(file, scanner.offset(), size_bytes, kMaxRecordBytes);
  FUZZ_CHECK(found.is_ok() && found.value(), "valid_record_after misses the record at {}",
             scanner.offset());
}

}  // namespace

// Input: a mode byte (bit 0: fix CRCs up first), then the records of a segment (no header).
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  auto input = fuzz::input_bytes(data + 1, size - 1);
  auto bytes = std::make_shared<Bytes>(input.begin(), input.end());
  if ((data[0] & 1) != 0) fuzz::fix_record_crcs(*bytes, 0);
  fuzz::MemoryFile file(bytes);
  const std::uint64_t size_bytes = bytes->size();
  SegmentScanner scanner(file, size_bytes, 0, kMaxRecordBytes);
  for (std::uint64_t steps = 0;; ++steps) {
    FUZZ_CHECK(steps <= size_bytes / kRecordOverheadBytes + 1, "scanner does not end");
    auto step = scanner.next();
    FUZZ_CHECK(step.is_ok(), "read error from memory: {}", step.status().message());
    if (step.value() == SegmentScanner::Step::end) {
      FUZZ_CHECK(scanner.offset() == size_bytes, "end before the end of the image");
      break;
    }
    if (step.value() == SegmentScanner::Step::defect) {
      FUZZ_CHECK(!scanner.reason().empty(), "a defect without a reason");
      auto after = valid_record_after(file, scanner.offset() + 1, size_bytes, kMaxRecordBytes);
      FUZZ_CHECK(after.is_ok(), "valid_record_after failed");
      break;
    }
    check_accepted(scanner, file, size_bytes);
  }
  return 0;
}
