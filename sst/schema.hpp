// Row layout of a shared-state table.
//
// A Schema is a fixed list of typed fields, built once; every row of the table has the same
// layout. Fields are trivially copyable scalars or fixed-length arrays of them. Layout rules
// (asserted): every field starts 8-byte aligned; a scalar never straddles a 64-byte cache line;
// array elements never straddle a line; the row size is a multiple of 64 so rows start on
// lines. Together with the transport's torn-free aligned 8-byte words this means a reader
// never sees half of a counter.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "common/assert.hpp"

namespace squall::sst {

constexpr std::size_t kCacheLineBytes = 64;
constexpr std::size_t kFieldAlignBytes = 8;

// A byte range inside a row.
struct RowRange {
  std::size_t offset = 0;
  std::size_t length = 0;
};

template <typename T>
struct Scalar {
  std::size_t offset = 0;
  RowRange range() const { return {offset, sizeof(T)}; }
};

template <typename T>
struct Array {
  std::size_t offset = 0;
  std::size_t count = 0;
  RowRange range() const { return {offset, count * sizeof(T)}; }
  RowRange element_range(std::size_t index) const {
    SQUALL_ASSERT(index < count, "array index {} out of {}", index, count);
    return {offset + index * sizeof(T), sizeof(T)};
  }
};

struct FieldInfo {
  std::string name;
  RowRange range;
};

class Schema {
 public:
  template <typename T>
  Scalar<T> scalar(std::string name) {
    check_type<T>();
    return Scalar<T>{place(std::move(name), sizeof(T), sizeof(T))};
  }

  template <typename T>
  Array<T> array(std::string name, std::size_t count) {
    check_type<T>();
    SQUALL_ASSERT(count > 0, "array field '{}' needs at least one element", name);
    SQUALL_ASSERT(kCacheLineBytes % sizeof(T) == 0 || sizeof(T) % kCacheLineBytes == 0,
                  "array element of {} bytes would straddle cache lines", sizeof(T));
    return Array<T>{place(std::move(name), count * sizeof(T), sizeof(T)), count};
  }

  // Bytes per row: the end of the last field rounded up to a cache line.
  std::size_t row_bytes() const;
  const std::vector<FieldInfo>& fields() const { return fields_; }

 private:
  template <typename T>
  static void check_type() {
    static_assert(std::is_trivially_copyable_v<T>, "SST fields must be trivially copyable");
  }
  // Places a field of `bytes` whose unit of atomicity is `unit_bytes`; returns its offset.
  std::size_t place(std::string name, std::size_t bytes, std::size_t unit_bytes);

  std::vector<FieldInfo> fields_;
  std::size_t end_ = 0;
};

}  // namespace squall::sst
