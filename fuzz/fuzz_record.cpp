// Fuzz target: one log record's fixed part and a segment file header, as read back from disk
// (kvstore/record.hpp). Properties: a head that decodes re-encodes to the same bytes (CRC
// included, when the record's key and value are in the input); a segment header that decodes
// re-encodes to the same 24 bytes.
#include <cstring>

#include "fuzz/fuzz_util.hpp"
#include "fuzz/segment_image.hpp"
#include "kvstore/record.hpp"

namespace {

using namespace squall;
using namespace squall::kvstore;

constexpr std::uint64_t kMaxRecordBytes = 1 << 20;

void check_record(std::span<const std::byte> bytes) {
  if (bytes.size() < kRecordHeadBytes) return;
  auto head = decode_record_head(bytes.first<kRecordHeadBytes>(), kMaxRecordBytes);
  if (!head.is_ok()) return;
  FUZZ_CHECK(head.value().total_bytes() <= kMaxRecordBytes, "head over the record limit");
  FUZZ_CHECK(head.value().value_length() + head.value().key_length + kRecordOverheadBytes ==
                 head.value().total_bytes(), "record lengths do not add up");
  if (head.value().total_bytes() > bytes.size()) return;
  auto record = bytes.first(static_cast<std::size_t>(head.value().total_bytes()));
  auto body = record.subspan(kRecordHeadBytes);
  std::span<const std::byte> rest[] = {body};
  const bool crc_ok = record_crc_matches(record.first(kRecordHeadBytes), rest, head.value().crc);
  auto mid = body.subspan(head.value().key_length, kRecordMidBytes);
  const bool mid_ok = record_mid_matches(head.value(), mid.first<kRecordMidBytes>());
  RecordFields fields;
  fields.version = head.value().version;
  fields.timestamp = head.value().timestamp;
  fields.op = head.value().op;
  fields.key = as_string_view(body.first(head.value().key_length));
  fields.value = body.subspan(head.value().key_length + kRecordMidBytes);
  EncodedRecord encoded;
  encode_record(fields, encoded);
  // Every head field but the CRC re-encodes as read; the CRC too when the record was valid.
  FUZZ_CHECK(std::memcmp(encoded.head.data(), record.data(), 8) == 0 &&
                 std::memcmp(encoded.head.data() + 12, record.data() + 12,
                             kRecordHeadBytes - 12) == 0, "record head re-encodes differently");
  if (mid_ok) {
    FUZZ_CHECK(fuzz::same_bytes(encoded.mid, mid), "value length re-encodes differently");
    const bool same_crc = std::memcmp(encoded.head.data() + 8, record.data() + 8, 4) == 0;
    FUZZ_CHECK(same_crc == crc_ok, "CRC check disagrees with the encoder (valid {})", crc_ok);
  }
}

void check_segment_header(std::span<const std::byte> bytes) {
  if (bytes.size() < kSegmentHeaderBytes) return;
  auto header = bytes.first<kSegmentHeaderBytes>();
  auto first_version = decode_segment_header(header);
  if (!first_version.is_ok()) return;
  auto encoded = encode_segment_header(first_version.value());
  FUZZ_CHECK(fuzz::same_bytes(encoded, header), "segment header re-encodes differently");
}

}  // namespace

// Input: a mode byte (bit 0: fix CRCs up first), then the bytes of a record head, key, value
// length and value; the same bytes are read as a segment header too.
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  Bytes image(fuzz::input_bytes(data + 1, size - 1).begin(),
              fuzz::input_bytes(data + 1, size - 1).end());
  if ((data[0] & 1) != 0) {
    fuzz::fix_record_crcs(image, 0);
  }
  check_record(image);
  if ((data[0] & 1) != 0) fuzz::fix_segment_header_crc(image);
  check_segment_header(image);
  return 0;
}
