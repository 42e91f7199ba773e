// Checkpoints: the format (chunks, CRCs, bounded reading), make/install round trips,
// install then continue, and read_log for state-transfer suffixes.
#include <random>

#include "kvstore/checkpoint.hpp"
#include "test/kvstore/kv_test_util.hpp"

using namespace squall;
using namespace squall::kvstore;
using namespace squall::kvstore::testing;

namespace {

KvStateMachineOptions machine_options() {
  KvStateMachineOptions options;
  config::PoolConfig cache;
  cache.prefix = "cache/";
  cache.storage = config::Storage::volatile_;
  config::PoolConfig events;
  events.prefix = "events/";
  events.storage = config::Storage::stateless;
  options.pools = {config::PoolConfig{}, cache, events};
  options.sync_thread = false;
  return options;
}

struct Replica {
  explicit Replica(KvStateMachineOptions options = machine_options())
      : directories(temp.path()) {
    auto opened = KvStateMachine::open(std::move(options), directories.provider(), clock);
    REQUIRE(opened.is_ok());
    machine = std::move(opened).value();
  }
  TempDir temp;
  PoolDirectories directories;
  ManualClock clock;
  std::unique_ptr<KvStateMachine> machine;
};

// Random puts and deletes over a few keys of each pool; returns the updates as logged.
std::vector<core::LoggedUpdate> random_updates(std::uint64_t seed, std::size_t count,
                                               Version first) {
  std::mt19937_64 random(seed);
  std::vector<core::LoggedUpdate> updates;
  for (std::size_t i = 0; i < count; ++i) {
    std::string key = std::string(i % 5 == 0 ? "cache/" : i % 7 == 0 ? "events/" : "") +
                      "k" + std::to_string(random() % 20);
    Bytes payload = random() % 5 == 0
                        ? delete_payload(key)
                        : put_payload(key, "value " + std::to_string(random()));
    Version version = first + i;
    updates.push_back({version, hlc_make(5000 + i, 0), NodeId{1}, std::move(payload)});
  }
  return updates;
}

void apply_all(KvStateMachine& machine, std::span<const core::LoggedUpdate> updates) {
  for (const core::LoggedUpdate& update : updates) {
    REQUIRE(machine.apply({update.version, update.timestamp, update.sender, 0, update.payload})
                .is_ok());
  }
}

constexpr Version kFirst = (Version{2} << 32) | 1;

}  // namespace

TEST_CASE("The checkpoint writer cuts chunks by size and pool and the reader checks them") {
  CheckpointLimits limits;
  limits.chunk_bytes = 100;
  CheckpointWriter writer({.version = 50, .timestamp = 9, .pools = 2}, limits);
  std::vector<std::string> keys;
  for (int i = 0; i < 20; ++i) keys.push_back("key-" + std::to_string(i));
  for (int i = 0; i < 20; ++i) {
    REQUIRE(writer.add({static_cast<std::uint32_t>(i / 10), static_cast<Version>(i + 1), 7,
                        keys[static_cast<std::size_t>(i)], as_bytes("some value")})
                .is_ok());
  }
  CHECK(writer.add({2, 1, 1, "x", {}}).code() == Code::invalid_argument);
  Bytes bytes = writer.finish();
  std::vector<std::string> seen;
  auto header = read_checkpoint(bytes, limits, [&](const CheckpointEntry& entry) {
    CHECK(entry.pool == (seen.size() < 10 ? 0U : 1U));
    CHECK(as_string_view(entry.value) == "some value");
    seen.emplace_back(entry.key);
    return Status::ok();
  });
  REQUIRE(header.is_ok());
  CHECK(header->version == 50);
  CHECK(header->timestamp == 9);
  CHECK(seen == keys);
  // Every single-byte change and every truncation is detected.
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    Bytes damaged = bytes;
    damaged[i] ^= std::byte{0x01};
    CHECK(read_checkpoint(damaged, limits, nullptr).status().code() == Code::corruption);
    CHECK(read_checkpoint(std::span<const std::byte>(bytes).first(i), limits, nullptr)
              .status().code() == Code::corruption);
  }
}

TEST_CASE("A checkpoint larger than the limit is refused") {
  CheckpointLimits limits;
  limits.max_checkpoint_bytes = 300;
  CheckpointWriter writer({.version = 5, .timestamp = 1, .pools = 1}, limits);
  std::string value(150, 'v');
  CHECK(writer.add({0, 1, 1, "a", as_bytes(value)}).is_ok());
  CHECK(writer.add({0, 2, 1, "b", as_bytes(value)}).code() == Code::no_space);
}

TEST_CASE("Install of a checkpoint reproduces the latest state, then both continue alike") {
  auto seed = GENERATE(11, 12, 13);
  Replica source;
  auto updates = random_updates(static_cast<std::uint64_t>(seed), 300, kFirst);
  apply_all(*source.machine, std::span(updates).first(200));
  auto checkpoint = source.machine->make_checkpoint();
  REQUIRE(checkpoint.is_ok());
  CHECK(checkpoint->version == updates[199].version);
  CHECK(checkpoint->timestamp == updates[199].timestamp);

  Replica joiner;
  apply_all(*joiner.machine, random_updates(99, 50, 1));  // stale state, replaced by install
  REQUIRE(joiner.machine->install(checkpoint.value(), {}).is_ok());
  CHECK(joiner.machine->applied_version() == checkpoint->version);
  CHECK(joiner.machine->persisted_version() == checkpoint->version);
  CHECK(latest_state(*joiner.machine) == latest_state(*source.machine));

  std::vector<KvResult> source_results;
  std::vector<KvResult> joiner_results;
  source.machine->on_result = [&](const KvResult& r) { source_results.push_back(r); };
  joiner.machine->on_result = [&](const KvResult& r) { joiner_results.push_back(r); };
  apply_all(*source.machine, std::span(updates).subspan(200));
  apply_all(*joiner.machine, std::span(updates).subspan(200));
  CHECK(source_results == joiner_results);
  CHECK(latest_state(*joiner.machine) == latest_state(*source.machine));
}

TEST_CASE("Install with a suffix from read_log equals the source") {
  Replica source;
  auto updates = random_updates(21, 300, kFirst);
  apply_all(*source.machine, std::span(updates).first(120));
  auto checkpoint = source.machine->make_checkpoint().value();
  apply_all(*source.machine, std::span(updates).subspan(120));

  std::vector<core::LoggedUpdate> suffix;
  Version after = checkpoint.version;
  for (;;) {
    auto page = source.machine->read_log(after, 512);
    REQUIRE(page.is_ok());
    if (page->empty()) break;
    for (const auto& update : *page) suffix.push_back(update);
    after = page->back().version;
  }
  REQUIRE(suffix.size() == 180);
  CHECK(suffix.front() == updates[120]);
  CHECK(suffix.back() == updates[299]);

  Replica joiner;
  REQUIRE(joiner.machine->install(checkpoint, suffix).is_ok());
  CHECK(joiner.machine->applied_version() == updates.back().version);
  CHECK(latest_state(*joiner.machine) == latest_state(*source.machine));
  // And the joiner can serve the same suffix onwards.
  auto again = joiner.machine->read_log(updates[249].version, 1 << 20);
  REQUIRE(again.is_ok());
  CHECK(again->size() == 50);
}

TEST_CASE("read_log pages by bytes and reports what it no longer holds") {
  KvStateMachineOptions options = machine_options();
  options.log_cache_updates = 50;
  Replica replica(options);
  auto updates = random_updates(31, 120, kFirst);
  apply_all(*replica.machine, updates);
  CHECK(replica.machine->read_log(updates[10].version, 1 << 20).status().code() ==
        Code::out_of_range);
  auto tail = replica.machine->read_log(updates[69].version, 1 << 20);
  REQUIRE(tail.is_ok());
  CHECK(tail->size() == 50);
  auto one = replica.machine->read_log(updates[69].version, 1);
  REQUIRE(one.is_ok());
  CHECK(one->size() == 1);  // at least one update, whatever max_bytes
  auto none = replica.machine->read_log(updates.back().version, 1 << 20);
  REQUIRE(none.is_ok());
  CHECK(none->empty());
}

TEST_CASE("A damaged checkpoint is refused and leaves the state untouched") {
  Replica source;
  apply_all(*source.machine, random_updates(41, 100, kFirst));
  auto checkpoint = source.machine->make_checkpoint().value();
  Replica target;
  auto own = random_updates(42, 30, 1);
  apply_all(*target.machine, own);
  auto before = latest_state(*target.machine);
  core::Checkpoint damaged = checkpoint;
  damaged.state[damaged.state.size() / 2] ^= std::byte{0x40};
  CHECK(target.machine->install(damaged, {}).code() == Code::corruption);
  core::Checkpoint wrong_version = checkpoint;
  wrong_version.version += 1;
  CHECK(target.machine->install(wrong_version, {}).code() == Code::corruption);
  CHECK(latest_state(*target.machine) == before);
  CHECK(target.machine->applied_version() == own.back().version);
}

TEST_CASE("A persistent replica that installed a checkpoint reopens with that state") {
  TempDir temp;
  ManualClock clock;
  Replica source;
  auto updates = random_updates(51, 80, kFirst);
  apply_all(*source.machine, updates);
  auto checkpoint = source.machine->make_checkpoint().value();
  std::map<std::string, std::pair<Version, std::string>> installed;
  {
    PoolDirectories directories(temp.path());
    auto machine = KvStateMachine::open(machine_options(), directories.provider(), clock).value();
    apply_all(*machine, random_updates(52, 40, 1));
    REQUIRE(machine->install(checkpoint, {}).is_ok());
    installed = latest_state(*machine);
  }
  PoolDirectories directories(temp.path());
  auto machine = KvStateMachine::open(machine_options(), directories.provider(), clock).value();
  // Volatile pools are empty after a restart; persistent ones hold the installed state.
  std::map<std::string, std::pair<Version, std::string>> persistent;
  for (const auto& [key, value] : installed) {
    if (!key.starts_with("cache/")) persistent[key] = value;
  }
  CHECK(latest_state(*machine) == persistent);
}
