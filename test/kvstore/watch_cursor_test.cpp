// Watch cursors (text form, canonical decoding, hostile input) and the topic index.
#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "common/bytes.hpp"
#include "common/crc32c.hpp"
#include "kvstore/watch_cursor.hpp"
#include "kvstore/watch_index.hpp"

namespace squall::kvstore {
namespace {

constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

// Independent encoder for hand-made byte strings: base64url without padding.
std::string to_base64url(const Bytes& bytes) {
  std::string text;
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    std::uint32_t v = (std::to_integer<std::uint32_t>(bytes[i]) << 16) |
                      (std::to_integer<std::uint32_t>(bytes[i + 1]) << 8) |
                      std::to_integer<std::uint32_t>(bytes[i + 2]);
    for (int shift = 18; shift >= 0; shift -= 6) text.push_back(kAlphabet[(v >> shift) & 63]);
  }
  std::size_t rest = bytes.size() - i;
  if (rest == 1) {
    std::uint32_t v = std::to_integer<std::uint32_t>(bytes[i]) << 16;
    text.push_back(kAlphabet[(v >> 18) & 63]);
    text.push_back(kAlphabet[(v >> 12) & 63]);
  } else if (rest == 2) {
    std::uint32_t v = (std::to_integer<std::uint32_t>(bytes[i]) << 16) |
                      (std::to_integer<std::uint32_t>(bytes[i + 1]) << 8);
    text.push_back(kAlphabet[(v >> 18) & 63]);
    text.push_back(kAlphabet[(v >> 12) & 63]);
    text.push_back(kAlphabet[(v >> 6) & 63]);
  }
  return text;
}

// Raw bytes given as small integers, followed by their CRC32C (little-endian).
std::string sealed(std::initializer_list<int> raw) {
  Bytes bytes;
  for (int b : raw) bytes.push_back(static_cast<std::byte>(b));
  ByteWriter(bytes).put(crc32c(bytes));
  return to_base64url(bytes);
}

Code decode_code(std::string_view text) {
  Result<WatchCursor> cursor = WatchCursor::decode(text);
  return cursor.status().code();
}

}  // namespace

TEST_CASE("Watch cursor round-trips through its text form", "[watch][cursor]") {
  std::mt19937_64 rng(7);
  for (int round = 0; round < 2000; ++round) {
    WatchCursor cursor;
    std::size_t shards = 1 + rng() % (round % 50 == 0 ? WatchCursor::kMaxShards : 8);
    for (std::size_t i = 0; i < shards; ++i) {
      auto shard = static_cast<std::uint32_t>(rng() % 4 == 0 ? rng() : rng() % 64);
      Version version = rng() % 3 == 0 ? rng() : rng() % 1000;
      if (cursor.positions().size() < WatchCursor::kMaxShards) cursor.set(ShardId{shard}, version);
    }
    std::string text = cursor.encode();
    REQUIRE(text.size() <= WatchCursor::kMaxTextBytes);
    REQUIRE(text.find_first_not_of(kAlphabet) == std::string::npos);
    Result<WatchCursor> decoded = WatchCursor::decode(text);
    REQUIRE(decoded.is_ok());
    REQUIRE(*decoded == cursor);
  }
}

TEST_CASE("Watch cursor extremes: max shard id, max version, most shards", "[watch][cursor]") {
  WatchCursor cursor;
  cursor.set(ShardId{0}, 0);
  cursor.set(ShardId{UINT32_MAX}, UINT64_MAX);
  REQUIRE(*WatchCursor::decode(cursor.encode()) == cursor);

  WatchCursor widest;
  for (std::uint32_t i = 0; i < WatchCursor::kMaxShards; ++i) {
    widest.set(ShardId{UINT32_MAX - i * 1000}, UINT64_MAX - i);
  }
  std::string text = widest.encode();
  REQUIRE(text.size() <= WatchCursor::kMaxTextBytes);
  REQUIRE(*WatchCursor::decode(text) == widest);
}

TEST_CASE("Watch cursor set, advance and get", "[watch][cursor]") {
  WatchCursor cursor;
  cursor.set(ShardId{3}, 10);
  cursor.set(ShardId{1}, 20);
  cursor.advance(ShardId{3}, 5);
  cursor.advance(ShardId{1}, 25);
  cursor.advance(ShardId{2}, 7);
  REQUIRE(cursor.get(ShardId{1}) == 25U);
  REQUIRE(cursor.get(ShardId{2}) == 7U);
  REQUIRE(cursor.get(ShardId{3}) == 10U);
  REQUIRE_FALSE(cursor.get(ShardId{4}));
  REQUIRE(cursor.positions().front().shard == ShardId{1});
}

TEST_CASE("Malformed watch cursors are invalid_argument", "[watch][cursor]") {
  WatchCursor cursor;
  cursor.set(ShardId{2}, 4294967301ULL);
  std::string good = cursor.encode();
  REQUIRE(decode_code(good) == Code::ok);

  // The byte grammar, hand-made: format 1, one shard (id 2, version 5).
  REQUIRE(decode_code(sealed({1, 1, 2, 5})) == Code::ok);
  REQUIRE(WatchCursor::decode(sealed({1, 1, 2, 5}))->get(ShardId{2}) == 5U);
  // The example of docs/watch.md: the encoder writes exactly the documented bytes.
  REQUIRE(good == sealed({1, 1, 2, 0x85, 0x80, 0x80, 0x80, 0x10}));
  // Two shards 1 and 3 (gap 1 after shard 1).
  REQUIRE(WatchCursor::decode(sealed({1, 2, 1, 9, 1, 8}))->get(ShardId{3}) == 8U);

  const std::vector<std::pair<std::string, std::string>> bad = {
      {"empty", ""},
      {"padding", good + "="},
      {"standard base64 characters", "+/+/+/+/"},
      {"space", good.substr(0, 4) + " " + good.substr(5)},
      {"impossible length", good + "A"},
      {"truncated", good.substr(0, good.size() - 2)},
      {"too short", sealed({1})},
      {"unknown format", sealed({2, 1, 2, 5})},
      {"format zero", sealed({0, 1, 2, 5})},
      {"no shards", sealed({1, 0, 0, 0})},
      {"fewer entries than counted", sealed({1, 3, 2, 5})},
      {"trailing bytes", sealed({1, 1, 2, 5, 0})},
      {"overlong count", sealed({1, 0x81, 0x00, 2, 5})},
      {"overlong version", sealed({1, 1, 2, 0x85, 0x00})},
      {"version over 64 bits",
       sealed({1, 1, 2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02})},
      {"varint of 11 bytes",
       sealed({1, 1, 2, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00})},
      {"shard id over 32 bits", sealed({1, 1, 0x80, 0x80, 0x80, 0x80, 0x10, 5})},
      {"second shard id over 32 bits",
       sealed({1, 2, 0xfe, 0xff, 0xff, 0xff, 0x0f, 1, 1, 1})},
      {"too many shards", sealed({1, 0x81, 0x08, 0, 0})},
      {"too long", std::string(WatchCursor::kMaxTextBytes + 4, 'A')},
  };
  for (const auto& [what, text] : bad) {
    INFO(what << ": '" << text << "'");
    REQUIRE(decode_code(text) == Code::invalid_argument);
  }

  // A non-canonical ending: the unused low bits of the last character are set.
  std::string noncanonical = good;
  std::size_t last = std::string_view(kAlphabet).find(noncanonical.back());
  if (good.size() % 4 != 0) {
    noncanonical.back() = kAlphabet[last | 1];
    REQUIRE(decode_code(noncanonical) == Code::invalid_argument);
  }
}

TEST_CASE("Mutated and random watch cursors never crash and decode canonically",
          "[watch][cursor]") {
  std::mt19937_64 rng(11);
  WatchCursor cursor;
  cursor.set(ShardId{0}, 4294967296ULL * 7 + 12);
  cursor.set(ShardId{5}, 99);
  const std::string good = cursor.encode();
  int accepted = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string text = good;
    switch (rng() % 4) {
      case 0:  // change characters
        for (int i = 0, n = 1 + static_cast<int>(rng() % 3); i < n; ++i) {
          text[rng() % text.size()] = kAlphabet[rng() % 64];
        }
        break;
      case 1:  // cut
        text.resize(rng() % text.size());
        break;
      case 2:  // insert
        text.insert(rng() % (text.size() + 1), 1, kAlphabet[rng() % 64]);
        break;
      default:  // random bytes of any value
        text.assign(rng() % 40, '\0');
        for (char& c : text) c = static_cast<char>(rng());
        break;
    }
    Result<WatchCursor> decoded = WatchCursor::decode(text);
    if (!decoded) {
      REQUIRE(decoded.status().code() == Code::invalid_argument);
      continue;
    }
    REQUIRE(decoded->encode() == text);  // only canonical texts are accepted
    if (text != good) ++accepted;
  }
  // Every change is caught (by the check, the grammar or canonical base64url).
  REQUIRE(accepted == 0);
}

namespace {

struct Member : TopicMember {
  int id = 0;
};

std::set<int> matches(TopicIndex& index, std::string_view key) {
  std::set<int> found;
  index.for_each_match(key, [&](TopicEntry& entry) {
    for (TopicMember* m : entry.members) REQUIRE(found.insert(static_cast<Member*>(m)->id).second);
  });
  return found;
}

}  // namespace

TEST_CASE("Topic index finds exactly the matching key and prefix topics", "[watch][index]") {
  std::mt19937_64 rng(3);
  auto random_text = [&](std::size_t max_length) {
    std::string text(rng() % (max_length + 1), 'a');
    for (char& c : text) c = static_cast<char>('a' + rng() % 3);
    return text;
  };
  TopicIndex index;
  std::vector<Member> members(400);
  std::vector<Topic> topics(members.size());
  std::vector<bool> indexed(members.size(), false);
  for (int round = 0; round < 3000; ++round) {
    std::size_t i = rng() % members.size();
    members[i].id = static_cast<int>(i);
    if (indexed[i]) {
      index.remove(topics[i], members[i]);
      indexed[i] = false;
    } else {
      topics[i] = rng() % 2 ? Topic::for_prefix(random_text(4)) : Topic::for_key(random_text(5));
      index.add(topics[i], members[i]);
      indexed[i] = true;
    }
    std::string key = random_text(6);
    std::set<int> expected;
    for (std::size_t j = 0; j < members.size(); ++j) {
      if (indexed[j] && topics[j].matches(key)) expected.insert(static_cast<int>(j));
    }
    REQUIRE(matches(index, key) == expected);
  }
  std::size_t count = static_cast<std::size_t>(std::count(indexed.begin(), indexed.end(), true));
  REQUIRE(index.member_count() == count);
  for (std::size_t i = 0; i < members.size(); ++i) {
    if (indexed[i]) index.remove(topics[i], members[i]);
  }
  REQUIRE(index.topic_count() == 0);
  REQUIRE(index.member_count() == 0);
  REQUIRE(matches(index, "abc").empty());
}

TEST_CASE("Topic index: empty prefix matches everything, a key only itself",
          "[watch][index]") {
  TopicIndex index;
  Member all, users, user42, exact;
  all.id = 1;
  users.id = 2;
  user42.id = 3;
  exact.id = 4;
  index.add(Topic::for_prefix(""), all);
  index.add(Topic::for_prefix("users/"), users);
  index.add(Topic::for_prefix("users/42"), user42);
  index.add(Topic::for_key("users/42"), exact);
  REQUIRE(matches(index, "users/42") == std::set<int>{1, 2, 3, 4});
  REQUIRE(matches(index, "users/421") == std::set<int>{1, 2, 3});
  REQUIRE(matches(index, "users/") == std::set<int>{1, 2});
  REQUIRE(matches(index, "user") == std::set<int>{1});
  REQUIRE(matches(index, std::string("users/42\0x", 10)) == std::set<int>{1, 2, 3});
  REQUIRE(index.topic_count() == 4);
}

}  // namespace squall::kvstore
