// Watch hub after a state install (reset_shard) and when a node stops serving a shard
// (set_serving): the shard's watchers are dropped with their cursors, and resuming from them is
// exact through the history or refused as gone — never a silent gap.
#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "common/clock.hpp"
#include "kvstore/store.hpp"
#include "kvstore/watch_history.hpp"
#include "kvstore/watch_hub.hpp"

namespace squall::kvstore {
namespace {

constexpr ShardId kShard0{0};
constexpr ShardId kShard1{1};

std::unique_ptr<Store> memory_store() {
  static ManualClock clock;
  StoreOptions options;
  options.mode = StorageMode::in_memory;
  Result<std::unique_ptr<Store>> store = Store::open(nullptr, options, clock);
  REQUIRE(store.is_ok());
  return std::move(*store);
}

std::unique_ptr<WatchHub> make_hub() {
  Result<std::unique_ptr<WatchHub>> hub = WatchHub::create({});
  REQUIRE(hub.is_ok());
  return std::move(*hub);
}

std::unique_ptr<Watcher> watch(WatchHub& hub, const Topic& topic, const WatchStart& start,
                               std::vector<ShardId> shards = {}) {
  WatchOptions options;
  options.shards = std::move(shards);
  Result<std::unique_ptr<Watcher>> watcher = hub.subscribe(topic, start, std::move(options));
  REQUIRE(watcher.is_ok());
  return std::move(*watcher);
}

WatchCursor cursor_at(Version shard0, Version shard1) {
  WatchCursor cursor;
  cursor.set(kShard0, shard0);
  cursor.set(kShard1, shard1);
  return cursor;
}

// Polls until the watcher has nothing more now (or is closed); returns the versions.
std::vector<Version> drain(Watcher& watcher, PollState* last = nullptr) {
  std::vector<Version> all;
  std::vector<WatchItem> batch;
  for (;;) {
    PollState state = watcher.poll(batch, 2);
    for (const WatchItem& item : batch) all.push_back(item.event->version);
    if (state != PollState::more) {
      if (last != nullptr) *last = state;
      return all;
    }
  }
}

// Writes `key` at `version` into the store and, when `hub` is set, publishes it there too.
void put(Store& store, WatchHub* hub, Version version, const std::string& key) {
  const std::string value = "v" + std::to_string(version);
  REQUIRE(store.put(version, version * 10, key, as_bytes(value)).is_ok());
  if (hub != nullptr) {
    hub->publish(kShard0, version, version * 10, WatchOp::put, key, as_bytes(value));
  }
}

}  // namespace

TEST_CASE("reset_shard drops the shard's watchers; their cursors resume through the history "
          "with every jumped-over version exactly once", "[watch][reset]") {
  auto store = memory_store();
  StoreWatchHistory history(*store, kShard0);
  auto hub = make_hub();
  REQUIRE(hub->add_shard(kShard0, 0, &history).is_ok());
  REQUIRE(hub->add_shard(kShard1, 0, nullptr).is_ok());
  for (Version v = 1; v <= 3; ++v) put(*store, hub.get(), v, "k" + std::to_string(v % 2));
  hub->frontier(kShard0, 3);

  auto all = watch(*hub, Topic::for_prefix(""), WatchStart::now());
  auto key = watch(*hub, Topic::for_key("k1"), WatchStart::after(cursor_at(0, 0)));
  auto other = watch(*hub, Topic::for_prefix(""), WatchStart::now(), {kShard1});
  REQUIRE(drain(*all).empty());
  REQUIRE(drain(*key) == std::vector<Version>{1, 3});
  const WatchCursor all_cursor = all->cursor();
  const WatchCursor key_cursor = key->cursor();
  REQUIRE(all_cursor.get(kShard0) == 3U);

  // The install: versions 4..6 reach the store, never the hub.
  put(*store, nullptr, 4, "k0");
  put(*store, nullptr, 5, "k1");
  put(*store, nullptr, 6, "k2");
  REQUIRE(hub->reset_shard(kShard0, 6).is_ok());
  REQUIRE(hub->position().get(kShard0) == 6U);

  PollState state = PollState::more;
  REQUIRE(drain(*all, &state).empty());
  REQUIRE(state == PollState::closed);
  REQUIRE(all->status().code() == Code::unavailable);
  REQUIRE(all->cursor() == all_cursor);
  REQUIRE(drain(*key, &state).empty());
  REQUIRE(state == PollState::closed);
  REQUIRE(key->cursor() == key_cursor);
  REQUIRE(other->status().is_ok());  // takes shard 1 only
  REQUIRE(hub->stats().resets == 1);
  REQUIRE(hub->stats().dropped_reset == 2);

  // Resumed: the jumped-over versions from the store, then live ones.
  auto resumed = watch(*hub, Topic::for_prefix(""), WatchStart::after(all_cursor));
  auto resumed_key = watch(*hub, Topic::for_key("k1"), WatchStart::after(key_cursor));
  REQUIRE(drain(*resumed) == std::vector<Version>{4, 5, 6});
  REQUIRE(drain(*resumed_key) == std::vector<Version>{5});
  put(*store, hub.get(), 7, "k1");
  hub->frontier(kShard0, 7);
  REQUIRE(drain(*resumed) == std::vector<Version>{7});
  REQUIRE(drain(*resumed_key) == std::vector<Version>{7});
  REQUIRE(resumed->cursor().get(kShard0) == 7U);
}

TEST_CASE("After reset_shard, a cursor the history cannot serve is gone, never a silent gap",
          "[watch][reset]") {
  // A store that installed a checkpoint at version 6: nothing at or below it is history.
  auto installed = memory_store();
  REQUIRE(installed->start_history_after(6, 60).is_ok());
  REQUIRE(installed->put(6 + 1, 70, "k", as_bytes(std::string("x"))).is_ok());
  StoreWatchHistory history(*installed, kShard0);
  auto hub = make_hub();
  REQUIRE(hub->add_shard(kShard0, 0, &history).is_ok());
  REQUIRE(hub->add_shard(kShard1, 0, nullptr).is_ok());
  hub->publish(kShard0, 1, 10, WatchOp::put, "k", as_bytes(std::string("a")));
  hub->frontier(kShard0, 1);
  auto watcher = watch(*hub, Topic::for_prefix(""), WatchStart::now());
  const WatchCursor cursor = watcher->cursor();
  REQUIRE(hub->reset_shard(kShard0, 7).is_ok());
  REQUIRE(watcher->status().code() == Code::unavailable);

  Result<std::unique_ptr<Watcher>> again =
      hub->subscribe(Topic::for_prefix(""), WatchStart::after(cursor), {});
  REQUIRE(again.status().code() == Code::out_of_range);
  // From the installed version on, the store serves it.
  auto from_install = watch(*hub, Topic::for_prefix(""),
                            WatchStart::after(cursor_at(6, 0)));
  REQUIRE(drain(*from_install) == std::vector<Version>{7});

  // A shard without a history: the old cursor is gone too.
  REQUIRE(hub->reset_shard(kShard1, 5).is_ok());
  Result<std::unique_ptr<Watcher>> no_history =
      hub->subscribe(Topic::for_prefix(""), WatchStart::after(cursor_at(7, 0)), {});
  REQUIRE(no_history.status().code() == Code::out_of_range);
  REQUIRE(hub->reset_shard(ShardId{9}, 1).code() == Code::not_found);
}

TEST_CASE("A shard no longer served ends the watchers that take it and refuses new ones for it",
          "[watch][reset]") {
  auto hub = make_hub();
  REQUIRE(hub->add_shard(kShard0, 0, nullptr).is_ok());
  REQUIRE(hub->add_shard(kShard1, 0, nullptr).is_ok());
  auto every = watch(*hub, Topic::for_prefix(""), WatchStart::now());
  auto one = watch(*hub, Topic::for_prefix(""), WatchStart::now(), {kShard1});
  auto zero = watch(*hub, Topic::for_prefix(""), WatchStart::now(), {kShard0});
  hub->publish(kShard1, 1, 10, WatchOp::put, "a", as_bytes(std::string("x")));
  hub->frontier(kShard1, 1);
  REQUIRE(drain(*one) == std::vector<Version>{1});
  const WatchCursor cursor = one->cursor();

  REQUIRE(hub->set_serving(kShard1, false).is_ok());
  PollState state = PollState::more;
  REQUIRE(drain(*one, &state).empty());
  REQUIRE(state == PollState::closed);
  REQUIRE(one->status().code() == Code::unavailable);
  REQUIRE(one->cursor().get(kShard1) == cursor.get(kShard1));
  REQUIRE(every->status().code() == Code::unavailable);
  REQUIRE(zero->status().is_ok());

  WatchOptions only_one;
  only_one.shards = {kShard1};
  REQUIRE(hub->subscribe(Topic::for_prefix(""), WatchStart::now(), only_one).status().code() ==
          Code::unavailable);
  REQUIRE(hub->subscribe(Topic::for_key("a"), WatchStart::now(), {}).is_ok());
  REQUIRE(hub->set_serving(kShard1, false).is_ok());  // idempotent
  REQUIRE(hub->set_serving(kShard1, true).is_ok());
  REQUIRE(hub->subscribe(Topic::for_prefix(""), WatchStart::after(cursor), only_one).is_ok());
  REQUIRE(hub->set_serving(ShardId{7}, false).code() == Code::not_found);
}


TEST_CASE("Resets racing a consumer that resumes from its cursors: every version exactly once, "
          "in order", "[watch][reset]") {
  constexpr Version kLast = 3000;
  auto store = memory_store();
  StoreWatchHistory history(*store, kShard0);
  WatchHubOptions options;
  options.journal_events = 8;  // most resumes go through the store
  Result<std::unique_ptr<WatchHub>> created = WatchHub::create(options);
  REQUIRE(created.is_ok());
  std::unique_ptr<WatchHub> hub = std::move(*created);
  REQUIRE(hub->add_shard(kShard0, 0, &history).is_ok());

  // The delivery side: runs of published writes, and "installs" that write to the store only
  // and reset the hub past them.
  std::atomic<bool> delivery_ok{true};
  std::thread delivery([&] {
    Version v = 0;
    std::uint32_t run = 0;
    while (v < kLast) {
      const bool install = ++run % 3 == 0;
      const Version end = std::min<Version>(kLast, v + 1 + run % 17);
      for (; v < end; ++v) {
        const std::string key = "k" + std::to_string((v + 1) % 5);
        const std::string value = "v" + std::to_string(v + 1);
        if (!store->put(v + 1, (v + 1) * 10, key, as_bytes(value)).is_ok()) delivery_ok = false;
        if (!install) hub->publish(kShard0, v + 1, (v + 1) * 10, WatchOp::put, key,
                                   as_bytes(value));
      }
      if (install) {
        if (!hub->reset_shard(kShard0, v).is_ok()) delivery_ok = false;
      } else {
        hub->frontier(kShard0, v);
      }
    }
  });

  std::vector<Version> seen;
  WatchCursor cursor = cursor_at(0, 0);
  std::size_t resumes = 0;
  std::vector<WatchItem> batch;
  while (seen.empty() || seen.back() < kLast) {
    WatchCursor start;
    start.set(kShard0, cursor.get(kShard0).value_or(0));
    Result<std::unique_ptr<Watcher>> watcher =
        hub->subscribe(Topic::for_prefix(""), WatchStart::after(start), {});
    REQUIRE(watcher.is_ok());
    ++resumes;
    for (;;) {
      PollState state = (*watcher)->poll(batch, 4);
      for (const WatchItem& item : batch) seen.push_back(item.event->version);
      if (state == PollState::closed || (!seen.empty() && seen.back() == kLast)) break;
      if (state == PollState::idle) std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    cursor = (*watcher)->cursor();
  }
  delivery.join();
  REQUIRE(delivery_ok.load());
  REQUIRE(seen.size() == kLast);
  for (Version v = 1; v <= kLast; ++v) REQUIRE(seen[v - 1] == v);
  INFO(resumes << " subscriptions");
  REQUIRE(hub->stats().resets > 0);
}

}  // namespace squall::kvstore
