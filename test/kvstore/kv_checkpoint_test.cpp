// Checkpoints: the format (chunks, CRCs, bounded reading), make/install round trips,
// install then continue, and read_log for state-transfer suffixes.
#include <random>
#include <set>

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

// Like random_updates, with conditional puts and deletes (many fail) and a failing last update.
std::vector<core::LoggedUpdate> conditional_updates(std::uint64_t seed, std::size_t count,
                                                    Version first) {
  std::mt19937_64 random(seed);
  std::vector<core::LoggedUpdate> updates;
  for (std::size_t i = 0; i < count; ++i) {
    std::string key = std::string(i % 5 == 0 ? "cache/" : i % 7 == 0 ? "events/" : "") +
                      "k" + std::to_string(random() % 20);
    std::string value = "value " + std::to_string(random()) + std::string(80, 'v');
    Bytes payload;
    switch (i + 1 == count ? 5 : random() % 6) {
      case 0: payload = delete_payload(key); break;
      case 1: payload = put_payload(key, value, KvCondition::if_absent); break;
      case 2: payload = put_payload(key, value, KvCondition::if_exists); break;
      case 3: payload = delete_payload(key, KvCondition::if_version, first + random() % (i + 1));
              break;
      case 4: payload = put_payload(key, value); break;
      default: payload = put_payload(key, value, KvCondition::if_version, 1); break;  // fails
    }
    updates.push_back({first + i, hlc_make(5000 + (first - kFirst) + i, 0), NodeId{1},
                       std::move(payload)});
  }
  return updates;
}

// read_log from `after` to the end, paged by `max_bytes`.
std::vector<core::LoggedUpdate> read_whole_log(KvStateMachine& machine, Version after,
                                               std::size_t max_bytes) {
  std::vector<core::LoggedUpdate> log;
  for (;;) {
    auto page = machine.read_log(after, max_bytes);
    REQUIRE(page.is_ok());
    if (page->empty()) return log;
    for (const auto& update : *page) {
      REQUIRE(update.version > after);
      after = update.version;
      log.push_back(update);
    }
  }
}

std::vector<std::string> keys_of(const std::vector<core::LoggedUpdate>& updates) {
  std::set<std::string> keys;
  for (const auto& update : updates) {
    keys.emplace(decode_update(update.payload, KvCodecLimits{}).value().key);
  }
  return {keys.begin(), keys.end()};
}

std::vector<std::pair<Version, Op>> versions_of(const std::vector<Entry>& entries) {
  std::vector<std::pair<Version, Op>> out;
  for (const Entry& entry : entries) out.emplace_back(entry.version, entry.op);
  return out;
}

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

  std::vector<core::LoggedUpdate> suffix = read_whole_log(*source.machine, checkpoint.version,
                                                          512);
  REQUIRE(!suffix.empty());
  CHECK(suffix.back().version == updates.back().version);
  Replica joiner;
  REQUIRE(joiner.machine->install(checkpoint, suffix).is_ok());
  CHECK(joiner.machine->applied_version() == updates.back().version);
  CHECK(latest_state(*joiner.machine) == latest_state(*source.machine));
  auto keys = keys_of(updates);
  // Histories match above the checkpoint; at or below it the joiner's is gone, never wrong.
  for (const std::string& key : keys) {
    const Store* store = source.machine->store_for_key(key);
    if (store == nullptr) continue;
    auto expected = store->history(key, std::nullopt, 1000).value().versions;
    std::erase_if(expected, [&](const Entry& e) { return e.version <= checkpoint.version; });
    auto got = joiner.machine->store_for_key(key)->history(key, std::nullopt, 1000).value();
    std::erase_if(got.versions, [&](const Entry& e) { return e.version <= checkpoint.version; });
    CHECK(versions_of(got.versions) == versions_of(expected));
  }
  // The joiner serves the log above the checkpoint onwards, and not below it.
  CHECK(joiner.machine->read_log(checkpoint.version - 1, 1 << 20).status().code() ==
        Code::out_of_range);
  CHECK(read_whole_log(*joiner.machine, checkpoint.version, 1 << 20) == suffix);
}

TEST_CASE("read_log from the stores: an empty checkpoint plus the whole log gives identical "
          "histories") {
  auto seed = GENERATE(61, 62, 63);
  KvStateMachineOptions options = machine_options();
  options.store.log.segment_size_bytes = 4096;  // the log spans many segments
  Replica source(options);
  auto updates = conditional_updates(static_cast<std::uint64_t>(seed), 400, kFirst);
  apply_all(*source.machine, updates);
  CHECK(source.machine->stats().precondition_failed > 0);
  CHECK(source.machine->store(0)->stats().segments > 3);
  auto log = read_whole_log(*source.machine, 0, 700);
  // Only writes are carried (re-encoded, sender unknown), plus a filler when the last update
  // wrote nothing.
  for (const core::LoggedUpdate& update : log) CHECK(update.sender == NodeId{});
  CHECK(log.size() < updates.size());
  CHECK(log.back().version == updates.back().version);
  CHECK(log.back().payload.empty());
  CHECK(source.machine->stats().written == log.size() - 1);

  Replica fresh(options);
  auto empty = fresh.machine->make_checkpoint().value();
  Replica joiner(options);
  REQUIRE(joiner.machine->install(empty, log).is_ok());
  CHECK(joiner.machine->applied_version() == source.machine->applied_version());
  auto keys = keys_of(updates);
  CHECK(dump(*joiner.machine, keys) == dump(*source.machine, keys));
  CHECK(latest_state(*joiner.machine) == latest_state(*source.machine));
  // Both continue alike, conditions included.
  auto more = conditional_updates(static_cast<std::uint64_t>(seed) + 100, 100,
                                  updates.back().version + 1);
  std::vector<KvResult> source_results;
  std::vector<KvResult> joiner_results;
  source.machine->on_result = [&](const KvResult& r) { source_results.push_back(r); };
  joiner.machine->on_result = [&](const KvResult& r) { joiner_results.push_back(r); };
  apply_all(*source.machine, more);
  apply_all(*joiner.machine, more);
  CHECK(source_results == joiner_results);
  CHECK(dump(*joiner.machine, keys) == dump(*source.machine, keys));
}

TEST_CASE("read_log pages by bytes, ends with a filler, and is empty at the applied version") {
  Replica replica;
  Feeder feeder(*replica.machine);
  Version first = feeder.apply(put_payload("a", std::string(100, 'x')));
  Version second = feeder.apply(put_payload("cache/b", std::string(100, 'y')));
  Version third = feeder.apply(put_payload("events/c", "stateless"));
  Version fourth = feeder.apply(put_payload("a", "z", KvCondition::if_absent));  // fails
  auto one = replica.machine->read_log(0, 1);
  REQUIRE(one.is_ok());
  REQUIRE(one->size() == 1);  // at least one update, whatever max_bytes
  CHECK(one->front().version == first);
  auto all = replica.machine->read_log(0, 1 << 20);
  REQUIRE(all.is_ok());
  REQUIRE(all->size() == 3);
  CHECK((*all)[1].version == second);
  CHECK((*all)[2].version == fourth);  // the filler: the stateless write and the failed put
  CHECK((*all)[2].payload.empty());    // are not carried, the last version is
  CHECK((*all)[2].timestamp == hlc_make(1000 + fourth % 100000, 0));
  auto filler = replica.machine->read_log(second, 1 << 20);
  REQUIRE(filler.is_ok());
  REQUIRE(filler->size() == 1);
  CHECK(filler->front().version == fourth);
  CHECK(replica.machine->read_log(third, 1).value().size() == 1);
  CHECK(replica.machine->read_log(fourth, 1 << 20).value().empty());
  // Pages of at most max_bytes of payload (one update may exceed it alone).
  Replica big;
  apply_all(*big.machine, random_updates(31, 200, kFirst));
  for (std::size_t max_bytes : {std::size_t{1}, std::size_t{100}, std::size_t{333}}) {
    Version after = 0;
    std::size_t count = 0;
    for (;;) {
      auto page = big.machine->read_log(after, max_bytes);
      REQUIRE(page.is_ok());
      if (page->empty()) break;
      std::size_t bytes = 0;
      for (const auto& update : *page) bytes += update.payload.size();
      CHECK((page->size() == 1 || bytes <= max_bytes));
      count += page->size();
      after = page->back().version;
    }
    CHECK(after == big.machine->applied_version());
    CHECK(count == read_whole_log(*big.machine, 0, 1 << 20).size());
  }
}

TEST_CASE("read_log after a restart is served from the log on disk") {
  KvStateMachineOptions options = machine_options();
  options.pools.erase(options.pools.begin() + 1);  // no volatile pool: everything survives
  options.store.log.segment_size_bytes = 4096;
  TempDir temp;
  ManualClock clock;
  auto updates = conditional_updates(71, 300, kFirst);
  std::vector<core::LoggedUpdate> before;
  std::string dumped;
  auto keys = keys_of(updates);
  {
    PoolDirectories directories(temp.path());
    auto machine = KvStateMachine::open(options, directories.provider(), clock).value();
    apply_all(*machine, updates);
    REQUIRE(machine->flush().is_ok());
    before = read_whole_log(*machine, updates[100].version, 1000);
    dumped = dump(*machine, keys);
  }
  PoolDirectories directories(temp.path());
  auto machine = KvStateMachine::open(options, directories.provider(), clock).value();
  Version recovered = machine->applied_version();
  REQUIRE(recovered > updates[100].version);
  auto after = read_whole_log(*machine, updates[100].version, 1000);
  // The same writes up to the recovered version (the last write); no filler after a restart.
  std::erase_if(before, [&](const core::LoggedUpdate& u) { return u.version > recovered; });
  CHECK(after == before);
  Replica joiner(options);
  auto empty = joiner.machine->make_checkpoint().value();
  REQUIRE(joiner.machine->install(empty, read_whole_log(*machine, 0, 4096)).is_ok());
  CHECK(dump(*joiner.machine, keys) == dump(*machine, keys));
  CHECK(dump(*machine, keys) == dumped);
}

TEST_CASE("read_log is out_of_range below lost or discarded history") {
  SECTION("retention and compaction, then a restart") {
    KvStateMachineOptions options = machine_options();
    options.pools.erase(options.pools.begin() + 1);  // no volatile pool (see the next section)
    options.pools[0].retention.max_versions = 1;
    options.store.log.segment_size_bytes = 4096;
    TempDir temp;
    ManualClock clock;
    auto updates = random_updates(81, 300, kFirst);
    Version horizon = 0;
    {
      PoolDirectories directories(temp.path());
      auto machine = KvStateMachine::open(options, directories.provider(), clock).value();
      apply_all(*machine, updates);
      REQUIRE(machine->flush().is_ok());
      REQUIRE(machine->store(0)->apply_retention().is_ok());
      REQUIRE(machine->store(0)->compact().is_ok());
      horizon = machine->store(0)->changes_horizon("");
      REQUIRE(horizon > kFirst);
      CHECK(machine->read_log(horizon - 1, 1 << 20).status().code() == Code::out_of_range);
      CHECK(machine->read_log(horizon, 1 << 20).is_ok());
    }
    PoolDirectories directories(temp.path());
    auto machine = KvStateMachine::open(options, directories.provider(), clock).value();
    CHECK(machine->read_log(horizon - 1, 1 << 20).status().code() == Code::out_of_range);
    CHECK(machine->read_log(horizon, 1 << 20).is_ok());
  }
  SECTION("a volatile pool restarts empty") {
    TempDir temp;
    ManualClock clock;
    auto updates = random_updates(82, 100, kFirst);
    {
      PoolDirectories directories(temp.path());
      auto machine = KvStateMachine::open(machine_options(), directories.provider(), clock)
                         .value();
      apply_all(*machine, updates);
      REQUIRE(machine->flush().is_ok());
    }
    PoolDirectories directories(temp.path());
    auto machine = KvStateMachine::open(machine_options(), directories.provider(), clock)
                       .value();
    Version recovered = machine->applied_version();
    REQUIRE(recovered > kFirst);
    CHECK(machine->read_log(kFirst, 1 << 20).status().code() == Code::out_of_range);
    CHECK(machine->read_log(recovered, 1 << 20).value().empty());
  }
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
