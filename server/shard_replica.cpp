#include "server/shard_replica.hpp"

#include <utility>

#include "common/log.hpp"
#include "server/list_merge.hpp"

namespace squall::server {

namespace {

std::uint64_t micros(HlcTimestamp timestamp) { return hlc_physical_us(timestamp); }

bool written(kvstore::KvOutcome outcome) {
  return outcome == kvstore::KvOutcome::ok || outcome == kvstore::KvOutcome::created;
}

}  // namespace

kvstore::ReadPoint store_read_point(ReadPoint at) {
  if (at.kind == ReadPoint::Kind::time) return kvstore::at_time_us(at.value);
  return at;
}

ShardReplica::ShardReplica(ShardId shard, std::unique_ptr<kvstore::KvStateMachine> machine,
                           kvstore::WatchHub* hub)
    : shard_(shard), machine_(std::move(machine)), hub_(hub) {
  delivered_version_.store(machine_->applied_version());
  machine_->on_result = [this](const kvstore::KvResult& result) {
    last_result_ = result;
    if (results) results(shard_, result);
  };
}

ShardReplica::~ShardReplica() { machine_->on_result = nullptr; }

Status ShardReplica::apply(const core::DeliveredUpdate& update) {
  last_result_.reset();
  SQUALL_TRY(machine_->apply(update));
  delivered_timestamp_ = update.timestamp;
  delivered_version_.store(update.version);
  // The hub takes events above its frontier only; an update at or below it (a replica
  // catching up under a frontier the others already reached) is history to the hub.
  if (hub_ != nullptr && last_result_ && last_result_->op != kvstore::KvOp::barrier &&
      written(last_result_->outcome) && update.version > hub_frontier_) {
    publish(update);
  }
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
  if (frontier <= hub_frontier_) return;
  hub_frontier_ = frontier;
  if (hub_ != nullptr) hub_->frontier(shard_, frontier);
}

Status ShardReplica::install(const core::Checkpoint& checkpoint,
                             std::span<const core::LoggedUpdate> suffix) {
  {
    std::unique_lock lock(stores_mutex_);
    SQUALL_TRY(machine_->install(checkpoint, suffix));
  }
  delivered_version_.store(machine_->applied_version());
  if (!suffix.empty()) {
    delivered_timestamp_ = suffix.back().timestamp;
  } else {
    delivered_timestamp_ = checkpoint.timestamp;
  }
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
