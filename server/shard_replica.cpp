#include "server/shard_replica.hpp"

#include <algorithm>
#include <utility>

#include "common/log.hpp"
#include "kvstore/watch_history.hpp"
#include "server/list_merge.hpp"

namespace squall::server {

namespace {

std::uint64_t micros(HlcTimestamp timestamp) { return hlc_physical_us(timestamp); }

bool written(kvstore::KvOutcome outcome) {
  return outcome == kvstore::KvOutcome::ok || outcome == kvstore::KvOutcome::created;
}

}  // namespace

// The replica's watch history: StoreWatchHistory over the stores of the pools a topic can
// touch, read under the replica's stores mutex (shared), so install() never swaps a store
// under a reader. A prefix spanning several stored pools merges their pages by version; a
// topic that can touch a stateless pool cannot be replayed (its events are never stored).
class ShardReplica::History final : public kvstore::WatchHistory {
 public:
  explicit History(const ShardReplica& replica) : replica_(replica) {}

  Result<bool> covers(const kvstore::Topic& topic, Version after) const override {
    std::shared_lock lock(replica_.stores_mutex_);
    std::optional<std::vector<const kvstore::Store*>> stores = stores_of(topic);
    if (!stores) return false;
    for (const kvstore::Store* store : *stores) {
      Result<bool> ok = kvstore::StoreWatchHistory(*store, replica_.shard_).covers(topic, after);
      if (!ok || !*ok) return ok;
    }
    return true;
  }

  std::optional<Version> oldest(const kvstore::Topic& topic) const override {
    std::shared_lock lock(replica_.stores_mutex_);
    std::optional<std::vector<const kvstore::Store*>> stores = stores_of(topic);
    if (!stores) return std::nullopt;
    Version oldest = 0;
    for (const kvstore::Store* store : *stores) {
      std::optional<Version> one =
          kvstore::StoreWatchHistory(*store, replica_.shard_).oldest(topic);
      if (!one) return std::nullopt;
      oldest = std::max(oldest, *one);
    }
    return oldest;
  }

  Result<kvstore::WatchHistoryPage> read(const kvstore::Topic& topic, Version after,
                                         Version upto, std::size_t max_events,
                                         bool values) const override {
    std::shared_lock lock(replica_.stores_mutex_);
    std::optional<std::vector<const kvstore::Store*>> stores = stores_of(topic);
    if (!stores) {
      return Status(Code::out_of_range, fmt::format("topic '{}' touches a stateless pool: its "
                                                    "events are not stored", topic.text));
    }
    if (stores->size() == 1) {
      return kvstore::StoreWatchHistory(*stores->front(), replica_.shard_)
          .read(topic, after, upto, max_events, values);
    }
    return merged(*stores, topic, after, upto, max_events, values);
  }

 private:
  // The stores of every pool `topic` can touch; none when one of them is stateless (or no
  // stored pool remains). REQUIRES: the stores mutex held.
  std::optional<std::vector<const kvstore::Store*>> stores_of(const kvstore::Topic& topic) const {
    const kvstore::KvStateMachine& machine = *replica_.machine_;
    const kvstore::PoolSet& pools = machine.pools();
    std::vector<std::size_t> indexes{pools.pool_index(topic.text)};
    if (topic.is_prefix()) {
      for (std::size_t i = 0; i < pools.size(); ++i) {
        if (i != indexes.front() && pools.pool(i).prefix.starts_with(topic.text)) {
          indexes.push_back(i);
        }
      }
    }
    std::vector<const kvstore::Store*> stores;
    for (std::size_t i : indexes) {
      const kvstore::Store* store = machine.store(i);
      if (store == nullptr) return std::nullopt;
      stores.push_back(store);
    }
    return stores;
  }

  // Every store's page of (after, upto], cut at the lowest `through` among them (each page is
  // complete up to its own), merged by version and cut again at `max_events`.
  Result<kvstore::WatchHistoryPage> merged(const std::vector<const kvstore::Store*>& stores,
                                           const kvstore::Topic& topic, Version after,
                                           Version upto, std::size_t max_events,
                                           bool values) const {
    kvstore::WatchHistoryPage out;
    out.through = upto;
    for (const kvstore::Store* store : stores) {
      Result<kvstore::WatchHistoryPage> page = kvstore::StoreWatchHistory(*store, replica_.shard_)
                                                   .read(topic, after, upto, max_events, values);
      if (!page) return page.status();
      out.through = std::min(out.through, page->through);
      for (kvstore::WatchEventPtr& event : page->events) out.events.push_back(std::move(event));
    }
    std::erase_if(out.events, [&](const kvstore::WatchEventPtr& event) {
      return event->version > out.through;
    });
    std::sort(out.events.begin(), out.events.end(),
              [](const kvstore::WatchEventPtr& a, const kvstore::WatchEventPtr& b) {
                return a->version < b->version;
              });
    if (out.events.size() > max_events) {
      out.events.resize(max_events);
      out.through = out.events.back()->version;
    }
    return out;
  }

  const ShardReplica& replica_;
};

kvstore::ReadPoint store_read_point(ReadPoint at) {
  if (at.kind == ReadPoint::Kind::time) return kvstore::at_time_us(at.value);
  return at;
}

ShardReplica::ShardReplica(ShardId shard, std::unique_ptr<kvstore::KvStateMachine> machine,
                           kvstore::WatchHub* hub)
    : shard_(shard), machine_(std::move(machine)), hub_(hub),
      history_(std::make_unique<History>(*this)) {
  delivered_version_.store(machine_->applied_version());
  hub_frontier_ = machine_->applied_version();  // the hub starts the shard there
  machine_->on_result = [this](const kvstore::KvResult& result) {
    last_result_ = result;
    if (results) results(shard_, result);
  };
}

ShardReplica::~ShardReplica() { machine_->on_result = nullptr; }

const kvstore::WatchHistory* ShardReplica::watch_history() const { return history_.get(); }

Status ShardReplica::apply(const core::DeliveredUpdate& update) {
  last_result_.reset();
  SQUALL_TRY(machine_->apply(update));
  delivered_timestamp_ = update.timestamp;
  delivered_version_.store(update.version);
  // The hub's frontier never passes what is applied here, so every update applied is above
  // it: a replica catching up under the group's frontier publishes what it catches up on.
  if (hub_ != nullptr && last_result_ && last_result_->op != kvstore::KvOp::barrier &&
      written(last_result_->outcome)) {
    SQUALL_ASSERT(update.version > hub_frontier_, "shard {}: update {} at or below the hub's "
                  "frontier {}", shard_, update.version, hub_frontier_);
    publish(update);
  }
  advance_hub_frontier();
  return Status::ok();
}

void ShardReplica::publish(const core::DeliveredUpdate& update) {
  // The machine decoded these bytes already; decoding again is a bounds check, no copy.
  auto decoded = kvstore::decode_update(update.payload, machine_->options().limits);
  SQUALL_ASSERT(decoded.is_ok(), "an applied update does not decode: {}",
                decoded.status().to_string());
  const kvstore::WatchOp op =
      decoded->op == kvstore::KvOp::del ? kvstore::WatchOp::del : kvstore::WatchOp::put;
  hub_->publish(shard_, update.version, update.timestamp, op, decoded->key, decoded->value);
}

void ShardReplica::frontier(Version frontier) {
  reported_frontier_ = std::max(reported_frontier_, frontier);
  advance_hub_frontier();
}

// The hub's frontier: the group's, capped at the version applied here.
void ShardReplica::advance_hub_frontier() {
  const Version capped = std::min(reported_frontier_, machine_->applied_version());
  if (capped <= hub_frontier_) return;
  hub_frontier_ = capped;
  if (hub_ != nullptr) hub_->frontier(shard_, capped);
}

Status ShardReplica::install(const core::Checkpoint& checkpoint,
                             std::span<const core::LoggedUpdate> suffix) {
  {
    std::unique_lock lock(stores_mutex_);
    SQUALL_TRY(machine_->install(checkpoint, suffix));
  }
  const Version applied = machine_->applied_version();
  delivered_version_.store(applied);
  if (!suffix.empty()) {
    delivered_timestamp_ = suffix.back().timestamp;
  } else {
    delivered_timestamp_ = checkpoint.timestamp;
  }
  // The installed state is durable (install syncs it). The hub never saw the versions it
  // jumped over: its window of the shard restarts at `applied`, and its watchers resume
  // through the history (the new stores), exactly or gone.
  hub_frontier_ = applied;
  if (hub_ != nullptr) SQUALL_TRY(hub_->reset_shard(shard_, applied));
  advance_hub_frontier();
  return Status::ok();
}

Result<GetResult> ShardReplica::get(const std::string& key, ReadPoint at) const {
  std::shared_lock lock(stores_mutex_);
  const kvstore::Store* store = machine_->store_for_key(key);
  if (store == nullptr) return not_found("the key's pool is stateless");
  auto read = store->get(key, store_read_point(at));
  if (!read) return read.status();
  GetResult result;
  result.version = read->entry.version;
  result.timestamp_us = micros(read->entry.timestamp);
  result.value.assign(reinterpret_cast<const char*>(read->value.data()), read->value.size());
  return result;
}

Result<ListResult> ShardReplica::list(const ListRequest& request, ReadPoint at) const {
  std::shared_lock lock(stores_mutex_);
  const kvstore::ReadPoint point = store_read_point(at);
  std::vector<ListSource> sources;
  const kvstore::PoolSet& pools = machine_->pools();
  for (std::size_t i = 0; i < pools.size(); ++i) {
    const kvstore::Store* store = machine_->store(i);
    if (store == nullptr) continue;
    const std::size_t limit = std::min(request.limit, store->options().max_page_items);
    auto page = store->list(request.prefix, request.start_after, limit, point);
    if (!page) return page.status();
    ListSource source;
    source.next = page->next;
    for (kvstore::ListItem& item : page->items) {
      ListItem out;
      out.version = item.entry.version;
      out.timestamp_us = micros(item.entry.timestamp);
      out.size_bytes = item.entry.value_bytes;
      if (request.values) {
        auto value = store->get(item.key, kvstore::ReadPoint::at_version(item.entry.version));
        if (!value) return value.status();
        out.value.emplace(reinterpret_cast<const char*>(value->value.data()),
                          value->value.size());
      }
      out.key = std::move(item.key);
      source.items.push_back(std::move(out));
    }
    sources.push_back(std::move(source));
  }
  return merge_list_pages(std::move(sources), request.limit);
}

Result<HistoryResult> ShardReplica::history(const HistoryRequest& request) const {
  std::shared_lock lock(stores_mutex_);
  const kvstore::Store* store = machine_->store_for_key(request.key);
  if (store == nullptr) return not_found("the key's pool is stateless");
  const std::size_t limit = std::min(request.limit, store->options().max_page_items);
  auto page = store->history(request.key, request.before, limit);
  if (!page) return page.status();
  if (page->versions.empty() && !request.before) return not_found("the key has no versions");
  HistoryResult result;
  for (const kvstore::Entry& entry : page->versions) {
    result.versions.push_back(HistoryVersion{entry.version, micros(entry.timestamp),
                                             entry.op == kvstore::Op::del, entry.value_bytes});
  }
  result.next = page->next;
  return result;
}

}  // namespace squall::server
