// Replays each fuzz target over its checked-in corpus (fuzz/corpus/<target>/) with the normal
// build: every input must pass the target's property checks (a failed check aborts). The
// regression inputs of crashes found by fuzzing live in the same folders (docs/security.md,
// "Fuzzing"), so a fixed bug that comes back fails here, without clang.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/log.hpp"

using FuzzOne = int (*)(const std::uint8_t*, std::size_t);

#define SQUALL_FUZZ_TARGET(name) \
  extern "C" int fuzz_##name##_one(const std::uint8_t* data, std::size_t size);
SQUALL_FUZZ_TARGET(config)
SQUALL_FUZZ_TARGET(record)
SQUALL_FUZZ_TARGET(segment_scan)
SQUALL_FUZZ_TARGET(log_recovery)
SQUALL_FUZZ_TARGET(checkpoint)
SQUALL_FUZZ_TARGET(kv_update)
SQUALL_FUZZ_TARGET(view_log)
SQUALL_FUZZ_TARGET(membership)
SQUALL_FUZZ_TARGET(transfer)
SQUALL_FUZZ_TARGET(hello)
SQUALL_FUZZ_TARGET(rest_parse)
SQUALL_FUZZ_TARGET(rest_request)
#undef SQUALL_FUZZ_TARGET

namespace {

// Runs `one` on every file of fuzz/corpus/<target>; returns how many there were.
std::size_t replay(const std::string& target, FuzzOne one) {
  squall::LogSettings quiet;
  quiet.level = "off";
  REQUIRE(squall::init_logging(quiet).is_ok());
  const std::filesystem::path folder = std::filesystem::path(SQUALL_FUZZ_CORPUS_DIR) / target;
  REQUIRE(std::filesystem::is_directory(folder));
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(folder)) {
    if (entry.is_regular_file()) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& file : files) {
    std::ifstream in(file, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)),
                            std::istreambuf_iterator<char>());
    INFO("input " << file.string());
    CHECK(one(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()) == 0);
  }
  return files.size();
}

}  // namespace

#define SQUALL_FUZZ_REPLAY(name)                                      \
  TEST_CASE("fuzz corpus replays: " #name, "[fuzz]") {                \
    CHECK(replay(#name, &fuzz_##name##_one) > 0);                     \
  }
SQUALL_FUZZ_REPLAY(config)
SQUALL_FUZZ_REPLAY(record)
SQUALL_FUZZ_REPLAY(segment_scan)
SQUALL_FUZZ_REPLAY(log_recovery)
SQUALL_FUZZ_REPLAY(checkpoint)
SQUALL_FUZZ_REPLAY(kv_update)
SQUALL_FUZZ_REPLAY(view_log)
SQUALL_FUZZ_REPLAY(membership)
SQUALL_FUZZ_REPLAY(transfer)
SQUALL_FUZZ_REPLAY(hello)
SQUALL_FUZZ_REPLAY(rest_parse)
SQUALL_FUZZ_REPLAY(rest_request)
