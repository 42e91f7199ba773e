#include "test/integration/daemon_fake_group.hpp"

#include <algorithm>
#include <future>

#include "kvstore/kv_codec.hpp"

namespace squall::test {

FakeGroup::FakeGroup(std::vector<ShardId> served) : served_(std::move(served)) {}

FakeGroup::~FakeGroup() { stop(); }

void FakeGroup::start() { thread_ = std::thread([this] { loop(); }); }

void FakeGroup::stop() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void FakeGroup::pause(bool paused) {
  {
    std::lock_guard lock(mutex_);
    paused_ = paused;
  }
  wake_.notify_all();
}

void FakeGroup::change_view() {
  run([this] {
    for (auto& [shard, queue] : queues_) queue.clear();
    view_ = ViewId{view_.value + 1};
    counters_.clear();
    backend_->on_installed();
  });
}

void FakeGroup::run(std::function<void()> task) {
  std::promise<void> done;
  Status posted = post([&] {
    task();
    done.set_value();
  });
  SQUALL_ASSERT(posted.is_ok(), "post: {}", posted.to_string());
  done.get_future().wait();
}

std::uint64_t FakeGroup::delivered_barriers() const {
  std::lock_guard lock(mutex_);
  return barriers_;
}

Status FakeGroup::post(std::function<void()> task) {
  {
    std::lock_guard lock(mutex_);
    if (stop_) return unavailable("fake group stopped");
    tasks_.push_back(std::move(task));
  }
  wake_.notify_all();
  return Status::ok();
}

Result<std::uint64_t> FakeGroup::send(ShardId shard, std::span<const std::byte> payload) {
  if (!serves(shard)) return unavailable("not a member");
  queues_[shard].emplace_back(payload.begin(), payload.end());
  wake_.notify_all();
  return std::uint64_t{queues_[shard].size()};
}

bool FakeGroup::serves(ShardId shard) const {
  return std::find(served_.begin(), served_.end(), shard) != served_.end();
}

void FakeGroup::loop() {
  std::unique_lock lock(mutex_);
  while (!stop_) {
    wake_.wait_for(lock, std::chrono::milliseconds(1));
    while (!tasks_.empty() && !stop_) {
      auto task = std::move(tasks_.front());
      tasks_.pop_front();
      lock.unlock();
      task();
      lock.lock();
    }
    if (paused_ || stop_) continue;
    lock.unlock();
    deliver();
    lock.lock();
  }
}

void FakeGroup::deliver() {
  for (auto& [shard, queue] : queues_) {
    server::ShardReplica* replica = replicas_.at(shard);
    while (!queue.empty()) {
      Bytes payload = std::move(queue.front());
      queue.pop_front();
      auto decoded = kvstore::decode_update(payload, replica->machine().options().limits);
      if (decoded && decoded->op == kvstore::KvOp::barrier) {
        std::lock_guard lock(mutex_);
        ++barriers_;
      }
      const std::uint32_t sequence = ++counters_[shard];
      core::DeliveredUpdate update{make_version(view_, sequence), clock_.now(), NodeId{1},
                                   sequence, payload};
      Status applied = replica->apply(update);
      SQUALL_ASSERT(applied.is_ok(), "fake apply: {}", applied.to_string());
    }
    backend_->on_persisted(shard, replica->persisted_version());
  }
}

}  // namespace squall::test
