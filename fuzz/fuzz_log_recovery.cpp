// Fuzz target: opening a log (kvstore::SegmentLog::open) over fuzzed segment files held in
// memory: recovery's header checks, record scan, torn-tail truncation and corruption rules.
// Properties: open either fails with a Status or recovers records in strictly increasing
// version order, each readable back with a valid CRC; recovering again finds the same records
// and recovery settles (within one more open per segment, an open changes no file); a record
// appended after recovery is found by the next open, last.
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "fuzz/fuzz_util.hpp"
#include "fuzz/memory_directory.hpp"
#include "fuzz/segment_image.hpp"
#include "kvstore/segment_log.hpp"

namespace {

using namespace squall;
using namespace squall::kvstore;

constexpr std::string_view kSeparator = "|SEG|";
constexpr std::size_t kMaxSegments = 4;

struct Seen {
  Version version = 0;
  std::string key;
  Location location = 0;
  std::uint64_t value_bytes = 0;
  bool operator==(const Seen&) const = default;
};

LogOptions options() {
  LogOptions result;
  result.segment_size_bytes = 4096;
  result.max_record_bytes = 64 << 10;
  return result;
}

// Segments from the input: split at kSeparator, named by the first version in their header.
void fill(fuzz::MemoryDirectory& directory, std::string_view input, bool fix) {
  for (std::size_t index = 0; index < kMaxSegments && !input.empty(); ++index) {
    const auto cut = input.find(kSeparator);
    const std::string_view part = input.substr(0, cut);
    input = cut == std::string_view::npos ? std::string_view() : input.substr(cut + 5);
    Bytes image(as_bytes(part).begin(), as_bytes(part).end());
    Version first = index;
    if (image.size() >= kSegmentHeaderBytes) {
      first = fuzz::load_u32(image, 12) | (Version{fuzz::load_u32(image, 16)} << 32);
      if (fix) {
        fuzz::fix_segment_header_crc(image);
        fuzz::fix_record_crcs(image, kSegmentHeaderBytes);
      }
    }
    directory.add(segment_file_name(first), std::move(image));
  }
}

Result<std::unique_ptr<SegmentLog>> open_log(fuzz::MemoryDirectory& directory,
                                             std::vector<Seen>& seen) {
  seen.clear();
  return SegmentLog::open(directory, options(), [&seen](const RecoveredRecord& record) {
    seen.push_back({record.head.version, std::string(record.key), record.location,
                    record.head.value_length()});
    return Status::ok();
  });
}

std::map<std::string, Bytes> snapshot(const fuzz::MemoryDirectory& directory) {
  std::map<std::string, Bytes> files;
  for (const auto& [name, bytes] : directory.files()) files[name] = *bytes;
  return files;
}

void check_recovered(const SegmentLog& log, const std::vector<Seen>& seen) {
  Bytes value;
  for (std::size_t i = 0; i < seen.size(); ++i) {
    FUZZ_CHECK(i == 0 || seen[i - 1].version < seen[i].version, "versions out of order");
    RecordRef ref{seen[i].location, seen[i].version, seen[i].key,
                  static_cast<std::uint32_t>(seen[i].value_bytes)};
    Status read = log.read(ref, value);
    FUZZ_CHECK(read.is_ok(), "recovered record {} unreadable: {}", seen[i].version,
               read.message());
    FUZZ_CHECK(value.size() == seen[i].value_bytes, "value size");
  }
  FUZZ_CHECK(seen.empty() || log.last_version() == seen.back().version, "last version");
}

void append_one(SegmentLog& log) {
  const std::string key = "appended";
  const std::byte value[3] = {std::byte{1}, std::byte{2}, std::byte{3}};
  RecordFields record{log.last_version() + 1, 7, Op::put, key, value};
  Location location = 0;
  Status appended = log.append(std::span(&record, 1), std::span(&location, 1));
  FUZZ_CHECK(appended.is_ok(), "append after recovery failed: {}", appended.message());
  FUZZ_CHECK(log.sync().is_ok(), "sync after recovery failed");
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::silence_logs();
  return 0;
}

// Input: a mode byte (bit 0: fix header and record CRCs up first), then up to 4 segment
// images separated by "|SEG|".
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  fuzz::MemoryDirectory directory;
  fill(directory, fuzz::input_text(data + 1, size - 1), (data[0] & 1) != 0);
  std::vector<Seen> seen;
  auto log = open_log(directory, seen);
  if (!log.is_ok()) return 0;
  check_recovered(*log.value(), seen);
  const Version last = log.value()->last_version();
  log.value().reset();

  // Later opens may still tidy up: each removes a record-less segment that has become the
  // last one (left so when a torn last segment after it was dropped). They find the same
  // records, and the files stop changing within one open per segment.
  std::vector<Seen> again;
  for (std::size_t opens = 0;; ++opens) {
    FUZZ_CHECK(opens <= kMaxSegments, "recovery does not settle after {} opens", opens);
    const auto files = snapshot(directory);
    log = open_log(directory, again);
    FUZZ_CHECK(log.is_ok(), "a recovered log does not open again: {}",
               log.status().message());
    FUZZ_CHECK(again == seen, "recovering again finds other records");
    if (snapshot(directory) == files) break;
    log.value().reset();
  }
  if (last == std::numeric_limits<Version>::max()) return 0;  // nothing can follow it
  append_one(*log.value());
  log.value().reset();
  log = open_log(directory, again);
  FUZZ_CHECK(log.is_ok(), "the log does not open after an append: {}", log.status().message());
  FUZZ_CHECK(!again.empty() && again.back().version == last + 1 && again.back().key == "appended",
             "the appended record is not the last one recovered");
  FUZZ_CHECK(again.size() == seen.size() + 1, "an append changed what else is recovered");
  return 0;
}
