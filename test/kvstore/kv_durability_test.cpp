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
