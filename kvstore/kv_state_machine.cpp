#include "kvstore/kv_state_machine.hpp"

#include <fmt/format.h>

#include "common/log.hpp"

namespace squall::kvstore {

namespace {

// The key's current version for conditions: its latest version if that is a put; none when
// it was never written, was deleted, or retention dropped it.
std::optional<Version> current_version(const Store* store, std::string_view key) {
  if (store == nullptr) return std::nullopt;  // stateless: nothing is kept
  FindResult found = store->lookup(key, ReadPoint::latest());
  if (found.outcome != Lookup::found || found.entry.op != Op::put) return std::nullopt;
  return found.entry.version;
}

bool condition_holds(const KvUpdate& update, const std::optional<Version>& current) {
  switch (update.condition) {
    case KvCondition::none: return true;
    case KvCondition::if_version: return current && *current == update.expected_version;
    case KvCondition::if_exists: return current.has_value();
    case KvCondition::if_absent: return !current.has_value();
  }
  return false;
}

}  // namespace

std::string_view name(KvOutcome outcome) {
  switch (outcome) {
    case KvOutcome::ok: return "ok";
    case KvOutcome::created: return "created";
    case KvOutcome::precondition_failed: return "precondition_failed";
    case KvOutcome::not_found: return "not_found";
  }
  return "?";
}

Status KvStateMachineOptions::validate() const {
  bool has_default = false;
  for (const config::PoolConfig& pool : pools) has_default = has_default || pool.prefix.empty();
  if (!has_default) return invalid_argument("the pools lack the default pool \"\"");
  if (limits.max_key_bytes > store.max_key_bytes ||
      limits.max_value_bytes > store.max_value_bytes) {
    return invalid_argument("update limits exceed the store's key or value limits");
  }
  if (sync_every_updates == 0) return invalid_argument("sync_every_updates must be >= 1");
  if (log_page_changes == 0 || log_page_changes > store.max_page_items) {
    return invalid_argument("log_page_changes must be in [1, store.max_page_items]");
  }
  return store.validate();
}

KvStateMachine::KvStateMachine(KvStateMachineOptions options, DirectoryProvider directories,
                               const Clock& clock)
    : options_(std::move(options)),
      directories_(std::move(directories)),
      clock_(clock),
      pools_(options_.pools) {}

KvStateMachine::~KvStateMachine() { stop_sync_thread(); }

Result<std::unique_ptr<KvStateMachine>> KvStateMachine::open(KvStateMachineOptions options,
                                                             DirectoryProvider directories,
                                                             const Clock& clock) {
  SQUALL_TRY(options.validate());
  std::unique_ptr<KvStateMachine> machine(
      new KvStateMachine(std::move(options), std::move(directories), clock));
  SQUALL_TRY(machine->open_stores());
  machine->start_sync_thread();
  return machine;
}

Result<std::unique_ptr<Store>> KvStateMachine::open_store(std::size_t index, bool wipe) {
  const config::PoolConfig& pool = pools_.pool(index);
  StoreOptions store_options = options_.store;
  store_options.retention = retention_policy(pool.retention);
  Directory* directory = nullptr;
  if (pool.storage == config::Storage::persistent) {
    if (!directories_) return invalid_argument("persistent pools need a directory provider");
    Result<Directory*> provided = directories_(index, pool);
    if (!provided) return provided.status();
    directory = provided.value();
    if (wipe) {
      auto names = directory->list();
      if (!names) return names.status();
      for (const std::string& file : names.value()) SQUALL_TRY(directory->remove(file));
      SQUALL_TRY(directory->sync());
    }
  } else {
    store_options.mode = StorageMode::in_memory;
  }
  return Store::open(directory, store_options, clock_);
}

Status KvStateMachine::open_stores() {
  stores_.clear();
  stores_.resize(pools_.size());
  for (std::size_t i = 0; i < pools_.size(); ++i) {
    if (pools_.pool(i).storage == config::Storage::stateless) continue;
    auto store = open_store(i, false);
    if (!store) {
      return store.status().with_context(fmt::format("pool \"{}\"", pools_.pool(i).prefix));
    }
    stores_[i] = std::move(store).value();
  }
  applied_version_ = recovered_version();
  persisted_inline_ = applied_version_;
  persisted_.store(applied_version_);
  // Volatile stores start empty: their history up to the recovered version is lost, so
  // read_log() must not offer it (docs/storage.md, "The update log for state transfer").
  for (std::size_t i = 0; i < stores_.size(); ++i) {
    if (stores_[i] && pools_.pool(i).storage == config::Storage::volatile_) {
      SQUALL_TRY(stores_[i]->start_history_after(applied_version_, 0));
    }
  }
  return Status::ok();
}

Version KvStateMachine::recovered_version() const {
  // Each store recovers a prefix of its own writes, so store i holds every one of its writes
  // up to its last version; all of them together hold every write up to the minimum. Without
  // persistent pools nothing survives a restart.
  std::optional<Version> lowest;
  for (std::size_t i = 0; i < stores_.size(); ++i) {
    if (!stores_[i] || pools_.pool(i).storage != config::Storage::persistent) continue;
    Version last = stores_[i]->last_version();
    lowest = lowest ? std::min(*lowest, last) : last;
  }
  return lowest.value_or(0);
}

Status KvStateMachine::replay(std::span<const core::LoggedUpdate> suffix) {
  Version previous = 0;
  for (const core::LoggedUpdate& update : suffix) {
    if (update.version <= previous) return invalid_argument("replay: versions must ascend");
    previous = update.version;
  }
  for (const core::LoggedUpdate& update : suffix) {
    if (update.version <= applied_version_) continue;
    core::DeliveredUpdate delivered{update.version, update.timestamp, update.sender, 0,
                                    update.payload};
    SQUALL_TRY(apply_update(delivered, false));
  }
  return Status::ok();
}

Status KvStateMachine::apply(const core::DeliveredUpdate& update) {
  return apply_update(update, true);
}

Status KvStateMachine::apply_update(const core::DeliveredUpdate& update, bool report) {
  SQUALL_ASSERT(update.version > applied_version_, "version {} applied after {}", update.version,
                applied_version_);
  Result<KvUpdate> decoded = decode_update(update.payload, options_.limits);
  if (update.payload.empty()) {
    // A version filler from read_log(): a version that wrote nothing, carried so that the
    // receiver ends at the same applied version (docs/storage.md).
  } else if (!decoded) {
    // Every replica sees the same bytes and skips them the same way: the version is consumed.
    ++stats_.malformed;
    logger("kv")->warn("update {} from node {} skipped: {}", update.version, update.sender,
                       decoded.status().to_string());
  } else if (decoded->op == KvOp::barrier) {
    // A read barrier writes nothing; its result only tells the origin that every update
    // ordered before it has been applied here (docs/consistency.md).
    KvResult result;
    result.request = decoded->request;
    result.op = KvOp::barrier;
    result.version = update.version;
    result.timestamp = update.timestamp;
    if (report && on_result) on_result(result);
  } else if (const Store* store = store_for_key(decoded->key);
             store != nullptr && update.version <= store->last_version()) {
    // The store holds this update already (it survived a restart that lost other pools'
    // tails, see recovered_version()); its decision was taken then, on the same key history.
    ++stats_.already_stored;
  } else {
    Result<KvResult> result = execute(decoded.value(), update.version, update.timestamp);
    if (!result) return result.status();
    if (report && on_result) on_result(result.value());
  }
  applied_version_ = update.version;
  applied_timestamp_ = update.timestamp;
  ++stats_.applied;
  ++pending_updates_;
  applied_since_poll_ = true;
  return Status::ok();
}

Result<KvResult> KvStateMachine::execute(const KvUpdate& update, Version version,
                                         HlcTimestamp timestamp) {
  Store* store = store_for_key(update.key);
  std::optional<Version> current = current_version(store, update.key);
  KvResult result;
  result.request = update.request;
  result.op = update.op;
  result.version = version;
  result.timestamp = timestamp;
  if (!condition_holds(update, current)) {
    result.outcome = KvOutcome::precondition_failed;
    result.current_version = current;
    ++stats_.precondition_failed;
    return result;
  }
  if (store == nullptr) {  // stateless: nothing to write, every write "happens"
    result.outcome = KvOutcome::ok;
    return result;
  }
  if (update.op == KvOp::del) {
    if (!current) {
      result.outcome = KvOutcome::not_found;
      ++stats_.not_found;
      return result;
    }
    SQUALL_TRY(store->remove(version, timestamp, update.key));
    result.outcome = KvOutcome::ok;
  } else {
    SQUALL_TRY(store->put(version, timestamp, update.key, update.value));
    result.outcome = current ? KvOutcome::ok : KvOutcome::created;
  }
  ++stats_.written;
  return result;
}

bool KvStateMachine::has_persistent_store() const {
  for (std::size_t i = 0; i < stores_.size(); ++i) {
    if (stores_[i] && pools_.pool(i).storage == config::Storage::persistent) return true;
  }
  return false;
}

}  // namespace squall::kvstore
