// Watch hub behaviour: matching, durable gating, order, cursors, slow watchers, closing.
#include <algorithm>
#include <atomic>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "kvstore/watch_hub.hpp"

namespace squall::kvstore {
namespace {

constexpr ShardId kShard0{0};
constexpr ShardId kShard1{1};

std::unique_ptr<WatchHub> make_hub(WatchHubOptions options = {}, std::size_t shards = 1) {
  Result<std::unique_ptr<WatchHub>> hub = WatchHub::create(std::move(options));
  REQUIRE(hub.is_ok());
  for (std::uint32_t s = 0; s < shards; ++s) {
    REQUIRE((*hub)->add_shard(ShardId{s}, 0, nullptr).is_ok());
  }
  return std::move(*hub);
}

// Publishes with versions 1, 2, 3... (one sequence for all shards: still increasing per shard).
class Feed {
 public:
  explicit Feed(WatchHub& hub) : hub_(hub) {}
  Version put(ShardId shard, std::string_view key, std::string_view value = "v") {
    ++last_;
    hub_.publish(shard, last_, last_ * 1000, WatchOp::put, key, as_bytes(value));
    return last_;
  }
  Version del(ShardId shard, std::string_view key) {
    ++last_;
    hub_.publish(shard, last_, last_ * 1000, WatchOp::del, key, {});
    return last_;
  }
  void durable(ShardId shard = kShard0) { hub_.frontier(shard, last_); }
  Version last() const { return last_; }

 private:
  WatchHub& hub_;
  Version last_ = 0;
};

std::unique_ptr<Watcher> watch(WatchHub& hub, Topic topic, WatchStart start = WatchStart::now(),
                               WatchOptions options = {}) {
  Result<std::unique_ptr<Watcher>> watcher = hub.subscribe(topic, start, std::move(options));
  REQUIRE(watcher.is_ok());
  return std::move(*watcher);
}

// Polls until the watcher has nothing more now (or is closed).
std::vector<WatchItem> drain(Watcher& watcher, PollState* final_state = nullptr) {
  std::vector<WatchItem> all;
  std::vector<WatchItem> batch;
  for (;;) {
    PollState state = watcher.poll(batch, 3);
    all.insert(all.end(), batch.begin(), batch.end());
    if (state != PollState::more) {
      if (final_state != nullptr) *final_state = state;
      return all;
    }
  }
}

std::vector<Version> versions(const std::vector<WatchItem>& items) {
  std::vector<Version> result;
  for (const WatchItem& item : items) result.push_back(item.event->version);
  return result;
}

std::vector<std::string> keys(const std::vector<WatchItem>& items) {
  std::vector<std::string> result;
  for (const WatchItem& item : items) result.push_back(item.event->key);
  return result;
}

}  // namespace

TEST_CASE("Watchers get the events of their key or prefix only", "[watch][hub]") {
  auto hub = make_hub();
  Feed feed(*hub);
  auto key = watch(*hub, Topic::for_key("users/42"));
  auto users = watch(*hub, Topic::for_prefix("users/"));
  auto all = watch(*hub, Topic::for_prefix(""));
  auto other = watch(*hub, Topic::for_key("users/4"));
  feed.put(kShard0, "users/42", "a");
  feed.put(kShard0, "users/421", "b");
  feed.put(kShard0, "orders/1", "c");
  feed.del(kShard0, "users/42");
  feed.durable();
  REQUIRE(keys(drain(*key)) == std::vector<std::string>{"users/42", "users/42"});
  REQUIRE(keys(drain(*users)) == std::vector<std::string>{"users/42", "users/421", "users/42"});
  REQUIRE(versions(drain(*all)) == std::vector<Version>{1, 2, 3, 4});
  REQUIRE(drain(*other).empty());

  auto again = watch(*hub, Topic::for_key("users/42"), WatchStart::oldest());
  std::vector<WatchItem> items = drain(*again);
  REQUIRE(items.size() == 2);
  CHECK(items[0].event->op == WatchOp::put);
  CHECK(items[0].has_value);
  CHECK(as_string_view(items[0].event->value) == "a");
  CHECK(items[0].event->timestamp == 1000);
  CHECK(items[1].event->op == WatchOp::del);
  CHECK_FALSE(items[1].has_value);
  CHECK(watch_op_name(items[1].event->op) == "delete");
}

TEST_CASE("Nothing is emitted before the persistence frontier passes it", "[watch][hub]") {
  auto hub = make_hub();
  Feed feed(*hub);
  auto all = watch(*hub, Topic::for_prefix(""));
  for (int i = 0; i < 10; ++i) feed.put(kShard0, "k" + std::to_string(i));
  PollState state = PollState::more;
  REQUIRE(drain(*all, &state).empty());
  REQUIRE(state == PollState::idle);
  REQUIRE(hub->stats().pending_events == 10);

  hub->frontier(kShard0, 4);
  REQUIRE(versions(drain(*all)) == std::vector<Version>{1, 2, 3, 4});
  hub->frontier(kShard0, 3);  // a lower frontier changes nothing
  REQUIRE(drain(*all).empty());
  // A watcher that starts now starts at the frontier: the pending events are still ahead.
  auto late = watch(*hub, Topic::for_prefix(""));
  hub->frontier(kShard0, 7);
  REQUIRE(versions(drain(*all)) == std::vector<Version>{5, 6, 7});
  REQUIRE(versions(drain(*late)) == std::vector<Version>{5, 6, 7});
  hub->frontier(kShard0, 100);
  REQUIRE(versions(drain(*all)) == std::vector<Version>{8, 9, 10});
  REQUIRE(hub->position().get(kShard0) == 100U);
  REQUIRE(hub->stats().pending_events == 0);
  REQUIRE(hub->stats().emitted == 10);
}

TEST_CASE("Events arrive in version order per shard and frontiers are per shard",
          "[watch][hub]") {
  auto hub = make_hub({}, 2);
  Feed feed(*hub);
  auto all = watch(*hub, Topic::for_prefix(""));
  for (int i = 0; i < 20; ++i) feed.put(i % 3 == 0 ? kShard1 : kShard0, "k");
  hub->frontier(kShard1, 10);
  std::vector<WatchItem> items = drain(*all);
  for (const WatchItem& item : items) REQUIRE(item.event->shard == kShard1);
  REQUIRE(versions(items) == std::vector<Version>{1, 4, 7, 10});
  feed.durable(kShard0);
  feed.durable(kShard1);
  items = drain(*all);
  Version last0 = 0;
  Version last1 = 10;
  for (const WatchItem& item : items) {
    Version& last = item.event->shard == kShard0 ? last0 : last1;
    REQUIRE(item.event->version > last);
    last = item.event->version;
  }
  REQUIRE(items.size() == 16);
  WatchCursor cursor = all->cursor();
  REQUIRE(cursor.get(kShard0) == 20U);
  REQUIRE(cursor.get(kShard1) == 20U);
}

TEST_CASE("Resuming from a cursor yields exactly the events after it", "[watch][hub]") {
  auto hub = make_hub({}, 2);
  Feed feed(*hub);
  auto first = watch(*hub, Topic::for_prefix("a/"));
  for (int i = 0; i < 30; ++i) feed.put(i % 2 ? kShard1 : kShard0, i % 3 ? "a/x" : "b/y");
  feed.durable(kShard0);
  feed.durable(kShard1);
  std::vector<WatchItem> seen;
  std::vector<WatchItem> batch;
  REQUIRE(first->poll(batch, 5) == PollState::more);
  seen = batch;
  WatchCursor cursor = first->cursor();
  // The frontier of shard 0 came first, so its events were queued first: a/x at 3, 5, 9, 11,
  // 15 were taken; nothing of shard 1 yet.
  REQUIRE(versions(seen) == std::vector<Version>{3, 5, 9, 11, 15});
  REQUIRE(cursor.get(kShard0) == 15U);
  REQUIRE(cursor.get(kShard1) == 0U);
  first.reset();  // disconnect

  Result<WatchCursor> decoded = WatchCursor::decode(cursor.encode());
  REQUIRE(decoded.is_ok());
  auto resumed = watch(*hub, Topic::for_prefix("a/"), WatchStart::after(*decoded));
  for (int i = 30; i < 40; ++i) feed.put(i % 2 ? kShard1 : kShard0, "a/z");
  feed.durable(kShard0);
  feed.durable(kShard1);
  std::vector<WatchItem> rest = drain(*resumed);
  seen.insert(seen.end(), rest.begin(), rest.end());

  auto reference = watch(*hub, Topic::for_prefix("a/"), WatchStart::oldest());
  std::vector<WatchItem> everything = drain(*reference);
  std::vector<Version> a = versions(seen);
  std::vector<Version> b = versions(everything);
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  REQUIRE(a == b);  // no gap, no duplicate
  REQUIRE(b.size() == 20 + 10);
}

TEST_CASE("A cursor older than the journal, without history, is gone", "[watch][hub]") {
  WatchHubOptions options;
  options.journal_events = 8;
  auto hub = make_hub(options);
  Feed feed(*hub);
  for (int i = 0; i < 20; ++i) feed.put(kShard0, "k");
  feed.durable();
  WatchCursor old;
  old.set(kShard0, 11);
  Result<std::unique_ptr<Watcher>> gone =
      hub->subscribe(Topic::for_key("k"), WatchStart::after(old), {});
  REQUIRE(gone.status().code() == Code::out_of_range);
  REQUIRE(hub->stats().watchers == 0);

  old.set(kShard0, 12);  // the journal holds 13..20
  auto ok = watch(*hub, Topic::for_key("k"), WatchStart::after(old));
  REQUIRE(versions(drain(*ok)) == std::vector<Version>{13, 14, 15, 16, 17, 18, 19, 20});
  auto oldest = watch(*hub, Topic::for_prefix(""), WatchStart::oldest());
  REQUIRE(drain(*oldest).size() == 8);
  REQUIRE(oldest->cursor().get(kShard0) == 20U);
}

TEST_CASE("Subscriptions with bad topics, options or cursors are refused", "[watch][hub]") {
  WatchHubOptions options;
  options.max_topic_bytes = 8;
  options.max_buffer_events = 2000;
  options.max_watchers = 2;
  auto hub = make_hub(options);
  auto code = [&](const Topic& topic, const WatchStart& start, WatchOptions o = {}) {
    return hub->subscribe(topic, start, std::move(o)).status().code();
  };
  REQUIRE(code(Topic::for_key(""), WatchStart::now()) == Code::invalid_argument);
  REQUIRE(code(Topic::for_key("123456789"), WatchStart::now()) == Code::invalid_argument);
  WatchOptions zero;
  zero.buffer_events = 0;
  REQUIRE(code(Topic::for_key("k"), WatchStart::now(), zero) == Code::invalid_argument);
  WatchOptions huge;
  huge.buffer_bytes = options.max_buffer_bytes + 1;
  REQUIRE(code(Topic::for_key("k"), WatchStart::now(), huge) == Code::invalid_argument);
  WatchCursor foreign;
  foreign.set(ShardId{9}, 1);
  REQUIRE(code(Topic::for_key("k"), WatchStart::after(foreign)) == Code::invalid_argument);
  REQUIRE(code(Topic::for_key("k"), WatchStart::after(WatchCursor{})) == Code::invalid_argument);

  auto one = watch(*hub, Topic::for_prefix(""));
  auto two = watch(*hub, Topic::for_prefix(""));
  REQUIRE(code(Topic::for_prefix(""), WatchStart::now()) == Code::unavailable);
  two.reset();
  REQUIRE(code(Topic::for_prefix(""), WatchStart::now()) == Code::ok);

  REQUIRE(hub->add_shard(kShard0, 0, nullptr).code() == Code::already_exists);
  auto empty = WatchHub::create({});
  REQUIRE(empty.is_ok());
  REQUIRE((*empty)->subscribe(Topic::for_key("k"), WatchStart::now(), {}).status().code() ==
          Code::unavailable);
  WatchHubOptions bad;
  bad.journal_events = 0;
  REQUIRE(WatchHub::create(bad).status().code() == Code::invalid_argument);
}

TEST_CASE("A slow watcher is dropped and resuming from its cursor yields exactly what it missed",
          "[watch][hub]") {
  auto hub = make_hub();
  Feed feed(*hub);
  WatchOptions small;
  small.buffer_events = 4;
  auto slow = watch(*hub, Topic::for_prefix("k"), WatchStart::now(), small);
  auto fast = watch(*hub, Topic::for_prefix("k"));
  for (int i = 0; i < 4; ++i) feed.put(kShard0, "k");
  feed.durable();
  std::vector<WatchItem> batch;
  REQUIRE(slow->poll(batch, 2) == PollState::more);
  REQUIRE(versions(batch) == std::vector<Version>{1, 2});
  for (int i = 0; i < 5; ++i) feed.put(kShard0, "k");  // 2 queued + 5 > 4
  feed.durable();
  REQUIRE(slow->poll(batch, 10) == PollState::closed);
  REQUIRE(batch.empty());
  REQUIRE(slow->status().code() == Code::would_block);
  REQUIRE(slow->cursor().get(kShard0) == 2U);
  REQUIRE(hub->stats().dropped_slow == 1);
  REQUIRE(hub->stats().watchers == 1);
  REQUIRE(drain(*fast).size() == 9);  // the others never noticed

  auto resumed = watch(*hub, Topic::for_prefix("k"), WatchStart::after(slow->cursor()), small);
  REQUIRE(versions(drain(*resumed)) == std::vector<Version>{3, 4, 5, 6, 7, 8, 9});
  PollState state = PollState::more;
  REQUIRE(drain(*slow, &state).empty());
  REQUIRE(state == PollState::closed);
}

TEST_CASE("The byte limit of a watcher's buffer drops it too", "[watch][hub]") {
  auto hub = make_hub();
  Feed feed(*hub);
  WatchOptions small;
  small.buffer_bytes = 3 * (kWatchEventOverheadBytes + 1 + 100);
  auto watcher = watch(*hub, Topic::for_key("k"), WatchStart::now(), small);
  std::string value(100, 'x');
  for (int i = 0; i < 3; ++i) feed.put(kShard0, "k", value);
  feed.durable();
  REQUIRE(watcher->status().is_ok());
  feed.put(kShard0, "k", value);
  feed.durable();
  REQUIRE(watcher->status().code() == Code::would_block);
  REQUIRE(watcher->cursor().get(kShard0) == 0U);
}

TEST_CASE("Closing a watcher unsubscribes it", "[watch][hub]") {
  auto hub = make_hub();
  Feed feed(*hub);
  auto watcher = watch(*hub, Topic::for_key("k"));
  REQUIRE(hub->stats().watchers == 1);
  REQUIRE(hub->stats().topics == 1);
  feed.put(kShard0, "k");
  feed.durable();
  watcher->close();
  watcher->close();  // idempotent
  REQUIRE(hub->stats().watchers == 0);
  REQUIRE(hub->stats().topics == 0);
  PollState state = PollState::more;
  REQUIRE(drain(*watcher, &state).empty());
  REQUIRE(state == PollState::closed);
  REQUIRE(watcher->status().code() == Code::aborted);
  feed.put(kShard0, "k");
  feed.durable();
  REQUIRE(hub->stats().deliveries == 1);
  watcher.reset();
  REQUIRE(hub->stats().watchers == 0);
}

TEST_CASE("values=false: items never carry values", "[watch][hub]") {
  auto hub = make_hub();
  Feed feed(*hub);
  WatchOptions no_values;
  no_values.values = false;
  auto bare = watch(*hub, Topic::for_key("k"), WatchStart::now(), no_values);
  auto full = watch(*hub, Topic::for_key("k"));
  feed.put(kShard0, "k", "payload");
  feed.durable();
  std::vector<WatchItem> items = drain(*bare);
  REQUIRE(items.size() == 1);
  REQUIRE_FALSE(items[0].has_value);
  items = drain(*full);
  REQUIRE(items.size() == 1);
  REQUIRE(items[0].has_value);
  auto replayed = watch(*hub, Topic::for_key("k"), WatchStart::oldest(), no_values);
  items = drain(*replayed);
  REQUIRE(items.size() == 1);
  REQUIRE_FALSE(items[0].has_value);
}

TEST_CASE("on_ready fires once after poll went idle, and never after close", "[watch][hub]") {
  auto hub = make_hub();
  Feed feed(*hub);
  std::atomic<int> calls{0};
  WatchOptions options;
  options.on_ready = [&] { ++calls; };
  auto watcher = watch(*hub, Topic::for_key("k"), WatchStart::now(), options);
  feed.put(kShard0, "k");
  feed.durable();
  REQUIRE(calls == 0);  // not armed: the consumer has not polled yet
  REQUIRE(drain(*watcher).size() == 1);
  feed.put(kShard0, "other");
  feed.durable();
  REQUIRE(calls == 0);  // not its topic
  feed.put(kShard0, "k");
  feed.put(kShard0, "k");
  feed.durable();
  REQUIRE(calls == 1);  // one call for the batch
  feed.put(kShard0, "k");
  feed.durable();
  REQUIRE(calls == 1);  // not re-armed until poll finds nothing
  REQUIRE(drain(*watcher).size() == 3);
  watcher->close();
  feed.put(kShard0, "k");
  feed.durable();
  REQUIRE(calls == 1);
}

TEST_CASE("on_ready fires when an idle watcher is dropped", "[watch][hub]") {
  auto hub = make_hub();
  Feed feed(*hub);
  std::atomic<int> calls{0};
  WatchOptions options;
  options.buffer_events = 1;
  options.on_ready = [&] { ++calls; };
  auto watcher = watch(*hub, Topic::for_key("k"), WatchStart::now(), options);
  REQUIRE(drain(*watcher).empty());
  feed.put(kShard0, "k");
  feed.put(kShard0, "k");
  feed.durable();
  REQUIRE(calls == 1);
  PollState state = PollState::more;
  REQUIRE(drain(*watcher, &state).empty());
  REQUIRE(state == PollState::closed);
}

TEST_CASE("A quiet topic's cursor follows the frontier", "[watch][hub]") {
  WatchHubOptions options;
  options.journal_events = 4;
  auto hub = make_hub(options);
  Feed feed(*hub);
  auto quiet = watch(*hub, Topic::for_key("quiet"));
  feed.put(kShard0, "quiet");
  feed.durable();
  std::vector<WatchItem> batch;
  REQUIRE(quiet->poll(batch, 10) == PollState::idle);
  for (int i = 0; i < 50; ++i) feed.put(kShard0, "busy");
  feed.durable();
  REQUIRE(quiet->cursor().get(kShard0) == 51U);
  // Its cursor is still replayable although the journal moved on.
  auto resumed = watch(*hub, Topic::for_key("quiet"), WatchStart::after(quiet->cursor()));
  feed.put(kShard0, "quiet");
  feed.durable();
  REQUIRE(versions(drain(*resumed)) == std::vector<Version>{52});
  // With an event queued but not polled, the cursor stays at what was polled.
  REQUIRE(quiet->cursor().get(kShard0) == 1U);
}

TEST_CASE("A cursor ahead of this node's frontier skips what it has seen", "[watch][hub]") {
  auto hub = make_hub();
  Feed feed(*hub);
  WatchCursor ahead;
  ahead.set(kShard0, 3);
  auto watcher = watch(*hub, Topic::for_key("k"), WatchStart::after(ahead));
  for (int i = 0; i < 5; ++i) feed.put(kShard0, "k");
  feed.durable();
  REQUIRE(versions(drain(*watcher)) == std::vector<Version>{4, 5});
}

TEST_CASE("Shards added later are watched from their start and cursors name them",
          "[watch][hub]") {
  auto hub = make_hub();
  Feed feed(*hub);
  auto all = watch(*hub, Topic::for_prefix(""));
  feed.put(kShard0, "a");
  feed.durable();
  REQUIRE(hub->add_shard(kShard1, 0, nullptr).is_ok());
  REQUIRE(all->cursor().get(kShard1) == 0U);
  feed.put(kShard1, "b");
  feed.durable(kShard1);
  REQUIRE(keys(drain(*all)) == std::vector<std::string>{"a", "b"});
  REQUIRE(all->cursor().get(kShard1) == 2U);

  // A cursor that omits a served shard starts it at 0: here still replayable.
  WatchCursor only0;
  only0.set(kShard0, 1);
  auto resumed = watch(*hub, Topic::for_prefix(""), WatchStart::after(only0));
  REQUIRE(keys(drain(*resumed)) == std::vector<std::string>{"b"});
}

TEST_CASE("When the not-yet-durable buffer overflows, watchers are dropped, not misled",
          "[watch][hub]") {
  WatchHubOptions options;
  options.pending_events = 4;
  auto hub = make_hub(options);
  Feed feed(*hub);
  auto before = watch(*hub, Topic::for_prefix(""));
  feed.put(kShard0, "a");
  feed.durable();
  REQUIRE(drain(*before).size() == 1);
  for (int i = 0; i < 6; ++i) feed.put(kShard0, "b");  // versions 2..7; 6 overflows
  REQUIRE(hub->stats().pending_overflows == 1);
  auto between = watch(*hub, Topic::for_prefix(""));
  hub->frontier(kShard0, 5);  // below the loss: nothing emitted, nobody dropped
  REQUIRE(drain(*before).empty());
  REQUIRE(before->status().is_ok());
  feed.durable();
  PollState state = PollState::more;
  REQUIRE(drain(*before, &state).empty());
  REQUIRE(state == PollState::closed);
  REQUIRE(before->status().code() == Code::unavailable);
  REQUIRE(between->status().code() == Code::unavailable);
  REQUIRE(before->cursor().get(kShard0) == 1U);
  REQUIRE(hub->stats().dropped_overflow == 2);
  // Without a history the lost range cannot be replayed: gone.
  REQUIRE(hub->subscribe(Topic::for_prefix(""), WatchStart::after(before->cursor()), {})
              .status()
              .code() == Code::out_of_range);
  // Event 7 (after the loss) reaches new watchers.
  auto after = watch(*hub, Topic::for_prefix(""), WatchStart::oldest());
  REQUIRE(versions(drain(*after)) == std::vector<Version>{7});
}

}  // namespace squall::kvstore
