// KvStateMachine's state-transfer side: checkpoints, installing them, and the update log
// (read_log) served from the stores.
#include <algorithm>

#include <fmt/format.h>

#include "kvstore/checkpoint.hpp"
#include "kvstore/kv_state_machine.hpp"

namespace squall::kvstore {

namespace {

CheckpointLimits checkpoint_limits(const KvStateMachineOptions& options) {
  CheckpointLimits limits;
  limits.max_key_bytes = options.store.max_key_bytes;
  limits.max_value_bytes = options.store.max_value_bytes;
  limits.max_checkpoint_bytes = options.max_checkpoint_bytes;
  return limits;
}

// Adds every existing key of `store` (its latest put) to `writer`.
Status add_store(const Store& store, std::uint32_t pool, CheckpointWriter& writer) {
  std::string start_after;
  for (;;) {
    auto page = store.list("", start_after, store.options().max_page_items);
    if (!page) return page.status();
    for (const ListItem& item : page->items) {
      auto read = store.get(item.key, ReadPoint::at_version(item.entry.version));
      if (!read) return read.status().with_context(fmt::format("checkpoint of {}", item.key));
      SQUALL_TRY(writer.add(CheckpointEntry{pool, item.entry.version, item.entry.timestamp,
                                            item.key, read->value}));
    }
    if (!page->next) return Status::ok();
    start_after = *page->next;
  }
}

Status apply_entries(Store& store, std::vector<CheckpointEntry>& entries,
                     std::size_t batch_records) {
  std::sort(entries.begin(), entries.end(),
            [](const CheckpointEntry& a, const CheckpointEntry& b) {
              return a.version < b.version;
            });
  std::vector<Update> batch;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const CheckpointEntry& entry = entries[i];
    batch.push_back(Update{entry.version, entry.timestamp, Op::put, entry.key, entry.value});
    if (batch.size() == batch_records || i + 1 == entries.size()) {
      SQUALL_TRY(store.apply(batch));
      batch.clear();
    }
  }
  return Status::ok();
}

// The write `change` of `store` as a logged update: an unconditional put or delete of the key
// with the write's version and timestamp (docs/storage.md, "The update log for state
// transfer"). Sender and request id are not stored: both 0.
Result<core::LoggedUpdate> logged_write(const Store& store, const Change& change,
                                        const KvCodecLimits& limits) {
  core::LoggedUpdate logged{change.entry.version, change.entry.timestamp, NodeId{}, {}};
  Bytes value;
  if (change.entry.op == Op::put) {
    Result<Bytes> read = store.read_version(change.key, change.entry.version);
    if (!read) return read.status();
    value = std::move(*read);
  }
  KvUpdate update{change.entry.op == Op::put ? KvOp::put : KvOp::del, KvCondition::none, 0,
                  RequestId{}, change.key, value};
  Status valid = validate_update(update, limits);
  if (!valid.is_ok()) {
    return corruption(fmt::format("stored write {} of '{}' is not a valid update: {}",
                                  change.entry.version, change.key, valid.to_string()));
  }
  encode_update(update, limits, logged.payload);
  return logged;
}

struct PoolChange {
  std::size_t pool = 0;
  Change change;
};

}  // namespace

// Each store lists its writes above `after` (Store::changes, at most log_page_changes); the
// pages cover different ranges, so only the writes up to the lowest `through` are merged.
Result<std::vector<core::LoggedUpdate>> KvStateMachine::read_log(Version after,
                                                                 std::size_t max_bytes) {
  std::vector<core::LoggedUpdate> out;
  const Version upto = applied_version_;
  if (after >= upto) return out;
  // Every update is at least kKvUpdateFixedBytes: no need to list more than max_bytes allows.
  std::size_t per_store =
      std::min(options_.log_page_changes, max_bytes / kKvUpdateFixedBytes + 1);
  Version through = upto;
  std::vector<PoolChange> merged;
  for (std::size_t i = 0; i < stores_.size(); ++i) {
    if (!stores_[i]) continue;
    Result<ChangePage> page = stores_[i]->changes("", after, upto, per_store);
    if (!page) {
      return page.status().with_context(fmt::format("update log of pool \"{}\"",
                                                    pools_.pool(i).prefix));
    }
    through = std::min(through, page->through);
    for (Change& change : page->changes) merged.push_back({i, std::move(change)});
  }
  std::sort(merged.begin(), merged.end(), [](const PoolChange& a, const PoolChange& b) {
    return a.change.entry.version < b.change.entry.version;
  });
  std::size_t bytes = 0;
  for (const PoolChange& item : merged) {
    const Change& change = item.change;
    if (change.entry.version > through) break;
    std::size_t size = kv_update_size_bytes(change.key.size(), change.entry.value_bytes);
    if (!out.empty() && bytes + size > max_bytes) return out;
    Result<core::LoggedUpdate> logged = logged_write(*stores_[item.pool], change,
                                                     options_.limits);
    if (!logged) return logged.status();
    out.push_back(std::move(*logged));
    bytes += size;
  }
  // Every write up to `through` is out. If the applied version itself wrote nothing, a filler
  // carries it, so that the receiver ends exactly there.
  if (through == upto && (out.empty() || out.back().version != upto)) {
    out.push_back(core::LoggedUpdate{upto, applied_timestamp_, NodeId{}, {}});
  }
  return out;
}

Result<core::Checkpoint> KvStateMachine::make_checkpoint() {
  CheckpointHeader header{applied_version_, applied_timestamp_,
                          static_cast<std::uint32_t>(pools_.size())};
  CheckpointWriter writer(header, checkpoint_limits(options_));
  for (std::size_t i = 0; i < stores_.size(); ++i) {
    if (stores_[i]) SQUALL_TRY(add_store(*stores_[i], static_cast<std::uint32_t>(i), writer));
  }
  return core::Checkpoint{applied_version_, applied_timestamp_, writer.finish()};
}

Status KvStateMachine::install(const core::Checkpoint& checkpoint,
                               std::span<const core::LoggedUpdate> suffix) {
  Version previous = checkpoint.version;
  for (const core::LoggedUpdate& update : suffix) {
    if (update.version <= previous) {
      return invalid_argument("install: suffix versions must ascend above the checkpoint's");
    }
    previous = update.version;
  }
  // Validate everything before touching the current state.
  std::vector<std::vector<CheckpointEntry>> entries(pools_.size());
  auto header = read_checkpoint(checkpoint.state, checkpoint_limits(options_),
                                [&](const CheckpointEntry& entry) {
                                  entries.at(entry.pool).push_back(entry);
                                  return Status::ok();
                                });
  if (!header) return header.status();
  if (header->pools != pools_.size() || header->version != checkpoint.version) {
    return corruption(fmt::format("install: checkpoint of {} pools at version {}, expected {} "
                                  "pools at {}", header->pools, header->version, pools_.size(),
                                  checkpoint.version));
  }
  for (std::size_t i = 0; i < pools_.size(); ++i) {
    if (!entries[i].empty() && pools_.pool(i).storage == config::Storage::stateless) {
      return corruption("install: checkpoint holds keys of a stateless pool");
    }
  }
  SQUALL_TRY(install_entries(checkpoint));
  for (std::size_t i = 0; i < pools_.size(); ++i) {
    if (!stores_[i]) continue;
    Status applied = apply_entries(*stores_[i], entries[i], options_.store.log.max_batch_records);
    if (!applied.is_ok()) return applied.with_context("install");
  }
  for (const core::LoggedUpdate& update : suffix) {
    core::DeliveredUpdate delivered{update.version, update.timestamp, update.sender, 0,
                                    update.payload};
    SQUALL_TRY(apply_update(delivered, false));
  }
  // The installed state is made durable before the replica reports it.
  SQUALL_TRY(sync_stores());
  pending_updates_ = 0;
  persisted_inline_ = std::max(persisted_inline_, applied_version_);
  persisted_.store(std::max(persisted_.load(), applied_version_));
  start_sync_thread();
  return Status::ok();
}

// Replaces every store by an empty one and resets the applied position to the checkpoint's.
Status KvStateMachine::install_entries(const core::Checkpoint& checkpoint) {
  stop_sync_thread();
  for (std::size_t i = 0; i < pools_.size(); ++i) {
    if (pools_.pool(i).storage == config::Storage::stateless) continue;
    stores_[i].reset();
    auto store = open_store(i, true);
    if (!store) return store.status().with_context("install");
    stores_[i] = std::move(store).value();
    // The checkpoint holds only each key's latest version: history up to it is missing.
    Status started = stores_[i]->start_history_after(checkpoint.version, checkpoint.timestamp);
    if (!started.is_ok()) return started.with_context("install");
  }
  applied_version_ = checkpoint.version;
  applied_timestamp_ = checkpoint.timestamp;
  return Status::ok();
}

}  // namespace squall::kvstore
