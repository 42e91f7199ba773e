// VersionIndex semantics: reads by version and time at their boundaries, tombstones, history
// pagination, listing pagination and byte order.
#include <map>
#include <random>

#include <catch2/catch.hpp>

#include "kvstore/version_index.hpp"

using namespace squall;
using namespace squall::kvstore;

namespace {

void no_release(std::string_view, const Entry&, bool) {}

Entry put(Version version, HlcTimestamp timestamp, std::uint32_t size = 1) {
  return {version, timestamp, Op::put, size, version * 100};
}
Entry del(Version version, HlcTimestamp timestamp) {
  return {version, timestamp, Op::del, 0, version * 100};
}

Version found_version(const FindResult& result) {
  REQUIRE(result.outcome == Lookup::found);
  return result.entry.version;
}

std::vector<std::string> keys_of(const ListPage& page) {
  std::vector<std::string> keys;
  for (const auto& item : page.items) keys.push_back(item.key);
  return keys;
}

}  // namespace

TEST_CASE("Reads by version return the latest version at or below it") {
  VersionIndex index;
  index.insert("k", put(10, 100), no_release);
  index.insert("other", put(15, 150), no_release);
  index.insert("k", put(20, 200), no_release);
  index.insert("k", put(30, 300), no_release);
  CHECK(found_version(index.find("k", ReadPoint::latest())) == 30);
  CHECK(index.find("k", ReadPoint::at_version(9)).outcome == Lookup::absent);
  CHECK(found_version(index.find("k", ReadPoint::at_version(10))) == 10);
  CHECK(found_version(index.find("k", ReadPoint::at_version(19))) == 10);
  CHECK(found_version(index.find("k", ReadPoint::at_version(20))) == 20);
  CHECK(found_version(index.find("k", ReadPoint::at_version(29))) == 20);
  CHECK(found_version(index.find("k", ReadPoint::at_version(30))) == 30);
  CHECK(found_version(index.find("k", ReadPoint::at_version(~0ULL))) == 30);
  CHECK(index.find("missing", ReadPoint::latest()).outcome == Lookup::absent);
  auto found = index.find("k", ReadPoint::at_version(25));
  CHECK(found.entry == put(20, 200));
}

TEST_CASE("Reads by time return the latest version with timestamp at or below it") {
  VersionIndex index;
  index.insert("k", put(1, 100), no_release);
  index.insert("k", put(2, 200), no_release);
  index.insert("k", put(3, 200), no_release);  // same timestamp: the later version wins
  index.insert("k", put(4, 350), no_release);
  CHECK(index.find("k", ReadPoint::at_time(99)).outcome == Lookup::absent);
  CHECK(found_version(index.find("k", ReadPoint::at_time(100))) == 1);
  CHECK(found_version(index.find("k", ReadPoint::at_time(199))) == 1);
  CHECK(found_version(index.find("k", ReadPoint::at_time(200))) == 3);
  CHECK(found_version(index.find("k", ReadPoint::at_time(349))) == 3);
  CHECK(found_version(index.find("k", ReadPoint::at_time(350))) == 4);
  CHECK(found_version(index.find("k", ReadPoint::at_time(1'000'000))) == 4);
}

TEST_CASE("A delete is a tombstone version: found as such, and earlier reads see the value") {
  VersionIndex index;
  index.insert("k", put(1, 10), no_release);
  index.insert("k", del(2, 20), no_release);
  index.insert("k", put(3, 30), no_release);
  CHECK(index.find("k", ReadPoint::at_version(1)).entry.op == Op::put);
  auto deleted = index.find("k", ReadPoint::at_version(2));
  CHECK(deleted.outcome == Lookup::found);
  CHECK(deleted.entry.op == Op::del);
  CHECK(index.find("k", ReadPoint::at_time(25)).entry.op == Op::del);
  CHECK(index.find("k", ReadPoint::latest()).entry.op == Op::put);
  auto history = index.history("k", std::nullopt, 10);
  REQUIRE(history.versions.size() == 3);
  CHECK(history.versions[1].op == Op::del);
}

TEST_CASE("History pages newest first with an exclusive `before` and an exact `next`") {
  VersionIndex index;
  for (Version v = 1; v <= 7; ++v) index.insert("k", put(v * 10, v), no_release);
  auto first = index.history("k", std::nullopt, 3);
  REQUIRE(first.versions.size() == 3);
  CHECK(first.versions[0].version == 70);
  CHECK(first.versions[2].version == 50);
  REQUIRE(first.next);
  CHECK(*first.next == 50);
  auto second = index.history("k", first.next, 3);
  CHECK(second.versions.front().version == 40);
  CHECK(second.versions.back().version == 20);
  REQUIRE(second.next);
  auto third = index.history("k", second.next, 3);
  REQUIRE(third.versions.size() == 1);
  CHECK(third.versions[0].version == 10);
  CHECK_FALSE(third.next);  // nothing older
  CHECK_FALSE(third.truncated);
  // A page that ends exactly at the oldest version has no next either.
  auto exact = index.history("k", 31, 3);
  CHECK(exact.versions.size() == 3);
  CHECK_FALSE(exact.next);
  // `before` between versions, and below everything.
  CHECK(index.history("k", 45, 1).versions[0].version == 40);
  CHECK(index.history("k", 10, 5).versions.empty());
  CHECK(index.history("missing", std::nullopt, 5).versions.empty());
  // Paging with limit 1 visits every version once.
  std::vector<Version> all;
  std::optional<Version> before;
  do {
    auto page = index.history("k", before, 1);
    for (const auto& e : page.versions) all.push_back(e.version);
    before = page.next;
  } while (before);
  CHECK(all == std::vector<Version>{70, 60, 50, 40, 30, 20, 10});
}

TEST_CASE("Listing is in byte order, filtered by prefix, paginated with an exact `next`") {
  VersionIndex index;
  Version v = 0;
  for (std::string key : {"b/2", "a/1", "b/1", "b/\xc3\xa9", "b/10", "c", "b/3"}) {
    ++v;
    index.insert(key, put(v, v), no_release);
  }
  auto all = index.list("b/", "", 100, ReadPoint::latest(), 1000).value();
  // Bytes order: 0x31 '1' < "10" < '2' < '3' < 0xc3 (unsigned, after ASCII).
  CHECK(keys_of(all) == std::vector<std::string>{"b/1", "b/10", "b/2", "b/3", "b/\xc3\xa9"});
  CHECK_FALSE(all.next);

  auto first = index.list("b/", "", 2, ReadPoint::latest(), 1000).value();
  CHECK(keys_of(first) == std::vector<std::string>{"b/1", "b/10"});
  REQUIRE(first.next);
  CHECK(*first.next == "b/10");
  auto second = index.list("b/", *first.next, 2, ReadPoint::latest(), 1000).value();
  CHECK(keys_of(second) == std::vector<std::string>{"b/2", "b/3"});
  REQUIRE(second.next);
  auto third = index.list("b/", *second.next, 2, ReadPoint::latest(), 1000).value();
  CHECK(keys_of(third) == std::vector<std::string>{"b/\xc3\xa9"});
  CHECK_FALSE(third.next);
  // A page that ends exactly at the last key says no key follows.
  CHECK_FALSE(index.list("b/", "b/2", 2, ReadPoint::latest(), 1000).value().next);
  // start_after before the prefix, and an empty prefix over everything.
  CHECK(index.list("b/", "a", 1, ReadPoint::latest(), 1000).value().items[0].key == "b/1");
  CHECK(index.list("", "", 100, ReadPoint::latest(), 1000).value().items.size() == 7);
}

TEST_CASE("Deleted keys are not listed, and `next` is null when only deleted keys follow") {
  VersionIndex index;
  index.insert("a", put(1, 1), no_release);
  index.insert("b", put(2, 2), no_release);
  index.insert("c", put(3, 3), no_release);
  index.insert("b", del(4, 4), no_release);
  index.insert("c", del(5, 5), no_release);
  auto page = index.list("", "", 1, ReadPoint::latest(), 1000).value();
  CHECK(keys_of(page) == std::vector<std::string>{"a"});
  CHECK_FALSE(page.next);
  // As of version 3, all three existed.
  auto past = index.list("", "", 10, ReadPoint::at_version(3), 1000).value();
  CHECK(keys_of(past) == std::vector<std::string>{"a", "b", "c"});
  auto before_c = index.list("", "", 10, ReadPoint::at_time(2), 1000).value();
  CHECK(keys_of(before_c) == std::vector<std::string>{"a", "b"});
}

TEST_CASE("A listing stops after the scan limit and continues from `next`") {
  VersionIndex index;
  for (int i = 0; i < 10; ++i) {
    index.insert("k" + std::to_string(i), put(static_cast<Version>(2 * i + 1), 1), no_release);
    if (i < 8) {
      index.insert("k" + std::to_string(i), del(static_cast<Version>(2 * i + 2), 1),
                   no_release);
    }
  }
  auto first = index.list("k", "", 5, ReadPoint::latest(), 4).value();
  CHECK(first.items.empty());
  REQUIRE(first.next);
  CHECK(*first.next == "k3");
  std::vector<std::string> found;
  std::optional<std::string> next = first.next;
  while (next) {
    auto page = index.list("k", *next, 5, ReadPoint::latest(), 4).value();
    for (const auto& item : page.items) found.push_back(item.key);
    next = page.next;
  }
  CHECK(found == std::vector<std::string>{"k8", "k9"});
}

TEST_CASE("Relocation moves only a version still at its old place") {
  VersionIndex index;
  index.insert("k", put(1, 1), no_release);
  CHECK(index.relocate("k", 1, 100, 555, false));
  CHECK(index.exact("k", 1)->location == 555);
  CHECK_FALSE(index.relocate("k", 1, 100, 777, false));
  CHECK_FALSE(index.relocate("k", 2, 200, 777, false));
  CHECK_FALSE(index.relocate("x", 1, 555, 777, false));
  CHECK(index.key_count() == 1);
  CHECK(index.slot_count() == 1);
}

TEST_CASE("Index reads agree with a brute-force model over random histories") {
  std::mt19937_64 random(42);
  VersionIndex index;
  struct ModelVersion {
    Version version;
    HlcTimestamp timestamp;
    Op op;
  };
  std::map<std::string, std::vector<ModelVersion>> model;
  HlcTimestamp time = 0;
  for (Version v = 1; v <= 3000; ++v) {
    std::string key = "key" + std::to_string(random() % 50);
    time += random() % 3;
    Op op = random() % 5 == 0 ? Op::del : Op::put;
    index.insert(key, {v, time, op, 0, v}, no_release);
    model[key].push_back({v, time, op});
  }
  for (int probe = 0; probe < 2000; ++probe) {
    std::string key = "key" + std::to_string(random() % 55);
    std::uint64_t point = random() % 3100;
    bool by_time = probe % 2 == 0;
    const ModelVersion* expected = nullptr;
    for (const auto& item : model[key]) {
      if ((by_time ? item.timestamp : item.version) <= point) expected = &item;
    }
    auto at = by_time ? ReadPoint::at_time(point) : ReadPoint::at_version(point);
    auto found = index.find(key, at);
    if (expected == nullptr) {
      CHECK(found.outcome == Lookup::absent);
    } else {
      REQUIRE(found.outcome == Lookup::found);
      CHECK(found.entry.version == expected->version);
      CHECK(found.entry.op == expected->op);
    }
  }
}
