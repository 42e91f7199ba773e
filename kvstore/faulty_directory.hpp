// FaultyDirectory: a Directory wrapper that injects disk faults, for tests.
//
// It passes every call to a real directory and keeps, beside it, a model of what would
// survive a power loss: per file, the bytes made durable by the last successful sync plus the
// writes and truncations since; per folder, the names made durable by the last folder sync.
// crash() then rewrites the real folder to what survives the chosen kind of crash, so a test
// reopens the store on exactly the bytes a real machine could come back with.
//
// Faults (each armed fault applies once, to the next matching call, in any file):
// - torn write: the write keeps a prefix and the process "dies" (every later call fails until
//   crash());
// - short write: the write keeps a prefix and reports that count, as pwritev may;
// - fsync error: the sync fails and its unsynced data is dropped from the durable image, as
//   Linux drops the dirty pages (a later sync then "succeeds" without them);
// - ENOSPC: a space budget over all files; a write past it writes what fits and fails with
//   Code::no_space; raising the budget makes the space "free" again;
// - bit flip: one bit of a file changes on disk.
// Thread-safe (one mutex); meant for tests, not for speed.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "common/bytes.hpp"
#include "kvstore/file.hpp"

namespace squall::kvstore {

enum class CrashKind : std::uint8_t {
  process,           // kill -9: everything written survives (the page cache does)
  power_loss,        // only synced bytes under synced names survive
  power_loss_torn,   // as power_loss, plus a random prefix of each file's unsynced writes,
                     // the last of them cut at a random byte
};

class FaultyDirectory final : public Directory {
 public:
  // Files already in `inner` count as durable. The model alone decides what survives a
  // crash, so syncs are not passed to the real disk unless `real_syncs` (they only cost time).
  static Result<std::unique_ptr<FaultyDirectory>> wrap(std::unique_ptr<Directory> inner,
                                                       bool real_syncs = false);

  Result<std::unique_ptr<File>> open(const std::string& name, OpenMode mode) override;
  Result<std::vector<std::string>> list() override;
  Status rename(const std::string& from, const std::string& to) override;
  Status remove(const std::string& name) override;
  Status sync() override;
  const std::string& path() const override { return inner_->path(); }

  // Arms faults for the next matching call.
  void tear_next_write(std::size_t keep_bytes);
  void shorten_next_write(std::size_t keep_bytes);
  void fail_next_sync();
  // Total bytes over all files; std::uint64_t max means unlimited.
  void set_space_limit_bytes(std::uint64_t limit_bytes);
  // Flips bit `bit` (0..7) of the byte at `offset` of `name`, on disk and in the durable image.
  Status flip_bit(const std::string& name, std::uint64_t offset, int bit);

  // Crashes: files opened before it fail every call afterwards; the real folder holds what
  // survives `kind` (`seed` chooses the torn prefixes); then the directory works again, with
  // everything on it counted as durable.
  Status crash(CrashKind kind, std::uint64_t seed);

  // Successful file syncs so far (group-commit tests count them).
  std::uint64_t file_sync_count() const;
  // True after a torn write until crash().
  bool dead() const;

  // Internal state shared with the files it opened.
  struct Model;
  struct FileModel;

  FaultyDirectory(std::unique_ptr<Directory> inner, bool real_syncs);
  ~FaultyDirectory() override;

 private:
  Status load_existing();

  std::unique_ptr<Directory> inner_;
  std::shared_ptr<Model> model_;
};

}  // namespace squall::kvstore
