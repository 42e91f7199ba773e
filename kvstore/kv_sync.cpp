// KvStateMachine's group commit: when to sync, inline or on the sync thread.
#include "common/log.hpp"
#include "kvstore/kv_state_machine.hpp"

namespace squall::kvstore {

bool KvStateMachine::sync_due() {
  bool quiet = !applied_since_poll_;
  applied_since_poll_ = false;
  if (pending_updates_ == 0) return false;
  return pending_updates_ >= options_.sync_every_updates || sync_requested_ || quiet;
}

Status KvStateMachine::sync_stores() {
  for (std::size_t i = 0; i < stores_.size(); ++i) {
    if (!stores_[i] || pools_.pool(i).storage != config::Storage::persistent) continue;
    Result<Version> synced = stores_[i]->sync();
    if (!synced) return synced.status();
  }
  syncs_.fetch_add(1);
  return Status::ok();
}

Version KvStateMachine::persisted_version() {
  if (!has_persistent_store()) {
    // Volatile and stateless pools need no sync: applied is as durable as they get.
    persisted_inline_ = std::max(persisted_inline_, applied_version_);
    pending_updates_ = 0;
    return persisted_inline_;
  }
  if (!sync_due()) return options_.sync_thread ? persisted_.load() : persisted_inline_;
  // Every update up to this version was handed to its store before the sync starts, so the
  // sync covers it; updates that wrote nothing are covered trivially.
  Version target = applied_version_;
  pending_updates_ = 0;
  sync_requested_ = false;
  if (options_.sync_thread) {
    {
      std::lock_guard lock(sync_mutex_);
      sync_target_ = std::max(sync_target_, target);
    }
    sync_wake_.notify_one();
    return persisted_.load();
  }
  Status synced = sync_stores();
  if (synced.is_ok()) {
    persisted_inline_ = std::max(persisted_inline_, target);
  } else {
    // The store is failed now: the next apply() reports it and the group wedges.
    logger("kv")->error("sync failed, persisted version stays {}: {}", persisted_inline_,
                        synced.to_string());
  }
  return persisted_inline_;
}

void KvStateMachine::start_sync_thread() {
  if (!options_.sync_thread) return;
  Version start = persisted_.load();
  {
    std::lock_guard lock(sync_mutex_);
    sync_stop_ = false;
    sync_target_ = start;
  }
  // The thread starts from `start`, not from sync_target_ when it first runs: a target set
  // before it got the lock must still be synced.
  sync_thread_ = std::thread([this, start] { sync_loop(start); });
}

void KvStateMachine::stop_sync_thread() {
  if (!sync_thread_.joinable()) return;
  {
    std::lock_guard lock(sync_mutex_);
    sync_stop_ = true;
  }
  sync_wake_.notify_one();
  sync_thread_.join();
}

void KvStateMachine::sync_loop(Version done) {
  std::unique_lock lock(sync_mutex_);
  for (;;) {
    sync_wake_.wait(lock, [&] { return sync_stop_ || sync_target_ > done; });
    if (sync_target_ <= done) return;  // stopping with nothing pending
    Version target = sync_target_;
    lock.unlock();
    Status synced = sync_stores();
    lock.lock();
    done = target;
    if (synced.is_ok()) {
      Version previous = persisted_.load();
      if (target > previous) persisted_.store(target);
    } else {
      sync_failure_ = synced;
      logger("kv")->error("sync failed, persisted version stays {}: {}", persisted_.load(),
                          synced.to_string());
    }
    sync_done_.notify_all();
  }
}

Status KvStateMachine::flush() {
  Version target = applied_version_;
  pending_updates_ = 0;
  sync_requested_ = false;
  if (!has_persistent_store()) {
    persisted_inline_ = std::max(persisted_inline_, target);
    return Status::ok();
  }
  if (!options_.sync_thread) {
    SQUALL_TRY(sync_stores());
    persisted_inline_ = std::max(persisted_inline_, target);
    return Status::ok();
  }
  std::unique_lock lock(sync_mutex_);
  sync_target_ = std::max(sync_target_, target);
  sync_wake_.notify_one();
  sync_done_.wait(lock, [&] { return persisted_.load() >= target || !sync_failure_.is_ok(); });
  return persisted_.load() >= target ? Status::ok() : sync_failure_;
}

}  // namespace squall::kvstore
