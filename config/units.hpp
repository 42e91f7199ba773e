// Size and integer notation used in configuration values (and in `--set` overrides).
//
// A size is a decimal integer, optionally followed by a binary unit: B, KiB, MiB, GiB, TiB
// (powers of 1024), with or without a space: "65536", "64KiB", "16 MiB". Decimal units
// (KB, MB) are refused so that nobody has to guess which one was meant.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.hpp"

namespace squall::config {

// Parses a plain unsigned decimal integer ("0", "1024"). No sign, no spaces, no base prefix.
Result<std::uint64_t> parse_unsigned(std::string_view text);

// Parses a size as above. Errors name the problem (unknown unit, overflow, negative).
Result<std::uint64_t> parse_size(std::string_view text);

// The shortest exact form: "16MiB", "1536KiB", "1000" (no unit when not a whole KiB).
std::string format_size(std::uint64_t bytes);

}  // namespace squall::config
