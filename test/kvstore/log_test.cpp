// SegmentLog: append, read, group commit, rotation, recovery, torn tails and corruption.
#include <filesystem>

#include "test/kvstore/log_helpers.hpp"

using namespace squall;
using namespace squall::kvstore;
using namespace squall::kvstore::testing;

namespace {

// After a fresh open nothing was removed, so ordinal i is the i-th segment file by name.
std::string segment_of(Directory& directory, Location location) {
  auto names = directory.list().value();
  std::vector<std::string> segments;
  for (const auto& name : names) {
    if (name.ends_with(".log")) segments.push_back(name);
  }
  REQUIRE(location_ordinal(location) < segments.size());
  return segments[location_ordinal(location)];
}

std::uint64_t file_size(const TempDir& temp, const std::string& name) {
  return std::filesystem::file_size(temp.file(name));
}

}  // namespace

TEST_CASE("Appended records read back before and after reopening, across segments") {
  TempDir temp;
  auto directory = posix_dir(temp.path());
  {
    auto opened = open_log(*directory, small_segments());
    REQUIRE(opened.is_ok());
    SegmentLog& log = *opened.value().log;
    for (Version v = 1; v <= 200; ++v) {
      Location location = 0;
      REQUIRE(append_one(log, v, &location).is_ok());
      if (v % 37 == 0) {
        SeenRecord record{v, v * 1000, Op::put, key_for(v), 0, location};
        record.value_bytes = static_cast<std::uint32_t>(value_for(v).size());
        CHECK(read_back(log, record) == value_for(v));
      }
    }
    CHECK(log.last_version() == 200);
    CHECK(log.sync().value() == 200);
    CHECK(log.segment_count() > 3);
  }
  auto reopened = open_log(*directory, small_segments());
  REQUIRE(reopened.is_ok());
  auto& seen = reopened.value().seen;
  REQUIRE(seen.size() == 200);
  for (Version v = 1; v <= 200; ++v) {
    const SeenRecord& record = seen[v - 1];
    CHECK(record.version == v);
    CHECK(record.timestamp == v * 1000);
    CHECK(record.key == key_for(v));
    CHECK(read_back(*reopened.value().log, record) == value_for(v));
  }
  CHECK(reopened.value().log->durable_version() == 200);
  // Segment names are the first version of each segment, in order.
  auto names = directory->list().value();
  CHECK(names.front() == segment_file_name(1));
  for (std::size_t i = 1; i < names.size(); ++i) CHECK(names[i - 1] < names[i]);
}

TEST_CASE("Group commit: one fdatasync covers every record appended since the last") {
  TempDir temp;
  auto directory = faulty_dir(temp.path());
  auto opened = open_log(*directory, LogOptions{});
  REQUIRE(opened.is_ok());
  SegmentLog& log = *opened.value().log;
  REQUIRE(append_one(log, 1).is_ok());  // creates the first segment (its header is synced)
  std::uint64_t syncs_before = directory->file_sync_count();
  for (Version v = 2; v <= 100; ++v) REQUIRE(append_one(log, v).is_ok());
  CHECK(log.durable_version() == 0);
  CHECK(directory->file_sync_count() == syncs_before);  // appends alone never sync
  CHECK(log.sync().value() == 100);
  CHECK(directory->file_sync_count() == syncs_before + 1);
  CHECK(log.sync().value() == 100);  // nothing new: no fdatasync at all
  CHECK(directory->file_sync_count() == syncs_before + 1);
}

TEST_CASE("A batch appends all its records with one write and rejects bad batches whole") {
  TempDir temp;
  auto directory = posix_dir(temp.path());
  auto opened = open_log(*directory, small_segments());
  SegmentLog& log = *opened.value().log;
  std::vector<std::string> keys = {"a", "b", "c"};
  std::vector<std::string> values = {"1", "", std::string(300, 'x')};
  std::vector<RecordFields> batch;
  for (std::size_t i = 0; i < 3; ++i) {
    batch.push_back({10 + i, 5, Op::put, keys[i], bytes_of(values[i])});
  }
  std::vector<Location> locations(3);
  REQUIRE(log.append(batch, locations).is_ok());
  for (std::size_t i = 0; i < 3; ++i) {
    SeenRecord record{10 + i, 5, Op::put, keys[i], static_cast<std::uint32_t>(values[i].size()),
                      locations[i]};
    CHECK(read_back(log, record) == values[i]);
  }
  batch[0].version = 20;
  batch[1].version = 20;  // not increasing
  CHECK(log.append(batch, locations).code() == Code::invalid_argument);
  batch[1].version = 12;  // below the last version
  CHECK(log.append(batch, locations).code() == Code::invalid_argument);
  CHECK(log.last_version() == 12);
}

TEST_CASE("A torn tail (partial last record) is truncated at recovery") {
  TempDir temp;
  auto directory = faulty_dir(temp.path());
  std::uint64_t clean_end = 0;
  {
    auto opened = open_log(*directory, LogOptions{});
    SegmentLog& log = *opened.value().log;
    for (Version v = 1; v <= 10; ++v) REQUIRE(append_one(log, v).is_ok());
    REQUIRE(log.sync().is_ok());
    clean_end = file_size(temp, segment_file_name(1));
    directory->tear_next_write(20);  // 20 bytes of record 11 reach the file, then "death"
    CHECK(append_one(log, 11).code() == Code::io_error);
  }
  REQUIRE(directory->crash(CrashKind::process, 0).is_ok());
  CHECK(file_size(temp, segment_file_name(1)) == clean_end + 20);
  auto reopened = open_log(*directory, LogOptions{});
  REQUIRE(reopened.is_ok());
  CHECK(reopened.value().seen.size() == 10);
  CHECK(file_size(temp, segment_file_name(1)) == clean_end);
  // The log continues after the truncation point.
  REQUIRE(append_one(*reopened.value().log, 11).is_ok());
  REQUIRE(reopened.value().log->sync().is_ok());
  reopened.value().log.reset();
  CHECK(open_log(*directory, LogOptions{}).value().seen.size() == 11);
}

TEST_CASE("A bad CRC in the very last record is a torn tail, and so are zeros after it") {
  TempDir temp;
  auto directory = faulty_dir(temp.path());
  Location last = 0;
  {
    auto opened = open_log(*directory, LogOptions{});
    for (Version v = 1; v <= 5; ++v) REQUIRE(append_one(*opened.value().log, v, &last).is_ok());
    REQUIRE(opened.value().log->sync().is_ok());
  }
  std::string name = segment_file_name(1);
  std::uint64_t size = file_size(temp, name);
  REQUIRE(directory->flip_bit(name, size - 3, 2).is_ok());  // inside the last value
  std::filesystem::resize_file(temp.file(name), size + 4096);  // and a zero-filled extension
  auto reopened = open_log(*directory, LogOptions{});
  REQUIRE(reopened.is_ok());
  CHECK(reopened.value().seen.size() == 4);
  CHECK(file_size(temp, name) == location_offset(last));
}

TEST_CASE("Corruption in the middle of the log names the file and offset") {
  TempDir temp;
  auto directory = faulty_dir(temp.path());
  std::vector<Location> locations(60);
  {
    auto opened = open_log(*directory, small_segments());
    for (Version v = 1; v <= 60; ++v) {
      REQUIRE(append_one(*opened.value().log, v, &locations[v - 1]).is_ok());
    }
    REQUIRE(opened.value().log->sync().is_ok());
  }
  SECTION("in the last segment, followed by valid records") {
    Location victim = locations[58];  // record 59 of 60
    std::string name = segment_of(*directory, victim);
    REQUIRE(name == segment_of(*directory, locations[59]));
    REQUIRE(directory->flip_bit(name, location_offset(victim) + 40, 0).is_ok());
    auto reopened = open_log(*directory, small_segments());
    REQUIRE(reopened.status().code() == Code::corruption);
    CHECK_THAT(reopened.status().message(),
               Catch::Contains(name) &&
                   Catch::Contains("offset " + std::to_string(location_offset(victim))));
  }
  SECTION("in the last record of a sealed segment") {
    std::size_t i = 0;
    while (location_ordinal(locations[i + 1]) == 0) ++i;  // last record of the first segment
    std::string name = segment_of(*directory, locations[i]);
    std::uint64_t size = file_size(temp, name);
    REQUIRE(directory->flip_bit(name, size - 1, 7).is_ok());
    auto reopened = open_log(*directory, small_segments());
    REQUIRE(reopened.status().code() == Code::corruption);
    CHECK_THAT(reopened.status().message(),
               Catch::Contains(name) &&
                   Catch::Contains("offset " + std::to_string(location_offset(locations[i]))));
  }
  SECTION("in a sealed segment's header") {
    REQUIRE(directory->flip_bit(segment_file_name(1), 3, 1).is_ok());
    auto reopened = open_log(*directory, small_segments());
    REQUIRE(reopened.status().code() == Code::corruption);
    CHECK_THAT(reopened.status().message(),
               Catch::Contains(segment_file_name(1)) && Catch::Contains("offset 0"));
  }
}

TEST_CASE("A flipped bit in a stored value is detected when it is read") {
  TempDir temp;
  auto directory = faulty_dir(temp.path());
  auto opened = open_log(*directory, LogOptions{});
  SegmentLog& log = *opened.value().log;
  Location location = 0;
  REQUIRE(append_one(log, 1, &location).is_ok());
  REQUIRE(append_one(log, 2).is_ok());
  REQUIRE(log.sync().is_ok());
  std::string name = segment_file_name(1);
  REQUIRE(directory->flip_bit(name, location_offset(location) + kRecordOverheadBytes + 8, 4)
              .is_ok());
  Bytes value;
  Status read = log.read({location, 1, key_for(1),
                          static_cast<std::uint32_t>(value_for(1).size())}, value);
  REQUIRE(read.code() == Code::corruption);
  CHECK_THAT(read.message(), Catch::Contains(name) && Catch::Contains("CRC mismatch"));
  // A reference that does not match the record is corruption too, never a wrong value.
  read = log.read({location, 7, key_for(1), static_cast<std::uint32_t>(value_for(1).size())},
                  value);
  CHECK(read.code() == Code::corruption);
}

TEST_CASE("Recovery drops an empty last segment and leftovers of an unfinished compaction") {
  TempDir temp;
  auto directory = posix_dir(temp.path());
  {
    auto opened = open_log(*directory, LogOptions{});
    REQUIRE(append_one(*opened.value().log, 1).is_ok());
    REQUIRE(opened.value().log->sync().is_ok());
  }
  // A segment whose header made it but no record did, and a half-written compaction output.
  auto header = encode_segment_header(5);
  {
    auto file = directory->open(segment_file_name(5), OpenMode::create_new);
    ConstBuffer part(header);
    REQUIRE(write_fully(*file.value(), 0, std::span<const ConstBuffer>(&part, 1)).is_ok());
    auto leftover = directory->open(segment_file_name(1) + ".compact", OpenMode::create_new);
    REQUIRE(leftover.is_ok());
  }
  auto reopened = open_log(*directory, LogOptions{});
  REQUIRE(reopened.is_ok());
  CHECK(reopened.value().seen.size() == 1);
  CHECK(directory->list().value() == std::vector<std::string>{segment_file_name(1)});
  REQUIRE(append_one(*reopened.value().log, 5).is_ok());
}

TEST_CASE("Recovery rejects versions out of order even with valid CRCs") {
  TempDir temp;
  auto directory = posix_dir(temp.path());
  {
    auto opened = open_log(*directory, LogOptions{});
    REQUIRE(append_one(*opened.value().log, 10).is_ok());
    REQUIRE(opened.value().log->sync().is_ok());
  }
  {
    // A later segment (named 11) whose record has a valid CRC but version 3.
    auto file = directory->open(segment_file_name(11), OpenMode::create_new);
    auto header = encode_segment_header(11);
    EncodedRecord encoded;
    std::string key = "k";
    encode_record({3, 1, Op::put, key, {}}, encoded);
    ConstBuffer parts[] = {header, encoded.head, bytes_of(key), encoded.mid};
    REQUIRE(write_fully(*file.value(), 0, parts).is_ok());
  }
  auto reopened = open_log(*directory, LogOptions{});
  REQUIRE(reopened.status().code() == Code::corruption);
  CHECK_THAT(reopened.status().message(), Catch::Contains("out of order"));
}

TEST_CASE("A valid record after a defect is found even across the search's read chunks") {
  TempDir temp;
  auto directory = faulty_dir(temp.path());
  LogOptions options;
  options.max_record_bytes = 4 << 20;
  // Record 2 is sized so that record 3's magic starts 2 bytes before the end of the first
  // 1 MiB chunk searched from just after record 2's start.
  std::size_t second_value = (1 << 20) - 1 - kRecordOverheadBytes - 1;
  std::vector<std::string> values = {"first", std::string(second_value, 's'), "third"};
  std::vector<Location> locations(3);
  {
    auto opened = open_log(*directory, options);
    for (Version v = 1; v <= 3; ++v) {
      std::string key = "k";
      RecordFields fields{v, v, Op::put, key, bytes_of(values[v - 1])};
      REQUIRE(opened.value().log->append(std::span<const RecordFields>(&fields, 1),
                                         std::span<Location>(&locations[v - 1], 1))
                  .is_ok());
    }
    REQUIRE(opened.value().log->sync().is_ok());
  }
  REQUIRE(location_offset(locations[2]) - (location_offset(locations[1]) + 1) == (1 << 20) - 2);
  std::string name = segment_file_name(1);
  REQUIRE(directory->flip_bit(name, location_offset(locations[1]) + 1000, 3).is_ok());
  auto reopened = open_log(*directory, options);
  REQUIRE(reopened.status().code() == Code::corruption);
  CHECK_THAT(reopened.status().message(),
             Catch::Contains("offset " + std::to_string(location_offset(locations[1]))));
}
