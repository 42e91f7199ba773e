#include <catch2/catch.hpp>

#include "common/bytes.hpp"

using namespace squall;

TEST_CASE("ByteWriter and ByteReader round-trip little-endian fields") {
  Bytes buffer;
  ByteWriter writer(buffer);
  writer.put<std::uint8_t>(0xab);
  writer.put<std::uint32_t>(0x01020304);
  writer.put<std::uint64_t>(0x1122334455667788ULL);
  writer.put_string("users/42");
  CHECK(buffer[1] == std::byte{0x04});  // little-endian

  ByteReader reader(buffer);
  std::uint8_t a = 0;
  std::uint32_t b = 0;
  std::uint64_t c = 0;
  std::string text;
  REQUIRE(reader.get(a));
  REQUIRE(reader.get(b));
  REQUIRE(reader.get(c));
  REQUIRE(reader.get_string(text, 100));
  CHECK(a == 0xab);
  CHECK(b == 0x01020304U);
  CHECK(c == 0x1122334455667788ULL);
  CHECK(text == "users/42");
  CHECK(reader.remaining() == 0);
}

TEST_CASE("ByteReader refuses truncated and oversized input") {
  Bytes buffer;
  ByteWriter writer(buffer);
  writer.put_string("0123456789");
  std::string text;
  CHECK_FALSE(ByteReader(buffer).get_string(text, 5));  // longer than allowed
  Bytes truncated(buffer.begin(), buffer.end() - 1);
  CHECK_FALSE(ByteReader(truncated).get_string(text, 100));
  std::uint64_t value = 0;
  CHECK_FALSE(ByteReader(std::span(buffer).first(3)).get(value));
}
