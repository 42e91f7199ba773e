#include <catch2/catch.hpp>

#include "config/units.hpp"
#include "test/config/test_util.hpp"

using namespace squall::config;
using namespace squall::config::testing;

TEST_CASE("sizes accept plain integers and binary units") {
  CHECK(*parse_size("0") == 0);
  CHECK(*parse_size("65536") == 65536);
  CHECK(*parse_size("512B") == 512);
  CHECK(*parse_size("64KiB") == 64 * kKiB);
  CHECK(*parse_size("16MiB") == 16 * kMiB);
  CHECK(*parse_size("16 MiB") == 16 * kMiB);
  CHECK(*parse_size("1GiB") == kGiB);
  CHECK(*parse_size("2TiB") == 2 * 1024 * kGiB);
}

TEST_CASE("sizes refuse decimal units, fractions, signs and overflow with the reason") {
  CHECK_THAT(parse_size("16MB").status().message(),
             Catch::Contains("unknown size unit 'MB'") &&
                 Catch::Contains("B, KiB, MiB, GiB, TiB"));
  CHECK_THAT(parse_size("1.5GiB").status().message(), Catch::Contains("unknown size unit '.5GiB'"));
  CHECK_THAT(parse_size("-4KiB").status().message(), Catch::Contains("must not be negative"));
  CHECK_THAT(parse_size("abc").status().message(), Catch::Contains("expected a size"));
  CHECK_THAT(parse_size("").status().message(), Catch::Contains("expected a size"));
  CHECK_THAT(parse_size("20000000TiB").status().message(),
             Catch::Contains("does not fit in 64 bits"));
  CHECK_THAT(parse_size("99999999999999999999").status().message(),
             Catch::Contains("too large"));
}

TEST_CASE("unsigned integers are plain decimal") {
  CHECK(*parse_unsigned("42") == 42);
  CHECK_FALSE(parse_unsigned("0x10").is_ok());
  CHECK_FALSE(parse_unsigned("+1").is_ok());
  CHECK_FALSE(parse_unsigned("1 ").is_ok());
  CHECK_FALSE(parse_unsigned("1e3").is_ok());
  CHECK_THAT(parse_unsigned("-1").status().message(), Catch::Contains("must not be negative"));
}

TEST_CASE("format_size picks the largest exact unit") {
  CHECK(format_size(0) == "0");
  CHECK(format_size(1000) == "1000");
  CHECK(format_size(1024) == "1KiB");
  CHECK(format_size(1536 * kKiB) == "1536KiB");
  CHECK(format_size(17 * kMiB) == "17MiB");
  CHECK(format_size(kGiB) == "1GiB");
  for (std::uint64_t value : {std::uint64_t{1}, 4096 + std::uint64_t{1}, 3 * kGiB, 5 * kMiB}) {
    CHECK(*parse_size(format_size(value)) == value);
  }
}

TEST_CASE("size keys accept units in the file") {
  auto config = load(minimal_with("multicast:\n"
                                  "  smc_payload_bytes: 4KiB\n"
                                  "  max_payload_bytes: 32 MiB\n"
                                  "  pinned_memory_budget_bytes: 2GiB\n"
                                  "limits:\n"
                                  "  max_value_bytes: 16777216\n"));
  REQUIRE(config.is_ok());
  CHECK(config->multicast.smc_payload_bytes == 4096);
  CHECK(config->multicast.max_payload_bytes == 32 * kMiB);
  CHECK(config->multicast.pinned_memory_budget_bytes == 2 * kGiB);
  CHECK(config->limits.max_value_bytes == 16 * kMiB);
}

TEST_CASE("count keys refuse units") {
  CHECK(load_error(minimal_with("multicast:\n  window: 16KiB\n")) ==
        "test.yaml:5:11: multicast.window: expected an unsigned integer, got '16KiB'");
}
