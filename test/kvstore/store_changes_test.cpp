// Store::changes: the writes under a prefix in version order, from every position, in both
// storage modes and across a reopen; "gone" exactly when retention discarded a version above
// the position; start_history_after.
#include <map>
#include <random>

#include "kvstore/store.hpp"
#include "test/kvstore/test_util.hpp"

using namespace squall;
using namespace squall::kvstore;
using namespace squall::kvstore::testing;

namespace {

constexpr std::uint64_t kStartUs = 1'700'000'000'000'000ULL;

struct Written {
  Version version = 0;
  std::string key;
  Op op = Op::put;
  std::string value;
};

StoreOptions small_segments(StorageMode mode) {
  StoreOptions options;
  options.mode = mode;
  options.log.segment_size_bytes = 4096;
  options.log.max_record_bytes = 1 << 20;
  options.max_value_bytes = 64 << 10;
  return options;
}

std::unique_ptr<Store> open_store(Directory* directory, const StoreOptions& options,
                                  const Clock& clock) {
  auto store = Store::open(directory, options, clock);
  REQUIRE(store.is_ok());
  return std::move(store.value());
}

// Random puts and deletes over keys under "a/", under "b/", and "a" itself, with versions
// that skip numbers (other pools' writes and no-op updates consume versions too).
std::vector<Written> random_writes(std::uint64_t seed, std::size_t count) {
  std::mt19937_64 random(seed);
  std::vector<Written> writes;
  Version version = 0;
  for (std::size_t i = 0; i < count; ++i) {
    version += 1 + random() % 3;
    std::uint64_t pick = random() % 31;
    std::string key = pick == 30 ? "a" : pick < 20 ? "a/" + std::to_string(pick)
                                                   : "b/" + std::to_string(pick - 20);
    bool del = random() % 5 == 0;
    writes.push_back({version, key, del ? Op::del : Op::put,
                      del ? "" : key + "@" + std::to_string(version)});
  }
  return writes;
}

void apply_writes(Store& store, const std::vector<Written>& writes) {
  for (const Written& w : writes) {
    HlcTimestamp timestamp = hlc_make(kStartUs + w.version, 0);
    Status applied = w.op == Op::put ? store.put(w.version, timestamp, w.key, bytes_of(w.value))
                                     : store.remove(w.version, timestamp, w.key);
    REQUIRE(applied.is_ok());
  }
}

// Every change of `prefix` in (after, upto], paged by `page` items; values read back.
std::vector<Written> read_all(const Store& store, std::string_view prefix, Version after,
                              Version upto, std::size_t page) {
  std::vector<Written> out;
  while (after < upto) {
    auto changes = store.changes(prefix, after, upto, page);
    REQUIRE(changes.is_ok());
    REQUIRE(changes->through > after);
    REQUIRE(changes->changes.size() <= page);
    for (const Change& change : changes->changes) {
      REQUIRE(change.entry.version > after);
      REQUIRE(change.entry.version <= changes->through);
      Written w{change.entry.version, change.key, change.entry.op, ""};
      if (w.op == Op::put) w.value = text_of(store.read_version(change.key, w.version).value());
      out.push_back(std::move(w));
    }
    after = changes->through;
  }
  return out;
}

std::vector<Written> expected_changes(const std::vector<Written>& writes,
                                      std::string_view prefix, Version after) {
  std::vector<Written> out;
  for (const Written& w : writes) {
    if (w.version > after && w.key.starts_with(prefix)) out.push_back(w);
  }
  return out;
}

bool same(const std::vector<Written>& a, const std::vector<Written>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].version != b[i].version || a[i].key != b[i].key || a[i].op != b[i].op ||
        a[i].value != b[i].value) {
      return false;
    }
  }
  return true;
}

// Checks changes() of every prefix from every position (each version and the one below it).
void check_every_position(const Store& store, const std::vector<Written>& writes,
                          std::uint64_t seed) {
  std::mt19937_64 random(seed);
  Version upto = writes.back().version;
  for (std::string_view prefix : {"", "a/", "a/1", "b/", "a", "zzz"}) {
    INFO("prefix '" << prefix << "'");
    std::vector<Version> positions{0};
    for (const Written& w : writes) {
      positions.push_back(w.version - 1);
      positions.push_back(w.version);
    }
    for (Version after : positions) {
      if (after >= upto) continue;
      INFO("after " << after);
      std::size_t page = 1 + random() % 9;
      REQUIRE(same(read_all(store, prefix, after, upto, page),
                   expected_changes(writes, prefix, after)));
    }
  }
}

}  // namespace

TEST_CASE("Changes list every write under a prefix in version order from every position") {
  auto mode = GENERATE(StorageMode::in_memory, StorageMode::persistent);
  INFO("persistent " << (mode == StorageMode::persistent));
  TempDir temp;
  auto directory = posix_dir(temp.path());
  ManualClock clock;
  StoreOptions options = small_segments(mode);
  options.change_scan_keys = 4;  // several lock holds per scan
  auto writes = random_writes(7, 300);
  {
    auto store = open_store(directory.get(), options, clock);
    apply_writes(*store, writes);
    check_every_position(*store, writes, 1);
    CHECK(store->changes_horizon("") == 0);
    // Bounded above by upto; invalid ranges and limits are refused.
    auto below = store->changes("a/", 0, writes[10].version, 1000);
    REQUIRE(below.is_ok());
    CHECK(same(read_all(*store, "a/", 0, writes[10].version, 1000),
               expected_changes(std::vector(writes.begin(), writes.begin() + 11), "a/", 0)));
    CHECK(store->changes("", 5, 5, 1).status().code() == Code::invalid_argument);
    CHECK(store->changes("", 0, 5, 0).status().code() == Code::invalid_argument);
    CHECK(store->changes("", 0, 5, options.max_page_items + 1).status().code() ==
          Code::invalid_argument);
    if (mode == StorageMode::persistent) CHECK(store->stats().segments > 3);
  }
  if (mode == StorageMode::persistent) {  // the same from the recovered log
    auto store = open_store(directory.get(), options, clock);
    check_every_position(*store, writes, 2);
  }
}

TEST_CASE("Changes are gone exactly when retention discarded a version above the position") {
  ManualClock clock;
  StoreOptions options = small_segments(StorageMode::in_memory);
  options.retention.keep_versions = 2;
  auto store = open_store(nullptr, options, clock);
  auto writes = random_writes(11, 200);
  apply_writes(*store, writes);
  // The model: each key keeps its 2 newest versions; the newest discarded one is the 3rd.
  std::map<std::string, std::vector<Written>> by_key;
  for (const Written& w : writes) by_key[w.key].push_back(w);
  for (std::string_view prefix : {"", "a/", "a/1", "b/", "a", "zzz"}) {
    INFO("prefix '" << prefix << "'");
    Version horizon = 0;
    std::vector<Written> retained;
    for (const auto& [key, versions] : by_key) {
      if (!key.starts_with(prefix)) continue;
      if (versions.size() > 2) horizon = std::max(horizon, versions[versions.size() - 3].version);
      for (std::size_t i = versions.size() > 2 ? versions.size() - 2 : 0; i < versions.size();
           ++i) {
        retained.push_back(versions[i]);
      }
    }
    std::sort(retained.begin(), retained.end(),
              [](const Written& a, const Written& b) { return a.version < b.version; });
    CHECK(store->changes_horizon(prefix) == horizon);
    Version upto = writes.back().version;
    for (Version after = 0; after < upto; ++after) {
      INFO("after " << after);
      auto page = store->changes(prefix, after, upto, 5);
      if (after < horizon) {
        REQUIRE(page.status().code() == Code::out_of_range);
      } else {
        REQUIRE(page.is_ok());
        REQUIRE(same(read_all(*store, prefix, after, upto, 5),
                     expected_changes(retained, prefix, after)));
      }
    }
  }
}

TEST_CASE("A dropped key raises the horizon of every prefix, compaction and reopen keep it") {
  TempDir temp;
  auto directory = posix_dir(temp.path());
  ManualClock clock(kStartUs);
  StoreOptions options = small_segments(StorageMode::persistent);
  options.retention.keep_versions = 1;
  options.retention.max_age_us = 1000;
  std::string filler(200, 'f');
  Version dropped_at = 0;
  Version horizon_b = 0;
  {
    auto store = open_store(directory.get(), options, clock);
    for (Version v = 1; v <= 100; ++v) {
      std::string key = "b/" + std::to_string(v % 5);
      REQUIRE(store->put(v, hlc_make(kStartUs + v, 0), key, bytes_of(filler)).is_ok());
    }
    REQUIRE(store->put(101, hlc_make(kStartUs + 101, 0), "a/x", bytes_of(filler)).is_ok());
    REQUIRE(store->remove(102, hlc_make(kStartUs + 102, 0), "a/x").is_ok());
    dropped_at = 102;
    REQUIRE(store->put(103, hlc_make(kStartUs + 5000, 0), "b/new", bytes_of(filler)).is_ok());
    REQUIRE(store->sync().is_ok());
    // Versions are discarded only once their successors are durable: a pass after the sync.
    REQUIRE(store->apply_retention().is_ok());
    horizon_b = store->changes_horizon("b/");
    CHECK(horizon_b == 95);  // b/0..b/4 keep 96..100; 95 was the newest discarded
    clock.set_us(kStartUs + 3000);  // the tombstone of a/x is past the age limit
    REQUIRE(store->apply_retention().is_ok());
    CHECK(store->lookup("a/x", ReadPoint::latest()).outcome == Lookup::absent);
    CHECK(store->changes_horizon("b/") == dropped_at);  // dropped keys count everywhere
    CHECK(store->changes_horizon("zzz") == dropped_at);
    CHECK(store->changes("b/", dropped_at - 1, 103, 10).status().code() == Code::out_of_range);
    auto page = store->changes("b/", dropped_at, 103, 10);
    REQUIRE(page.is_ok());
    REQUIRE(page->changes.size() == 1);
    CHECK(page->changes[0].key == "b/new");
    REQUIRE(store->compact().is_ok());
  }
  auto store = open_store(directory.get(), options, clock);
  CHECK(store->changes_horizon("b/") == dropped_at);
  CHECK(store->changes("", dropped_at - 1, 103, 10).status().code() == Code::out_of_range);
  CHECK(store->changes("", dropped_at, 103, 10).is_ok());
}

TEST_CASE("start_history_after makes older positions gone, durably") {
  auto mode = GENERATE(StorageMode::in_memory, StorageMode::persistent);
  TempDir temp;
  auto directory = posix_dir(temp.path());
  ManualClock clock;
  StoreOptions options = small_segments(mode);
  {
    auto store = open_store(directory.get(), options, clock);
    REQUIRE(store->start_history_after(50, hlc_make(kStartUs + 50, 0)).is_ok());
    REQUIRE(store->put(40, hlc_make(kStartUs + 40, 0), "k", bytes_of("from a checkpoint"))
                .is_ok());
    REQUIRE(store->put(60, hlc_make(kStartUs + 60, 0), "k", bytes_of("later")).is_ok());
    REQUIRE(store->sync().is_ok());
    CHECK(store->changes_horizon("") == 50);
    CHECK(store->changes("", 49, 60, 10).status().code() == Code::out_of_range);
    auto page = store->changes("", 50, 60, 10);
    REQUIRE(page.is_ok());
    REQUIRE(page->changes.size() == 1);
    CHECK(page->changes[0].entry.version == 60);
    CHECK(store->get("other", ReadPoint::at_version(45)).status().code() == Code::out_of_range);
    CHECK(text_of(store->read_version("k", 40).value()) == "from a checkpoint");
    CHECK(store->read_version("k", 41).status().code() == Code::out_of_range);
  }
  if (mode == StorageMode::persistent) {
    auto store = open_store(directory.get(), options, clock);
    CHECK(store->changes_horizon("") == 50);
    CHECK(store->changes("", 49, 60, 10).status().code() == Code::out_of_range);
  }
}
