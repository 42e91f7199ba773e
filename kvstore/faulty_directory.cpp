#include "kvstore/faulty_directory.hpp"

#include <algorithm>
#include <optional>
#include <random>
#include <vector>

namespace squall::kvstore {

struct FaultyDirectory::FileModel {
  // A write (offset, bytes) or, when `truncate` is set, a truncation to `offset`.
  struct Pending {
    bool truncate = false;
    std::uint64_t offset = 0;
    Bytes bytes;
  };
  Bytes durable;                 // content after the last successful sync
  std::vector<Pending> pending;  // changes since, in order
  std::uint64_t size = 0;        // current size as the process sees it
};

struct FaultyDirectory::Model {
  mutable std::mutex mutex;
  std::map<std::string, std::shared_ptr<FileModel>> names;          // current names
  std::map<std::string, std::shared_ptr<FileModel>> durable_names;  // at the last folder sync
  std::uint64_t generation = 0;  // bumped by each crash; older files are dead
  bool dead = false;             // a torn write "killed" the process
  std::optional<std::size_t> tear_keep;
  std::optional<std::size_t> short_keep;
  bool fail_sync = false;
  std::uint64_t space_limit_bytes = std::numeric_limits<std::uint64_t>::max();
  std::uint64_t sync_count = 0;
  bool real_syncs = false;

  // REQUIRES: mutex held.
  Status check_alive(std::uint64_t file_generation) const {
    if (dead || file_generation != generation) return io_error("simulated crash: file is dead");
    return Status::ok();
  }
  // REQUIRES: mutex held.
  std::uint64_t total_size() const {
    std::uint64_t total = 0;
    for (const auto& [name, file] : names) total += file->size;
    return total;
  }
};

namespace {

using FileModel = FaultyDirectory::FileModel;

void apply_pending(Bytes& content, const FileModel::Pending& change, std::size_t keep_bytes) {
  if (change.truncate) {
    content.resize(change.offset);
    return;
  }
  std::size_t count = std::min(keep_bytes, change.bytes.size());
  if (content.size() < change.offset + count) content.resize(change.offset + count);
  std::copy_n(change.bytes.begin(), count,
              content.begin() + static_cast<std::ptrdiff_t>(change.offset));
}

// What a file holds after a power loss: its durable bytes plus, for a torn crash, a random
// prefix of its pending changes with the last one cut at a random byte.
Bytes surviving_content(const FileModel& file, bool torn, std::mt19937_64& random) {
  Bytes content = file.durable;
  if (!torn || file.pending.empty()) return content;
  std::size_t applied = random() % (file.pending.size() + 1);
  for (std::size_t i = 0; i < applied; ++i) {
    apply_pending(content, file.pending[i], file.pending[i].bytes.size());
  }
  if (applied < file.pending.size()) {
    const auto& cut = file.pending[applied];
    apply_pending(content, cut, cut.bytes.empty() ? 0 : random() % (cut.bytes.size() + 1));
  }
  return content;
}

Result<Bytes> read_whole(Directory& directory, const std::string& name) {
  auto file = directory.open(name, OpenMode::read_only);
  if (!file.is_ok()) return file.status();
  auto size = file.value()->size();
  if (!size.is_ok()) return size.status();
  Bytes content(size.value());
  MutableBuffer whole(content);
  SQUALL_TRY(read_fully(*file.value(), 0, std::span<const MutableBuffer>(&whole, 1)));
  return content;
}

Status write_whole(Directory& directory, const std::string& name, const Bytes& content) {
  auto file = directory.open(name, OpenMode::create_new);
  if (!file.is_ok()) return file.status();
  ConstBuffer whole(content);
  return write_fully(*file.value(), 0, std::span<const ConstBuffer>(&whole, 1));
}

class FaultyFile final : public File {
 public:
  FaultyFile(std::shared_ptr<FaultyDirectory::Model> model, std::shared_ptr<FileModel> file,
             std::unique_ptr<File> inner, std::uint64_t generation)
      : model_(std::move(model)), file_(std::move(file)), inner_(std::move(inner)),
        generation_(generation) {}

  Result<std::size_t> write_at(std::uint64_t offset,
                               std::span<const ConstBuffer> parts) override;

  Result<std::size_t> read_at(std::uint64_t offset,
                              std::span<const MutableBuffer> parts) const override {
    {
      std::lock_guard lock(model_->mutex);
      SQUALL_TRY(model_->check_alive(generation_));
    }
    return inner_->read_at(offset, parts);
  }

  Status sync() override {
    std::lock_guard lock(model_->mutex);
    SQUALL_TRY(model_->check_alive(generation_));
    if (model_->fail_sync) {
      model_->fail_sync = false;
      file_->pending.clear();  // the kernel forgets the dirty pages: they are never durable
      return io_error("simulated fdatasync failure (EIO)");
    }
    if (model_->real_syncs) SQUALL_TRY(inner_->sync());
    for (const auto& change : file_->pending) {
      apply_pending(file_->durable, change, change.bytes.size());
    }
    file_->pending.clear();
    ++model_->sync_count;
    return Status::ok();
  }

  Status truncate(std::uint64_t size_bytes) override {
    std::lock_guard lock(model_->mutex);
    SQUALL_TRY(model_->check_alive(generation_));
    SQUALL_TRY(inner_->truncate(size_bytes));
    file_->pending.push_back({true, size_bytes, {}});
    file_->size = size_bytes;
    return Status::ok();
  }

  Result<std::uint64_t> size() const override {
    {
      std::lock_guard lock(model_->mutex);
      SQUALL_TRY(model_->check_alive(generation_));
    }
    return inner_->size();
  }

 private:
  // How many of `wanted` bytes at `offset` fit the space budget. REQUIRES: mutex held.
  std::size_t bytes_that_fit(std::uint64_t offset, std::size_t wanted) const {
    std::uint64_t total = model_->total_size();
    std::uint64_t growth = std::max(file_->size, offset + wanted) - file_->size;
    if (total + growth <= model_->space_limit_bytes) return wanted;
    std::uint64_t free_bytes =
        model_->space_limit_bytes > total ? model_->space_limit_bytes - total : 0;
    std::uint64_t limit_end = file_->size + free_bytes;
    return limit_end > offset ? static_cast<std::size_t>(limit_end - offset) : 0;
  }

  std::shared_ptr<FaultyDirectory::Model> model_;
  std::shared_ptr<FileModel> file_;
  std::unique_ptr<File> inner_;
  std::uint64_t generation_;
};

Result<std::size_t> FaultyFile::write_at(std::uint64_t offset,
                                         std::span<const ConstBuffer> parts) {
  std::lock_guard lock(model_->mutex);
  SQUALL_TRY(model_->check_alive(generation_));
  Bytes flat;
  for (const auto& part : parts) flat.insert(flat.end(), part.begin(), part.end());
  std::size_t keep = flat.size();
  Code failure = Code::ok;
  if (model_->tear_keep) {
    keep = std::min(*model_->tear_keep, keep);
    model_->tear_keep.reset();
    failure = Code::io_error;
  } else if (model_->short_keep && !flat.empty()) {
    keep = std::clamp<std::size_t>(*model_->short_keep, 1, keep);
    model_->short_keep.reset();
  }
  std::size_t fits = bytes_that_fit(offset, keep);
  if (fits < keep) {
    keep = fits;
    failure = Code::no_space;
  }
  flat.resize(keep);
  ConstBuffer kept(flat);
  SQUALL_TRY(write_fully(*inner_, offset, std::span<const ConstBuffer>(&kept, 1)));
  file_->size = std::max(file_->size, offset + keep);
  file_->pending.push_back({false, offset, std::move(flat)});
  if (failure == Code::io_error) {
    model_->dead = true;
    return io_error("simulated torn write: the process died mid-write");
  }
  if (failure == Code::no_space) return Status(Code::no_space, "simulated ENOSPC");
  return keep;
}

}  // namespace

FaultyDirectory::FaultyDirectory(std::unique_ptr<Directory> inner, bool real_syncs)
    : inner_(std::move(inner)), model_(std::make_shared<Model>()) {
  model_->real_syncs = real_syncs;
}

FaultyDirectory::~FaultyDirectory() = default;

Result<std::unique_ptr<FaultyDirectory>> FaultyDirectory::wrap(
    std::unique_ptr<Directory> inner, bool real_syncs) {
  auto directory = std::make_unique<FaultyDirectory>(std::move(inner), real_syncs);
  SQUALL_TRY(directory->load_existing());
  return directory;
}

// REQUIRES: mutex held (or no other user yet).
Status FaultyDirectory::load_existing() {
  model_->names.clear();
  auto names = inner_->list();
  if (!names.is_ok()) return names.status();
  for (const auto& name : names.value()) {
    auto content = read_whole(*inner_, name);
    if (!content.is_ok()) return content.status();
    auto file = std::make_shared<FileModel>();
    file->size = content.value().size();
    file->durable = std::move(content.value());
    model_->names[name] = std::move(file);
  }
  model_->durable_names = model_->names;
  return Status::ok();
}

Result<std::unique_ptr<File>> FaultyDirectory::open(const std::string& name, OpenMode mode) {
  std::lock_guard lock(model_->mutex);
  SQUALL_TRY(model_->check_alive(model_->generation));
  auto inner = inner_->open(name, mode);
  if (!inner.is_ok()) return inner.status();
  auto& file = model_->names[name];
  if (mode == OpenMode::create_new || !file) file = std::make_shared<FileModel>();
  return std::unique_ptr<File>(std::make_unique<FaultyFile>(
      model_, file, std::move(inner.value()), model_->generation));
}

Result<std::vector<std::string>> FaultyDirectory::list() {
  {
    std::lock_guard lock(model_->mutex);
    SQUALL_TRY(model_->check_alive(model_->generation));
  }
  return inner_->list();
}

Status FaultyDirectory::rename(const std::string& from, const std::string& to) {
  std::lock_guard lock(model_->mutex);
  SQUALL_TRY(model_->check_alive(model_->generation));
  SQUALL_TRY(inner_->rename(from, to));
  auto moved = model_->names[from];
  model_->names.erase(from);
  model_->names[to] = std::move(moved);
  return Status::ok();
}

Status FaultyDirectory::remove(const std::string& name) {
  std::lock_guard lock(model_->mutex);
  SQUALL_TRY(model_->check_alive(model_->generation));
  SQUALL_TRY(inner_->remove(name));
  model_->names.erase(name);
  return Status::ok();
}

Status FaultyDirectory::sync() {
  std::lock_guard lock(model_->mutex);
  SQUALL_TRY(model_->check_alive(model_->generation));
  if (model_->real_syncs) SQUALL_TRY(inner_->sync());
  model_->durable_names = model_->names;
  return Status::ok();
}

void FaultyDirectory::tear_next_write(std::size_t keep_bytes) {
  std::lock_guard lock(model_->mutex);
  model_->tear_keep = keep_bytes;
}

void FaultyDirectory::shorten_next_write(std::size_t keep_bytes) {
  std::lock_guard lock(model_->mutex);
  model_->short_keep = keep_bytes;
}

void FaultyDirectory::fail_next_sync() {
  std::lock_guard lock(model_->mutex);
  model_->fail_sync = true;
}

void FaultyDirectory::set_space_limit_bytes(std::uint64_t limit_bytes) {
  std::lock_guard lock(model_->mutex);
  model_->space_limit_bytes = limit_bytes;
}

Status FaultyDirectory::flip_bit(const std::string& name, std::uint64_t offset, int bit) {
  std::lock_guard lock(model_->mutex);
  auto file = inner_->open(name, OpenMode::read_write);
  if (!file.is_ok()) return file.status();
  std::byte value{};
  MutableBuffer in(&value, 1);
  SQUALL_TRY(read_fully(*file.value(), offset, std::span<const MutableBuffer>(&in, 1)));
  value ^= static_cast<std::byte>(1U << bit);
  ConstBuffer out(&value, 1);
  SQUALL_TRY(write_fully(*file.value(), offset, std::span<const ConstBuffer>(&out, 1)));
  auto found = model_->names.find(name);
  if (found != model_->names.end() && found->second->durable.size() > offset) {
    found->second->durable[offset] ^= static_cast<std::byte>(1U << bit);
  }
  return Status::ok();
}

Status FaultyDirectory::crash(CrashKind kind, std::uint64_t seed) {
  std::lock_guard lock(model_->mutex);
  ++model_->generation;
  model_->dead = false;
  model_->tear_keep.reset();
  model_->short_keep.reset();
  model_->fail_sync = false;
  if (kind != CrashKind::process) {
    std::mt19937_64 random(seed);
    std::map<std::string, Bytes> surviving;
    for (const auto& [name, file] : model_->durable_names) {
      surviving[name] = surviving_content(*file, kind == CrashKind::power_loss_torn, random);
    }
    auto names = inner_->list();
    if (!names.is_ok()) return names.status();
    for (const auto& name : names.value()) SQUALL_TRY(inner_->remove(name));
    for (const auto& [name, content] : surviving) {
      SQUALL_TRY(write_whole(*inner_, name, content));
    }
  }
  return load_existing();
}

std::uint64_t FaultyDirectory::file_sync_count() const {
  std::lock_guard lock(model_->mutex);
  return model_->sync_count;
}

bool FaultyDirectory::dead() const {
  std::lock_guard lock(model_->mutex);
  return model_->dead;
}

}  // namespace squall::kvstore
