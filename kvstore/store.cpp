// Store: writes, reads and recovery. Retention and compaction are in store_maintenance.cpp.
#include "kvstore/store.hpp"

#include <bit>
#include <mutex>

#include "common/log.hpp"

namespace squall::kvstore {
namespace {

// How many times a read looks a record up again after compaction moved it under the reader.
constexpr int kReadAttempts = 4;

// Log bytes that stop being referenced when the index lets go of (part of) a version.
std::uint64_t freed_bytes(std::string_view key, const Entry& entry, bool as_gap) {
  if (entry.op == Op::history_gap) return record_size_bytes(key.size(), 0);
  if (as_gap) return entry.value_bytes;
  return record_size_bytes(key.size(), entry.value_bytes);
}

}  // namespace

Status StoreOptions::validate() const {
  if (mode == StorageMode::persistent) SQUALL_TRY(log.validate());
  if (max_key_bytes == 0 || max_value_bytes > kMaxIndexedValueBytes) {
    return invalid_argument(fmt::format("max_key_bytes {} must be >= 1 and max_value_bytes {} "
                                        "<= {}", max_key_bytes, max_value_bytes,
                                        kMaxIndexedValueBytes));
  }
  if (mode == StorageMode::persistent &&
      record_size_bytes(max_key_bytes, max_value_bytes) > log.max_record_bytes) {
    return invalid_argument(fmt::format("the largest key and value make a record of {} bytes, "
                                        "over log.max_record_bytes {}",
                                        record_size_bytes(max_key_bytes, max_value_bytes),
                                        log.max_record_bytes));
  }
  if (max_page_items == 0 || list_scan_keys == 0 || change_scan_keys == 0 ||
      retention_batch_keys == 0 ||
      compaction_batch_records == 0) {
    return invalid_argument("page, scan and batch limits must be >= 1");
  }
  if (!(compaction_garbage_ratio > 0.0 && compaction_garbage_ratio <= 1.0)) {
    return invalid_argument("compaction_garbage_ratio must be in (0, 1]");
  }
  return Status::ok();
}

Store::Store(Directory* directory, StoreOptions options, const Clock& clock)
    : directory_(directory), options_(std::move(options)), clock_(clock),
      index_(options_.retention) {}

Store::~Store() = default;

Result<std::unique_ptr<Store>> Store::open(Directory* directory, StoreOptions options,
                                           const Clock& clock) {
  SQUALL_TRY(options.validate());
  if (options.mode == StorageMode::persistent && directory == nullptr) {
    return invalid_argument("a persistent store needs a directory");
  }
  std::unique_ptr<Store> store(new Store(directory, std::move(options), clock));
  SQUALL_TRY(store->recover());
  if (store->options_.retention.enabled()) {
    auto retained = store->apply_retention();
    if (!retained.is_ok()) return retained.status();
  }
  return store;
}

Status Store::recover() {
  if (options_.mode == StorageMode::in_memory) {
    backend_ = std::make_unique<MemoryBackend>();
    return Status::ok();
  }
  SQUALL_TRY(load_floor());
  auto visit = [this](const RecoveredRecord& record) -> Status {
    const RecordHead& head = record.head;
    if (head.timestamp < last_timestamp_) {
      return corruption(fmt::format("timestamp {} of version {} goes back before {}",
                                    head.timestamp, head.version, last_timestamp_));
    }
    if (head.value_length() > kMaxIndexedValueBytes) {
      return corruption(fmt::format("value of {} bytes", head.value_length()));
    }
    Entry entry{head.version, head.timestamp, head.op,
                static_cast<std::uint32_t>(head.value_length()), record.location};
    index_.insert(record.key, entry, [this](std::string_view key, const Entry& e, bool gap) {
      release(key, e, gap);
    });
    last_timestamp_ = head.timestamp;
    last_version_ = head.version;
    return Status::ok();
  };
  auto log = SegmentLog::open(*directory_, options_.log, visit);
  if (!log.is_ok()) return log.status();
  log_ = std::move(log.value());
  backend_ = std::make_unique<LogBackend>(*log_);
  for (const auto& [ordinal, bytes] : recovery_garbage_) {
    log_->release(make_location(ordinal, 0), bytes);
  }
  recovery_garbage_.clear();
  index_.drop_gap_only_keys([this](std::string_view key, const Entry& e, bool gap) {
    release(key, e, gap);
  });
  return Status::ok();
}

// Called by the index (under the exclusive lock, or during recovery) for what it lets go of.
void Store::release(std::string_view key, const Entry& entry, bool as_gap) {
  std::uint64_t bytes = freed_bytes(key, entry, as_gap);
  if (!backend_) {  // recovering: the log's segment table is not there yet
    recovery_garbage_[location_ordinal(entry.location)] += bytes;
    return;
  }
  Release what = entry.op == Op::history_gap ? Release::gap_record
                 : as_gap                    ? Release::value_only
                                             : Release::record;
  backend_->release(entry.location, bytes, what);
}

Status Store::validate_batch(std::span<const Update> updates) const {
  if (updates.size() > options_.log.max_batch_records) {
    return invalid_argument(fmt::format("batch of {} updates over the limit of {}",
                                        updates.size(), options_.log.max_batch_records));
  }
  Version version = last_version_.load();
  HlcTimestamp timestamp = last_timestamp_;
  for (const Update& update : updates) {
    if (update.op != Op::put && update.op != Op::del) {
      return invalid_argument("an update is a put or a delete");
    }
    if (update.key.empty() || update.key.size() > options_.max_key_bytes) {
      return invalid_argument(fmt::format("key of {} bytes outside [1, {}]", update.key.size(),
                                          options_.max_key_bytes));
    }
    if (update.value.size() > options_.max_value_bytes ||
        (update.op == Op::del && !update.value.empty())) {
      return invalid_argument(fmt::format("value of {} bytes for a {}", update.value.size(),
                                          update.op == Op::del ? "delete" : "put"));
    }
    if (update.version <= version || update.timestamp < timestamp) {
      return invalid_argument(fmt::format("update {}@{} does not follow {}@{}", update.version,
                                          update.timestamp, version, timestamp));
    }
    version = update.version;
    timestamp = update.timestamp;
  }
  return Status::ok();
}

void Store::note_hold(std::uint64_t start_us) {
  std::uint64_t held = clock_.monotonic_us() - start_us;
  std::size_t bucket = std::min<std::size_t>(std::bit_width(held), holds_log2_us_.size() - 1);
  holds_log2_us_[bucket].fetch_add(1, std::memory_order_relaxed);
  std::uint64_t longest = max_hold_us_.load();
  while (held > longest && !max_hold_us_.compare_exchange_weak(longest, held)) {
  }
}

Status Store::apply(std::span<const Update> updates) {
  if (log_ && log_->failed()) return io_error("the log failed earlier; no more writes");
  SQUALL_TRY(validate_batch(updates));
  if (updates.empty()) return Status::ok();
  records_.clear();
  for (const Update& update : updates) {
    records_.push_back({update.version, update.timestamp, update.op, update.key, update.value});
  }
  locations_.resize(updates.size());
  SQUALL_TRY(backend_->append(records_, locations_));
  auto release_fn = [this](std::string_view key, const Entry& e, bool gap) {
    release(key, e, gap);
  };
  Version durable = retention_horizon();
  {
    std::uint64_t start_us = clock_.monotonic_us();
    std::unique_lock lock(index_mutex_);
    for (std::size_t i = 0; i < updates.size(); ++i) {
      const Update& update = updates[i];
      Entry entry{update.version, update.timestamp, update.op,
                  static_cast<std::uint32_t>(update.value.size()), locations_[i]};
      index_.insert(update.key, entry, release_fn, durable);
    }
    note_hold(start_us);
  }
  last_timestamp_ = updates.back().timestamp;
  last_version_ = updates.back().version;
  return Status::ok();
}

Status Store::put(Version version, HlcTimestamp timestamp, std::string_view key,
                  std::span<const std::byte> value) {
  Update update{version, timestamp, Op::put, key, value};
  return apply(std::span<const Update>(&update, 1));
}

Status Store::remove(Version version, HlcTimestamp timestamp, std::string_view key) {
  Update update{version, timestamp, Op::del, key, {}};
  return apply(std::span<const Update>(&update, 1));
}

Result<Version> Store::sync() { return backend_->sync(); }

Version Store::retention_horizon() const {
  return log_ ? log_->durable_version() : kAllDurable;
}

Version Store::durable_version() const { return backend_->durable_version(); }

FindResult Store::lookup(std::string_view key, ReadPoint at) const {
  std::shared_lock lock(index_mutex_);
  return index_.find(key, at);
}

Status Store::read_value(std::string_view key, const Entry& entry, Bytes& value) const {
  return backend_->read({entry.location, entry.version, key, entry.value_bytes}, value);
}

Result<ReadResult> Store::get(std::string_view key, ReadPoint at) const {
  for (int attempt = 0; attempt < kReadAttempts; ++attempt) {
    ReadResult result;
    {
      std::shared_lock lock(index_mutex_);
      FindResult found = index_.find(key, at);
      if (found.outcome == Lookup::gone) {
        return Status(Code::out_of_range, "retention discarded the history this read needs");
      }
      if (found.outcome == Lookup::absent || found.entry.op != Op::put) {
        return not_found("no such key at that point");
      }
      result.entry = found.entry;
      // Volatile values are read under the lock: their memory slot may be reused once released.
      if (!log_) {
        SQUALL_TRY(read_value(key, result.entry, result.value));
        return result;
      }
    }
    Status read = read_value(key, result.entry, result.value);
    if (read.code() == Code::aborted) continue;  // compaction moved it: look it up again
    if (!read) return read;
    return result;
  }
  return Status(Code::aborted, "the record kept moving under compaction; retry");
}

Result<HistoryPage> Store::history(std::string_view key, std::optional<Version> before,
                                   std::size_t limit) const {
  if (limit == 0 || limit > options_.max_page_items) {
    return invalid_argument(fmt::format("limit {} outside [1, {}]", limit,
                                        options_.max_page_items));
  }
  std::shared_lock lock(index_mutex_);
  return index_.history(key, before, limit);
}

Result<ListPage> Store::list(std::string_view prefix, std::string_view start_after,
                             std::size_t limit, ReadPoint at) const {
  if (limit == 0 || limit > options_.max_page_items) {
    return invalid_argument(fmt::format("limit {} outside [1, {}]", limit,
                                        options_.max_page_items));
  }
  std::shared_lock lock(index_mutex_);
  return index_.list(prefix, start_after, limit, at, options_.list_scan_keys);
}

StoreStats Store::stats() const {
  StoreStats stats;
  {
    std::shared_lock lock(index_mutex_);
    stats.keys = index_.key_count();
    stats.versions = index_.slot_count();
  }
  if (log_) {
    stats.log_bytes = log_->bytes_total();
    stats.segments = log_->segment_count();
    stats.failed = log_->failed();
  }
  stats.last_version = last_version_.load();
  stats.durable_version = durable_version();
  stats.max_exclusive_hold_us = max_hold_us_.load();
  for (std::size_t i = 0; i < holds_log2_us_.size(); ++i) {
    stats.exclusive_holds_log2_us[i] = holds_log2_us_[i].load(std::memory_order_relaxed);
  }
  return stats;
}

}  // namespace squall::kvstore
