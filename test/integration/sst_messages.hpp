// Deterministic message streams for the multi-process SST/SMC and RDMC programs.
//
// Message `index` of sender `sender` under `seed` has a size and content that any process can
// recompute, so a receiver checks every message byte for byte without the sender's help, and
// the driver computes the checksum every receiver must report without receiving anything.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace squall::integration {

inline std::uint64_t mix64(std::uint64_t value) {
  value += 0x9E37'79B9'7F4A'7C15ULL;
  value = (value ^ (value >> 30)) * 0xBF58'476D'1CE4'E5B9ULL;
  value = (value ^ (value >> 27)) * 0x94D0'49BB'1331'11EBULL;
  return value ^ (value >> 31);
}

// The key that seeds one message's size and bytes.
inline std::uint64_t message_key(std::uint64_t seed, std::uint32_t sender, std::uint64_t index) {
  return mix64(mix64(seed) ^ mix64((std::uint64_t{sender} << 40) ^ index));
}

// Size of a message, uniform in [min_bytes, max_bytes].
inline std::size_t message_size(std::uint64_t seed, std::uint32_t sender, std::uint64_t index,
                                std::size_t min_bytes, std::size_t max_bytes) {
  if (max_bytes <= min_bytes) return min_bytes;
  std::uint64_t span = max_bytes - min_bytes + 1;
  return min_bytes + static_cast<std::size_t>(mix64(message_key(seed, sender, index) ^ 1) % span);
}

// The 8-byte word at word position `word` of a message.
inline std::uint64_t message_word(std::uint64_t key, std::uint64_t word) {
  return mix64(key + word * 0x9E37'79B9'7F4A'7C15ULL);
}

// Fills `out` with the message's bytes (its size is out.size()).
inline void fill_message(std::uint64_t seed, std::uint32_t sender, std::uint64_t index,
                         std::span<std::byte> out) {
  std::uint64_t key = message_key(seed, sender, index);
  for (std::size_t at = 0, word = 0; at < out.size(); at += 8, ++word) {
    std::uint64_t value = message_word(key, word);
    std::memcpy(out.data() + at, &value, std::min<std::size_t>(8, out.size() - at));
  }
}

// True when `bytes` is exactly message `index` of `sender` (size and content).
inline bool message_matches(std::uint64_t seed, std::uint32_t sender, std::uint64_t index,
                            std::size_t expected_size, std::span<const std::byte> bytes) {
  if (bytes.size() != expected_size) return false;
  std::uint64_t key = message_key(seed, sender, index);
  for (std::size_t at = 0, word = 0; at < bytes.size(); at += 8, ++word) {
    std::uint64_t value = message_word(key, word);
    if (std::memcmp(bytes.data() + at, &value, std::min<std::size_t>(8, bytes.size() - at)) !=
        0) {
      return false;
    }
  }
  return true;
}

// An order-sensitive checksum of a stream of delivered messages: FNV-1a-style chaining of
// (index, size, first 8 bytes, last 8 bytes) per message. Content is checked byte for byte on
// delivery; the checksum compares whole streams across processes cheaply.
class StreamChecksum {
 public:
  void add(std::uint64_t index, std::span<const std::byte> bytes) {
    std::uint64_t first = 0;
    std::uint64_t last = 0;
    std::memcpy(&first, bytes.data(), std::min<std::size_t>(8, bytes.size()));
    if (bytes.size() > 8) {
      std::size_t tail = std::min<std::size_t>(8, bytes.size() - 8);
      std::memcpy(&last, bytes.data() + bytes.size() - tail, tail);
    }
    add_parts(index, bytes.size(), first, last);
  }
  void add_parts(std::uint64_t index, std::uint64_t size, std::uint64_t first,
                 std::uint64_t last) {
    for (std::uint64_t part : {index, size, first, last}) {
      value_ = (value_ ^ mix64(part)) * 0x0000'0100'0000'01B3ULL;
    }
  }
  std::uint64_t value() const { return value_; }

 private:
  std::uint64_t value_ = 0xCBF2'9CE4'8422'2325ULL;
};

// Byte `at` of a message (little-endian words, as fill_message lays them out on x86).
inline std::uint64_t message_byte(std::uint64_t key, std::size_t at) {
  return (message_word(key, at / 8) >> (8 * (at % 8))) & 0xFF;
}

// The checksum a receiver must report after delivering messages [0, count) of `sender`.
inline std::uint64_t expected_checksum(std::uint64_t seed, std::uint32_t sender,
                                       std::uint64_t count, std::size_t min_bytes,
                                       std::size_t max_bytes) {
  StreamChecksum checksum;
  for (std::uint64_t index = 0; index < count; ++index) {
    std::size_t size = message_size(seed, sender, index, min_bytes, max_bytes);
    std::uint64_t key = message_key(seed, sender, index);
    std::uint64_t first = 0;
    for (std::size_t at = 0; at < std::min<std::size_t>(8, size); ++at) {
      first |= message_byte(key, at) << (8 * at);
    }
    std::uint64_t last = 0;
    std::size_t tail = size > 8 ? std::min<std::size_t>(8, size - 8) : 0;
    for (std::size_t i = 0; i < tail; ++i) {
      last |= message_byte(key, size - tail + i) << (8 * i);
    }
    checksum.add_parts(index, size, first, last);
  }
  return checksum.value();
}

}  // namespace squall::integration
