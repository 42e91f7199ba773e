// Store: writes and reads in both storage modes, validation, reopening, failure handling,
// and the index's memory per key and per version.
#include <malloc.h>

#include <cstdio>

#include "kvstore/store.hpp"
#include "test/kvstore/test_util.hpp"

using namespace squall;
using namespace squall::kvstore;
using namespace squall::kvstore::testing;

namespace {

StoreOptions options_for(StorageMode mode) {
  StoreOptions options;
  options.mode = mode;
  options.log.segment_size_bytes = 8192;
  options.log.max_record_bytes = 1 << 20;
  options.max_value_bytes = 512 << 10;
  return options;
}

std::unique_ptr<Store> open_store(Directory* directory, const StoreOptions& options,
                                  const Clock& clock) {
  auto store = Store::open(directory, options, clock);
  REQUIRE(store.is_ok());
  return std::move(store.value());
}

std::string value_at(const Store& store, std::string_view key, ReadPoint at) {
  auto read = store.get(key, at);
  REQUIRE(read.is_ok());
  return text_of(read.value().value);
}

}  // namespace

TEST_CASE("Put, get, delete and reads in the past, in both storage modes") {
  auto mode = GENERATE(StorageMode::persistent, StorageMode::in_memory);
  TempDir temp;
  auto directory = posix_dir(temp.path());
  ManualClock clock;
  auto store = open_store(directory.get(), options_for(mode), clock);
  REQUIRE(store->put(1, hlc_make(1000, 0), "users/1", bytes_of("alice")).is_ok());
  REQUIRE(store->put(2, hlc_make(1000, 1), "users/2", bytes_of("bob")).is_ok());
  REQUIRE(store->put(3, hlc_make(2000, 0), "users/1", bytes_of("alice v2")).is_ok());
  REQUIRE(store->remove(4, hlc_make(3000, 0), "users/2").is_ok());
  CHECK(value_at(*store, "users/1", ReadPoint::latest()) == "alice v2");
  CHECK(value_at(*store, "users/1", ReadPoint::at_version(2)) == "alice");
  CHECK(value_at(*store, "users/1", at_time_us(1999)) == "alice");
  CHECK(value_at(*store, "users/1", at_time_us(2000)) == "alice v2");
  CHECK(store->get("users/2").status().code() == Code::not_found);  // deleted
  CHECK(value_at(*store, "users/2", ReadPoint::at_version(3)) == "bob");
  CHECK(store->get("users/1", ReadPoint::at_version(0)).status().code() == Code::not_found);
  auto read = store->get("users/1").value();
  CHECK(read.entry.version == 3);
  CHECK(read.entry.timestamp == hlc_make(2000, 0));
  auto tombstone = store->lookup("users/2", ReadPoint::latest());
  CHECK(tombstone.outcome == Lookup::found);
  CHECK(tombstone.entry.op == Op::del);
  auto listed = store->list("users/", "", 10).value();
  REQUIRE(listed.items.size() == 1);
  CHECK(listed.items[0].key == "users/1");
  CHECK(listed.items[0].entry.value_bytes == 8);
  CHECK(store->history("users/2", std::nullopt, 10).value().versions.size() == 2);
  CHECK(store->sync().value() == 4);
  CHECK(store->durable_version() == 4);
}

TEST_CASE("A persistent store reopens with every version and value") {
  TempDir temp;
  auto directory = posix_dir(temp.path());
  ManualClock clock;
  std::string big(100'000, 'z');
  {
    auto store = open_store(directory.get(), options_for(StorageMode::persistent), clock);
    for (Version v = 1; v <= 300; ++v) {
      std::string value = "value-" + std::to_string(v);
      REQUIRE(store->put(v, v * 10, "key/" + std::to_string(v % 17), bytes_of(value)).is_ok());
    }
    REQUIRE(store->remove(301, 3010, "key/3").is_ok());
    REQUIRE(store->put(302, 3020, "big", bytes_of(big)).is_ok());
    REQUIRE(store->sync().value() == 302);
  }
  auto store = open_store(directory.get(), options_for(StorageMode::persistent), clock);
  CHECK(store->last_version() == 302);
  CHECK(store->durable_version() == 302);
  CHECK(value_at(*store, "key/5", ReadPoint::latest()) == "value-294");
  CHECK(value_at(*store, "key/5", ReadPoint::at_version(100)) == "value-90");
  CHECK(value_at(*store, "key/3", ReadPoint::at_version(300)) == "value-292");
  CHECK(store->get("key/3").status().code() == Code::not_found);
  CHECK(value_at(*store, "big", ReadPoint::latest()) == big);
  CHECK(store->stats().keys == 18);
  CHECK(store->stats().versions == 302);
  // Writes continue after the recovered versions only.
  CHECK(store->put(302, 4000, "x", bytes_of("v")).code() == Code::invalid_argument);
  CHECK(store->put(303, 3019, "x", bytes_of("v")).code() == Code::invalid_argument);
  REQUIRE(store->put(303, 4000, "x", bytes_of("v")).is_ok());
}

TEST_CASE("Invalid writes are refused whole and change nothing") {
  TempDir temp;
  auto directory = posix_dir(temp.path());
  ManualClock clock;
  auto options = options_for(StorageMode::persistent);
  options.max_key_bytes = 8;
  options.max_value_bytes = 16;
  auto store = open_store(directory.get(), options, clock);
  REQUIRE(store->put(10, 100, "k", bytes_of("v")).is_ok());
  std::string value(17, 'v');
  CHECK(store->put(11, 100, "", bytes_of("v")).code() == Code::invalid_argument);
  CHECK(store->put(11, 100, "123456789", bytes_of("v")).code() == Code::invalid_argument);
  CHECK(store->put(11, 100, "k", bytes_of(value)).code() == Code::invalid_argument);
  CHECK(store->put(10, 100, "k", bytes_of("v")).code() == Code::invalid_argument);
  CHECK(store->put(11, 99, "k", bytes_of("v")).code() == Code::invalid_argument);
  std::vector<Update> batch = {{11, 100, Op::put, "a", bytes_of("1")},
                               {12, 100, Op::history_gap, "b", {}}};
  CHECK(store->apply(batch).code() == Code::invalid_argument);
  batch[1] = {12, 100, Op::del, "b", bytes_of("x")};  // a delete carries no value
  CHECK(store->apply(batch).code() == Code::invalid_argument);
  CHECK(store->last_version() == 10);
  CHECK(store->get("a").status().code() == Code::not_found);
  CHECK(store->stats().versions == 1);
  CHECK(store->history("k", std::nullopt, 0).status().code() == Code::invalid_argument);
  CHECK(store->list("", "", options.max_page_items + 1).status().code() ==
        Code::invalid_argument);
}

TEST_CASE("ENOSPC refuses a batch whole and the same batch succeeds once space is back") {
  TempDir temp;
  auto directory = faulty_dir(temp.path());
  ManualClock clock;
  auto store = open_store(directory.get(), options_for(StorageMode::persistent), clock);
  REQUIRE(store->put(1, 1, "a", bytes_of("first")).is_ok());
  std::uint64_t used = store->stats().log_bytes;
  directory->set_space_limit_bytes(used + 50);
  std::string value(200, 'b');
  std::vector<Update> batch = {{2, 2, Op::put, "b", bytes_of("small")},
                               {3, 3, Op::put, "c", bytes_of(value)}};
  CHECK(store->apply(batch).code() == Code::no_space);
  CHECK(store->get("b").status().code() == Code::not_found);
  CHECK(store->last_version() == 1);
  directory->set_space_limit_bytes(std::numeric_limits<std::uint64_t>::max());
  REQUIRE(store->apply(batch).is_ok());
  CHECK(value_at(*store, "c", ReadPoint::latest()) == value);
  CHECK(store->sync().value() == 3);
}

TEST_CASE("After an fsync error the store takes no writes and reports nothing new durable") {
  TempDir temp;
  auto directory = faulty_dir(temp.path());
  ManualClock clock;
  auto store = open_store(directory.get(), options_for(StorageMode::persistent), clock);
  REQUIRE(store->put(1, 1, "a", bytes_of("1")).is_ok());
  REQUIRE(store->sync().value() == 1);
  REQUIRE(store->put(2, 2, "a", bytes_of("2")).is_ok());
  directory->fail_next_sync();
  CHECK(store->sync().status().code() == Code::io_error);
  CHECK(store->put(3, 3, "a", bytes_of("3")).code() == Code::io_error);
  CHECK(store->sync().status().code() == Code::io_error);
  CHECK(store->durable_version() == 1);
  CHECK(store->stats().failed);
}

TEST_CASE("Index memory per key and per version (key bytes excluded)") {
  // Measured with the allocator's own accounting, so allocation overhead counts too.
  constexpr std::size_t kKeys = 20000;
  constexpr std::size_t kVersionsPerKey = 40;
  constexpr std::size_t kKeyBytes = 24;
  auto in_use = [] { return static_cast<std::int64_t>(mallinfo2().uordblks); };
  auto key_of = [](std::size_t i) {
    std::string key = "user/" + std::to_string(1'000'000 + i);
    key.resize(kKeyBytes, '.');
    return key;
  };
  auto release = [](std::string_view, const Entry&, bool) {};
  std::int64_t start = in_use();
  auto index = std::make_unique<VersionIndex>();
  Version version = 0;
  for (std::size_t i = 0; i < kKeys; ++i) {
    index->insert(key_of(i), {++version, version, Op::put, 100, version}, release);
  }
  std::int64_t one_version = in_use() - start;
  for (std::size_t round = 1; round < kVersionsPerKey; ++round) {
    for (std::size_t i = 0; i < kKeys; ++i) {
      index->insert(key_of(i), {++version, version, Op::put, 100, version}, release);
    }
  }
  std::int64_t all_versions = in_use() - start;
  double per_version = static_cast<double>(all_versions - one_version) /
                       static_cast<double>(kKeys * (kVersionsPerKey - 1));
  double per_key = static_cast<double>(one_version) / kKeys - kKeyBytes - per_version;
  std::printf("index memory: %.1f bytes per key (+%zu key bytes), %.1f bytes per version\n",
              per_key, kKeyBytes, per_version);
  CHECK(index->slot_count() == kKeys * kVersionsPerKey);
  CHECK(per_key <= 100.0);
  CHECK(per_version <= 32.0);
}
