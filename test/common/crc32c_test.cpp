#include <string>

#include <catch2/catch.hpp>

#include "common/bytes.hpp"
#include "common/crc32c.hpp"

using namespace squall;

TEST_CASE("CRC32C matches the standard check values") {
  CHECK(crc32c(as_bytes("123456789")) == 0xe3069283U);
  CHECK(crc32c(as_bytes("")) == 0U);
  std::string zeros(32, '\0');
  CHECK(crc32c(as_bytes(zeros)) == 0x8a9136aaU);  // RFC 3720 B.4
}

TEST_CASE("CRC32C extends incrementally over any split") {
  std::string text = "The quick brown fox jumps over the lazy dog, twice over.";
  std::uint32_t whole = crc32c(as_bytes(text));
  for (std::size_t split = 0; split <= text.size(); ++split) {
    std::uint32_t first = crc32c(as_bytes(std::string_view(text).substr(0, split)));
    CHECK(crc32c_extend(first, as_bytes(std::string_view(text).substr(split))) == whole);
  }
}
