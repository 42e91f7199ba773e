// Fuzz target: the view log read back at a total restart (core::decode_view_log) and the bare
// view records a leader hands a joiner (core::decode_view_record).
// Properties: the valid prefix re-encodes record by record to exactly its own bytes; a bare
// view record that decodes re-encodes to its input and restores to an equal View (its decoder
// validates what restore_view() checks); a logged view restores to an equal View or to an
// error, never a crash.
#include "common/crc32c.hpp"
#include "core/view_log.hpp"
#include "fuzz/fuzz_util.hpp"

namespace {

using namespace squall;
using namespace squall::core;

// Rewrites the CRC of every record it can frame.
void fix_up(std::span<std::byte> image) {
  std::size_t at = 0;
  while (image.size() - at >= kViewLogHeaderBytes) {
    auto record = image.subspan(at);
    const std::size_t length = fuzz::load_u32(record, 8);
    if (length > record.size() - kViewLogHeaderBytes) return;
    std::uint32_t crc = crc32c(record.subspan(4, 8));
    crc = crc32c_extend(crc, record.subspan(kViewLogHeaderBytes, length));
    fuzz::store_u32(record, 12, crc);
    at += kViewLogHeaderBytes + length;
  }
}

// `must_restore`: decode_view_record promises restore_view succeeds; the log decoder only
// frames records, and its readers handle restore_view's error (the node halts).
void check_view(const ViewRecord& record, bool must_restore) {
  auto view = restore_view(record);
  FUZZ_CHECK(view.is_ok() || !must_restore, "a decoded view record does not restore: {}",
             view.status().message());
  if (!view.is_ok()) return;
  FUZZ_CHECK(ViewRecord::of(view.value()) == record, "a restored view differs from its record");
}

void check_log(std::span<const std::byte> image) {
  std::size_t valid_bytes = 0;
  const auto records = decode_view_log(image, valid_bytes);
  FUZZ_CHECK(valid_bytes <= image.size(), "valid prefix longer than the image");
  Bytes encoded;
  for (const ViewLogRecord& record : records) {
    const Bytes one = encode_view_log_record(record);
    encoded.insert(encoded.end(), one.begin(), one.end());
    if (const auto* view = std::get_if<ViewRecord>(&record)) check_view(*view, false);
  }
  FUZZ_CHECK(fuzz::same_bytes(encoded, image.first(valid_bytes)),
             "the valid prefix ({} records, {} bytes) re-encodes differently", records.size(),
             valid_bytes);
}

void check_view_record(std::span<const std::byte> bytes) {
  auto record = decode_view_record(bytes);
  if (!record.is_ok()) return;
  FUZZ_CHECK(fuzz::same_bytes(encode_view_record(record.value()), bytes),
             "a view record re-encodes differently");
  check_view(record.value(), true);
}

}  // namespace

// Input: a mode byte (bit 0: fix CRCs up first), then a view log image; the same bytes are
// also decoded as one bare view record.
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  auto input = fuzz::input_bytes(data + 1, size - 1);
  check_view_record(input);
  Bytes image(input.begin(), input.end());
  if ((data[0] & 1) != 0) fix_up(image);
  check_log(image);
  return 0;
}
