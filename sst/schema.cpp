#include "sst/schema.hpp"

#include <algorithm>

namespace squall::sst {
namespace {

std::size_t round_up(std::size_t value, std::size_t multiple) {
  return (value + multiple - 1) / multiple * multiple;
}

}  // namespace

std::size_t Schema::place(std::string name, std::size_t bytes, std::size_t unit_bytes) {
  std::size_t offset = round_up(end_, kFieldAlignBytes);
  // A unit (scalar or array element) that would cross a line moves to the next line; units
  // larger than a line start on one.
  std::size_t line_offset = offset % kCacheLineBytes;
  if (unit_bytes > kCacheLineBytes || line_offset + unit_bytes > kCacheLineBytes) {
    if (line_offset != 0) offset = round_up(offset, kCacheLineBytes);
  }
  SQUALL_ASSERT(offset % kFieldAlignBytes == 0, "field '{}' misaligned", name);
  if (unit_bytes <= kCacheLineBytes) {
    SQUALL_ASSERT(offset % kCacheLineBytes + unit_bytes <= kCacheLineBytes ||
                      kCacheLineBytes % unit_bytes == 0,
                  "field '{}' straddles a cache line", name);
  }
  fields_.push_back({std::move(name), {offset, bytes}});
  end_ = offset + bytes;
  return offset;
}

std::size_t Schema::row_bytes() const {
  return std::max(round_up(end_, kCacheLineBytes), kCacheLineBytes);
}

}  // namespace squall::sst
