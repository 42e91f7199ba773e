// The file layer: the only way storage code touches the disk.
//
// A Directory is one folder of plain files (a shard replica's log directory). Storage code
// asks it to open, list, rename and remove files and to make its entries durable; a File
// gives positional writes and reads of several buffers at once (pwritev/preadv), fdatasync
// and truncate. Two implementations: PosixDirectory (the real disk) and FaultyDirectory
// (kvstore/faulty_directory.hpp, tests), which injects torn and short writes, fsync errors,
// ENOSPC, bit flips, and "lose what was not synced" crashes.
//
// Writes are positional on purpose: the log decides every offset itself, so a failed append
// can be retried at the same place and a short write continued where it stopped.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/status.hpp"

namespace squall::kvstore {

using ConstBuffer = std::span<const std::byte>;
using MutableBuffer = std::span<std::byte>;

// One open file. Thread-safety: read_at may run concurrently with anything (pread
// semantics); write_at, sync and truncate are called by one thread at a time.
class File {
 public:
  virtual ~File() = default;

  // Writes the concatenation of `parts` at `offset`. Returns how many bytes were written,
  // which may be fewer than asked (a short write): the caller continues with the rest.
  // Errors: Code::no_space (disk or quota full), Code::io_error; on an error an unspecified
  // prefix of the bytes may have reached the file.
  virtual Result<std::size_t> write_at(std::uint64_t offset,
                                       std::span<const ConstBuffer> parts) = 0;

  // Reads into `parts` (in order) from `offset`. Returns the bytes read: fewer than asked only
  // when the end of the file was reached.
  virtual Result<std::size_t> read_at(std::uint64_t offset,
                                      std::span<const MutableBuffer> parts) const = 0;

  // fdatasync: every byte written before the call is durable when it returns ok. After an
  // error, nothing written since the last successful sync may be assumed durable, ever (the
  // kernel may have dropped the dirty pages and a later sync can succeed without them).
  virtual Status sync() = 0;

  virtual Status truncate(std::uint64_t size_bytes) = 0;
  virtual Result<std::uint64_t> size() const = 0;
};

enum class OpenMode : std::uint8_t {
  read_only,        // must exist
  read_write,       // must exist
  create_new,       // read-write, must not exist yet
};

// A folder of files addressed by plain names (no '/'). Thread-safe.
class Directory {
 public:
  virtual ~Directory() = default;

  virtual Result<std::unique_ptr<File>> open(const std::string& name, OpenMode mode) = 0;
  // The names of the regular files in the folder, sorted by bytes.
  virtual Result<std::vector<std::string>> list() = 0;
  // Atomically replaces `to` (if it exists) with `from`. Durable after sync().
  virtual Status rename(const std::string& from, const std::string& to) = 0;
  // Durable after sync().
  virtual Status remove(const std::string& name) = 0;
  // fsync of the folder itself: makes created, renamed and removed names durable.
  virtual Status sync() = 0;
  // For messages: the folder's path.
  virtual const std::string& path() const = 0;
};

// The real disk. `path` is created (with parents) when `create` is set.
Result<std::unique_ptr<Directory>> open_posix_directory(const std::string& path, bool create);

// Writes every byte of `parts` at `offset`, continuing after short writes. A write that makes
// no progress is an io_error. On error, an unspecified prefix may have been written.
Status write_fully(File& file, std::uint64_t offset, std::span<const ConstBuffer> parts);

// Reads exactly the size of `parts`; a file that ends first is Code::corruption (the caller
// expected those bytes to exist).
Status read_fully(const File& file, std::uint64_t offset, std::span<const MutableBuffer> parts);

}  // namespace squall::kvstore
