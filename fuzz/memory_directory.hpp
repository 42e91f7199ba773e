// MemoryDirectory: a kvstore::Directory held in memory, so the log's recovery and scanner can
// run over fuzzed segment images without touching the disk. Plain semantics only: no faults,
// every write is durable at once, sync() does nothing. Not thread-safe (the fuzz targets run
// one thread).
#pragma once

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/bytes.hpp"
#include "kvstore/file.hpp"

namespace squall::fuzz {

class MemoryFile final : public kvstore::File {
 public:
  explicit MemoryFile(std::shared_ptr<Bytes> bytes) : holder_(std::move(bytes)) {}

  Result<std::size_t> write_at(std::uint64_t offset,
                               std::span<const kvstore::ConstBuffer> parts) override {
    std::size_t written = 0;
    for (const auto& part : parts) {
      const std::uint64_t end = offset + written + part.size();
      if (end > bytes_.size()) bytes_.resize(static_cast<std::size_t>(end));
      if (!part.empty()) {
        std::memcpy(bytes_.data() + offset + written, part.data(), part.size());
      }
      written += part.size();
    }
    return written;
  }

  Result<std::size_t> read_at(std::uint64_t offset,
                              std::span<const kvstore::MutableBuffer> parts) const override {
    std::size_t done = 0;
    for (const auto& part : parts) {
      const std::uint64_t at = offset + done;
      if (at >= bytes_.size()) break;
      const auto count = static_cast<std::size_t>(
          std::min<std::uint64_t>(part.size(), bytes_.size() - at));
      if (count > 0) std::memcpy(part.data(), bytes_.data() + at, count);
      done += count;
      if (count < part.size()) break;
    }
    return done;
  }

  Status sync() override { return {}; }
  Status truncate(std::uint64_t size_bytes) override {
    bytes_.resize(static_cast<std::size_t>(size_bytes));
    return {};
  }
  Result<std::uint64_t> size() const override { return std::uint64_t{bytes_.size()}; }

 private:
  std::shared_ptr<Bytes> holder_;  // shared: a removed or renamed file stays readable
  Bytes& bytes_ = *holder_;
};

class MemoryDirectory final : public kvstore::Directory {
 public:
  // The files, by name; tests fill it before opening a log.
  void add(const std::string& name, Bytes bytes) {
    files_[name] = std::make_shared<Bytes>(std::move(bytes));
  }
  const std::map<std::string, std::shared_ptr<Bytes>>& files() const { return files_; }

  Result<std::unique_ptr<kvstore::File>> open(const std::string& name,
                                              kvstore::OpenMode mode) override {
    auto found = files_.find(name);
    if (mode == kvstore::OpenMode::create_new) {
      if (found != files_.end()) return Status{Code::already_exists, "file exists: " + name};
      found = files_.emplace(name, std::make_shared<Bytes>()).first;
    } else if (found == files_.end()) {
      return not_found("no file: " + name);
    }
    return std::unique_ptr<kvstore::File>(std::make_unique<MemoryFile>(found->second));
  }

  Result<std::vector<std::string>> list() override {
    std::vector<std::string> names;
    for (const auto& [name, bytes] : files_) names.push_back(name);
    return names;
  }

  Status rename(const std::string& from, const std::string& to) override {
    auto found = files_.find(from);
    if (found == files_.end()) return not_found("no file: " + from);
    auto bytes = found->second;
    files_.erase(found);
    files_[to] = std::move(bytes);
    return {};
  }

  Status remove(const std::string& name) override {
    if (files_.erase(name) == 0) return not_found("no file: " + name);
    return {};
  }

  Status sync() override { return {}; }
  const std::string& path() const override { return path_; }

 private:
  std::map<std::string, std::shared_ptr<Bytes>> files_;
  std::string path_ = "memory";
};

}  // namespace squall::fuzz
