// Parsing the parts of a REST request: the target (path and query), percent-encoding, keys,
// numbers and conditional headers. Pure functions: no I/O, no state.
//
// Errors are Status values whose message is fit for the client; the router answers them 400
// (invalid_argument) or 414 (out_of_range: a key over the size limit).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.hpp"
#include "server/kv_backend.hpp"

namespace squall::server {

// "/v1/kv/a%2Fb?x=1" -> path "/v1/kv/a%2Fb" (still encoded), query "x=1" (no '?').
struct Target {
  std::string_view path;
  std::string_view query;
};
Target split_target(std::string_view target);

// Decodes %XX escapes. `plus_is_space`: '+' means ' ' (query strings, form encoding); in a
// path '+' is itself. Errors: a '%' not followed by two hex digits.
Result<std::string> percent_decode(std::string_view text, bool plus_is_space);

// Encodes every byte outside the unreserved set (A-Z a-z 0-9 - . _ ~) and '/' kept as is
// when `keep_slash`.
std::string percent_encode(std::string_view text, bool keep_slash);

// True when `text` is well-formed UTF-8 (no overlong forms, surrogates or code points above
// U+10FFFF).
bool is_valid_utf8(std::string_view text);

// Checks a decoded key: out_of_range when longer than max_key_bytes; invalid_argument when
// empty, not UTF-8, or containing a control character (U+0000-U+001F, U+007F-U+009F).
Status validate_key(std::string_view key, std::size_t max_key_bytes);

// A decimal unsigned 64-bit integer: digits only, no sign, no overflow.
Result<std::uint64_t> parse_u64(std::string_view text);

// The query string as decoded (name, value) pairs, in order. A parameter without '=' has an
// empty value. Errors: bad escapes; more than kMaxQueryParameters parameters.
constexpr std::size_t kMaxQueryParameters = 32;
using QueryParameters = std::vector<std::pair<std::string, std::string>>;
Result<QueryParameters> parse_query(std::string_view query);

// Looks parameters up by name; a name given twice is an error.
class Query {
 public:
  explicit Query(QueryParameters parameters) : parameters_(std::move(parameters)) {}

  // The value of `name`, if present.
  Result<std::optional<std::string>> text(std::string_view name) const;
  Result<std::optional<std::uint64_t>> number(std::string_view name) const;
  // "true" or "false"; absent: `fallback`.
  Result<bool> flag(std::string_view name, bool fallback) const;
  // `limit` in 1..max_limit; absent: `fallback`.
  Result<std::size_t> limit(std::size_t fallback, std::size_t max_limit) const;
  // `version=` or `at=` (not both); absent: latest.
  Result<ReadPoint> read_point() const;
  // `consistency=linearizable|stable`; absent: linearizable.
  Result<Consistency> consistency() const;

 private:
  QueryParameters parameters_;
};

// The precondition from If-Match / If-None-Match header values (empty: header absent).
// Accepted: If-Match: "<v>" or *; If-None-Match: * (only when `allow_if_none_match`).
// Both headers together, weak or listed ETags and other forms are errors.
Result<Precondition> parse_precondition(std::string_view if_match, bool has_if_match,
                                        std::string_view if_none_match, bool has_if_none_match,
                                        bool allow_if_none_match);

}  // namespace squall::server
