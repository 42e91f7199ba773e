#include "common/base64.hpp"

#include <array>
#include <cstdint>

namespace squall {
namespace {

constexpr std::string_view kBase64Alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr std::array<std::int8_t, 256> base64_table() {
  std::array<std::int8_t, 256> table{};
  for (auto& entry : table) entry = -1;
  for (std::size_t i = 0; i < kBase64Alphabet.size(); ++i) {
    table[static_cast<unsigned char>(kBase64Alphabet[i])] = static_cast<std::int8_t>(i);
  }
  return table;
}
constexpr auto kBase64Table = base64_table();

}  // namespace

std::string base64_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const auto word = static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i]) << 16 |
                                                 static_cast<unsigned char>(bytes[i + 1]) << 8 |
                                                 static_cast<unsigned char>(bytes[i + 2]));
    out += kBase64Alphabet[word >> 18 & 63];
    out += kBase64Alphabet[word >> 12 & 63];
    out += kBase64Alphabet[word >> 6 & 63];
    out += kBase64Alphabet[word & 63];
  }
  const std::size_t rest = bytes.size() - i;
  if (rest > 0) {
    std::uint32_t word = static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i]) << 16);
    if (rest == 2) {
      word |= static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i + 1]) << 8);
    }
    out += kBase64Alphabet[word >> 18 & 63];
    out += kBase64Alphabet[word >> 12 & 63];
    out += rest == 2 ? kBase64Alphabet[word >> 6 & 63] : '=';
    out += '=';
  }
  return out;
}

Result<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) return invalid_argument("base64: length not a multiple of 4");
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (std::size_t i = 0; i < text.size(); i += 4) {
    std::uint32_t word = 0;
    int padding = 0;
    for (std::size_t j = 0; j < 4; ++j) {
      const char c = text[i + j];
      const bool last_group = i + 4 == text.size();
      if (c == '=' && last_group && j >= 2 && (j == 3 || text[i + 3] == '=')) {
        ++padding;
        word <<= 6;
        continue;
      }
      const std::int8_t digit = kBase64Table[static_cast<unsigned char>(c)];
      if (digit < 0 || padding > 0) return invalid_argument("base64: bad character");
      word = word << 6 | static_cast<std::uint32_t>(digit);
    }
    out += static_cast<char>(word >> 16 & 0xff);
    if (padding < 2) out += static_cast<char>(word >> 8 & 0xff);
    if (padding < 1) out += static_cast<char>(word & 0xff);
  }
  return out;
}

}  // namespace squall
