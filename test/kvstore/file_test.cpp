// The file layer: the POSIX directory and the fault-injecting wrapper's crash model.
#include <filesystem>

#include "test/kvstore/test_util.hpp"

using namespace squall;
using namespace squall::kvstore;
using namespace squall::kvstore::testing;

namespace {

Status write_text(File& file, std::uint64_t offset, std::string_view text) {
  ConstBuffer part = bytes_of(text);
  return write_fully(file, offset, std::span<const ConstBuffer>(&part, 1));
}

std::string read_text(const File& file, std::uint64_t offset, std::size_t size) {
  std::string out(size, '\0');
  MutableBuffer part(reinterpret_cast<std::byte*>(out.data()), size);
  REQUIRE(read_fully(file, offset, std::span<const MutableBuffer>(&part, 1)).is_ok());
  return out;
}

std::string file_content(Directory& directory, const std::string& name) {
  auto file = directory.open(name, OpenMode::read_only);
  REQUIRE(file.is_ok());
  return read_text(*file.value(), 0, file.value()->size().value());
}

}  // namespace

TEST_CASE("POSIX files write several buffers at once, read them back, truncate and rename") {
  TempDir temp;
  auto directory = posix_dir(temp.path());
  auto file = directory->open("a", OpenMode::create_new);
  REQUIRE(file.is_ok());
  ConstBuffer parts[] = {bytes_of("head"), bytes_of("-key-"), bytes_of("value")};
  REQUIRE(write_fully(*file.value(), 0, parts).is_ok());
  CHECK(file.value()->size().value() == 14);
  std::string first(4, '\0');
  std::string second(10, '\0');
  MutableBuffer targets[] = {{reinterpret_cast<std::byte*>(first.data()), 4},
                             {reinterpret_cast<std::byte*>(second.data()), 10}};
  REQUIRE(read_fully(*file.value(), 0, targets).is_ok());
  CHECK(first == "head");
  CHECK(second == "-key-value");
  REQUIRE(file.value()->sync().is_ok());
  REQUIRE(file.value()->truncate(4).is_ok());
  CHECK(file.value()->size().value() == 4);
  // Reading past the end is corruption (the caller expected the bytes to exist).
  CHECK(read_fully(*file.value(), 2, targets).code() == Code::corruption);

  CHECK(directory->open("a", OpenMode::create_new).status().code() == Code::already_exists);
  CHECK(directory->open("missing", OpenMode::read_only).status().code() == Code::not_found);
  REQUIRE(directory->open("b", OpenMode::create_new).is_ok());
  REQUIRE(directory->rename("a", "c").is_ok());
  REQUIRE(directory->sync().is_ok());
  CHECK(directory->list().value() == std::vector<std::string>{"b", "c"});
  REQUIRE(directory->remove("b").is_ok());
  CHECK(directory->list().value() == std::vector<std::string>{"c"});
}

TEST_CASE("write_fully continues after a short write") {
  TempDir temp;
  auto directory = faulty_dir(temp.path());
  auto file = directory->open("f", OpenMode::create_new);
  REQUIRE(file.is_ok());
  directory->shorten_next_write(3);
  REQUIRE(write_text(*file.value(), 0, "0123456789").is_ok());
  CHECK(read_text(*file.value(), 0, 10) == "0123456789");
}

TEST_CASE("A power loss keeps synced bytes under synced names and drops the rest") {
  TempDir temp;
  auto directory = faulty_dir(temp.path());
  {
    auto durable = directory->open("durable", OpenMode::create_new);
    REQUIRE(write_text(*durable.value(), 0, "synced").is_ok());
    REQUIRE(durable.value()->sync().is_ok());
    REQUIRE(directory->sync().is_ok());
    REQUIRE(write_text(*durable.value(), 6, "-lost").is_ok());
    auto unnamed = directory->open("unnamed", OpenMode::create_new);
    REQUIRE(write_text(*unnamed.value(), 0, "synced but its name is not").is_ok());
    REQUIRE(unnamed.value()->sync().is_ok());
    REQUIRE(directory->crash(CrashKind::power_loss, 1).is_ok());
    // Files opened before the crash are dead.
    CHECK(durable.value()->sync().code() == Code::io_error);
  }
  CHECK(directory->list().value() == std::vector<std::string>{"durable"});
  CHECK(file_content(*directory, "durable") == "synced");
}

TEST_CASE("A process crash keeps everything written, a torn power loss keeps a prefix") {
  TempDir temp;
  auto directory = faulty_dir(temp.path());
  {
    auto file = directory->open("f", OpenMode::create_new);
    REQUIRE(write_text(*file.value(), 0, "abc").is_ok());
    REQUIRE(file.value()->sync().is_ok());
    REQUIRE(directory->sync().is_ok());
    REQUIRE(write_text(*file.value(), 3, "defghij").is_ok());
  }
  REQUIRE(directory->crash(CrashKind::process, 1).is_ok());
  CHECK(file_content(*directory, "f") == "abcdefghij");

  bool saw_partial = false;
  for (std::uint64_t seed = 0; seed < 20; ++seed) {
    {
      auto file = directory->open("f", OpenMode::read_write);
      REQUIRE(file.value()->truncate(3).is_ok());
      REQUIRE(file.value()->sync().is_ok());
      REQUIRE(write_text(*file.value(), 3, "defghij").is_ok());
    }
    REQUIRE(directory->crash(CrashKind::power_loss_torn, seed).is_ok());
    std::string content = file_content(*directory, "f");
    REQUIRE(content.size() >= 3);
    CHECK(std::string("abcdefghij").starts_with(content));
    saw_partial = saw_partial || (content.size() > 3 && content.size() < 10);
  }
  CHECK(saw_partial);
}

TEST_CASE("A failed fsync drops the unsynced data from what survives a power loss") {
  TempDir temp;
  auto directory = faulty_dir(temp.path());
  {
    auto file = directory->open("f", OpenMode::create_new);
    REQUIRE(write_text(*file.value(), 0, "kept").is_ok());
    REQUIRE(file.value()->sync().is_ok());
    REQUIRE(directory->sync().is_ok());
    REQUIRE(write_text(*file.value(), 4, "+dropped").is_ok());
    directory->fail_next_sync();
    CHECK(file.value()->sync().code() == Code::io_error);
    // Like Linux, a later sync "succeeds" without the dropped pages.
    CHECK(file.value()->sync().is_ok());
  }
  REQUIRE(directory->crash(CrashKind::power_loss, 1).is_ok());
  CHECK(file_content(*directory, "f") == "kept");
}

TEST_CASE("The space budget fails writes with no_space and frees up when raised") {
  TempDir temp;
  auto directory = faulty_dir(temp.path());
  auto file = directory->open("f", OpenMode::create_new);
  directory->set_space_limit_bytes(6);
  CHECK(write_text(*file.value(), 0, "0123456789").code() == Code::no_space);
  CHECK(file.value()->size().value() == 6);  // what fit was written
  directory->set_space_limit_bytes(100);
  CHECK(write_text(*file.value(), 0, "0123456789").is_ok());
}
