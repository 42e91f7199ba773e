// KvStateMachine: conditions, created vs ok, tombstones, deletes of absent keys, results,
// group commit across no-op versions, pools by storage mode, replay equality, reopening.
#include <random>

#include "test/kvstore/kv_test_util.hpp"

using namespace squall;
using namespace squall::kvstore;
using namespace squall::kvstore::testing;

namespace {

KvStateMachineOptions options_with(bool sync_thread = false) {
  KvStateMachineOptions options;
  config::PoolConfig cache;
  cache.prefix = "cache/";
  cache.storage = config::Storage::volatile_;
  config::PoolConfig events;
  events.prefix = "events/";
  events.storage = config::Storage::stateless;
  options.pools = {config::PoolConfig{}, cache, events};
  options.sync_thread = sync_thread;
  options.sync_every_updates = 4;
  options.store.log.segment_size_bytes = 1 << 16;
  return options;
}

struct Fixture {
  explicit Fixture(bool sync_thread = false) : directories(temp.path()) {
    auto opened = KvStateMachine::open(options_with(sync_thread), directories.provider(), clock);
    REQUIRE(opened.is_ok());
    machine = std::move(opened).value();
    feeder = std::make_unique<Feeder>(*machine);
  }
  TempDir temp;
  PoolDirectories directories;
  ManualClock clock;
  std::unique_ptr<KvStateMachine> machine;
  std::unique_ptr<Feeder> feeder;
};

}  // namespace

TEST_CASE("A put to a new key is created, a put to an existing key ok, with delivered stamps") {
  Fixture f;
  Version v1 = f.feeder->apply(put_payload("a", "1", KvCondition::none, 0, {NodeId{2}, 7}));
  const KvResult first = f.feeder->last();
  CHECK(first.outcome == KvOutcome::created);
  CHECK(first.request == RequestId{NodeId{2}, 7});
  CHECK(first.version == v1);
  CHECK(first.timestamp == hlc_make(1000 + v1 % 100000, 0));
  Version v2 = f.feeder->apply(put_payload("a", "2"));
  CHECK(f.feeder->last().outcome == KvOutcome::ok);
  auto read = f.machine->store_for_key("a")->get("a");
  REQUIRE(read.is_ok());
  CHECK(text_of(read->value) == "2");
  CHECK(read->entry.version == v2);
  CHECK(f.machine->applied_version() == v2);
}

TEST_CASE("if_version writes only at the expected version and reports the current one") {
  Fixture f;
  Version v1 = f.feeder->apply(put_payload("k", "1"));
  Version v2 = f.feeder->apply(put_payload("k", "2", KvCondition::if_version, v1));
  CHECK(f.feeder->last().outcome == KvOutcome::ok);
  Version v3 = f.feeder->apply(put_payload("k", "3", KvCondition::if_version, v1));
  CHECK(f.feeder->last().outcome == KvOutcome::precondition_failed);
  CHECK(f.feeder->last().current_version == v2);
  CHECK(f.feeder->last().version == v3);
  f.feeder->apply(delete_payload("k", KvCondition::if_version, v1));
  CHECK(f.feeder->last().outcome == KvOutcome::precondition_failed);
  f.feeder->apply(delete_payload("k", KvCondition::if_version, v2));
  CHECK(f.feeder->last().outcome == KvOutcome::ok);
  // Deleted keys never match a version.
  f.feeder->apply(put_payload("k", "4", KvCondition::if_version, v2));
  CHECK(f.feeder->last().outcome == KvOutcome::precondition_failed);
  CHECK(f.feeder->last().current_version == std::nullopt);
  f.feeder->apply(put_payload("never", "x", KvCondition::if_version, v1));
  CHECK(f.feeder->last().outcome == KvOutcome::precondition_failed);
  CHECK(f.feeder->last().current_version == std::nullopt);
  CHECK(f.machine->store_for_key("k")->get("k").status().code() == Code::not_found);
  CHECK(f.machine->store_for_key("never")->lookup("never", ReadPoint::latest()).outcome ==
        Lookup::absent);
}

TEST_CASE("if_exists and if_absent on absent, existing and deleted keys") {
  Fixture f;
  f.feeder->apply(put_payload("k", "x", KvCondition::if_exists));
  CHECK(f.feeder->last().outcome == KvOutcome::precondition_failed);
  f.feeder->apply(put_payload("k", "1", KvCondition::if_absent));
  CHECK(f.feeder->last().outcome == KvOutcome::created);
  Version v2 = f.feeder->apply(put_payload("k", "2", KvCondition::if_absent));
  CHECK(f.feeder->last().outcome == KvOutcome::precondition_failed);
  CHECK(f.feeder->last().current_version == v2 - 1);
  f.feeder->apply(put_payload("k", "3", KvCondition::if_exists));
  CHECK(f.feeder->last().outcome == KvOutcome::ok);
  f.feeder->apply(delete_payload("k", KvCondition::if_exists));
  CHECK(f.feeder->last().outcome == KvOutcome::ok);
  f.feeder->apply(delete_payload("k", KvCondition::if_exists));
  CHECK(f.feeder->last().outcome == KvOutcome::precondition_failed);
  f.feeder->apply(put_payload("k", "5", KvCondition::if_exists));
  CHECK(f.feeder->last().outcome == KvOutcome::precondition_failed);
  f.feeder->apply(put_payload("k", "6", KvCondition::if_absent));
  CHECK(f.feeder->last().outcome == KvOutcome::created);  // recreated after a delete
}

TEST_CASE("Deletes write tombstones, deleting an absent key is not_found and writes nothing") {
  Fixture f;
  Version v1 = f.feeder->apply(put_payload("k", "1"));
  Version v2 = f.feeder->apply(delete_payload("k"));
  CHECK(f.feeder->last().outcome == KvOutcome::ok);
  const Store& store = *f.machine->store_for_key("k");
  FindResult tombstone = store.lookup("k", ReadPoint::latest());
  CHECK(tombstone.outcome == Lookup::found);
  CHECK(tombstone.entry.op == Op::del);
  CHECK(tombstone.entry.version == v2);
  CHECK(store.get("k", ReadPoint::at_version(v1)).is_ok());
  f.feeder->apply(delete_payload("k"));
  CHECK(f.feeder->last().outcome == KvOutcome::not_found);
  f.feeder->apply(delete_payload("other"));
  CHECK(f.feeder->last().outcome == KvOutcome::not_found);
  CHECK(store.stats().last_version == v2);  // nothing written after the tombstone
  CHECK(f.machine->stats().not_found == 2);
  f.feeder->apply(put_payload("k", "again"));
  CHECK(f.feeder->last().outcome == KvOutcome::created);
}

TEST_CASE("Versions of updates that wrote nothing are covered by the persisted version") {
  Fixture f;
  Version v1 = f.feeder->apply(put_payload("k", "1"));
  CHECK(f.machine->persisted_version() == 0);   // the order was busy since the last poll
  CHECK(f.machine->persisted_version() == v1);  // a quiet poll syncs
  Version last = 0;
  for (int i = 0; i < 3; ++i) {
    last = f.feeder->apply(put_payload("k", "x", KvCondition::if_absent));  // all fail
  }
  CHECK(f.machine->store_for_key("k")->durable_version() == v1);
  CHECK(f.machine->persisted_version() == v1);
  CHECK(f.machine->persisted_version() == last);  // quiet now: the sync covers the gap
  CHECK(f.machine->applied_version() == last);
  // A busy order syncs every sync_every_updates (4) updates, quiet or not.
  Version busy = 0;
  for (int i = 0; i < 4; ++i) busy = f.feeder->apply(put_payload("k", std::to_string(i)));
  CHECK(f.machine->persisted_version() == busy);
  Version more = f.feeder->apply(put_payload("k", "y"));
  CHECK(f.machine->persisted_version() == busy);  // 1 pending, the order was busy
  f.machine->request_sync();
  f.feeder->apply(put_payload("k", "z"));
  CHECK(f.machine->persisted_version() == more + 1);
}

TEST_CASE("The sync thread makes applied updates persisted") {
  Fixture f(true);
  Version last = 0;
  for (int i = 0; i < 50; ++i) last = f.feeder->apply(put_payload("k" + std::to_string(i), "v"));
  Version polled = f.machine->persisted_version();  // starts a sync on the thread
  CHECK(polled <= last);
  REQUIRE(f.machine->flush().is_ok());
  CHECK(f.machine->persisted_version() == last);
  CHECK(f.machine->store_for_key("k1")->durable_version() == last);
  CHECK(f.machine->stats().syncs >= 1);
}

TEST_CASE("Volatile pools live in memory, stateless pools store nothing") {
  Fixture f;
  f.feeder->apply(put_payload("cache/a", "1"));
  CHECK(f.feeder->last().outcome == KvOutcome::created);
  CHECK(f.machine->store_for_key("cache/a")->options().mode == StorageMode::in_memory);
  CHECK(f.machine->store_for_key("a")->options().mode == StorageMode::persistent);
  CHECK(f.machine->store_for_key("events/x") == nullptr);
  f.feeder->apply(put_payload("events/x", "1"));
  CHECK(f.feeder->last().outcome == KvOutcome::ok);
  f.feeder->apply(delete_payload("events/x"));
  CHECK(f.feeder->last().outcome == KvOutcome::ok);
  f.feeder->apply(put_payload("events/x", "1", KvCondition::if_exists));
  CHECK(f.feeder->last().outcome == KvOutcome::precondition_failed);
  CHECK(f.machine->store_for_key("a")->stats().last_version == 0);
}

TEST_CASE("A malformed payload is skipped as a no-op that consumes its version") {
  Fixture f;
  f.feeder->apply(put_payload("k", "1"));
  std::size_t results = f.feeder->results.size();
  Version bad = f.feeder->apply(Bytes{std::byte{9}, std::byte{9}});
  CHECK(f.feeder->results.size() == results);
  CHECK(f.machine->stats().malformed == 1);
  CHECK(f.machine->applied_version() == bad);
  f.feeder->apply(put_payload("k", "2"));
  CHECK(f.feeder->last().outcome == KvOutcome::ok);
}

TEST_CASE("Two machines fed the same random updates end identical, with identical results") {
  auto seed = GENERATE(1, 2, 3, 4, 5);
  Fixture a;
  Fixture b;
  std::mt19937_64 random(static_cast<std::uint64_t>(seed));
  std::vector<std::string> keys;
  for (int i = 0; i < 12; ++i) keys.push_back((i % 3 == 0 ? "cache/" : "") + std::to_string(i));
  Version last = 0;
  for (int i = 0; i < 400; ++i) {
    const std::string& key = keys[random() % keys.size()];
    auto condition = static_cast<KvCondition>(random() % 4);
    // Expected versions near the real ones, so some match.
    Version expected = condition == KvCondition::if_version ? last - random() % 4 : 0;
    if (expected == 0 && condition == KvCondition::if_version) condition = KvCondition::none;
    Bytes payload;
    if (random() % 4 == 0 && condition != KvCondition::if_absent) {
      payload = delete_payload(key, condition, expected);
    } else {
      payload = put_payload(key, fmt::format("value {}", i), condition, expected);
    }
    last = a.feeder->apply(payload);
    CHECK(b.feeder->apply(payload) == last);
  }
  CHECK(a.feeder->results == b.feeder->results);
  CHECK(dump(*a.machine, keys) == dump(*b.machine, keys));
  CHECK(latest_state(*a.machine) == latest_state(*b.machine));
  CHECK(a.machine->stats().precondition_failed > 0);
  CHECK(a.machine->stats().written > 0);
}

TEST_CASE("A reopened machine has its persistent pools back and its volatile pools empty") {
  TempDir temp;
  ManualClock clock;
  Version last = 0;
  {
    PoolDirectories directories(temp.path());
    auto machine = KvStateMachine::open(options_with(), directories.provider(), clock).value();
    Feeder feeder(*machine);
    feeder.apply(put_payload("a", "1"));
    feeder.apply(put_payload("cache/b", "2"));
    last = feeder.apply(put_payload("a", "3"));
    machine->request_sync();
    CHECK(machine->persisted_version() == last);
  }
  PoolDirectories directories(temp.path());
  auto machine = KvStateMachine::open(options_with(), directories.provider(), clock).value();
  CHECK(machine->applied_version() == last);
  CHECK(machine->persisted_version() == last);
  CHECK(text_of(machine->store_for_key("a")->get("a")->value) == "3");
  CHECK(machine->store_for_key("cache/b")->get("cache/b").status().code() == Code::not_found);
}
