#include "common/crc32c.hpp"

#include <array>
#include <cstring>

namespace squall {
namespace {

constexpr std::uint32_t kPolynomial = 0x82f63b78;  // reflected Castagnoli

constexpr std::array<std::uint32_t, 256> make_table() {
  std::array<std::uint32_t, 256> table{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t crc = i;
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ ((crc & 1U) ? kPolynomial : 0U);
    table[i] = crc;
  }
  return table;
}

constexpr auto kTable = make_table();

std::uint32_t extend_portable(std::uint32_t crc, const unsigned char* data, std::size_t size) {
  for (std::size_t i = 0; i < size; ++i) crc = kTable[(crc ^ data[i]) & 0xffU] ^ (crc >> 8);
  return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) std::uint32_t extend_sse42(std::uint32_t crc,
                                                             const unsigned char* data,
                                                             std::size_t size) {
  std::uint64_t crc64 = crc;
  while (size >= 8) {
    std::uint64_t word;
    std::memcpy(&word, data, 8);
    crc64 = __builtin_ia32_crc32di(crc64, word);
    data += 8;
    size -= 8;
  }
  auto crc32 = static_cast<std::uint32_t>(crc64);
  while (size-- > 0) crc32 = __builtin_ia32_crc32qi(crc32, *data++);
  return crc32;
}
#endif

}  // namespace

std::uint32_t crc32c_extend(std::uint32_t crc, std::span<const std::byte> data) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(data.data());
  crc = ~crc;
#if defined(__x86_64__)
  static const bool has_sse42 = __builtin_cpu_supports("sse4.2");
  crc = has_sse42 ? extend_sse42(crc, bytes, data.size()) : extend_portable(crc, bytes, data.size());
#else
  crc = extend_portable(crc, bytes, data.size());
#endif
  return ~crc;
}

}  // namespace squall
