// SingleNodeTestBackend: a KvBackend for the REST tests, over a real kvstore::Store opened
// on a temporary directory. TEST FIXTURE ONLY: it assigns versions and timestamps itself, as
// one node with no group, which is not how Squall orders writes (core/ does, per shard).
//
// All calls are queued to one worker thread, which answers them in order; a write is
// answered after the store's sync(). Writes also feed a real kvstore::WatchHub (one shard,
// ShardId 0, replaying key topics from the store): the worker publishes each write and moves
// the frontier past it once synced, as the node's delivery thread does. Knobs let tests make
// the backend unavailable, not ready, or hold answers back (to test the server's behaviour
// with requests in flight).
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/hlc.hpp"
#include "kvstore/file.hpp"
#include "kvstore/store.hpp"
#include "kvstore/watch_history.hpp"
#include "kvstore/watch_hub.hpp"
#include "server/kv_backend.hpp"
#include "server/watch_backend.hpp"

namespace squall::server::testing {

class SingleNodeTestBackend final : public KvBackend {
 public:
  explicit SingleNodeTestBackend(kvstore::RetentionPolicy retention = {},
                                 kvstore::WatchHubOptions watch = {});
  ~SingleNodeTestBackend() override;

  void put(PutRequest request, Callback<WriteResult> done) override;
  void remove(DeleteRequest request, Callback<WriteResult> done) override;
  void get(GetRequest request, Callback<GetResult> done) override;
  void list(ListRequest request, Callback<ListResult> done) override;
  void history(HistoryRequest request, Callback<HistoryResult> done) override;
  void cluster_info(Callback<ClusterInfo> done) override;
  bool ready() const override;
  std::uint32_t retry_after_s() const override { return 7; }

  // Every call answers unavailable while set.
  void set_unavailable(bool unavailable);
  void set_ready(bool ready);
  // While held, queued calls wait; release() lets them run.
  void hold();
  void release();
  // Calls received so far (queued or answered).
  std::size_t calls() const;
  // Applies the retention policy now (writes apply the count limit only once durable).
  void apply_retention();
  // The hub the writes feed, and a WatchBackend over it (for RestApi / RestService).
  kvstore::WatchHub& watch_hub() { return *hub_; }
  WatchBackend& watch_backend() { return *watch_backend_; }

 private:
  void enqueue(std::function<void()> work);
  bool is_unavailable() const;
  // Queues `work` (returning Result<T>); answers unavailable instead while set so.
  template <typename T, typename Work>
  void submit(Callback<T> done, Work work) {
    enqueue([this, done = std::move(done), work = std::move(work)]() mutable {
      if (is_unavailable()) return done(unavailable("test backend is unavailable"));
      done(work());
    });
  }
  void run();
  Result<WriteResult> write(const std::string& key, const std::string* value,
                            const Precondition& precondition);
  Result<GetResult> read(const GetRequest& request) const;
  Result<ListResult> scan(const ListRequest& request) const;
  Result<HistoryResult> versions(const HistoryRequest& request) const;

  std::string path_;
  std::unique_ptr<kvstore::Directory> directory_;
  std::unique_ptr<kvstore::Store> store_;
  std::unique_ptr<kvstore::StoreWatchHistory> history_;
  std::unique_ptr<kvstore::WatchHub> hub_;
  std::unique_ptr<WatchBackend> watch_backend_;
  HybridLogicalClock hlc_;
  std::uint32_t sequence_ = 0;  // worker thread only

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<std::function<void()>> queue_;  // GUARDED_BY(mutex_)
  bool held_ = false;                        // GUARDED_BY(mutex_)
  bool unavailable_ = false;                 // GUARDED_BY(mutex_)
  bool ready_ = true;                        // GUARDED_BY(mutex_)
  bool stopping_ = false;                    // GUARDED_BY(mutex_)
  std::size_t calls_ = 0;                    // GUARDED_BY(mutex_)
  std::thread worker_;
};

}  // namespace squall::server::testing
