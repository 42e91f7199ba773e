#include "tools/squallctl/format.hpp"

#include <charconv>
#include <ctime>
#include <limits>

#include <fmt/format.h>

namespace squall::ctl {

int exit_code_for_status(unsigned status) {
  switch (status) {
    case 404:
    case 410:
      return kExitNotFound;
    case 400:
    case 405:
    case 413:
    case 414:
    case 431:
      return kExitUsage;
    case 412:
      return kExitPrecondition;
    case 503:
      return kExitUnavailable;
    default:
      return kExitServerError;
  }
}

int exit_code_for(const Status& /*status*/) { return kExitUnavailable; }

std::string format_time_us(std::uint64_t timestamp_us) {
  const auto seconds = static_cast<std::time_t>(timestamp_us / 1000000);
  std::tm parts{};
  gmtime_r(&seconds, &parts);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z", parts.tm_year + 1900,
                     parts.tm_mon + 1, parts.tm_mday, parts.tm_hour, parts.tm_min,
                     parts.tm_sec, timestamp_us % 1000000);
}

Result<std::uint64_t> parse_version(std::string_view text) {
  std::uint64_t value = 0;
  const auto* end = text.data() + text.size();
  const auto [stop, error] = std::from_chars(text.data(), end, value);
  if (text.empty() || error != std::errc() || stop != end) {
    return invalid_argument(fmt::format("'{}' is not a version (decimal digits)", text));
  }
  return value;
}

namespace {

// Reads `count` digits at `text[at]` into `out`; false if they are not all digits.
bool digits(std::string_view text, std::size_t at, std::size_t count, int& out) {
  if (at + count > text.size()) return false;
  out = 0;
  for (std::size_t i = at; i < at + count; ++i) {
    if (text[i] < '0' || text[i] > '9') return false;
    out = out * 10 + (text[i] - '0');
  }
  return true;
}

Result<std::uint64_t> parse_rfc3339(std::string_view text) {
  const Status bad = invalid_argument(fmt::format(
      "'{}' is not a time (microseconds since the epoch, or YYYY-MM-DDTHH:MM:SS[.ffffff]Z)",
      text));
  std::tm parts{};
  int year = 0, month = 0;
  const bool shape = text.size() >= 20 && text[4] == '-' && text[7] == '-' &&
                     (text[10] == 'T' || text[10] == 't') && text[13] == ':' &&
                     text[16] == ':' && (text.back() == 'Z' || text.back() == 'z');
  if (!shape || !digits(text, 0, 4, year) || !digits(text, 5, 2, month) ||
      !digits(text, 8, 2, parts.tm_mday) || !digits(text, 11, 2, parts.tm_hour) ||
      !digits(text, 14, 2, parts.tm_min) || !digits(text, 17, 2, parts.tm_sec)) {
    return bad;
  }
  int micros = 0;
  const std::string_view fraction = text.substr(19, text.size() - 20);
  if (!fraction.empty()) {
    if (fraction[0] != '.' || fraction.size() < 2 || fraction.size() > 7) return bad;
    int value = 0;
    if (!digits(fraction, 1, fraction.size() - 1, value)) return bad;
    micros = value;
    for (std::size_t i = fraction.size() - 1; i < 6; ++i) micros *= 10;
  }
  if (year < 1970 || month < 1 || month > 12 || parts.tm_mday < 1 || parts.tm_mday > 31 ||
      parts.tm_hour > 23 || parts.tm_min > 59 || parts.tm_sec > 60) {
    return bad;
  }
  parts.tm_year = year - 1900;
  parts.tm_mon = month - 1;
  const std::time_t seconds = timegm(&parts);
  if (seconds < 0) return bad;
  return static_cast<std::uint64_t>(seconds) * 1000000 + static_cast<std::uint64_t>(micros);
}

}  // namespace

Result<std::uint64_t> parse_time_us(std::string_view text) {
  if (!text.empty() && text.find_first_not_of("0123456789") == std::string_view::npos) {
    return parse_version(text);
  }
  return parse_rfc3339(text);
}

bool is_utf8(std::string_view bytes) {
  std::size_t i = 0;
  while (i < bytes.size()) {
    const auto lead = static_cast<unsigned char>(bytes[i]);
    std::size_t length = 1;
    std::uint32_t code = lead;
    if (lead >= 0xF5 || (lead >= 0x80 && lead < 0xC2)) return false;
    if (lead >= 0xF0) {
      length = 4;
      code = lead & 0x07U;
    } else if (lead >= 0xE0) {
      length = 3;
      code = lead & 0x0FU;
    } else if (lead >= 0xC2) {
      length = 2;
      code = lead & 0x1FU;
    }
    if (i + length > bytes.size()) return false;
    for (std::size_t j = 1; j < length; ++j) {
      const auto next = static_cast<unsigned char>(bytes[i + j]);
      if ((next & 0xC0) != 0x80) return false;
      code = (code << 6) | (next & 0x3F);
    }
    const bool overlong = (length == 3 && code < 0x800) || (length == 4 && code < 0x10000);
    if (overlong || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return false;
    i += length;
  }
  return true;
}

bool is_printable_text(std::string_view bytes) {
  if (!is_utf8(bytes)) return false;
  for (const char c : bytes) {
    const auto byte = static_cast<unsigned char>(c);
    if ((byte < 0x20 && c != '\t' && c != '\n') || byte == 0x7F) return false;
  }
  return true;
}

}  // namespace squall::ctl
