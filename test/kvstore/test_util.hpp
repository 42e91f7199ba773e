// Helpers for the kvstore tests: a temporary folder on the real disk and byte conversions.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <string>
#include <string_view>

#include <catch2/catch.hpp>

#include "common/bytes.hpp"
#include "kvstore/faulty_directory.hpp"
#include "kvstore/file.hpp"

namespace squall::kvstore::testing {

// A fresh folder under the system temp directory, removed with everything in it at the end.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "squall-kv-XXXXXX").string();
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string file(std::string_view name) const { return path_ + "/" + std::string(name); }

 private:
  std::string path_;
};

inline std::unique_ptr<Directory> posix_dir(const std::string& path) {
  auto directory = open_posix_directory(path, true);
  REQUIRE(directory.is_ok());
  return std::move(directory.value());
}

inline std::unique_ptr<FaultyDirectory> faulty_dir(const std::string& path) {
  auto directory = FaultyDirectory::wrap(posix_dir(path));
  REQUIRE(directory.is_ok());
  return std::move(directory.value());
}

inline std::span<const std::byte> bytes_of(std::string_view text) { return as_bytes(text); }
inline std::string text_of(const Bytes& bytes) { return std::string(as_string_view(bytes)); }

}  // namespace squall::kvstore::testing
