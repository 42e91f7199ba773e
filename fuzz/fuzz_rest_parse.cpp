// Fuzz target: the pure parsing functions of the REST layer (server/rest_parse.hpp) on
// arbitrary text: percent-decoding, UTF-8 and key validation, numbers, query strings and the
// conditional headers.
// Properties: percent_encode then percent_decode gives the text back; a decoded text
// re-encodes and decodes to itself; is_valid_utf8 agrees with a plain reference decoder; a
// valid key is valid UTF-8 within the limit; a parsed number prints back as digits that parse
// to it; a parsed query has at most kMaxQueryParameters parameters and every accessor answers.
#include <string>

#include "fuzz/fuzz_util.hpp"
#include "server/rest_parse.hpp"

namespace {

using namespace squall;
using namespace squall::server;

void check_percent(std::string_view text) {
  for (bool keep_slash : {false, true}) {
    auto decoded = percent_decode(percent_encode(text, keep_slash), false);
    FUZZ_CHECK(decoded.is_ok() && decoded.value() == text, "encode/decode loses the text");
  }
  for (bool plus_is_space : {false, true}) {
    auto decoded = percent_decode(text, plus_is_space);
    if (!decoded.is_ok()) continue;
    auto again = percent_decode(percent_encode(decoded.value(), false), plus_is_space);
    FUZZ_CHECK(again.is_ok() && again.value() == decoded.value(), "decoded text round trip");
  }
}

void check_key(std::string_view text) {
  FUZZ_CHECK(is_valid_utf8(text) == fuzz::is_utf8(text), "is_valid_utf8 says {}",
             is_valid_utf8(text));
  Status valid = validate_key(text, 64);
  if (valid.is_ok()) {
    FUZZ_CHECK(!text.empty() && text.size() <= 64 && fuzz::is_utf8(text), "a bad key passes");
  } else {
    FUZZ_CHECK(valid.code() == Code::invalid_argument || valid.code() == Code::out_of_range,
               "key error code");
  }
}

void check_number(std::string_view text) {
  auto number = parse_u64(text);
  if (!number.is_ok()) return;
  FUZZ_CHECK(!text.empty() && text.find_first_not_of("0123456789") == std::string_view::npos,
             "a number with other characters: {}", text);
  auto again = parse_u64(std::to_string(number.value()));
  FUZZ_CHECK(again.is_ok() && again.value() == number.value(), "number round trip");
}

void check_query(std::string_view text) {
  auto parameters = parse_query(text);
  if (!parameters.is_ok()) return;
  FUZZ_CHECK(parameters.value().size() <= kMaxQueryParameters, "too many parameters");
  const Query query(std::move(parameters.value()));
  for (std::string_view name : {"version", "at", "limit", "prefix", "values"}) {
    (void)query.text(name);
    (void)query.number(name);
    (void)query.flag(name, false);
  }
  auto limit = query.limit(10, 50);
  if (limit.is_ok()) FUZZ_CHECK(limit.value() >= 1 && limit.value() <= 50, "limit range");
  (void)query.read_point();
  (void)query.consistency();
}

void check_precondition(std::string_view text, std::uint8_t flags) {
  const auto cut = text.find('\n');
  const std::string_view if_match = text.substr(0, cut);
  const std::string_view if_none_match =
      cut == std::string_view::npos ? std::string_view() : text.substr(cut + 1);
  auto precondition = parse_precondition(if_match, (flags & 2) != 0, if_none_match,
                                         (flags & 4) != 0, (flags & 8) != 0);
  if (!precondition.is_ok()) return;
  if (precondition.value().kind == Precondition::Kind::absent) {
    FUZZ_CHECK((flags & 8) != 0 && (flags & 4) != 0, "If-None-Match where not allowed");
  }
}

}  // namespace

// Input: a flags byte (for parse_precondition), then the text every function is given.
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::string_view text = fuzz::input_text(data + 1, size - 1);
  const Target target = split_target(text);
  FUZZ_CHECK(target.path.size() + target.query.size() <= text.size(), "target split");
  check_percent(text);
  check_key(text);
  check_number(text);
  check_query(text);
  check_query(target.query);
  check_precondition(text, data[0]);
  return 0;
}
