// bench_kvstore: the kvstore layer's figures on this machine.
//
//   1. raw fdatasync rate (write 100 bytes + fdatasync, repeated) on the bench folder's disk;
//   2. append throughput with group commit: batches of N records per sync, and a pipelined
//      writer + syncer pair, compared with (1) measured in the same run;
//   3. index memory per key and per version;
//   4. latency of get latest / by version / by time (index only, and with the value read);
//   5. compaction beside a writer: longest exclusive index lock hold and writer stall;
//   6. Store::changes (prefix replay, read_log): a page over every key, over a narrow prefix,
//      and the writes per second a paged replay of the newest versions delivers.
// Prints a progress line on stderr while running and the figures on stdout.
#include <malloc.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <thread>

#include <CLI/CLI.hpp>

#include "common/log.hpp"
#include "kvstore/store.hpp"

using namespace squall;
using namespace squall::kvstore;

namespace {

using SteadyClock = std::chrono::steady_clock;

double seconds_since(SteadyClock::time_point start) {
  return std::chrono::duration<double>(SteadyClock::now() - start).count();
}

void progress(const char* phase, std::uint64_t done, std::uint64_t total) {
  std::fprintf(stderr, "\r[bench_kvstore] %-28s %10llu / %-10llu", phase,
               static_cast<unsigned long long>(done), static_cast<unsigned long long>(total));
  if (done == total) std::fprintf(stderr, "\n");
}

struct Settings {
  std::string folder;
  std::uint64_t sync_rounds = 300;
  std::uint64_t records = 200'000;
  std::size_t value_bytes = 100;
  std::size_t keys = 200'000;
  std::size_t versions_per_key = 8;
  std::uint64_t lookups = 200'000;
};

std::unique_ptr<Directory> fresh_directory(const Settings& settings, const std::string& name) {
  std::string path = settings.folder + "/" + name;
  std::filesystem::remove_all(path);
  auto directory = open_posix_directory(path, true);
  SQUALL_ASSERT(directory.is_ok(), "cannot create {}: {}", path, directory.status().to_string());
  return std::move(directory.value());
}

// (1) write + fdatasync rounds per second.
double raw_fsync_rate(const Settings& settings) {
  auto directory = fresh_directory(settings, "raw");
  auto file = directory->open("raw", OpenMode::create_new);
  SQUALL_ASSERT(file.is_ok(), "{}", file.status().to_string());
  std::string record(100, 'r');
  ConstBuffer part = as_bytes(record);
  auto start = SteadyClock::now();
  for (std::uint64_t i = 0; i < settings.sync_rounds; ++i) {
    SQUALL_ASSERT(write_fully(*file.value(), i * 100, std::span<const ConstBuffer>(&part, 1)),
                  "write failed");
    SQUALL_ASSERT(file.value()->sync().is_ok(), "fdatasync failed");
    if (i % 50 == 0 || i + 1 == settings.sync_rounds) {
      progress("raw fdatasync", i + 1, settings.sync_rounds);
    }
  }
  return static_cast<double>(settings.sync_rounds) / seconds_since(start);
}

std::unique_ptr<Store> open_store(Directory* directory, const Clock& clock,
                                  RetentionPolicy retention = {}) {
  StoreOptions options;
  options.retention = retention;
  auto store = Store::open(directory, options, clock);
  SQUALL_ASSERT(store.is_ok(), "open: {}", store.status().to_string());
  return std::move(store.value());
}

std::string key_name(std::uint64_t i) { return "bench/key/" + std::to_string(i); }

// (2a) batches of `per_sync` records, one sync each: durable records per second.
double group_commit_rate(const Settings& settings, std::size_t per_sync) {
  auto directory = fresh_directory(settings, "group" + std::to_string(per_sync));
  auto store = open_store(directory.get(), SystemClock::instance());
  std::string value(settings.value_bytes, 'v');
  std::uint64_t total = std::min<std::uint64_t>(settings.records, per_sync * 2000);
  std::vector<std::string> keys;
  std::vector<Update> batch;
  auto start = SteadyClock::now();
  for (std::uint64_t done = 0; done < total;) {
    keys.clear();
    batch.clear();
    for (std::size_t i = 0; i < per_sync && done + i < total; ++i) {
      keys.push_back(key_name((done + i) % settings.keys));
    }
    for (std::size_t i = 0; i < keys.size(); ++i) {
      Version version = done + i + 1;
      batch.push_back({version, version, Op::put, keys[i], as_bytes(value)});
    }
    SQUALL_ASSERT(store->apply(batch).is_ok(), "apply failed");
    SQUALL_ASSERT(store->sync().is_ok(), "sync failed");
    done += batch.size();
    if (done % (per_sync * 100) == 0 || done == total) progress("group commit", done, total);
  }
  return static_cast<double>(total) / seconds_since(start);
}

// (2b) a writer applying single records while another thread syncs in a loop.
double pipelined_rate(const Settings& settings, double& records_per_sync) {
  auto directory = fresh_directory(settings, "pipelined");
  auto store = open_store(directory.get(), SystemClock::instance());
  std::string value(settings.value_bytes, 'v');
  std::atomic<bool> done{false};
  std::atomic<std::uint64_t> syncs{0};
  std::thread syncer([&] {  // counts only syncs that made something new durable
    Version durable = 0;
    while (!done) {
      auto synced = store->sync();
      SQUALL_ASSERT(synced.is_ok(), "sync failed");
      if (synced.value() > durable) ++syncs;
      durable = synced.value();
    }
  });
  auto start = SteadyClock::now();
  for (Version v = 1; v <= settings.records; ++v) {
    std::string key = key_name(v % settings.keys);
    SQUALL_ASSERT(store->put(v, v, key, as_bytes(value)).is_ok(), "put failed");
    if (v % 20000 == 0 || v == settings.records) progress("pipelined", v, settings.records);
  }
  while (store->durable_version() < settings.records) std::this_thread::yield();
  double elapsed = seconds_since(start);
  done = true;
  syncer.join();
  records_per_sync = static_cast<double>(settings.records) / static_cast<double>(syncs.load());
  return static_cast<double>(settings.records) / elapsed;
}

// (3) bytes per key and per version of the index, from the allocator's accounting.
void index_memory(const Settings& settings) {
  auto in_use = [] { return static_cast<double>(mallinfo2().uordblks); };
  auto release = [](std::string_view, const Entry&, bool) {};
  double start = in_use();
  VersionIndex index;
  std::size_t key_bytes = 0;
  Version version = 0;
  for (std::size_t i = 0; i < settings.keys; ++i) {
    std::string key = key_name(i);
    key_bytes += key.size();
    ++version;
    index.insert(key, {version, version, Op::put, 100, version}, release);
  }
  double one = in_use() - start;
  for (std::size_t round = 1; round < settings.versions_per_key; ++round) {
    for (std::size_t i = 0; i < settings.keys; ++i) {
      ++version;
      index.insert(key_name(i), {version, version, Op::put, 100, version}, release);
    }
    progress("index memory", round + 1, settings.versions_per_key);
  }
  double all = in_use() - start;
  double per_version = (all - one) / static_cast<double>(settings.keys *
                                                         (settings.versions_per_key - 1));
  double per_key = (one - static_cast<double>(key_bytes)) / static_cast<double>(settings.keys) -
                   per_version;
  std::printf("index memory: %.1f B per key (key bytes excluded), %.1f B per version "
              "(%zu keys x %zu versions)\n", per_key, per_version, settings.keys,
              settings.versions_per_key);
}

}  // namespace

namespace {

struct Latency {
  double p50 = 0;
  double p99 = 0;
  double max = 0;
};

Latency percentiles(std::vector<double> samples) {
  Latency latency;
  if (samples.empty()) return latency;
  std::sort(samples.begin(), samples.end());
  latency.p50 = samples[samples.size() / 2];
  latency.p99 = samples[samples.size() * 99 / 100];
  latency.max = samples.back();
  return latency;
}

template <typename Fn>
Latency measure(const char* phase, std::uint64_t count, Fn&& fn) {
  std::vector<double> samples;
  samples.reserve(count);
  for (std::uint64_t i = 0; i < count; ++i) {
    auto start = SteadyClock::now();
    fn(i);
    samples.push_back(std::chrono::duration<double, std::nano>(SteadyClock::now() - start)
                          .count());
    if (i % 50000 == 0 || i + 1 == count) progress(phase, i + 1, count);
  }
  return percentiles(std::move(samples));
}

// (6) Store::changes over the loaded store: every key is visited per page.
void change_scan(const Store& store, Version last, std::size_t keys) {
  std::mt19937_64 random(11);
  constexpr std::size_t kPage = 1024;
  auto whole = measure("changes page, all keys", 20, [&](std::uint64_t) {
    auto page = store.changes("", random() % (last / 2), last, kPage);
    SQUALL_ASSERT(page.is_ok() && page->changes.size() == kPage, "changes failed");
  });
  auto narrow = measure("changes page, narrow", 2000, [&](std::uint64_t i) {
    // key_name(n) without its last digit, n >= keys / 2: n / 10 and the ten keys after it.
    std::string prefix = key_name(keys / 2 + i % (keys / 2));
    prefix.pop_back();
    auto page = store.changes(prefix, 0, last, kPage);
    SQUALL_ASSERT(page.is_ok(), "changes failed");
  });
  // Replay the newest `keys` versions with values, as read_log and prefix resumes do.
  auto start = SteadyClock::now();
  std::uint64_t writes = 0;
  for (Version after = last - std::min<Version>(last - 1, keys); after < last;) {
    auto page = store.changes("", after, last, kPage);
    SQUALL_ASSERT(page.is_ok(), "changes failed");
    for (const Change& change : page->changes) {
      SQUALL_ASSERT(store.read_version(change.key, change.entry.version).is_ok(), "read");
      ++writes;
    }
    after = page->through;
    progress("changes replay", after - (last - std::min<Version>(last - 1, keys)),
             std::min<Version>(last - 1, keys));
  }
  double elapsed = seconds_since(start);
  std::printf("Store::changes, pages of %zu (ms, p50 / max):\n", kPage);
  std::printf("  prefix \"\" over %zu keys      %8.2f / %8.2f\n", keys, whole.p50 / 1e6,
              whole.max / 1e6);
  std::printf("  a prefix of ~11 keys          %8.4f / %8.4f\n", narrow.p50 / 1e6,
              narrow.max / 1e6);
  std::printf("  paged replay of the newest %llu writes (values read): %.0f writes/s\n",
              static_cast<unsigned long long>(writes), static_cast<double>(writes) / elapsed);
}

// (4) reads over keys x versions_per_key versions, values in the page cache.
void read_latency(const Settings& settings) {
  auto directory = fresh_directory(settings, "reads");
  auto store = open_store(directory.get(), SystemClock::instance());
  std::string value(settings.value_bytes, 'v');
  std::vector<Update> batch;
  std::vector<std::string> keys;
  Version version = 0;
  std::uint64_t total = settings.keys * settings.versions_per_key;
  for (std::size_t round = 0; round < settings.versions_per_key; ++round) {
    for (std::size_t first = 0; first < settings.keys; first += 1000) {
      keys.clear();
      batch.clear();
      for (std::size_t i = first; i < std::min(settings.keys, first + 1000); ++i) {
        keys.push_back(key_name(i));
      }
      for (const auto& key : keys) {
        ++version;
        batch.push_back({version, hlc_make(version, 0), Op::put, key, as_bytes(value)});
      }
      SQUALL_ASSERT(store->apply(batch).is_ok(), "apply failed");
    }
    progress("load for reads", version, total);
  }
  SQUALL_ASSERT(store->sync().is_ok(), "sync failed");
  std::mt19937_64 random(7);
  std::vector<std::string> probe(4096);
  for (auto& key : probe) key = key_name(random() % settings.keys);
  auto point = [&](std::uint64_t i) { return 1 + (i * 2654435761ULL) % version; };
  std::size_t n = probe.size();
  auto latest = measure("lookup latest", settings.lookups, [&](std::uint64_t i) {
    (void)store->lookup(probe[i % n], ReadPoint::latest());
  });
  auto by_version = measure("lookup by version", settings.lookups, [&](std::uint64_t i) {
    (void)store->lookup(probe[i % n], ReadPoint::at_version(point(i)));
  });
  auto by_time = measure("lookup by time", settings.lookups, [&](std::uint64_t i) {
    (void)store->lookup(probe[i % n], ReadPoint::at_time(hlc_make(point(i), 0)));
  });
  auto get = measure("get with value", settings.lookups, [&](std::uint64_t i) {
    (void)store->get(probe[i % n], ReadPoint::at_version(point(i)));
  });
  std::printf("reads over %zu keys x %zu versions (ns, p50 / p99):\n", settings.keys,
              settings.versions_per_key);
  std::printf("  index lookup latest      %8.0f / %8.0f\n", latest.p50, latest.p99);
  std::printf("  index lookup by version  %8.0f / %8.0f\n", by_version.p50, by_version.p99);
  std::printf("  index lookup by time     %8.0f / %8.0f\n", by_time.p50, by_time.p99);
  std::printf("  get by version + pread   %8.0f / %8.0f\n", get.p50, get.p99);
  change_scan(*store, version, settings.keys);
}

// (5) a writer (with group commit every 256 records) while compaction runs in a loop.
void compaction_pause(const Settings& settings) {
  auto directory = fresh_directory(settings, "compaction");
  StoreOptions options;
  options.log.segment_size_bytes = 1 << 20;
  options.retention.keep_versions = 2;
  auto store_result = Store::open(directory.get(), options, SystemClock::instance());
  SQUALL_ASSERT(store_result.is_ok(), "{}", store_result.status().to_string());
  auto store = std::move(store_result.value());
  std::string value(settings.value_bytes, 'v');
  std::atomic<bool> done{false};
  std::size_t compacted = 0;
  std::thread compactor([&] {
    while (!done) {
      auto stats = store->compact();
      SQUALL_ASSERT(stats.is_ok(), "{}", stats.status().to_string());
      compacted += stats.value().segments_rewritten + stats.value().segments_removed;
    }
  });
  std::vector<double> put_us;
  put_us.reserve(settings.records);
  std::uint64_t keys = std::max<std::uint64_t>(settings.keys / 20, 1);
  for (Version v = 1; v <= settings.records; ++v) {
    std::string key = key_name(v % keys);
    auto start = SteadyClock::now();
    SQUALL_ASSERT(store->put(v, v, key, as_bytes(value)).is_ok(), "put failed");
    put_us.push_back(std::chrono::duration<double, std::micro>(SteadyClock::now() - start)
                         .count());
    if (v % 256 == 0) SQUALL_ASSERT(store->sync().is_ok(), "sync failed");
    if (v % 20000 == 0 || v == settings.records) {
      progress("compaction beside writes", v, settings.records);
    }
  }
  done = true;
  compactor.join();
  auto stats = store->stats();
  auto puts = percentiles(std::move(put_us));
  std::printf("compaction beside writes: %zu segments compacted, log %.1f MiB after %llu "
              "records\n", compacted, static_cast<double>(stats.log_bytes) / (1 << 20),
              static_cast<unsigned long long>(settings.records));
  std::printf("  put latency (us) p50 %.1f, p99 %.1f, max %.0f\n", puts.p50, puts.p99,
              puts.max);
  std::uint64_t holds = 0;
  for (auto count : stats.exclusive_holds_log2_us) holds += count;
  std::uint64_t seen = 0;
  std::size_t p99_bucket = 0;
  for (std::size_t i = 0; i < stats.exclusive_holds_log2_us.size(); ++i) {
    seen += stats.exclusive_holds_log2_us[i];
    if (seen * 100 >= holds * 99) {
      p99_bucket = i;
      break;
    }
  }
  std::printf("  exclusive index lock holds: %llu, p99 < %llu us, longest %llu us\n",
              static_cast<unsigned long long>(holds), 1ULL << p99_bucket,
              static_cast<unsigned long long>(stats.max_exclusive_hold_us));
}

}  // namespace

int main(int argc, char** argv) {
  Settings settings;
  settings.folder = (std::filesystem::temp_directory_path() / "squall-bench-kvstore").string();
  bool quick = false;
  CLI::App app{"kvstore benchmarks: group commit, index memory, read latency, compaction"};
  app.add_option("--dir", settings.folder, "folder for the bench logs (removed at the end)");
  app.add_option("--records", settings.records, "records per write phase");
  app.add_option("--value-bytes", settings.value_bytes, "value size");
  app.add_option("--keys", settings.keys, "distinct keys");
  app.add_flag("--quick", quick, "small sizes (a smoke run)");
  CLI11_PARSE(app, argc, argv);
  if (quick) {
    settings.records = 20'000;
    settings.keys = 20'000;
    settings.sync_rounds = 50;
    settings.lookups = 20'000;
  }
  logger("kvstore")->set_level(spdlog::level::warn);
  std::filesystem::remove_all(settings.folder);
  double fsyncs = raw_fsync_rate(settings);
  std::printf("raw write+fdatasync: %.0f per second (%.2f ms each) in %s\n", fsyncs,
              1000.0 / fsyncs, settings.folder.c_str());
  for (std::size_t per_sync : {1, 16, 256}) {
    double rate = group_commit_rate(settings, per_sync);
    std::printf("group commit, %3zu records of %zu B per sync: %9.0f durable records/s "
                "(%.1fx the raw fdatasync rate)\n", per_sync, settings.value_bytes, rate,
                rate / fsyncs);
  }
  double per_sync = 0;
  double pipelined = pipelined_rate(settings, per_sync);
  std::printf("pipelined writer + syncer: %9.0f durable records/s, %.0f records per sync "
              "(%.1fx the raw fdatasync rate)\n", pipelined, per_sync, pipelined / fsyncs);
  index_memory(settings);
  read_latency(settings);
  compaction_pause(settings);
  std::filesystem::remove_all(settings.folder);
  return 0;
}
