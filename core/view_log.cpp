#include "core/view_log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "common/assert.hpp"
#include "common/crc32c.hpp"

namespace squall::core {

namespace {

void put_view(ByteWriter& out, const ViewRecord& view) {
  out.put(view.id.value);
  out.put(view.layout.shards);
  out.put(view.layout.replicas_per_shard);
  out.put(static_cast<std::uint32_t>(view.members.size()));
  for (const Member& member : view.members) {
    SQUALL_ASSERT(member.address.host.size() <= kMaxHostBytes, "host name too long to log");
    SQUALL_ASSERT(member.rest.host.size() <= kMaxHostBytes, "REST host name too long to log");
    out.put(member.id.value);
    out.put(member.address.port);
    out.put(static_cast<std::uint16_t>(member.address.host.size()));
    out.put_bytes(as_bytes(member.address.host));
    out.put(member.membership_port);
    out.put(member.rest.port);
    out.put(static_cast<std::uint16_t>(member.rest.host.size()));
    out.put_bytes(as_bytes(member.rest.host));
  }
  out.put(static_cast<std::uint32_t>(view.assignment.shards.size()));
  for (const auto& shard : view.assignment.shards) {
    out.put(static_cast<std::uint32_t>(shard.size()));
    for (NodeId node : shard) out.put(node.value);
  }
  out.put(static_cast<std::uint32_t>(view.assignment.under_replicated.size()));
  for (ShardId shard : view.assignment.under_replicated) out.put(shard.value);
}

void put_trim(ByteWriter& out, const TrimRecord& trim) {
  SQUALL_ASSERT(trim.trim.size() <= kMaxTrimSenders, "trim of {} senders", trim.trim.size());
  out.put(trim.view.value);
  out.put(trim.shard.value);
  out.put(static_cast<std::uint32_t>(trim.trim.size()));
  for (std::uint64_t slots : trim.trim) out.put(slots);
}

bool get_host(ByteReader& in, std::string& host) {
  std::uint16_t host_bytes = 0;
  std::span<const std::byte> bytes;
  if (!in.get(host_bytes) || host_bytes > kMaxHostBytes || !in.get_bytes(host_bytes, bytes)) {
    return false;
  }
  host.assign(as_string_view(bytes));
  return true;
}

bool get_member(ByteReader& in, Member& member) {
  return in.get(member.id.value) && in.get(member.address.port) &&
         get_host(in, member.address.host) && in.get(member.membership_port) &&
         in.get(member.rest.port) && get_host(in, member.rest.host);
}

bool get_ids(ByteReader& in, std::uint32_t max_count, std::vector<std::uint32_t>& ids) {
  std::uint32_t count = 0;
  if (!in.get(count) || count > max_count || count * 4ULL > in.remaining()) return false;
  ids.resize(count);
  for (std::uint32_t& id : ids) {
    if (!in.get(id)) return false;
  }
  return true;
}

Result<ViewRecord> get_view(ByteReader& in) {
  ViewRecord view;
  std::uint32_t members = 0;
  if (!in.get(view.id.value) || !in.get(view.layout.shards) ||
      !in.get(view.layout.replicas_per_shard) || !in.get(members) ||
      !view.layout.validate().is_ok() || members == 0 || members > kMaxViewMembers) {
    return corruption("view record: bad id, layout or member count");
  }
  view.members.resize(members);
  for (Member& member : view.members) {
    if (!get_member(in, member)) return corruption("view record: bad member");
  }
  std::uint32_t shards = 0;
  if (!in.get(shards) || shards != view.layout.shards) {
    return corruption("view record: assignment does not match the layout");
  }
  view.assignment.shards.resize(shards);
  std::vector<std::uint32_t> ids;
  for (auto& shard : view.assignment.shards) {
    if (!get_ids(in, kMaxReplicasPerShard, ids)) return corruption("view record: bad shard");
    for (std::uint32_t id : ids) shard.emplace_back(id);
  }
  if (!get_ids(in, kMaxShards, ids)) return corruption("view record: bad under-replicated");
  for (std::uint32_t id : ids) view.assignment.under_replicated.emplace_back(id);
  return view;
}

Result<TrimRecord> get_trim(ByteReader& in) {
  TrimRecord trim;
  std::uint32_t senders = 0;
  if (!in.get(trim.view.value) || !in.get(trim.shard.value) || !in.get(senders) ||
      senders == 0 || senders > kMaxTrimSenders || senders * 8ULL != in.remaining()) {
    return corruption("trim record: bad header or sender count");
  }
  trim.trim.resize(senders);
  for (std::uint64_t& slots : trim.trim) {
    if (!in.get(slots)) return corruption("trim record: truncated");
  }
  return trim;
}

Status errno_status(const std::string& what, const std::string& path) {
  return io_error(fmt::format("{} {}: {}", what, path, std::strerror(errno)));
}

}  // namespace

ViewRecord ViewRecord::of(const View& view) {
  return {view.id(), view.members(), view.layout(), view.assignment()};
}

Bytes encode_view_record(const ViewRecord& record) {
  Bytes body;
  ByteWriter out(body);
  put_view(out, record);
  SQUALL_ASSERT(body.size() <= kMaxViewLogBodyBytes, "view record of {} bytes", body.size());
  return body;
}

Result<ViewRecord> decode_view_record(std::span<const std::byte> bytes) {
  if (bytes.size() > kMaxViewLogBodyBytes) return corruption("view record: too long");
  ByteReader in(bytes);
  Result<ViewRecord> record = get_view(in);
  if (!record) return record.status();
  if (in.remaining() != 0) return corruption("view record: trailing bytes");
  Result<View> view = restore_view(*record);
  if (!view) return corruption("view record: " + view.status().message());
  return record;
}

Result<View> restore_view(const ViewRecord& record) {
  return View::restore(record.id, record.members, record.layout, record.assignment);
}

Bytes encode_view_log_record(const ViewLogRecord& record) {
  Bytes body;
  ByteWriter body_out(body);
  auto kind = ViewLogKind::view;
  if (const auto* view = std::get_if<ViewRecord>(&record)) {
    put_view(body_out, *view);
  } else {
    kind = ViewLogKind::trim;
    put_trim(body_out, std::get<TrimRecord>(record));
  }
  SQUALL_ASSERT(body.size() <= kMaxViewLogBodyBytes, "view log record of {} bytes", body.size());
  Bytes out;
  ByteWriter writer(out);
  writer.put(kViewLogMagic);
  writer.put(static_cast<std::uint8_t>(kind));
  for (int i = 0; i < 3; ++i) writer.put(std::uint8_t{0});
  writer.put(static_cast<std::uint32_t>(body.size()));
  std::uint32_t crc = crc32c_extend(crc32c(std::span(out).subspan(4, 8)), body);
  writer.put(crc);
  writer.put_bytes(body);
  return out;
}

Result<ViewLogRecord> decode_view_log_record(std::span<const std::byte> bytes,
                                             std::size_t& consumed_bytes) {
  ByteReader header(bytes);
  std::uint32_t magic = 0;
  std::uint8_t kind = 0;
  std::uint8_t reserved[3] = {};
  std::uint32_t length = 0;
  std::uint32_t crc = 0;
  if (!header.get(magic) || !header.get(kind) || !header.get(reserved[0]) ||
      !header.get(reserved[1]) || !header.get(reserved[2]) || !header.get(length) ||
      !header.get(crc)) {
    return corruption("view log: truncated header");
  }
  if (magic != kViewLogMagic || reserved[0] != 0 || reserved[1] != 0 || reserved[2] != 0 ||
      length > kMaxViewLogBodyBytes || length > header.remaining()) {
    return corruption("view log: bad magic, reserved bytes or length");
  }
  std::span<const std::byte> body = bytes.subspan(kViewLogHeaderBytes, length);
  if (crc32c_extend(crc32c(bytes.subspan(4, 8)), body) != crc) {
    return corruption("view log: CRC mismatch");
  }
  ByteReader in(body);
  consumed_bytes = kViewLogHeaderBytes + length;
  if (kind == static_cast<std::uint8_t>(ViewLogKind::view)) {
    Result<ViewRecord> view = get_view(in);
    if (!view) return view.status();
    if (in.remaining() != 0) return corruption("view record: trailing bytes");
    return ViewLogRecord(std::move(*view));
  }
  if (kind == static_cast<std::uint8_t>(ViewLogKind::trim)) {
    Result<TrimRecord> trim = get_trim(in);
    if (!trim) return trim.status();
    return ViewLogRecord(std::move(*trim));
  }
  return corruption(fmt::format("view log: unknown record kind {}", kind));
}

std::vector<ViewLogRecord> decode_view_log(std::span<const std::byte> bytes,
                                           std::size_t& valid_bytes) {
  std::vector<ViewLogRecord> records;
  valid_bytes = 0;
  while (valid_bytes < bytes.size()) {
    std::size_t consumed = 0;
    Result<ViewLogRecord> record = decode_view_log_record(bytes.subspan(valid_bytes), consumed);
    if (!record) break;
    records.push_back(std::move(*record));
    valid_bytes += consumed;
  }
  return records;
}

std::optional<ViewRecord> ViewLog::last_view() const {
  for (auto it = records().rbegin(); it != records().rend(); ++it) {
    if (const auto* view = std::get_if<ViewRecord>(&*it)) return *view;
  }
  return std::nullopt;
}

std::optional<ViewRecord> ViewLog::view_before(ViewId view) const {
  for (auto it = records().rbegin(); it != records().rend(); ++it) {
    const auto* record = std::get_if<ViewRecord>(&*it);
    if (record != nullptr && record->id < view) return *record;
  }
  return std::nullopt;
}

std::vector<TrimRecord> ViewLog::trims_of(ViewId view) const {
  std::vector<TrimRecord> trims;
  for (const ViewLogRecord& record : records()) {
    const auto* trim = std::get_if<TrimRecord>(&record);
    if (trim != nullptr && trim->view == view) trims.push_back(*trim);
  }
  return trims;
}

Status MemoryViewLog::append(const ViewLogRecord& record) {
  // Round-trip through the encoding so simulations exercise the format.
  Bytes encoded = encode_view_log_record(record);
  std::size_t consumed = 0;
  Result<ViewLogRecord> decoded = decode_view_log_record(encoded, consumed);
  SQUALL_ASSERT(decoded.is_ok() && consumed == encoded.size() && *decoded == record,
                "view log record does not round-trip");
  records_.push_back(record);
  return Status::ok();
}

Result<std::unique_ptr<FileViewLog>> FileViewLog::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return errno_status("cannot open view log", path);
  std::unique_ptr<FileViewLog> log(new FileViewLog(fd, path));
  Bytes image;
  std::byte buffer[64 * 1024];
  for (;;) {
    ssize_t got = ::read(fd, buffer, sizeof(buffer));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return errno_status("cannot read view log", path);
    if (got == 0) break;
    image.insert(image.end(), buffer, buffer + got);
  }
  std::size_t valid = 0;
  log->records_ = decode_view_log(image, valid);
  if (valid != image.size()) {
    log->truncated_bytes_ = image.size() - valid;
    if (::ftruncate(fd, static_cast<off_t>(valid)) != 0 || ::fsync(fd) != 0) {
      return errno_status("cannot truncate the torn tail of view log", path);
    }
  }
  if (::lseek(fd, static_cast<off_t>(valid), SEEK_SET) < 0) {
    return errno_status("cannot seek view log", path);
  }
  return log;
}

FileViewLog::~FileViewLog() { ::close(fd_); }

Status FileViewLog::append(const ViewLogRecord& record) {
  if (broken_) return io_error("view log " + path_ + " failed earlier; refusing appends");
  Bytes encoded = encode_view_log_record(record);
  std::size_t written = 0;
  while (written < encoded.size()) {
    ssize_t put = ::write(fd_, encoded.data() + written, encoded.size() - written);
    if (put < 0 && errno == EINTR) continue;
    if (put < 0) {
      broken_ = true;
      return errno_status("cannot write view log", path_);
    }
    written += static_cast<std::size_t>(put);
  }
  if (::fsync(fd_) != 0) {
    broken_ = true;  // after a failed fsync the page cache state is unknown
    return errno_status("cannot fsync view log", path_);
  }
  records_.push_back(record);
  return Status::ok();
}

}  // namespace squall::core
