// ViewLog: the durable record of a node's membership history — every view it installed and
// every ragged trim it applied — so that a total restart can reload the last view and the
// trims of its shards (docs/core.md, "View change", byte layout there).
//
// The log is an append-only sequence of self-delimiting records, each with a CRC32C. A record
// is durable once append() returned ok (the file is fsync'd before it returns). Reading
// (open()) validates every record with bounded decoding; the first record that is short, has
// a bad magic, an oversized length or a bad CRC ends the log: it and everything after it are
// a torn tail, truncated away.
//
// Two stores implement the interface: FileViewLog (plain POSIX file, fsync) for real nodes and
// MemoryViewLog for simulations (a simulated disk; everything appended survives).
// Not thread-safe: the node's progress thread owns a log.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "common/bytes.hpp"
#include "common/ids.hpp"
#include "common/status.hpp"
#include "core/view.hpp"

namespace squall::core {

// Record kinds are on disk: never renumber.
enum class ViewLogKind : std::uint8_t { view = 1, trim = 2 };

inline constexpr std::uint32_t kViewLogMagic = 0x4C565153;  // "SQVL" little-endian
inline constexpr std::size_t kViewLogHeaderBytes = 16;
inline constexpr std::uint32_t kMaxViewLogBodyBytes = 4U << 20;
inline constexpr std::size_t kMaxHostBytes = 255;
// A trim names at most this many senders (a shard's members).
inline constexpr std::size_t kMaxTrimSenders = kMaxReplicasPerShard;

// An installed view, with its assignment so a reload can check it recomputes identically.
struct ViewRecord {
  ViewId id;
  std::vector<Member> members;
  ShardLayout layout;
  ShardAssignment assignment;
  bool operator==(const ViewRecord&) const = default;
  static ViewRecord of(const View& view);
};

// The ragged trim a member applied to `shard` of view `view` (slots per sender rank).
struct TrimRecord {
  ViewId view;
  ShardId shard;
  std::vector<std::uint64_t> trim;
  bool operator==(const TrimRecord&) const = default;
};

using ViewLogRecord = std::variant<ViewRecord, TrimRecord>;

// A view record alone (the body of a view log record, no header or CRC): how a leader hands
// a joiner the view that admits it and the one before it. The decoder is bounded (at most
// kMaxViewLogBodyBytes, every count and length checked before use), refuses trailing bytes,
// and validates the content as restore_view() does: corruption for anything invalid.
Bytes encode_view_record(const ViewRecord& record);
Result<ViewRecord> decode_view_record(std::span<const std::byte> bytes);
// The View a record describes, with its recorded assignment (View::restore).
Result<View> restore_view(const ViewRecord& record);

// One encoded record, header included.
Bytes encode_view_log_record(const ViewLogRecord& record);
// Decodes the record at the start of `bytes`; sets `consumed_bytes`. corruption for anything
// invalid or truncated (never reads outside `bytes`).
Result<ViewLogRecord> decode_view_log_record(std::span<const std::byte> bytes,
                                             std::size_t& consumed_bytes);
// Decodes a whole log image: every valid record up to the first invalid one. `valid_bytes`
// is the length of the valid prefix (the rest is a torn tail).
std::vector<ViewLogRecord> decode_view_log(std::span<const std::byte> bytes,
                                           std::size_t& valid_bytes);

class ViewLog {
 public:
  virtual ~ViewLog() = default;
  // Durable when it returns ok.
  virtual Status append(const ViewLogRecord& record) = 0;
  // Every record, oldest first (those found at open and those appended since).
  virtual const std::vector<ViewLogRecord>& records() const = 0;

  // The last view record, if any.
  std::optional<ViewRecord> last_view() const;
  // The last view record with an id below `view` (the view before it, for a member that
  // installed `view` through ViewManager), if any.
  std::optional<ViewRecord> view_before(ViewId view) const;
  // Trims logged for view `view`, in log order.
  std::vector<TrimRecord> trims_of(ViewId view) const;
};

class MemoryViewLog final : public ViewLog {
 public:
  Status append(const ViewLogRecord& record) override;
  const std::vector<ViewLogRecord>& records() const override { return records_; }

 private:
  std::vector<ViewLogRecord> records_;
};

class FileViewLog final : public ViewLog {
 public:
  // Opens (creating if absent) the log at `path`, reads and validates it, truncates a torn
  // tail. io_error when the file cannot be opened, read, truncated or synced.
  static Result<std::unique_ptr<FileViewLog>> open(const std::string& path);
  ~FileViewLog() override;
  FileViewLog(const FileViewLog&) = delete;
  FileViewLog& operator=(const FileViewLog&) = delete;

  Status append(const ViewLogRecord& record) override;
  const std::vector<ViewLogRecord>& records() const override { return records_; }
  // Bytes dropped as a torn tail at open.
  std::uint64_t truncated_bytes() const { return truncated_bytes_; }

 private:
  FileViewLog(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}

  int fd_;
  std::string path_;
  std::vector<ViewLogRecord> records_;
  std::uint64_t truncated_bytes_ = 0;
  bool broken_ = false;  // a failed append: later appends are refused
};

}  // namespace squall::core
