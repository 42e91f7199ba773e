#include <catch2/catch.hpp>

#include "sst/schema.hpp"

using namespace squall::sst;

namespace {
bool straddles(std::size_t offset, std::size_t bytes) {
  return offset / kCacheLineBytes != (offset + bytes - 1) / kCacheLineBytes;
}
}  // namespace

TEST_CASE("Schema aligns every field to 8 bytes and rounds rows to cache lines") {
  Schema schema;
  auto flag = schema.scalar<std::uint8_t>("flag");
  auto counter = schema.scalar<std::uint64_t>("counter");
  auto small = schema.array<std::uint8_t>("small", 3);
  auto words = schema.array<std::uint64_t>("words", 5);
  CHECK(flag.offset == 0);
  CHECK(counter.offset == 8);
  CHECK(small.offset == 16);
  CHECK(words.offset == 24);
  CHECK(schema.row_bytes() == 64);
  for (const FieldInfo& field : schema.fields()) CHECK(field.range.offset % 8 == 0);
}

TEST_CASE("Schema never lets a field unit straddle a cache line") {
  struct Pair {
    std::uint64_t a;
    std::uint64_t b;
  };
  struct Wide {
    std::uint64_t words[16];
  };
  Schema schema;
  schema.array<std::uint64_t>("pad", 7);         // ends at 56
  auto pair = schema.scalar<Pair>("pair");       // 16 bytes would cross 64: moves to 64
  CHECK(pair.offset == 64);
  CHECK_FALSE(straddles(pair.offset, sizeof(Pair)));
  auto wide = schema.scalar<Wide>("wide");       // larger than a line: starts on one
  CHECK(wide.offset % kCacheLineBytes == 0);
  auto pairs = schema.array<Pair>("pairs", 9);   // 16-byte elements never straddle
  for (std::size_t i = 0; i < pairs.count; ++i) {
    CHECK_FALSE(straddles(pairs.element_range(i).offset, sizeof(Pair)));
  }
  CHECK(schema.row_bytes() % kCacheLineBytes == 0);
  CHECK(schema.row_bytes() >= pairs.offset + 9 * sizeof(Pair));
}

TEST_CASE("Schema layout is a pure function of the field list") {
  auto build = [] {
    Schema schema;
    schema.scalar<std::uint32_t>("a");
    schema.array<std::uint64_t>("b", 11);
    schema.array<std::byte>("c", 300);
    schema.scalar<std::uint64_t>("d");
    return schema;
  };
  Schema first = build();
  Schema second = build();
  REQUIRE(first.fields().size() == second.fields().size());
  for (std::size_t i = 0; i < first.fields().size(); ++i) {
    CHECK(first.fields()[i].range.offset == second.fields()[i].range.offset);
  }
  CHECK(first.row_bytes() == second.row_bytes());
}
