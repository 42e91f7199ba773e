// bench_watch: the watch hub's figures on this machine (docs/watch.md, "Figures").
//
//   1. memory: RSS and allocator bytes per watcher for W watchers over T topics (80% key
//      topics, 20% prefix topics), idle (empty queues);
//   2. publish(): ns per call (the delivery thread's cost before durability);
//   3. fan-out: ns per delivered event when frontier() emits events to W/T watchers each, and
//      ns per event that matches no topic (the matching cost with W watchers registered);
//   4. consumption: ns per event taken by poll();
//   5. wide fan-out: every watcher on one prefix, ns per delivered event;
//   6. memory with queues holding events (shared events: one copy however many watchers).
// Prints a progress line on stderr and the figures on stdout.
#include <malloc.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "common/log.hpp"
#include "kvstore/watch_hub.hpp"

using namespace squall;
using namespace squall::kvstore;

namespace {

using SteadyClock = std::chrono::steady_clock;

double ns_since(SteadyClock::time_point start) {
  return std::chrono::duration<double, std::nano>(SteadyClock::now() - start).count();
}

struct Settings {
  std::size_t watchers = 100'000;
  std::size_t topics = 10'000;
  std::size_t events = 200'000;
  std::size_t value_bytes = 100;
};

std::uint64_t rss_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::uint64_t size_pages = 0;
  std::uint64_t resident_pages = 0;
  statm >> size_pages >> resident_pages;
  return resident_pages * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
}

double heap_bytes() { return static_cast<double>(mallinfo2().uordblks); }

std::string topic_key(std::size_t topic, std::size_t key_topics, std::mt19937_64& rng) {
  if (topic < key_topics) return "key/" + std::to_string(topic);
  return "prefix/" + std::to_string(topic - key_topics) + "/item" + std::to_string(rng() % 100);
}

std::unique_ptr<WatchHub> make_hub(std::size_t watchers) {
  WatchHubOptions options;
  options.max_watchers = watchers;
  auto hub = WatchHub::create(options);
  SQUALL_ASSERT(hub.is_ok(), "hub: {}", hub.status().to_string());
  SQUALL_ASSERT((*hub)->add_shard(ShardId{0}, 0, nullptr).is_ok(), "add_shard");
  return std::move(*hub);
}

std::vector<std::unique_ptr<Watcher>> subscribe_all(WatchHub& hub, const Settings& settings,
                                                    std::size_t key_topics) {
  std::vector<std::unique_ptr<Watcher>> watchers;
  watchers.reserve(settings.watchers);
  for (std::size_t w = 0; w < settings.watchers; ++w) {
    std::size_t t = w % settings.topics;
    Topic topic = t < key_topics ? Topic::for_key("key/" + std::to_string(t))
                                 : Topic::for_prefix("prefix/" + std::to_string(t - key_topics) +
                                                     "/");
    auto watcher = hub.subscribe(topic, WatchStart::now(), {});
    SQUALL_ASSERT(watcher.is_ok(), "subscribe: {}", watcher.status().to_string());
    watchers.push_back(std::move(*watcher));
  }
  return watchers;
}

// Drains every watcher; returns the events taken.
std::uint64_t drain_all(std::vector<std::unique_ptr<Watcher>>& watchers) {
  std::uint64_t taken = 0;
  std::vector<WatchItem> batch;
  for (auto& watcher : watchers) {
    while (watcher->poll(batch, 256) == PollState::more) taken += batch.size();
    taken += batch.size();
  }
  return taken;
}

struct FanOut {
  double publish_ns = 0;    // per publish() call
  double frontier_ns = 0;   // total time inside frontier()
  double poll_ns = 0;       // total time draining
  std::uint64_t delivered = 0;
  std::uint64_t taken = 0;
};

// How events are fed: a frontier after every `batch` events, all watchers drained after
// every `drain_batches` batches (so no queue overflows).
struct Pace {
  std::size_t batch = 1000;
  std::size_t drain_batches = 10;
};

// Publishes `count` events (a multiple of pace.batch) on keys from `key_of`.
template <typename KeyOf>
FanOut run_fan_out(WatchHub& hub, std::vector<std::unique_ptr<Watcher>>& watchers,
                   Version& version, std::size_t count, const Settings& settings, Pace pace,
                   KeyOf key_of) {
  FanOut result;
  std::string value(settings.value_bytes, 'v');
  std::uint64_t delivered_before = hub.stats().deliveries;
  std::vector<std::string> keys(pace.batch);
  std::size_t batches = 0;
  for (std::size_t done = 0; done < count; done += pace.batch) {
    for (std::string& key : keys) key = key_of();
    auto start = SteadyClock::now();
    for (const std::string& key : keys) {
      ++version;
      hub.publish(ShardId{0}, version, version, WatchOp::put, key, as_bytes(value));
    }
    result.publish_ns += ns_since(start);
    start = SteadyClock::now();
    hub.frontier(ShardId{0}, version);
    result.frontier_ns += ns_since(start);
    if (++batches % pace.drain_batches == 0 || done + pace.batch >= count) {
      start = SteadyClock::now();
      result.taken += drain_all(watchers);
      result.poll_ns += ns_since(start);
    }
    std::fprintf(stderr, "\r[bench_watch] %zu / %zu events", done + pace.batch, count);
  }
  std::fprintf(stderr, "\n");
  result.delivered = hub.stats().deliveries - delivered_before;
  return result;
}

void print_fan_out(const char* name, const FanOut& r, std::size_t events) {
  std::printf("%-34s publish %6.0f ns/event | fan-out %7.1f ns/delivered (%llu delivered, "
              "%.1f per event) | poll %6.1f ns/event\n",
              name, r.publish_ns / static_cast<double>(events),
              r.delivered ? r.frontier_ns / static_cast<double>(r.delivered) : 0.0,
              static_cast<unsigned long long>(r.delivered),
              static_cast<double>(r.delivered) / static_cast<double>(events),
              r.taken ? r.poll_ns / static_cast<double>(r.taken) : 0.0);
}

void bench_many_topics(const Settings& settings) {
  std::size_t key_topics = settings.topics * 8 / 10;
  double heap_before = heap_bytes();
  std::uint64_t rss_before = rss_bytes();
  auto hub = make_hub(settings.watchers);
  auto subscribe_start = SteadyClock::now();
  auto watchers = subscribe_all(*hub, settings, key_topics);
  double subscribe_ns = ns_since(subscribe_start);
  double heap_after = heap_bytes();
  std::uint64_t rss_after = rss_bytes();
  WatchHubStats stats = hub->stats();
  std::printf("watchers %zu over %zu topics (%zu key, %zu prefix); subscribe %.0f ns each\n",
              stats.watchers, stats.topics, key_topics, settings.topics - key_topics,
              subscribe_ns / static_cast<double>(settings.watchers));
  std::printf("memory, idle watchers: RSS +%.1f MiB (%.0f B/watcher), heap +%.1f MiB "
              "(%.0f B/watcher)\n",
              static_cast<double>(rss_after - rss_before) / 1048576.0,
              static_cast<double>(rss_after - rss_before) /
                  static_cast<double>(settings.watchers),
              (heap_after - heap_before) / 1048576.0,
              (heap_after - heap_before) / static_cast<double>(settings.watchers));

  std::mt19937_64 rng(1);
  Version version = 0;
  FanOut matching = run_fan_out(*hub, watchers, version, settings.events, settings, {}, [&] {
    return topic_key(rng() % settings.topics, key_topics, rng);
  });
  print_fan_out("events on watched keys", matching, settings.events);
  FanOut unmatched = run_fan_out(*hub, watchers, version, settings.events, settings, {}, [&] {
    return "unwatched/" + std::to_string(rng() % 100000);
  });
  std::printf("%-34s publish %6.0f ns/event | emit+match %6.0f ns/event (no watcher)\n",
              "events on unwatched keys",
              unmatched.publish_ns / static_cast<double>(settings.events),
              unmatched.frontier_ns / static_cast<double>(settings.events));

  // Queues holding events: every watcher gets 8 events, nobody polls.
  double heap_idle = heap_bytes();
  std::string value(settings.value_bytes, 'v');
  std::size_t filled = settings.topics * 8;
  for (std::size_t i = 0; i < filled; ++i) {
    std::string key = topic_key(i % settings.topics, key_topics, rng);
    ++version;
    hub->publish(ShardId{0}, version, version, WatchOp::put, key, as_bytes(value));
    if (version % 1000 == 0) hub->frontier(ShardId{0}, version);
  }
  hub->frontier(ShardId{0}, version);
  SQUALL_ASSERT(hub->stats().dropped_slow + hub->stats().dropped_overflow == 0, "drops");
  stats = hub->stats();
  std::printf("memory, %zu events queued per watcher (%zu distinct events, %zu in the "
              "journal): heap +%.1f MiB (%.0f B per queued event)\n",
              filled / settings.topics, filled, stats.journal_events,
              (heap_bytes() - heap_idle) / 1048576.0,
              (heap_bytes() - heap_idle) /
                  static_cast<double>(filled / settings.topics * settings.watchers));
  drain_all(watchers);
  watchers.clear();
}

void bench_wide(const Settings& settings) {
  auto hub = make_hub(settings.watchers);
  std::vector<std::unique_ptr<Watcher>> watchers;
  for (std::size_t w = 0; w < settings.watchers; ++w) {
    auto watcher = hub->subscribe(Topic::for_prefix(""), WatchStart::now(), {});
    SQUALL_ASSERT(watcher.is_ok(), "subscribe: {}", watcher.status().to_string());
    watchers.push_back(std::move(*watcher));
  }
  // Every event reaches every watcher: about 20 million deliveries in batches of 10.
  Version version = 0;
  Pace pace{10, 1};
  std::size_t events = std::max<std::size_t>(1, 2'000'000 / settings.watchers) * pace.batch;
  FanOut wide = run_fan_out(*hub, watchers, version, events, settings, pace, [] {
    return std::string("any/key");
  });
  print_fan_out("one prefix, every watcher", wide, events);
}

}  // namespace

int main(int argc, char** argv) {
  Settings settings;
  CLI::App app{"watch hub benchmark: memory per watcher and fan-out cost"};
  app.add_option("--watchers", settings.watchers, "watchers")->check(CLI::Range(1, 1'000'000));
  app.add_option("--topics", settings.topics, "distinct topics")->check(CLI::Range(1, 1'000'000));
  app.add_option("--events", settings.events, "events per fan-out run")
      ->check(CLI::Range(1000, 100'000'000));
  app.add_option("--value-bytes", settings.value_bytes, "value size");
  CLI11_PARSE(app, argc, argv);
  if (settings.topics > settings.watchers) settings.topics = settings.watchers;
  logger("watch")->set_level(spdlog::level::warn);
  bench_many_topics(settings);
  bench_wide(settings);
  return 0;
}
