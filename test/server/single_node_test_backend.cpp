#include "test/server/single_node_test_backend.hpp"

#include <stdlib.h>

#include <filesystem>

#include "common/assert.hpp"
#include "common/bytes.hpp"

namespace squall::server::testing {
namespace {

constexpr ShardId kShard{0};

std::string make_temp_dir() {
  std::string pattern =
      (std::filesystem::temp_directory_path() / "squall-rest-XXXXXX").string();
  SQUALL_ASSERT(::mkdtemp(pattern.data()) != nullptr, "mkdtemp failed");
  return pattern;
}

std::uint64_t micros(HlcTimestamp timestamp) { return hlc_physical_us(timestamp); }

kvstore::ReadPoint store_point(ReadPoint at) {
  if (at.kind == ReadPoint::Kind::time) return kvstore::at_time_us(at.value);
  return at;
}

bool precondition_holds(const Precondition& precondition, std::optional<Version> current) {
  switch (precondition.kind) {
    case Precondition::Kind::none: return true;
    case Precondition::Kind::version_is: return current == precondition.version;
    case Precondition::Kind::exists: return current.has_value();
    case Precondition::Kind::absent: return !current.has_value();
  }
  return false;
}

}  // namespace

SingleNodeTestBackend::SingleNodeTestBackend(kvstore::RetentionPolicy retention,
                                             kvstore::WatchHubOptions watch)
    : path_(make_temp_dir()), hlc_(SystemClock::instance()) {
  auto directory = kvstore::open_posix_directory(path_, true);
  SQUALL_ASSERT(directory.is_ok(), "{}", directory.status().to_string());
  directory_ = std::move(directory.value());
  kvstore::StoreOptions options;
  options.log.segment_size_bytes = 4ULL << 20;
  options.retention = retention;
  auto store = kvstore::Store::open(directory_.get(), options, SystemClock::instance());
  SQUALL_ASSERT(store.is_ok(), "{}", store.status().to_string());
  store_ = std::move(store.value());
  history_ = std::make_unique<kvstore::StoreWatchHistory>(*store_, kShard);
  auto hub = kvstore::WatchHub::create(watch);
  SQUALL_ASSERT(hub.is_ok(), "{}", hub.status().to_string());
  hub_ = std::move(hub.value());
  const Status added = hub_->add_shard(kShard, store_->durable_version(), history_.get());
  SQUALL_ASSERT(added.is_ok(), "{}", added.to_string());
  watch_backend_ = std::make_unique<HubWatchBackend>(*hub_);
  worker_ = std::thread([this] { run(); });
}

SingleNodeTestBackend::~SingleNodeTestBackend() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    held_ = false;
  }
  changed_.notify_all();
  worker_.join();
  watch_backend_.reset();
  hub_.reset();
  history_.reset();
  store_.reset();
  directory_.reset();
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

void SingleNodeTestBackend::enqueue(std::function<void()> work) {
  {
    std::lock_guard lock(mutex_);
    ++calls_;
    queue_.push_back(std::move(work));
  }
  changed_.notify_all();
}

// Drains the queue in order; on stop, answers what is left before ending.
void SingleNodeTestBackend::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    changed_.wait(lock, [this] { return stopping_ || (!held_ && !queue_.empty()); });
    if (queue_.empty()) return;
    auto work = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    work();
    lock.lock();
  }
}

void SingleNodeTestBackend::set_unavailable(bool unavailable) {
  std::lock_guard lock(mutex_);
  unavailable_ = unavailable;
}

void SingleNodeTestBackend::set_ready(bool ready) {
  std::lock_guard lock(mutex_);
  ready_ = ready;
}

bool SingleNodeTestBackend::ready() const {
  std::lock_guard lock(mutex_);
  return ready_;
}

void SingleNodeTestBackend::hold() {
  std::lock_guard lock(mutex_);
  held_ = true;
}

void SingleNodeTestBackend::release() {
  {
    std::lock_guard lock(mutex_);
    held_ = false;
  }
  changed_.notify_all();
}

std::size_t SingleNodeTestBackend::calls() const {
  std::lock_guard lock(mutex_);
  return calls_;
}

void SingleNodeTestBackend::apply_retention() {
  auto stats = store_->apply_retention();
  SQUALL_ASSERT(stats.is_ok(), "{}", stats.status().to_string());
}

bool SingleNodeTestBackend::is_unavailable() const {
  std::lock_guard lock(mutex_);
  return unavailable_;
}

void SingleNodeTestBackend::put(PutRequest request, Callback<WriteResult> done) {
  submit(std::move(done), [this, request = std::move(request)] {
    return write(request.key, &request.value, request.precondition);
  });
}

void SingleNodeTestBackend::remove(DeleteRequest request, Callback<WriteResult> done) {
  submit(std::move(done), [this, request = std::move(request)] {
    return write(request.key, nullptr, request.precondition);
  });
}

void SingleNodeTestBackend::get(GetRequest request, Callback<GetResult> done) {
  submit(std::move(done), [this, request = std::move(request)] { return read(request); });
}

void SingleNodeTestBackend::list(ListRequest request, Callback<ListResult> done) {
  submit(std::move(done), [this, request = std::move(request)] { return scan(request); });
}

void SingleNodeTestBackend::history(HistoryRequest request, Callback<HistoryResult> done) {
  submit(std::move(done), [this, request = std::move(request)] { return versions(request); });
}

void SingleNodeTestBackend::cluster_info(Callback<ClusterInfo> done) {
  submit(std::move(done), [this] {
    ClusterInfo info;
    info.cluster = "test";
    info.self = NodeId{1};
    info.view_id = ViewId{1};
    info.leader = NodeId{1};
    info.members.push_back({NodeId{1}, "127.0.0.1:23580", "127.0.0.1:8080", "active"});
    info.shards.push_back(
        {ShardId{0}, {NodeId{1}}, store_->last_version(), store_->durable_version()});
    return Result<ClusterInfo>(std::move(info));
  });
}

Result<WriteResult> SingleNodeTestBackend::write(const std::string& key,
                                                 const std::string* value,
                                                 const Precondition& precondition) {
  const kvstore::FindResult found = store_->lookup(key, ReadPoint::latest());
  std::optional<Version> current;
  if (found.outcome == kvstore::Lookup::found && found.entry.op == kvstore::Op::put) {
    current = found.entry.version;
  }
  WriteResult result;
  if (!precondition_holds(precondition, current)) {
    result.outcome = WriteOutcome::precondition_failed;
    result.current_version = current;
    return result;
  }
  if (value == nullptr && !current) {
    result.outcome = WriteOutcome::not_found;
    return result;
  }
  const Version version = make_version(ViewId{1}, ++sequence_);
  const HlcTimestamp timestamp = hlc_.now();
  const Status applied = value != nullptr
                             ? store_->put(version, timestamp, key, as_bytes(*value))
                             : store_->remove(version, timestamp, key);
  if (!applied.is_ok()) return applied;
  const kvstore::WatchOp op = value != nullptr ? kvstore::WatchOp::put : kvstore::WatchOp::del;
  hub_->publish(kShard, version, timestamp, op, key,
                value != nullptr ? as_bytes(*value) : std::span<const std::byte>());
  auto durable = store_->sync();
  if (!durable.is_ok()) return durable.status();
  hub_->frontier(kShard, version);
  result.version = version;
  result.timestamp_us = micros(timestamp);
  result.created = value != nullptr && !current;
  return result;
}

Result<GetResult> SingleNodeTestBackend::read(const GetRequest& request) const {
  auto found = store_->get(request.key, store_point(request.at));
  if (!found.is_ok()) return found.status();
  return GetResult{found.value().entry.version, micros(found.value().entry.timestamp),
                   std::string(as_string_view(found.value().value))};
}

Result<ListResult> SingleNodeTestBackend::scan(const ListRequest& request) const {
  auto page = store_->list(request.prefix, request.start_after, request.limit,
                           store_point(request.at));
  if (!page.is_ok()) return page.status();
  ListResult result;
  result.next = page.value().next;
  for (const kvstore::ListItem& item : page.value().items) {
    ListItem out{item.key, item.entry.version, micros(item.entry.timestamp),
                 item.entry.value_bytes, std::nullopt};
    if (request.values) {
      auto value = store_->get(item.key, ReadPoint::at_version(item.entry.version));
      if (!value.is_ok()) return value.status();
      out.value = std::string(as_string_view(value.value().value));
    }
    result.items.push_back(std::move(out));
  }
  return result;
}

Result<HistoryResult> SingleNodeTestBackend::versions(const HistoryRequest& request) const {
  auto page = store_->history(request.key, request.before, request.limit);
  if (!page.is_ok()) return page.status();
  if (page.value().versions.empty() && !request.before) return not_found("no such key");
  HistoryResult result;
  result.next = page.value().next;
  for (const kvstore::Entry& entry : page.value().versions) {
    result.versions.push_back({entry.version, micros(entry.timestamp),
                               entry.op == kvstore::Op::del, entry.value_bytes});
  }
  return result;
}

}  // namespace squall::server::testing
