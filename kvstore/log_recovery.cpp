// SegmentLog recovery: scan every segment at open, truncate a torn tail, refuse corruption.
#include <algorithm>
#include <charconv>

#include "common/log.hpp"
#include "kvstore/segment_log.hpp"
#include "kvstore/segment_log_internal.hpp"
#include "kvstore/segment_scanner.hpp"

namespace squall::kvstore {
namespace {

constexpr std::string_view kSegmentSuffix = ".log";
constexpr std::string_view kCompactionSuffix = ".compact";

// "<20 digits>.log" -> version; anything else -> nullopt.
std::optional<Version> parse_segment_name(std::string_view name) {
  if (name.size() != 20 + kSegmentSuffix.size() || !name.ends_with(kSegmentSuffix)) {
    return std::nullopt;
  }
  Version version = 0;
  auto digits = name.substr(0, 20);
  if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), version);
  if (error != std::errc() || end != digits.data() + digits.size()) return std::nullopt;
  return version;
}

}  // namespace

Status SegmentLog::recover(const RecordVisitor& visit) {
  auto names = directory_.list();
  if (!names.is_ok()) return names.status();
  std::vector<std::pair<Version, std::string>> segments;
  bool removed_any = false;
  for (const auto& name : names.value()) {
    if (name.ends_with(kCompactionSuffix)) {
      // An unfinished compaction: its source segment is still in place.
      SQUALL_TRY(directory_.remove(name));
      removed_any = true;
    } else if (auto version = parse_segment_name(name)) {
      segments.emplace_back(*version, name);
    }
  }
  std::sort(segments.begin(), segments.end());
  for (std::size_t i = 0; i < segments.size(); ++i) {
    bool last = i + 1 == segments.size();
    auto recovered = recover_segment(segments[i].second, last, visit);
    if (!recovered.is_ok()) return recovered.status();
    removed_any = removed_any || recovered.value();
  }
  if (removed_any) SQUALL_TRY(directory_.sync());
  durable_version_ = last_version_.load();
  logger("kvstore")->info("log {}: recovered {} segments up to version {}", directory_.path(),
                          segments_.size(), last_version_.load());
  return Status::ok();
}

// Returns true when the segment was dropped (an empty or torn-at-creation last segment).
Result<bool> SegmentLog::recover_segment(const std::string& name, bool last,
                                         const RecordVisitor& visit) {
  std::string where = fmt::format("{}/{}", directory_.path(), name);
  auto opened = directory_.open(name, last ? OpenMode::read_write : OpenMode::read_only);
  if (!opened.is_ok()) return opened.status().with_context(where);
  std::shared_ptr<File> file = std::move(opened.value());
  auto size = file->size();
  if (!size.is_ok()) return size.status().with_context(where);
  auto first_version = read_segment_header(*file, size.value(), last, where);
  if (!first_version.is_ok()) return first_version.status();
  if (!first_version.value()) {  // a last segment torn while it was being created
    SQUALL_TRY(directory_.remove(name));
    return true;
  }
  std::uint32_t ordinal = next_ordinal_++;
  auto end = scan_segment(*file, size.value(), ordinal, *first_version.value(), last, where,
                          visit);
  if (!end.is_ok()) return end.status();
  if (last && end.value() == kSegmentHeaderBytes) {  // no records: let the next append start anew
    SQUALL_TRY(directory_.remove(name));
    return true;
  }
  if (last) SQUALL_TRY(file->sync());  // what we recovered is durable from here on
  auto segment = std::make_shared<Segment>(name, *first_version.value(), std::move(file));
  segment->size_bytes = end.value();
  segment->sealed = !last;
  std::lock_guard lock(table_mutex_);
  segments_[ordinal] = std::move(segment);
  if (last) {
    has_active_ = true;
    active_ordinal_ = ordinal;
    active_end_ = end.value();
  }
  return false;
}

// The header's first version; nullopt when a last segment's header is torn and nothing valid
// follows it (a crash while the segment was created).
Result<std::optional<Version>> SegmentLog::read_segment_header(const File& file,
                                                               std::uint64_t size, bool last,
                                                               const std::string& where) {
  Status defect;
  if (size < kSegmentHeaderBytes) {
    defect = corruption("file shorter than a segment header");
  } else {
    std::array<std::byte, kSegmentHeaderBytes> header{};
    MutableBuffer target(header);
    SQUALL_TRY(read_fully(file, 0, std::span<const MutableBuffer>(&target, 1)));
    auto decoded = decode_segment_header(header);
    if (decoded.is_ok()) return std::optional<Version>(decoded.value());
    defect = decoded.status();
  }
  if (last) {
    auto valid_after = valid_record_after(file, 0, size, options_.max_record_bytes);
    if (!valid_after.is_ok()) return valid_after.status();
    if (!valid_after.value()) {
      logger("kvstore")->warn("{}: dropping a segment torn at creation ({})", where,
                              defect.message());
      return std::optional<Version>();
    }
  }
  return corruption(fmt::format("{} offset 0: {}", where, defect.message()));
}

// Visits every record; returns the end of the valid records (after truncating a torn tail).
Result<std::uint64_t> SegmentLog::scan_segment(File& file, std::uint64_t size,
                                               std::uint32_t ordinal, Version first_version,
                                               bool last, const std::string& where,
                                               const RecordVisitor& visit) {
  SegmentScanner scanner(file, size, kSegmentHeaderBytes, options_.max_record_bytes);
  Version previous = last_version_.load();
  while (true) {
    auto step = scanner.next();
    if (!step.is_ok()) return step.status().with_context(where);
    if (step.value() == SegmentScanner::Step::end) break;
    if (step.value() == SegmentScanner::Step::defect) {
      SQUALL_TRY(handle_defect(file, size, scanner, last, where));
      break;
    }
    const RecordHead& head = scanner.head();
    if (head.version <= previous || head.version < first_version) {
      return corruption(fmt::format("{} offset {}: version {} out of order (after {}, segment "
                                    "starts at {})", where, scanner.offset(), head.version,
                                    previous, first_version));
    }
    SQUALL_TRY(visit({head, scanner.key(), make_location(ordinal, scanner.offset())})
                   .with_context(fmt::format("{} offset {}", where, scanner.offset())));
    previous = head.version;
    last_version_ = previous;
  }
  return scanner.offset();
}

// A defect is a torn tail only at the end of the last segment: no valid record may follow.
Status SegmentLog::handle_defect(File& file, std::uint64_t size, const SegmentScanner& scanner,
                                 bool last, const std::string& where) {
  std::uint64_t at = scanner.offset();
  if (last) {
    auto valid_after = valid_record_after(file, at + 1, size, options_.max_record_bytes);
    if (!valid_after.is_ok()) return valid_after.status().with_context(where);
    if (!valid_after.value()) {
      logger("kvstore")->warn("{}: truncating a torn tail of {} bytes at offset {} ({})", where,
                              size - at, at, scanner.reason());
      SQUALL_TRY(file.truncate(at));
      return file.sync();
    }
  }
  return corruption(fmt::format("{} offset {}: {}", where, at, scanner.reason()));
}

}  // namespace squall::kvstore
