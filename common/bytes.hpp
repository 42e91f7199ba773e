// Byte buffers and a bounds-checked little-endian encoder/decoder for wire and disk formats.
//
// ByteReader never reads past its span: every get returns false / an error status on
// truncation, so a hostile or torn input is an error, never an out-of-bounds read.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "common/status.hpp"

namespace squall {

using Bytes = std::vector<std::byte>;

inline std::span<const std::byte> as_bytes(std::string_view text) {
  return {reinterpret_cast<const std::byte*>(text.data()), text.size()};
}
inline std::string_view as_string_view(std::span<const std::byte> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

class ByteWriter {
 public:
  explicit ByteWriter(Bytes& out) : out_(out) {}

  template <typename T>
    requires std::is_integral_v<T>
  void put(T value) {
    for (std::size_t i = 0; i < sizeof(T); ++i) {
      out_.push_back(static_cast<std::byte>(static_cast<std::uint64_t>(value) >> (8 * i)));
    }
  }
  void put_bytes(std::span<const std::byte> bytes) {
    out_.insert(out_.end(), bytes.begin(), bytes.end());
  }
  // u32 length followed by the bytes.
  void put_string(std::string_view text) {
    put(static_cast<std::uint32_t>(text.size()));
    put_bytes(as_bytes(text));
  }
  std::size_t size() const { return out_.size(); }

 private:
  Bytes& out_;
};

class ByteReader {
 public:
  explicit ByteReader(std::span<const std::byte> in) : in_(in) {}

  template <typename T>
    requires std::is_integral_v<T>
  bool get(T& value) {
    if (remaining() < sizeof(T)) return false;
    std::uint64_t accumulated = 0;
    for (std::size_t i = 0; i < sizeof(T); ++i) {
      accumulated |= static_cast<std::uint64_t>(in_[position_ + i]) << (8 * i);
    }
    value = static_cast<T>(accumulated);
    position_ += sizeof(T);
    return true;
  }
  bool get_bytes(std::size_t count, std::span<const std::byte>& bytes) {
    if (remaining() < count) return false;
    bytes = in_.subspan(position_, count);
    position_ += count;
    return true;
  }
  // u32 length then bytes; refuses lengths over `max_bytes`.
  bool get_string(std::string& text, std::size_t max_bytes) {
    std::uint32_t length = 0;
    std::span<const std::byte> bytes;
    if (!get(length) || length > max_bytes || !get_bytes(length, bytes)) return false;
    text.assign(as_string_view(bytes));
    return true;
  }
  std::size_t remaining() const { return in_.size() - position_; }
  std::size_t position() const { return position_; }

 private:
  std::span<const std::byte> in_;
  std::size_t position_ = 0;
};

}  // namespace squall
