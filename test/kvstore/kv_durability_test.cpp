// KvStateMachine durability: what persisted_version() reported survives a power loss, and a
// failed sync stops the persisted version and the replica.
#include <random>

#include "test/kvstore/kv_test_util.hpp"

using namespace squall;
using namespace squall::kvstore;
using namespace squall::kvstore::testing;

namespace {

KvStateMachineOptions durable_options(bool sync_thread) {
  KvStateMachineOptions options;
  config::PoolConfig cache;
  cache.prefix = "cache/";
  cache.storage = config::Storage::volatile_;
  options.pools = {config::PoolConfig{}, cache};
  options.sync_thread = sync_thread;
  options.sync_every_updates = 8;
  options.store.log.segment_size_bytes = 4096;  // rotations seal segments too
  return options;
}

std::unique_ptr<KvStateMachine> open_on(FaultyDirectory& directory, bool sync_thread,
                                        const Clock& clock) {
  auto machine = KvStateMachine::open(
      durable_options(sync_thread),
      [&directory](std::size_t, const config::PoolConfig&) -> Result<Directory*> {
        return &directory;
      },
      clock);
  REQUIRE(machine.is_ok());
  return std::move(machine).value();
}

struct Written {
  std::string key;
  std::string value;
  KvOp op = KvOp::put;
};

}  // namespace

TEST_CASE("Every write reported persisted survives a power loss") {
  auto seed = GENERATE(range(1, 41));
  std::mt19937_64 random(static_cast<std::uint64_t>(seed));
  TempDir temp;
  auto directory = faulty_dir(temp.path());
  ManualClock clock;
  auto machine = open_on(*directory, false, clock);
  Feeder feeder(*machine);
  std::map<Version, Written> writes;
  Version persisted = 0;
  std::size_t count = 50 + random() % 200;
  for (std::size_t i = 0; i < count; ++i) {
    std::string key = "k" + std::to_string(random() % 15);
    bool remove = random() % 5 == 0;
    auto condition = random() % 4 == 0 ? KvCondition::if_exists : KvCondition::none;
    std::string value = "v" + std::to_string(i);
    Version version = feeder.apply(remove ? delete_payload(key, condition)
                                          : put_payload(key, value, condition));
    const KvResult& result = feeder.last();
    if (result.outcome == KvOutcome::ok || result.outcome == KvOutcome::created) {
      writes[version] = {key, value, remove ? KvOp::del : KvOp::put};
    }
    if (random() % 3 == 0) persisted = machine->persisted_version();
  }
  REQUIRE(directory->crash(CrashKind::power_loss, static_cast<std::uint64_t>(seed)).is_ok());
  machine.reset();
  machine = open_on(*directory, false, clock);
  const Store& store = *machine->store_for_key("k");
  for (const auto& [version, written] : writes) {
    if (version > persisted) break;
    INFO("seed " << seed << " version " << version << " key " << written.key);
    FindResult found = store.lookup(written.key, ReadPoint::at_version(version));
    REQUIRE(found.outcome == Lookup::found);
    CHECK(found.entry.version == version);
    CHECK((found.entry.op == Op::put) == (written.op == KvOp::put));
  }
  CHECK(machine->applied_version() <= feeder.last().version);
  CHECK(machine->persisted_version() == machine->applied_version());
}

TEST_CASE("With the sync thread, persisted writes survive a power loss") {
  TempDir temp;
  auto directory = faulty_dir(temp.path());
  ManualClock clock;
  auto machine = open_on(*directory, true, clock);
  Feeder feeder(*machine);
  Version last = 0;
  for (int i = 0; i < 300; ++i) {
    last = feeder.apply(put_payload("k" + std::to_string(i % 40), "v" + std::to_string(i)));
    machine->persisted_version();
  }
  REQUIRE(machine->flush().is_ok());
  REQUIRE(machine->persisted_version() == last);
  auto before = latest_state(*machine);
  REQUIRE(directory->crash(CrashKind::power_loss, 1).is_ok());
  machine.reset();
  machine = open_on(*directory, true, clock);
  CHECK(latest_state(*machine) == before);
  CHECK(machine->applied_version() == last);
}

TEST_CASE("A failed sync freezes the persisted version and the next apply fails") {
  TempDir temp;
  auto directory = faulty_dir(temp.path());
  ManualClock clock;
  auto machine = open_on(*directory, false, clock);
  Feeder feeder(*machine);
  Version first = feeder.apply(put_payload("k", "1"));
  machine->request_sync();
  REQUIRE(machine->persisted_version() == first);
  feeder.apply(put_payload("k", "2"));
  directory->fail_next_sync();
  machine->request_sync();
  CHECK(machine->persisted_version() == first);
  CHECK(machine->persisted_version() == first);
  Version next = first + 2;
  Bytes payload = put_payload("k", "3");
  core::DeliveredUpdate update{next, hlc_make(9000, 0), NodeId{1}, 0, payload};
  CHECK(machine->apply(update).code() == Code::io_error);
  CHECK(machine->persisted_version() == first);
}

TEST_CASE("After a power loss that cut pools at different versions, replay catches up") {
  KvStateMachineOptions options;
  config::PoolConfig other;
  other.prefix = "b/";
  options.pools = {config::PoolConfig{}, other};
  options.sync_thread = false;
  TempDir temp_a;
  TempDir temp_b;
  auto dir_a = faulty_dir(temp_a.path());
  auto dir_b = faulty_dir(temp_b.path());
  DirectoryProvider provider = [&](std::size_t index, const config::PoolConfig&)
      -> Result<Directory*> { return index == 0 ? static_cast<Directory*>(dir_a.get())
                                                : static_cast<Directory*>(dir_b.get()); };
  ManualClock clock;
  auto machine = KvStateMachine::open(options, provider, clock).value();
  TempDir temp_reference;
  PoolDirectories reference_dirs(temp_reference.path());
  auto reference = KvStateMachine::open(options, reference_dirs.provider(), clock).value();
  Feeder feeder(*machine);
  Feeder reference_feeder(*reference);
  std::vector<std::string> keys;
  auto both = [&](const Bytes& payload) {
    CHECK(feeder.apply(payload) == reference_feeder.apply(payload));
  };
  for (int i = 0; i < 40; ++i) {
    std::string key = (i % 2 == 0 ? "b/" : "a/") + std::to_string(i % 7);
    keys.push_back(key);
    both(i % 5 == 4 ? delete_payload(key) : put_payload(key, "v" + std::to_string(i)));
  }
  REQUIRE(machine->flush().is_ok());
  Version flushed = machine->applied_version();
  for (int i = 40; i < 80; ++i) {
    std::string key = (i % 2 == 0 ? "b/" : "a/") + std::to_string(i % 7);
    both(put_payload(key, "v" + std::to_string(i), KvCondition::if_exists));
  }
  REQUIRE(machine->store(1)->sync().is_ok());  // only pool "b/" reaches the disk
  Version b_last = machine->store(1)->last_version();
  REQUIRE(dir_a->crash(CrashKind::power_loss, 1).is_ok());
  REQUIRE(dir_b->crash(CrashKind::power_loss, 2).is_ok());
  machine.reset();
  machine = KvStateMachine::open(options, provider, clock).value();
  CHECK(machine->store(1)->last_version() == b_last);
  CHECK(machine->store(0)->last_version() <= flushed);
  CHECK(machine->recovered_version() == machine->store(0)->last_version());
  CHECK(machine->applied_version() == machine->recovered_version());
  auto suffix = reference->read_log(machine->recovered_version(), 1 << 20);
  REQUIRE(suffix.is_ok());
  REQUIRE(machine->replay(suffix.value()).is_ok());
  CHECK(machine->stats().already_stored > 0);
  CHECK(machine->applied_version() == reference->applied_version());
  CHECK(latest_state(*machine) == latest_state(*reference));
  CHECK(dump(*machine, keys) == dump(*reference, keys));
}
