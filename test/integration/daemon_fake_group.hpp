// FakeGroup: an in-process stand-in for the group behind ReplicatedBackend — one member per
// shard, a progress thread that runs posted tasks and delivers sent updates in order to the
// shard's replica, with knobs to pause delivery and to end a view (discarding what was not
// delivered, as the ragged trim does for updates that did not reach every member).
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "common/clock.hpp"
#include "common/hlc.hpp"
#include "server/group_port.hpp"
#include "server/replicated_backend.hpp"
#include "server/shard_replica.hpp"

namespace squall::test {

class FakeGroup final : public server::GroupPort {
 public:
  explicit FakeGroup(std::vector<ShardId> served);
  ~FakeGroup() override;  // stop()

  // The backend the group notifies; set before start().
  void connect(server::ReplicatedBackend* backend) { backend_ = backend; }
  // Registers a replica and starts the progress thread (after connect()).
  void add_replica(server::ShardReplica* replica) { replicas_[replica->shard()] = replica; }
  void start();
  void stop();

  // Thread-safe knobs.
  void pause(bool paused);
  // Ends the view: undelivered updates are dropped, the view id grows, the backend is told.
  void change_view();
  // Runs `task` on the progress thread and waits for it.
  void run(std::function<void()> task);
  std::uint64_t delivered_barriers() const;

  // GroupPort.
  Status post(std::function<void()> task) override;
  Result<std::uint64_t> send(ShardId shard, std::span<const std::byte> payload) override;
  bool serves(ShardId shard) const override;
  ViewId view_id() const override { return view_; }
  std::vector<std::string> rest_addresses(ShardId) const override { return {}; }

 private:
  void loop();
  void deliver();

  std::vector<ShardId> served_;
  server::ReplicatedBackend* backend_ = nullptr;
  std::map<ShardId, server::ShardReplica*> replicas_;
  std::map<ShardId, std::deque<Bytes>> queues_;  // progress thread
  std::map<ShardId, std::uint32_t> counters_;     // progress thread
  HybridLogicalClock clock_{SystemClock::instance()};
  ViewId view_{1};

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> tasks_;  // GUARDED_BY(mutex_)
  bool paused_ = false;                      // GUARDED_BY(mutex_)
  bool stop_ = false;                        // GUARDED_BY(mutex_)
  std::uint64_t barriers_ = 0;               // GUARDED_BY(mutex_)
  std::thread thread_;
};

}  // namespace squall::test
