// ReplicatedBackend's reads: read barriers, stable and time reads, lists and histories
// (docs/consistency.md).
#include <mutex>
#include <optional>

#include <boost/asio/post.hpp>
#include <fmt/format.h>

#include "kvstore/shard.hpp"
#include "server/list_merge.hpp"
#include "server/replicated_backend.hpp"
#include "server/replicated_backend_internal.hpp"

namespace squall::server {

namespace {

// The results of one list request's shards, gathered on the progress thread.
// Shards finish on reader threads (pages) or the progress thread (failures): the mutex
// guards everything but `limit` and `done`, which the last one to finish uses alone.
struct ListGather {
  std::size_t limit = 0;
  Callback<ListResult> done;

  std::mutex mutex;
  std::size_t remaining = 0;          // GUARDED_BY(mutex)
  std::vector<ListSource> sources;    // GUARDED_BY(mutex)
  Status failure;                     // GUARDED_BY(mutex)

  void finish_one(std::optional<ListSource> page, Status status) {
    {
      std::lock_guard lock(mutex);
      SQUALL_ASSERT(remaining > 0, "list shard finished twice");
      if (page) sources.push_back(std::move(*page));
      if (!status.is_ok() && failure.is_ok()) failure = std::move(status);
      if (--remaining != 0) return;
    }
    if (!failure.is_ok()) return done(failure);
    done(merge_list_pages(std::move(sources), limit));
  }
};

}  // namespace

void ReplicatedBackend::get(GetRequest request, Callback<GetResult> done) {
  if (!enter(done)) return;
  const ShardId shard = shard_of(request.key);
  auto shared = std::make_shared<GetRequest>(std::move(request));
  auto local = [this, shard, shared](Callback<GetResult> reply) {
    ShardReplica* replica = shard_state(shard).replica;
    auto serve = [replica, shared, reply](ReadPoint point) {
      reply(replica->get(shared->key, point));
    };
    enqueue_read(shard, shared->consistency, shared->at, std::move(serve),
                 [reply](Status status) { reply(std::move(status)); });
  };
  route<GetResult>(shard, [shared] { return forward_request(*shared); }, &parse_get_answer,
                   std::move(done), std::move(local));
}

void ReplicatedBackend::history(HistoryRequest request, Callback<HistoryResult> done) {
  if (!enter(done)) return;
  const ShardId shard = shard_of(request.key);
  auto shared = std::make_shared<HistoryRequest>(std::move(request));
  auto local = [this, shard, shared](Callback<HistoryResult> reply) {
    ShardReplica* replica = shard_state(shard).replica;
    auto serve = [replica, shared, reply](ReadPoint) { reply(replica->history(*shared)); };
    enqueue_read(shard, Consistency::linearizable, ReadPoint::latest(), std::move(serve),
                 [reply](Status status) { reply(std::move(status)); });
  };
  route<HistoryResult>(shard, [shared] { return forward_request(*shared); },
                       &parse_history_answer, std::move(done), std::move(local));
}

void ReplicatedBackend::list(ListRequest request, Callback<ListResult> done) {
  if (!enter(done)) return;
  auto fail = [done](Status status) { done(std::move(status)); };
  post_or_fail(
      [this, request = std::move(request), done]() mutable {
        std::vector<ShardId> shards;
        if (request.shard) {
          // A page another node asks for while it merges a list: this shard only, served
          // here or refused (the asking node then tries another member), never forwarded.
          if (request.shard->value >= options_.layout.shards) {
            return done(invalid_argument(fmt::format("no shard {}", *request.shard)));
          }
          if (!group_.serves(*request.shard)) {
            return done(unavailable(fmt::format("shard {} is not served here", *request.shard)));
          }
          shards.push_back(*request.shard);
        } else {
          for (std::uint32_t i = 0; i < options_.layout.shards; ++i) shards.push_back(ShardId{i});
        }
        list_shards(request, shards, std::move(done));
      },
      std::move(fail));
}

void ReplicatedBackend::list_shards(const ListRequest& request,
                                    const std::vector<ShardId>& shards,
                                    Callback<ListResult> done) {
  auto gather = std::make_shared<ListGather>();
  gather->remaining = shards.size();  // nothing finishes before every part is started
  gather->limit = request.limit;
  gather->done = std::move(done);
  auto finish = [gather](Result<ListResult> page) {
    if (!page.is_ok()) return gather->finish_one(std::nullopt, page.status());
    gather->finish_one(ListSource{std::move(page->items), std::move(page->next)},
                       Status::ok());
  };
  for (ShardId shard : shards) {
    if (!group_.serves(shard)) {
      // The same page restricted to this shard, from a member of it: through that shard's
      // read barrier there (or its stable state), with the same start, limit and read point.
      ListRequest part = request;
      part.shard = shard;
      forward<ListResult>(group_.rest_addresses(shard), forward_request(part),
                          &parse_list_answer, finish);
      continue;
    }
    ShardReplica* replica = shard_state(shard).replica;
    auto serve = [replica, request, finish](ReadPoint point) {
      finish(replica->list(request, point));
    };
    enqueue_read(shard, request.consistency, request.at, std::move(serve),
                 [finish](Status status) { finish(std::move(status)); });
  }
}

void ReplicatedBackend::cluster_info(Callback<ClusterInfo> done) {
  if (!cluster_) return done(unavailable("no cluster information"));
  done(cluster_());
}

void ReplicatedBackend::enqueue_read(ShardId shard, Consistency consistency, ReadPoint at,
                                     std::function<void(ReadPoint)> serve,
                                     std::function<void(Status)> fail) {
  ShardState& state = shard_state(shard);
  if (state.replica == nullptr) {
    return fail(unavailable(fmt::format("shard {} is not open on this node", shard)));
  }
  ShardReplica& replica = *state.replica;
  if (consistency == Consistency::stable) {
    // The local replica at its persisted version, without coordination.
    const Version persisted = replica.persisted_version();
    if (at.kind == ReadPoint::Kind::latest ||
        (at.kind == ReadPoint::Kind::version && at.value > persisted)) {
      return run_read(std::move(serve), ReadPoint::at_version(persisted));
    }
    return run_read(std::move(serve), at);
  }
  PendingRead read{deadline_us(), at, std::move(serve), std::move(fail), 0};
  if (at.kind == ReadPoint::Kind::version && at.value <= replica.delivered_version()) {
    return run_read(std::move(read.serve), at);  // every version up to it is here: final
  }
  if (at.kind == ReadPoint::Kind::time) {
    read.after = kvstore::at_time_us(at.value).value;
    if (replica.delivered_timestamp() > read.after) return run_read(std::move(read.serve), at);
    state.time_reads.push_back(std::move(read));
  } else {
    state.waiting.push_back(std::move(read));
  }
  send_barrier(shard, state);
}

void ReplicatedBackend::run_read(std::function<void(ReadPoint)> serve, ReadPoint point) {
  // The decision to serve was taken here, on the progress thread; the store reads themselves
  // run on a reader thread so a large value never holds the group's progress up.
  boost::asio::post(*readers_, [serve = std::move(serve), point] { serve(point); });
}

void ReplicatedBackend::send_barrier(ShardId shard, ShardState& state) {
  if (state.barrier || (state.waiting.empty() && state.time_reads.empty())) return;
  if (!group_.serves(shard)) return;  // the reads time out (or the view comes back)
  kvstore::KvUpdate barrier;
  barrier.op = kvstore::KvOp::barrier;
  barrier.request = {options_.self, next_sequence_.fetch_add(1)};
  const Bytes payload = kvstore::encode_update(barrier, options_.limits);
  auto sent = group_.send(shard, payload);
  if (!sent.is_ok()) return;  // changing views or a full queue: the next tick retries
  if (barriers_ != nullptr) barriers_->add();
  state.barrier = barrier.request.sequence;
  state.barrier_view = group_.view_id();
  state.covered.insert(state.covered.end(), std::make_move_iterator(state.waiting.begin()),
                       std::make_move_iterator(state.waiting.end()));
  state.waiting.clear();
}

void ReplicatedBackend::on_barrier(ShardId shard, ShardState& state, std::uint64_t sequence) {
  if (state.barrier != sequence) return;  // a barrier of an earlier view, sent again since
  state.barrier.reset();
  // Everything ordered before the barrier is applied here: each covered read began before
  // the barrier was sent, so the local state reflects every write acknowledged before it.
  std::vector<PendingRead> covered = std::move(state.covered);
  state.covered.clear();
  for (PendingRead& read : covered) run_read(std::move(read.serve), read.point);
  if (!state.waiting.empty()) send_barrier(shard, state);
}

void ReplicatedBackend::serve_time_reads(ShardState& state) {
  const HlcTimestamp delivered = state.replica->delivered_timestamp();
  std::vector<PendingRead> ready;
  std::erase_if(state.time_reads, [&](PendingRead& read) {
    if (delivered <= read.after) return false;
    ready.push_back(std::move(read));
    return true;
  });
  for (PendingRead& read : ready) run_read(std::move(read.serve), read.point);
}

void ReplicatedBackend::expire_reads(ShardState& state, std::uint64_t now_us) {
  std::vector<PendingRead> expired;
  for (auto* reads : {&state.waiting, &state.covered, &state.time_reads}) {
    std::erase_if(*reads, [&](PendingRead& read) {
      if (read.deadline_us > now_us) return false;
      expired.push_back(std::move(read));
      return true;
    });
  }
  for (PendingRead& read : expired) {
    if (timed_out_ != nullptr) timed_out_->add();
    read.fail(Status(Code::timed_out, "the read did not complete in time"));
  }
}

}  // namespace squall::server
