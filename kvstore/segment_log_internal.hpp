// SegmentLog's per-segment bookkeeping, shared by its implementation files only.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "kvstore/segment_log.hpp"

namespace squall::kvstore {

struct SegmentLog::Segment {
  Segment(std::string segment_name, Version first, std::shared_ptr<File> segment_file)
      : name(std::move(segment_name)), first_version(first), file(std::move(segment_file)) {}

  const std::string name;
  const Version first_version;
  // Shared so readers and compaction keep the file open while the table forgets it.
  const std::shared_ptr<File> file;
  std::uint64_t size_bytes = 0;  // bytes holding header and records; GUARDED_BY(table_mutex_)
  bool sealed = false;           // immutable from now on; GUARDED_BY(table_mutex_)
  std::atomic<std::uint64_t> garbage_bytes{0};
};

}  // namespace squall::kvstore
