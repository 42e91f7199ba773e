// Crash-recovery property: random writes and syncs, a crash at a random point (dropping
// unsynced data, or keeping a torn prefix of it, or keeping all of it), then recovery. The
// recovered store must equal the state after some prefix of the writes, and that prefix must
// hold every write reported durable; after a plain power loss it is exactly the durable
// state, after a process crash exactly everything written. Every failure names its seed.
#include <map>
#include <random>

#include "common/log.hpp"
#include "kvstore/store.hpp"
#include "test/kvstore/test_util.hpp"

using namespace squall;
using namespace squall::kvstore;
using namespace squall::kvstore::testing;

namespace {

constexpr int kKeys = 16;

struct Written {
  Version version;
  HlcTimestamp timestamp;
  Op op;
  std::string key;
  std::string value;
};

std::string random_value(std::mt19937_64& random) {
  std::size_t size = random() % 10 == 0 ? 1500 + random() % 3000 : random() % 200;
  std::string value(size, '\0');
  for (auto& c : value) c = static_cast<char>('a' + random() % 26);
  return value;
}

// Runs random batches and syncs; returns the version the last completed sync reported.
Version run_writes(Store& store, std::mt19937_64& random, std::vector<Written>& written) {
  Version synced = 0;
  Version version = written.empty() ? 0 : written.back().version;
  HlcTimestamp timestamp = written.empty() ? 1'000'000 : written.back().timestamp;
  int steps = 40 + static_cast<int>(random() % 200);
  for (int step = 0; step < steps; ++step) {
    if (random() % 8 == 0) {
      auto durable = store.sync();
      REQUIRE(durable.is_ok());
      REQUIRE(durable.value() == store.last_version());
      synced = durable.value();
      continue;
    }
    std::size_t count = 1 + random() % 4;
    std::size_t first = written.size();
    for (std::size_t i = 0; i < count; ++i) {
      version += 1 + random() % 3;
      timestamp += random() % 2;
      Op op = random() % 6 == 0 ? Op::del : Op::put;
      std::string key = "k" + std::to_string(random() % kKeys);
      written.push_back({version, timestamp, op, key, op == Op::put ? random_value(random) : ""});
    }
    std::vector<Update> batch;
    for (std::size_t i = first; i < written.size(); ++i) {
      const Written& w = written[i];
      batch.push_back({w.version, w.timestamp, w.op, w.key, bytes_of(w.value)});
    }
    REQUIRE(store.apply(batch).is_ok());
  }
  return synced;
}

// Checks every key's latest value and full history against the writes up to `last`.
void check_state(const Store& store, const std::vector<Written>& written, Version last) {
  std::map<std::string, std::vector<const Written*>> history;
  for (const Written& w : written) {
    if (w.version <= last) history[w.key].push_back(&w);
  }
  for (int k = 0; k < kKeys; ++k) {
    std::string key = "k" + std::to_string(k);
    const auto& versions = history[key];
    auto read = store.get(key);
    if (versions.empty() || versions.back()->op == Op::del) {
      CHECK(read.status().code() == Code::not_found);
    } else {
      REQUIRE(read.is_ok());
      CHECK(read.value().entry.version == versions.back()->version);
      CHECK(text_of(read.value().value) == versions.back()->value);
    }
    auto page = store.history(key, std::nullopt, 10000);
    REQUIRE(page.is_ok());
    REQUIRE(page.value().versions.size() == versions.size());
    for (std::size_t i = 0; i < versions.size(); ++i) {
      const Entry& entry = page.value().versions[versions.size() - 1 - i];
      CHECK(entry.version == versions[i]->version);
      CHECK(entry.timestamp == versions[i]->timestamp);
      CHECK(entry.op == versions[i]->op);
    }
    if (!versions.empty() && versions.front()->op == Op::put) {
      auto oldest = store.get(key, ReadPoint::at_version(versions.front()->version));
      REQUIRE(oldest.is_ok());
      CHECK(text_of(oldest.value().value) == versions.front()->value);
    }
  }
}

void run_seed(std::uint64_t seed) {
  INFO("seed " << seed);
  std::mt19937_64 random(seed);
  TempDir temp;
  auto directory = faulty_dir(temp.path());
  ManualClock clock;
  StoreOptions options;
  options.log.segment_size_bytes = std::array<std::uint64_t, 3>{4096, 8192, 65536}[seed % 3];
  options.log.max_record_bytes = 1 << 20;
  options.max_value_bytes = 64 << 10;
  std::vector<Written> written;
  Version synced = 0;
  Version durable = 0;
  auto kind = std::array<CrashKind, 3>{CrashKind::power_loss, CrashKind::power_loss_torn,
                                       CrashKind::process}[(seed / 3) % 3];
  {
    auto store = Store::open(directory.get(), options, clock);
    REQUIRE(store.is_ok());
    synced = run_writes(*store.value(), random, written);
    // Rotations seal (fdatasync) segments too, so the store may report more than `synced`.
    durable = store.value()->durable_version();
    REQUIRE(directory->crash(kind, seed).is_ok());
  }
  auto store = Store::open(directory.get(), options, clock);
  REQUIRE(store.is_ok());
  Version recovered = store.value()->last_version();
  INFO("synced " << synced << ", durable " << durable << ", recovered " << recovered);
  CHECK(durable >= synced);
  CHECK(recovered >= durable);
  // Losing power loses exactly what was not durable: the state at the last completed sync.
  if (kind == CrashKind::power_loss) CHECK(recovered == durable);
  Version last_written = written.empty() ? 0 : written.back().version;
  CHECK(recovered <= last_written);
  if (kind == CrashKind::process) CHECK(recovered == last_written);
  bool at_a_write = recovered == 0;
  for (const Written& w : written) at_a_write = at_a_write || w.version == recovered;
  CHECK(at_a_write);
  check_state(*store.value(), written, recovered);
  // The recovered log takes new writes.
  REQUIRE(store.value()->put(recovered + 1, ~0ULL >> 1, "after", bytes_of("crash")).is_ok());
  REQUIRE(store.value()->sync().value() == recovered + 1);
}

}  // namespace

TEST_CASE("Crash recovery yields a prefix of the writes holding every synced one (300 seeds)") {
  logger("kvstore")->set_level(spdlog::level::warn);
  for (std::uint64_t seed = 0; seed < 300; ++seed) run_seed(seed);
}

namespace {

// The model's answer for `key` at version `at`: the write in effect, or null.
const Written* model_at(const std::vector<Written>& written, const std::string& key, Version at) {
  const Written* found = nullptr;
  for (const Written& w : written) {
    if (w.version > at) break;
    if (w.key == key) found = &w;
  }
  return found;
}

// With retention, reads at any version must be exact or gone (never a wrong answer). The
// newest `keep` versions of every key *as written* were never discarded, so those of them that
// were recovered must read exactly. (Older ones may be gone even if they were the newest
// recovered: retention acts on writes a power loss can take away again.)
void check_retained(const Store& store, const std::vector<Written>& written, Version last,
                    std::uint32_t keep, std::mt19937_64& random) {
  for (int k = 0; k < kKeys; ++k) {
    std::string key = "k" + std::to_string(k);
    std::vector<Version> all;
    for (const Written& w : written) {
      if (w.key == key) all.push_back(w.version);
    }
    Version window = all.size() <= keep ? 0 : all[all.size() - keep];
    for (int probe = 0; probe < 12; ++probe) {
      Version at = random() % (last + 1);
      if (probe < 3 && !all.empty()) {
        at = std::min(last, all[all.size() - 1 - (probe % all.size())]);
      }
      INFO("key " << key << " at " << at);
      const Written* expected = model_at(written, key, at);
      auto read = store.get(key, ReadPoint::at_version(at));
      bool must_be_exact = expected == nullptr ? all.size() <= keep : expected->version >= window;
      if (read.status().code() == Code::out_of_range) {
        CHECK_FALSE(must_be_exact);
      } else if (read.status().code() == Code::not_found) {
        CHECK((expected == nullptr || expected->op == Op::del));
      } else {
        REQUIRE(read.is_ok());
        REQUIRE(expected != nullptr);
        CHECK(read.value().entry.version == expected->version);
        CHECK(text_of(read.value().value) == expected->value);
      }
    }
  }
}

void run_retention_seed(std::uint64_t seed) {
  INFO("seed " << seed);
  std::mt19937_64 random(seed);
  TempDir temp;
  auto directory = faulty_dir(temp.path());
  ManualClock clock;
  StoreOptions options;
  options.log.segment_size_bytes = 16384;
  options.log.max_record_bytes = 1 << 20;
  options.max_value_bytes = 64 << 10;
  options.retention.keep_versions = 1 + static_cast<std::uint32_t>(seed % 3);
  std::vector<Written> written;
  Version durable = 0;
  auto kind = std::array<CrashKind, 3>{CrashKind::power_loss, CrashKind::power_loss_torn,
                                       CrashKind::process}[(seed / 3) % 3];
  {
    auto store = Store::open(directory.get(), options, clock);
    REQUIRE(store.is_ok());
    for (int round = 0; round < 3; ++round) {
      run_writes(*store.value(), random, written);
      auto compacted = store.value()->compact();
      REQUIRE(compacted.is_ok());
    }
    durable = store.value()->durable_version();
    REQUIRE(directory->crash(kind, seed).is_ok());
  }
  StoreOptions reopen = options;
  if (seed % 2 == 1) reopen.retention = {};  // a looser policy must not resurrect wrong answers
  auto store = Store::open(directory.get(), reopen, clock);
  REQUIRE(store.is_ok());
  Version recovered = store.value()->last_version();
  INFO("durable " << durable << ", recovered " << recovered);
  CHECK(recovered >= durable);
  if (kind == CrashKind::power_loss) CHECK(recovered == durable);
  check_retained(*store.value(), written, recovered, options.retention.keep_versions, random);
}

}  // namespace

TEST_CASE("Crash recovery with retention and compaction never answers wrongly (60 seeds)") {
  logger("kvstore")->set_level(spdlog::level::warn);
  for (std::uint64_t seed = 0; seed < 60; ++seed) run_retention_seed(seed);
}
