// Unit tests of the request parsing functions (no server).
#include <catch2/catch.hpp>

#include "server/rest_parse.hpp"
#include "server/rest_response.hpp"

namespace squall::server {

TEST_CASE("split_target separates path and query") {
  REQUIRE(split_target("/v1/kv/a").path == "/v1/kv/a");
  REQUIRE(split_target("/v1/kv/a").query.empty());
  const Target target = split_target("/v1/kv?prefix=a?b&limit=1");
  REQUIRE(target.path == "/v1/kv");
  REQUIRE(target.query == "prefix=a?b&limit=1");
}

TEST_CASE("percent_decode: escapes, plus signs, malformed escapes") {
  REQUIRE(percent_decode("a%2Fb%20c", false).value() == "a/b c");
  REQUIRE(percent_decode("%e2%82%ac", false).value() == "\xE2\x82\xAC");
  REQUIRE(percent_decode("a+b", false).value() == "a+b");
  REQUIRE(percent_decode("a+b", true).value() == "a b");
  REQUIRE(percent_decode("%2B", true).value() == "+");
  REQUIRE(percent_decode("%00", false).value() == std::string(1, '\0'));
  for (const char* bad : {"%", "%4", "%zz", "a%g1", "%%"}) {
    CAPTURE(bad);
    REQUIRE(percent_decode(bad, false).status().code() == Code::invalid_argument);
  }
}

TEST_CASE("percent_encode round-trips through percent_decode") {
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  REQUIRE(percent_decode(percent_encode(all, false), false).value() == all);
  REQUIRE(percent_encode("a/b c", true) == "a/b%20c");
  REQUIRE(percent_encode("a/b", false) == "a%2Fb");
}

TEST_CASE("is_valid_utf8 rejects overlongs, surrogates, truncation and big code points") {
  REQUIRE(is_valid_utf8(""));
  REQUIRE(is_valid_utf8("plain"));
  REQUIRE(is_valid_utf8("\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80"));
  REQUIRE(is_valid_utf8("\xF4\x8F\xBF\xBF"));       // U+10FFFF
  REQUIRE_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));  // U+110000
  REQUIRE_FALSE(is_valid_utf8("\xC0\x80"));          // overlong NUL
  REQUIRE_FALSE(is_valid_utf8("\xE0\x80\xAF"));      // overlong
  REQUIRE_FALSE(is_valid_utf8("\xED\xA0\x80"));      // surrogate
  REQUIRE_FALSE(is_valid_utf8("\xE2\x82"));          // truncated
  REQUIRE_FALSE(is_valid_utf8("\x80"));              // stray continuation
  REQUIRE_FALSE(is_valid_utf8("\xFF"));
}

TEST_CASE("validate_key: size limit first, then emptiness, UTF-8 and controls") {
  REQUIRE(validate_key("users/42", 4096).is_ok());
  REQUIRE(validate_key(std::string(10, 'a'), 10).is_ok());
  REQUIRE(validate_key(std::string(11, 'a'), 10).code() == Code::out_of_range);
  REQUIRE(validate_key(std::string(11, '\x01'), 10).code() == Code::out_of_range);
  REQUIRE(validate_key("", 10).code() == Code::invalid_argument);
  REQUIRE(validate_key("\xFF", 10).code() == Code::invalid_argument);
  for (const std::string& bad : {std::string(1, '\0'), std::string("\x1F"), std::string("\x7F"),
                                std::string("\xC2\x80"), std::string("\xC2\x9F")}) {
    REQUIRE(validate_key("a" + bad, 10).code() == Code::invalid_argument);
  }
  REQUIRE(validate_key("a\xC2\xA0", 10).is_ok());
  REQUIRE(validate_key(" ", 10).is_ok());
}

TEST_CASE("parse_u64 takes digits only and checks overflow") {
  REQUIRE(parse_u64("0").value() == 0);
  REQUIRE(parse_u64("18446744073709551615").value() == ~std::uint64_t{0});
  for (const char* bad : {"", "-1", "+1", " 1", "1 ", "1.0", "0x10", "18446744073709551616",
                          "99999999999999999999", "000000000000000000001"}) {
    CAPTURE(bad);
    REQUIRE_FALSE(parse_u64(bad).is_ok());
  }
}

TEST_CASE("parse_query and Query: decoding, duplicates, limits, read points") {
  auto parameters = parse_query("prefix=a%2Fb+c&limit=5&&flag&start_after=");
  REQUIRE(parameters.is_ok());
  const Query query(parameters.value());
  REQUIRE(*query.text("prefix").value() == "a/b c");
  REQUIRE(*query.text("flag").value() == "");
  REQUIRE(*query.text("start_after").value() == "");
  REQUIRE_FALSE(query.text("missing").value().has_value());
  REQUIRE(query.limit(100, 10).value() == 5);
  REQUIRE(Query(parse_query("").value()).limit(100, 1000).value() == 100);
  REQUIRE_FALSE(Query(parse_query("limit=11").value()).limit(100, 10).is_ok());
  REQUIRE_FALSE(Query(parse_query("limit=0").value()).limit(100, 10).is_ok());
  REQUIRE_FALSE(Query(parse_query("a=1&a=2").value()).text("a").is_ok());
  REQUIRE_FALSE(parse_query("a=%zz").is_ok());
  std::string many;
  for (std::size_t i = 0; i <= kMaxQueryParameters; ++i) many += "p=1&";
  REQUIRE_FALSE(parse_query(many).is_ok());

  REQUIRE(Query(parse_query("").value()).read_point().value().kind == ReadPoint::Kind::latest);
  const ReadPoint version = Query(parse_query("version=7").value()).read_point().value();
  REQUIRE((version.kind == ReadPoint::Kind::version && version.value == 7));
  const ReadPoint at = Query(parse_query("at=9").value()).read_point().value();
  REQUIRE((at.kind == ReadPoint::Kind::time && at.value == 9));
  REQUIRE_FALSE(Query(parse_query("at=9&version=1").value()).read_point().is_ok());
  REQUIRE(Query(parse_query("consistency=stable").value()).consistency().value() ==
          Consistency::stable);
  REQUIRE_FALSE(Query(parse_query("consistency=x").value()).consistency().is_ok());
  REQUIRE(Query(parse_query("values=true").value()).flag("values", false).value());
  REQUIRE_FALSE(Query(parse_query("values=1").value()).flag("values", false).is_ok());
}

TEST_CASE("parse_precondition accepts the contract's forms only") {
  using Kind = Precondition::Kind;
  REQUIRE(parse_precondition("", false, "", false, true).value().kind == Kind::none);
  const Precondition version = parse_precondition("\"42\"", true, "", false, true).value();
  REQUIRE((version.kind == Kind::version_is && version.version == 42));
  REQUIRE(parse_precondition(" * ", true, "", false, true).value().kind == Kind::exists);
  REQUIRE(parse_precondition("", false, "*", true, true).value().kind == Kind::absent);
  REQUIRE_FALSE(parse_precondition("", false, "*", true, false).is_ok());
  REQUIRE_FALSE(parse_precondition("*", true, "*", true, true).is_ok());
  for (const char* bad : {"42", "\"\"", "\"4x\"", "W/\"4\"", "\"1\",\"2\"", "\"", "**"}) {
    CAPTURE(bad);
    REQUIRE_FALSE(parse_precondition(bad, true, "", false, true).is_ok());
  }
}

TEST_CASE("base64_encode follows RFC 4648") {
  REQUIRE(base64_encode("") == "");
  REQUIRE(base64_encode("f") == "Zg==");
  REQUIRE(base64_encode("fo") == "Zm8=");
  REQUIRE(base64_encode("foo") == "Zm9v");
  REQUIRE(base64_encode("foobar") == "Zm9vYmFy");
  REQUIRE(base64_encode(std::string("\xFF\xFE", 2)) == "//4=");
}

}  // namespace squall::server
