// Helpers shared by the fuzz targets (docs/security.md, "Fuzzing").
//
// A target's input is raw bytes; many formats guard their bodies with a CRC (or a MAC) that
// random mutation almost never gets right, so targets that want to reach the decoding past
// the checksum recompute it first (a "fix-up") when the input asks for it. FUZZ_CHECK states
// a property of the code under test: it aborts (a crash libFuzzer reports with the input),
// in every build type.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>

#include "common/assert.hpp"
#include "common/bytes.hpp"
#include "common/log.hpp"

#define FUZZ_CHECK(condition, ...) SQUALL_ASSERT(condition, __VA_ARGS__)

namespace squall::fuzz {

inline std::span<const std::byte> input_bytes(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const std::byte*>(data), size};
}

inline std::string_view input_text(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

inline bool same_bytes(std::span<const std::byte> left, std::span<const std::byte> right) {
  return left.size() == right.size() &&
         (left.empty() || std::memcmp(left.data(), right.data(), left.size()) == 0);
}

// Little-endian fields inside a buffer being fixed up (bounds are the caller's to check).
inline std::uint32_t load_u32(std::span<const std::byte> bytes, std::size_t offset) {
  std::uint32_t value = 0;
  for (std::size_t i = 0; i < 4; ++i) {
    value |= static_cast<std::uint32_t>(bytes[offset + i]) << (8 * i);
  }
  return value;
}

// UTF-8 by the definition (RFC 3629): shortest forms only, no surrogates, at most U+10FFFF.
inline bool is_utf8(std::string_view text) {
  for (std::size_t i = 0; i < text.size();) {
    const auto lead = static_cast<unsigned char>(text[i]);
    std::size_t length = 0;
    std::uint32_t code = 0;
    if (lead < 0x80) { length = 1; code = lead; }
    else if ((lead & 0xE0) == 0xC0) { length = 2; code = lead & 0x1F; }
    else if ((lead & 0xF0) == 0xE0) { length = 3; code = lead & 0x0F; }
    else if ((lead & 0xF8) == 0xF0) { length = 4; code = lead & 0x07; }
    else return false;
    if (text.size() - i < length) return false;
    for (std::size_t k = 1; k < length; ++k) {
      const auto next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xC0) != 0x80) return false;
      code = (code << 6) | (next & 0x3F);
    }
    static constexpr std::uint32_t kMinimum[] = {0, 0, 0x80, 0x800, 0x10000};
    if (code < kMinimum[length] || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) {
      return false;
    }
    i += length;
  }
  return true;
}

// Fuzz targets log nothing: spdlog output would drown libFuzzer's and slow every run.
inline void silence_logs() {
  LogSettings settings;
  settings.level = "off";
  SQUALL_ASSERT(init_logging(settings).is_ok(), "cannot silence logging");
}

inline void store_u32(std::span<std::byte> bytes, std::size_t offset, std::uint32_t value) {
  for (std::size_t i = 0; i < 4; ++i) bytes[offset + i] = static_cast<std::byte>(value >> (8 * i));
}

}  // namespace squall::fuzz
