// Watch hub replay: the store-backed history, the replay/live switch against a model over many
// seeds, the same under concurrent publishing, and fan-out at test scale.
#include <algorithm>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <random>
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

std::unique_ptr<Store> memory_store(std::uint32_t keep_versions = 0) {
  static ManualClock clock;
  StoreOptions options;
  options.mode = StorageMode::in_memory;
  options.retention.keep_versions = keep_versions;
  Result<std::unique_ptr<Store>> store = Store::open(nullptr, options, clock);
  REQUIRE(store.is_ok());
  return std::move(*store);
}

std::unique_ptr<WatchHub> make_hub(WatchHubOptions options = {}) {
  Result<std::unique_ptr<WatchHub>> hub = WatchHub::create(std::move(options));
  REQUIRE(hub.is_ok());
  return std::move(*hub);
}

std::vector<Version> versions(const std::vector<WatchEventPtr>& events) {
  std::vector<Version> result;
  for (const WatchEventPtr& event : events) result.push_back(event->version);
  return result;
}

// One logical event as the model keeps it.
struct ModelEvent {
  ShardId shard;
  Version version = 0;
  WatchOp op = WatchOp::put;
  std::string key;
  std::string value;
};

}  // namespace

TEST_CASE("Store history replays a key's retained versions and knows what is gone",
          "[watch][history]") {
  auto store = memory_store(3);
  // "k" at even versions 2..20 (18 is a delete), "other" at the odd versions between.
  for (Version v = 2; v <= 20; v += 2) {
    std::string value = "v" + std::to_string(v);
    if (v == 18) {
      REQUIRE(store->remove(v, v, "k").is_ok());
    } else {
      REQUIRE(store->put(v, v, "k", as_bytes(value)).is_ok());
    }
    REQUIRE(store->put(v + 1, v + 1, "other", as_bytes(value)).is_ok());
  }
  // "k" keeps versions 16, 18 (delete), 20.
  StoreWatchHistory history(*store, ShardId{0});
  Topic k = Topic::for_key("k");
  REQUIRE(*history.covers(k, 15));
  REQUIRE_FALSE(*history.covers(k, 14));
  REQUIRE(*history.covers(k, 16));
  REQUIRE(*history.covers(k, 17));
  REQUIRE(*history.covers(k, 200));
  REQUIRE(history.oldest(k) == 15U);

  Result<WatchHistoryPage> page = history.read(k, 15, 20, 2, true);
  REQUIRE(page.is_ok());
  REQUIRE(versions(page->events) == std::vector<Version>{16, 18});
  REQUIRE(page->through == 18);
  REQUIRE(as_string_view(page->events[0]->value) == "v16");
  REQUIRE(page->events[1]->op == WatchOp::del);
  REQUIRE(page->events[0]->shard == ShardId{0});
  page = history.read(k, 18, 21, 5, false);
  REQUIRE(page.is_ok());
  REQUIRE(versions(page->events) == std::vector<Version>{20});
  REQUIRE(page->events[0]->value.empty());
  REQUIRE(page->through == 21);
  page = history.read(k, 16, 19, 5, true);  // bounded above by upto
  REQUIRE(versions(page->events) == std::vector<Version>{18});
  REQUIRE(page->through == 19);
  REQUIRE(history.read(k, 5, 20, 5, true).status().code() == Code::out_of_range);
  REQUIRE(history.read(k, 14, 20, 5, true).status().code() == Code::out_of_range);

  // A key that never existed has nothing to replay from anywhere.
  REQUIRE(*history.covers(Topic::for_key("never"), 0));
  REQUIRE_FALSE(history.oldest(Topic::for_key("never")));
  // A prefix replays from the newest version discarded under it: "k" lost 14, "other" 15.
  REQUIRE(history.oldest(Topic::for_prefix("k")) == 14U);
  REQUIRE(*history.covers(Topic::for_prefix("k"), 14));
  REQUIRE_FALSE(*history.covers(Topic::for_prefix("k"), 13));
  REQUIRE(history.oldest(Topic::for_prefix("")) == 15U);
  REQUIRE(history.oldest(Topic::for_prefix("nothing")) == 0U);
  REQUIRE(history.read(Topic::for_prefix("k"), 13, 20, 5, true).status().code() ==
          Code::out_of_range);
  page = history.read(Topic::for_prefix(""), 15, 21, 4, true);
  REQUIRE(page.is_ok());
  REQUIRE(versions(page->events) == std::vector<Version>{16, 17, 18, 19});
  REQUIRE(page->through == 19);
  REQUIRE(page->events[2]->op == WatchOp::del);
  REQUIRE(as_string_view(page->events[1]->value) == "v16");
  REQUIRE(page->events[1]->key == "other");

  StoreWatchHistoryOptions stateless;
  stateless.stored = [](const Topic& topic) { return !topic.text.starts_with("s/"); };
  StoreWatchHistory partial(*store, ShardId{0}, stateless);
  REQUIRE(*partial.covers(k, 15));
  REQUIRE_FALSE(*partial.covers(Topic::for_key("s/x"), 15));
}

TEST_CASE("Store history pages through long histories and bounds its walk",
          "[watch][history]") {
  auto store = memory_store();
  for (Version v = 1; v <= 3000; ++v) {
    REQUIRE(store->put(v, v, v % 2 ? "odd" : "even", as_bytes("x")).is_ok());
  }
  StoreWatchHistoryOptions options;
  options.page_versions = 7;
  StoreWatchHistory history(*store, ShardId{0}, options);
  Version after = 0;
  std::vector<Version> all;
  while (after < 3000) {
    Result<WatchHistoryPage> page = history.read(Topic::for_key("odd"), after, 3000, 100, true);
    REQUIRE(page.is_ok());
    std::vector<Version> got = versions(page->events);
    all.insert(all.end(), got.begin(), got.end());
    REQUIRE(page->through > after);
    after = page->through;
  }
  REQUIRE(all.size() == 1500);
  for (std::size_t i = 0; i < all.size(); ++i) REQUIRE(all[i] == 2 * i + 1);

  options.max_walk_versions = 100;
  StoreWatchHistory bounded(*store, ShardId{0}, options);
  REQUIRE(bounded.read(Topic::for_key("odd"), 0, 3000, 10, true).status().code() ==
          Code::out_of_range);
  REQUIRE_FALSE(*bounded.covers(Topic::for_key("odd"), 0));
  REQUIRE(*bounded.covers(Topic::for_key("odd"), 2900));
}

TEST_CASE("Key and prefix watchers resume from the store when the journal moved on",
          "[watch][history]") {
  auto store = memory_store();
  StoreWatchHistory history(*store, ShardId{0});
  WatchHubOptions options;
  options.journal_events = 4;
  auto hub = make_hub(options);
  REQUIRE(hub->add_shard(ShardId{0}, 0, &history).is_ok());
  for (Version v = 1; v <= 30; ++v) {
    std::string key = v % 3 == 0 ? "a/k" : v % 3 == 1 ? "a/other" : "b/x";
    std::string value = std::to_string(v);
    if (v % 7 == 0) {
      REQUIRE(store->remove(v, v, key).is_ok());
      hub->publish(ShardId{0}, v, v, WatchOp::del, key, {});
    } else {
      REQUIRE(store->put(v, v, key, as_bytes(value)).is_ok());
      hub->publish(ShardId{0}, v, v, WatchOp::put, key, as_bytes(value));
    }
  }
  hub->frontier(ShardId{0}, 30);
  WatchCursor cursor;
  cursor.set(ShardId{0}, 4);
  auto drain = [](Watcher& watcher) {
    std::vector<Version> got;
    std::vector<WatchItem> batch;
    while (watcher.poll(batch, 3) == PollState::more || !batch.empty()) {
      for (const WatchItem& item : batch) {
        got.push_back(item.event->version);
        bool deleted = item.event->version % 7 == 0;
        REQUIRE(item.event->op == (deleted ? WatchOp::del : WatchOp::put));
        REQUIRE(item.has_value == !deleted);
        if (!deleted) {
          REQUIRE(as_string_view(item.event->value) == std::to_string(item.event->version));
        }
      }
    }
    return got;
  };
  Result<std::unique_ptr<Watcher>> watcher =
      hub->subscribe(Topic::for_key("a/k"), WatchStart::after(cursor), {});
  REQUIRE(watcher.is_ok());
  REQUIRE(drain(**watcher) == std::vector<Version>{6, 9, 12, 15, 18, 21, 24, 27, 30});
  auto oldest = hub->subscribe(Topic::for_key("a/k"), WatchStart::oldest(), {});
  REQUIRE(oldest.is_ok());
  REQUIRE((*oldest)->cursor().get(ShardId{0}) == 2U);

  auto prefix = hub->subscribe(Topic::for_prefix("a/"), WatchStart::after(cursor), {});
  REQUIRE(prefix.is_ok());
  std::vector<Version> expected;
  for (Version v = 5; v <= 30; ++v) {
    if (v % 3 != 2) expected.push_back(v);
  }
  REQUIRE(drain(**prefix) == expected);
  // Live events continue the replayed ones.
  REQUIRE(store->put(31, 31, "a/new", as_bytes("31")).is_ok());
  hub->publish(ShardId{0}, 31, 31, WatchOp::put, "a/new", as_bytes("31"));
  hub->frontier(ShardId{0}, 31);
  REQUIRE(drain(**prefix) == std::vector<Version>{31});
}

TEST_CASE("A prefix cursor is gone exactly when retention discarded a version under the prefix",
          "[watch][history]") {
  auto store = memory_store(2);
  StoreWatchHistory history(*store, ShardId{0});
  WatchHubOptions options;
  options.journal_events = 2;
  auto hub = make_hub(options);
  REQUIRE(hub->add_shard(ShardId{0}, 0, &history).is_ok());
  // "a/1" at 1, 4, 7, ... (keeps its 2 newest), "a/2" at 2 and 3 only, "b/1" busy at the rest.
  Version v = 0;
  auto write = [&](const std::string& key) {
    ++v;
    std::string value = key + std::to_string(v);
    REQUIRE(store->put(v, v, key, as_bytes(value)).is_ok());
    hub->publish(ShardId{0}, v, v, WatchOp::put, key, as_bytes(value));
  };
  write("a/1");
  write("a/2");
  write("a/2");
  for (int i = 0; i < 5; ++i) {
    write("a/1");
    write("b/1");
    write("b/1");
  }
  hub->frontier(ShardId{0}, v);
  // a/1 holds 13 and 16; it lost 10 and older. b/1 lost up to 15.
  for (Version from = 0; from < v; ++from) {
    INFO("from " << from);
    WatchCursor cursor;
    cursor.set(ShardId{0}, from);
    auto watcher = hub->subscribe(Topic::for_prefix("a/"), WatchStart::after(cursor), {});
    if (from < 10) {
      REQUIRE(watcher.status().code() == Code::out_of_range);
      continue;
    }
    REQUIRE(watcher.is_ok());
    std::vector<Version> got;
    std::vector<WatchItem> batch;
    while ((*watcher)->poll(batch, 1) == PollState::more || !batch.empty()) {
      for (const WatchItem& item : batch) got.push_back(item.event->version);
    }
    std::vector<Version> expected;
    for (Version e : {13, 16}) {
      if (e > from) expected.push_back(e);
    }
    REQUIRE(got == expected);
  }
  auto oldest = hub->subscribe(Topic::for_prefix("a/"), WatchStart::oldest(), {});
  REQUIRE(oldest.is_ok());
  REQUIRE((*oldest)->cursor().get(ShardId{0}) == 10U);
}

namespace {

// A model-checked scenario: random publishes, frontiers, subscriptions from now, the oldest
// position or old cursors, polls with small buffers (so watchers are dropped and resume), and
// closes; at the end every logical client must have received exactly the emitted events of its
// topic after its start, per shard in order — across all its reconnections.
class ReplayScenario {
 public:
  explicit ReplayScenario(std::uint64_t seed) : rng_(seed) {
    shards_ = 1 + rng_() % 2;
    with_store_ = rng_() % 2 == 0;
    WatchHubOptions options;
    options.journal_events = 2 + rng_() % 30;
    hub_ = make_hub(options);
    for (std::uint32_t s = 0; s < shards_; ++s) {
      stores_.push_back(memory_store());
      StoreWatchHistoryOptions history_options;
      history_options.stored = [](const Topic& t) { return !touches_stateless(t); };
      histories_.push_back(std::make_unique<StoreWatchHistory>(*stores_.back(), ShardId{s},
                                                               history_options));
      REQUIRE(hub_->add_shard(ShardId{s}, 0, with_store_ ? histories_.back().get() : nullptr)
                  .is_ok());
    }
    emitted_.resize(shards_);
    pending_.resize(shards_);
    frontier_.assign(shards_, 0);
    snapshots_.push_back(hub_->position());
  }

  void run(int steps) {
    for (int i = 0; i < steps; ++i) step();
    for (std::uint32_t s = 0; s < shards_; ++s) advance_frontier(s, version_);
    for (Client& client : clients_) {
      while (client.watcher && poll(client, 64) != PollState::idle) {
      }
      check(client);
    }
  }

 private:
  struct Client {
    Topic topic;
    bool values = true;
    std::size_t buffer = 1;
    WatchCursor start;            // of the first subscription
    std::unique_ptr<Watcher> watcher;
    std::vector<WatchItem> received;
    std::optional<WatchCursor> lost_at;  // gone while resuming: the stream ends here
  };

  static constexpr const char* kKeys[] = {"a/1", "a/2", "a/3", "b/1", "b/2", "s/1", "s/2"};
  static constexpr const char* kPrefixes[] = {"", "a/", "b/", "s/", "a/1"};

  ShardId shard_of(std::string_view key) const {
    return ShardId{static_cast<std::uint32_t>(key.back() - '0') % shards_};
  }

  void step() {
    std::uint64_t roll = rng_() % 100;
    if (roll < 40) {
      publish();
    } else if (roll < 55) {
      std::uint32_t s = static_cast<std::uint32_t>(rng_() % shards_);
      advance_frontier(s, frontier_[s] + rng_() % (version_ - frontier_[s] + 1));
    } else if (roll < 65) {
      subscribe();
    } else if (roll < 95) {
      if (!clients_.empty()) poll(clients_[rng_() % clients_.size()], 1 + rng_() % 8);
    } else if (roll < 97) {
      snapshots_.push_back(hub_->position());
    } else if (!clients_.empty()) {
      Client& client = clients_[rng_() % clients_.size()];
      if (client.watcher) reconnect(client, "closed by the test");
    }
  }

  void publish() {
    std::string key = kKeys[rng_() % std::size(kKeys)];
    ShardId shard = shard_of(key);
    ModelEvent event{shard, ++version_, rng_() % 5 == 0 ? WatchOp::del : WatchOp::put, key,
                     "value" + std::to_string(version_)};
    if (event.op == WatchOp::del) event.value.clear();
    if (!key.starts_with("s/")) {
      Store& store = *stores_[shard.value];
      Status applied = event.op == WatchOp::put
                           ? store.put(event.version, event.version, key, as_bytes(event.value))
                           : store.remove(event.version, event.version, key);
      REQUIRE(applied.is_ok());
    }
    hub_->publish(shard, event.version, event.version, event.op, key, as_bytes(event.value));
    pending_[shard.value].push_back(std::move(event));
  }

  void advance_frontier(std::uint32_t s, Version to) {
    hub_->frontier(ShardId{s}, to);
    if (to <= frontier_[s]) return;
    frontier_[s] = to;
    auto& pending = pending_[s];
    while (!pending.empty() && pending.front().version <= to) {
      emitted_[s].push_back(std::move(pending.front()));
      pending.erase(pending.begin());
    }
  }

  // The journal's base in the model: the newest event evicted (journal_events newest kept).
  Version journal_base(std::uint32_t s) const {
    std::size_t keep = hub_->options().journal_events;
    const auto& events = emitted_[s];
    return events.size() > keep ? events[events.size() - keep - 1].version : 0;
  }

  // Keys under "s/" are not stored (a stateless pool): no topic that includes one is replayed.
  static bool touches_stateless(const Topic& topic) {
    return topic.text.starts_with("s/") ||
           (topic.is_prefix() && std::string_view("s/").starts_with(topic.text));
  }

  bool has_history(const Topic& topic) const { return with_store_ && !touches_stateless(topic); }

  // Whether the model says a start at `cursor` can be replayed.
  bool replayable(const Topic& topic, const WatchCursor& cursor) const {
    for (std::uint32_t s = 0; s < shards_; ++s) {
      Version from = cursor.get(ShardId{s}).value_or(0);
      if (from < frontier_[s] && from < journal_base(s) && !has_history(topic)) return false;
    }
    return true;
  }

  Topic random_topic() {
    if (rng_() % 2) return Topic::for_key(kKeys[rng_() % std::size(kKeys)]);
    return Topic::for_prefix(kPrefixes[rng_() % std::size(kPrefixes)]);
  }

  void subscribe() {
    Client client;
    client.topic = random_topic();
    client.values = rng_() % 3 != 0;
    client.buffer = 1 + rng_() % 6;
    std::uint64_t kind = rng_() % 3;
    WatchStart start = kind == 0   ? WatchStart::now()
                       : kind == 1 ? WatchStart::oldest()
                                   : WatchStart::after(snapshots_[rng_() % snapshots_.size()]);
    Result<std::unique_ptr<Watcher>> watcher = open(client, start);
    if (start.kind == WatchStart::Kind::cursor && !replayable(client.topic, start.cursor)) {
      REQUIRE(watcher.status().code() == Code::out_of_range);
      return;
    }
    REQUIRE(watcher.is_ok());
    client.watcher = std::move(*watcher);
    client.start = client.watcher->cursor();
    check_start(client, start);
    clients_.push_back(std::move(client));
  }

  Result<std::unique_ptr<Watcher>> open(const Client& client, const WatchStart& start) {
    WatchOptions options;
    options.buffer_events = client.buffer;
    options.values = client.values;
    return hub_->subscribe(client.topic, start, options);
  }

  void check_start(const Client& client, const WatchStart& start) {
    for (std::uint32_t s = 0; s < shards_; ++s) {
      Version from = *client.start.get(ShardId{s});
      if (start.kind == WatchStart::Kind::now) REQUIRE(from == frontier_[s]);
      if (start.kind == WatchStart::Kind::cursor) REQUIRE(from == *start.cursor.get(ShardId{s}));
      if (start.kind == WatchStart::Kind::oldest) {
        Version expected = std::min(frontier_[s], journal_base(s));
        if (has_history(client.topic) && !client.topic.is_prefix()) {
          expected = std::min(expected, oldest_stored(client, s));
        }
        if (has_history(client.topic) && client.topic.is_prefix()) expected = 0;
        REQUIRE(from == expected);
      }
    }
  }

  // The store's oldest position for a key topic: just below its first version (none: no bound).
  Version oldest_stored(const Client& client, std::uint32_t s) const {
    for (const auto& events : {std::cref(emitted_[s]), std::cref(pending_[s])}) {
      for (const ModelEvent& event : events.get()) {
        if (event.key == client.topic.text) return event.version - 1;
      }
    }
    return UINT64_MAX;
  }

  // Returns more after a reconnection.
  PollState poll(Client& client, std::size_t max_events) {
    if (!client.watcher) return PollState::closed;
    std::vector<WatchItem> batch;
    PollState state = client.watcher->poll(batch, max_events);
    client.received.insert(client.received.end(), batch.begin(), batch.end());
    if (state != PollState::closed) return state;
    Code code = client.watcher->status().code();
    REQUIRE((code == Code::would_block || code == Code::out_of_range));
    reconnect(client, "dropped");
    return PollState::more;
  }

  // Resumes the logical client from its cursor: the stream must continue seamlessly.
  void reconnect(Client& client, const char* why) {
    INFO(why);
    WatchCursor cursor = client.watcher->cursor();
    client.watcher.reset();
    Result<std::unique_ptr<Watcher>> watcher = open(client, WatchStart::after(cursor));
    if (!replayable(client.topic, cursor)) {
      REQUIRE(watcher.status().code() == Code::out_of_range);
      client.lost_at = cursor;
      return;
    }
    REQUIRE(watcher.is_ok());
    client.watcher = std::move(*watcher);
  }

  void check(const Client& client) const {
    INFO("topic '" << client.topic.text << "' prefix " << client.topic.is_prefix());
    for (std::uint32_t s = 0; s < shards_; ++s) {
      Version from = *client.start.get(ShardId{s});
      Version to = client.lost_at ? *client.lost_at->get(ShardId{s}) : UINT64_MAX;
      std::vector<const ModelEvent*> expected;
      for (const ModelEvent& event : emitted_[s]) {
        if (event.version > from && event.version <= to && client.topic.matches(event.key)) {
          expected.push_back(&event);
        }
      }
      std::vector<const WatchItem*> got;
      for (const WatchItem& item : client.received) {
        if (item.event->shard == ShardId{s}) got.push_back(&item);
      }
      REQUIRE(got.size() == expected.size());
      for (std::size_t i = 0; i < got.size(); ++i) {
        const WatchEvent& event = *got[i]->event;
        REQUIRE(event.version == expected[i]->version);
        REQUIRE(event.key == expected[i]->key);
        REQUIRE(event.op == expected[i]->op);
        REQUIRE(got[i]->has_value == (client.values && event.op == WatchOp::put));
        if (got[i]->has_value) REQUIRE(as_string_view(event.value) == expected[i]->value);
      }
    }
  }

  std::mt19937_64 rng_;
  std::uint32_t shards_ = 1;
  bool with_store_ = false;
  std::vector<std::unique_ptr<Store>> stores_;
  std::vector<std::unique_ptr<StoreWatchHistory>> histories_;
  std::unique_ptr<WatchHub> hub_;
  Version version_ = 0;
  std::vector<Version> frontier_;
  std::vector<std::vector<ModelEvent>> emitted_;
  std::vector<std::vector<ModelEvent>> pending_;
  std::vector<WatchCursor> snapshots_;
  std::vector<Client> clients_;
};

}  // namespace

TEST_CASE("Replay then live matches the model over many seeds (no gap, no duplicate)",
          "[watch][replay]") {
  for (std::uint64_t seed = 1; seed <= 300; ++seed) {
    INFO("seed " << seed);
    ReplayScenario scenario(seed);
    scenario.run(400);
  }
}

namespace {

// The test's side of a concurrent consumer: resumes after drops until it has everything.
// Catch2 assertions are not thread-safe: the consumer thread records failures in `error`.
struct Consumer {
  Topic topic;
  WatchStart start;
  std::size_t buffer = 1;
  std::size_t begin_after = 0;  // subscribes once this many events were published
  WatchCursor first_cursor;
  std::vector<WatchEventPtr> received;
  int reconnects = 0;
  std::string error;

  std::mutex mutex;
  std::condition_variable wake;
  bool ready = false;  // GUARDED_BY(mutex)
};

struct Progress {
  std::atomic<std::size_t> published{0};
  std::atomic<bool> done{false};
  WatchCursor final_position;  // written before `done`
};

void consume(WatchHub& hub, Consumer& consumer, const Progress& progress) {
  while (progress.published.load() < consumer.begin_after && !progress.done.load()) {
    std::this_thread::yield();
  }
  WatchOptions options;
  options.buffer_events = consumer.buffer;
  options.on_ready = [&consumer] {
    std::lock_guard lock(consumer.mutex);
    consumer.ready = true;
    consumer.wake.notify_one();
  };
  Result<std::unique_ptr<Watcher>> opened = hub.subscribe(consumer.topic, consumer.start, options);
  if (!opened) {
    consumer.error = "subscribe: " + opened.status().to_string();
    return;
  }
  std::unique_ptr<Watcher> watcher = std::move(*opened);
  consumer.first_cursor = watcher->cursor();
  std::vector<WatchItem> batch;
  for (;;) {
    PollState state = watcher->poll(batch, 1 + consumer.received.size() % 16);
    for (const WatchItem& item : batch) consumer.received.push_back(item.event);
    if (state == PollState::more) continue;
    if (state == PollState::closed) {
      if (watcher->status().code() != Code::would_block) {
        consumer.error = "closed: " + watcher->status().to_string();
        return;
      }
      WatchCursor cursor = watcher->cursor();
      watcher.reset();
      opened = hub.subscribe(consumer.topic, WatchStart::after(cursor), options);
      if (!opened) {
        consumer.error = "resume: " + opened.status().to_string();
        return;
      }
      watcher = std::move(*opened);
      ++consumer.reconnects;
      continue;
    }
    if (progress.done.load() && watcher->cursor() == progress.final_position) return;
    std::unique_lock lock(consumer.mutex);
    consumer.wake.wait(lock, [&] { return consumer.ready || progress.done.load(); });
    consumer.ready = false;
  }
}

// Checks one consumer's stream against the published plan: per shard, exactly the events of
// its topic above its first cursor, in order.
void check_stream(const Consumer& consumer, const std::vector<ModelEvent>& plan,
                  std::uint32_t shards) {
  INFO("topic '" << consumer.topic.text << "' buffer " << consumer.buffer << " reconnects "
                 << consumer.reconnects);
  REQUIRE(consumer.error.empty());
  for (std::uint32_t s = 0; s < shards; ++s) {
    Version from = *consumer.first_cursor.get(ShardId{s});
    std::vector<const ModelEvent*> expected;
    for (const ModelEvent& event : plan) {
      if (event.shard == ShardId{s} && event.version > from && consumer.topic.matches(event.key)) {
        expected.push_back(&event);
      }
    }
    std::vector<const WatchEvent*> got;
    for (const WatchEventPtr& event : consumer.received) {
      if (event->shard == ShardId{s}) got.push_back(event.get());
    }
    REQUIRE(got.size() == expected.size());
    for (std::size_t i = 0; i < got.size(); ++i) {
      REQUIRE(got[i]->version == expected[i]->version);
      REQUIRE(got[i]->op == expected[i]->op);
      REQUIRE(as_string_view(got[i]->value) == expected[i]->value);
    }
  }
}

std::vector<ModelEvent> make_plan(std::mt19937_64& rng, std::size_t count,
                                  std::uint32_t shards) {
  std::vector<ModelEvent> plan;
  for (std::size_t i = 0; i < count; ++i) {
    std::uint32_t number = static_cast<std::uint32_t>(rng() % 8);
    ModelEvent event{ShardId{number % shards}, i + 1, WatchOp::put,
                     "k/" + std::to_string(number), "value" + std::to_string(i + 1)};
    if (rng() % 10 == 0) {
      event.op = WatchOp::del;
      event.value.clear();
    }
    plan.push_back(std::move(event));
  }
  return plan;
}

// The delivery thread's part: store, publish, and frontiers at random points.
void produce(WatchHub& hub, std::vector<std::unique_ptr<Store>>& stores,
             const std::vector<ModelEvent>& plan, std::mt19937_64& rng, Progress& progress) {
  for (const ModelEvent& event : plan) {
    Store& store = *stores[event.shard.value];
    Status applied = event.op == WatchOp::put
                         ? store.put(event.version, event.version, event.key,
                                     as_bytes(event.value))
                         : store.remove(event.version, event.version, event.key);
    SQUALL_ASSERT(applied.is_ok(), "store: {}", applied.to_string());
    hub.publish(event.shard, event.version, event.version, event.op, event.key,
                as_bytes(event.value));
    progress.published.fetch_add(1);
    if (rng() % 8 == 0) {
      hub.frontier(ShardId{static_cast<std::uint32_t>(rng() % stores.size())}, event.version);
    }
    if (rng() % 16 == 0) std::this_thread::yield();
  }
  for (std::uint32_t s = 0; s < stores.size(); ++s) hub.frontier(ShardId{s}, plan.size());
  progress.final_position = hub.position();
  progress.done.store(true);
}

}  // namespace

TEST_CASE("Replay then live under concurrent publishing: no gap, no duplicate",
          "[watch][replay]") {
  constexpr std::size_t kEvents = 20000;
  constexpr std::uint32_t kShards = 2;
  for (std::uint64_t seed = 1; seed <= 10; ++seed) {
    INFO("seed " << seed);
    std::mt19937_64 rng(seed);
    // Odd seeds: a tiny journal, so resumes replay from the stores; even seeds: a journal
    // that holds everything.
    bool small_journal = seed % 2 == 1;
    WatchHubOptions options;
    options.journal_events = small_journal ? 16 : kEvents;
    auto hub = make_hub(options);
    std::vector<std::unique_ptr<Store>> stores;
    std::vector<std::unique_ptr<StoreWatchHistory>> histories;
    for (std::uint32_t s = 0; s < kShards; ++s) {
      stores.push_back(memory_store());
      histories.push_back(std::make_unique<StoreWatchHistory>(*stores.back(), ShardId{s}));
      REQUIRE(hub->add_shard(ShardId{s}, 0, histories.back().get()).is_ok());
    }
    std::vector<ModelEvent> plan = make_plan(rng, kEvents, kShards);
    std::vector<std::unique_ptr<Consumer>> consumers;
    for (int c = 0; c < 4; ++c) {
      auto consumer = std::make_unique<Consumer>();
      std::string key = "k/" + std::to_string(rng() % 8);
      consumer->topic = rng() % 3 == 0 ? Topic::for_key(key)
                                                    : Topic::for_prefix(rng() % 2 ? "k/" : "k/1");
      consumer->buffer = 1 + rng() % 32;
      consumer->begin_after = rng() % kEvents;
      std::uint64_t kind = rng() % 3;
      if (kind == 1) consumer->start = WatchStart::oldest();
      if (kind == 2) {
        WatchCursor cursor;
        for (std::uint32_t s = 0; s < kShards; ++s) {
          cursor.set(ShardId{s}, rng() % (consumer->begin_after + 1));
        }
        consumer->start = WatchStart::after(cursor);
      }
      consumers.push_back(std::move(consumer));
    }
    Progress progress;
    std::vector<std::thread> threads;
    for (auto& consumer : consumers) {
      threads.emplace_back([&hub, &progress, c = consumer.get()] { consume(*hub, *c, progress); });
    }
    produce(*hub, stores, plan, rng, progress);
    for (auto& consumer : consumers) {
      std::lock_guard lock(consumer->mutex);
      consumer->wake.notify_one();
    }
    for (std::thread& thread : threads) thread.join();
    for (const auto& consumer : consumers) check_stream(*consumer, plan, kShards);
  }
}

TEST_CASE("Fan-out at test scale: 10,000 watchers over 1,000 topics get exactly theirs",
          "[watch][scale]") {
  auto hub = make_hub();
  REQUIRE(hub->add_shard(ShardId{0}, 0, nullptr).is_ok());
  std::vector<Topic> topics;
  for (int i = 0; i < 800; ++i) topics.push_back(Topic::for_key("t" + std::to_string(i) + "/x"));
  for (int i = 0; i < 200; ++i) topics.push_back(Topic::for_prefix("t" + std::to_string(i) + "/"));
  std::vector<std::unique_ptr<Watcher>> watchers;
  std::vector<std::size_t> topic_of;
  for (int copy = 0; copy < 10; ++copy) {
    for (std::size_t t = 0; t < topics.size(); ++t) {
      auto watcher = hub->subscribe(topics[t], WatchStart::now(), {});
      REQUIRE(watcher.is_ok());
      watchers.push_back(std::move(*watcher));
      topic_of.push_back(t);
    }
  }
  REQUIRE(hub->stats().watchers == 10000);
  REQUIRE(hub->stats().topics == 1000);
  std::mt19937_64 rng(5);
  std::vector<std::size_t> per_topic(topics.size(), 0);
  std::uint64_t expected_deliveries = 0;
  for (Version v = 1; v <= 5000; ++v) {
    std::string key = "t" + std::to_string(rng() % 1000) + (rng() % 2 ? "/x" : "/y");
    hub->publish(ShardId{0}, v, v, WatchOp::put, key, as_bytes("value"));
    for (std::size_t t = 0; t < topics.size(); ++t) {
      if (topics[t].matches(key)) {
        ++per_topic[t];
        expected_deliveries += 10;
      }
    }
    if (v % 100 == 0) hub->frontier(ShardId{0}, v);
  }
  REQUIRE(hub->stats().deliveries == expected_deliveries);
  REQUIRE(hub->stats().dropped_slow == 0);
  std::vector<WatchItem> batch;
  for (std::size_t w = 0; w < watchers.size(); ++w) {
    std::size_t count = 0;
    Version last = 0;
    while (watchers[w]->poll(batch, 64) != PollState::idle || !batch.empty()) {
      for (const WatchItem& item : batch) {
        REQUIRE(topics[topic_of[w]].matches(item.event->key));
        REQUIRE(item.event->version > last);
        last = item.event->version;
      }
      count += batch.size();
      if (batch.empty()) break;
    }
    REQUIRE(count == per_topic[topic_of[w]]);
  }
}

}  // namespace squall::kvstore
