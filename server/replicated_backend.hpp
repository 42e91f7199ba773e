// ReplicatedBackend: the KvBackend of squalld — requests through the shards' total orders
// (docs/consistency.md).
//
// - Writes: the update (kvstore/kv_codec) is sent in the key's shard group with a request id
//   (origin = this node); apply() reports its outcome on every replica and this node matches
//   it by id; the client is answered once the shard's persistence frontier passes the
//   update's version. An update sent in a view that ended before it was delivered is sent
//   again in the next view (the ragged trim discards it everywhere, so it can never apply
//   twice).
// - Linearizable reads: a read barrier (KvOp::barrier) is sent in the shard's order; reads
//   that arrived before it was sent are served from the local state once it applied here.
//   Stable reads: local, at the persistence frontier. Time reads wait until the shard's
//   delivered timestamp passed the time.
// - A request for a shard this node does not serve is forwarded to a member of that shard.
// Every request is bounded by request_timeout_ms (timed_out -> 503) and the number of requests
// in flight by max_requests (would_block -> 503).
//
// Threads: the KvBackend calls from any thread; the on_* notifications and attach() on the
// group's progress thread, where all request state lives. Reads are decided there and run on
// `read_threads` reader threads (ShardReplica's reads are safe beside apply and install).
// Hand-offs are batched (docs/performance.md): requests wait in a submission queue that one
// task on the progress thread drains (posted only when the queue was empty), and the writes
// one move of a persistence frontier completes are answered together, by one task on a
// reader thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include <boost/asio/thread_pool.hpp>

#include "common/clock.hpp"
#include "config/config.hpp"
#include "kvstore/kv_state_machine.hpp"
#include "server/forwarder.hpp"
#include "server/group_port.hpp"
#include "server/kv_backend.hpp"
#include "server/metrics.hpp"
#include "server/shard_replica.hpp"

namespace squall::server {

struct BackendOptions {
  NodeId self;
  config::LayoutConfig layout;
  kvstore::KvCodecLimits limits;
  std::uint32_t request_timeout_ms = 5000;
  std::size_t max_requests = 65536;  // writes and reads in flight on this node
  std::uint32_t tick_ms = 20;        // timeouts and retries are checked this often
  std::uint32_t read_threads = 2;    // threads that run local reads once they may be served
};

class ReplicatedBackend final : public KvBackend {
 public:
  // `group`, `clock`, `forwarder` (may be null: no forwarding) and `metrics` (may be null)
  // must outlive the backend. `ready` answers ready() (the node's view and quorum).
  ReplicatedBackend(BackendOptions options, GroupPort& group, const Clock& clock,
                    Forwarder* forwarder, MetricsRegistry* metrics, std::function<bool()> ready,
                    std::function<Result<ClusterInfo>()> cluster);
  ~ReplicatedBackend() override;

  // KvBackend.
  void put(PutRequest request, Callback<WriteResult> done) override;
  void remove(DeleteRequest request, Callback<WriteResult> done) override;
  void get(GetRequest request, Callback<GetResult> done) override;
  void list(ListRequest request, Callback<ListResult> done) override;
  void history(HistoryRequest request, Callback<HistoryResult> done) override;
  void cluster_info(Callback<ClusterInfo> done) override;
  bool ready() const override;

  // Progress thread: the replica of a shard this node serves (its results come here).
  void attach(ShardReplica& replica);
  // Progress thread: group notifications.
  void on_installed();
  void on_persisted(ShardId shard, Version frontier);

  // Starts the ticker (timeouts, retries). Call once the group is started.
  void start();
  // New requests fail with unavailable from now on.
  void begin_shutdown();
  // Requests (local and forwarded) still unanswered.
  std::size_t in_flight() const { return in_flight_.load(); }
  // Stops the ticker and fails every request still pending with unavailable. Call after the
  // group stopped (no progress thread runs any more), or on the progress thread.
  void fail_all();

 private:
  struct PendingWrite;
  struct PendingRead;
  struct ShardState;
  using Task = std::function<void()>;
  struct Submission {
    Task run;                          // on the progress thread
    std::function<void(Status)> fail;  // instead of `run`, when the group is gone
  };
  struct Answer {
    Callback<WriteResult> done;
    Result<WriteResult> result;
  };

  // Counts a request in (or answers it at once: shutting down, too many in flight); `done`
  // then counts it out when called.
  template <typename T>
  bool enter(Callback<T>& done);
  // On the progress thread: `local(done)` when this node serves `shard`, otherwise the
  // request `forwarded` builds goes to the shard's members and `parse` reads their answer.
  template <typename T>
  void route(ShardId shard, std::function<HttpRequest()> forwarded,
             Result<T> (*parse)(const HttpResponse&), Callback<T> done,
             std::function<void(Callback<T>)> local);

  // Writes (replicated_backend.cpp).
  // Validates and encodes `update` (its request id set here) and sends it in its shard.
  void submit_update(kvstore::KvUpdate& update, std::function<HttpRequest()> forwarded,
                     Callback<WriteResult> done);
  void submit_write(ShardId shard, Bytes payload, std::uint64_t sequence,
                    Callback<WriteResult> done);
  void try_send(std::uint64_t sequence, PendingWrite& write);
  void on_result(ShardId shard, const kvstore::KvResult& result);
  void complete_write(std::uint64_t sequence, Result<WriteResult> result);
  // Calls every answer's `done`, in order, in one task on a reader thread.
  void answer(std::vector<Answer> answers);
  void tick();
  void run_ticker();
  // Queues `task` for the progress thread: the first one queued into an empty queue posts
  // the task that drains it. If the group is gone, `fail` runs instead (on the caller's
  // thread, or in fail_all()).
  void post_or_fail(Task task, std::function<void(Status)> fail);
  // Progress thread: runs every queued submission.
  void drain_submissions();
  // The group is gone (stopped, or shutting down): fails every queued submission with
  // `status`, and every later one at once.
  void fail_submissions(const Status& status);
  bool admit(const std::function<void(Status)>& fail);
  void release() { in_flight_.fetch_sub(1); }
  std::uint64_t deadline_us() const;
  ShardId shard_of(std::string_view key) const;
  ShardState& shard_state(ShardId shard);

  // Reads (replicated_reads.cpp).
  void enqueue_read(ShardId shard, Consistency consistency, ReadPoint at,
                    std::function<void(ReadPoint)> serve,
                    std::function<void(Status)> fail);
  // Runs `serve` at `point` on a reader thread.
  void run_read(std::function<void(ReadPoint)> serve, ReadPoint point);
  void send_barrier(ShardId shard, ShardState& state);
  void on_barrier(ShardId shard, ShardState& state, std::uint64_t sequence);
  void serve_time_reads(ShardState& state);
  void expire_reads(ShardState& state, std::uint64_t now_us);
  // One page over `shards`: each served here through its read point, each other one as a
  // shard-restricted page from a member of it; merged (list_merge).
  void list_shards(const ListRequest& request, const std::vector<ShardId>& shards,
                   Callback<ListResult> done);
  template <typename T>
  void forward(std::vector<std::string> targets, HttpRequest request,
               Result<T> (*parse)(const HttpResponse&), Callback<T> done);

  const BackendOptions options_;
  GroupPort& group_;
  const Clock& clock_;
  Forwarder* forwarder_;
  MetricsRegistry* metrics_;
  std::function<bool()> ready_;
  std::function<Result<ClusterInfo>()> cluster_;

  // Request ids start at the wall clock's microseconds when the node starts, so ids of a
  // restarted node never repeat those of its previous run (docs/consistency.md).
  std::atomic<std::uint64_t> next_sequence_;
  std::atomic<std::size_t> in_flight_{0};
  std::atomic<bool> shutting_down_{false};

  std::mutex submit_mutex_;
  std::vector<Submission> submitted_;  // GUARDED_BY(submit_mutex_)
  bool group_gone_ = false;            // GUARDED_BY(submit_mutex_)

  // Progress thread only.
  std::vector<Submission> draining_;  // the batch being run (kept for its capacity)
  std::unordered_map<std::uint64_t, std::unique_ptr<PendingWrite>> writes_;
  std::map<ShardId, std::unique_ptr<ShardState>> shards_;

  std::unique_ptr<boost::asio::thread_pool> readers_;
  std::thread ticker_;
  std::mutex ticker_mutex_;
  std::condition_variable ticker_wake_;
  bool ticker_stop_ = false;  // GUARDED_BY(ticker_mutex_)

  Counter* forwarded_ = nullptr;
  Counter* timed_out_ = nullptr;
  Counter* barriers_ = nullptr;
  Counter* resent_ = nullptr;
};

}  // namespace squall::server
