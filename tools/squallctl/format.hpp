// Formatting helpers of squallctl: exit codes, times, base64, text checks.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/base64.hpp"
#include "common/status.hpp"

namespace squall::ctl {

// squallctl's exit codes (documented in --help and docs/operations.md). Do not renumber:
// scripts test them.
enum ExitCode : int {
  kExitOk = 0,
  kExitNotFound = 1,      // 404, and 410 (no longer retained)
  kExitUsage = 2,         // bad command line, or the server refused the request as malformed
  kExitPrecondition = 3,  // 412: a condition (--if-version, --if-absent, --if-exists) failed
  kExitUnavailable = 4,   // 503, no endpoint reachable, timeout
  kExitServerError = 5,   // any other error answer
};

// The exit code for an HTTP status that is not a success.
int exit_code_for_status(unsigned status);
// The exit code for a transport failure (kExitUnavailable).
int exit_code_for(const Status& status);

// Microseconds since the Unix epoch as "2026-01-02T03:04:05.123456Z" (UTC).
std::string format_time_us(std::uint64_t timestamp_us);
// A time for --at: microseconds since the epoch (digits only) or an RFC 3339 UTC time
// "YYYY-MM-DDTHH:MM:SS[.ffffff]Z". Errors: invalid_argument.
Result<std::uint64_t> parse_time_us(std::string_view text);
// A version: decimal digits, at most 2^64-1. Errors: invalid_argument.
Result<std::uint64_t> parse_version(std::string_view text);

using ::squall::base64_decode;  // common/base64.hpp
using ::squall::base64_encode;

// True when `bytes` is valid UTF-8 (JSON strings must be).
bool is_utf8(std::string_view bytes);
// True when `bytes` is UTF-8 without control characters other than tab and newline, so it
// can be printed on a terminal as it is.
bool is_printable_text(std::string_view bytes);

}  // namespace squall::ctl
