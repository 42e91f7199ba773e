// Helpers for SegmentLog tests: open with a collecting visitor, append simple records.
#pragma once

#include <string>
#include <vector>

#include "kvstore/segment_log.hpp"
#include "test/kvstore/test_util.hpp"

namespace squall::kvstore::testing {

struct SeenRecord {
  Version version = 0;
  HlcTimestamp timestamp = 0;
  Op op = Op::put;
  std::string key;
  std::uint32_t value_bytes = 0;
  Location location = 0;
};

struct OpenedLog {
  std::unique_ptr<SegmentLog> log;
  std::vector<SeenRecord> seen;
};

inline Result<OpenedLog> open_log(Directory& directory, LogOptions options) {
  OpenedLog opened;
  auto log = SegmentLog::open(directory, options, [&](const RecoveredRecord& record) {
    opened.seen.push_back({record.head.version, record.head.timestamp, record.head.op,
                           std::string(record.key),
                           static_cast<std::uint32_t>(record.head.value_length()),
                           record.location});
    return Status::ok();
  });
  if (!log.is_ok()) return log.status();
  opened.log = std::move(log.value());
  return opened;
}

inline LogOptions small_segments(std::uint64_t segment_size_bytes = 4096) {
  LogOptions options;
  options.segment_size_bytes = segment_size_bytes;
  options.max_record_bytes = 1 << 20;
  return options;
}

// The value of record `version` in tests: deterministic, size depends on the version.
inline std::string value_for(Version version, std::size_t size_bytes = 0) {
  std::size_t size = size_bytes != 0 ? size_bytes : 10 + version % 50;
  std::string value(size, 'a');
  for (std::size_t i = 0; i < size; ++i) value[i] = static_cast<char>('a' + (version + i) % 26);
  return value;
}

inline std::string key_for(Version version) { return "key-" + std::to_string(version % 7); }

// Appends one put of key_for(version) = value_for(version).
inline Status append_one(SegmentLog& log, Version version, Location* location = nullptr,
                         std::size_t value_size_bytes = 0) {
  std::string key = key_for(version);
  std::string value = value_for(version, value_size_bytes);
  RecordFields fields{version, version * 1000, Op::put, key, bytes_of(value)};
  Location where = 0;
  Status status = log.append(std::span<const RecordFields>(&fields, 1),
                             std::span<Location>(&where, 1));
  if (location != nullptr) *location = where;
  return status;
}

inline std::string read_back(const SegmentLog& log, const SeenRecord& record) {
  Bytes value;
  Status status = log.read({record.location, record.version, record.key, record.value_bytes},
                           value);
  REQUIRE(status.is_ok());
  return text_of(value);
}

}  // namespace squall::kvstore::testing
