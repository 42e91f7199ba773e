// SegmentLog under injected faults: short writes, fsync errors, ENOSPC.
#include <filesystem>

#include "test/kvstore/log_helpers.hpp"

using namespace squall;
using namespace squall::kvstore;
using namespace squall::kvstore::testing;

TEST_CASE("A short write is continued and the record is intact") {
  TempDir temp;
  auto directory = faulty_dir(temp.path());
  {
    auto opened = open_log(*directory, LogOptions{});
    REQUIRE(append_one(*opened.value().log, 1).is_ok());
    directory->shorten_next_write(7);
    REQUIRE(append_one(*opened.value().log, 2).is_ok());
    REQUIRE(append_one(*opened.value().log, 3).is_ok());
    REQUIRE(opened.value().log->sync().is_ok());
  }
  REQUIRE(directory->crash(CrashKind::power_loss, 0).is_ok());
  auto reopened = open_log(*directory, LogOptions{});
  REQUIRE(reopened.is_ok());
  REQUIRE(reopened.value().seen.size() == 3);
  CHECK(read_back(*reopened.value().log, reopened.value().seen[1]) == value_for(2));
}

TEST_CASE("An fsync error fails the log for good: nothing more is reported durable") {
  TempDir temp;
  auto directory = faulty_dir(temp.path());
  {
    auto opened = open_log(*directory, LogOptions{});
    SegmentLog& log = *opened.value().log;
    for (Version v = 1; v <= 5; ++v) REQUIRE(append_one(log, v).is_ok());
    REQUIRE(log.sync().value() == 5);
    for (Version v = 6; v <= 9; ++v) REQUIRE(append_one(log, v).is_ok());
    directory->fail_next_sync();
    CHECK(log.sync().status().code() == Code::io_error);
    CHECK(log.failed());
    CHECK(log.durable_version() == 5);
    // The file layer would now let a sync "succeed"; the log must not believe it.
    CHECK(log.sync().status().code() == Code::io_error);
    CHECK(append_one(log, 10).code() == Code::io_error);
    CHECK(log.durable_version() == 5);
    // Reads of what was appended still work (they are not claims of durability).
    CHECK(log.last_version() == 9);
  }
  REQUIRE(directory->crash(CrashKind::power_loss, 0).is_ok());
  auto reopened = open_log(*directory, LogOptions{});
  REQUIRE(reopened.is_ok());
  CHECK(reopened.value().seen.size() == 5);
}

TEST_CASE("ENOSPC is reported as no_space, counts nothing, and the log recovers") {
  TempDir temp;
  auto directory = faulty_dir(temp.path());
  std::string name = segment_file_name(1);
  {
    auto opened = open_log(*directory, LogOptions{});
    SegmentLog& log = *opened.value().log;
    for (Version v = 1; v <= 3; ++v) REQUIRE(append_one(log, v).is_ok());
    std::uint64_t size = std::filesystem::file_size(temp.file(name));
    directory->set_space_limit_bytes(size + 30);  // part of the next record fits
    CHECK(append_one(log, 4, nullptr, 200).code() == Code::no_space);
    CHECK(log.last_version() == 3);
    CHECK_FALSE(log.failed());
    CHECK(std::filesystem::file_size(temp.file(name)) == size);  // the partial record is cut
    CHECK(log.sync().value() == 3);
    // Space is freed: the same version is accepted now, exactly once.
    directory->set_space_limit_bytes(std::numeric_limits<std::uint64_t>::max());
    REQUIRE(append_one(log, 4, nullptr, 200).is_ok());
    REQUIRE(append_one(log, 5).is_ok());
    CHECK(log.sync().value() == 5);
  }
  REQUIRE(directory->crash(CrashKind::power_loss, 0).is_ok());
  auto reopened = open_log(*directory, LogOptions{});
  REQUIRE(reopened.is_ok());
  REQUIRE(reopened.value().seen.size() == 5);
  CHECK(read_back(*reopened.value().log, reopened.value().seen[3]) == value_for(4, 200));
}

TEST_CASE("ENOSPC around a segment rotation is recoverable too") {
  TempDir temp;
  auto directory = faulty_dir(temp.path());
  Version v = 1;
  Version acknowledged = 0;
  {
    auto opened = open_log(*directory, small_segments());
    SegmentLog& log = *opened.value().log;
    while (log.segment_count() < 2) REQUIRE(append_one(log, v++).is_ok());
    // Allow exactly what is left of the active segment: the rotation that follows runs out.
    std::uint64_t total = 0;
    std::string active;
    auto names = directory->list().value();
    for (const auto& name : names) {
      total += std::filesystem::file_size(temp.file(name));
      active = name;
    }
    std::uint64_t left = 4096 - std::filesystem::file_size(temp.file(active));
    directory->set_space_limit_bytes(total + left);
    std::size_t segments = log.segment_count();
    Status status = Status::ok();
    while (status.is_ok()) status = append_one(log, v++);
    CHECK(status.code() == Code::no_space);
    CHECK_FALSE(log.failed());
    CHECK(log.last_version() == v - 2);
    CHECK(log.segment_count() <= segments + 1);
    --v;  // the refused version is free again
    directory->set_space_limit_bytes(std::numeric_limits<std::uint64_t>::max());
    for (int i = 0; i < 100; ++i) REQUIRE(append_one(log, v++).is_ok());
    CHECK(log.segment_count() > segments);
    acknowledged = log.sync().value();
    CHECK(acknowledged == v - 1);
  }
  REQUIRE(directory->crash(CrashKind::power_loss, 0).is_ok());
  auto reopened = open_log(*directory, small_segments());
  REQUIRE(reopened.is_ok());
  REQUIRE(reopened.value().seen.size() == acknowledged);
  for (Version i = 1; i <= acknowledged; ++i) CHECK(reopened.value().seen[i - 1].version == i);
}

TEST_CASE("A torn write kills the writer and recovery keeps every synced record") {
  TempDir temp;
  auto directory = faulty_dir(temp.path());
  for (std::uint64_t seed = 0; seed < 8; ++seed) {
    Version synced = 0;
    {
      auto opened = open_log(*directory, small_segments());
      REQUIRE(opened.is_ok());
      SegmentLog& log = *opened.value().log;
      Version v = log.last_version() + 1;
      for (int i = 0; i < 20; ++i) REQUIRE(append_one(log, v++).is_ok());
      synced = log.sync().value();
      directory->tear_next_write(seed * 5);
      CHECK(append_one(log, v++).code() == Code::io_error);
      CHECK(log.durable_version() == synced);
    }
    REQUIRE(directory->crash(seed % 2 == 0 ? CrashKind::process : CrashKind::power_loss_torn,
                             seed)
                .is_ok());
    auto reopened = open_log(*directory, small_segments());
    REQUIRE(reopened.is_ok());
    CHECK(reopened.value().log->last_version() == synced);
  }
}
