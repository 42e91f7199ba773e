#include "config/units.hpp"

#include <array>
#include <charconv>
#include <limits>
#include <utility>

#include <fmt/format.h>

namespace squall::config {
namespace {

constexpr std::array<std::pair<std::string_view, std::uint64_t>, 5> kUnits = {{
    {"B", 1},
    {"KiB", std::uint64_t{1} << 10},
    {"MiB", std::uint64_t{1} << 20},
    {"GiB", std::uint64_t{1} << 30},
    {"TiB", std::uint64_t{1} << 40},
}};

constexpr std::string_view kUnitList = "B, KiB, MiB, GiB, TiB";

bool is_digit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

Result<std::uint64_t> parse_unsigned(std::string_view text) {
  if (!text.empty() && text.front() == '-') {
    return invalid_argument(fmt::format("must not be negative, got '{}'", text));
  }
  if (text.empty() || !is_digit(text.front())) {
    return invalid_argument(fmt::format("expected an unsigned integer, got '{}'", text));
  }
  std::uint64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error == std::errc::result_out_of_range) {
    return invalid_argument(fmt::format("'{}' is too large (at most {})", text,
                                        std::numeric_limits<std::uint64_t>::max()));
  }
  if (error != std::errc() || end != text.data() + text.size()) {
    return invalid_argument(fmt::format("expected an unsigned integer, got '{}'", text));
  }
  return value;
}

Result<std::uint64_t> parse_size(std::string_view text) {
  std::size_t digits = 0;
  while (digits < text.size() && is_digit(text[digits])) ++digits;
  if (digits > 0 && digits == text.size()) return parse_unsigned(text);  // no unit
  if (digits == 0) {
    if (text.starts_with('-')) return parse_unsigned(text);  // "must not be negative"
    return invalid_argument(fmt::format(
        "expected a size (an integer with an optional unit {}), got '{}'", kUnitList, text));
  }
  auto number = parse_unsigned(text.substr(0, digits));
  if (!number.is_ok()) return number.status();
  std::string_view unit = text.substr(digits);
  if (unit.front() == ' ') unit.remove_prefix(1);
  for (const auto& [unit_name, multiplier] : kUnits) {
    if (unit != unit_name) continue;
    if (*number > std::numeric_limits<std::uint64_t>::max() / multiplier) {
      return invalid_argument(fmt::format("size '{}' does not fit in 64 bits", text));
    }
    return *number * multiplier;
  }
  return invalid_argument(fmt::format(
      "unknown size unit '{}' in '{}' (allowed units: {}; powers of 1024)", unit, text,
      kUnitList));
}

std::string format_size(std::uint64_t bytes) {
  for (std::size_t i = kUnits.size() - 1; i > 0; --i) {
    const auto& [unit_name, multiplier] = kUnits[i];
    if (bytes != 0 && bytes % multiplier == 0) {
      return fmt::format("{}{}", bytes / multiplier, unit_name);
    }
  }
  return fmt::format("{}", bytes);
}

}  // namespace squall::config
