#include "file_log_machine.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>

#include "common/assert.hpp"
#include "common/bytes.hpp"
#include "common/crc32c.hpp"

namespace squall::testing {
namespace {

constexpr std::size_t kRecordHeaderBytes = 24;

Bytes encode(const core::LoggedUpdate& update) {
  Bytes out;
  ByteWriter writer(out);
  writer.put(update.version);
  writer.put(update.timestamp);
  writer.put(update.sender.value);
  writer.put(static_cast<std::uint32_t>(update.payload.size()));
  writer.put_bytes(update.payload);
  return out;
}

std::uint64_t chain(std::uint64_t checksum, const core::LoggedUpdate& update) {
  std::uint64_t mixed = checksum * 1099511628211ULL ^ update.version;
  mixed = mixed * 1099511628211ULL ^ update.timestamp;
  return mixed * 1099511628211ULL ^ crc32c(update.payload);
}

void write_all(int fd, const Bytes& bytes) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    ssize_t wrote = ::write(fd, bytes.data() + done, bytes.size() - done);
    SQUALL_ASSERT(wrote > 0, "test log write failed");
    done += static_cast<std::size_t>(wrote);
  }
}

}  // namespace

FileLogMachine::FileLogMachine(std::string path) : path_(std::move(path)) {
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  SQUALL_ASSERT(fd_ >= 0, "cannot open test log {}", path_);
  reload();
  synced_ = sync_target_ = applied_;
  syncer_ = std::thread([this] { sync_loop(); });
}

FileLogMachine::~FileLogMachine() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  syncer_.join();
  if (fd_ >= 0) ::close(fd_);
}

void FileLogMachine::sync_loop() {
  std::unique_lock lock(mutex_);
  while (true) {
    wake_.wait(lock, [this] { return stopping_ || sync_target_ > synced_; });
    if (stopping_) return;
    Version target = sync_target_;
    lock.unlock();
    SQUALL_ASSERT(::fdatasync(fd_) == 0, "fdatasync test log");
    lock.lock();
    synced_ = target;
  }
}

void FileLogMachine::reload() {
  Bytes image;
  std::byte buffer[65536];
  ssize_t got = 0;
  ::lseek(fd_, 0, SEEK_SET);
  while ((got = ::pread(fd_, buffer, sizeof buffer, static_cast<off_t>(image.size()))) > 0) {
    image.insert(image.end(), buffer, buffer + got);
  }
  ByteReader reader(image);
  std::size_t valid = 0;
  while (reader.remaining() >= kRecordHeaderBytes) {
    core::LoggedUpdate update;
    std::uint32_t length = 0;
    std::span<const std::byte> payload;
    if (!reader.get(update.version) || !reader.get(update.timestamp) ||
        !reader.get(update.sender.value) || !reader.get(length) ||
        !reader.get_bytes(length, payload)) {
      break;
    }
    update.payload.assign(payload.begin(), payload.end());
    checksum_ = chain(checksum_, update);
    applied_ = update.version;
    log_.push_back(std::move(update));
    valid = reader.position();
  }
  SQUALL_ASSERT(::ftruncate(fd_, static_cast<off_t>(valid)) == 0, "truncate test log");
  persisted_ = applied_;
}

void FileLogMachine::append(const core::LoggedUpdate& update) {
  write_all(fd_, encode(update));
  checksum_ = chain(checksum_, update);
  applied_ = update.version;
  log_.push_back(update);
  {
    std::lock_guard lock(mutex_);
    sync_target_ = applied_;
  }
  wake_.notify_one();
}

Status FileLogMachine::apply(const core::DeliveredUpdate& update) {
  SQUALL_ASSERT(update.version > applied_, "versions must increase");
  append({update.version, update.timestamp, update.sender,
          Bytes(update.payload.begin(), update.payload.end())});
  return Status::ok();
}

Version FileLogMachine::persisted_version() {
  std::lock_guard lock(mutex_);
  persisted_ = std::max(persisted_, synced_);
  return persisted_;
}

Result<core::Checkpoint> FileLogMachine::make_checkpoint() {
  core::Checkpoint checkpoint;
  checkpoint.version = applied_;
  checkpoint.timestamp = log_.empty() ? 0 : log_.back().timestamp;
  for (const auto& update : log_) {
    Bytes record = encode(update);
    checkpoint.state.insert(checkpoint.state.end(), record.begin(), record.end());
  }
  return checkpoint;
}

Result<std::vector<core::LoggedUpdate>> FileLogMachine::read_log(Version after,
                                                                 std::size_t max_bytes) {
  std::vector<core::LoggedUpdate> out;
  std::size_t bytes = 0;
  for (const auto& update : log_) {
    if (update.version <= after) continue;
    if (!out.empty() && bytes + update.payload.size() > max_bytes) break;
    bytes += update.payload.size();
    out.push_back(update);
  }
  return out;
}

Status FileLogMachine::install(const core::Checkpoint& checkpoint,
                               std::span<const core::LoggedUpdate> suffix) {
  SQUALL_ASSERT(::ftruncate(fd_, 0) == 0, "truncate test log");
  write_all(fd_, checkpoint.state);
  log_.clear();
  checksum_ = 0;
  applied_ = 0;
  reload();
  if (applied_ != checkpoint.version) {
    return corruption("checkpoint does not end at its version");
  }
  for (const auto& update : suffix) append(update);
  SQUALL_ASSERT(::fdatasync(fd_) == 0, "fdatasync test log");
  std::lock_guard lock(mutex_);
  synced_ = sync_target_ = applied_;
  persisted_ = applied_;
  return Status::ok();
}

}  // namespace squall::testing
