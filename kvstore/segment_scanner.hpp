// SegmentScanner: reads the records of one segment file in order, checking each fully
// (head, lengths, CRC). Used by recovery and compaction. Internal to kvstore/.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/bytes.hpp"
#include "kvstore/file.hpp"
#include "kvstore/record.hpp"

namespace squall::kvstore {

class SegmentScanner {
 public:
  enum class Step : std::uint8_t {
    record,  // head(), key(), record_bytes() and offset() describe a valid record
    end,     // the file ends exactly after the previous record
    defect,  // the bytes at offset() are not a valid record; reason() says why
  };

  // Starts at `start_offset` (after the segment header). `file_size_bytes` bounds every read.
  SegmentScanner(const File& file, std::uint64_t file_size_bytes, std::uint64_t start_offset,
                 std::uint64_t max_record_bytes);

  // Moves past the current record (if any) and checks the next one. Errors are read
  // failures of the file layer, not defects.
  Result<Step> next();

  std::uint64_t offset() const { return offset_; }
  const RecordHead& head() const { return head_; }
  std::string_view key() const;
  // The whole record's bytes (head .. value), valid until the next call.
  std::span<const std::byte> record_bytes() const;
  const std::string& reason() const { return reason_; }

 private:
  Result<std::span<const std::byte>> fetch(std::uint64_t offset, std::size_t count);
  Step defect(std::string reason);

  const File& file_;
  const std::uint64_t file_size_;
  const std::uint64_t max_record_bytes_;
  std::uint64_t offset_;
  std::uint64_t record_total_ = 0;  // 0 before the first record
  RecordHead head_;
  std::string reason_;
  Bytes buffer_;
  std::uint64_t buffer_start_ = 0;
  std::size_t buffer_size_ = 0;
};

// True when a complete record with a valid CRC starts anywhere in [from, file_size): then a
// defect before `from` is not a torn tail but damage in the middle of the log.
Result<bool> valid_record_after(const File& file, std::uint64_t from,
                                std::uint64_t file_size_bytes, std::uint64_t max_record_bytes);

}  // namespace squall::kvstore
