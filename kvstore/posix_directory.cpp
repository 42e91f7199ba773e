// PosixDirectory: the file layer on the real disk (open/pwritev/preadv/fdatasync/rename).
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>

#include "kvstore/file.hpp"

namespace squall::kvstore {
namespace {

// At most this many iovecs per system call; longer lists are written in several calls.
constexpr std::size_t kMaxIovecs = 1024;  // IOV_MAX on Linux

Status errno_status(std::string_view what, const std::string& path, int error) {
  Code code = (error == ENOSPC || error == EDQUOT) ? Code::no_space : Code::io_error;
  if (error == ENOENT) code = Code::not_found;
  if (error == EEXIST) code = Code::already_exists;
  return {code, fmt::format("{} {}: {}", what, path, std::strerror(error))};
}

template <typename Buffer>
std::size_t fill_iovecs(std::span<const Buffer> parts, std::array<iovec, kMaxIovecs>& iov) {
  std::size_t count = std::min(parts.size(), kMaxIovecs);
  for (std::size_t i = 0; i < count; ++i) {
    // iovec has no const member; the kernel only reads it for writes.
    iov[i].iov_base = const_cast<std::byte*>(parts[i].data());
    iov[i].iov_len = parts[i].size();
  }
  return count;
}

class PosixFile final : public File {
 public:
  PosixFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~PosixFile() override { ::close(fd_); }
  PosixFile(const PosixFile&) = delete;
  PosixFile& operator=(const PosixFile&) = delete;

  Result<std::size_t> write_at(std::uint64_t offset,
                               std::span<const ConstBuffer> parts) override {
    std::array<iovec, kMaxIovecs> iov{};
    std::size_t count = fill_iovecs(parts, iov);
    ssize_t written;
    do {
      written = ::pwritev(fd_, iov.data(), static_cast<int>(count),
                          static_cast<off_t>(offset));
    } while (written < 0 && errno == EINTR);
    if (written < 0) return errno_status("write", path_, errno);
    return static_cast<std::size_t>(written);
  }

  Result<std::size_t> read_at(std::uint64_t offset,
                              std::span<const MutableBuffer> parts) const override {
    std::array<iovec, kMaxIovecs> iov{};
    std::size_t count = fill_iovecs(parts, iov);
    ssize_t got;
    do {
      got = ::preadv(fd_, iov.data(), static_cast<int>(count), static_cast<off_t>(offset));
    } while (got < 0 && errno == EINTR);
    if (got < 0) return errno_status("read", path_, errno);
    return static_cast<std::size_t>(got);
  }

  Status sync() override {
    if (::fdatasync(fd_) != 0) return errno_status("fdatasync", path_, errno);
    return Status::ok();
  }

  Status truncate(std::uint64_t size_bytes) override {
    if (::ftruncate(fd_, static_cast<off_t>(size_bytes)) != 0) {
      return errno_status("truncate", path_, errno);
    }
    return Status::ok();
  }

  Result<std::uint64_t> size() const override {
    struct stat info {};
    if (::fstat(fd_, &info) != 0) return errno_status("stat", path_, errno);
    return static_cast<std::uint64_t>(info.st_size);
  }

 private:
  int fd_;
  std::string path_;
};

class PosixDirectory final : public Directory {
 public:
  explicit PosixDirectory(std::string path) : path_(std::move(path)) {}

  Result<std::unique_ptr<File>> open(const std::string& name, OpenMode mode) override {
    SQUALL_ASSERT(name.find('/') == std::string::npos, "file name with a slash: {}", name);
    int flags = O_CLOEXEC;
    switch (mode) {
      case OpenMode::read_only: flags |= O_RDONLY; break;
      case OpenMode::read_write: flags |= O_RDWR; break;
      case OpenMode::create_new: flags |= O_RDWR | O_CREAT | O_EXCL; break;
    }
    std::string full = full_path(name);
    int fd = ::open(full.c_str(), flags, 0644);
    if (fd < 0) return errno_status("open", full, errno);
    return std::unique_ptr<File>(std::make_unique<PosixFile>(fd, full));
  }

  Result<std::vector<std::string>> list() override {
    DIR* dir = ::opendir(path_.c_str());
    if (dir == nullptr) return errno_status("list", path_, errno);
    std::vector<std::string> names;
    errno = 0;
    while (dirent* entry = ::readdir(dir)) {
      std::string name = entry->d_name;
      if (name == "." || name == "..") continue;
      struct stat info {};
      if (::stat(full_path(name).c_str(), &info) == 0 && S_ISREG(info.st_mode)) {
        names.push_back(std::move(name));
      }
    }
    ::closedir(dir);
    std::sort(names.begin(), names.end());
    return names;
  }

  Status rename(const std::string& from, const std::string& to) override {
    if (::rename(full_path(from).c_str(), full_path(to).c_str()) != 0) {
      return errno_status("rename", full_path(from), errno);
    }
    return Status::ok();
  }

  Status remove(const std::string& name) override {
    if (::unlink(full_path(name).c_str()) != 0) {
      return errno_status("remove", full_path(name), errno);
    }
    return Status::ok();
  }

  Status sync() override {
    int fd = ::open(path_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return errno_status("open directory", path_, errno);
    int rc = ::fsync(fd);
    int error = errno;
    ::close(fd);
    if (rc != 0) return errno_status("fsync directory", path_, error);
    return Status::ok();
  }

  const std::string& path() const override { return path_; }

 private:
  std::string full_path(const std::string& name) const { return path_ + "/" + name; }

  std::string path_;
};

}  // namespace

Result<std::unique_ptr<Directory>> open_posix_directory(const std::string& path, bool create) {
  std::error_code error;
  if (create) std::filesystem::create_directories(path, error);
  if (error) return io_error(fmt::format("create directory {}: {}", path, error.message()));
  if (!std::filesystem::is_directory(path, error)) {
    return Status(Code::not_found, fmt::format("{} is not a directory", path));
  }
  return std::unique_ptr<Directory>(std::make_unique<PosixDirectory>(path));
}

namespace {

// Drops the first `consumed` bytes from the front of `parts`, in place.
void advance_parts(std::vector<ConstBuffer>& parts, std::size_t consumed) {
  std::size_t index = 0;
  while (index < parts.size() && consumed >= parts[index].size()) {
    consumed -= parts[index].size();
    ++index;
  }
  parts.erase(parts.begin(), parts.begin() + static_cast<std::ptrdiff_t>(index));
  if (!parts.empty()) parts.front() = parts.front().subspan(consumed);
}

}  // namespace

Status write_fully(File& file, std::uint64_t offset, std::span<const ConstBuffer> parts) {
  std::size_t total = 0;
  for (const auto& part : parts) total += part.size();
  // Fast path: one call writes everything (the common case for a regular file).
  auto first = file.write_at(offset, parts);
  if (!first.is_ok()) return first.status();
  if (first.value() == total) return Status::ok();
  std::vector<ConstBuffer> rest(parts.begin(), parts.end());
  std::size_t done = first.value();
  advance_parts(rest, done);
  while (done < total) {
    auto written = file.write_at(offset + done, rest);
    if (!written.is_ok()) return written.status();
    if (written.value() == 0) return io_error("write made no progress");
    done += written.value();
    advance_parts(rest, written.value());
  }
  return Status::ok();
}

Status read_fully(const File& file, std::uint64_t offset, std::span<const MutableBuffer> parts) {
  std::size_t total = 0;
  for (const auto& part : parts) total += part.size();
  std::vector<MutableBuffer> rest(parts.begin(), parts.end());
  std::size_t done = 0;
  while (done < total) {
    auto got = file.read_at(offset + done, rest);
    if (!got.is_ok()) return got.status();
    if (got.value() == 0) {
      return corruption(fmt::format("file ends at {} before {} expected bytes at {}",
                                    offset + done, total, offset));
    }
    done += got.value();
    std::size_t consumed = got.value();
    std::size_t index = 0;
    while (index < rest.size() && consumed >= rest[index].size()) {
      consumed -= rest[index].size();
      ++index;
    }
    rest.erase(rest.begin(), rest.begin() + static_cast<std::ptrdiff_t>(index));
    if (!rest.empty()) rest.front() = rest.front().subspan(consumed);
  }
  return Status::ok();
}

}  // namespace squall::kvstore
