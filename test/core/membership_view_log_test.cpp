// The view log: record encoding round trips, bounded decoding of hostile bytes, torn tails
// truncated at open, records surviving a reopen.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>

#include "core/view_log.hpp"

using namespace squall;
using namespace squall::core;

namespace {

View make_view(std::uint32_t id, std::uint32_t members, const View* previous = nullptr) {
  std::vector<Member> list;
  for (std::uint32_t i = 0; i < members; ++i) {
    list.push_back({NodeId{10 + i}, {"127.0.0.1", static_cast<std::uint16_t>(7000 + i)}});
  }
  return View::make(ViewId{id}, list, {.shards = 2, .replicas_per_shard = 2}, previous).value();
}

std::string temp_path(const char* name) {
  auto path = std::filesystem::temp_directory_path() /
              (std::string("squall_vc_") + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove(path);
  return path.string();
}

}  // namespace

TEST_CASE("view log records round-trip and reject every corrupted byte") {
  View view = make_view(3, 5);
  std::vector<ViewLogRecord> records{ViewRecord::of(view),
                                     TrimRecord{ViewId{3}, ShardId{1}, {4, 0, 9}}};
  for (const ViewLogRecord& record : records) {
    Bytes encoded = encode_view_log_record(record);
    std::size_t consumed = 0;
    auto decoded = decode_view_log_record(encoded, consumed);
    REQUIRE(decoded.is_ok());
    REQUIRE(consumed == encoded.size());
    REQUIRE(*decoded == record);
    // Every single-byte change is caught (header checks or CRC), never read out of bounds.
    for (std::size_t i = 0; i < encoded.size(); ++i) {
      Bytes damaged = encoded;
      damaged[i] ^= std::byte{0x5A};
      REQUIRE_FALSE(decode_view_log_record(damaged, consumed).is_ok());
    }
    // Every truncation is refused.
    for (std::size_t length = 0; length < encoded.size(); ++length) {
      REQUIRE_FALSE(
          decode_view_log_record(std::span(encoded).first(length), consumed).is_ok());
    }
  }
}

TEST_CASE("view log decoding of random bytes never succeeds by accident or crashes") {
  std::mt19937_64 random(42);
  for (int run = 0; run < 2000; ++run) {
    Bytes bytes(random() % 200);
    for (auto& byte : bytes) byte = static_cast<std::byte>(random());
    if (run % 2 == 0 && bytes.size() >= 4) {
      for (int i = 0; i < 4; ++i) {
        bytes[static_cast<std::size_t>(i)] =
            static_cast<std::byte>(kViewLogMagic >> (8 * i));
      }
    }
    std::size_t valid = 0;
    auto decoded = decode_view_log(bytes, valid);
    REQUIRE(decoded.empty());
    REQUIRE(valid == 0);
  }
}

TEST_CASE("file view log survives reopen and truncates a torn tail") {
  std::string path = temp_path("reopen");
  View first = make_view(1, 3);
  View second = make_view(2, 4, &first);
  {
    auto log = FileViewLog::open(path);
    REQUIRE(log.is_ok());
    REQUIRE((*log)->records().empty());
    REQUIRE((*log)->append(ViewRecord::of(first)).is_ok());
    REQUIRE((*log)->append(TrimRecord{ViewId{1}, ShardId{0}, {2, 3}}).is_ok());
    REQUIRE((*log)->append(ViewRecord::of(second)).is_ok());
  }
  auto full_size = std::filesystem::file_size(path);
  // A torn append: half a record at the end.
  Bytes partial = encode_view_log_record(TrimRecord{ViewId{2}, ShardId{1}, {7, 7}});
  {
    std::ofstream out(path, std::ios::binary | std::ios::app);
    out.write(reinterpret_cast<const char*>(partial.data()),
              static_cast<std::streamsize>(partial.size() / 2));
  }
  {
    auto log = FileViewLog::open(path);
    REQUIRE(log.is_ok());
    REQUIRE((*log)->records().size() == 3);
    REQUIRE((*log)->truncated_bytes() == partial.size() / 2);
    REQUIRE((*log)->last_view() == ViewRecord::of(second));
    auto trims = (*log)->trims_of(ViewId{1});
    REQUIRE(trims.size() == 1);
    REQUIRE(trims[0].trim == std::vector<std::uint64_t>{2, 3});
    REQUIRE(std::filesystem::file_size(path) == full_size);
    // Appending after the truncation continues the valid log.
    REQUIRE((*log)->append(TrimRecord{ViewId{2}, ShardId{1}, {5, 6}}).is_ok());
  }
  auto log = FileViewLog::open(path);
  REQUIRE(log.is_ok());
  REQUIRE((*log)->records().size() == 4);
  REQUIRE((*log)->trims_of(ViewId{2}).size() == 1);
  std::filesystem::remove(path);
}

TEST_CASE("a reloaded view record recomputes the same assignment") {
  View first = make_view(1, 5);
  View second = make_view(2, 4, &first);
  MemoryViewLog log;
  REQUIRE(log.append(ViewRecord::of(first)).is_ok());
  REQUIRE(log.append(ViewRecord::of(second)).is_ok());
  // Restart: replay the chain of views; each recomputed assignment matches the logged one.
  std::optional<View> previous;
  for (const auto& record : log.records()) {
    const auto& logged = std::get<ViewRecord>(record);
    auto view = View::make(logged.id, logged.members, logged.layout,
                           previous ? &*previous : nullptr);
    REQUIRE(view.is_ok());
    REQUIRE(view->assignment() == logged.assignment);
    previous = std::move(*view);
  }
  REQUIRE(previous->id() == ViewId{2});
}
