// Retention (count and age limits) in the index and the store, compaction, and what
// survives a reopen: discarded history reads as gone, never as a wrong answer.
#include <atomic>
#include <cstdio>
#include <thread>

#include "common/log.hpp"
#include "kvstore/store.hpp"
#include "test/kvstore/test_util.hpp"

using namespace squall;
using namespace squall::kvstore;
using namespace squall::kvstore::testing;

namespace {

struct Released {
  std::vector<std::pair<Version, bool>> calls;  // version, as_gap
  ReleaseFn fn() {
    return [this](std::string_view, const Entry& e, bool gap) {
      calls.emplace_back(e.version, gap);
    };
  }
};

Entry put(Version version, HlcTimestamp timestamp) {
  return {version, timestamp, Op::put, 5, version};
}

std::string value_of(std::string_view key, Version version) {
  return std::string(key) + "@" + std::to_string(version);
}

}  // namespace

TEST_CASE("Keeping the last N versions turns older reads into gone") {
  Released released;
  VersionIndex index(RetentionPolicy{2, 0});
  for (Version v = 1; v <= 5; ++v) index.insert("k", put(v * 10, v), released.fn());
  CHECK(index.slot_count() == 3);  // the gap marker and two versions
  CHECK(index.find("k", ReadPoint::latest()).entry.version == 50);
  CHECK(index.find("k", ReadPoint::at_version(45)).entry.version == 40);
  CHECK(index.find("k", ReadPoint::at_version(39)).outcome == Lookup::gone);
  CHECK(index.find("k", ReadPoint::at_version(5)).outcome == Lookup::gone);
  CHECK(index.find("k", ReadPoint::at_time(3)).outcome == Lookup::gone);
  auto history = index.history("k", std::nullopt, 10);
  REQUIRE(history.versions.size() == 2);
  CHECK_FALSE(history.next);
  CHECK(history.truncated);
  // Each discarded version was released once; the newest discarded first as the gap marker.
  CHECK(released.calls == std::vector<std::pair<Version, bool>>{
                              {10, true}, {10, false}, {20, true}, {20, false}, {30, true}});
  // A listing at a discarded point is refused, not answered wrongly.
  CHECK(index.list("", "", 10, ReadPoint::at_version(15), 100).status().code() ==
        Code::out_of_range);
  CHECK(index.list("", "", 10, ReadPoint::at_version(45), 100).is_ok());
}

TEST_CASE("The age limit keeps every version a read at or after the cutoff needs") {
  Released released;
  VersionIndex index(RetentionPolicy{0, 1});
  for (Version v = 1; v <= 4; ++v) index.insert("k", put(v, v * 100), released.fn());
  auto swept = index.sweep(250, "", 100, released.fn());
  CHECK(swept.versions_discarded == 1);  // version 1 was superseded at 200 <= 250
  CHECK_FALSE(swept.next_key);
  CHECK(index.find("k", ReadPoint::at_time(250)).entry.version == 2);
  CHECK(index.find("k", ReadPoint::at_time(199)).outcome == Lookup::gone);
  CHECK(index.find("k", ReadPoint::at_time(50)).outcome == Lookup::gone);
  // Sweeping again at the same cutoff changes nothing.
  CHECK(index.sweep(250, "", 100, released.fn()).versions_discarded == 0);
  // The latest version is never discarded, however old.
  index.sweep(1'000'000, "", 100, released.fn());
  CHECK(index.find("k", ReadPoint::latest()).entry.version == 4);
  CHECK(index.find("k", ReadPoint::at_time(1'000'000)).entry.version == 4);
}

TEST_CASE("A tombstone past the age limit drops the key and raises the floor") {
  Released released;
  VersionIndex index(RetentionPolicy{0, 1});
  index.insert("gone", put(1, 100), released.fn());
  index.insert("live", put(2, 150), released.fn());
  index.insert("gone", {3, 300, Op::del, 0, 3}, released.fn());
  auto swept = index.sweep(350, "", 1, released.fn());  // one key per step
  REQUIRE(swept.next_key);
  CHECK(*swept.next_key == "live");
  CHECK(swept.keys_dropped == 1);
  CHECK(index.key_count() == 1);
  CHECK(index.floor_version() == 3);
  CHECK(index.find("gone", ReadPoint::latest()).outcome == Lookup::absent);
  CHECK(index.find("gone", ReadPoint::at_version(3)).outcome == Lookup::absent);
  CHECK(index.find("gone", ReadPoint::at_version(2)).outcome == Lookup::gone);
  CHECK(index.find("gone", ReadPoint::at_time(299)).outcome == Lookup::gone);
  CHECK(index.find("never", ReadPoint::at_version(1)).outcome == Lookup::gone);
  CHECK(index.find("never", ReadPoint::at_version(4)).outcome == Lookup::absent);
  // A key created again after being dropped still cannot answer below the floor.
  index.insert("gone", put(5, 500), released.fn());
  CHECK(index.find("gone", ReadPoint::at_version(2)).outcome == Lookup::gone);
  CHECK(index.find("gone", ReadPoint::at_version(4)).outcome == Lookup::absent);
  CHECK(index.find("live", ReadPoint::at_version(2)).entry.version == 2);
}

TEST_CASE("Compaction shrinks the log, and after reopening discarded history is still gone") {
  TempDir temp;
  auto directory = posix_dir(temp.path());
  ManualClock clock;
  StoreOptions options;
  options.log.segment_size_bytes = 4096;
  options.log.max_record_bytes = 1 << 20;
  options.max_value_bytes = 64 << 10;
  options.retention.keep_versions = 1;
  std::string filler(100, 'f');
  {
    auto store = Store::open(directory.get(), options, clock).value();
    for (Version v = 1; v <= 400; ++v) {
      std::string key = "k" + std::to_string(v % 10);
      std::string value = value_of(key, v) + filler;
      REQUIRE(store->put(v, v, key, bytes_of(value)).is_ok());
    }
    REQUIRE(store->sync().is_ok());
    auto before = store->stats();
    auto compacted = store->compact();
    REQUIRE(compacted.is_ok());
    CHECK(compacted.value().segments_rewritten + compacted.value().segments_removed > 0);
    CHECK(compacted.value().bytes_after < compacted.value().bytes_before / 4);
    CHECK(store->stats().log_bytes < before.log_bytes);
    for (int k = 0; k < 10; ++k) {
      std::string key = "k" + std::to_string(k);
      Version latest = k == 0 ? 400 : 390 + static_cast<Version>(k);
      CHECK(text_of(store->get(key).value().value) == value_of(key, latest) + filler);
    }
    // Compacting again finds nothing worth rewriting.
    CHECK(store->compact().value().records_moved == 0);
  }
  auto store = Store::open(directory.get(), options, clock).value();
  CHECK(store->stats().keys == 10);
  CHECK(text_of(store->get("k3").value().value) == value_of("k3", 393) + filler);
  CHECK(store->get("k3", ReadPoint::at_version(200)).status().code() == Code::out_of_range);
  CHECK(store->get("k3", ReadPoint::at_version(2)).status().code() == Code::out_of_range);
  // Without retention the older versions still on disk come back, the compacted ones do not.
  auto keep_all = options;
  keep_all.retention = {};
  store.reset();
  store = Store::open(directory.get(), keep_all, clock).value();
  CHECK(store->get("k3", ReadPoint::at_version(2)).status().code() == Code::out_of_range);
  CHECK(text_of(store->get("k3").value().value) == value_of("k3", 393) + filler);
}

TEST_CASE("Dropped keys stay gone below the floor after compaction and reopening") {
  TempDir temp;
  auto directory = posix_dir(temp.path());
  ManualClock clock(1'000'000'000);
  StoreOptions options;
  options.log.segment_size_bytes = 4096;
  options.log.max_record_bytes = 1 << 20;
  options.max_value_bytes = 64 << 10;
  options.retention.max_age_us = 1'000'000;
  std::uint64_t start_us = clock.wall_us();
  {
    auto store = Store::open(directory.get(), options, clock).value();
    std::string filler(200, 'x');
    REQUIRE(store->put(1, hlc_make(start_us, 0), "doomed", bytes_of("v")).is_ok());
    REQUIRE(store->remove(2, hlc_make(start_us + 1, 0), "doomed").is_ok());
    for (Version v = 3; v <= 100; ++v) {
      REQUIRE(store->put(v, hlc_make(start_us + v, 0), "busy", bytes_of(filler)).is_ok());
    }
    REQUIRE(store->sync().is_ok());
    clock.advance_us(5'000'000);
    auto retained = store->apply_retention().value();
    CHECK(retained.keys_dropped == 1);
    CHECK(retained.versions_discarded == 98);  // 97 of "busy", the put of "doomed"
    REQUIRE(store->compact().is_ok());
    CHECK(store->get("doomed", ReadPoint::at_version(1)).status().code() == Code::out_of_range);
  }
  auto store = Store::open(directory.get(), options, clock).value();
  CHECK(store->stats().keys == 1);
  CHECK(store->get("doomed", ReadPoint::at_version(1)).status().code() == Code::out_of_range);
  CHECK(store->get("doomed").status().code() == Code::not_found);
  CHECK(store->get("busy").value().entry.version == 100);
}

TEST_CASE("Compaction runs beside a writer and readers without wrong answers") {
  logger("kvstore")->set_level(spdlog::level::warn);
  TempDir temp;
  auto directory = posix_dir(temp.path());
  StoreOptions options;
  options.log.segment_size_bytes = 16384;
  options.log.max_record_bytes = 1 << 20;
  options.max_value_bytes = 64 << 10;
  options.retention.keep_versions = 2;
  options.compaction_batch_records = 64;
  auto store = Store::open(directory.get(), options, SystemClock::instance()).value();
  constexpr Version kWrites = 20000;
  std::atomic<bool> done{false};
  std::atomic<std::uint64_t> wrong{0};
  std::atomic<std::uint64_t> reads{0};
  std::atomic<std::uint64_t> write_errors{0};
  std::thread writer([&] {  // Catch2 assertions are not thread-safe: count errors instead
    for (Version v = 1; v <= kWrites; ++v) {
      std::string key = "k" + std::to_string(v % 100);
      std::string value = value_of(key, v);
      if (!store->put(v, v, key, bytes_of(value)).is_ok()) ++write_errors;
      if (v % 500 == 0 && !store->sync().is_ok()) ++write_errors;
    }
    done = true;
  });
  std::thread reader([&] {
    std::uint64_t i = 0;
    while (!done) {
      std::string key = "k" + std::to_string(i++ % 100);
      auto read = store->get(key);
      if (!read.is_ok()) continue;  // not written yet
      ++reads;
      if (text_of(read.value().value) != value_of(key, read.value().entry.version)) ++wrong;
    }
  });
  std::size_t rewritten = 0;
  while (!done) {
    auto compacted = store->compact();
    REQUIRE(compacted.is_ok());
    rewritten += compacted.value().segments_rewritten + compacted.value().segments_removed;
  }
  writer.join();
  reader.join();
  auto last_pass = store->compact();  // whatever the interleaving, garbage is left by now
  REQUIRE(last_pass.is_ok());
  rewritten += last_pass.value().segments_rewritten + last_pass.value().segments_removed;
  CHECK(write_errors == 0);
  CHECK(wrong == 0);
  CHECK(reads > 0);
  CHECK(rewritten > 0);
  for (int k = 0; k < 100; ++k) {
    std::string key = "k" + std::to_string(k);
    auto read = store->get(key).value();
    CHECK(text_of(read.value) == value_of(key, read.entry.version));
  }
  std::printf("compaction beside writes: %zu segments compacted, longest exclusive lock hold "
              "%llu us\n", rewritten,
              static_cast<unsigned long long>(store->stats().max_exclusive_hold_us));
}

TEST_CASE("Compaction leaves a cover gap when the key's marker is still a put in a later "
          "segment") {
  TempDir temp;
  auto directory = posix_dir(temp.path());
  ManualClock clock;
  StoreOptions options;
  options.log.segment_size_bytes = 4096;
  options.log.max_record_bytes = 1 << 20;
  options.max_value_bytes = 64 << 10;
  options.retention.keep_versions = 1;
  std::string filler(300, 'f');
  Version v = 0;
  {
    auto store = Store::open(directory.get(), options, clock).value();
    auto put = [&](std::string_view key, std::string_view value) {
      ++v;
      return store->put(v, v, key, bytes_of(value));
    };
    for (int i = 0; i < 5; ++i) REQUIRE(put("hot", filler).is_ok());
    // Fill several segments with another key so "hot"'s early versions sit in sealed ones.
    while (store->stats().segments < 4) {
      REQUIRE(put("other", filler).is_ok());
    }
    // The marker (second newest) and the latest version of "hot" land in the active segment.
    REQUIRE(put("hot", "marker").is_ok());
    REQUIRE(put("hot", "latest").is_ok());
    // Retention discards only for the sake of durable versions: sync, then sweep.
    CHECK(store->get("hot", ReadPoint::at_version(5)).is_ok());
    REQUIRE(store->sync().is_ok());
    REQUIRE(store->apply_retention().is_ok());
    CHECK(store->get("hot", ReadPoint::at_version(5)).status().code() == Code::out_of_range);
    auto compacted = store->compact().value();
    CHECK(compacted.segments_rewritten + compacted.segments_removed >= 2);
    CHECK(store->get("hot", ReadPoint::at_version(3)).status().code() == Code::out_of_range);
  }
  // Reopen keeping everything: the marker's put comes back as a real version, but the
  // compacted history before it must still read as gone, not as absent.
  StoreOptions keep_all = options;
  keep_all.retention = {};
  auto store = Store::open(directory.get(), keep_all, clock).value();
  CHECK(store->get("hot", ReadPoint::at_version(1)).status().code() == Code::out_of_range);
  CHECK(store->get("hot", ReadPoint::at_version(5)).status().code() == Code::out_of_range);
  CHECK(text_of(store->get("hot", ReadPoint::at_version(v - 1)).value().value) == "marker");
  CHECK(text_of(store->get("hot").value().value) == "latest");
  // A second pass after reopening with the original policy keeps the answer.
  store.reset();
  auto again = Store::open(directory.get(), options, clock).value();
  REQUIRE(again->compact().is_ok());
  again.reset();
  store = Store::open(directory.get(), keep_all, clock).value();
  CHECK(store->get("hot", ReadPoint::at_version(2)).status().code() == Code::out_of_range);
}

TEST_CASE("Retention in volatile mode frees discarded values and keeps the rest readable") {
  ManualClock clock;
  StoreOptions options;
  options.mode = StorageMode::in_memory;
  options.retention.keep_versions = 3;
  auto store = Store::open(nullptr, options, clock).value();
  for (Version v = 1; v <= 500; ++v) {
    std::string key = "k" + std::to_string(v % 5);
    REQUIRE(store->put(v, v, key, bytes_of(value_of(key, v))).is_ok());
  }
  CHECK(store->stats().versions == 5 * 4);  // three versions and a gap marker per key
  for (int k = 0; k < 5; ++k) {
    std::string key = "k" + std::to_string(k);
    auto latest = store->get(key).value();
    CHECK(text_of(latest.value) == value_of(key, latest.entry.version));
    auto older = store->get(key, ReadPoint::at_version(latest.entry.version - 5)).value();
    CHECK(text_of(older.value) == value_of(key, older.entry.version));
    CHECK(store->get(key, ReadPoint::at_version(latest.entry.version - 15)).status().code() ==
          Code::out_of_range);
  }
  CHECK(store->sync().value() == 500);
}

// Regression: retention counted a write that was not durable yet, compaction then removed the
// version it superseded, and a power loss took the new write away: the key lost its value.
TEST_CASE("Regression: a version superseded only by unsynced writes survives compaction "
          "and a power loss") {
  TempDir temp;
  auto directory = faulty_dir(temp.path());
  ManualClock clock;
  StoreOptions options;
  options.log.segment_size_bytes = 4096;
  options.log.max_record_bytes = 1 << 20;
  options.max_value_bytes = 64 << 10;
  options.retention.keep_versions = 1;
  std::string filler(300, 'f');
  {
    auto store = Store::open(directory.get(), options, clock).value();
    REQUIRE(store->put(1, 1, "k", bytes_of("durable value")).is_ok());
    Version v = 1;
    while (store->stats().segments < 3) {  // seal the segment holding version 1
      ++v;
      REQUIRE(store->put(v, v, "other", bytes_of(filler)).is_ok());
    }
    ++v;
    REQUIRE(store->put(v, v, "k", bytes_of("never synced")).is_ok());
    REQUIRE(store->apply_retention().is_ok());
    REQUIRE(store->compact().is_ok());
    CHECK(text_of(store->get("k").value().value) == "never synced");
    REQUIRE(directory->crash(CrashKind::power_loss, 0).is_ok());
  }
  auto store = Store::open(directory.get(), options, clock).value();
  auto read = store->get("k");
  REQUIRE(read.is_ok());
  CHECK(text_of(read.value().value) == "durable value");
}
