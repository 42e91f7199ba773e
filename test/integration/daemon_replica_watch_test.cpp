// ShardReplica and the watch hub across a state install: the replica's history source reads the
// current stores (merged over pools, gone for stateless ones), install() drops the shard's
// watchers, resuming from their cursors is exact, and the hub's frontier never passes what the
// replica applied.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "common/clock.hpp"
#include "kvstore/kv_codec.hpp"
#include "kvstore/watch_history.hpp"
#include "server/shard_replica.hpp"

namespace squall::test {
namespace {

constexpr ShardId kShard{0};

// Pools "" and "a/" (in memory), and "s/" (stateless) when asked.
std::vector<config::PoolConfig> pools(bool stateless) {
  std::vector<config::PoolConfig> out{config::PoolConfig{"", config::Storage::volatile_, {}, {}},
                                      config::PoolConfig{"a/", config::Storage::volatile_, {}, {}}};
  if (stateless) out.push_back(config::PoolConfig{"s/", config::Storage::stateless, {}, {}});
  return out;
}

std::unique_ptr<kvstore::KvStateMachine> machine(bool stateless) {
  kvstore::KvStateMachineOptions options;
  options.pools = pools(stateless);
  options.sync_thread = false;
  auto opened = kvstore::KvStateMachine::open(options, nullptr, SystemClock::instance());
  REQUIRE(opened.is_ok());
  return std::move(opened).value();
}

// Applies a put of `key` at `version` to every machine given.
void put(Version version, const std::string& key, std::vector<core::StateMachine*> machines) {
  const std::string value = "v" + std::to_string(version);
  kvstore::KvUpdate update;
  update.op = kvstore::KvOp::put;
  update.request = kvstore::RequestId{NodeId{1}, version};
  update.key = key;
  update.value = as_bytes(value);
  const Bytes payload = kvstore::encode_update(update, kvstore::KvCodecLimits{});
  for (core::StateMachine* target : machines) {
    REQUIRE(target->apply(core::DeliveredUpdate{version, version * 10, NodeId{1}, version,
                                                payload}).is_ok());
  }
}

std::unique_ptr<kvstore::Watcher> watch(kvstore::WatchHub& hub, kvstore::Topic topic,
                                        kvstore::WatchStart start) {
  auto watcher = hub.subscribe(topic, start, {});
  REQUIRE(watcher.is_ok());
  return std::move(watcher).value();
}

std::vector<std::string> drain(kvstore::Watcher& watcher, kvstore::PollState* last = nullptr) {
  std::vector<std::string> out;
  std::vector<kvstore::WatchItem> batch;
  for (;;) {
    kvstore::PollState state = watcher.poll(batch, 2);
    for (const kvstore::WatchItem& item : batch) {
      out.push_back(fmt::format("{}@{}", item.event->key, item.event->version));
    }
    if (state != kvstore::PollState::more) {
      if (last != nullptr) *last = state;
      return out;
    }
  }
}

struct Pair {
  explicit Pair(bool stateless = false) : source(machine(stateless)) {
    auto created = kvstore::WatchHub::create({});
    REQUIRE(created.is_ok());
    hub = std::move(created).value();
    replica = std::make_unique<server::ShardReplica>(kShard, machine(stateless), hub.get());
    REQUIRE(hub->add_shard(kShard, replica->applied_version(), replica->watch_history())
                .is_ok());
  }
  ~Pair() { replica.reset(); }

  std::unique_ptr<kvstore::KvStateMachine> source;  // a member further ahead
  std::unique_ptr<kvstore::WatchHub> hub;
  std::unique_ptr<server::ShardReplica> replica;
};

}  // namespace

TEST_CASE("Replica watch: after installing a suffix, a resumed cursor gets every write it "
          "jumped over exactly once, merged over pools") {
  Pair pair;
  put(1, "x", {pair.source.get(), pair.replica.get()});
  put(2, "a/1", {pair.source.get(), pair.replica.get()});
  put(3, "x", {pair.source.get(), pair.replica.get()});
  pair.replica->frontier(3);
  auto all = watch(*pair.hub, kvstore::Topic::for_prefix(""), kvstore::WatchStart::oldest());
  auto x = watch(*pair.hub, kvstore::Topic::for_key("x"), kvstore::WatchStart::now());
  REQUIRE(drain(*all) == std::vector<std::string>{"x@1", "a/1@2", "x@3"});
  REQUIRE(drain(*x).empty());
  const kvstore::WatchCursor cursor = all->cursor();
  const kvstore::WatchCursor x_cursor = x->cursor();
  REQUIRE(cursor.get(kShard) == 3U);

  // The group's frontier runs ahead of this replica: the hub does not pass what is applied.
  put(4, "a/2", {pair.source.get()});
  put(5, "x", {pair.source.get()});
  put(6, "b", {pair.source.get()});
  put(7, "a/3", {pair.source.get()});
  pair.replica->frontier(7);
  REQUIRE(pair.hub->position().get(kShard) == 3U);

  // State transfer: the replica's own checkpoint plus the source's log suffix.
  auto own = pair.replica->make_checkpoint();
  REQUIRE(own.is_ok());
  auto suffix = pair.source->read_log(3, 1 << 20);
  REQUIRE(suffix.is_ok());
  REQUIRE(pair.replica->install(*own, *suffix).is_ok());
  REQUIRE(pair.replica->applied_version() == 7U);
  REQUIRE(pair.hub->position().get(kShard) == 7U);

  kvstore::PollState state = kvstore::PollState::more;
  REQUIRE(drain(*all, &state).empty());
  REQUIRE(state == kvstore::PollState::closed);
  REQUIRE(all->status().code() == Code::unavailable);
  REQUIRE(all->cursor() == cursor);
  REQUIRE(x->status().code() == Code::unavailable);

  auto resumed = watch(*pair.hub, kvstore::Topic::for_prefix(""),
                       kvstore::WatchStart::after(cursor));
  auto resumed_x = watch(*pair.hub, kvstore::Topic::for_key("x"),
                         kvstore::WatchStart::after(x_cursor));
  auto resumed_a = watch(*pair.hub, kvstore::Topic::for_prefix("a/"),
                         kvstore::WatchStart::after(cursor));
  REQUIRE(drain(*resumed) == std::vector<std::string>{"a/2@4", "x@5", "b@6", "a/3@7"});
  REQUIRE(drain(*resumed_x) == std::vector<std::string>{"x@5"});
  REQUIRE(drain(*resumed_a) == std::vector<std::string>{"a/2@4", "a/3@7"});

  // Live again, above the installed version.
  put(8, "x", {pair.replica.get()});
  pair.replica->frontier(8);
  REQUIRE(drain(*resumed) == std::vector<std::string>{"x@8"});
  REQUIRE(drain(*resumed_x) == std::vector<std::string>{"x@8"});
  REQUIRE(resumed->cursor().get(kShard) == 8U);
}

TEST_CASE("Replica watch: a catching-up replica publishes what it applies under the group's "
          "frontier; an installed checkpoint makes older cursors gone") {
  Pair pair;
  put(1, "x", {pair.source.get(), pair.replica.get()});
  pair.replica->frontier(1);
  auto all = watch(*pair.hub, kvstore::Topic::for_prefix(""), kvstore::WatchStart::now());
  const kvstore::WatchCursor cursor = all->cursor();
  pair.replica->frontier(3);  // the others are ahead
  put(2, "y", {pair.source.get(), pair.replica.get()});
  put(3, "x", {pair.source.get(), pair.replica.get()});
  REQUIRE(drain(*all) == std::vector<std::string>{"y@2", "x@3"});

  put(4, "z", {pair.source.get()});
  auto checkpoint = pair.source->make_checkpoint();
  REQUIRE(checkpoint.is_ok());
  REQUIRE(pair.replica->install(*checkpoint, {}).is_ok());
  REQUIRE(all->status().code() == Code::unavailable);
  // History up to the checkpoint is not in the installed stores: gone, not a silent gap.
  auto gone = pair.hub->subscribe(kvstore::Topic::for_prefix(""),
                                  kvstore::WatchStart::after(cursor), {});
  REQUIRE(gone.status().code() == Code::out_of_range);
  auto later = pair.hub->subscribe(kvstore::Topic::for_prefix(""),
                                   kvstore::WatchStart::after(all->cursor()), {});
  REQUIRE(later.status().code() == Code::out_of_range);
  kvstore::WatchCursor at_install;
  at_install.set(kShard, 4);
  auto fresh = watch(*pair.hub, kvstore::Topic::for_prefix(""),
                     kvstore::WatchStart::after(at_install));
  put(5, "x", {pair.replica.get()});
  pair.replica->frontier(5);
  REQUIRE(drain(*fresh) == std::vector<std::string>{"x@5"});
}

TEST_CASE("Replica watch: topics touching a stateless pool cannot be replayed from the stores") {
  Pair pair(true);
  put(1, "x", {pair.replica.get()});
  put(2, "s/1", {pair.replica.get()});
  pair.replica->frontier(2);
  const kvstore::WatchHistory& history = *pair.replica->watch_history();
  REQUIRE_FALSE(*history.covers(kvstore::Topic::for_prefix("s/"), 0));
  REQUIRE_FALSE(*history.covers(kvstore::Topic::for_prefix(""), 0));
  REQUIRE_FALSE(history.oldest(kvstore::Topic::for_prefix("")).has_value());
  REQUIRE(*history.covers(kvstore::Topic::for_prefix("a/"), 0));
  REQUIRE(*history.covers(kvstore::Topic::for_key("x"), 0));
  REQUIRE(history.read(kvstore::Topic::for_key("s/1"), 0, 2, 10, true).status().code() ==
          Code::out_of_range);
  auto x = history.read(kvstore::Topic::for_key("x"), 0, 2, 10, true);
  REQUIRE(x.is_ok());
  REQUIRE(x->events.size() == 1);
  REQUIRE(x->through == 2U);
}

}  // namespace squall::test
